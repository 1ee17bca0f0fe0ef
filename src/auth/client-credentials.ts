// OAuth 2.0 client credentials grant (RFC 6749 §4.4; shared/seeds/clickview-client-credentials.md):
// a form-encoded POST of grant_type=client_credentials, client_id, client_secret, scope →
// {access_token, token_type, expires_in, scope}.
//
// Policy (the guide's "best practices"):
// - One cached token for every caller, until shortly before it expires.
// - Renewed ahead of time: inside the renew window (renewBeforeMs before expiry) callers
//   still get the cached token at once while one background request fetches the next; only
//   when less than minValidityMs is left do callers wait for the new token.
// - Single-flight: concurrent callers share one request, and its failure.
// - Both windows are capped by a fraction of the token's lifetime, so a server issuing
//   60-second tokens does not make every call a renewal.
// - Optional cache hook (load/save) so a restart does not cost a request per process start.
//   The hook stores wall-clock times; a cached token is only believed when the wall clock is
//   plausible (see token-manager.ts: devices boot with the clock unset) and never for longer
//   than its own lifetime. A file-backed implementation belongs next to the token file
//   (util/atomic-file); it is the caller's to provide.

import { CicError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { systemClock, type Clock } from '../util/clock';
import { registerSecret } from '../util/secrets';
import { DEFAULT_AUTH_USER_AGENT, DEFAULT_REQUEST_TIMEOUT_MS, parseTokenResponse } from './clova-auth';
import { abortError, httpRequest, parseJsonObject, type HttpResponse } from './http-request';
import { oauthError } from './oauth-error';
import { withRetry, type RetryInfo, type RetryPolicy } from './retry';
import { monotonicDeadline } from './token-manager';
import { parseBaseUrl } from './url';

export const DEFAULT_RENEW_BEFORE_MS = 60_000;
export const DEFAULT_CC_MIN_VALIDITY_MS = 10_000;

/** A client-credentials token as handed to callers. */
export interface ClientToken {
  accessToken: string;
  tokenType: string;
  /** The scope the server granted (may differ from the requested one), if it said. */
  scope?: string;
  /** Monotonic ms (on the client's clock) when the token expires. */
  expiresAt: number;
}

/** What the cache hook stores (wall-clock times: the only ones meaningful across restarts). */
export interface CachedClientToken {
  accessToken: string;
  tokenType: string;
  scope?: string;
  /** The scope that was requested (a cache entry for another scope is ignored). */
  requestedScope: string;
  clientId: string;
  /** Wall-clock ms since the epoch. */
  expiresAt: number;
  obtainedAt: number;
}

/** Persistence hook for the cached token. Errors are logged and ignored (a cache is optional). */
export interface ClientTokenCache {
  load(): Promise<CachedClientToken | undefined>;
  save(token: CachedClientToken): Promise<void>;
}

export interface ClientCredentialsOptions {
  /** The token endpoint itself, e.g. https://auth.example.com/connect/token. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** Space-separated string or a list; omitted when empty. */
  scope?: string | readonly string[];
  caPem?: string;
  clock?: Clock;
  log?: Logger;
  /** Deadline per request (whole exchange), ms. Default 15 s. */
  timeoutMs?: number;
  retry?: RetryPolicy;
  onRetry?: (info: RetryInfo) => void;
  /** Start renewing this long before expiry (capped at half the lifetime). Default 60 s. */
  renewBeforeMs?: number;
  /** Never hand out a token with less than this left (capped at a quarter of the lifetime). Default 10 s. */
  minValidityMs?: number;
  cache?: ClientTokenCache;
  maxResponseBytes?: number;
  userAgent?: string;
  allowHttp?: boolean;
}

export class ClientCredentialsClient {
  private readonly url: URL;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly scope: string;
  private readonly renewBeforeMs: number;
  private readonly minValidityMs: number;
  private current: (ClientToken & { lifetimeMs: number }) | undefined;
  private inflight: Promise<ClientToken> | undefined;
  private cacheLoad: Promise<void> | undefined;

  constructor(private readonly options: ClientCredentialsOptions) {
    if (!options || typeof options !== 'object') throw new CicError('ERR_INVALID_ARGUMENT', 'ClientCredentialsClient needs options');
    for (const k of ['tokenUrl', 'clientId', 'clientSecret'] as const) {
      if (typeof options[k] !== 'string' || options[k] === '') throw new CicError('ERR_INVALID_ARGUMENT', `${k} must be a non-empty string`);
    }
    registerSecret(options.clientSecret);
    this.url = parseBaseUrl(options.tokenUrl, 'tokenUrl', { allowHttp: options.allowHttp });
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    const scope = options.scope ?? '';
    this.scope = (typeof scope === 'string' ? scope.split(/\s+/) : [...scope]).filter((s) => s !== '').join(' ');
    this.renewBeforeMs = options.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS;
    this.minValidityMs = options.minValidityMs ?? DEFAULT_CC_MIN_VALIDITY_MS;
  }

  /** The cached token, renewing it first when it is (nearly) expired. */
  async getToken(options: { signal?: AbortSignal } = {}): Promise<ClientToken> {
    if (options.signal?.aborted) throw abortError(options.signal);
    this.cacheLoad ??= this.loadCache();
    await this.cacheLoad;
    const cur = this.current;
    if (cur) {
      const left = cur.expiresAt - this.clock.now();
      if (left > Math.min(this.minValidityMs, cur.lifetimeMs / 4)) {
        if (left <= Math.min(this.renewBeforeMs, cur.lifetimeMs / 2) && !this.inflight) {
          this.fetch().catch((e) => this.log.warn('client credentials: background renewal failed', { err: e }));
        }
        return publicToken(cur);
      }
    }
    return withAbort(this.fetch(), options.signal);
  }

  async getAccessToken(): Promise<string> {
    return (await this.getToken()).accessToken;
  }

  /** The resource server refused `rejected` (401): forget it, so the next call fetches a new one. */
  invalidate(rejected?: string): void {
    if (this.current && (rejected === undefined || rejected === this.current.accessToken)) this.current = undefined;
  }

  /** Settles when no request is in flight (a background renewal included); never rejects. */
  async whenIdle(): Promise<void> {
    while (this.inflight) await this.inflight.then(() => undefined, () => undefined);
  }

  /** Monotonic expiry of the cached token, or undefined (for status displays; no secret). */
  get expiresAt(): number | undefined {
    return this.current?.expiresAt;
  }

  // The shared request takes no caller's signal: one caller giving up must not fail the
  // others waiting on the same request (each races its own signal in withAbort).
  private fetch(): Promise<ClientToken> {
    if (this.inflight) return this.inflight;
    const p = this.request();
    this.inflight = p;
    const clear = () => {
      if (this.inflight === p) this.inflight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private async request(): Promise<ClientToken> {
    const sentMono = this.clock.now();
    const sentWall = this.clock.wallNow();
    const res = await withRetry(
      async (attempt) => {
        this.log.debug('client credentials: request', { attempt });
        const r: HttpResponse = await httpRequest({
          method: 'POST',
          url: this.url,
          form: {
            grant_type: 'client_credentials',
            client_id: this.options.clientId,
            client_secret: this.options.clientSecret,
            scope: this.scope || undefined,
          },
          headers: { 'user-agent': this.options.userAgent ?? DEFAULT_AUTH_USER_AGENT },
          timeoutMs: this.options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
          clock: this.clock,
          caPem: this.options.caPem,
          maxResponseBytes: this.options.maxResponseBytes,
        });
        this.log.debug('client credentials: response', { status: r.status, attempt });
        if (r.status >= 200 && r.status < 300) return r;
        throw oauthError(r.status, r.body, 'client_credentials', r.headers);
      },
      {
        ...this.options.retry,
        what: 'client_credentials',
        clock: this.clock,
        onRetry: (info) => {
          this.log.info('client credentials: retrying', { attempt: info.attempt, delayMs: info.delayMs, errorCode: info.error.code });
          this.options.onRetry?.(info);
        },
      },
    );
    const t = parseTokenResponse(parseJsonObject(res, 'client credentials'), 'client credentials');
    const lifetimeMs = t.expires_in * 1000;
    const token = { accessToken: t.access_token, tokenType: t.token_type, expiresAt: sentMono + lifetimeMs, lifetimeMs, ...(t.scope !== undefined ? { scope: t.scope } : {}) };
    this.current = token;
    this.log.debug('client credentials: new token', { expiresInMs: lifetimeMs, scope: t.scope });
    if (this.options.cache) {
      const entry: CachedClientToken = {
        accessToken: t.access_token,
        tokenType: t.token_type,
        requestedScope: this.scope,
        clientId: this.options.clientId,
        expiresAt: sentWall + lifetimeMs,
        obtainedAt: sentWall,
        ...(t.scope !== undefined ? { scope: t.scope } : {}),
      };
      try {
        await this.options.cache.save(entry);
      } catch (e) {
        this.log.warn('client credentials: could not save the token cache', { err: e });
      }
    }
    return publicToken(token);
  }

  private async loadCache(): Promise<void> {
    const cache = this.options.cache;
    if (!cache) return;
    let entry: CachedClientToken | undefined;
    try {
      entry = await cache.load();
    } catch (e) {
      this.log.warn('client credentials: could not read the token cache', { err: e });
      return;
    }
    if (!entry || typeof entry.accessToken !== 'string' || entry.accessToken === '') return;
    registerSecret(entry.accessToken);
    if (entry.clientId !== this.options.clientId || entry.requestedScope !== this.scope) return;
    if (typeof entry.expiresAt !== 'number' || typeof entry.obtainedAt !== 'number' || !(entry.expiresAt > entry.obtainedAt)) return;
    const expiresAt = monotonicDeadline(this.clock, entry.expiresAt, entry.obtainedAt);
    if (expiresAt === undefined) {
      this.log.info('client credentials: cached token ignored (the wall clock is not set)');
      return;
    }
    if (this.current) return; // a fetch finished while the cache was read
    this.current = {
      accessToken: entry.accessToken,
      tokenType: entry.tokenType || 'Bearer',
      expiresAt,
      lifetimeMs: entry.expiresAt - entry.obtainedAt,
      ...(entry.scope !== undefined ? { scope: entry.scope } : {}),
    };
  }
}

function withAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function publicToken(t: ClientToken & { lifetimeMs: number }): ClientToken {
  return { accessToken: t.accessToken, tokenType: t.tokenType, expiresAt: t.expiresAt, ...(t.scope !== undefined ? { scope: t.scope } : {}) };
}
