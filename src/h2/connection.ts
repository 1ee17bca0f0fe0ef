// Connection: owns one socket (TLS with ALPN h2; plain TCP only when a test asks for it),
// pumps bytes between it and the native Session, and turns session events into stream
// settlements. No policy about retries or liveness lives here: ping() measures and enforces
// its own deadline; deciding that a connection is dead is the caller's job.
//
// Inbound flow control is explicit (the session sends no WINDOW_UPDATE by itself): every DATA
// byte is given back through consumeStream(), at once for an ordinary stream, as its reader
// takes it for a stream in holdWindow() mode. The connection window is several stream windows
// (DEFAULT_CONNECTION_WINDOW): one stream whose reader stopped holds at most one stream window
// of it, so the downchannel and the other streams keep flowing. Hazard: as many paused streams
// as the ratio would shut the connection window for every stream; their readers must give the
// bytes back or drop them in bounded time (the CIC client's attachment stall timeout does).

import * as net from 'node:net';
import * as tls from 'node:tls';
import { TypedEmitter } from 'tiny-typed-emitter';
import { CicError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { systemClock, type Clock, type TimerHandle } from '../util/clock';
import { H2_ERROR, NGHTTP2_ERR, SETTINGS_ID, h2ErrorName } from './constants';
import { BodyMode, EV, loadBinding, type NativeBinding, type NativeSession, type NativeSessionOptions } from './native';
import { ClientStream, headersFromFlat, type Headers, type StreamOwner } from './stream';
import { connectError } from './tls-errors';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000; // TCP + TLS + the peer's first SETTINGS
export const DEFAULT_PING_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_SOCKET_BUFFER = 256 * 1024; // stop pulling frames above this many unsent bytes
export const DEFAULT_STREAM_HIGH_WATER = 64 * 1024; // write() returns false above this many queued body bytes
const SEND_CHUNK = 64 * 1024; // bytes drained from nghttp2 per socket write
const CLOSE_GRACE_MS = 2_000; // after close(), wait this long for our GOAWAY to flush
const READ_BUFFER_BYTES = 32 * 1024; // one reused socket read buffer per connection
/** Bytes a peer may send on one stream before its reader consumes any (SETTINGS_INITIAL_WINDOW_SIZE). */
export const DEFAULT_STREAM_WINDOW = 256 * 1024;
/** The connection window: four paused streams fit before every stream waits (see the head of this file). */
export const DEFAULT_CONNECTION_WINDOW = 4 * DEFAULT_STREAM_WINDOW;

export interface ConnectOptions {
  host: string;
  port?: number;
  /** TLS server name (SNI and certificate check); defaults to host unless host is an IP. */
  servername?: string;
  /** :authority; defaults to host[:port]. */
  authority?: string;
  /** Extra trusted CA certificates (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * 'add' (default): trust the system's roots plus `ca`. 'only': trust `ca` alone — it also
   * skips loading Node's bundled roots, which costs about 25 ms and 2 MB on first use.
   */
  caMode?: 'add' | 'only';
  /** Plain TCP with prior knowledge (tests and loopback benchmarks only). */
  plaintext?: boolean;
  connectTimeoutMs?: number;
  clock?: Clock;
  log?: Logger;
  limits?: NativeSessionOptions;
  maxSocketBuffer?: number;
  streamHighWater?: number;
  /** Path to the addon or the loaded module (see loadBinding). */
  binding?: string | NativeBinding;
  /** Custom socket factory (fault-injection proxies in tests); must return a connecting socket. */
  createSocket?: () => net.Socket;
}

export interface RequestOptions {
  method?: string;
  path: string;
  headers?: Record<string, string | number | undefined>;
  /** A complete body, or 'stream' to write it with stream.write()/end(). */
  body?: Uint8Array | string | 'stream';
  signal?: AbortSignal;
}

export interface GoawayInfo {
  lastStreamId: number;
  errorCode: number;
  debug: string;
}

export interface ConnectionEvents {
  goaway: (info: GoawayInfo) => void;
  settings: (settings: Record<number, number>) => void;
  /** The peer sent a frame nghttp2 rejected (the session may continue or end). */
  frameError: (info: { streamId: number; frameType: number; libError: number }) => void;
  /** A PING ACK whose payload matches no PING we sent. */
  unsolicitedPingAck: () => void;
  /** Emitted once; `err` is undefined for a clean close. */
  close: (err: CicError | undefined) => void;
}

export interface ConnectionStats {
  liveStreams: number;
  bufferedBodyBytes: number;
  pendingOutputBytes: number;
  outboundQueueFrames: number;
  socketBufferedBytes: number;
  bytesIn: number;
  bytesOut: number;
  pingsOutstanding: number;
}

interface PendingPing {
  resolve: (rttMs: number) => void;
  reject: (err: CicError) => void;
  timer: TimerHandle;
}

const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

export class Connection extends TypedEmitter<ConnectionEvents> implements StreamOwner {
  readonly authority: string;
  /** Set when the peer sent GOAWAY: no new streams. */
  goaway: GoawayInfo | undefined;
  /** Remote SETTINGS as received. */
  readonly remoteSettings: Record<number, number> = {};
  closed = false;
  closeError: CicError | undefined;

  private readonly socket: net.Socket;
  private session: NativeSession | null;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly streams = new Map<number, ClientStream>();
  private readonly pings = new Map<number, PendingPing>();
  private readonly maxSocketBuffer: number;
  private readonly streamHighWater: number;
  private pingSeq = 0;
  private flushScheduled = false;
  private waitingDrain = false;
  private drainWaiters = 0;
  private closing = false;
  private localGoawayCode: number | undefined;
  private lastFrameError: { streamId: number; frameType: number; libError: number } | undefined;
  private ready = false;
  private transportUp = false;
  private onReady: ((err?: CicError) => void) | undefined;
  private closeTimer: TimerHandle | undefined;
  private closedPromise: Promise<void> | undefined;
  private bytesIn = 0;
  private inputReused = false;
  private bytesOut = 0;

  /** Opens a connection; resolves once TLS (ALPN h2) is up and the peer's SETTINGS arrived. */
  static connect(options: ConnectOptions): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let conn: Connection;
      try {
        conn = new Connection(options, (err) => (err ? reject(err) : resolve(conn)));
      } catch (e) {
        reject(e);
      }
    });
  }

  private constructor(options: ConnectOptions, onReady: (err?: CicError) => void) {
    super();
    const binding = loadBinding(options.binding);
    const port = options.port ?? 443;
    const host = options.host;
    // An IPv6 literal is bracketed in :authority, on port 443 too. A colon can only be an IPv6
    // literal here (host names cannot hold one). Deliberately not net.isIPv6(): its first call
    // compiles a large pattern, several ms of a cold start.
    const hostPart = host.includes(':') ? `[${host}]` : host;
    this.authority = options.authority ?? (port === 443 ? hostPart : `${hostPart}:${port}`);
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    this.maxSocketBuffer = options.maxSocketBuffer ?? DEFAULT_MAX_SOCKET_BUFFER;
    this.streamHighWater = options.streamHighWater ?? DEFAULT_STREAM_HIGH_WATER;
    this.onReady = onReady;
    this.session = new binding.Session({ initialWindowSize: DEFAULT_STREAM_WINDOW, connectionWindowSize: DEFAULT_CONNECTION_WINDOW, ...options.limits });

    const target = `${hostPart}:${port}`;
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const connectTimer = this.clock.setTimeout(() => {
      this.fatal(new CicError('H2_CONNECT_TIMEOUT', `${target}: not connected within ${timeoutMs} ms`, { details: { stage: this.stage() } }));
    }, timeoutMs);
    this.onReady = (err) => {
      this.clock.clearTimeout(connectTimer);
      onReady(err);
    };

    // Reads go straight into one reused buffer (`onread`), skipping the Readable stream
    // machinery and a fresh allocation per read. Hazard: the buffer is overwritten by the next
    // read, so DATA handed to streams from it must be copied (dispatch does).
    const readBuf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const onread = { buffer: readBuf, callback: (n: number, buf: Uint8Array) => this.onSocketData(buf as Buffer, n, true) };
    if (options.createSocket) {
      this.socket = options.createSocket();
    } else if (options.plaintext) {
      this.socket = net.connect({ host, port, onread } as unknown as net.NetConnectOpts);
    } else {
      const ca = options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca : [options.ca];
      const servername = options.servername ?? (net.isIP(host) ? undefined : host);
      this.socket = tls.connect({
        host,
        port,
        servername,
        ALPNProtocols: ['h2'],
        minVersion: 'TLSv1.2',
        // Certificate and host name verification are always on; there is no switch.
        rejectUnauthorized: true,
        ca: ca && options.caMode !== 'only' ? [...tls.rootCertificates, ...ca] : ca,
        // An IP literal has no SNI, but the certificate must still name that IP.
        checkServerIdentity: (name, cert) => tls.checkServerIdentity(servername ?? name, cert),
        onread,
      } as tls.ConnectionOptions);
    }
    const socket = this.socket;
    socket.setNoDelay(true);
    const onConnected = () => {
      if (socket instanceof tls.TLSSocket && !options.plaintext && socket.alpnProtocol !== 'h2') {
        this.fatal(new CicError('H2_ALPN', `${target}: server did not negotiate h2 (ALPN ${String(socket.alpnProtocol)})`));
        return;
      }
      this.transportUp = true;
      this.log.debug('h2 transport up', { target });
      this.scheduleFlush();
    };
    if (socket instanceof tls.TLSSocket && !options.plaintext) socket.once('secureConnect', onConnected);
    else if (socket.connecting) socket.once('connect', onConnected);
    else queueMicrotask(onConnected);
    if (options.createSocket) socket.on('data', (buf: Buffer) => this.onSocketData(buf, buf.length, false));
    socket.on('drain', () => {
      this.waitingDrain = false;
      this.flush();
    });
    socket.on('error', (err) => {
      this.fatal(this.ready ? new CicError('H2_SOCKET_CLOSED', `${target}: ${err.message}`, { cause: err }) : connectError(err, target));
    });
    socket.on('close', () => this.onSocketClose());
  }

  private stage(): string {
    if (this.socket.connecting) return 'tcp';
    if (this.socket instanceof tls.TLSSocket && !this.socket.alpnProtocol) return 'tls';
    return 'settings';
  }

  // ---- requests --------------------------------------------------------------------------

  /**
   * Starts a request. Throws H2_CONNECTION_CLOSED on a closed connection and
   * ERR_INVALID_ARGUMENT for malformed headers; every other failure settles the stream.
   */
  request(req: RequestOptions): ClientStream {
    if (this.closed || this.closing || !this.session) {
      throw new CicError('H2_CONNECTION_CLOSED', 'request on a closed connection', { details: { path: req.path } });
    }
    const method = req.method ?? (req.body === undefined ? 'GET' : 'POST');
    const nv: string[] = [':method', method, ':scheme', 'https', ':authority', this.authority, ':path', req.path];
    if (req.headers) {
      for (const name in req.headers) {
        const value = req.headers[name];
        if (value === undefined) continue;
        if (!TOKEN.test(name) || CONNECTION_SPECIFIC.has(name)) {
          throw new CicError('ERR_INVALID_ARGUMENT', `invalid request header name ${JSON.stringify(name)}`);
        }
        const text = String(value);
        if (/[\r\n\0]/.test(text)) throw new CicError('ERR_INVALID_ARGUMENT', `invalid value for request header ${name}`);
        nv.push(name, text);
      }
    }
    const streamed = req.body === 'stream';
    const stream = new ClientStream(this, streamed);
    let rv: number;
    if (req.body === undefined) rv = this.session.request(nv, BodyMode.None);
    else if (streamed) rv = this.session.request(nv, BodyMode.Streamed);
    else rv = this.session.request(nv, BodyMode.Fixed, typeof req.body === 'string' ? Buffer.from(req.body) : (req.body as Uint8Array));
    if (rv < 0) {
      const err = this.submitError(rv, req.path);
      queueMicrotask(() => stream.fail(err));
      return stream;
    }
    stream.id = rv;
    this.streams.set(rv, stream);
    if (req.signal) {
      const signal = req.signal;
      if (signal.aborted) stream.cancel();
      else {
        const onAbort = () => stream.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
        stream.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
    this.scheduleFlush();
    return stream;
  }

  private submitError(rv: number, path: string): CicError {
    const details = { path, libError: rv };
    if (this.goaway || rv === NGHTTP2_ERR.START_STREAM_NOT_ALLOWED || rv === NGHTTP2_ERR.SESSION_CLOSING) {
      return new CicError('H2_GOAWAY', 'the connection is going away; the request was not sent', { retryable: true, details });
    }
    if (rv === NGHTTP2_ERR.STREAM_ID_NOT_AVAILABLE) return new CicError('H2_STREAM_LIMIT', 'stream ids exhausted on this connection', { details });
    if (rv === NGHTTP2_ERR.BUFFER_ERROR) return new CicError('H2_BACKPRESSURE', 'request body exceeds the session buffer limit', { details });
    return new CicError('H2_SESSION', `nghttp2 refused the request (${rv})`, { details });
  }

  /** @internal StreamOwner */
  writeBody(stream: ClientStream, chunk: Uint8Array | null, end: boolean): boolean {
    if (!this.session || stream.settled) return false;
    const rv = this.session.write(stream.id, chunk, end);
    if (rv === NGHTTP2_ERR.BUFFER_ERROR) {
      stream.fail(new CicError('H2_BACKPRESSURE', 'request body exceeds the session buffer limit', { details: { streamId: stream.id } }));
      this.cancelStream(stream, H2_ERROR.CANCEL);
      return false;
    }
    this.scheduleFlush();
    if (this.session.stats()[1]! >= this.streamHighWater) {
      if (!stream.needDrain) this.drainWaiters++;
      stream.needDrain = true;
      return false;
    }
    return true;
  }

  /** @internal StreamOwner */
  cancelStream(stream: ClientStream, code: number): void {
    if (!this.session || stream.id === 0) return;
    this.session.rstStream(stream.id, code);
    stream.fail(new CicError('H2_STREAM_RESET', `stream cancelled (${h2ErrorName(code)})`, { details: { streamId: stream.id, errorCode: code, local: true } }));
    this.scheduleFlush();
  }

  /** @internal StreamOwner */
  consumeStream(stream: ClientStream, bytes: number): void {
    this.consumeData(stream.id, bytes);
  }

  private consumeData(sid: number, bytes: number): void {
    if (!this.session || sid === 0 || bytes <= 0) return;
    // Negative only when the session is already failing; that surfaces through its events.
    if (this.session.consume(sid, bytes) === 0) this.scheduleFlush();
  }

  // ---- PING -----------------------------------------------------------------------------

  /**
   * Sends a PING and resolves with the round-trip time in ms, computed from the echoed
   * payload; rejects with H2_PING_TIMEOUT when no ACK arrives within `timeoutMs`.
   */
  ping(timeoutMs = DEFAULT_PING_TIMEOUT_MS): Promise<number> {
    if (this.closed || this.closing || !this.session) {
      return Promise.reject(new CicError('H2_CONNECTION_CLOSED', 'ping on a closed connection'));
    }
    // Payload: [sequence number, send time in µs modulo 2^32]. The sequence matches the ACK
    // to its PING; the timestamp gives the RTT from the payload alone.
    this.pingSeq = (this.pingSeq + 1) >>> 0 || 1;
    const seq = this.pingSeq;
    const sentUs = Math.round(this.clock.now() * 1000) >>> 0;
    const rv = this.session.ping(seq, sentUs);
    if (rv !== 0) return Promise.reject(new CicError('H2_SESSION', `nghttp2 refused the PING (${rv})`));
    this.scheduleFlush();
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pings.delete(seq);
        reject(new CicError('H2_PING_TIMEOUT', `no PING ACK within ${timeoutMs} ms`, { details: { timeoutMs } }));
      }, timeoutMs);
      this.pings.set(seq, { resolve, reject, timer });
    });
  }

  private onPingAck(seq: number, sentUs: number): void {
    const pending = this.pings.get(seq);
    if (!pending) {
      this.emit('unsolicitedPingAck');
      return;
    }
    this.pings.delete(seq);
    this.clock.clearTimeout(pending.timer);
    const nowUs = Math.round(this.clock.now() * 1000) >>> 0;
    pending.resolve(((nowUs - sentUs) >>> 0) / 1000);
  }

  // ---- byte pump -------------------------------------------------------------------------

  private onSocketData(buf: Buffer, length: number, reused: boolean): void {
    const session = this.session;
    if (!session || this.closed) return;
    this.bytesIn += length;
    const input = length === buf.length ? buf : buf.subarray(0, length);
    this.inputReused = reused;
    this.dispatch(session.receive(input), input);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    // One microtask: requests and writes made in the same tick leave in one socket write.
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const session = this.session;
    if (!session || this.closed) return;
    if (!this.transportUp) return; // the connect handler flushes
    while (this.socket.writableLength < this.maxSocketBuffer) {
      const out = session.send(SEND_CHUNK);
      const events = session.takeEvents();
      if (events) this.dispatch(events, null);
      if (out === null || this.closed) break;
      this.bytesOut += out.length;
      this.socket.write(out);
    }
    if (this.closed) return;
    if (this.socket.writableLength >= this.maxSocketBuffer) this.waitingDrain = true;
    if (this.drainWaiters > 0 && session.stats()[1]! < this.streamHighWater / 2) {
      this.drainWaiters = 0;
      for (const s of this.streams.values()) s.onDrain();
    }
    if (!session.wantRead() && !session.wantWrite() && !this.waitingDrain) this.sessionFinished();
  }

  /** nghttp2 wants neither to read nor to write: the session is over. */
  private sessionFinished(): void {
    if (this.closed) return;
    if (this.localGoawayCode !== undefined && this.localGoawayCode !== H2_ERROR.NO_ERROR && !this.closing) {
      const code = this.localGoawayCode;
      const flood = code === H2_ERROR.ENHANCE_YOUR_CALM;
      const fe = this.lastFrameError;
      this.fatal(new CicError(flood ? 'H2_FLOOD' : 'H2_PROTOCOL', `session ended: we sent GOAWAY ${h2ErrorName(code)}${fe ? ` after an invalid frame (type ${fe.frameType}, ${fe.libError})` : ''}`, {
        details: { errorCode: code, frameError: fe },
      }));
      return;
    }
    if (this.goaway && this.goaway.errorCode !== H2_ERROR.NO_ERROR) {
      this.fatal(new CicError('H2_GOAWAY_ERROR', `server sent GOAWAY ${h2ErrorName(this.goaway.errorCode)}`, { details: { ...this.goaway } }));
      return;
    }
    this.shutdown(undefined);
  }

  private dispatch(ev: unknown[], input: Buffer | null): void {
    for (let i = 0; i < ev.length && !this.closed; i += 4) {
      const kind = ev[i] as number;
      const sid = ev[i + 1] as number;
      switch (kind) {
        case EV.HEADERS:
          this.onHeaders(sid, ev[i + 2] as string[]);
          break;
        case EV.DATA: {
          const off = ev[i + 2] as number;
          const len = ev[i + 3] as number;
          const stream = this.streams.get(sid);
          if (!input || !stream) {
            this.consumeData(sid, len); // nobody reads it, but it used the connection window
            break;
          }
          const view = input.subarray(off, off + len);
          // The reused read buffer is overwritten by the next read: hand out a copy. A buffer
          // from a 'data' event is ours to keep: hand out a view (it keeps that buffer alive).
          stream.onData(this.inputReused ? Buffer.from(view) : view);
          break;
        }
        case EV.DATA_COPY: {
          const stream = this.streams.get(sid);
          if (stream) stream.onData(ev[i + 2] as Buffer);
          else this.consumeData(sid, ev[i + 3] as number);
          break;
        }
        case EV.END_STREAM:
          this.streams.get(sid)?.succeed();
          break;
        case EV.STREAM_CLOSE:
          this.onStreamClose(sid, ev[i + 2] as number);
          break;
        case EV.NOT_SENT:
          this.onNotSent(sid, ev[i + 2] as number);
          break;
        case EV.PING_ACK:
          this.onPingAck(ev[i + 2] as number, ev[i + 3] as number);
          break;
        case EV.GOAWAY:
          this.goaway = { lastStreamId: sid, errorCode: ev[i + 2] as number, debug: ev[i + 3] as string };
          this.log.info('h2 GOAWAY received', { lastStreamId: sid, errorCode: h2ErrorName(this.goaway.errorCode) });
          this.emit('goaway', this.goaway);
          break;
        case EV.GOAWAY_SENT:
          this.localGoawayCode ??= ev[i + 2] as number;
          break;
        case EV.SETTINGS: {
          const iv = ev[i + 2] as number[];
          for (let k = 0; k + 1 < iv.length; k += 2) this.remoteSettings[iv[k]!] = iv[k + 1]!;
          this.emit('settings', { ...this.remoteSettings });
          if (!this.ready) {
            this.ready = true;
            const cb = this.onReady;
            this.onReady = undefined;
            cb?.();
          }
          break;
        }
        case EV.HEADERS_TOO_LARGE: {
          const s = this.streams.get(sid);
          if (s) s.headersTooLarge = true;
          break;
        }
        case EV.FRAME_ERROR:
          this.lastFrameError = { streamId: sid, frameType: ev[i + 2] as number, libError: ev[i + 3] as number };
          this.log.debug('h2 invalid frame from peer', this.lastFrameError);
          this.emit('frameError', this.lastFrameError);
          break;
        case EV.SESSION_ERROR: {
          const lib = ev[i + 2] as number;
          const code = lib === NGHTTP2_ERR.FLOODED ? 'H2_FLOOD' : lib === NGHTTP2_ERR.TOO_MANY_CONTINUATIONS ? 'H2_HEADERS_TOO_LARGE' : 'H2_PROTOCOL';
          this.fatal(new CicError(code, `nghttp2: ${ev[i + 3] as string}`, { details: { libError: lib } }));
          break;
        }
        default:
          break; // SETTINGS_ACK, RST_STREAM: a close event carries what matters
      }
    }
  }

  private onHeaders(sid: number, nv: string[]): void {
    const stream = this.streams.get(sid);
    if (!stream) return;
    stream.sent = true;
    const headers: Headers = headersFromFlat(nv);
    const statusText = headers[':status'];
    if (statusText === undefined) {
      if (stream.head) stream.trailers = headers;
      return;
    }
    const status = Number(statusText);
    if (status >= 100 && status < 200) return; // informational; the final response follows
    delete headers[':status'];
    stream.onResponse({ status, headers });
  }

  private onStreamClose(sid: number, code: number): void {
    const stream = this.streams.get(sid);
    if (!stream) return;
    this.streams.delete(sid);
    if (stream.settled) return;
    const details = { streamId: sid, errorCode: code };
    if (stream.headersTooLarge) {
      stream.fail(new CicError('H2_HEADERS_TOO_LARGE', 'response headers exceed the header list limit', { details }));
    } else if (this.goaway && sid > this.goaway.lastStreamId) {
      stream.fail(new CicError('H2_GOAWAY', 'the server went away before processing the stream', { retryable: true, details }));
    } else if (code === H2_ERROR.REFUSED_STREAM) {
      stream.fail(new CicError('H2_REFUSED_STREAM', 'the server refused the stream', { retryable: true, details }));
    } else {
      stream.fail(new CicError('H2_STREAM_RESET', `stream reset by the peer (${h2ErrorName(code)})`, { details }));
    }
  }

  private onNotSent(sid: number, lib: number): void {
    const stream = this.streams.get(sid);
    if (!stream) return;
    this.streams.delete(sid);
    stream.fail(this.submitError(lib, ''));
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /**
   * Closes the connection: a GOAWAY is sent, every unfinished stream and PING settles with
   * H2_CONNECTION_CLOSED, and the socket ends. Idempotent; resolves when the socket closed.
   */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.closedPromise = new Promise((resolve) => {
      if (this.closed) return resolve();
      this.once('close', () => resolve());
    });
    if (!this.closed) {
      this.closing = true;
      const err = new CicError('H2_CONNECTION_CLOSED', 'the connection was closed locally');
      this.failAll(err);
      if (this.session && this.ready) {
        this.session.goaway(H2_ERROR.NO_ERROR, true);
        this.flush();
      }
      if (!this.ready) {
        this.onReady?.(err);
        this.onReady = undefined;
      }
      this.socket.end();
      this.closeTimer = this.clock.setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    }
    return this.closedPromise;
  }

  /** Closes at once without a GOAWAY (the peer is presumed dead). */
  destroy(err?: CicError): void {
    this.fatal(err ?? new CicError('H2_CONNECTION_CLOSED', 'the connection was destroyed locally'));
  }

  private fatal(err: CicError): void {
    if (this.closed) return;
    this.closeError ??= err;
    if (!this.ready) {
      const cb = this.onReady;
      this.onReady = undefined;
      cb?.(err);
    }
    this.socket.destroy();
    // Streams fail with the fatal error itself, after the connection already reads as
    // closed: a stream's owner must not try to reuse a connection that is going down.
    this.shutdown(err, err);
  }

  private failAll(err: CicError): void {
    for (const s of this.streams.values()) s.fail(err);
    this.streams.clear();
    for (const p of this.pings.values()) {
      this.clock.clearTimeout(p.timer);
      p.reject(err);
    }
    this.pings.clear();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    const err = this.closing
      ? undefined
      : (this.closeError ?? new CicError('H2_SOCKET_CLOSED', 'the socket closed', { details: { bytesIn: this.bytesIn } }));
    if (!this.ready) {
      const cb = this.onReady;
      this.onReady = undefined;
      cb?.(err ?? new CicError('H2_CONNECTION_CLOSED', 'closed before the connection was ready'));
    }
    this.shutdown(err, err ?? new CicError('H2_CONNECTION_CLOSED', 'the connection was closed locally'));
  }

  private shutdown(err: CicError | undefined, streamErr?: CicError): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError ??= err;
    const remaining = streamErr ?? (this.goaway ? new CicError('H2_GOAWAY', 'the connection went away', { retryable: true }) : (err ?? new CicError('H2_CONNECTION_CLOSED', 'the session ended')));
    this.failAll(remaining);
    this.session?.close();
    this.session = null;
    this.clock.clearTimeout(this.closeTimer);
    if (!this.socket.destroyed) {
      this.socket.end();
      this.closeTimer = this.clock.setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      this.socket.once('close', () => this.clock.clearTimeout(this.closeTimer));
    }
    this.log.debug('h2 connection closed', { error: err?.code });
    this.emit('close', err);
  }

  stats(): ConnectionStats {
    const s = this.session?.stats() ?? [0, 0, 0, 0];
    return {
      liveStreams: s[0]!,
      bufferedBodyBytes: s[1]!,
      pendingOutputBytes: s[2]!,
      outboundQueueFrames: s[3]!,
      socketBufferedBytes: this.socket.writableLength,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      pingsOutstanding: this.pings.size,
    };
  }

  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says otherwise). */
  get maxConcurrentStreams(): number {
    return this.remoteSettings[SETTINGS_ID.MAX_CONCURRENT_STREAMS] ?? Infinity;
  }
}
