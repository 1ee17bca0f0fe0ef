// The `service` phase: the device service (`service` subcommand, a runtime process running
// src/service over a real CicClient) between a bench CIC server and a Wyoming socket client.
// Both ends run here, in the orchestrator, so one clock (performance.now()) times both:
//
//   first byte   the server writes an attachment's first body bytes (t0) → this process reads
//                the first payload byte of the first `attachment-chunk` frame off the socket (t1)
//   RSS          the service process's VmRSS after Hello (idle), then its peak while a 10 MB
//                attachment streams to this client reading slowly (20 ms pause every 256 KiB):
//                VmHWM reset through /proc/PID/clear_refs just before (exact), else 5 ms samples
//   audio        an `audio-chunk` frame written to the socket (t0) → the server's 'data' event
//                carrying that chunk's bytes in the event body (t1)
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { readProcMemory } from './proc';
import { ATTACHMENT_EVENT, startBenchServer, type BenchServer, type BenchServerHooks } from './server';
import { start, sleep } from './spawn';

export interface ServiceSample {
  /** ms, one per attachment (warm-up excluded). */
  firstByteMs: number[];
  /** Bytes. */
  rss: { idle: number; beforeTransfer: number; peak: number; peakMethod: 'VmHWM after clear_refs' | 'sampled VmRSS'; idleAnon: number; peakAnonSampled: number; transferBytes: number; transferMs: number; serverWroteAllMs: number };
  /** ms, one per audio chunk (warm-up excluded). */
  audioMs: number[];
}

export interface ServicePhaseOptions {
  bundle: string;
  /** Command prefix of the service process (taskset, client node or emulator). */
  node: string[];
  env: NodeJS.ProcessEnv;
  tmp: string;
  cert: string;
  key: string;
  caFile: string;
  samples: number;
  audioChunks: number;
  transferBytes: number;
  timeoutScale: number;
}

const WYOMING_VERSION = '1.6.2';
const SLOW_READ_EVERY = 256 * 1024;
const SLOW_READ_PAUSE_MS = 20;
const AUDIO_CHUNK_BYTES = 640; // 20 ms of 16 kHz 16-bit mono
const WARMUP = 3;

interface Frame {
  type: string;
  data: Record<string, unknown>;
  payloadBytes: number;
}

/**
 * A minimal Wyoming client: header line, `data_length` JSON block, `payload_length` bytes.
 * Payloads are counted, not kept (10 MB pass through). Hazard: a frame may straddle socket
 * reads anywhere, including inside the header line, so every stage is incremental.
 */
class WireClient {
  readonly frames: Frame[] = [];
  /** performance.now() of the read that held the first attachment-chunk payload byte since reset. */
  firstPayloadAt: number | undefined;
  attachmentBytes = 0;
  slow = false;
  private stage: 'header' | 'data' | 'payload' = 'header';
  private head: Buffer[] = [];
  private need = 0;
  private cur: Frame | undefined;
  private sinceSlowPause = 0;
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  private error: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (b: Buffer) => this.onData(b, performance.now()));
    socket.on('error', (e) => (this.error = e));
    socket.on('close', () => (this.error ??= new Error('the service closed the socket')));
  }

  static open(path: string, timeoutMs: number): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`no connection to ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new WireClient(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** Writes one frame; returns performance.now() just before the write. */
  send(type: string, data?: Record<string, unknown>, payload?: Buffer): number {
    const header: Record<string, unknown> = { type, version: WYOMING_VERSION };
    const block = data ? Buffer.from(JSON.stringify(data)) : undefined;
    if (block) header.data_length = block.length;
    if (payload?.length) header.payload_length = payload.length;
    const parts = [Buffer.from(`${JSON.stringify(header)}\n`), ...(block ? [block] : []), ...(payload?.length ? [payload] : [])];
    const at = performance.now();
    this.socket.write(Buffer.concat(parts));
    return at;
  }

  next(match: (f: Frame) => boolean, what: string, timeoutMs: number): Promise<Frame> {
    const hit = this.frames.find(match);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (f: Frame) => {
          clearTimeout(t);
          resolve(f);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`service socket: no ${what} within ${timeoutMs} ms${this.error ? ` (${this.error.message})` : ''}; last frames: ${this.frames.slice(-5).map((f) => `${f.type} ${JSON.stringify(f.data)}`).join(' | ')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  clear(): void {
    this.frames.length = 0;
    this.firstPayloadAt = undefined;
    this.attachmentBytes = 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(b: Buffer, at: number): void {
    let i = 0;
    while (i < b.length) {
      if (this.stage === 'header') {
        const nl = b.indexOf(0x0a, i);
        if (nl < 0) {
          this.head.push(b.subarray(i));
          return;
        }
        this.head.push(b.subarray(i, nl));
        i = nl + 1;
        const h = JSON.parse(Buffer.concat(this.head).toString('utf8')) as { type: string; data?: Record<string, unknown>; data_length?: number; payload_length?: number };
        this.head = [];
        this.cur = { type: h.type, data: h.data ?? {}, payloadBytes: h.payload_length ?? 0 };
        if (h.data_length) this.to('data', h.data_length);
        else if (this.cur.payloadBytes) this.to('payload', this.cur.payloadBytes);
        else this.done();
        continue;
      }
      const n = Math.min(this.need, b.length - i);
      if (this.stage === 'data') {
        this.head.push(b.subarray(i, i + n));
      } else if (this.cur!.type === 'attachment-chunk' && n > 0) {
        this.firstPayloadAt ??= at;
        this.attachmentBytes += n;
        this.sinceSlowPause += n;
      }
      i += n;
      this.need -= n;
      if (this.need > 0) break;
      if (this.stage === 'data') {
        Object.assign(this.cur!.data, JSON.parse(Buffer.concat(this.head).toString('utf8')) as Record<string, unknown>);
        this.head = [];
        if (this.cur!.payloadBytes) {
          this.to('payload', this.cur!.payloadBytes);
          continue;
        }
      }
      this.done();
    }
    if (this.slow && this.sinceSlowPause >= SLOW_READ_EVERY) {
      // A slow reader: the bytes already read are handled, then nothing more is read for a
      // while, so the service's socket buffer fills and its back-pressure must hold the rest.
      this.sinceSlowPause = 0;
      this.socket.pause();
      setTimeout(() => this.socket.resume(), SLOW_READ_PAUSE_MS);
    }
  }

  private to(stage: 'data' | 'payload', n: number): void {
    this.stage = stage;
    this.need = n;
  }

  private done(): void {
    const f = this.cur!;
    this.cur = undefined;
    this.stage = 'header';
    // Chunks are only counted: keeping thousands of them would grow this process, not the service.
    if (f.type !== 'attachment-chunk') this.frames.push(f);
    for (let k = this.waiters.length - 1; k >= 0; k--) {
      if (this.waiters[k]!.match(f)) this.waiters.splice(k, 1)[0]!.resolve(f);
    }
  }
}

function clearRefsHwm(pid: number): boolean {
  try {
    // "5" resets VmHWM to the current RSS (Linux ≥ 4.0); only for our own child.
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export async function serviceRound(o: ServicePhaseOptions, rep: number): Promise<ServiceSample> {
  const scale = o.timeoutScale;
  const hooks: BenchServerHooks = {};
  const server: BenchServer = await startBenchServer({ cert: o.cert, key: o.key, host: '127.0.0.1', port: 0, hooks });
  const socketPath = join(o.tmp, `service-${rep}.sock`);
  const svc = start([...o.node, o.bundle, 'service', '--url', `https://127.0.0.1:${server.port}`, '--ca-file', o.caFile, '--socket', socketPath, '--ping-interval-ms', '60000'], o.env);
  let client: WireClient | undefined;
  try {
    const { value } = await svc.line<{ ready: boolean; pid: number }>('ready', 30_000 * scale);
    // Under --client-exec the child we spawned may be a wrapper (taskset, qemu): measure the
    // process the service reports unless it is not visible here.
    const pid = (() => {
      try {
        readProcMemory(value.pid);
        return value.pid;
      } catch {
        return svc.pid;
      }
    })();
    client = await WireClient.open(socketPath, 5000 * scale);
    const c = client;
    let seq = 0;
    const attachment = async (bytes: number, delayMs: number) => {
      c.clear();
      const id = `b${++seq}`;
      let t0: number | undefined;
      hooks.attachmentFirstByte = (at) => (t0 = at);
      c.send('cic-event', { namespace: ATTACHMENT_EVENT.namespace, name: ATTACHMENT_EVENT.name, payload: { bytes, delayMs }, dialogRequestId: `dlg-${id}`, id });
      const timeout = (10_000 + bytes / 1000) * scale;
      const end = await c.next((f) => f.type === 'attachment-end', 'attachment-end', timeout);
      await c.next((f) => f.type === 'event-sent' && f.data.id === id, `event-sent ${id}`, timeout);
      hooks.attachmentFirstByte = undefined;
      if (end.data.code || end.data.bytes !== bytes || c.attachmentBytes !== bytes) {
        throw new Error(`attachment of ${bytes} bytes: attachment-end ${JSON.stringify(end.data)}, ${c.attachmentBytes} bytes read`);
      }
      if (t0 === undefined || c.firstPayloadAt === undefined) throw new Error('attachment: no first-byte timestamps');
      return c.firstPayloadAt - t0;
    };

    // ---- RSS: idle after Hello, then the 10 MB slow read ----
    await sleep(500); // start-up garbage and the Hello handling settle
    const idleMem = readProcMemory(pid);
    await attachment(64 * 1024, 0); // the attachment code path is compiled and its buffers exist
    await sleep(200);
    const before = readProcMemory(pid);
    const exact = clearRefsHwm(pid);
    let peakSampled = before.rss;
    let peakAnon = before.rssAnon;
    const sampler = setInterval(() => {
      try {
        const m = readProcMemory(pid);
        peakSampled = Math.max(peakSampled, m.rss);
        peakAnon = Math.max(peakAnon, m.rssAnon);
      } catch {
        // the service ended: the attachment wait below reports it
      }
    }, 5);
    c.slow = true;
    const tStart = performance.now();
    // When the server had written the whole body: close to transferMs when back-pressure
    // holds from the socket reader back to the server, far earlier when something buffers.
    let serverWroteAll = NaN;
    hooks.attachmentLastByte = (at) => (serverWroteAll = at - tStart);
    try {
      await attachment(o.transferBytes, 0);
    } finally {
      clearInterval(sampler);
      c.slow = false;
      hooks.attachmentLastByte = undefined;
    }
    const transferMs = performance.now() - tStart;
    const after = readProcMemory(pid);
    const peak = exact ? Math.max(after.hwm, peakSampled) : peakSampled;

    // ---- first attachment byte: server write → socket read ----
    const firstByteMs: number[] = [];
    for (let i = 0; i < WARMUP + o.samples; i++) {
      // The body starts 30 ms after the directive and part headers: the directive has reached
      // the socket client by then, so only the attachment's first bytes are in flight.
      const ms = await attachment(4096, 30);
      if (i >= WARMUP) firstByteMs.push(ms);
    }

    // ---- audio: socket write → the server's DATA ----
    c.clear();
    const audioMs: number[] = [];
    let pending: { marker: Buffer; resolve: (at: number) => void } | undefined;
    let tail = Buffer.alloc(0);
    hooks.eventData = (chunk, at) => {
      if (!pending) return;
      // The marker may straddle two DATA frames: search the previous frame's tail too.
      const hay = Buffer.concat([tail, chunk]);
      tail = hay.subarray(Math.max(0, hay.length - 16));
      if (hay.includes(pending.marker)) {
        const p = pending;
        pending = undefined;
        p.resolve(at);
      }
    };
    c.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }, dialogRequestId: 'dlg-bench-audio', audio: true, id: 'audio' });
    c.send('audio-start', { rate: 16000, width: 2, channels: 1 });
    for (let i = 0; i < WARMUP + o.audioChunks; i++) {
      const marker = Buffer.from(`<AUD${String(i).padStart(6, '0')}>`);
      const payload = Buffer.alloc(AUDIO_CHUNK_BYTES, 0x11);
      marker.copy(payload, 0);
      const arrived = new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`audio chunk ${i}: not at the server within ${5000 * scale} ms`)), 5000 * scale);
        pending = {
          marker,
          resolve: (at) => {
            clearTimeout(t);
            resolve(at);
          },
        };
      });
      tail = Buffer.alloc(0);
      const t0 = c.send('audio-chunk', { rate: 16000, width: 2, channels: 1 }, payload);
      const t1 = await arrived;
      if (i >= WARMUP) audioMs.push(t1 - t0);
    }
    hooks.eventData = undefined;
    c.send('audio-stop');
    const sent = await c.next((f) => f.type === 'event-sent' && f.data.id === 'audio', 'event-sent for the audio event', 10_000 * scale);
    if (sent.data.status !== 204) throw new Error(`the audio event was answered ${JSON.stringify(sent.data)}`);

    return {
      firstByteMs,
      rss: {
        idle: idleMem.rss,
        beforeTransfer: before.rss,
        peak,
        peakMethod: exact ? 'VmHWM after clear_refs' : 'sampled VmRSS',
        idleAnon: idleMem.rssAnon,
        peakAnonSampled: peakAnon,
        transferBytes: o.transferBytes,
        transferMs,
        serverWroteAllMs: serverWroteAll,
      },
      audioMs,
    };
  } finally {
    client?.destroy();
    svc.kill('SIGTERM');
    const gone = await Promise.race([svc.exited.then(() => true), sleep(5000).then(() => false)]);
    if (!gone) {
      svc.kill('SIGKILL');
      await svc.exited;
    }
    await server.close();
  }
}
