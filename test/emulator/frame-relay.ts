// A frame-aware relay between a decrypted TLS socket (the client side) and node:http2 (fed a
// plain Duplex through `server.emit('connection', duplex)`). node:http2 always ACKs PINGs by
// itself and cannot be told to stop talking, so the faults a frozen or half-dead link
// produces are made here:
//
//  - client→server bytes are parsed into frames (after the 24-byte preface); a non-ACK PING
//    can be dropped before node:http2 sees it, so no ACK is ever sent for it;
//  - freeze(true) stops both directions while the sockets stay open. Bytes are HELD, never
//    discarded: the TLS socket is paused (the client's bytes wait in the socket buffers and
//    then in the kernel, until TCP flow control stops the client), and whatever node:http2
//    writes is queued. freeze(false) delivers everything in order, so a client that has not
//    given up yet finds its session intact;
//  - inject() puts a hand-made frame into the server→client byte stream at the next frame
//    boundary (for frames node:http2 will not send, such as GOAWAY with last-stream-id 0);
//  - flow control is observable: DATA payload bytes sent per stream and the WINDOW_UPDATE
//    increments the client granted per stream (0 = the connection).
import { Duplex } from 'node:stream';

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const TYPE_DATA = 0x0;
const TYPE_PING = 0x6;
const TYPE_WINDOW_UPDATE = 0x8;
const FLAG_ACK = 0x1;

export interface RelayHooks {
  /**
   * A PING (not an ACK) from the client. Return true to drop it: node:http2 never sees it,
   * so no ACK goes back.
   */
  clientPing?(payload: Buffer): boolean;
  /** Every client frame header (type, flags, stream id, payload length), for tests. */
  clientFrame?(type: number, flags: number, streamId: number, length: number): void;
}

export interface RelayStats {
  bytesFromClient: number;
  bytesToClient: number;
  framesFromClient: number;
  pingsDropped: number;
  /** Bytes node:http2 wrote while frozen, not yet delivered. */
  heldToClient: number;
  /** DATA payload bytes (padding included) sent to the client, by stream id. */
  dataToClient: Map<number, number>;
  /** WINDOW_UPDATE increments from the client, by stream id (0: the connection window). */
  windowUpdatesFromClient: Map<number, number>;
}

export class FrameRelay {
  /** The stream to hand to node:http2. */
  readonly inner: Duplex;
  readonly stats: RelayStats = {
    bytesFromClient: 0,
    bytesToClient: 0,
    framesFromClient: 0,
    pingsDropped: 0,
    heldToClient: 0,
    dataToClient: new Map(),
    windowUpdatesFromClient: new Map(),
  };
  /** Sees every byte written to the client (plaintext HTTP/2, just before TLS), for timing probes. */
  onToClient: ((bytes: Buffer) => void) | undefined;

  private readonly outer: Duplex;
  private readonly hooks: RelayHooks;
  private frozenFlag = false;
  private closed = false;

  // client → server
  private prefaceLeft = PREFACE_BYTES;
  private inBuf: Buffer = Buffer.alloc(0);
  private heldIn: Buffer[] = [];
  private inEnded = false;

  // server → client
  private heldOut: Array<{ bytes: Buffer; injected: boolean }> = [];
  private outEndPending = false;
  private outNeed = 0; // payload bytes left in the current server frame
  private readonly outHead = Buffer.alloc(FRAME_HEADER_BYTES);
  private outHeadLen = 0;
  private injectQueue: Buffer[] = [];

  constructor(outer: Duplex, hooks: RelayHooks = {}) {
    this.outer = outer;
    this.hooks = hooks;
    const relay = this;
    this.inner = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        relay.fromServer(chunk);
        cb();
      },
      final(cb) {
        if (relay.frozenFlag) relay.outEndPending = true;
        else relay.endOuter();
        cb();
      },
      destroy(err, cb) {
        relay.close();
        cb(err);
      },
    });
    outer.on('data', (chunk: Buffer) => {
      if (this.frozenFlag) this.heldIn.push(chunk);
      else this.fromClient(chunk);
    });
    outer.on('end', () => {
      this.inEnded = true;
      if (!this.frozenFlag) this.inner.push(null);
    });
    outer.on('error', () => {}); // 'close' follows; the session sees its stream destroyed
    outer.on('close', () => this.close());
  }

  get frozen(): boolean {
    return this.frozenFlag;
  }

  /** Stops (true) or resumes (false) both directions; held bytes are delivered on resume. */
  freeze(on: boolean): void {
    if (on === this.frozenFlag || this.closed) {
      this.frozenFlag = on;
      return;
    }
    this.frozenFlag = on;
    if (on) {
      this.outer.pause();
      return;
    }
    const inHeld = this.heldIn;
    this.heldIn = [];
    for (const c of inHeld) this.fromClient(c);
    if (this.inEnded) this.inner.push(null);
    // Server bytes and injected frames go out in the order they were produced.
    const outHeld = this.heldOut;
    this.heldOut = [];
    this.stats.heldToClient = 0;
    for (const h of outHeld) {
      if (h.injected) this.inject(h.bytes);
      else this.fromServer(h.bytes);
    }
    if (this.outEndPending) this.endOuter();
    this.outer.resume();
  }

  /** Sends a complete frame to the client at the next server frame boundary. */
  inject(frame: Buffer): void {
    if (this.closed) return;
    if (this.frozenFlag) {
      this.heldOut.push({ bytes: frame, injected: true });
      return;
    }
    this.injectQueue.push(frame);
    this.flushInjected();
  }

  /**
   * Ends the client side (TLS close_notify, FIN) once everything queued so far — held bytes,
   * injected frames — has gone out; node:http2 is not asked, so it sends nothing more.
   */
  endToClient(): void {
    if (this.frozenFlag || this.injectQueue.length) this.outEndPending = true;
    else this.endOuter();
  }

  /** Destroys both sides. */
  destroy(): void {
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.heldIn = [];
    this.heldOut = [];
    this.injectQueue = [];
    if (!this.outer.destroyed) this.outer.destroy();
    if (!this.inner.destroyed) this.inner.destroy();
  }

  private endOuter(): void {
    this.outEndPending = false;
    if (!this.outer.destroyed && !this.outer.writableEnded) this.outer.end();
  }

  // ---- client → server --------------------------------------------------------------------

  private fromClient(chunk: Buffer): void {
    if (this.closed) return;
    this.stats.bytesFromClient += chunk.length;
    let buf = this.inBuf.length ? Buffer.concat([this.inBuf, chunk]) : chunk;
    const forward: Buffer[] = [];
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, buf.length);
      forward.push(buf.subarray(0, n));
      this.prefaceLeft -= n;
      buf = buf.subarray(n);
    }
    // Whole frames only: a PING must be seen whole before it is let through or dropped.
    let runStart = 0;
    let pos = 0;
    while (buf.length - pos >= FRAME_HEADER_BYTES) {
      const len = buf.readUIntBE(pos, 3);
      if (buf.length - pos < FRAME_HEADER_BYTES + len) break;
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      this.stats.framesFromClient++;
      this.hooks.clientFrame?.(type, flags, streamId, len);
      const end = pos + FRAME_HEADER_BYTES + len;
      if (type === TYPE_WINDOW_UPDATE && len === 4) {
        const m = this.stats.windowUpdatesFromClient;
        m.set(streamId, (m.get(streamId) ?? 0) + (buf.readUInt32BE(pos + FRAME_HEADER_BYTES) & 0x7fffffff));
      }
      if (type === TYPE_PING && !(flags & FLAG_ACK)) {
        const payload = Buffer.from(buf.subarray(pos + FRAME_HEADER_BYTES, end));
        if (this.hooks.clientPing?.(payload)) {
          this.stats.pingsDropped++;
          if (pos > runStart) forward.push(buf.subarray(runStart, pos));
          runStart = end;
        }
      }
      pos = end;
    }
    if (pos > runStart) forward.push(buf.subarray(runStart, pos));
    // Copy the remainder: `chunk` may be a view the socket reuses.
    this.inBuf = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
    for (const f of forward) if (f.length) this.inner.push(Buffer.from(f));
  }

  // ---- server → client --------------------------------------------------------------------

  private fromServer(chunk: Buffer): void {
    if (this.closed) return;
    if (this.frozenFlag) {
      this.heldOut.push({ bytes: Buffer.from(chunk), injected: false });
      this.stats.heldToClient += chunk.length;
      return;
    }
    // Walk frame boundaries; queued frames go in at the first one. Without a queue this is
    // one write of the whole chunk.
    let start = 0;
    let pos = 0;
    for (;;) {
      if (this.injectQueue.length && this.atBoundary()) {
        if (pos > start) this.writeOut(chunk.subarray(start, pos));
        start = pos;
        this.flushInjected();
      }
      if (pos >= chunk.length) break;
      pos = this.toNextBoundary(chunk, pos);
    }
    if (pos > start) this.writeOut(chunk.subarray(start, pos));
  }

  private atBoundary(): boolean {
    return this.outNeed === 0 && this.outHeadLen === 0;
  }

  /** Advances the server frame tracker to the next frame boundary or the chunk's end. */
  private toNextBoundary(chunk: Buffer, from: number): number {
    let pos = from;
    while (pos < chunk.length) {
      if (this.outNeed > 0) {
        const n = Math.min(this.outNeed, chunk.length - pos);
        this.outNeed -= n;
        pos += n;
        if (this.outNeed === 0) return pos;
        continue;
      }
      const n = Math.min(FRAME_HEADER_BYTES - this.outHeadLen, chunk.length - pos);
      chunk.copy(this.outHead, this.outHeadLen, pos, pos + n);
      this.outHeadLen += n;
      pos += n;
      if (this.outHeadLen === FRAME_HEADER_BYTES) {
        this.outHeadLen = 0;
        this.outNeed = this.outHead.readUIntBE(0, 3);
        if (this.outHead[3] === TYPE_DATA) {
          const sid = this.outHead.readUInt32BE(5) & 0x7fffffff;
          this.stats.dataToClient.set(sid, (this.stats.dataToClient.get(sid) ?? 0) + this.outNeed);
        }
        if (this.outNeed === 0) return pos;
      }
    }
    return pos;
  }

  private flushInjected(): void {
    if (this.frozenFlag || this.closed || !this.atBoundary()) return;
    const queued = this.injectQueue;
    this.injectQueue = [];
    for (const f of queued) this.writeOut(f);
    if (this.outEndPending) this.endOuter();
  }

  private writeOut(bytes: Buffer): void {
    if (this.outer.destroyed || this.outer.writableEnded) return;
    this.stats.bytesToClient += bytes.length;
    this.onToClient?.(bytes);
    this.outer.write(Buffer.from(bytes));
  }
}
