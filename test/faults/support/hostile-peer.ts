// A hostile CIC server scripted at the frame level over real TLS (test PKI, ALPN h2) on
// 127.0.0.1. It speaks just enough HTTP/2 to get the runtime to "ready" — SETTINGS and their
// ACKs, PING ACKs, flow-controlled DATA that honours the client's windows and frame size,
// a downchannel answering 200 multipart/related with Clova.Hello, 204 for events — and then
// misbehaves according to a scenario, on the first connection only (so recovery can be
// measured) or on every connection.
//
// It normally runs in a child process (hostile-child.ts), so the runtime's RSS measured in
// the test process is the runtime's alone. Large payloads are produced lazily from one
// reused buffer: the peer itself never holds the 10 MB or 100 MB it sends.
import { randomUUID } from 'node:crypto';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { testPki } from '../../support/certs';
import { FLAG, FRAME, FrameReader, type Frame, frame, goaway, hpack, ping, settings } from '../../support/frames';
import { JSON_PART, MultipartWriter } from '../../emulator/multipart';

export const SCENARIOS = [
  'normal',
  'goaway-storm', // SETTINGS + GOAWAY(last-stream-id 0) on every connection
  'no-settings', // TLS completes, then not one HTTP/2 byte
  'endless-continuation', // downchannel HEADERS without END_HEADERS, then CONTINUATION forever
  'huge-headers', // an event response whose header block is 10 MB
  'ping-flood', // 200,000 PINGs while the peer reads every ACK
  'settings-flood-unread', // SETTINGS frames without end while the peer reads nothing
  'unsolicited-acks', // 100,000 PING ACKs for PINGs nobody sent
  'big-part', // a 100 MB directive part on the downchannel, then a normal directive
  'endless-part', // a downchannel part that never closes (data until the connection ends)
  'bad-directives', // invalid UTF-8 and invalid JSON directive parts, then a normal one
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface HostileOptions {
  scenario: Scenario;
  /** Misbehave on connections 1…n (default 1); 'all' for every connection. */
  hostileConnections?: number | 'all';
  /** ALPN protocols offered (default ['h2']). */
  alpn?: string[];
  /** Size of the big directive part / header block (bytes). */
  bigBytes?: number;
}

export interface PeerStats {
  connections: number;
  open: number;
  /** ms from TLS secure to socket close, per closed connection, in order. */
  lifetimesMs: number[];
  framesIn: number;
  pingsIn: number;
  pingAcksIn: number;
  settingsAcksIn: number;
  requests: number;
  eventsAnswered: number;
  /** Bytes written by the misbehaviour itself (flood frames, filler). */
  hostileBytesOut: number;
  hostileFramesOut: number;
  /** The misbehaviour ran to its end without the client closing the connection. */
  hostileCompleted: number;
  bytesOut: number;
}

const BOUNDARY = 'hostile-b0undary-7f3e';
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const FILL = Buffer.alloc(1 << 16, 0x61); // 'a': never part of a delimiter

function helloPart(w: MultipartWriter): Buffer {
  return w.part({ 'Content-Type': JSON_PART }, JSON.stringify({ directive: { header: { namespace: 'Clova', name: 'Hello', messageId: randomUUID() }, payload: {} } }));
}

function directivePart(w: MultipartWriter, name: string): Buffer {
  return w.part({ 'Content-Type': JSON_PART }, JSON.stringify({ directive: { header: { namespace: 'Test', name, messageId: randomUUID() }, payload: {} } }));
}

/** HPACK fields of `count` bytes or more: literal, not indexed, name `x-fill`, 4000-byte values. */
function headerFiller(count: number): Buffer {
  const one = hpack([['x-fill', 'f'.repeat(4000)]]);
  return Buffer.concat(Array(Math.ceil(count / one.length)).fill(one));
}

class PeerConnection {
  readonly id: number;
  readonly hostile: boolean;
  readonly openedAt = performance.now();
  closed = false;
  private connWindow = 65_535;
  private initialWindow = 65_535;
  private maxFrame = 16_384;
  private readonly streamWindows = new Map<number, number>();
  private readonly resetStreams = new Set<number>();
  private readonly eventStreams = new Set<number>();
  private downchannel = 0;
  private wakers: Array<() => void> = [];
  private readonly reader = new FrameReader();
  readonly writer = new MultipartWriter(BOUNDARY);

  constructor(
    readonly peer: HostilePeer,
    readonly socket: tls.TLSSocket,
    id: number,
  ) {
    this.id = id;
    const n = peer.opts.hostileConnections ?? 1;
    this.hostile = peer.opts.scenario !== 'normal' && (n === 'all' || id <= n);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.reader.push(chunk)) this.onFrame(f);
    });
    socket.on('drain', () => this.wake());
    socket.on('close', () => {
      this.closed = true;
      peer.stats.open--;
      peer.stats.lifetimesMs.push(Math.round(performance.now() - this.openedAt));
      this.wake();
    });
  }

  start(): void {
    const s = this.peer.opts.scenario;
    if (this.hostile && s === 'no-settings') {
      // Read (and drop) whatever comes; answer nothing at all.
      return;
    }
    this.write(settings([[0x3, 100]])); // MAX_CONCURRENT_STREAMS 100
    if (this.hostile && s === 'goaway-storm') {
      this.write(goaway(0, 0, 'go away'));
      this.peer.stats.hostileFramesOut++;
    }
  }

  write(bytes: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.peer.stats.bytesOut += bytes.length;
    return this.socket.write(bytes);
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private waitWake(): Promise<void> {
    return new Promise((r) => this.wakers.push(r));
  }

  /** Waits until the socket accepts more bytes; false once the connection is gone. */
  async writable(): Promise<boolean> {
    while (!this.gone() && this.socket.writableNeedDrain) await this.waitWake();
    return !this.gone();
  }

  /** Closed, or destroyed by an error whose 'close' has not been emitted yet. */
  gone(): boolean {
    return this.closed || this.socket.destroyed;
  }

  /** DATA within the client's flow-control windows and frame size; false if the stream or connection went away. */
  async sendData(sid: number, payload: Buffer, end = false, hostile = false): Promise<boolean> {
    let off = 0;
    do {
      for (;;) {
        if (this.gone() || this.resetStreams.has(sid)) return false;
        const room = Math.min(this.connWindow, this.streamWindows.get(sid) ?? this.initialWindow);
        if ((room > 0 || payload.length === 0) && !this.socket.writableNeedDrain) break;
        await this.waitWake();
      }
      const room = Math.min(this.connWindow, this.streamWindows.get(sid) ?? this.initialWindow, this.maxFrame);
      const n = Math.min(room, payload.length - off);
      const last = off + n >= payload.length;
      this.connWindow -= n;
      this.streamWindows.set(sid, (this.streamWindows.get(sid) ?? this.initialWindow) - n);
      const f = frame(FRAME.DATA, end && last ? FLAG.END_STREAM : 0, sid, payload.subarray(off, off + n));
      if (hostile) {
        this.peer.stats.hostileBytesOut += f.length;
        this.peer.stats.hostileFramesOut++;
      }
      this.write(f);
      off += n;
    } while (off < payload.length);
    return true;
  }

  private onFrame(f: Frame): void {
    const st = this.peer.stats;
    st.framesIn++;
    switch (f.type) {
      case FRAME.SETTINGS:
        if (f.flags & FLAG.ACK) {
          st.settingsAcksIn++;
          return;
        }
        for (let i = 0; i + 6 <= f.payload.length; i += 6) {
          const id = f.payload.readUInt16BE(i);
          const v = f.payload.readUInt32BE(i + 2);
          if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
            const delta = v - this.initialWindow;
            this.initialWindow = v;
            for (const [sid, w] of this.streamWindows) this.streamWindows.set(sid, w + delta);
          } else if (id === SETTINGS_MAX_FRAME_SIZE) this.maxFrame = v;
        }
        if (!(this.hostile && this.peer.opts.scenario === 'no-settings')) this.write(settings([], true));
        this.wake();
        return;
      case FRAME.WINDOW_UPDATE: {
        const inc = f.payload.readUInt32BE(0) & 0x7fffffff;
        if (f.streamId === 0) this.connWindow += inc;
        else this.streamWindows.set(f.streamId, (this.streamWindows.get(f.streamId) ?? this.initialWindow) + inc);
        this.wake();
        return;
      }
      case FRAME.PING:
        if (f.flags & FLAG.ACK) st.pingAcksIn++;
        else {
          st.pingsIn++;
          if (!(this.hostile && this.peer.opts.scenario === 'no-settings')) this.write(ping(Buffer.from(f.payload), true));
        }
        return;
      case FRAME.RST_STREAM:
        this.resetStreams.add(f.streamId);
        this.wake();
        return;
      case FRAME.HEADERS:
        if (this.hostile && this.peer.opts.scenario === 'no-settings') return;
        st.requests++;
        if (f.flags & FLAG.END_STREAM) {
          // A GET: the first one on a connection is the downchannel (the runtime opens it first).
          if (this.downchannel === 0) void this.onDownchannel(f.streamId);
          else this.respond(f.streamId, '204');
        } else this.eventStreams.add(f.streamId);
        return;
      case FRAME.DATA:
        if ((f.flags & FLAG.END_STREAM) && this.eventStreams.delete(f.streamId)) void this.onEvent(f.streamId);
        return;
      default:
        return;
    }
  }

  private respond(sid: number, status: string, extra: Array<[string, string]> = [], endStream = true): void {
    const block = hpack([[':status', status], ...extra]);
    this.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), sid, block));
  }

  private async onEvent(sid: number): Promise<void> {
    if (this.hostile && this.peer.opts.scenario === 'huge-headers') {
      await this.continuationFlood(sid, this.peer.opts.bigBytes ?? 10 * 1024 * 1024);
      return;
    }
    this.peer.stats.eventsAnswered++;
    this.respond(sid, '204');
  }

  private async onDownchannel(sid: number): Promise<void> {
    this.downchannel = sid;
    const s = this.peer.opts.scenario;
    if (this.hostile && s === 'endless-continuation') {
      await this.continuationFlood(sid, Infinity);
      return;
    }
    this.respond(sid, '200', [['content-type', `multipart/related; boundary=${BOUNDARY}`]], false);
    const w = this.writer;
    await this.sendData(sid, Buffer.concat([w.open(), helloPart(w)]));
    if (!this.hostile) return;
    // Give the runtime a moment to become ready before the misbehaviour starts.
    await new Promise((r) => setTimeout(r, 300));
    switch (s) {
      case 'ping-flood':
        return this.controlFlood(200_000, (i) => ping(Buffer.from(`p${String(i).padStart(7, '0')}`)));
      case 'unsolicited-acks':
        return this.controlFlood(100_000, (i) => ping(Buffer.from(`u${String(i).padStart(7, '0')}`), true));
      case 'settings-flood-unread':
        this.socket.pause(); // read nothing from now on: the client's ACKs pile up on its side
        return this.controlFlood(5_000_000, () => settings());
      case 'big-part':
        return this.bigPart(sid, this.peer.opts.bigBytes ?? 100 * 1024 * 1024);
      case 'endless-part':
        return this.endlessPart(sid);
      case 'bad-directives':
        return this.badDirectives(sid);
      default:
        return;
    }
  }

  /** `count` control frames, written in batches as fast as the socket takes them. */
  private async controlFlood(count: number, make: (i: number) => Buffer): Promise<void> {
    const st = this.peer.stats;
    const batch = 1_000;
    for (let i = 0; i < count; i += batch) {
      if (!(await this.writable())) return;
      const frames: Buffer[] = [];
      for (let k = i; k < Math.min(count, i + batch); k++) frames.push(make(k));
      const bytes = Buffer.concat(frames);
      st.hostileBytesOut += bytes.length;
      st.hostileFramesOut += frames.length;
      this.write(bytes);
    }
    st.hostileCompleted++;
  }

  /** HEADERS without END_HEADERS, then CONTINUATION frames until `total` header bytes (or forever). */
  private async continuationFlood(sid: number, total: number): Promise<void> {
    const st = this.peer.stats;
    this.write(frame(FRAME.HEADERS, 0, sid, hpack([[':status', '200']])));
    // One header block spread over the frames: each frame continues the HPACK byte stream
    // where the previous one stopped (a periodic run of whole fields), so the block stays
    // decodable and only the CONTINUATION count (or the list size) can stop it.
    const unit = headerFiller(1).length;
    const periodic = headerFiller(unit + this.maxFrame);
    let sent = 0;
    while (sent < total) {
      if (!(await this.writable())) return;
      const n = Math.min(this.maxFrame, total - sent);
      const last = sent + n >= total;
      const at = sent % unit;
      const f = frame(FRAME.CONTINUATION, last ? FLAG.END_HEADERS : 0, sid, periodic.subarray(at, at + n));
      st.hostileBytesOut += f.length;
      st.hostileFramesOut++;
      this.write(f);
      sent += n;
    }
    st.hostileCompleted++;
  }

  private async bigPart(sid: number, bytes: number): Promise<void> {
    const w = this.writer;
    const head = Buffer.concat([
      w.head({ 'Content-Type': JSON_PART }),
      Buffer.from(`{"directive":{"header":{"namespace":"Test","name":"Huge","messageId":"${randomUUID()}"},"payload":{"blob":"`),
    ]);
    if (!(await this.sendData(sid, head, false, true))) return;
    for (let sent = 0; sent < bytes; sent += FILL.length) {
      if (!(await this.sendData(sid, FILL.subarray(0, Math.min(FILL.length, bytes - sent)), false, true))) return;
    }
    if (!(await this.sendData(sid, Buffer.concat([Buffer.from('"}}}'), w.delimiter()]), false, true))) return;
    this.peer.stats.hostileCompleted++;
    await this.sendData(sid, directivePart(w, 'AfterHuge'));
  }

  private async endlessPart(sid: number): Promise<void> {
    const w = this.writer;
    if (!(await this.sendData(sid, w.head({ 'Content-Type': 'application/octet-stream', 'Content-ID': '<endless>' }), false, true))) return;
    while (!this.gone() && !this.peer.stopFlag) {
      if (!(await this.sendData(sid, FILL, false, true))) return;
    }
  }

  private async badDirectives(sid: number): Promise<void> {
    const w = this.writer;
    const badUtf8 = Buffer.concat([
      Buffer.from('{"directive":{"header":{"namespace":"Test","name":"BadUtf8","messageId":"m-1"},"payload":{"text":"'),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
      Buffer.from('"}}}'),
    ]);
    const badJson = '{"directive":{"header":{"namespace":"Test","name":"BadJson","messageId":"m-2"},"payload":{"text":';
    const parts = [w.part({ 'Content-Type': JSON_PART }, badUtf8), w.part({ 'Content-Type': JSON_PART }, badJson), directivePart(w, 'AfterBad')];
    for (const p of parts) this.peer.stats.hostileBytesOut += p.length;
    await this.sendData(sid, Buffer.concat(parts), false, true);
    this.peer.stats.hostileCompleted++;
  }
}

export class HostilePeer {
  readonly stats: PeerStats = {
    connections: 0,
    open: 0,
    lifetimesMs: [],
    framesIn: 0,
    pingsIn: 0,
    pingAcksIn: 0,
    settingsAcksIn: 0,
    requests: 0,
    eventsAnswered: 0,
    hostileBytesOut: 0,
    hostileFramesOut: 0,
    hostileCompleted: 0,
    bytesOut: 0,
  };
  port = 0;
  stopFlag = false;
  private readonly server: tls.Server;
  private readonly conns = new Set<PeerConnection>();

  constructor(readonly opts: HostileOptions) {
    const pki = testPki();
    const alpn = opts.alpn ?? ['h2'];
    this.server = tls.createServer({ key: pki.server.key, cert: pki.server.cert, ...(alpn.length ? { ALPNProtocols: alpn } : {}) }, (socket) => {
      this.stats.connections++;
      this.stats.open++;
      const c = new PeerConnection(this, socket, this.stats.connections);
      this.conns.add(c);
      socket.on('close', () => this.conns.delete(c));
      c.start();
    });
    this.server.on('tlsClientError', () => {});
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Ends endless misbehaviour (the endless part). */
  stopHostile(): void {
    this.stopFlag = true;
  }

  close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export function startHostilePeer(opts: HostileOptions): Promise<HostilePeer> {
  return new HostilePeer(opts).listen();
}
