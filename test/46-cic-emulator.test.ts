// The CIC emulator (test/emulator/cic-server.ts) against the runtime's own HTTP/2 Connection
// over real TLS with the test CA: protocol behaviour (PROTOCOL.md §2), fault injection and
// counters. Waits are bounded failure guards; the two "nothing may happen" checks (frozen
// link, withheld PING ACK) observe a short real-time window by design.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Connection, type ConnectOptions } from '../src/h2/connection';
import type { ClientStream, ResponseHead } from '../src/h2/stream';
import { isCicError, type CicError } from '../src/errors';
import { rejects } from './support/expect';
import * as F from './support/frames';
import { fakeAudio, startCicEmulator, type CicEmulator, type CicEmulatorOptions, type EventRecord } from './emulator/cic-server';
import { FrameRelay } from './emulator/frame-relay';
import {
  MultipartParser,
  MultipartWriter,
  audioHeaders,
  boundaryOf,
  contentIdOf,
  dispositionName,
  eventBody,
  metadataHeaders,
  parseMultipart,
  partCollector,
  type ParsedPart,
} from './emulator/multipart';

const UA = 'TestCo/Emulator/1.0.0 (Linux 6.1;Test_HW;mode=test)';
const H = (token = 'token-good-1', extra: Record<string, string> = {}) => ({ 'user-agent': UA, authorization: `Bearer ${token}`, ...extra });

/** Rejects after `ms` (a failure guard, never a synchronisation point). */
function guard<T>(p: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

interface Ctx {
  emu: CicEmulator;
  connect(extra?: Partial<ConnectOptions>): Promise<Connection>;
}

async function withEmu(options: CicEmulatorOptions, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const emu = await startCicEmulator(options);
  const conns: Connection[] = [];
  try {
    await fn({
      emu,
      connect: async (extra = {}) => {
        const c = await Connection.connect({ host: '127.0.0.1', port: emu.port, ca: emu.ca, caMode: 'only', ...extra });
        conns.push(c);
        return c;
      },
    });
  } finally {
    for (const c of conns) c.destroy();
    await emu.stop();
  }
}

interface ClientDownchannel {
  stream: ClientStream;
  head: ResponseHead;
  parts: ParsedPart[];
  /** The close delimiter arrived. */
  closed: boolean;
  /** Resolves with part #i (0-based) once it is complete. */
  part(i: number, what?: string): Promise<ParsedPart>;
}

/** GET /v1/directives; parts are collected as each one completes (its delimiter arrived). */
async function openDownchannel(conn: Connection, headers = H()): Promise<ClientDownchannel> {
  const stream = conn.request({ path: '/v1/directives', headers });
  const parts: ParsedPart[] = [];
  const waiters: Array<() => void> = [];
  const dc = { stream, head: undefined as unknown as ResponseHead, parts, closed: false } as ClientDownchannel;
  let parser: MultipartParser | undefined;
  // Attached synchronously: HEADERS and the first DATA can arrive in one read.
  stream.on('response', (head) => {
    const boundary = boundaryOf(head.headers['content-type']);
    if (head.status === 200 && boundary) {
      parser = partCollector(boundary, (p) => {
        parts.push(p);
        for (const w of waiters.splice(0)) w();
      }, () => (dc.closed = true));
    }
  });
  stream.on('data', (c) => parser?.push(c));
  stream.on('close', () => {
    for (const w of waiters.splice(0)) w();
  });
  dc.head = await guard(stream.response(), 'downchannel response');
  dc.part = (i, what = `downchannel part #${i}`) =>
    guard(
      new Promise<ParsedPart>((resolve, reject) => {
        const check = () => {
          if (parts.length > i) return resolve(parts[i]!);
          if (stream.settled) return reject(new Error(`downchannel closed before ${what}`));
          waiters.push(check);
        };
        check();
      }),
      what,
    );
  return dc;
}

const json = (p: ParsedPart) => JSON.parse(p.body.toString('utf8')) as { directive: { header: Record<string, string>; payload: Record<string, unknown> } };
const header = (p: ParsedPart) => json(p).directive.header;

function eventMeta(namespace: string, name: string, extra: { dialogRequestId?: string; payload?: unknown } = {}) {
  return {
    context: [{ header: { namespace: 'Device', name: 'DeviceState' }, payload: {} }],
    event: { header: { namespace, name, messageId: `msg-${namespace}-${name}`, ...(extra.dialogRequestId ? { dialogRequestId: extra.dialogRequestId } : {}) }, payload: extra.payload ?? {} },
  };
}

function postEvent(conn: Connection, meta: unknown, opts: { token?: string; audio?: Buffer } = {}): ClientStream {
  const w = new MultipartWriter();
  return conn.request({ path: '/v1/events', method: 'POST', headers: H(opts.token, { 'content-type': w.contentType('form-data') }), body: eventBody(w, meta, opts.audio) });
}

async function settle<T>(p: Promise<T>): Promise<T | CicError> {
  try {
    return await p;
  } catch (e) {
    return e as CicError;
  }
}

// ---- multipart helpers and the frame relay -------------------------------------------------

test('multipart parser: every split of a body yields the same parts; a part ends at its delimiter', () => {
  const w = new MultipartWriter('b-123');
  const body = Buffer.concat([Buffer.from('preamble\r\n'), w.open(), w.part({ 'Content-Type': 'application/json' }, '{"a":1}'), w.part({ 'Content-ID': '<x1>' }, Buffer.from('\r\n--b-12 not a delimiter\r\n')), w.close(), Buffer.from('epilogue')]);
  const whole = parseMultipart(body, 'b-123');
  assert.is(whole.length, 2);
  assert.is(whole[0]!.body.toString(), '{"a":1}');
  assert.is(whole[1]!.body.toString(), '\r\n--b-12 not a delimiter\r\n');
  assert.is(contentIdOf(whole[1]!.headers), 'x1');
  for (let cut = 1; cut < body.length; cut++) {
    const got: string[] = [];
    const p = partCollector('b-123', (part) => got.push(part.body.toString()));
    p.push(body.subarray(0, cut));
    p.push(body.subarray(cut));
    assert.equal(got, ['{"a":1}', '\r\n--b-12 not a delimiter\r\n'], `split at ${cut}`);
    assert.ok(p.done);
  }
  // A never-ending body: the part is complete as soon as the delimiter after it arrived.
  const seen: string[] = [];
  const open = partCollector('b-123', (part) => seen.push(part.body.toString()));
  open.push(Buffer.concat([w.open(), w.part({}, 'hello')]));
  assert.equal(seen, ['hello']);
  assert.not.ok(open.done);
});

test('multipart helpers: boundary with quotes or a trailing semicolon; form-data names', () => {
  assert.is(boundaryOf('multipart/related; boundary="abc def"'), 'abc def');
  assert.is(boundaryOf('multipart/form-data; boundary=xyz;'), 'xyz');
  assert.is(boundaryOf('application/json'), undefined);
  assert.is(dispositionName({ 'content-disposition': 'form-data; name="metadata"' }), 'metadata');
  assert.throws(() => new MultipartParser('b', {}).push(Buffer.from('--b\r\nno colon here\r\n\r\nx')));
});

const tick = () => new Promise((r) => setImmediate(r));

test('frame relay: drops client PINGs on request and injects frames only at server frame boundaries', async () => {
  const written: Buffer[] = [];
  const outer = new Duplex({ read() {}, write(c: Buffer, _e, cb) { written.push(Buffer.from(c)); cb(); } });
  const dropped: Buffer[] = [];
  const relay = new FrameRelay(outer, { clientPing: (p) => (dropped.push(p), p[0] === 1) });
  const toServer: Buffer[] = [];
  relay.inner.on('data', (c: Buffer) => toServer.push(c));
  // client → server: preface, SETTINGS, PING(1) dropped, PING(2) kept, split across pushes
  const client = Buffer.concat([F.CLIENT_PREFACE, F.settings(), F.ping(Buffer.alloc(8, 1)), F.ping(Buffer.alloc(8, 2)), F.headers(1, [[':path', '/']])]);
  for (let i = 0; i < client.length; i += 5) outer.push(client.subarray(i, i + 5));
  await tick();
  const got = Buffer.concat(toServer);
  assert.ok(got.subarray(0, 24).equals(F.CLIENT_PREFACE));
  const frames = F.parseFrames(got.subarray(24));
  assert.equal(frames.map((f) => f.type), [F.FRAME.SETTINGS, F.FRAME.PING, F.FRAME.HEADERS]);
  assert.is(frames[1]!.payload[0], 2);
  assert.is(relay.stats.pingsDropped, 1);
  assert.is(dropped.length, 2);
  // server → client: a DATA frame written in pieces; the injected GOAWAY waits for its end.
  const dataFrame = F.data(1, Buffer.alloc(100, 7));
  relay.inner.write(dataFrame.subarray(0, 4));
  relay.inject(F.goaway(0, 0));
  relay.inner.write(dataFrame.subarray(4, 50));
  relay.inner.write(Buffer.concat([dataFrame.subarray(50), F.settings([], true)]));
  await tick();
  const out = F.parseFrames(Buffer.concat(written));
  assert.equal(out.map((f) => f.type), [F.FRAME.DATA, F.FRAME.GOAWAY, F.FRAME.SETTINGS]);
  assert.ok(out[0]!.payload.equals(Buffer.alloc(100, 7)));
  // Frozen: nothing moves either way; on resume, held bytes and injected frames keep their order.
  written.length = 0;
  toServer.length = 0;
  relay.freeze(true);
  relay.inner.write(F.ping(Buffer.alloc(8, 9), true));
  relay.inject(F.rstStream(1, 2));
  relay.inner.write(F.settings([], true));
  outer.push(F.windowUpdate(0, 100));
  await tick();
  assert.is(written.length, 0);
  assert.is(toServer.length, 0);
  assert.is(relay.stats.heldToClient, 17 + 9);
  relay.freeze(false);
  await tick();
  assert.equal(F.parseFrames(Buffer.concat(written)).map((f) => f.type), [F.FRAME.PING, F.FRAME.RST_STREAM, F.FRAME.SETTINGS]);
  assert.equal(F.parseFrames(Buffer.concat(toServer)).map((f) => f.type), [F.FRAME.WINDOW_UPDATE]);
  relay.destroy();
});

// ---- protocol ---------------------------------------------------------------------------------

test('downchannel: 200 multipart/related, Clova.Hello is the first part and the stream stays open', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    assert.is(dc.head.status, 200);
    assert.match(dc.head.headers['content-type']!, /^multipart\/related; boundary=/);
    const hello = await dc.part(0, 'Clova.Hello');
    const d = json(hello).directive;
    assert.is(d.header.namespace, 'Clova');
    assert.is(d.header.name, 'Hello');
    assert.match(d.header.messageId!, /^[0-9a-f-]{36}$/);
    assert.equal(d.payload, {});
    assert.is(d.header.dialogRequestId, undefined);
    assert.is(dc.stream.settled, false, 'the downchannel never ends by itself');
    assert.is(dc.closed, false);
    assert.is(emu.counters.downchannelsOpened, 1);
    assert.is(emu.downchannel?.connectionId, [...emu.connections.values()][0]!.id);
  });
});

test('pushDirective arrives on the downchannel with its attachment, each part dispatchable at once', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    assert.ok(emu.pushDirective({ header: { namespace: 'Settings', name: 'Update' }, payload: { volume: 3 } }));
    const p1 = await dc.part(1, 'Settings.Update');
    assert.is(header(p1).name, 'Update');
    assert.equal(json(p1).directive.payload, { volume: 3 });
    assert.ok(emu.pushDirective({ directive: { header: { namespace: 'AudioPlayer', name: 'Play', messageId: 'fixed-id' }, payload: { url: 'cid:a1' } } }, [{ contentId: 'a1', data: Buffer.from([1, 2, 3]) }]));
    assert.is(header(await dc.part(2)).messageId, 'fixed-id');
    const att = await dc.part(3, 'attachment');
    assert.is(contentIdOf(att.headers), 'a1');
    assert.is(att.headers['content-type'], 'application/octet-stream');
    assert.ok(att.body.equals(Buffer.from([1, 2, 3])));
    assert.is(emu.counters.directivesPushed, 2);
  });
});

test('an event POST is answered 204 and recorded', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    const res = await guard(postEvent(conn, eventMeta('System', 'SynchronizeState')).collect(), 'event response');
    assert.is(res.status, 204);
    assert.is(res.body.length, 0);
    const res2 = await guard(postEvent(conn, eventMeta('System', 'RequestSynchronizeState')).collect(), 'event response');
    assert.is(res2.status, 204);
    assert.is(emu.events.length, 2);
    const e = emu.events[0]!;
    assert.is(e.namespace, 'System');
    assert.is(e.name, 'SynchronizeState');
    assert.is(e.messageId, 'msg-System-SynchronizeState');
    assert.is(e.dialogRequestId, undefined);
    assert.is(e.audioBytes, 0);
    assert.is(e.bodyComplete, true);
    assert.is(e.status, 204);
    assert.equal(e.context, [{ header: { namespace: 'Device', name: 'DeviceState' }, payload: {} }]);
    assert.is(emu.counters.eventsReceived, 2);
  });
});

test('Recognize with streamed audio: StopCapture on the downchannel, then Speak + cid attachment in the response', async () => {
  await withEmu({ stopCaptureAfterBytes: 3200 }, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    const w = new MultipartWriter();
    const ev = conn.request({ path: '/v1/events', method: 'POST', headers: H(undefined, { 'content-type': w.contentType('form-data') }), body: 'stream' });
    let responded = false;
    ev.on('response', () => (responded = true));
    const response = ev.collect();
    ev.write(Buffer.concat([w.open(), w.part(metadataHeaders(), JSON.stringify(eventMeta('SpeechRecognizer', 'Recognize', { dialogRequestId: 'dlg-1', payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' } }))), w.head(audioHeaders())]));
    const chunk = Buffer.alloc(640, 0x55); // 20 ms of 16 kHz 16-bit mono
    for (let i = 0; i < 5; i++) ev.write(chunk); // exactly the 3200-byte threshold
    const stop = await dc.part(1, 'SpeechRecognizer.StopCapture');
    assert.is(header(stop).namespace, 'SpeechRecognizer');
    assert.is(header(stop).name, 'StopCapture');
    assert.is(header(stop).dialogRequestId, 'dlg-1');
    assert.is(responded, false, 'the event is not answered while its audio is still open');
    ev.write(chunk); // audio already in flight when StopCapture arrived
    ev.write(w.delimiter());
    ev.end(w.close());
    const res = await guard(response, 'Recognize response');
    assert.is(res.status, 200);
    const boundary = boundaryOf(res.headers['content-type']);
    assert.ok(boundary && /^multipart\/related/.test(res.headers['content-type']!));
    const parts = parseMultipart(res.body, boundary!);
    assert.is(parts.length, 2);
    const speak = json(parts[0]!).directive;
    assert.is(`${speak.header.namespace}.${speak.header.name}`, 'SpeechSynthesizer.Speak');
    assert.is(speak.header.dialogRequestId, 'dlg-1');
    const url = String(speak.payload.url);
    assert.match(url, /^cid:/);
    assert.is(contentIdOf(parts[1]!.headers), url.slice(4));
    assert.is(parts[1]!.headers['content-type'], 'application/octet-stream');
    assert.ok(parts[1]!.body.equals(fakeAudio()));
    const rec = emu.events[0]!;
    assert.is(rec.audioBytes, 3840);
    assert.is(rec.stopCaptureSent, true);
    assert.is(rec.dialogRequestId, 'dlg-1');
    assert.is(rec.status, 200);
  });
});

test("stopCaptureOn: 'event' — 200 and StopCapture on the event's own stream while the audio is still open, then Speak + attachment after the body", async () => {
  await withEmu({ stopCaptureAfterBytes: 3200, stopCaptureOn: 'event' }, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    const w = new MultipartWriter();
    const ev = conn.request({ path: '/v1/events', method: 'POST', headers: H(undefined, { 'content-type': w.contentType('form-data') }), body: 'stream' });
    const parts: ParsedPart[] = [];
    let parser: MultipartParser | undefined;
    let partArrived: () => void = () => {};
    ev.on('response', (head) => {
      parser = partCollector(boundaryOf(head.headers['content-type'])!, (p) => {
        parts.push(p);
        partArrived();
      });
    });
    ev.on('data', (c) => parser?.push(c));
    ev.write(Buffer.concat([w.open(), w.part(metadataHeaders(), JSON.stringify(eventMeta('SpeechRecognizer', 'Recognize', { dialogRequestId: 'dlg-e', payload: {} }))), w.head(audioHeaders())]));
    const chunk = Buffer.alloc(640, 0x55);
    for (let i = 0; i < 5; i++) ev.write(chunk);
    const head = await guard(ev.response(), 'the early 200');
    assert.is(head.status, 200);
    await guard(new Promise<void>((resolve) => (parts.length ? resolve() : (partArrived = resolve))), 'StopCapture on the event stream');
    assert.equal([header(parts[0]!).name, header(parts[0]!).dialogRequestId], ['StopCapture', 'dlg-e']);
    assert.is(dc.parts.length, 1, 'nothing on the downchannel');
    assert.is(ev.settled, false, 'the answer stays open while the audio goes on');
    ev.write(chunk);
    ev.write(w.delimiter());
    ev.end(w.close());
    await guard(ev.finished(), 'the rest of the answer');
    assert.equal(parts.map((p) => (contentIdOf(p.headers) ? 'attachment' : header(p).name)), ['StopCapture', 'Speak', 'attachment']);
    assert.ok(parts[2]!.body.equals(fakeAudio()));
    const rec = emu.events[0]!;
    assert.equal([rec.stopCaptureSent, rec.audioBytesAtStopCapture, rec.audioBytes, rec.status], [true, 3200, 3840, 200]);
  });
});

test('frame relay: DATA bytes per stream to the client and WINDOW_UPDATE increments from it are counted', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    const big = Buffer.alloc(600 * 1024, 7);
    emu.pushDirective({ header: { namespace: 'Test', name: 'Big' }, payload: { url: 'cid:big' } }, [{ contentId: 'big', data: big }]);
    await dc.part(2, 'the big attachment');
    const relay = [...emu.connections.values()][0]!.relay!;
    const sid = dc.stream.id;
    const sent = relay.stats.dataToClient.get(sid)!;
    assert.ok(sent > big.length, `${sent} DATA bytes on the downchannel`);
    // The client gave every byte back: the stream and the connection got their windows reopened.
    await conn.ping(5000);
    assert.ok(relay.stats.windowUpdatesFromClient.get(sid)! >= sent - 256 * 1024, 'stream window updates');
    assert.ok(relay.stats.windowUpdatesFromClient.get(0)! >= sent - 1024 * 1024, 'connection window updates');
  });
});

test('TextRecognizer.Recognize: 200 with Speak and its attachment, same dialogRequestId', async () => {
  await withEmu({}, async ({ connect }) => {
    const conn = await connect();
    await (await openDownchannel(conn)).part(0);
    const res = await guard(postEvent(conn, eventMeta('TextRecognizer', 'Recognize', { dialogRequestId: 'dlg-t', payload: { text: 'weather' } })).collect(), 'response');
    assert.is(res.status, 200);
    const parts = parseMultipart(res.body, boundaryOf(res.headers['content-type'])!);
    assert.is(header(parts[0]!).name, 'Speak');
    assert.is(header(parts[0]!).dialogRequestId, 'dlg-t');
    assert.is(`cid:${contentIdOf(parts[1]!.headers)}`, json(parts[0]!).directive.payload.url);
  });
});

test('custom responders per Namespace.Name: directives, statuses and held (unanswered) events', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    emu.setResponder('Alerts.RequestSynchronizeAlert', () => ({ directives: [{ header: { namespace: 'Alerts', name: 'SynchronizeAlert' }, payload: { alerts: [] } }] }));
    emu.setResponder('Settings.RequestVersionSpec', () => ({ status: 500, description: 'boom' }));
    emu.setResponder('Test.Hold', () => 'hold');
    const conn = await connect();
    await (await openDownchannel(conn)).part(0);
    const a = await guard(postEvent(conn, eventMeta('Alerts', 'RequestSynchronizeAlert')).collect(), 'alerts');
    assert.is(a.status, 200);
    assert.is(header(parseMultipart(a.body, boundaryOf(a.headers['content-type'])!)[0]!).name, 'SynchronizeAlert');
    const s = await guard(postEvent(conn, eventMeta('Settings', 'RequestVersionSpec')).collect(), 'settings');
    assert.is(s.status, 500);
    assert.is(JSON.parse(s.body.toString()).directive.payload.description, 'boom');
    const held = postEvent(conn, eventMeta('Test', 'Hold'));
    const rec = await emu.next<EventRecord>('eventComplete', (e) => e.name === 'Hold');
    assert.is(rec.status, undefined);
    assert.is(held.head, undefined);
    held.cancel();
  });
});

// ---- status codes ---------------------------------------------------------------------------

test('401 with a System.Exception body for a bad, missing or expired token; 400 without User-Agent', async () => {
  await withEmu({ validateToken: (t) => t.startsWith('good') }, async ({ emu, connect }) => {
    const conn = await connect();
    const bad = await guard(conn.request({ path: '/ping', headers: H('bad-token') }).collect(), 'bad token');
    assert.is(bad.status, 401);
    const body = JSON.parse(bad.body.toString());
    assert.is(body.directive.header.namespace, 'System');
    assert.is(body.directive.header.name, 'Exception');
    assert.is(body.directive.payload.code, '401');
    const none = await guard(conn.request({ path: '/v1/directives', headers: { 'user-agent': UA } }).collect(), 'no token');
    assert.is(none.status, 401);
    const noUa = await guard(conn.request({ path: '/ping', headers: { authorization: 'Bearer good-1' } }).collect(), 'no UA');
    assert.is(noUa.status, 400);
    assert.is((await conn.request({ path: '/ping', headers: H('good-1') }).collect()).status, 204);
    emu.expireTokens(); // every token seen so far
    assert.is((await conn.request({ path: '/ping', headers: H('good-1') }).collect()).status, 401);
    assert.is((await conn.request({ path: '/ping', headers: H('good-2') }).collect()).status, 204, 'a refreshed token works');
    emu.expireTokens('all');
    assert.is((await conn.request({ path: '/ping', headers: H('good-3') }).collect()).status, 401);
    emu.restoreTokens();
    assert.is((await conn.request({ path: '/ping', headers: H('good-1') }).collect()).status, 204);
    assert.is(emu.counters.unauthorized, 4);
    assert.is(emu.counters.badRequest, 1);
  });
});

test('412 for an event on a connection without the downchannel (and with no downchannel at all)', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const c1 = await connect();
    const early = await guard(postEvent(c1, eventMeta('System', 'SynchronizeState')).collect(), 'early event');
    assert.is(early.status, 412);
    await (await openDownchannel(c1)).part(0);
    const c2 = await connect();
    const res = await guard(postEvent(c2, eventMeta('System', 'SynchronizeState')).collect(), 'event on c2');
    assert.is(res.status, 412);
    assert.is(JSON.parse(res.body.toString()).directive.payload.code, '412');
    assert.is((await postEvent(c1, eventMeta('System', 'SynchronizeState')).collect()).status, 204);
    assert.is(emu.counters.noDownchannel, 2);
    assert.is(emu.events.length, 1, '412 events are not recorded');
  });
});

test('429 for a second downchannel requested at the same time', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const a = conn.request({ path: '/v1/directives', headers: H() });
    const b = conn.request({ path: '/v1/directives', headers: H() });
    const [ha, hb] = await guard(Promise.all([a.response(), b.response()]), 'both responses');
    assert.equal([ha.status, hb.status].sort(), [200, 429]);
    assert.is(emu.counters.tooManyRequests, 1);
    assert.is(emu.counters.downchannelsOpened, 1);
    assert.is((ha.status === 200 ? a : b).settled, false, 'the first downchannel is untouched');
  });
});

test('a second downchannel after the window closes the first one (cleanly) and takes over', async () => {
  let now = 50_000;
  await withEmu({ now: () => now, downchannelWindowMs: 1_000 }, async ({ emu, connect }) => {
    const c1 = await connect();
    const first = await openDownchannel(c1);
    await first.part(0);
    now += 999;
    const early = await guard(c1.request({ path: '/v1/directives', headers: H() }).collect(), '429');
    assert.is(early.status, 429);
    now += 1;
    const c2 = await connect();
    const ended = guard(first.stream.finished(), 'first downchannel ends');
    const second = await openDownchannel(c2);
    await second.part(0);
    await ended;
    assert.is(first.closed, true, 'the old downchannel got the close delimiter');
    assert.is(emu.downchannel?.connectionId, [...emu.connections.values()].find((c) => c.id !== 1)?.id);
    assert.is(emu.counters.downchannelsReplaced, 1);
    // Events now belong on c2.
    assert.is((await postEvent(c1, eventMeta('System', 'SynchronizeState')).collect()).status, 412);
    assert.is((await postEvent(c2, eventMeta('System', 'SynchronizeState')).collect()).status, 204);
  });
});

test("replacedDownchannel: 'rst' resets the old downchannel instead of ending it", async () => {
  let now = 0;
  await withEmu({ now: () => now, replacedDownchannel: 'rst' }, async ({ emu, connect }) => {
    const conn = await connect();
    const first = await openDownchannel(conn);
    await first.part(0);
    now += 1_000;
    const second = await openDownchannel(conn);
    await second.part(0);
    const err = await rejects(first.stream.finished(), 'H2_STREAM_RESET');
    assert.is(err.details?.errorCode, 8); // CANCEL
    assert.is(emu.downchannel?.streamId, second.stream.id);
    assert.is(second.stream.settled, false);
  });
});

test('GET /ping answers 204', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const res = await guard(conn.request({ path: '/ping', headers: H() }).collect(), '/ping');
    assert.is(res.status, 204);
    assert.is(emu.counters.pingRequests, 1);
  });
});

test('respondStatus answers the next N requests on a path with the status, then normally', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    emu.respondStatus('/ping', 503, 2);
    emu.respondStatus('/v1/directives', 429);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await conn.request({ path: '/ping', headers: H() }).collect()).status);
    assert.equal(statuses, [503, 503, 204]);
    assert.is((await conn.request({ path: '/v1/directives', headers: H() }).collect()).status, 429);
    const dc = await openDownchannel(conn);
    assert.is(dc.head.status, 200);
    emu.respondStatus('/v1/events', 500);
    const e = await postEvent(conn, eventMeta('System', 'SynchronizeState')).collect();
    assert.is(e.status, 500);
    assert.is(JSON.parse(e.body.toString()).directive.header.name, 'Exception');
    assert.is(emu.counters.statuses[503], 2);
    assert.is(emu.counters.tooManyRequests, 1);
  });
});

// ---- faults -------------------------------------------------------------------------------------

test('withholdPingAcks: PING gets no ACK (H2_PING_TIMEOUT); turning it off restores ACKs', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    assert.type(await guard(conn.ping(2_000), 'first ping'), 'number');
    emu.withholdPingAcks(true);
    await rejects(conn.ping(300), 'H2_PING_TIMEOUT');
    assert.is(conn.closed, false);
    emu.withholdPingAcks(false);
    assert.type(await guard(conn.ping(2_000), 'ping after withholding'), 'number');
    assert.is(emu.counters.pings, 3);
    assert.is(emu.counters.pingsWithheld, 1);
    // Requests still flow while PINGs are withheld: only the ACK is missing.
    emu.withholdPingAcks(true);
    const pinged = settle(conn.ping(300));
    assert.is((await conn.request({ path: '/ping', headers: H() }).collect()).status, 204);
    assert.ok(isCicError(await pinged, 'H2_PING_TIMEOUT'));
  });
});

test('freeze: an in-flight request does not progress and the socket stays open; new connections hang; unfreeze delivers', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    let closed = false;
    conn.on('close', () => (closed = true));
    emu.freeze(true);
    const req = conn.request({ path: '/ping', headers: H() });
    let status: number | undefined;
    req.on('response', (h) => (status = h.status));
    emu.pushDirective({ header: { namespace: 'Settings', name: 'Update' }, payload: {} });
    const ping = settle(conn.ping(300));
    // A new connection gets TCP but never a TLS handshake while frozen.
    const accepted = emu.counters.connectionsAccepted;
    const late = await settle(connect({ connectTimeoutMs: 300 }));
    assert.ok(isCicError(late, 'H2_CONNECT_TIMEOUT'), String(late));
    assert.is(emu.counters.connectionsAccepted, accepted + 1);
    assert.ok(isCicError(await ping, 'H2_PING_TIMEOUT'), 'no PING ACK through a frozen link');
    assert.is(status, undefined, 'no response while frozen');
    assert.is(dc.parts.length, 1, 'no directive while frozen');
    assert.is(closed, false);
    assert.is(conn.closed, false);
    assert.is(req.settled, false);
    // Held, not discarded: the same session carries on.
    emu.freeze(false);
    await guard(req.finished(), 'the held request completes after unfreeze');
    assert.is(status, 204);
    assert.is(header(await dc.part(1)).name, 'Update');
    const fresh = await connect();
    assert.is((await fresh.request({ path: '/ping', headers: H() }).collect()).status, 204);
  });
});

test('goaway: the client sees GOAWAY (NO_ERROR, last processed stream); last-stream-id 0 fails the open streams', async () => {
  let now = 0;
  await withEmu({ now: () => now }, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    const seen = new Promise<{ lastStreamId: number; errorCode: number; debug: string }>((r) => conn.once('goaway', r));
    assert.is(emu.goaway({ debug: 'maintenance' }), 1);
    const info = await guard(seen, 'goaway');
    assert.is(info.errorCode, 0);
    assert.is(info.lastStreamId, dc.stream.id);
    assert.is(info.debug, 'maintenance');
    assert.is(dc.stream.settled, false, 'streams up to last-stream-id carry on');

    now += 5_000;
    const conn2 = await connect();
    const dc2 = await openDownchannel(conn2);
    assert.is(dc2.head.status, 200);
    const seen2 = new Promise<{ lastStreamId: number }>((r) => conn2.once('goaway', r));
    emu.goaway({ lastStreamId: 0, connectionId: [...emu.connections.values()].at(-1)!.id });
    assert.is((await guard(seen2, 'goaway 0')).lastStreamId, 0);
    await rejects(dc2.stream.finished(), 'H2_GOAWAY');

    // close: GOAWAY, then the server ends the connection (no second GOAWAY with a higher id).
    const conn3 = await connect();
    const closed3 = new Promise<CicError | undefined>((r) => conn3.once('close', r));
    emu.goaway({ lastStreamId: 0, close: true, connectionId: [...emu.connections.values()].at(-1)!.id });
    assert.is(await guard(closed3, 'close after GOAWAY'), undefined, 'a clean close, not a protocol error');
    assert.is(conn3.goaway?.lastStreamId, 0);
    assert.is(emu.counters.goawaysSent, 3);
  });
});

test('goaway({close: true}): the old connection ends once its downchannel has moved to a new one', async () => {
  let now = 0;
  await withEmu({ now: () => now }, async ({ emu, connect }) => {
    const old = await connect();
    const dc = await openDownchannel(old);
    await dc.part(0);
    const oldClosed = new Promise<CicError | undefined>((r) => old.once('close', r));
    emu.goaway({ close: true });
    await guard(new Promise((r) => (old.goaway ? r(old.goaway) : old.once('goaway', r))), 'goaway');
    assert.is(old.closed, false, 'the open downchannel keeps the connection');
    now += 5_000;
    const fresh = await connect();
    const dc2 = await openDownchannel(fresh);
    await dc2.part(0);
    await guard(dc.stream.finished(), 'the replaced downchannel ends');
    assert.is(await guard(oldClosed, 'old connection closes'), undefined);
    assert.is(fresh.closed, false);
    assert.is((await postEvent(fresh, eventMeta('System', 'SynchronizeState')).collect()).status, 204);
  });
});

test('goawayOnConnect: every new connection gets GOAWAY (last-stream-id 0) right after SETTINGS, then a close', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    emu.goawayOnConnect(true);
    const conn = await connect();
    const closed = conn.closed ? Promise.resolve() : new Promise<void>((r) => conn.once('close', () => r()));
    const info = conn.goaway ?? (await guard(new Promise<{ lastStreamId: number }>((r) => conn.once('goaway', r)), 'goaway'));
    assert.is(info.lastStreamId, 0);
    await guard(closed, 'the server closes the connection');
    assert.is(emu.counters.goawaysSent, 1);
    assert.is(emu.counters.requests, 0);
    emu.goawayOnConnect(false);
    const ok = await connect();
    assert.is((await ok.request({ path: '/ping', headers: H() }).collect()).status, 204);
  });
});

test('dropSocket: the client sees close with H2_SOCKET_CLOSED', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    const closed = new Promise<CicError | undefined>((r) => conn.once('close', r));
    assert.is(emu.dropSocket(), 1);
    assert.is((await guard(closed, 'close'))?.code, 'H2_SOCKET_CLOSED');
    await rejects(dc.stream.finished(), 'H2_SOCKET_CLOSED');
    assert.is(emu.downchannel, undefined);
  });
});

test('resetDownchannel: RST_STREAM on the downchannel; endDownchannel closes it cleanly', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    const dc = await openDownchannel(conn);
    await dc.part(0);
    assert.ok(emu.resetDownchannel());
    const err = await rejects(dc.stream.finished(), 'H2_STREAM_RESET');
    assert.is(err.details?.errorCode, 2);
    assert.is(emu.downchannel, undefined);
    assert.is(conn.closed, false);
    const dc2 = await openDownchannel(conn); // re-created at once: no 429 after a reset
    assert.is(dc2.head.status, 200);
    await dc2.part(0);
    assert.ok(emu.endDownchannel());
    await guard(dc2.stream.finished(), 'clean end');
    assert.is(dc2.closed, true);
    assert.not.ok(emu.resetDownchannel());
  });
});

test('closeOnAccept and refuseConnections: connects fail; switching them off restores service on the same port', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    emu.closeOnAccept(true);
    const e1 = await settle(connect({ connectTimeoutMs: 2_000 }));
    assert.ok(isCicError(e1), String(e1));
    assert.is(emu.counters.connectionsClosedOnAccept, 1);
    emu.closeOnAccept(false);
    const port = emu.port;
    await emu.refuseConnections(true);
    const e2 = await settle(connect({ connectTimeoutMs: 2_000 }));
    assert.ok(isCicError(e2, 'H2_CONNECT_FAILED'), String(e2));
    await emu.refuseConnections(false);
    assert.is(emu.port, port);
    const ok = await connect();
    assert.is((await ok.request({ path: '/ping', headers: H() }).collect()).status, 204);
  });
});

test('counters follow a session: connections, downchannels, events, pings, statuses', async () => {
  await withEmu({}, async ({ emu, connect }) => {
    const conn = await connect();
    await (await openDownchannel(conn)).part(0);
    await conn.ping(2_000);
    await postEvent(conn, eventMeta('System', 'SynchronizeState')).collect();
    await conn.request({ path: '/ping', headers: H('') }).collect(); // 401: empty token
    await connect();
    const c = emu.counters;
    assert.is(c.connectionsAccepted, 2);
    assert.is(c.sessions, 2);
    assert.is(c.downchannelsOpened, 1);
    assert.is(c.eventsReceived, 1);
    assert.is(c.pings, 1);
    assert.is(c.requests, 3);
    assert.equal(c.statuses, { 200: 1, 204: 1, 401: 1 });
    assert.is(c.unauthorized, 1);
    assert.is(c.noDownchannel, 0);
    assert.is(c.tooManyRequests, 0);
    assert.is([...emu.connections.values()].find((x) => x.id === 1)?.pings, 1);
  });
});

test('main.js: prints {port, caPath} and serves until SIGTERM', async () => {
  const child = spawn(process.execPath, [join(__dirname, 'emulator', 'main.js')], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  try {
    const line = await guard(
      new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          const nl = out.indexOf('\n');
          if (nl >= 0) resolve(out.slice(0, nl));
        });
        child.once('exit', (code) => reject(new Error(`exited early (${code})`)));
      }),
      'the JSON line',
      10_000,
    );
    const info = JSON.parse(line) as { port: number; caPath: string };
    assert.type(info.port, 'number');
    const { readFileSync } = await import('node:fs');
    const conn = await Connection.connect({ host: '127.0.0.1', port: info.port, ca: readFileSync(info.caPath, 'utf8'), caMode: 'only' });
    assert.is((await conn.request({ path: '/ping', headers: H() }).collect()).status, 204);
    await conn.close();
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.is(await guard(exited, 'exit after SIGTERM'), 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test.run();
