// CicClient: one TLS HTTP/2 connection to CIC carrying the downchannel, events and pings.
//
//   idle → authorizing → connecting → opening-downchannel → ready
//                 ↑                                          │ (link dead, GOAWAY, downchannel lost)
//                 └──────────── reconnecting ◄───────────────┘
//
// "Ready" only after the downchannel answered 200 and Clova.Hello arrived. Every async step
// carries the attempt number it started in; a result from an older attempt is ignored, so
// concurrent triggers (a ping timeout and a GOAWAY at once) cannot double-reconnect.
import { TypedEmitter } from 'tiny-typed-emitter';
import { CicError, isCicError, toCicError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { Connection, type ConnectOptions } from '../h2/connection';
import type { ClientStream, ResponseHead } from '../h2/stream';
import type { NativeBinding } from '../h2/native';
import { H2_ERROR } from '../h2/constants';
import { Backoff, type BackoffOptions } from '../util/backoff';
import { type Clock, type TimerHandle } from '../util/clock';
import { preciseClock } from '../h2/precise-clock';
import { EventQueue, type Queued } from './event-queue';
import { Keepalive, PING_INTERVAL_MS, PING_TIMEOUT_MS } from './keepalive';
import { canTransition, type ClientState, type StateChange } from './state';
import { statusError } from './http-status';
import { EventSender, type PendingEvent } from './event-sender';
import { UnauthorizedPolicy } from './unauthorized';
import type { DirectiveReaderFactory, EventResult, IncomingAttachment, OutgoingEvent, ReceivedDirective, TokenSource } from './types';

export const DEFAULT_STABLE_AFTER_MS = 60_000; // a connection this old resets the backoff
export const DEFAULT_HELLO_TIMEOUT_MS = 15_000; // downchannel 200 but no Clova.Hello → retry
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000; // an old connection after GOAWAY is closed after this

export interface CicClientOptions {
  /** https://host[:port] of CIC. */
  url: string;
  userAgent: string;
  tokens: TokenSource;
  readDirectives: DirectiveReaderFactory;
  ca?: string | Buffer | Array<string | Buffer>;
  caMode?: 'add' | 'only';
  clock?: Clock;
  log?: Logger;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** 'frame' (HTTP/2 PING, default) or 'http' (GET /ping expecting 204). */
  pingMode?: 'frame' | 'http';
  connectTimeoutMs?: number;
  /** An event exchange that moves no byte for this long fails (CIC_EVENT_FAILED, cause ERR_TIMEOUT). */
  eventTimeoutMs?: number;
  /**
   * An 'attachment' consumer that takes no byte of its stream for this long while bytes wait
   * loses it: the stream is destroyed with CIC_ATTACHMENT_STALLED (also on 'problem') and the
   * rest of the part is discarded, so the HTTP/2 stream goes on. Default 30 s (on `clock`).
   */
  attachmentStallMs?: number;
  helloTimeoutMs?: number;
  stableAfterMs?: number;
  queueSize?: number;
  queueMaxAgeMs?: number;
  backoff?: BackoffOptions;
  /** Delays between refreshes while CIC keeps refusing fresh tokens (default 5 s doubling to 10 min). */
  unauthorizedBackoff?: BackoffOptions;
  binding?: string | NativeBinding;
  /** Opens connections (tests inject fault-injecting sockets through it). */
  connect?: (options: ConnectOptions) => Promise<Connection>;
}

export interface CicClientEvents {
  state: (change: StateChange) => void;
  /**
   * A directive, as soon as its JSON part has arrived: on the downchannel, and on an event's
   * answer while the exchange goes on (`eventMessageId` names the event).
   */
  directive: (d: ReceivedDirective) => void;
  /**
   * An attachment, announced when its part starts; its bytes follow on `a.stream` with
   * back-pressure down to HTTP/2 flow control. Without a listener, bytes are counted and
   * discarded. Read it (or destroy it): one left unread for attachmentStallMs is destroyed.
   */
  attachment: (a: IncomingAttachment) => void;
  /** A directive dropped because its dialogRequestId is no longer current. */
  dropped: (d: ReceivedDirective) => void;
  /** A non-fatal coded problem (malformed directive part, System.Exception, repeated 401). */
  problem: (err: CicError) => void;
  ping: (rttMs: number) => void;
}

interface Live {
  attempt: number;
  conn: Connection;
  downchannel: ClientStream | undefined;
  keepalive: Keepalive | undefined;
  readyAt: number | undefined;
  /** The token the current downchannel was opened with (what a 401 on it refers to). */
  token: string;
}

interface FailOptions {
  /** Only the downchannel failed: keep the connection and open a new downchannel on it. */
  keepConnection?: boolean;
  /** A ready connection died: replace it without waiting when the backoff allows. */
  immediate?: boolean;
  /** Wait this long instead of the next backoff step. */
  delayMs?: number;
  /** CIC refused this token: refresh it before the retry. */
  refreshFor?: string;
}

export interface ClientStats {
  state: ClientState;
  queued: number;
  inFlight: number;
  /** Failed connection attempts in a row. */
  attempts: number;
  /** 401s from CIC since it last accepted a request. */
  unauthorizedStreak: number;
  /** Present while CIC keeps refusing fresh tokens (CIC_UNAUTHORIZED); the client keeps trying. */
  warning?: { code: string; message: string };
  connection?: ReturnType<Connection['stats']>;
}

export class CicClient extends TypedEmitter<CicClientEvents> {
  state: ClientState = 'idle';
  /** The error that closed the client, when it closed on its own. */
  closeError: CicError | undefined;
  readonly userAgent: string;

  private readonly opts: CicClientOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly queue: EventQueue<PendingEvent>;
  private readonly sender: EventSender;
  private readonly host: string;
  private readonly port: number;
  private attempt = 0;
  private live: Live | undefined;
  private draining = new Set<Connection>();
  private retryTimer: TimerHandle | undefined;
  private helloTimer: TimerHandle | undefined;
  private pingRefreshTimer: TimerHandle | undefined;
  /** When the current connection became ready (cleared at the next failure). */
  private readySince: number | undefined;
  private readonly unauthorized: UnauthorizedPolicy;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: CicError) => void }> = [];
  private currentDialog: string | undefined;

  constructor(opts: CicClientOptions) {
    super();
    this.opts = opts;
    // The precise clock: a PING deadline cancelled by its ACK does not wake the process later.
    this.clock = opts.clock ?? preciseClock(opts.binding);
    this.log = opts.log ?? silentLogger;
    this.userAgent = opts.userAgent;
    const url = new URL(opts.url);
    if (url.protocol !== 'https:') throw new CicError('ERR_INVALID_ARGUMENT', `CIC URL must be https: ${url.protocol}`);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = url.port ? Number(url.port) : 443;
    this.backoff = new Backoff(opts.backoff);
    this.unauthorized = new UnauthorizedPolicy(opts.unauthorizedBackoff);
    this.queue = new EventQueue(this.clock, opts.queueSize, opts.queueMaxAgeMs);
    this.sender = new EventSender({
      userAgent: opts.userAgent,
      readDirectives: opts.readDirectives,
      log: this.log,
      onDirective: (d) => this.deliver(d),
      onAttachment: (a) => this.emit('attachment', a),
      wantsAttachments: () => this.listenerCount('attachment') > 0,
      // A consumer that stalled is the application's to know about; a bad part of an answer is logged.
      onProblem: (err, messageId) => (err.code === 'CIC_ATTACHMENT_STALLED' ? this.problem(err) : this.log.warn('event response part rejected', { code: err.code, messageId })),
      ...(opts.attachmentStallMs !== undefined ? { attachmentStallMs: opts.attachmentStallMs } : {}),
      clock: this.clock,
      idleTimeoutMs: opts.eventTimeoutMs,
    });
  }

  // ---- public API ------------------------------------------------------------------------

  /** Starts connecting; returns at once (watch 'state' or await ready()). */
  start(): void {
    if (this.state !== 'idle') return;
    this.beginAttempt('start');
  }

  /** Resolves when the client is ready; rejects if it closes first. */
  ready(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(this.closeError ?? new CicError('CIC_STOPPED', 'the client is stopped'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Sends an event; resolves once its response is known. Waits in the bounded queue while
   * the client is not ready. Rejects with a coded error; never drops silently.
   */
  sendEvent(event: OutgoingEvent & { messageId?: string }): Promise<EventResult> & { messageId: string } {
    const pending = this.sender.prepare(event); // throws ERR_INVALID_ARGUMENT synchronously
    const promise = new Promise<EventResult>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    }) as Promise<EventResult> & { messageId: string };
    promise.messageId = pending.messageId;
    if (this.state === 'closed') {
      pending.reject(new CicError('CIC_STOPPED', 'the client is stopped', { details: { messageId: pending.messageId } }));
      return promise;
    }
    if (event.dialogRequestId) this.currentDialog = event.dialogRequestId;
    if (this.state === 'ready' && this.live && this.queue.length === 0) this.dispatch(pending);
    else {
      try {
        this.queue.push(pending, pending.reject);
      } catch (e) {
        pending.reject(toCicError(e, 'CIC_QUEUE_FULL'));
      }
    }
    return promise;
  }

  /** The dialog whose directives are current (set by events that carry a dialogRequestId). */
  get dialogRequestId(): string | undefined {
    return this.currentDialog;
  }

  set dialogRequestId(id: string | undefined) {
    this.currentDialog = id;
  }

  /**
   * Stops: no new work, queued events rejected with CIC_STOPPED, in-flight events get up to
   * `drainMs` to finish, then the connection closes with a GOAWAY.
   */
  async stop(drainMs = 2_000): Promise<void> {
    if (this.state === 'closed') return;
    const err = new CicError('CIC_STOPPED', 'the client was stopped');
    this.transition('closed', 'stopped');
    this.clearTimers();
    this.queue.rejectAll(err);
    const live = this.live;
    this.live = undefined;
    live?.keepalive?.stop();
    live?.downchannel?.cancel(H2_ERROR.CANCEL);
    await this.sender.settled(drainMs, this.clock);
    const closing = [live?.conn, ...this.draining].filter((c): c is Connection => !!c).map((c) => c.close());
    this.draining.clear();
    await Promise.all(closing);
    this.rejectReadyWaiters(err);
  }

  stats(): ClientStats {
    const warning = this.unauthorized.warning;
    return {
      state: this.state,
      queued: this.queue.length,
      inFlight: this.sender.inFlight,
      attempts: this.backoff.attempts,
      unauthorizedStreak: this.unauthorized.streak,
      ...(warning ? { warning: { code: warning.code, message: warning.message } } : {}),
      connection: this.live?.conn.stats(),
    };
  }

  // ---- lifecycle -------------------------------------------------------------------------

  private transition(to: ClientState, reason: string, err?: CicError): void {
    const from = this.state;
    if (from === to && to !== 'opening-downchannel') return;
    if (!canTransition(from, to)) throw new CicError('ERR_INTERNAL', `invalid state transition ${from} → ${to} (${reason})`);
    this.state = to;
    const change: StateChange = { from, to, reason, ...(err ? { code: err.code } : {}) };
    this.log.info('cic state', { ...change });
    this.emit('state', change);
    if (to === 'ready') {
      for (const w of this.readyWaiters.splice(0)) w.resolve();
    }
  }

  private beginAttempt(reason: string): void {
    const attempt = ++this.attempt;
    this.transition('authorizing', reason);
    this.withToken(
      () => this.openConnection(attempt),
      (e) => this.fail(attempt, e, 'token'),
    );
  }

  /**
   * Runs `use` with the token source's current token: at once when it has a usable one, else
   * once getAccessToken() has one. Every new stream asks here, never a copy kept from
   * earlier: a proactive refresh on a rotating server kills the old token, and a request that
   * carried it would be refused.
   */
  private withToken(use: (token: string) => void, failed: (err: CicError) => void): void {
    const token = this.opts.tokens.peekAccessToken?.();
    if (token !== undefined) return use(token);
    this.opts.tokens.getAccessToken().then(use, (e) => failed(toCicError(e, 'AUTH_NOT_LOGGED_IN')));
  }

  private openConnection(attempt: number): void {
    if (attempt !== this.attempt || this.state === 'closed') return;
    this.transition('connecting', 'token ready');
    const connect = this.opts.connect ?? ((o: ConnectOptions) => Connection.connect(o));
    connect({
      host: this.host,
      port: this.port,
      ca: this.opts.ca,
      caMode: this.opts.caMode,
      clock: this.clock,
      log: this.log,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      binding: this.opts.binding,
    }).then(
      (conn) => {
        if (attempt !== this.attempt || this.state === 'closed') {
          void conn.close();
          return;
        }
        const live: Live = { attempt, conn, downchannel: undefined, keepalive: undefined, readyAt: undefined, token: '' };
        this.live = live;
        conn.on('goaway', (info) => this.onGoaway(live, info.errorCode));
        conn.once('close', (err) => this.onConnectionClosed(live, err));
        this.openDownchannel(live, 'connected');
      },
      (e) => this.fail(attempt, toCicError(e, 'H2_CONNECT_FAILED'), 'connect'),
    );
  }

  private openDownchannel(live: Live, reason: string): void {
    if (this.live !== live || this.state === 'closed') return;
    const attempt = live.attempt;
    this.withToken(
      (token) => {
        // The token may have come after a wait: only the attempt that asked may use it.
        if (this.live !== live || live.attempt !== attempt || this.state === 'closed' || this.state === 'reconnecting') return;
        this.requestDownchannel(live, token, reason);
      },
      (e) => this.fail(attempt, e, 'token'),
    );
  }

  private requestDownchannel(live: Live, token: string, reason: string): void {
    this.transition('opening-downchannel', reason);
    let stream: ClientStream;
    live.token = token;
    try {
      stream = live.conn.request({ path: '/v1/directives', headers: { authorization: `Bearer ${token}`, 'user-agent': this.userAgent } });
    } catch (e) {
      this.fail(live.attempt, toCicError(e, 'H2_CONNECTION_CLOSED'), 'downchannel');
      return;
    }
    live.downchannel = stream;
    let hello = false;
    this.clock.clearTimeout(this.helloTimer);
    this.helloTimer = this.clock.setTimeout(() => {
      if (this.live !== live || live.downchannel !== stream || hello) return;
      stream.cancel(H2_ERROR.CANCEL);
      this.fail(live.attempt, new CicError('ERR_TIMEOUT', 'no Clova.Hello on the downchannel in time'), 'hello');
    }, this.opts.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS);

    stream.once('response', (head: ResponseHead) => {
      if (head.status !== 200) return; // handled when the stream closes with its body read
      // The downchannel's bytes go back to flow control as its attachments' consumers take them.
      stream.holdWindow();
      const reader = this.opts.readDirectives({
        contentType: head.headers['content-type'] ?? '',
        source: 'downchannel',
        onDirective: (d) => {
          if (!hello && d.directive.header.namespace === 'Clova' && d.directive.header.name === 'Hello') {
            hello = true;
            // A Hello on a downchannel that was already superseded changes nothing.
            if (live.downchannel !== stream || this.state !== 'opening-downchannel') return false;
            this.clock.clearTimeout(this.helloTimer);
            this.onReady(live);
            // Delivered too, after the transition: a consumer of directives (run's stdout, the
            // device socket) learns from it that the connection is up.
            return this.live === live && this.deliver(d);
          }
          return this.deliver(d);
        },
        onAttachment: (a) => this.emit('attachment', a),
        wantsAttachments: () => this.listenerCount('attachment') > 0,
        onProblem: (err) => this.problem(err),
        consume: (n) => stream.consume(n),
        clock: this.clock,
        ...(this.opts.attachmentStallMs !== undefined ? { attachmentStallMs: this.opts.attachmentStallMs } : {}),
      });
      stream.on('data', (chunk) => reader.push(chunk));
      stream.once('end', () => reader.end());
      stream.once('close', () => {
        if (stream.error) reader.abort(stream.error);
      });
    });
    const errorBody: Buffer[] = [];
    stream.on('data', (c) => {
      if (stream.head && stream.head.status !== 200 && errorBody.length < 16) errorBody.push(c);
    });
    stream.once('close', () => this.onDownchannelClosed(live, stream, hello, Buffer.concat(errorBody)));
  }

  private onDownchannelClosed(live: Live, stream: ClientStream, hadHello: boolean, body: Buffer): void {
    if (this.live !== live || live.downchannel !== stream || this.state === 'closed') return;
    live.downchannel = undefined;
    this.clock.clearTimeout(this.helloTimer);
    const status = stream.head?.status;
    if (status === 401) {
      this.downchannelUnauthorized(live);
      return;
    }
    if (status !== undefined && status !== 200) {
      const err = statusError(status, 'downchannel', { body: body.subarray(0, 200).toString('utf8') });
      this.log.warn('downchannel refused', { status, code: err.code });
      // 412/429/5xx: the connection may be fine, but back off before the next downchannel.
      this.fail(live.attempt, err, 'downchannel', { keepConnection: status === 429 });
      return;
    }
    if (stream.error && live.conn.closed) return; // the connection's close handler takes over
    // The downchannel ended or was reset on a live connection: re-create it at once, unless
    // it never got going (a server that closes it immediately must not cause a tight loop).
    if (hadHello) {
      this.openDownchannel(live, stream.error ? `downchannel reset (${stream.error.code})` : 'downchannel ended');
    } else {
      this.fail(live.attempt, stream.error ?? new CicError('H2_STREAM_RESET', 'downchannel closed before Clova.Hello'), 'downchannel', { keepConnection: true });
    }
  }

  private onReady(live: Live): void {
    if (this.live !== live || this.state === 'closed') return;
    this.unauthorized.accepted();
    live.readyAt = this.clock.now();
    this.transition('ready', 'Clova.Hello received');
    // Backoff resets only once the connection has proven stable: checked when it fails
    // (fail()), not with a timer, which would be one more wake-up of an idle device.
    this.readySince = live.readyAt;
    if (!live.keepalive) {
      live.keepalive = new Keepalive({
        clock: this.clock,
        intervalMs: this.opts.pingIntervalMs ?? PING_INTERVAL_MS,
        timeoutMs: this.opts.pingTimeoutMs ?? PING_TIMEOUT_MS,
        probe: (t) => (this.opts.pingMode === 'http' ? this.httpPing(live, t) : live.conn.ping(t)),
        onRtt: (rtt) => this.emit('ping', rtt),
        onDead: (err) => {
          if (this.live !== live) return;
          this.log.warn('connection declared dead', { code: err.code });
          live.conn.destroy(err);
        },
      });
      live.keepalive.start();
    }
    // Retire connections left over from a GOAWAY: their downchannel is superseded.
    for (const old of this.draining) this.retire(old);
    for (const entry of this.queue.drain()) this.dispatch(entry.item);
  }

  private onGoaway(live: Live, errorCode: number): void {
    if (this.live !== live || this.state === 'closed') return;
    this.log.info('GOAWAY: moving to a new connection', { errorCode });
    live.keepalive?.stop();
    this.live = undefined;
    // Release the old downchannel now: CIC answers 429 to a second downchannel while the
    // first is still open, and the new connection is about to ask for one.
    const oldDownchannel = live.downchannel;
    live.downchannel = undefined;
    oldDownchannel?.cancel(H2_ERROR.CANCEL);
    this.draining.add(live.conn);
    live.conn.once('close', () => this.draining.delete(live.conn));
    const wasReady = this.state === 'ready';
    if (wasReady) {
      // A working connection asked us to move: move now, without a backoff delay.
      this.transition('authorizing', 'goaway');
      this.attempt++;
      const attempt = this.attempt;
      this.withToken(
        () => this.openConnection(attempt),
        (e) => this.fail(attempt, e, 'token'),
      );
    } else {
      // GOAWAY before ready: count it as a failed attempt (a server that answers every
      // connection with GOAWAY gets a growing backoff, not a storm).
      this.retire(live.conn);
      this.fail(live.attempt, new CicError('H2_GOAWAY', 'GOAWAY before the connection was ready'), 'goaway');
    }
  }

  private retire(conn: Connection): void {
    // In-flight events on it may finish; the connection closes itself when they are done.
    const timer = this.clock.setTimeout(() => void conn.close(), DEFAULT_DRAIN_TIMEOUT_MS);
    conn.once('close', () => this.clock.clearTimeout(timer));
  }

  private onConnectionClosed(live: Live, err: CicError | undefined): void {
    live.keepalive?.stop();
    if (this.live !== live || this.state === 'closed') return;
    this.live = undefined;
    const reason = err ?? new CicError('H2_CONNECTION_CLOSED', 'the connection closed');
    const wasReady = live.readyAt !== undefined;
    this.fail(live.attempt, reason, 'connection lost', { immediate: wasReady });
  }

  /**
   * The downchannel got 401. The first in a row refreshes and reopens at once; further ones
   * wait the 401 backoff on the same connection (see unauthorized.ts). Never terminal here:
   * a dead grant surfaces as AUTH_INVALID_GRANT from the refresh.
   */
  private downchannelUnauthorized(live: Live): void {
    const { delayMs, warning } = this.unauthorized.record('downchannel');
    if (warning) {
      this.problem(warning);
      this.fail(live.attempt, warning, '401', { keepConnection: true, delayMs, refreshFor: live.token });
      return;
    }
    this.transition('authorizing', '401');
    this.refreshAfter401(live.token).then(
      () => this.openDownchannel(live, 'token refreshed'),
      (e) => this.fail(live.attempt, e, 'refresh'),
    );
  }

  /** Refreshes after CIC refused `rejected` (single-flight in the token source). */
  private refreshAfter401(rejected: string): Promise<string> {
    return this.opts.tokens.onUnauthorized(rejected).catch((e: unknown) => {
      throw toCicError(e, 'AUTH_INVALID_GRANT');
    });
  }

  /**
   * An attempt failed. Terminal errors close the client; anything else waits out a backoff
   * delay, then starts over (keeping the connection when only the downchannel failed).
   */
  private fail(attempt: number, err: CicError, stage: string, options: FailOptions = {}): void {
    const { keepConnection = false, immediate = false, refreshFor } = options;
    if (attempt !== this.attempt || this.state === 'closed') return;
    if (isTerminal(err)) {
      this.close(err);
      return;
    }
    this.clock.clearTimeout(this.helloTimer);
    if (this.readySince !== undefined && this.clock.now() - this.readySince >= (this.opts.stableAfterMs ?? DEFAULT_STABLE_AFTER_MS)) {
      this.backoff.reset();
    }
    this.readySince = undefined;
    const live = this.live;
    if (!keepConnection && live) {
      this.live = undefined;
      live.keepalive?.stop();
      live.conn.destroy(err);
    }
    // A ready connection that died is replaced at once (its first backoff step is small);
    // everything else waits a full jittered step.
    const delay = options.delayMs ?? (immediate && this.backoff.attempts === 0 ? 0 : this.backoff.next());
    // The message says what to do about it (e.g. "the device clock is probably not set").
    this.log.warn('cic attempt failed', { stage, code: err.code, message: err.message, retryInMs: delay });
    this.transition('reconnecting', `${stage}: ${err.code}`, err);
    if (immediate && delay === 0) this.backoff.next(); // the next failure in a row waits
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state !== 'reconnecting') return;
      const still = this.live;
      if (keepConnection && still && !still.conn.closed) {
        this.attempt++;
        still.attempt = this.attempt;
        this.transition('authorizing', 'retry downchannel');
        if (refreshFor === undefined) this.openDownchannel(still, 'retry');
        else {
          this.refreshAfter401(refreshFor).then(
            () => this.openDownchannel(still, 'retry after 401'),
            (e) => this.fail(still.attempt, e, 'refresh'),
          );
        }
      } else {
        if (still) {
          this.live = undefined;
          still.conn.destroy();
        }
        this.beginAttempt('retry');
      }
    }, delay);
  }

  private close(err: CicError): void {
    if (this.state === 'closed') return;
    this.closeError = err;
    this.log.error('cic client closed', { code: err.code, message: err.message });
    this.transition('closed', err.code, err);
    this.clearTimers();
    this.queue.rejectAll(err);
    const live = this.live;
    this.live = undefined;
    live?.keepalive?.stop();
    if (live) void live.conn.close();
    for (const c of this.draining) void c.close();
    this.rejectReadyWaiters(err);
  }

  private rejectReadyWaiters(err: CicError): void {
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
  }

  private clearTimers(): void {
    for (const t of [this.retryTimer, this.helloTimer, this.pingRefreshTimer]) this.clock.clearTimeout(t);
    this.retryTimer = this.helloTimer = this.pingRefreshTimer = undefined;
  }

  // ---- events and directives -------------------------------------------------------------

  private dispatch(pending: PendingEvent): void {
    const live = this.live;
    if (!live || this.state !== 'ready') {
      this.requeue(pending);
      return;
    }
    const token = this.opts.tokens.peekAccessToken?.();
    if (token !== undefined) this.sendOn(live, token, pending);
    else {
      // The token is being refreshed (or about to expire): the event goes out with the new one.
      this.opts.tokens.getAccessToken().then(
        (t) => (this.live === live && this.state === 'ready' ? this.sendOn(live, t, pending) : this.requeue(pending)),
        (e) => pending.reject(toCicError(e, 'AUTH_NOT_LOGGED_IN')),
      );
    }
  }

  private sendOn(live: Live, token: string, pending: PendingEvent): void {
    this.sender.send(live.conn, token, pending, {
      requeue: (p) => this.requeue(p),
      accepted: () => this.unauthorized.accepted(),
      unauthorized: (p, rejected) => {
        // Every 401 refreshes (single-flight: events that fail together cause one refresh).
        // The event is sent once more with the new token when its audio can be produced
        // again; live audio is gone, so it fails with a code that says so.
        const { warning } = this.unauthorized.record(`event ${p.namespace}.${p.name}`);
        if (warning) this.problem(warning);
        this.refreshAfter401(rejected).then(
          () => {
            if (!p.replayable) {
              p.reject(new CicError('CIC_AUDIO_NOT_REPLAYABLE', `event ${p.namespace}.${p.name}: CIC refused the access token (401) and the live audio cannot be sent again; the token was refreshed, the next request uses it`, { details: { messageId: p.messageId, status: 401 } }));
            } else if (p.retried401) {
              p.reject(statusError(401, `event ${p.namespace}.${p.name}`, { messageId: p.messageId }));
            } else {
              p.retried401 = true;
              this.dispatch(p);
            }
          },
          (e: CicError) => {
            p.reject(e);
            // A dead grant ends the client too (the downchannel would learn it at its next 401).
            if (isTerminal(e)) this.fail(this.attempt, e, 'refresh');
          },
        );
      },
      noDownchannel: (p) => {
        // 412: CIC does not see our downchannel on this connection. Re-create it; the
        // event was not processed, so it waits for the new downchannel. Order matters: leave
        // `ready` first (or the requeue would resend at once), and forget the old stream
        // before cancelling it (or its close would reopen a second downchannel → 429).
        if (this.live === live && this.state === 'ready') {
          const old = live.downchannel;
          live.downchannel = undefined;
          this.openDownchannel(live, '412 on an event');
          old?.cancel(H2_ERROR.CANCEL);
        }
        this.requeue(p);
      },
    });
  }

  private requeue(pending: PendingEvent): void {
    if (this.state === 'closed') {
      pending.reject(this.closeError ?? new CicError('CIC_STOPPED', 'the client is stopped'));
      return;
    }
    const entry: Queued<PendingEvent> = { item: pending, enqueuedAt: pending.createdAt, reject: pending.reject };
    this.queue.unshift(entry);
    if (this.state === 'ready' && this.live) for (const e of this.queue.drain()) this.dispatch(e.item);
  }

  /** Passes a directive on unless its dialog is stale; false when it was dropped. */
  private deliver(d: ReceivedDirective): boolean {
    const id = d.directive.header.dialogRequestId;
    if (id !== undefined && this.currentDialog !== undefined && id !== this.currentDialog) {
      this.log.debug('directive dropped: dialog no longer current', { namespace: d.directive.header.namespace, name: d.directive.header.name });
      this.emit('dropped', d);
      return false;
    }
    const h = d.directive.header;
    if (h.namespace === 'System' && h.name === 'Exception') {
      const p = d.directive.payload as { code?: unknown; description?: unknown };
      this.problem(new CicError('CIC_EXCEPTION', `System.Exception ${String(p.code ?? '')}: ${String(p.description ?? '')}`, { details: { code: p.code } }));
    }
    this.emit('directive', d);
    return true;
  }

  private pingUnauthorized(live: Live, rejected: string): void {
    const { delayMs, warning } = this.unauthorized.record('GET /ping');
    if (warning) this.problem(warning);
    const refresh = () => {
      if (this.live !== live || this.state === 'closed') return;
      this.refreshAfter401(rejected).catch((e: CicError) => {
        if (isTerminal(e)) this.fail(live.attempt, e, 'refresh');
        else this.log.warn('refresh after a 401 on GET /ping failed', { code: e.code });
      });
    };
    if (delayMs === 0) refresh();
    else if (!this.pingRefreshTimer) {
      this.pingRefreshTimer = this.clock.setTimeout(() => {
        this.pingRefreshTimer = undefined;
        refresh();
      }, delayMs);
    }
  }

  private problem(err: CicError): void {
    this.log.warn('cic problem', { code: err.code, message: err.message });
    this.emit('problem', err);
  }

  private async httpPing(live: Live, timeoutMs: number): Promise<number> {
    const started = this.clock.now();
    const token = this.opts.tokens.peekAccessToken?.() ?? (await this.opts.tokens.getAccessToken());
    const stream = live.conn.request({ path: '/ping', headers: { authorization: `Bearer ${token}`, 'user-agent': this.userAgent } });
    const timer = this.clock.setTimeout(() => stream.cancel(H2_ERROR.CANCEL), timeoutMs);
    try {
      const res = await stream.collect(4096);
      if (res.status === 401) {
        // An answer: the link is alive. The token is refreshed for the next request (the
        // first 401 in a row at once, later ones only after the 401 backoff has passed).
        this.pingUnauthorized(live, token);
        return this.clock.now() - started;
      }
      if (res.status !== 204) throw statusError(res.status, 'GET /ping');
      this.unauthorized.accepted();
      return this.clock.now() - started;
    } catch (e) {
      throw isCicError(e, 'H2_STREAM_RESET') ? new CicError('H2_PING_TIMEOUT', `GET /ping got no answer within ${timeoutMs} ms`) : e;
    } finally {
      this.clock.clearTimeout(timer);
    }
  }
}

/**
 * Errors no reconnect can fix: the user must log in again or fix the configuration. A 401
 * from CIC is not one of them (unauthorized.ts): only the auth server can declare the grant
 * dead.
 */
function isTerminal(err: CicError): boolean {
  return (
    err.code === 'AUTH_INVALID_GRANT' ||
    err.code === 'AUTH_NOT_LOGGED_IN' ||
    err.code === 'AUTH_INVALID_CLIENT' ||
    err.code === 'STORE_CORRUPT' ||
    err.code === 'STORE_FOREIGN' ||
    err.code === 'STORE_KEY' ||
    err.code === 'ADDON_NOT_FOUND'
  );
}
