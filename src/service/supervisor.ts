// The runtime supervisor: owns the current CicClient and the login state, and is the port the
// device socket and `run`'s stdout talk to.
//
//   (no token | dead grant, with a socket) ──▶ waiting-for-login ──login──▶ connecting ──▶ ready
//   ready ◀──▶ reconnecting                    (the client's own backoff)
//   any ──stop()──▶ closing
//
// Hazards:
// - A closed CicClient is final (its state machine has no way out of `closed`). After a dead
//   grant, or a login that replaces the pairing, a NEW client is built; every listener stays
//   attached to the supervisor, never to a client, so nobody holds a stale one.
// - A client that closes on its own for a reason a login cannot fix (bad client credentials,
//   unreadable token file) ends the process as before: 'fatal'. Without a socket, a missing
//   token or a dead grant is fatal too (exit 3): nobody could log in.
// - Logins are serialised: two setup programs pairing at once must not interleave
//   "token saved" with "client replaced".
// - An attachment nobody takes is drained here: an unread stream would hold its HTTP/2
//   stream's flow-control window and stall the exchange it belongs to. Every taker (the
//   device socket's hub, run's stdout lines) reads with 'data' listeners on the same stream,
//   so each sees every chunk; a pause by one (a slow socket client) holds all of them.
import { TypedEmitter } from 'tiny-typed-emitter';
import { CicError, isCicError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { systemClock, type Clock } from '../util/clock';
import { termsRequired } from '../auth/clova-auth';
import type { LoginResult, TokenStatus } from '../auth/token-manager';
import type { StateChange } from '../cic/state';
import type { IncomingAttachment, OutgoingEvent } from '../cic/types';
import { watchClient, type CicClientLike } from './cic-port';
import { serviceState, type RuntimeStatus, type ServiceState } from './status';
import type { LoginOutcome, LoginRequest, RuntimeListener, RuntimePort, SendingEvent } from './port';

/** The parts of TokenManager the supervisor uses. */
export interface TokensLike {
  start(): Promise<TokenStatus>;
  status(): TokenStatus;
  login(accountToken: string): Promise<LoginResult>;
  loginWithCode(code: string): Promise<LoginResult>;
}

export interface SupervisorOptions {
  tokens: TokensLike;
  createClient(): CicClientLike;
  /** A socket is configured: no token or a dead grant waits for a login instead of ending. */
  waitForLogin: boolean;
  version: string;
  /** The configured device id, shown until the token file names one. */
  deviceId?: string;
  clock?: Clock;
  log?: Logger;
}

export interface SupervisorEvents {
  /** The runtime cannot go on (the client closed for a reason no login fixes). */
  fatal: (err: CicError) => void;
}

/** Close reasons a new pairing fixes. */
const NEEDS_LOGIN: ReadonlySet<string> = new Set(['AUTH_INVALID_GRANT', 'AUTH_NOT_LOGGED_IN']);

export class RuntimeSupervisor extends TypedEmitter<SupervisorEvents> implements RuntimePort {
  private readonly opts: SupervisorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly taps = new Set<RuntimeListener>();
  private client: CicClientLike | undefined;
  private unwatch: (() => void) | undefined;
  private st: ServiceState | undefined;
  private lastCode: string | undefined;
  private connectedSince: number | undefined;
  private lastPingRttMs: number | null = null;
  private reconnects = 0;
  private stopping = false;
  private loginChain: Promise<unknown> = Promise.resolve();

  constructor(opts: SupervisorOptions) {
    super();
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLogger;
  }

  /** Loads the tokens and connects, or waits for a login (only with waitForLogin). */
  async start(): Promise<void> {
    const st = await this.opts.tokens.start();
    if (this.stopping) return;
    if (st.loggedIn && st.state !== 'dead') this.connect();
    else if (this.opts.waitForLogin) this.setState('waiting-for-login', 'AUTH_NOT_LOGGED_IN');
    else throw new CicError('AUTH_NOT_LOGGED_IN', 'no stored token; log in first');
  }

  /** Stops the client (in-flight events get a short drain); idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.setState('closing', undefined);
    const c = this.client;
    if (c) await c.stop();
    this.unwatch?.();
    this.unwatch = undefined;
  }

  // ---- RuntimePort -----------------------------------------------------------------------

  status(): RuntimeStatus {
    const t = this.opts.tokens.status();
    const c = this.client?.stats();
    return {
      state: this.st ?? 'connecting',
      loggedIn: t.loggedIn && t.state !== 'dead',
      deviceId: t.deviceId ?? this.opts.deviceId ?? null,
      tokenExpiresAt: t.expiresAt !== undefined ? new Date(t.expiresAt).toISOString() : null,
      connectedSince: this.connectedSince !== undefined ? new Date(this.connectedSince).toISOString() : null,
      lastPingRttMs: this.lastPingRttMs,
      reconnects: this.reconnects,
      queuedEvents: c?.queued ?? 0,
      version: this.opts.version,
      ...(c?.warning ? { warning: { code: c.warning.code, message: c.warning.message } } : {}),
      ...(this.lastCode ? { code: this.lastCode } : {}),
    };
  }

  sendEvent(event: OutgoingEvent): SendingEvent {
    const c = this.client;
    if (!c || this.stopping || this.st === 'waiting-for-login') {
      throw new CicError('SOCKET_NOT_READY', this.stopping ? 'the runtime is closing' : 'the runtime is waiting for login');
    }
    return c.sendEvent(event);
  }

  login(request: LoginRequest): Promise<LoginOutcome> {
    const attempt = () => this.doLogin(request);
    const p = this.loginChain.then(attempt, attempt);
    this.loginChain = p.catch(() => undefined);
    return p;
  }

  listen(listener: RuntimeListener): () => void {
    this.taps.add(listener);
    return () => this.taps.delete(listener);
  }

  // ---- internals -------------------------------------------------------------------------

  private async doLogin(request: LoginRequest): Promise<LoginOutcome> {
    if (this.stopping) throw new CicError('SOCKET_NOT_READY', 'the runtime is closing');
    const tokens = this.opts.tokens;
    let result: LoginResult;
    try {
      result = 'code' in request ? await tokens.loginWithCode(request.code) : await tokens.login(request.accountToken);
    } catch (e) {
      const terms = termsRequired(e);
      if (terms) return { kind: 'terms', uri: terms.redirectUri, code: terms.code };
      throw e;
    }
    // Unsaved tokens are still the live ones: the token manager keeps retrying the save.
    if (!result.persisted) this.log.warn('logged in, but the token file could not be written yet', { code: 'STORE_WRITE_FAILED' });
    this.log.info('logged in over the device socket', { expiresInMs: result.expiresInMs });
    if (!this.stopping) {
      const old = this.client;
      if (old) {
        // A new pairing: the old client's downchannel belongs to the old grant.
        this.unwatch?.();
        this.client = undefined;
        this.connectedSince = undefined;
        await old.stop();
      }
      if (!this.stopping) this.connect();
    }
    const t = tokens.status();
    return {
      kind: 'logged-in',
      deviceId: t.deviceId ?? this.opts.deviceId ?? null,
      expiresAt: t.expiresAt !== undefined ? new Date(t.expiresAt).toISOString() : null,
    };
  }

  private connect(): void {
    const client = this.opts.createClient();
    this.client = client;
    this.unwatch = watchClient(client, {
      state: (ch) => this.onClientState(client, ch),
      directive: (d) => {
        for (const l of this.taps) l.directive?.(d);
      },
      attachment: (a) => this.onAttachment(a),
      ping: (rttMs) => {
        this.lastPingRttMs = Math.round(rttMs);
      },
    });
    client.start();
  }

  private onAttachment(a: IncomingAttachment): void {
    const takers = [...this.taps].filter((l) => l.attachment);
    if (takers.length === 0) {
      a.stream.resume();
      return;
    }
    for (const l of takers) l.attachment!(a);
  }

  private onClientState(client: CicClientLike, ch: StateChange): void {
    if (client !== this.client) return;
    if (ch.to === 'ready') this.connectedSince = this.clock.wallNow();
    else {
      if (ch.from === 'ready' && ch.to !== 'closed') this.reconnects++;
      this.connectedSince = undefined;
    }
    if (ch.to !== 'closed') {
      this.setState(serviceState(ch.to), ch.code);
      return;
    }
    if (this.stopping) return;
    const err = client.closeError;
    this.unwatch?.();
    this.unwatch = undefined;
    this.client = undefined;
    if (this.opts.waitForLogin && err && NEEDS_LOGIN.has(err.code)) {
      this.log.warn('the grant is gone: waiting for a login on the device socket', { code: err.code });
      this.setState('waiting-for-login', err.code);
      return;
    }
    const fatal = isCicError(err) ? err : new CicError('CIC_STOPPED', err?.message ?? 'the CIC client closed');
    this.setState('closing', fatal.code);
    this.emit('fatal', fatal);
  }

  private setState(to: ServiceState, code: string | undefined): void {
    if (to === this.st) return;
    this.st = to;
    this.lastCode = code;
    this.log.info('runtime state', { state: to, ...(code ? { code } : {}) });
    const status = this.status();
    for (const l of this.taps) l.state?.(status);
  }
}
