// CIC emulator for the tests, the demo and `npm run emulator`: PROTOCOL.md §2 on 127.0.0.1
// over real TLS (ALPN h2, the test PKI), with fault injection for the client's liveness and
// reconnect logic.
//
// Layers, per connection:
//   net.Server (pauseOnConnect)   accepts TCP; can hold a new socket un-handshaken (frozen),
//        │                        close it at once (closeOnAccept) or not listen (refuse)
//   tls.Server (never listens)    terminates TLS: raw sockets are handed to it by 'connection'
//        │
//   FrameRelay                    drops client PINGs (withheld ACKs), freezes both directions,
//        │                        injects frames node:http2 will not send
//   http2.Server (plaintext)      the HTTP/2 semantics, fed the relay's Duplex
//
// One device per emulator: "the" downchannel is the single current GET /v1/directives.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from '../../src/log';
import { testPki } from '../support/certs';
import { goaway as goawayFrame, rstStream as rstStreamFrame } from '../support/frames';
import { FrameRelay } from './frame-relay';
import { BINARY_PART, JSON_PART, MultipartParser, MultipartWriter, boundaryOf, dispositionName } from './multipart';

export const DEFAULT_DOWNCHANNEL_WINDOW_MS = 1_000; // a second GET sooner than this after the current one → 429
export const DEFAULT_STOP_CAPTURE_AFTER_BYTES = 6_400; // 200 ms of 16 kHz 16-bit mono audio
const MAX_METADATA_BYTES = 1024 * 1024;
const H2_INTERNAL_ERROR = 0x2;

export type EmulatorLog = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface CicEmulatorOptions {
  /** Bearer token check (e.g. the auth emulator's isValidAccessToken). Default: any non-empty token. */
  validateToken?: (token: string) => boolean;
  /** User-Agent check. Default: any non-empty value. A failure answers 400. */
  validateUserAgent?: (userAgent: string) => boolean;
  /** Listening port on 127.0.0.1 (default: an ephemeral one). */
  port?: number;
  host?: string;
  /** Server certificate and key (PEM); default the test PKI's localhost/127.0.0.1 pair. */
  cert?: string;
  key?: string;
  /** The CA clients should trust (returned as `emu.ca`); default the test PKI's CA. */
  ca?: string;
  /** A GET /v1/directives sooner than this after the current downchannel opened gets 429. */
  downchannelWindowMs?: number;
  /** SpeechRecognizer.Recognize: StopCapture goes out once this many audio bytes arrived. */
  stopCaptureAfterBytes?: number;
  /**
   * Where that StopCapture goes: on the downchannel (default, as PROTOCOL.md describes CIC),
   * or first on the event's own response stream (200 answered while the upload goes on, the
   * rest of the answer following once the body ended), as AVS does.
   */
  stopCaptureOn?: 'downchannel' | 'event';
  /** How a downchannel is closed when a newer one replaces it: END_STREAM (default) or RST_STREAM. */
  replacedDownchannel?: 'end' | 'rst';
  /** Clock for the 429 window (ms); default Date.now. */
  now?: () => number;
  log?: EmulatorLog;
  /** HTTP/2 SETTINGS the server announces. */
  settings?: http2.Settings;
}

export interface DirectiveHeader {
  namespace: string;
  name: string;
  messageId?: string;
  dialogRequestId?: string;
  [k: string]: unknown;
}

/** `{directive: {header, payload}}` or the bare `{header, payload}`. */
export type DirectiveInput = { directive: { header: DirectiveHeader; payload?: unknown } } | { header: DirectiveHeader; payload?: unknown };

export interface Attachment {
  /** Without angle brackets; the directive's payload links it as `cid:<contentId>`. */
  contentId: string;
  data: Buffer | string;
  contentType?: string;
}

export interface EventRecord {
  /** 1-based arrival order. */
  seq: number;
  namespace: string;
  name: string;
  messageId: string;
  dialogRequestId: string | undefined;
  /** The bearer token the event came with. */
  token: string;
  payload: unknown;
  context: unknown;
  /** Audio part bytes received so far (final once bodyComplete). */
  audioBytes: number;
  bodyComplete: boolean;
  /** SpeechRecognizer.StopCapture went out (on the downchannel or the event's stream) for this event. */
  stopCaptureSent: boolean;
  /** Audio bytes received when the StopCapture went out. */
  audioBytesAtStopCapture: number | undefined;
  /** Status the event was answered with (undefined while unanswered or held). */
  status: number | undefined;
  connectionId: number;
  streamId: number;
  receivedAt: number;
}

export interface EmulatorConnection {
  id: number;
  remotePort: number;
  socket: net.Socket;
  tls: tls.TLSSocket | undefined;
  relay: FrameRelay | undefined;
  session: http2.ServerHttp2Session | undefined;
  /** PING frames (not ACKs) this client sent. */
  pings: number;
  closed: boolean;
}

export interface DownchannelInfo {
  id: number;
  connectionId: number;
  streamId: number;
  openedAt: number;
  directivesSent: number;
}

export interface EventContext {
  event: EventRecord;
  emulator: CicEmulator;
  /** Resolves when the whole request body arrived; rejects if the stream died first. */
  bodyEnded: Promise<void>;
  /** Resolves with the audio byte count once it reaches `n`, or when the audio part or body ends. */
  audio(n: number): Promise<number>;
  /** The audio part has started and not yet ended. */
  readonly audioOpen: boolean;
  /** Sends a directive (and attachments) on the current downchannel; false if there is none. */
  pushDirective(directive: DirectiveInput, attachments?: Attachment[]): boolean;
  /**
   * Starts (or continues) the 200 answer on the event's own stream with these parts, while the
   * request body may still be arriving; the responder's final reply (directives) completes it.
   * False when the stream is gone.
   */
  answerEarly(directives: DirectiveInput[], attachments?: Attachment[]): boolean;
}

export type EventReply =
  /** A bare status; >= 400 carries a System.Exception body unless `body` is given. */
  | { status: number; description?: string; body?: string | Buffer; contentType?: string }
  /** 200 multipart/related: the directives, then the attachments. */
  | { directives: DirectiveInput[]; attachments?: Attachment[] }
  /** Never answer (the event stays in flight). */
  | 'hold';

export type EventResponder = (ctx: EventContext) => EventReply | Promise<EventReply>;

export interface EmulatorCounters {
  /** TCP connections accepted (including ones closed at once or held while frozen). */
  connectionsAccepted: number;
  /** Connections closed right after accept (closeOnAccept). */
  connectionsClosedOnAccept: number;
  /** TLS handshakes completed = HTTP/2 sessions started. */
  sessions: number;
  requests: number;
  downchannelsOpened: number;
  /** Downchannels the emulator closed because a newer one replaced them. */
  downchannelsReplaced: number;
  directivesPushed: number;
  eventsReceived: number;
  /** Events left unanswered: by holdEvents, or by a responder's 'hold'. */
  eventsHeld: number;
  /** HTTP/2 PING frames (not ACKs) from clients, answered or not. */
  pings: number;
  /** PINGs dropped unanswered while withholdPingAcks was on. */
  pingsWithheld: number;
  /** GET /ping requests, answered or held. */
  pingRequests: number;
  /** GET /ping requests left unanswered while holdPingRequests was on. */
  pingRequestsHeld: number;
  goawaysSent: number;
  /** Responses by status code. */
  statuses: Record<number, number>;
  badRequest: number; // 400
  unauthorized: number; // 401
  noDownchannel: number; // 412
  tooManyRequests: number; // 429
}

export interface GoawayOptions {
  /** HTTP/2 error code; default NO_ERROR. */
  code?: number;
  /** Default: the last stream the server processed. 0 is sent as a hand-made frame. */
  lastStreamId?: number;
  debug?: string;
  /** Then close the session gracefully (it ends once its open streams end). Default false. */
  close?: boolean;
  /** Only this connection (default: every live one). */
  connectionId?: number;
}

interface Downchannel extends DownchannelInfo {
  conn: EmulatorConnection;
  stream: http2.ServerHttp2Stream;
  writer: MultipartWriter;
}

export function directive(namespace: string, name: string, payload: unknown = {}, dialogRequestId?: string): DirectiveInput {
  const header: DirectiveHeader = { namespace, name, messageId: randomUUID() };
  if (dialogRequestId !== undefined) header.dialogRequestId = dialogRequestId;
  return { directive: { header, payload } };
}

function normalize(d: DirectiveInput): { directive: { header: DirectiveHeader; payload: unknown } } {
  const inner = 'directive' in d ? d.directive : d;
  return { directive: { header: { ...inner.header, messageId: inner.header.messageId ?? randomUUID() }, payload: inner.payload ?? {} } };
}

function exceptionBody(status: number, description: string): string {
  return JSON.stringify({
    directive: { header: { namespace: 'System', name: 'Exception', messageId: randomUUID() }, payload: { code: String(status), description } },
  });
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  412: 'Precondition Failed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export class CicEmulator extends EventEmitter {
  /** Every event that reached event handling (authorized, on the downchannel's connection). */
  readonly events: EventRecord[] = [];
  /** Every authorized-path request in arrival order, with the bearer token it carried. */
  readonly requests: Array<{ path: string; method: string; token: string | undefined; accepted: boolean }> = [];
  readonly counters: EmulatorCounters = {
    connectionsAccepted: 0,
    connectionsClosedOnAccept: 0,
    sessions: 0,
    requests: 0,
    downchannelsOpened: 0,
    downchannelsReplaced: 0,
    directivesPushed: 0,
    eventsReceived: 0,
    eventsHeld: 0,
    pings: 0,
    pingsWithheld: 0,
    pingRequests: 0,
    pingRequestsHeld: 0,
    goawaysSent: 0,
    statuses: {},
    badRequest: 0,
    unauthorized: 0,
    noDownchannel: 0,
    tooManyRequests: 0,
  };
  /** Live connections by id. */
  readonly connections = new Map<number, EmulatorConnection>();
  /** Mutable at runtime. */
  readonly config: { downchannelWindowMs: number; stopCaptureAfterBytes: number; stopCaptureOn: 'downchannel' | 'event'; replacedDownchannel: 'end' | 'rst' };
  readonly ca: string;
  port = 0;

  private readonly opts: CicEmulatorOptions;
  private readonly now: () => number;
  private readonly log: EmulatorLog | undefined;
  private readonly listener: net.Server;
  private readonly tlsFront: tls.Server;
  private readonly h2: http2.Http2Server;
  private readonly byRemotePort = new Map<number, EmulatorConnection>();
  private readonly responders = new Map<string, EventResponder>();
  private readonly statusScripts = new Map<string, Array<{ status: number; left: number }>>();
  private readonly seenTokens = new Set<string>();
  private readonly expiredTokens = new Set<string>();
  private allTokensExpired = false;
  private current: Downchannel | undefined;
  private nextConnId = 1;
  private nextDownchannelId = 1;
  private frozen = false;
  private heldSockets = new Set<net.Socket>();
  private withholding = false;
  private holdingEvents = false;
  private holdingPingRequests = false;
  private goawayAtConnect = false;
  private closingOnAccept = false;
  private refusing = false;
  private stopped = false;
  private pendingConn: EmulatorConnection | undefined;

  static async start(options: CicEmulatorOptions = {}): Promise<CicEmulator> {
    const emu = new CicEmulator(options);
    await emu.listen(options.port ?? 0);
    return emu;
  }

  private constructor(options: CicEmulatorOptions) {
    super();
    this.opts = options;
    const pki = testPki();
    this.ca = options.ca ?? pki.ca;
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.config = {
      downchannelWindowMs: options.downchannelWindowMs ?? DEFAULT_DOWNCHANNEL_WINDOW_MS,
      stopCaptureAfterBytes: options.stopCaptureAfterBytes ?? DEFAULT_STOP_CAPTURE_AFTER_BYTES,
      stopCaptureOn: options.stopCaptureOn ?? 'downchannel',
      replacedDownchannel: options.replacedDownchannel ?? 'end',
    };
    this.responders.set('SpeechRecognizer.Recognize', (ctx) => this.recognizeSpeech(ctx));
    this.responders.set('TextRecognizer.Recognize', async (ctx) => {
      await ctx.bodyEnded;
      return speakReply(ctx.event.dialogRequestId);
    });

    this.h2 = http2.createServer({ settings: { maxConcurrentStreams: 100, ...options.settings } });
    this.h2.on('session', (session: http2.ServerHttp2Session) => this.onSession(session));

    this.tlsFront = tls.createServer({
      key: options.key ?? pki.server.key,
      cert: options.cert ?? pki.server.cert,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
    });
    this.tlsFront.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket));
    this.tlsFront.on('tlsClientError', (_err, socket) => socket.destroy());

    // pauseOnConnect: nothing is read before TLS takes the socket over, so a socket can be
    // held un-handshaken (frozen) without losing the ClientHello.
    this.listener = net.createServer({ pauseOnConnect: true }, (socket) => this.onAccept(socket));
  }

  /** https://127.0.0.1:<port>, or https://[::1]:<port> for an IPv6 host. */
  get url(): string {
    const host = this.opts.host ?? '127.0.0.1';
    return `https://${net.isIPv6(host) ? `[${host}]` : host}:${this.port}`;
  }

  /** The current downchannel, if any. */
  get downchannel(): DownchannelInfo | undefined {
    const d = this.current;
    return d && { id: d.id, connectionId: d.connectionId, streamId: d.streamId, openedAt: d.openedAt, directivesSent: d.directivesSent };
  }

  // ---- controls -----------------------------------------------------------------------

  /** Drop client PING frames (no ACK goes back) while on; counted in pingsWithheld. */
  withholdPingAcks(on: boolean): void {
    this.withholding = on;
  }

  /**
   * While on, every event is read to its end and never answered, whatever its responder
   * (counted in eventsHeld): a server that accepted the request and went quiet.
   */
  holdEvents(on: boolean): void {
    this.holdingEvents = on;
  }

  /** While on, GET /ping is accepted and never answered (counted in pingRequestsHeld). */
  holdPingRequests(on: boolean): void {
    this.holdingPingRequests = on;
  }

  /**
   * A frozen link: established connections neither deliver nor send a byte (held, both ways,
   * and delivered in order on unfreeze) and new TCP connections are accepted but never get a
   * TLS handshake until unfreeze. Every socket stays open.
   */
  freeze(on: boolean): void {
    this.frozen = on;
    for (const c of this.connections.values()) c.relay?.freeze(on);
    if (!on) {
      const held = [...this.heldSockets];
      this.heldSockets.clear();
      for (const s of held) if (!s.destroyed) this.startTls(s);
    }
  }

  /** Sends GOAWAY on the live connection(s); returns how many got one. */
  goaway(options: GoawayOptions = {}): number {
    const code = options.code ?? 0;
    let n = 0;
    for (const c of this.connections.values()) {
      if (options.connectionId !== undefined && c.id !== options.connectionId) continue;
      const s = c.session;
      if (!s || s.closed || s.destroyed) continue;
      const debug = options.debug ? Buffer.from(options.debug) : undefined;
      // node:http2 turns last-stream-id 0 into "the last processed stream"; a literal 0 is
      // sent by hand through the relay at a frame boundary. Closing then ends the TLS side
      // directly: node:http2's close() would send a second GOAWAY with a higher
      // last-stream-id, which the client must treat as a protocol error.
      if (options.lastStreamId === 0 && c.relay) {
        c.relay.inject(goawayFrame(0, code, options.debug ?? ''));
        if (options.close) c.relay.endToClient();
      } else {
        s.goaway(code, options.lastStreamId ?? 0, debug);
        if (options.close) s.close();
      }
      this.counters.goawaysSent++;
      n++;
    }
    this.log?.debug('cic-emu goaway', { connections: n, code });
    return n;
  }

  /** Answers every new connection with SETTINGS, then GOAWAY (NO_ERROR, last-stream-id 0), then a close. */
  goawayOnConnect(on: boolean): void {
    this.goawayAtConnect = on;
  }

  /** Resets the current downchannel (default INTERNAL_ERROR); false if there is none. */
  resetDownchannel(code = H2_INTERNAL_ERROR): boolean {
    const d = this.current;
    if (!d) return false;
    this.current = undefined;
    this.rst(d, code);
    return true;
  }

  /** Ends the current downchannel cleanly (close delimiter, END_STREAM); false if there is none. */
  endDownchannel(): boolean {
    const d = this.current;
    if (!d) return false;
    this.current = undefined;
    this.closeDownchannel(d, 'end');
    return true;
  }

  /** Destroys the TCP socket(s) at once: no GOAWAY, no TLS close_notify. */
  dropSocket(connectionId?: number): number {
    let n = 0;
    for (const c of [...this.connections.values()]) {
      if (connectionId !== undefined && c.id !== connectionId) continue;
      c.tls?.destroy();
      c.socket.destroy();
      n++;
    }
    return n;
  }

  /**
   * Expires tokens. 'seen' (default): every token presented so far is refused from now on,
   * so a client that refreshes gets through with its new token. 'all': every token is
   * refused until restoreTokens().
   */
  expireTokens(mode: 'seen' | 'all' = 'seen'): void {
    if (mode === 'all') this.allTokensExpired = true;
    else for (const t of this.seenTokens) this.expiredTokens.add(t);
  }

  restoreTokens(): void {
    this.allTokensExpired = false;
    this.expiredTokens.clear();
  }

  /** The next `count` requests on `path` (e.g. '/v1/events') are answered with `status`. */
  respondStatus(path: string, status: number, count = 1): void {
    const list = this.statusScripts.get(path) ?? [];
    list.push({ status, left: count });
    this.statusScripts.set(path, list);
  }

  /** Accept TCP connections and close them at once while on. */
  closeOnAccept(on: boolean): void {
    this.closingOnAccept = on;
  }

  /** Stop listening (connections are refused: ECONNREFUSED) while on; the port is kept for later. */
  async refuseConnections(on: boolean): Promise<void> {
    if (on === this.refusing || this.stopped) return;
    this.refusing = on;
    if (on) await new Promise<void>((resolve) => this.listener.close(() => resolve()));
    else await this.listen(this.port);
  }

  /** Custom responder for events `Namespace.Name` ('*' = every event without one); undefined removes it. */
  setResponder(qualifiedName: string, responder: EventResponder | undefined): void {
    if (responder) this.responders.set(qualifiedName, responder);
    else this.responders.delete(qualifiedName);
  }

  /** Sends a directive (plus attachments) on the current downchannel; false if there is none. */
  pushDirective(d: DirectiveInput, attachments: Attachment[] = []): boolean {
    const dc = this.current;
    if (!dc || dc.stream.destroyed || dc.stream.closed) return false;
    const parts: Buffer[] = [dc.writer.part({ 'Content-Type': JSON_PART }, JSON.stringify(normalize(d)))];
    for (const a of attachments) parts.push(dc.writer.part(attachmentHeaders(a), a.data));
    dc.stream.write(Buffer.concat(parts));
    dc.directivesSent++;
    this.counters.directivesPushed++;
    return true;
  }

  /** Resolves with the next emitted `name` whose argument satisfies `pred` (bounded). */
  next<T = unknown>(name: 'event' | 'eventComplete' | 'downchannel' | 'connection' | 'session' | 'response', pred: (v: T) => boolean = () => true, timeoutMs = 5_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(name, on);
        reject(new Error(`cic emulator: no '${name}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (v: T) => {
        if (!pred(v)) return;
        clearTimeout(timer);
        this.off(name, on);
        resolve(v);
      };
      this.on(name, on);
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.heldSockets) s.destroy();
    this.heldSockets.clear();
    for (const c of this.connections.values()) {
      c.session?.destroy();
      c.relay?.destroy();
      c.tls?.destroy();
      c.socket.destroy();
    }
    this.current = undefined;
    if (this.listener.listening) await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  // ---- connections ----------------------------------------------------------------------

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.listener.once('error', onError);
      this.listener.listen(port, this.opts.host ?? '127.0.0.1', () => {
        this.listener.off('error', onError);
        this.port = (this.listener.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private onAccept(socket: net.Socket): void {
    this.counters.connectionsAccepted++;
    socket.on('error', () => {});
    // As HTTP/2 servers do: with Nagle on, a small write waiting for the ACK of the previous one
    // meets the client's delayed ACK and leaves up to 40 ms late.
    socket.setNoDelay(true);
    if (this.stopped || this.closingOnAccept) {
      if (this.closingOnAccept) this.counters.connectionsClosedOnAccept++;
      socket.destroy();
      return;
    }
    if (this.frozen) {
      this.heldSockets.add(socket);
      socket.once('close', () => this.heldSockets.delete(socket));
      return;
    }
    this.startTls(socket);
  }

  private startTls(socket: net.Socket): void {
    const conn: EmulatorConnection = {
      id: this.nextConnId++,
      remotePort: socket.remotePort ?? 0,
      socket,
      tls: undefined,
      relay: undefined,
      session: undefined,
      pings: 0,
      closed: false,
    };
    this.connections.set(conn.id, conn);
    this.byRemotePort.set(conn.remotePort, conn);
    socket.once('close', () => {
      conn.closed = true;
      this.connections.delete(conn.id);
      if (this.byRemotePort.get(conn.remotePort) === conn) this.byRemotePort.delete(conn.remotePort);
    });
    this.emit('connection', conn);
    this.tlsFront.emit('connection', socket);
  }

  private onSecure(socket: tls.TLSSocket): void {
    const conn = this.byRemotePort.get(socket.remotePort ?? -1);
    if (!conn || this.stopped || socket.alpnProtocol !== 'h2') {
      socket.destroy();
      return;
    }
    conn.tls = socket;
    socket.on('error', () => {});
    const relay = new FrameRelay(socket, {
      clientPing: () => {
        conn.pings++;
        this.counters.pings++;
        if (this.withholding) this.counters.pingsWithheld++;
        return this.withholding;
      },
    });
    conn.relay = relay;
    if (this.frozen) relay.freeze(true); // frozen during the handshake
    this.pendingConn = conn;
    try {
      this.h2.emit('connection', relay.inner); // 'session' fires synchronously
    } finally {
      this.pendingConn = undefined;
    }
  }

  private onSession(session: http2.ServerHttp2Session): void {
    const conn = this.pendingConn;
    if (!conn) {
      session.destroy();
      return;
    }
    conn.session = session;
    this.counters.sessions++;
    session.on('error', (err) => this.log?.debug('cic-emu session error', { connection: conn.id, error: err.message }));
    session.on('stream', (stream, headers) => this.onStream(conn, stream, headers));
    session.on('close', () => {
      if (this.current?.conn === conn) this.current = undefined;
    });
    this.log?.debug('cic-emu session', { connection: conn.id });
    this.emit('session', conn);
    if (this.goawayAtConnect) {
      session.goaway(0, 0);
      this.counters.goawaysSent++;
      session.close();
    }
  }

  // ---- requests -------------------------------------------------------------------------

  private onStream(conn: EmulatorConnection, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    this.counters.requests++;
    stream.on('error', () => {});
    const path = String(headers[':path'] ?? '').split('?')[0]!;
    const method = String(headers[':method'] ?? '');

    const script = this.statusScripts.get(path)?.[0];
    if (script) {
      if (--script.left <= 0) this.statusScripts.get(path)!.shift();
      stream.resume();
      this.sendStatus(stream, script.status, 'scripted by the test');
      return;
    }
    const ua = headers['user-agent'];
    if (typeof ua !== 'string' || !ua || !(this.opts.validateUserAgent?.(ua) ?? true)) {
      stream.resume();
      this.sendStatus(stream, 400, 'missing or malformed User-Agent');
      return;
    }
    const auth = headers.authorization;
    const token = typeof auth === 'string' ? /^Bearer +(\S+)\s*$/i.exec(auth)?.[1] : undefined;
    const accepted = !!token && this.tokenValid(token);
    this.requests.push({ path: String(path), method: String(method), token, accepted });
    if (!accepted) {
      stream.resume();
      this.sendStatus(stream, 401, token ? 'the access token is invalid or expired' : 'missing Authorization: Bearer token');
      return;
    }

    if (path === '/ping') {
      stream.resume();
      if (method !== 'GET') return this.sendStatus(stream, 405, 'GET only');
      this.counters.pingRequests++;
      if (this.holdingPingRequests) return void this.counters.pingRequestsHeld++;
      return this.sendStatus(stream, 204);
    }
    if (path === '/v1/directives') {
      stream.resume();
      if (method !== 'GET') return this.sendStatus(stream, 405, 'GET only');
      return this.openDownchannel(conn, stream);
    }
    if (path === '/v1/events') {
      if (method !== 'POST') {
        stream.resume();
        return this.sendStatus(stream, 405, 'POST only');
      }
      return this.onEvent(conn, stream, headers, token);
    }
    stream.resume();
    this.sendStatus(stream, 404, `no such path ${path}`);
  }

  private tokenValid(token: string): boolean {
    this.seenTokens.add(token);
    if (this.allTokensExpired || this.expiredTokens.has(token)) return false;
    return this.opts.validateToken ? this.opts.validateToken(token) : token.length > 0;
  }

  private countStatus(status: number): void {
    const c = this.counters;
    c.statuses[status] = (c.statuses[status] ?? 0) + 1;
    if (status === 400) c.badRequest++;
    else if (status === 401) c.unauthorized++;
    else if (status === 412) c.noDownchannel++;
    else if (status === 429) c.tooManyRequests++;
  }

  private sendStatus(stream: http2.ServerHttp2Stream, status: number, description?: string): void {
    if (stream.destroyed || stream.headersSent) return;
    this.countStatus(status);
    this.emit('response', { streamId: stream.id, status });
    if (status < 300) {
      stream.respond({ ':status': status }, { endStream: true });
      return;
    }
    stream.respond({ ':status': status, 'content-type': 'application/json; charset=UTF-8' });
    stream.end(exceptionBody(status, description ?? STATUS_TEXT[status] ?? `HTTP ${status}`));
  }

  // ---- downchannel ------------------------------------------------------------------------

  private openDownchannel(conn: EmulatorConnection, stream: http2.ServerHttp2Stream): void {
    const now = this.now();
    const prev = this.current;
    if (prev && !prev.stream.closed && !prev.stream.destroyed) {
      if (now - prev.openedAt < this.config.downchannelWindowMs) {
        this.sendStatus(stream, 429, 'a downchannel was opened too recently');
        return;
      }
      // CIC: "the existing downchannel will be closed".
      this.counters.downchannelsReplaced++;
      this.closeDownchannel(prev, this.config.replacedDownchannel);
    }
    const writer = new MultipartWriter();
    const dc: Downchannel = {
      id: this.nextDownchannelId++,
      connectionId: conn.id,
      streamId: stream.id ?? 0,
      openedAt: now,
      directivesSent: 0,
      conn,
      stream,
      writer,
    };
    this.current = dc;
    stream.on('close', () => {
      if (this.current === dc) this.current = undefined;
    });
    this.countStatus(200);
    this.counters.downchannelsOpened++;
    stream.respond({ ':status': 200, 'content-type': writer.contentType('related') });
    stream.write(Buffer.concat([writer.open(), writer.part({ 'Content-Type': JSON_PART }, JSON.stringify(directive('Clova', 'Hello')))]));
    this.log?.debug('cic-emu downchannel', { connection: conn.id, stream: dc.streamId });
    this.emit('downchannel', this.downchannel);
  }

  private closeDownchannel(d: Downchannel, how: 'end' | 'rst'): void {
    if (this.current === d) this.current = undefined;
    if (d.stream.closed || d.stream.destroyed) return;
    if (how === 'rst') this.rst(d, http2.constants.NGHTTP2_CANCEL);
    else d.stream.end(d.writer.close());
  }

  /**
   * RST_STREAM with exactly `code` and nothing before it. node:http2's stream.close(code)
   * first ends the stream cleanly (END_STREAM) for any code but CANCEL, so the frame is
   * sent by hand through the relay; node:http2 then forgets the stream with CANCEL (that
   * second RST_STREAM reaches a stream the client has already closed, which it ignores).
   */
  private rst(d: Downchannel, code: number): void {
    if (d.stream.closed || d.stream.destroyed) return;
    if (d.conn.relay && d.streamId) d.conn.relay.inject(rstStreamFrame(d.streamId, code));
    d.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  // ---- events -------------------------------------------------------------------------------

  private onEvent(conn: EmulatorConnection, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, token: string): void {
    if (!this.current || this.current.conn !== conn) {
      stream.resume();
      this.sendStatus(stream, 412, 'no downchannel on this connection');
      return;
    }
    const boundary = boundaryOf(headers['content-type']);
    if (!boundary) {
      stream.resume();
      this.sendStatus(stream, 400, 'the event body must be multipart with a boundary');
      return;
    }

    let record: EventRecord | undefined;
    let audioBytes = 0;
    let audioOpen = false;
    let bodyDone = false;
    let failed = false;
    let part: 'metadata' | 'audio' | 'other' = 'other';
    let meta: Buffer[] = [];
    let metaBytes = 0;
    const audioWaiters: Array<{ n: number; resolve: (v: number) => void }> = [];
    const wakeAudio = (all: boolean) => {
      for (let i = audioWaiters.length - 1; i >= 0; i--) {
        if (all || audioBytes >= audioWaiters[i]!.n) audioWaiters.splice(i, 1)[0]!.resolve(audioBytes);
      }
    };
    let endBody!: () => void;
    let abortBody!: (e: Error) => void;
    const bodyEnded = new Promise<void>((resolve, reject) => {
      endBody = resolve;
      abortBody = reject;
    });
    bodyEnded.catch(() => {}); // responders that never await it must not leave a rejection unhandled

    // An answer started before the body ended (answerEarly): its writer, the rest follows.
    const early: EarlyAnswer = { writer: undefined };
    const fail = (status: number, why: string) => {
      if (failed) return;
      failed = true;
      stream.resume();
      this.sendStatus(stream, status, why);
    };

    const parser = new MultipartParser(boundary, {
      partStart: (h) => {
        const name = dispositionName(h);
        part = name === 'metadata' ? 'metadata' : name === 'audio' ? 'audio' : 'other';
        if (part === 'metadata') {
          meta = [];
          metaBytes = 0;
        } else if (part === 'audio') audioOpen = true;
      },
      partData: (chunk) => {
        if (part === 'metadata') {
          metaBytes += chunk.length;
          if (metaBytes > MAX_METADATA_BYTES) throw new Error('metadata part too large');
          meta.push(Buffer.from(chunk));
        } else if (part === 'audio') {
          audioBytes += chunk.length;
          if (record) record.audioBytes = audioBytes;
          wakeAudio(false);
        }
      },
      partEnd: () => {
        if (part === 'audio') {
          audioOpen = false;
          wakeAudio(true);
        } else if (part === 'metadata' && !record) {
          record = this.acceptEvent(conn, stream, token, Buffer.concat(meta), () => audioBytes);
          if (!record) return fail(400, 'metadata is not an event JSON');
          const ctx: EventContext = {
            event: record,
            emulator: this,
            bodyEnded,
            audio: (n) => (audioBytes >= n || bodyDone ? Promise.resolve(audioBytes) : new Promise((resolve) => audioWaiters.push({ n, resolve }))),
            get audioOpen() {
              return audioOpen;
            },
            pushDirective: (d, a) => this.pushDirective(d, a),
            answerEarly: (d, a) => this.answerEarly(stream, early, record!, d, a),
          };
          void this.answer(stream, ctx, early);
        }
        part = 'other';
      },
    });

    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        parser.push(chunk);
      } catch (e) {
        fail(400, `malformed multipart body: ${(e as Error).message}`);
      }
    });
    stream.on('end', () => {
      bodyDone = true;
      audioOpen = false;
      wakeAudio(true);
      if (record) {
        record.bodyComplete = true;
        this.emit('eventComplete', record);
      } else fail(400, 'no metadata part in the event body');
      endBody();
    });
    stream.on('close', () => {
      if (!bodyDone) {
        wakeAudio(true);
        abortBody(new Error('the event stream closed before its body ended'));
      }
    });
  }

  private acceptEvent(conn: EmulatorConnection, stream: http2.ServerHttp2Stream, token: string, json: Buffer, audioBytes: () => number): EventRecord | undefined {
    let meta: { context?: unknown; event?: { header?: Record<string, unknown>; payload?: unknown } };
    try {
      meta = JSON.parse(json.toString('utf8'));
    } catch {
      return undefined;
    }
    const h = meta?.event?.header;
    if (!h || typeof h.namespace !== 'string' || typeof h.name !== 'string') return undefined;
    const record: EventRecord = {
      seq: this.events.length + 1,
      namespace: h.namespace,
      name: h.name,
      messageId: typeof h.messageId === 'string' ? h.messageId : '',
      dialogRequestId: typeof h.dialogRequestId === 'string' ? h.dialogRequestId : undefined,
      token,
      payload: meta.event?.payload,
      context: meta.context,
      audioBytes: audioBytes(),
      bodyComplete: false,
      stopCaptureSent: false,
      audioBytesAtStopCapture: undefined,
      status: undefined,
      connectionId: conn.id,
      streamId: stream.id ?? 0,
      receivedAt: this.now(),
    };
    this.events.push(record);
    this.counters.eventsReceived++;
    this.log?.debug('cic-emu event', { name: `${record.namespace}.${record.name}`, connection: conn.id });
    this.emit('event', record);
    return record;
  }

  private answerEarly(stream: http2.ServerHttp2Stream, early: EarlyAnswer, e: EventRecord, directives: DirectiveInput[], attachments: Attachment[] = []): boolean {
    if (stream.destroyed || stream.closed || (stream.headersSent && !early.writer)) return false;
    let opening: Buffer[] = [];
    if (!early.writer) {
      early.writer = new MultipartWriter();
      e.status = 200;
      this.countStatus(200);
      this.emit('response', { streamId: stream.id, status: 200 });
      stream.respond({ ':status': 200, 'content-type': early.writer.contentType('related') });
      opening = [early.writer.open()];
    }
    const w = early.writer;
    const parts = directives.map((d) => w.part({ 'Content-Type': JSON_PART }, JSON.stringify(normalize(d))));
    for (const a of attachments) parts.push(w.part(attachmentHeaders(a), a.data));
    stream.write(Buffer.concat([...opening, ...parts]));
    return true;
  }

  private async answer(stream: http2.ServerHttp2Stream, ctx: EventContext, early: EarlyAnswer): Promise<void> {
    const e = ctx.event;
    const responder = this.holdingEvents ? holdResponder : this.responders.get(`${e.namespace}.${e.name}`) ?? this.responders.get('*') ?? defaultResponder;
    let reply: EventReply;
    try {
      reply = await responder(ctx);
    } catch (err) {
      if (stream.destroyed || stream.closed) return; // the client went away mid-body
      reply = { status: 500, description: `emulator responder failed: ${(err as Error).message}` };
    }
    if (reply === 'hold') {
      this.counters.eventsHeld++;
      return;
    }
    if (stream.destroyed) return;
    if (early.writer) {
      // An answer already under way can only go on with parts; anything else ends it as a server would: reset.
      if (!('directives' in reply)) return void stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      this.answerEarly(stream, early, e, reply.directives, reply.attachments);
      stream.end(early.writer.close());
      return;
    }
    if (stream.headersSent) return;
    if ('directives' in reply) {
      const writer = new MultipartWriter();
      const parts = reply.directives.map((d) => writer.part({ 'Content-Type': JSON_PART }, JSON.stringify(normalize(d))));
      for (const a of reply.attachments ?? []) parts.push(writer.part(attachmentHeaders(a), a.data));
      e.status = 200;
      this.countStatus(200);
      this.emit('response', { streamId: stream.id, status: 200 });
      stream.respond({ ':status': 200, 'content-type': writer.contentType('related') });
      stream.end(Buffer.concat([writer.open(), ...parts, writer.close()]));
      return;
    }
    e.status = reply.status;
    if (reply.body !== undefined) {
      this.countStatus(reply.status);
      this.emit('response', { streamId: stream.id, status: reply.status });
      stream.respond({ ':status': reply.status, 'content-type': reply.contentType ?? JSON_PART });
      stream.end(reply.body);
      return;
    }
    this.sendStatus(stream, reply.status, reply.description);
  }

  private async recognizeSpeech(ctx: EventContext): Promise<EventReply> {
    const threshold = this.config.stopCaptureAfterBytes;
    const n = await ctx.audio(threshold);
    if (n >= threshold && ctx.audioOpen) {
      const stop = directive('SpeechRecognizer', 'StopCapture', {}, ctx.event.dialogRequestId);
      ctx.event.audioBytesAtStopCapture = n;
      ctx.event.stopCaptureSent = this.config.stopCaptureOn === 'event' ? ctx.answerEarly([stop]) : ctx.pushDirective(stop);
    }
    await ctx.bodyEnded;
    return speakReply(ctx.event.dialogRequestId);
  }
}

interface EarlyAnswer {
  writer: MultipartWriter | undefined;
}

function attachmentHeaders(a: Attachment): Record<string, string> {
  return { 'Content-Type': a.contentType ?? BINARY_PART, 'Content-ID': `<${a.contentId}>` };
}

/** 204 once the body is in: what CIC answers for events with nothing to say. */
const defaultResponder: EventResponder = async (ctx) => {
  await ctx.bodyEnded;
  return { status: 204 };
};

/** holdEvents: the whole body is read (a stream that dies first is not counted), then silence. */
const holdResponder: EventResponder = async (ctx): Promise<EventReply> => {
  await ctx.bodyEnded;
  return 'hold';
};

/** Fake "speech": recognisable bytes, so tests can check the attachment arrived whole. */
export function fakeAudio(bytes = 4096): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = i % 251;
  return b;
}

/** A SpeechSynthesizer.Speak directive with its audio as a cid-linked attachment. */
export function speakReply(dialogRequestId: string | undefined, audio = fakeAudio()): EventReply {
  const contentId = randomUUID();
  return {
    directives: [directive('SpeechSynthesizer', 'Speak', { format: 'AUDIO_MPEG', token: randomUUID(), url: `cid:${contentId}` }, dialogRequestId)],
    attachments: [{ contentId, data: audio }],
  };
}

export function startCicEmulator(options: CicEmulatorOptions = {}): Promise<CicEmulator> {
  return CicEmulator.start(options);
}
