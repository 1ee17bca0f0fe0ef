// TokenManager: the device's Clova access token over its whole life — login, proactive and
// 401-driven refresh, rotation, persistence, logout — as one state machine:
//
//   logged-out ──login──▶ valid ──(margin before expiry | 401 | expired)──▶ refreshing ──ok──▶ valid
//                            ▲                                                  │ transient failure
//                            └──────────── expired ◀── backoff, retry ◀────────┘
//   refreshing ──invalid_grant / invalid_client──▶ dead   (terminal: the device must pair again)
//
// Invariants and the hazards behind them:
// - Single-flight: one refresh at a time. Ten requests that get 401 together cause one
//   /token call; a 401 for a token that was already replaced returns the replacement
//   without another refresh (the CIC client may report a 401 that raced with our refresh).
// - Rotation is persisted BEFORE use. The server may rotate the refresh token; the old one
//   dies when the new one is issued. If the device handed out the new access token and then
//   lost power before the save, it would boot with a dead refresh token. So the new tokens
//   are saved first and only then become visible (getAccessToken / onUnauthorized resolve).
// - A failed save never drops the newest tokens. The server has already rotated: the
//   refresh token on flash is dead, so the one in memory is the only live copy. We keep and
//   use the new tokens, emit a coded 'warning' (STORE_WRITE_FAILED or the store's code),
//   retry the save with backoff, and try once more in close(). What is lost on a power cut
//   before a save succeeds cannot be saved by any policy; refusing the new token would only
//   add an outage to that risk.
// - Expiry is tracked on the monotonic clock. The store keeps a wall-clock expiresAt (the
//   only meaningful time across reboots); it is converted to a monotonic deadline once, at
//   load. After that, NTP stepping the wall clock by hours cannot make a token look fresh
//   or expired.
// - Devices without an RTC boot in 1970 (or at a build date) until NTP runs. Converting
//   then would make a token that expires next week look valid for 56 years (no proactive
//   refresh) — or, with a clock ahead, expired (a needless rotation at every boot). When the
//   wall clock is implausible (before MIN_PLAUSIBLE_WALL_MS, or earlier than the moment the
//   token was obtained) the expiry is "unknown": the stored token is handed out as is (CIC
//   answers 401 if it is dead, which refreshes it), and the conversion is retried every
//   WALL_RECHECK_MS and on every getAccessToken() until the clock is believable. TLS to the
//   auth server would fail certificate validity checks on such a clock anyway.
// - Timer delays are clamped to 2^31-1 ms: Node's setTimeout fires immediately above that
//   (a 30-day token would otherwise be refreshed in a tight loop).
// - dead is terminal for this process: no timers, every call rejects with the error that
//   killed the grant. login() revives it; the stored tokens stay for diagnosis.

import { TypedEmitter } from 'tiny-typed-emitter';
import { CicError, toCicError, type ErrorCode } from '../errors';
import { silentLogger, type Logger } from '../log';
import { Backoff, type BackoffOptions } from '../util/backoff';
import { systemClock, type Clock, type TimerHandle } from '../util/clock';
import { registerSecret } from '../util/secrets';
import type { CallOptions, ClovaAuthApi } from './clova-auth';
import type { StoredTokens, TokenPersistence, TokenResponse } from './types';

export type TokenState = 'logged-out' | 'valid' | 'refreshing' | 'expired' | 'dead';
export type RefreshReason = 'proactive' | 'expired' | 'unauthorized' | 'manual' | 'retry';

export interface RefreshedInfo {
  reason: RefreshReason;
  /** Lifetime of the new access token, ms. */
  expiresInMs: number;
  /** The server issued a new refresh token. */
  rotated: boolean;
  /** false when the save failed and the tokens live only in memory (see 'warning'). */
  persisted: boolean;
}

export interface TokenManagerEvents {
  state: (state: TokenState, previous: TokenState) => void;
  refreshed: (info: RefreshedInfo) => void;
  /** A refresh failed transiently; the next try is in `retryInMs` (undefined: none scheduled). */
  'refresh-failed': (error: CicError, retryInMs: number | undefined) => void;
  /** Something the caller should know but that did not stop the manager (e.g. STORE_WRITE_FAILED). */
  warning: (warning: CicError) => void;
  /** The grant is dead (AUTH_INVALID_GRANT) or the client refused (AUTH_INVALID_CLIENT). */
  dead: (error: CicError) => void;
}

export interface TokenManagerOptions {
  auth: ClovaAuthApi;
  store: TokenPersistence;
  clock?: Clock;
  log?: Logger;
  /** Refresh this long before expiry (never more than half the token's lifetime). Default 10 min. */
  refreshMarginMs?: number;
  /** A token with less than this left is not handed out; the caller waits for a refresh. Default 5 s. */
  minValidityMs?: number;
  /** Proactive refresh on a timer. Default true (false: only on demand and on 401). */
  autoRefresh?: boolean;
  /** Delays between background refresh / save retries. Default 5 s doubling to 5 min, full jitter. */
  retry?: BackoffOptions;
  /** Stored with the tokens. */
  deviceId?: string;
}

export interface TokenStatus {
  state: TokenState;
  loggedIn: boolean;
  /** ms the access token has left (≤ 0: expired); null: unknown (wall clock not trusted yet). */
  expiresInMs?: number | null;
  /** Wall-clock expiry as stored (ms since the epoch). */
  expiresAt?: number;
  obtainedAt?: number;
  deviceId?: string;
  /** ms until the next scheduled refresh or retry. */
  refreshInMs?: number;
  /** false when the newest tokens are only in memory (the last save failed). */
  persisted: boolean;
  wallClockTrusted: boolean;
  lastError?: { code: ErrorCode; message: string };
}

export interface LoginResult {
  /** false: the tokens are in use but could not be saved (see the 'warning' event). */
  persisted: boolean;
  expiresInMs: number;
}

export interface LogoutOptions extends CallOptions {
  /** Clear the local tokens even when the server could not be told (network down, 5xx). */
  force?: boolean;
}

/** A device wall clock earlier than this has not been set (no RTC, NTP not yet run). */
export const MIN_PLAUSIBLE_WALL_MS = Date.UTC(2024, 0, 1);
/** Tolerated wall-clock step backwards relative to a token's obtainedAt. */
const WALL_SKEW_MS = 5 * 60_000;
/** How often an untrusted wall clock is looked at again. */
export const WALL_RECHECK_MS = 60_000;
/** Node's setTimeout overflows (fires at once) above this. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
export const DEFAULT_REFRESH_MARGIN_MS = 10 * 60_000; // ample for retries on a flaky uplink
export const DEFAULT_MIN_VALIDITY_MS = 5_000; // a token about to expire would fail mid-request
/** Longest a request waits for a refresh under way while the current token is still valid. */
export const REFRESH_WAIT_MS = 3_000;
const DEFAULT_RETRY: BackoffOptions = { baseMs: 5_000, maxMs: 5 * 60_000, minMs: 1_000 };

/** Whether the wall clock can be believed (see the file comment). */
export function wallClockPlausible(wallNow: number, obtainedAt?: number): boolean {
  if (!(wallNow >= MIN_PLAUSIBLE_WALL_MS)) return false;
  if (obtainedAt !== undefined && obtainedAt >= MIN_PLAUSIBLE_WALL_MS && wallNow + WALL_SKEW_MS < obtainedAt) return false;
  return true;
}

/**
 * Converts a persisted wall-clock expiry into a deadline on the monotonic clock, or undefined
 * when the wall clock is not believable yet. Never believes more than the token's own lifetime.
 */
export function monotonicDeadline(clock: Clock, expiresAtWall: number, obtainedAtWall?: number): number | undefined {
  const wall = clock.wallNow();
  if (!wallClockPlausible(wall, obtainedAtWall)) return undefined;
  let left = expiresAtWall - wall;
  if (obtainedAtWall !== undefined && expiresAtWall > obtainedAtWall) left = Math.min(left, expiresAtWall - obtainedAtWall);
  return clock.now() + left;
}

function notLoggedIn(): CicError {
  return new CicError('AUTH_NOT_LOGGED_IN', 'there is no stored token; log in first');
}

export class TokenManager extends TypedEmitter<TokenManagerEvents> {
  private readonly auth: ClovaAuthApi;
  private readonly store: TokenPersistence;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly marginMs: number;
  private readonly minValidityMs: number;
  private readonly autoRefresh: boolean;
  private readonly deviceId: string | undefined;
  private readonly retryBackoff: Backoff;
  private readonly persistBackoff: Backoff;

  private st: TokenState = 'logged-out';
  private tokens: StoredTokens | undefined;
  /** Monotonic expiry of tokens.accessToken; undefined while the wall clock is not trusted. */
  private deadline: number | undefined;
  private lifetimeMs: number | undefined;
  private inflight: Promise<string> | undefined;
  private refreshAbort: AbortController | undefined;
  /** Bumped by login/logout: results of work started before belong to a discarded session. */
  private epoch = 0;
  private timer: TimerHandle | undefined;
  private timerAt: number | undefined;
  private persistTimer: TimerHandle | undefined;
  /** The newest tokens when their save failed. */
  private unpersisted: StoredTokens | undefined;
  private unpersistedSeq = 0;
  private saveSeq = 0;
  private savedSeq = 0;
  private deadError: CicError | undefined;
  private lastError: CicError | undefined;
  private loading: Promise<void> | undefined;
  /** Set while login() saves new tokens: token requests wait for it. */
  private gate: Promise<unknown> | undefined;
  private saveChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: TokenManagerOptions) {
    super();
    if (!options?.auth || !options.store) throw new CicError('ERR_INVALID_ARGUMENT', 'TokenManager needs auth and store');
    this.auth = options.auth;
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    this.marginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
    this.minValidityMs = options.minValidityMs ?? DEFAULT_MIN_VALIDITY_MS;
    if (!(this.marginMs >= 0) || !(this.minValidityMs >= 0)) throw new CicError('ERR_INVALID_ARGUMENT', 'margins must be ≥ 0');
    this.autoRefresh = options.autoRefresh ?? true;
    this.deviceId = options.deviceId;
    this.retryBackoff = new Backoff({ ...DEFAULT_RETRY, ...options.retry });
    this.persistBackoff = new Backoff({ ...DEFAULT_RETRY, ...options.retry });
  }

  get state(): TokenState {
    return this.st;
  }

  /** Loads the stored tokens (once) and arms the refresh timer. Optional: every call loads lazily. */
  async start(): Promise<TokenStatus> {
    this.assertOpen();
    await this.ensureLoaded();
    return this.status();
  }

  /** A usable access token: the current one, or after a refresh when it has (nearly) expired. */
  async getAccessToken(): Promise<string> {
    await this.ready();
    const tokens = this.tokens;
    if (!tokens) throw notLoggedIn();
    this.recheckWallClock();
    if (this.deadline === undefined) return tokens.accessToken; // expiry unknown: a 401 will tell
    const left = this.deadline - this.clock.now();
    if (left > this.minValidityMs) {
      if (left <= this.effectiveMargin() && this.autoRefresh && !this.inflight && this.timerAt === undefined) this.backgroundRefresh('proactive');
      if (this.inflight) return this.awaitRefresh(this.inflight, tokens.accessToken);
      return tokens.accessToken;
    }
    return this.refreshNow('expired');
  }

  /**
   * A refresh is under way while the current token is still valid. A rotating server refuses
   * the current token as soon as it has issued the next one, so a request sent now would race
   * the refresh and lose (a live voice request cannot be sent twice). Wait for the refresh,
   * but no longer than REFRESH_WAIT_MS: a slow or failing auth server must not hold requests
   * the still-valid token can serve.
   */
  private awaitRefresh(refresh: Promise<string>, current: string): Promise<string> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => resolve(this.tokens?.accessToken ?? current), REFRESH_WAIT_MS);
      const done = (token: string) => {
        this.clock.clearTimeout(timer);
        resolve(token);
      };
      refresh.then(done, () => done(this.tokens?.accessToken ?? current));
    });
  }

  /**
   * The current access token when it can be handed out without waiting (loaded, not dead, not
   * mid-login, more than minValidityMs left or expiry unknown), else undefined: then
   * getAccessToken() waits for what is needed. A connection stamps every new stream with this,
   * so a refresh reaches the live connection before its next request.
   */
  peekAccessToken(): string | undefined {
    const tokens = this.tokens;
    if (this.closed || this.gate || this.deadError || this.inflight || !tokens) return undefined;
    this.recheckWallClock();
    if (this.deadline === undefined) return tokens.accessToken;
    const left = this.deadline - this.clock.now();
    if (left <= this.minValidityMs) return undefined;
    if (left <= this.effectiveMargin() && this.autoRefresh && this.timerAt === undefined) {
      this.backgroundRefresh('proactive');
      return undefined; // getAccessToken() waits for it
    }
    return tokens.accessToken;
  }

  /**
   * The server answered 401 for `rejected`. Refreshes once for any number of concurrent
   * callers; when `rejected` was already replaced, returns the replacement without refreshing.
   */
  async onUnauthorized(rejected: string): Promise<string> {
    await this.ready();
    if (!this.tokens) throw notLoggedIn();
    if (rejected !== this.tokens.accessToken) {
      this.log.debug('token manager: 401 for a token that was already replaced');
      return this.getAccessToken();
    }
    return this.refreshNow('unauthorized');
  }

  /** Refreshes now (joining a refresh in flight). */
  async forceRefresh(): Promise<string> {
    await this.ready();
    return this.refreshNow('manual');
  }

  /** authorize(account credential) + token(code) → saved → valid. Throws AUTH_TERMS_REQUIRED on 451. */
  async login(accountCredential: string, options: CallOptions = {}): Promise<LoginResult> {
    this.assertOpen();
    const { code } = await this.auth.authorize(accountCredential, options);
    return this.loginWithCode(code, options);
  }

  /** token(code) for a code from authorize() or from the companion app → saved → valid. */
  async loginWithCode(code: string, options: CallOptions = {}): Promise<LoginResult> {
    this.assertOpen();
    await this.waitGate();
    const sentMono = this.clock.now();
    const sentWall = this.clock.wallNow();
    // No closed-check after this point: the code is consumed, the tokens must be saved.
    const resp = await this.auth.token(code, options);
    if (!resp.refresh_token) throw new CicError('AUTH_BAD_RESPONSE', 'token: the answer has no refresh_token');
    const next = this.toStored(resp, sentWall, resp.refresh_token);

    // From here on the old session is discarded: a refresh in flight for the old grant is
    // aborted and its result would be ignored; a load in progress is superseded.
    this.epoch++;
    const epoch = this.epoch;
    this.refreshAbort?.abort();
    this.inflight = undefined;
    this.unpersisted = undefined; // the old session's unsaved tokens are moot now
    this.clearTimers();
    this.loading = Promise.resolve();
    const saving = this.persist(next);
    this.gate = saving;
    let persisted: boolean;
    try {
      persisted = await saving;
    } finally {
      if (this.gate === saving) this.gate = undefined;
    }
    if (epoch !== this.epoch) throw new CicError('ERR_CLOSED', 'login was superseded by another login or logout');
    this.adopt(next, sentMono, resp.expires_in * 1000);
    this.deadError = undefined;
    this.lastError = undefined;
    this.retryBackoff.reset();
    this.log.info('token manager: logged in', { expiresInMs: resp.expires_in * 1000, persisted });
    this.setState('valid');
    this.schedule();
    return { persisted, expiresInMs: resp.expires_in * 1000 };
  }

  /**
   * Revokes the access token at the server, then clears the store. The store is cleared
   * also when the server says the grant is already dead (invalid_grant), and with `force`
   * whatever went wrong; otherwise a failed revoke throws and keeps the tokens (try again).
   */
  async logout(options: LogoutOptions = {}): Promise<{ revoked: boolean }> {
    this.assertOpen();
    await this.waitGate();
    try {
      await this.ensureLoaded();
    } catch (e) {
      // Unreadable store (no key, I/O): nothing to revoke, but logout must still clear it.
      this.log.warn('token manager: logout could not read the store; clearing it', { err: e });
    }
    let revoked = false;
    const tokens = this.tokens;
    if (tokens) {
      try {
        await this.auth.revoke(tokens.accessToken, options);
        revoked = true;
      } catch (e) {
        const err = toCicError(e, 'AUTH_NETWORK');
        if (err.code === 'AUTH_INVALID_GRANT') {
          this.log.info('token manager: the server no longer knows the token; clearing it locally');
        } else if (options.force) {
          this.log.warn('token manager: revoke failed; clearing the local tokens anyway (force)', { err });
        } else {
          throw err;
        }
      }
    }
    this.epoch++;
    this.refreshAbort?.abort();
    this.inflight = undefined;
    this.clearTimers();
    this.tokens = undefined;
    this.deadline = undefined;
    this.lifetimeMs = undefined;
    this.unpersisted = undefined;
    this.deadError = undefined;
    this.lastError = undefined;
    this.loading = Promise.resolve();
    try {
      await this.enqueue(() => this.store.clear());
    } finally {
      this.setState('logged-out');
    }
    this.log.info('token manager: logged out', { revoked });
    return { revoked };
  }

  status(): TokenStatus {
    const now = this.clock.now();
    const t = this.tokens;
    const out: TokenStatus = {
      state: this.st,
      loggedIn: t !== undefined,
      persisted: this.unpersisted === undefined,
      wallClockTrusted: wallClockPlausible(this.clock.wallNow(), t?.obtainedAt),
    };
    if (t) {
      out.expiresInMs = this.deadline === undefined ? null : Math.round(this.deadline - now);
      out.expiresAt = t.expiresAt;
      out.obtainedAt = t.obtainedAt;
      if (t.deviceId !== undefined) out.deviceId = t.deviceId;
    }
    if (this.timerAt !== undefined) out.refreshInMs = Math.max(0, Math.round(this.timerAt - now));
    const err = this.deadError ?? this.lastError;
    if (err) out.lastError = { code: err.code, message: err.message };
    return out;
  }

  /**
   * Stops timers; later calls throw ERR_CLOSED. A refresh in flight is NOT aborted — the
   * server may already have rotated the refresh token, and its answer is the only copy of the
   * new one — the returned promise settles once it (and one last save, if the newest tokens
   * are unsaved) is done. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.clearTimers();
    this.closing = (async () => {
      await this.inflight?.catch(() => undefined);
      await this.gate?.catch(() => undefined);
      const pending = this.unpersisted;
      if (pending && pending === this.tokens) await this.persist(pending);
      await this.saveChain;
    })();
    return this.closing;
  }

  // --- internals ------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new CicError('ERR_CLOSED', 'the token manager is closed');
  }

  private async waitGate(): Promise<void> {
    while (this.gate) await this.gate.catch(() => undefined);
  }

  /** Open, not mid-login, loaded, not dead. */
  private async ready(): Promise<void> {
    this.assertOpen();
    await this.waitGate();
    await this.ensureLoaded();
    this.assertOpen();
    if (this.deadError) throw this.deadError;
  }

  private ensureLoaded(): Promise<void> {
    if (!this.loading) {
      const p = this.load();
      this.loading = p;
      // A read error (STORE_READ_FAILED, STORE_KEY) is reported to the caller; the next call reads again.
      p.catch(() => {
        if (this.loading === p) this.loading = undefined;
      });
    }
    return this.loading;
  }

  private async load(): Promise<void> {
    const epoch = this.epoch;
    const r = await this.store.load();
    if (epoch !== this.epoch) return; // a login or logout happened meanwhile; it wins
    switch (r.state) {
      case 'empty':
        this.setState('logged-out');
        return;
      case 'corrupt':
      case 'foreign': {
        const err = new CicError(r.state === 'corrupt' ? 'STORE_CORRUPT' : 'STORE_FOREIGN', `the token store cannot be used (${r.reason}); log in again`, {
          details: { path: r.path, reason: r.reason },
        });
        this.log.warn('token manager: no usable stored token', { err });
        this.emit('warning', err);
        this.setState('logged-out');
        return;
      }
      case 'ok': {
        const t = r.tokens;
        registerSecret(t.accessToken);
        registerSecret(t.refreshToken);
        this.tokens = t;
        this.lifetimeMs = t.expiresAt > t.obtainedAt ? t.expiresAt - t.obtainedAt : undefined;
        this.deadline = monotonicDeadline(this.clock, t.expiresAt, t.obtainedAt);
        if (this.deadline === undefined) {
          this.log.warn('token manager: the wall clock is not set; the token expiry is unknown until it is', { wallNow: this.clock.wallNow() });
        }
        this.log.info('token manager: loaded stored tokens', {
          recovered: r.recovered,
          expiresInMs: this.deadline === undefined ? null : Math.round(this.deadline - this.clock.now()),
        });
        this.setState(this.isExpired() ? 'expired' : 'valid');
        this.schedule();
        return;
      }
    }
  }

  /** When the expiry is unknown, tries the wall clock again. */
  private recheckWallClock(): void {
    const t = this.tokens;
    if (!t || this.deadline !== undefined) return;
    const d = monotonicDeadline(this.clock, t.expiresAt, t.obtainedAt);
    if (d === undefined) return;
    this.deadline = d;
    this.log.info('token manager: the wall clock is set; token expiry known', { expiresInMs: Math.round(d - this.clock.now()) });
    if (this.st !== 'refreshing') this.setState(this.isExpired() ? 'expired' : 'valid');
    if (!this.inflight) this.schedule();
  }

  private isExpired(): boolean {
    return this.deadline !== undefined && this.deadline - this.clock.now() <= this.minValidityMs;
  }

  private effectiveMargin(): number {
    return Math.min(this.marginMs, this.lifetimeMs === undefined ? Infinity : this.lifetimeMs / 2);
  }

  private clearTimers(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    this.clock.clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
  }

  /** Arms the proactive refresh (or the wall-clock recheck) for the current tokens. */
  private schedule(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    if (this.closed || !this.autoRefresh || !this.tokens || this.deadError || this.inflight) return;
    if (this.deadline === undefined) {
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.recheckWallClock();
        if (this.deadline === undefined) this.schedule();
      }, WALL_RECHECK_MS);
      return;
    }
    this.armAt(this.deadline - this.effectiveMargin(), 'proactive');
  }

  /** Runs a background refresh at monotonic time `at` (long delays in ≤ 2^31-1 ms steps). */
  private armAt(at: number, reason: RefreshReason): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    const delay = at - this.clock.now();
    if (delay <= 0) {
      this.timerAt = undefined;
      this.backgroundRefresh(reason);
      return;
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.clock.now() >= at) {
        this.timerAt = undefined;
        this.backgroundRefresh(reason);
      } else {
        this.armAt(at, reason); // an intermediate step of a long delay
      }
    }, Math.min(delay, MAX_TIMER_MS));
  }

  private backgroundRefresh(reason: RefreshReason): void {
    // Failures are handled (state, event, retry timer) inside doRefresh.
    this.refreshNow(reason).catch(() => undefined);
  }

  private refreshNow(reason: RefreshReason): Promise<string> {
    if (this.inflight) return this.inflight;
    if (this.closed) return Promise.reject(new CicError('ERR_CLOSED', 'the token manager is closed'));
    if (this.deadError) return Promise.reject(this.deadError);
    if (!this.tokens) return Promise.reject(notLoggedIn());
    const p = this.doRefresh(reason, this.tokens);
    this.inflight = p;
    // doRefresh clears inflight itself before it re-arms timers; this catches the paths
    // that settle before the assignment above (a fake auth that throws synchronously).
    const clear = () => {
      if (this.inflight === p) this.inflight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private async doRefresh(reason: RefreshReason, old: StoredTokens): Promise<string> {
    const epoch = this.epoch;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    this.setState('refreshing');
    const abort = new AbortController();
    this.refreshAbort = abort;
    const sentMono = this.clock.now();
    const sentWall = this.clock.wallNow();
    this.log.debug('token manager: refreshing', { reason });

    let resp: TokenResponse;
    try {
      resp = await this.auth.refresh(old.refreshToken, { accessExpiresAt: this.deadline, signal: abort.signal });
    } catch (e) {
      const err = toCicError(e, 'AUTH_NETWORK');
      if (epoch !== this.epoch) throw err; // superseded by login/logout: nothing of ours to update
      this.inflight = undefined;
      this.lastError = err;
      if (err.code === 'AUTH_INVALID_GRANT' || err.code === 'AUTH_INVALID_CLIENT') {
        this.die(err);
        throw err;
      }
      // Transient (or an odd refusal): keep the current tokens, try again later.
      const retryInMs = this.closed || !this.autoRefresh ? undefined : this.retryBackoff.next();
      this.setState(this.isExpired() ? 'expired' : 'valid');
      this.log.warn('token manager: refresh failed', { reason, err, retryInMs });
      this.emit('refresh-failed', err, retryInMs);
      if (retryInMs !== undefined) this.armAt(this.clock.now() + retryInMs, 'retry');
      throw err;
    }
    if (epoch !== this.epoch) return this.currentToken();

    const next = this.toStored(resp, sentWall, resp.refresh_token ?? old.refreshToken);
    const rotated = resp.refresh_token !== undefined && resp.refresh_token !== old.refreshToken;
    // Persist BEFORE the new access token becomes visible (file comment). Waiters stay
    // blocked on this promise until the save has settled.
    const persisted = await this.persist(next);
    if (epoch !== this.epoch) return this.currentToken();

    this.inflight = undefined;
    this.adopt(next, sentMono, resp.expires_in * 1000);
    this.retryBackoff.reset();
    this.lastError = undefined;
    this.setState('valid');
    this.log.info('token manager: refreshed', { reason, expiresInMs: resp.expires_in * 1000, rotated, persisted });
    this.emit('refreshed', { reason, expiresInMs: resp.expires_in * 1000, rotated, persisted });
    this.schedule();
    return next.accessToken;
  }

  /** After a superseded refresh: whatever the session that replaced ours holds now. */
  private currentToken(): string {
    if (this.deadError) throw this.deadError;
    if (!this.tokens) throw notLoggedIn();
    return this.tokens.accessToken;
  }

  private die(err: CicError): void {
    this.deadError = err;
    this.clearTimers();
    this.setState('dead');
    this.log.error('token manager: the grant is dead; the device must be paired again', { err });
    this.emit('dead', err);
  }

  private toStored(resp: TokenResponse, sentWall: number, refreshToken: string): StoredTokens {
    registerSecret(resp.access_token);
    registerSecret(refreshToken);
    const t: StoredTokens = {
      accessToken: resp.access_token,
      refreshToken,
      // Counted from when the request was sent: the server's clock started no earlier.
      expiresAt: sentWall + resp.expires_in * 1000,
      tokenType: resp.token_type || 'Bearer',
      obtainedAt: sentWall,
    };
    const deviceId = this.deviceId ?? this.tokens?.deviceId;
    if (deviceId !== undefined) t.deviceId = deviceId;
    return t;
  }

  private adopt(next: StoredTokens, sentMono: number, lifetimeMs: number): void {
    this.tokens = next;
    this.lifetimeMs = lifetimeMs;
    this.deadline = sentMono + lifetimeMs;
  }

  /** Saves `tokens`; on failure keeps them as the unsaved newest, warns and retries later. Never throws. */
  private async persist(tokens: StoredTokens): Promise<boolean> {
    // Saves run in call order, and a later call always carries newer tokens: a success
    // settles every earlier failure, a failure only counts if nothing newer was saved.
    const seq = ++this.saveSeq;
    try {
      await this.enqueue(() => this.store.save(tokens));
      this.savedSeq = Math.max(this.savedSeq, seq);
      if (seq >= this.unpersistedSeq) {
        this.unpersisted = undefined;
        this.clock.clearTimeout(this.persistTimer);
        this.persistTimer = undefined;
        this.persistBackoff.reset();
      }
      return true;
    } catch (e) {
      const err = toCicError(e, 'STORE_WRITE_FAILED');
      if (seq < this.savedSeq) return false;
      this.unpersisted = tokens;
      this.unpersistedSeq = seq;
      this.log.warn('token manager: could not save the new tokens; using them from memory until a save succeeds', { err });
      this.emit('warning', err);
      this.schedulePersistRetry();
      return false;
    }
  }

  private schedulePersistRetry(): void {
    if (this.closed || this.persistTimer) return;
    this.persistTimer = this.clock.setTimeout(() => {
      this.persistTimer = undefined;
      const pending = this.unpersisted;
      if (pending && pending === this.tokens) void this.persist(pending);
    }, Math.min(this.persistBackoff.next(), MAX_TIMER_MS));
  }

  /** Store calls run one after another, in call order (save, save, clear …). */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.saveChain.then(fn, fn);
    this.saveChain = run.catch(() => undefined);
    return run;
  }

  private setState(next: TokenState): void {
    const prev = this.st;
    if (prev === next) return;
    this.st = next;
    this.log.debug('token manager: state', { from: prev, to: next });
    this.emit('state', next, prev);
  }
}
