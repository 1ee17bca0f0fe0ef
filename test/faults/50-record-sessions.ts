// Records real sessions for the receive() fuzzer's seed corpus: the runtime's own Connection
// talks real TLS + HTTP/2 to the CIC emulator, and every byte the native Session's receive()
// gets (decrypted server→client bytes, exactly as the addon sees them) is appended to one
// file per connection. Run by `node scripts/fuzz.mjs record`; the files are kept in
// test/fuzz/corpus/receive/ (the fuzz harness opens streams 1, 3, 5 and 7 the same way).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '../../src/h2/connection';
import { loadBinding, type NativeBinding, type NativeSession } from '../../src/h2/native';
import { directive, startCicEmulator, type CicEmulator } from '../emulator/cic-server';
import { MultipartWriter, audioHeaders, eventBody, metadataHeaders } from '../emulator/multipart';

const UA = 'TestCo/Recorder/1.0.0 (Linux 6.1;Test_HW)';
const H = (extra: Record<string, string> = {}) => ({ 'user-agent': UA, authorization: 'Bearer recorder-token', ...extra });

/** A binding whose sessions copy every receive() input into `sink`. */
function recordingBinding(sink: Buffer[]): NativeBinding {
  const real = loadBinding();
  const Session = function (this: unknown, options?: object) {
    const inner: NativeSession = new real.Session(options);
    return new Proxy(inner, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (prop === 'receive') return (input: Uint8Array) => (sink.push(Buffer.from(input)), target.receive(input));
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  } as unknown as NativeBinding['Session'];
  return { ...real, Session };
}

function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`recorder: timed out waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

function meta(namespace: string, name: string, dialogRequestId: string, payload: unknown = {}) {
  return {
    context: [{ header: { namespace: 'Device', name: 'DeviceState' }, payload: {} }],
    event: { header: { namespace, name, messageId: `msg-${name}-${dialogRequestId}`, dialogRequestId }, payload },
  };
}

type Scenario = (conn: Connection, emu: CicEmulator) => Promise<void>;

const SCENARIOS: Record<string, Scenario> = {
  // Downchannel with Hello, pushed directives, PINGs, then a clean end.
  'downchannel-directives': async (conn, emu) => {
    const dc = conn.request({ path: '/v1/directives', headers: H() });
    let bytes = 0;
    dc.on('data', (c: Uint8Array) => (bytes += c.length));
    await until('Hello', () => bytes > 0);
    emu.pushDirective(directive('Settings', 'Update', { volume: 5 }));
    emu.pushDirective(directive('Alerts', 'SetAlert', { token: 'a1', scheduledTime: '2026-01-01T00:00:00Z' }));
    await conn.ping();
    await conn.ping();
    emu.endDownchannel();
    await dc.collect().catch(() => undefined);
  },
  // A text event answered with Speak + an audio attachment, next to the open downchannel.
  'event-speak-attachment': async (conn) => {
    const dc = conn.request({ path: '/v1/directives', headers: H() });
    let bytes = 0;
    dc.on('data', (c: Uint8Array) => (bytes += c.length));
    await until('Hello', () => bytes > 0);
    const w = new MultipartWriter();
    const ev = conn.request({ path: '/v1/events', method: 'POST', headers: H({ 'content-type': w.contentType('form-data') }), body: eventBody(w, meta('TextRecognizer', 'Recognize', 'd-1', { text: 'weather' })) });
    await ev.collect();
  },
  // Streamed audio: StopCapture arrives on the downchannel while the event is still open.
  'streamed-audio-stopcapture': async (conn) => {
    const dc = conn.request({ path: '/v1/directives', headers: H() });
    let bytes = 0;
    dc.on('data', (c: Uint8Array) => (bytes += c.length));
    await until('Hello', () => bytes > 0);
    const w = new MultipartWriter();
    const ev = conn.request({ path: '/v1/events', method: 'POST', headers: H({ 'content-type': w.contentType('form-data') }), body: 'stream' });
    const done = ev.collect();
    ev.write(Buffer.concat([w.open(), w.part(metadataHeaders(), JSON.stringify(meta('SpeechRecognizer', 'Recognize', 'd-2', { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }))), w.head(audioHeaders())]));
    const before = bytes;
    for (let i = 0; i < 12; i++) ev.write(Buffer.alloc(640, i));
    await until('StopCapture', () => bytes > before);
    ev.write(w.delimiter());
    ev.end(w.close());
    await done;
  },
  // GOAWAY on a working connection with the downchannel open.
  goaway: async (conn, emu) => {
    const dc = conn.request({ path: '/v1/directives', headers: H() });
    let bytes = 0;
    dc.on('data', (c: Uint8Array) => (bytes += c.length));
    await until('Hello', () => bytes > 0);
    let gone = false;
    conn.on('goaway', () => (gone = true));
    emu.goaway({ debug: 'maintenance' });
    await until('GOAWAY', () => gone);
  },
  // The downchannel reset by the server, then a 401 and a 204 on /ping.
  'reset-401-ping': async (conn, emu) => {
    const dc = conn.request({ path: '/v1/directives', headers: H() });
    let bytes = 0;
    dc.on('data', (c: Uint8Array) => (bytes += c.length));
    await until('Hello', () => bytes > 0);
    emu.resetDownchannel();
    await dc.collect().catch(() => undefined);
    emu.respondStatus('/ping', 401);
    await conn.request({ path: '/ping', headers: H() }).collect();
    await conn.request({ path: '/ping', headers: H() }).collect();
  },
};

/** Records every scenario into `dir` as `<name>.bin`; returns the sizes. */
export async function recordSessions(dir: string): Promise<Record<string, number>> {
  mkdirSync(dir, { recursive: true });
  const sizes: Record<string, number> = {};
  for (const [name, run] of Object.entries(SCENARIOS)) {
    const emu = await startCicEmulator({ stopCaptureAfterBytes: 3200 });
    const sink: Buffer[] = [];
    const conn = await Connection.connect({ host: '127.0.0.1', port: emu.port, ca: emu.ca, caMode: 'only', binding: recordingBinding(sink) });
    try {
      await run(conn, emu);
    } finally {
      conn.destroy();
      await emu.stop();
    }
    const bytes = Buffer.concat(sink);
    writeFileSync(join(dir, `${name}.bin`), bytes);
    sizes[name] = bytes.length;
  }
  return sizes;
}

export default { recordSessions };
