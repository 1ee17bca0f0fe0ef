// Clova auth API client (/authorize, /token): see shared/seeds/clova-auth-api.*.md and
// PROTOCOL.md §1. Stateless apart from configuration: the TokenManager owns tokens.
//
// Wire decisions:
// - /authorize: GET (default) or POST, `Authorization: Bearer <account credential>`, params
//   client_id, device_id, model_id?, response_type=code, state (+ grant_type=
//   uauth_auth_code_v2 in the JP region, where the account credential is the LINE account's
//   authorization code). The state is 24 random bytes, base64url (no URL-encoding ambiguity
//   between what we send and the URL-decoded value the server echoes); the answer's state
//   must equal it, on 200 and on 451 alike (a forged 451 would send the user to a page of an
//   attacker's choice).
// - /token: grant_type in the query string, everything else as an
//   application/x-www-form-urlencoded POST body — exactly what the curl examples send, and
//   the client secret stays out of URLs (server access logs, proxies).
// - 451: thrown as CicError AUTH_TERMS_REQUIRED whose details are TermsRequiredDetails
//   ({redirectUri, code, state}); the message names neither value. `termsRequired(err)`
//   gives them back typed.
// - Retries cover failures before a usable answer (5xx, network, timeout, 429). A 2xx whose
//   body does not parse is NOT retried here: the server did the work (a code is consumed, a
//   refresh token may be rotated), so repeating the call can only fail. It surfaces as
//   AUTH_BAD_RESPONSE (retryable: the TokenManager tries again later; a server with a
//   rotation grace period then accepts the old refresh token).
// - Every value that is a secret (account credential, client secret, codes, tokens) is
//   registered with util/secrets before it can reach a log line or an error message.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CicError, isCicError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { systemClock, type Clock } from '../util/clock';
import { registerSecret } from '../util/secrets';
import { httpRequest, parseJsonObject, type HttpResponse } from './http-request';
import { oauthError, type AuthEndpoint } from './oauth-error';
import { withRetry, type RetryInfo, type RetryPolicy } from './retry';
import type { TokenResponse } from './types';
import { joinUrl, parseBaseUrl } from './url';

export type ClovaRegion = 'KR' | 'JP';

/**
 * Default User-Agent of auth requests. Not derived from src/version.ts on purpose: that module
 * reads package.json relative to itself, which the per-file test build cannot resolve; the CLI
 * passes its full product string (userAgent option) anyway.
 */
export const DEFAULT_AUTH_USER_AGENT = 'cic-runtime';
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000; // one auth exchange on a slow mobile uplink
export const DEFAULT_REFRESH_FLOOR_MS = 3_000; // below this a TLS handshake on a small ARM board may not finish
/** The JP /authorize grant type (the account credential is a LINE authorization code). */
export const JP_AUTHORIZE_GRANT_TYPE = 'uauth_auth_code_v2';
/** Longest lifetime believed from expires_in; more is a server bug and would overflow timers. */
export const MAX_EXPIRES_IN_S = 366 * 24 * 3600;

export interface ClovaAuthTimeouts {
  /** Deadline for each request (whole exchange), ms. Default 15 s. */
  requestMs?: number;
  /** Smallest deadline a refresh gets when the access token is about to expire, ms. Default 3 s. */
  refreshFloorMs?: number;
}

export interface ClovaAuthOptions {
  /** The auth server base URL; with or without a trailing slash, may carry a path prefix. */
  authUrl: string;
  clientId: string;
  clientSecret: string;
  deviceId: string;
  modelId?: string;
  /** Default 'KR'. */
  region?: ClovaRegion;
  /** An extra trusted CA (PEM) for the auth server. */
  caPem?: string;
  clock?: Clock;
  log?: Logger;
  timeouts?: ClovaAuthTimeouts;
  /** HTTP method of /authorize. Default 'GET'. */
  authorizeMethod?: 'GET' | 'POST';
  /** Retries of transient failures (5xx, network, timeout). Default 3 attempts. */
  retry?: RetryPolicy;
  /** Called before each retry delay. */
  onRetry?: (info: RetryInfo) => void;
  maxResponseBytes?: number;
  userAgent?: string;
  /** Allow an http: authUrl (loopback tests only). */
  allowHttp?: boolean;
}

export interface AuthorizeResult {
  code: string;
  state: string;
}

/** details of an AUTH_TERMS_REQUIRED error (HTTP 451). */
export interface TermsRequiredDetails {
  status: 451;
  /** Show this page to the user; it redirects to clova://agreement-success or clova://agreement-failure?error=… */
  redirectUri: string;
  /** The authorization code of the 451 answer (usable with token() once the terms are agreed). */
  code: string;
  state: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface RefreshOptions extends CallOptions {
  /**
   * Monotonic ms (on the client's clock) when the current access token expires. The request
   * deadline is clamped to the time left (never below refreshFloorMs): a refresh that cannot
   * finish before the token dies should fail fast and be retried, not hang.
   */
  accessExpiresAt?: number;
}

/** What the TokenManager needs from an auth client (ClovaAuthClient implements it). */
export interface ClovaAuthApi {
  authorize(accountCredential: string, options?: CallOptions): Promise<AuthorizeResult>;
  token(code: string, options?: CallOptions): Promise<TokenResponse>;
  refresh(refreshToken: string, options?: RefreshOptions): Promise<TokenResponse>;
  revoke(accessToken: string, options?: CallOptions): Promise<void>;
}

/** The terms-page details of an AUTH_TERMS_REQUIRED error, or undefined for any other error. */
export function termsRequired(err: unknown): TermsRequiredDetails | undefined {
  if (!isCicError(err, 'AUTH_TERMS_REQUIRED') || !err.details) return undefined;
  const d = err.details as Partial<TermsRequiredDetails>;
  if (typeof d.redirectUri !== 'string' || typeof d.code !== 'string') return undefined;
  return { status: 451, redirectUri: d.redirectUri, code: d.code, state: String(d.state ?? '') };
}

function requireString(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new CicError('ERR_INVALID_ARGUMENT', `${name} must be a non-empty string`);
  return v;
}

function sameState(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Validates a token answer (RFC 6749 §5.1). Throws AUTH_BAD_RESPONSE naming the bad field,
 * never its value. expires_in may be a number or a string of digits (seen in the wild).
 */
export function parseTokenResponse(
  obj: Record<string, unknown>,
  what: string,
  options: { requireRefreshToken?: boolean } = {},
): TokenResponse {
  const bad = (field: string, why: string) => new CicError('AUTH_BAD_RESPONSE', `${what}: ${field} ${why}`, { details: { field } });
  const { access_token, refresh_token, expires_in, token_type, scope } = obj;
  if (typeof access_token !== 'string' || access_token === '') throw bad('access_token', 'is missing or not a string');
  registerSecret(access_token);
  if (refresh_token !== undefined && refresh_token !== null && (typeof refresh_token !== 'string' || refresh_token === '')) {
    throw bad('refresh_token', 'is not a string');
  }
  if (typeof refresh_token === 'string') registerSecret(refresh_token);
  if (options.requireRefreshToken && typeof refresh_token !== 'string') throw bad('refresh_token', 'is missing');
  let seconds: number;
  if (typeof expires_in === 'number') seconds = expires_in;
  else if (typeof expires_in === 'string' && /^\d{1,12}$/.test(expires_in)) seconds = Number(expires_in);
  else throw bad('expires_in', 'is missing or not a number');
  if (!Number.isFinite(seconds) || seconds <= 0) throw bad('expires_in', 'is not a positive number');
  if (typeof token_type !== 'string') throw bad('token_type', 'is missing or not a string');
  // The runtime only speaks Bearer (RFC 6750); the type is case-insensitive (RFC 6749 §7.1).
  if (token_type.toLowerCase() !== 'bearer') throw bad('token_type', `is not Bearer`);
  if (scope !== undefined && scope !== null && typeof scope !== 'string') throw bad('scope', 'is not a string');
  const out: TokenResponse = {
    access_token,
    expires_in: Math.min(seconds, MAX_EXPIRES_IN_S),
    token_type: 'Bearer',
  };
  if (typeof refresh_token === 'string') out.refresh_token = refresh_token;
  if (typeof scope === 'string') out.scope = scope;
  return out;
}

export class ClovaAuthClient implements ClovaAuthApi {
  readonly region: ClovaRegion;
  private readonly base: URL;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly requestMs: number;
  private readonly refreshFloorMs: number;
  private readonly userAgent: string;

  constructor(private readonly options: ClovaAuthOptions) {
    if (!options || typeof options !== 'object') throw new CicError('ERR_INVALID_ARGUMENT', 'ClovaAuthClient needs options');
    requireString(options.clientId, 'clientId');
    requireString(options.clientSecret, 'clientSecret');
    requireString(options.deviceId, 'deviceId');
    if (options.modelId !== undefined) requireString(options.modelId, 'modelId');
    registerSecret(options.clientSecret);
    this.base = parseBaseUrl(requireString(options.authUrl, 'authUrl'), 'authUrl', { allowHttp: options.allowHttp });
    this.region = options.region ?? 'KR';
    if (this.region !== 'KR' && this.region !== 'JP') throw new CicError('ERR_INVALID_ARGUMENT', `region must be KR or JP`);
    if (options.authorizeMethod !== undefined && options.authorizeMethod !== 'GET' && options.authorizeMethod !== 'POST') {
      throw new CicError('ERR_INVALID_ARGUMENT', 'authorizeMethod must be GET or POST');
    }
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger;
    this.requestMs = options.timeouts?.requestMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.refreshFloorMs = Math.min(options.timeouts?.refreshFloorMs ?? DEFAULT_REFRESH_FLOOR_MS, this.requestMs);
    if (!(this.requestMs > 0) || !(this.refreshFloorMs > 0)) throw new CicError('ERR_INVALID_ARGUMENT', 'timeouts must be positive');
    this.userAgent = options.userAgent ?? DEFAULT_AUTH_USER_AGENT;
  }

  /** The device id this client sends (stored with the tokens). */
  get deviceId(): string {
    return this.options.deviceId;
  }

  /**
   * Exchanges the account credential (KR: NAVER account access token; JP: LINE authorization
   * code) for a Clova authorization code. Throws AUTH_TERMS_REQUIRED (451, see
   * TermsRequiredDetails), AUTH_STATE_MISMATCH, AUTH_UNAUTHORIZED (401), or a mapped OAuth error.
   */
  async authorize(accountCredential: string, options: CallOptions = {}): Promise<AuthorizeResult> {
    requireString(accountCredential, 'accountCredential');
    registerSecret(accountCredential);
    const state = randomBytes(24).toString('base64url');
    const params: Record<string, string | undefined> = {
      ...(this.region === 'JP' ? { grant_type: JP_AUTHORIZE_GRANT_TYPE } : {}),
      client_id: this.options.clientId,
      device_id: this.options.deviceId,
      model_id: this.options.modelId,
      response_type: 'code',
      state,
    };
    const method = this.options.authorizeMethod ?? 'GET';
    const res = await this.send('authorize', {
      method,
      url: joinUrl(this.base, 'authorize', method === 'GET' ? params : undefined),
      form: method === 'POST' ? params : undefined,
      headers: { authorization: `Bearer ${accountCredential}` },
      signal: options.signal,
    });

    if (res.status === 451) {
      const body = parseJsonObject(res, 'authorize (451)');
      const code = body.code;
      const redirectUri = body.redirect_uri;
      if (typeof code !== 'string' || code === '' || typeof redirectUri !== 'string' || redirectUri === '') {
        throw new CicError('AUTH_BAD_RESPONSE', 'authorize (451): code or redirect_uri is missing', { details: { status: 451 } });
      }
      registerSecret(code);
      this.checkState(body.state, state);
      const details: TermsRequiredDetails = { status: 451, redirectUri, code, state };
      throw new CicError('AUTH_TERMS_REQUIRED', 'the user must agree to the Clova terms first (HTTP 451); see details.redirectUri', {
        details: details as unknown as Record<string, unknown>,
      });
    }
    const body = parseJsonObject(res, 'authorize');
    if (typeof body.code !== 'string' || body.code === '') {
      throw new CicError('AUTH_BAD_RESPONSE', 'authorize: code is missing or not a string', { details: { field: 'code' } });
    }
    registerSecret(body.code);
    this.checkState(body.state, state);
    return { code: body.code, state };
  }

  /** grant_type=authorization_code: a code from authorize() (or from a paired app) → tokens. */
  async token(code: string, options: CallOptions = {}): Promise<TokenResponse> {
    requireString(code, 'code');
    registerSecret(code);
    const res = await this.tokenRequest('authorization_code', { code }, options.signal, this.requestMs);
    return parseTokenResponse(parseJsonObject(res, 'token'), 'token', { requireRefreshToken: true });
  }

  /** grant_type=refresh_token. The answer may carry a rotated refresh_token (persist it first). */
  async refresh(refreshToken: string, options: RefreshOptions = {}): Promise<TokenResponse> {
    requireString(refreshToken, 'refreshToken');
    registerSecret(refreshToken);
    const res = await this.tokenRequest('refresh_token', { refresh_token: refreshToken }, options.signal, () => {
      if (options.accessExpiresAt === undefined) return this.requestMs;
      const left = options.accessExpiresAt - this.clock.now();
      return Math.min(this.requestMs, Math.max(this.refreshFloorMs, left));
    });
    return parseTokenResponse(parseJsonObject(res, 'refresh'), 'refresh');
  }

  /** grant_type=delete: revokes the access token (logout / de-registration). */
  async revoke(accessToken: string, options: CallOptions = {}): Promise<void> {
    requireString(accessToken, 'accessToken');
    registerSecret(accessToken);
    await this.tokenRequest('delete', { access_token: accessToken }, options.signal, this.requestMs);
  }

  private tokenRequest(
    grantType: 'authorization_code' | 'refresh_token' | 'delete',
    extra: Record<string, string>,
    signal: AbortSignal | undefined,
    timeoutMs: number | (() => number),
  ): Promise<HttpResponse> {
    return this.send(
      'token',
      {
        method: 'POST',
        url: joinUrl(this.base, 'token', { grant_type: grantType }),
        form: {
          client_id: this.options.clientId,
          client_secret: this.options.clientSecret,
          ...extra,
          device_id: this.options.deviceId,
          model_id: this.options.modelId,
          // The reference table lists response_type as required for /token too; servers
          // ignore parameters they do not know (RFC 6749 §3.2), so sending it is harmless.
          response_type: 'code',
        },
        signal,
      },
      grantType,
      timeoutMs,
    );
  }

  /** One logical call: retries transient failures; resolves with a 2xx (or 451 on authorize). */
  private send(
    endpoint: AuthEndpoint,
    req: { method: 'GET' | 'POST'; url: URL; form?: Record<string, string | undefined>; headers?: Record<string, string>; signal?: AbortSignal },
    label: string = endpoint,
    timeoutMs: number | (() => number) = this.requestMs,
  ): Promise<HttpResponse> {
    return withRetry(
      async (attempt) => {
        const started = this.clock.now();
        const deadline = typeof timeoutMs === 'function' ? timeoutMs() : timeoutMs;
        this.log.debug('auth: request', { endpoint: label, method: req.method, attempt, timeoutMs: deadline });
        let res: HttpResponse;
        try {
          res = await httpRequest({
            method: req.method,
            url: req.url,
            form: req.form,
            headers: { 'user-agent': this.userAgent, ...req.headers },
            timeoutMs: deadline,
            clock: this.clock,
            caPem: this.options.caPem,
            maxResponseBytes: this.options.maxResponseBytes,
            signal: req.signal,
          });
        } catch (e) {
          this.log.debug('auth: request failed', { endpoint: label, attempt, err: e });
          throw e;
        }
        this.log.debug('auth: response', { endpoint: label, status: res.status, attempt, ms: Math.round(this.clock.now() - started) });
        if (res.status >= 200 && res.status < 300) return res;
        if (res.status === 451 && endpoint === 'authorize') return res;
        throw oauthError(res.status, res.body, endpoint, res.headers);
      },
      {
        ...this.options.retry,
        what: label,
        clock: this.clock,
        signal: req.signal,
        onRetry: (info) => {
          this.log.info('auth: retrying', { endpoint: label, attempt: info.attempt, delayMs: info.delayMs, errorCode: info.error.code });
          this.options.onRetry?.(info);
        },
      },
    );
  }

  private checkState(received: unknown, sent: string): void {
    if (typeof received !== 'string' || !sameState(received, sent)) {
      throw new CicError('AUTH_STATE_MISMATCH', 'authorize: the state in the answer is not the one sent (possible CSRF); nothing was accepted', {
        details: { received: typeof received === 'string' ? 'different' : 'missing' },
      });
    }
  }
}
