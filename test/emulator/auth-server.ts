// Clova auth server emulator (plus an RFC 6749 §4.4 client-credentials endpoint) for tests
// and the demo: node:https on 127.0.0.1, port 0, certificate passed in.
//
//   /authorize        GET|POST  Bearer account credential → {code, state} | 451 {code, redirect_uri, state}
//   /terms            GET       the "terms page": ?code=… → 302 clova://agreement-success (marks the terms agreed)
//   /token            GET|POST  grant_type (query or body) = authorization_code | refresh_token | delete
//   /connect/token    POST      grant_type=client_credentials, client_id, client_secret, scope (form)
//
// Parameters are accepted from the query string, a form body, or both (the same name twice
// with different values is invalid_request, RFC 6749 §3.1). Refresh tokens rotate: issuing a
// new one kills the old one (after `refreshGraceMs`, default 0). Lifetimes and delays run on
// the injected clock, so a test sharing its FakeClock with the emulator controls expiry.
//
// Hazard for the secret-leak checks: the emulator must never call registerSecret (src/util/
// secrets) — tests assert that the *client* registers what it receives. Every secret it
// issues or is configured with is kept in `secrets` and appended to $CIC_TEST_SECRETS_LOG.

import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6, type AddressInfo, type Socket } from 'node:net';
import { TypedEmitter } from 'tiny-typed-emitter';
import { systemClock, type Clock, type TimerHandle } from '../../src/util/clock';
import type { StoreLoadResult, StoredTokens, TokenPersistence } from '../../src/auth/types';

export type AuthEndpoint = 'authorize' | 'token' | 'connect/token' | 'terms' | 'other';

export interface AuthEmulatorOptions {
  /** Server certificate and key (PEM), e.g. testPki().server. */
  cert: string;
  key: string;
  /** The CA that signed `cert` (kept for callers: emulator.ca). */
  ca?: string;
  host?: string;
  port?: number;
  /** Path prefix of every endpoint, e.g. '/clova/auth/'. Default '/'. */
  basePath?: string;
  /** Clock for lifetimes and injected delays. Default the system clock. */
  clock?: Clock;
  /** 'JP' requires grant_type=uauth_auth_code_v2 on /authorize. Default 'KR'. */
  region?: 'KR' | 'JP';
  /** Clova client credentials; generated when absent. */
  clientId?: string;
  clientSecret?: string;
  /** Access token lifetime, s. Default 3600. */
  accessTtlS?: number;
  /** Authorization code lifetime, s. Default 600. */
  codeTtlS?: number;
  /** A rotated refresh token keeps working this long (ms). Default 0: dies at once. */
  refreshGraceMs?: number;
  /** Rotate refresh tokens on refresh. Default true. */
  rotateRefreshTokens?: boolean;
  /**
   * A refresh also ends the grant's older access tokens (isValidAccessToken refuses them), as a
   * rotating server does. Default false: an access token lives until it expires.
   */
  revokeReplacedAccessTokens?: boolean;
  /** Client-credentials clients; one with all scopes ['read', 'write'] is generated when absent. */
  ccClients?: Array<{ clientId: string; clientSecret: string; scopes: string[] }>;
  /** Client-credentials token lifetime, s. Default 3600. */
  ccTtlS?: number;
  /** Where issued secrets are appended; default $CIC_TEST_SECRETS_LOG; null: nowhere. */
  secretsLog?: string | null;
}

export interface RecordedRequest {
  endpoint: AuthEndpoint;
  /** 'token:refresh_token' etc. for /token; same as endpoint otherwise. */
  key: string;
  method: string;
  path: string;
  query: Record<string, string>;
  body: Record<string, string>;
  /** query and body merged. */
  params: Record<string, string>;
  headers: IncomingMessage['headers'];
  contentType: string | undefined;
}

export type Fault =
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  | { kind: 'malformed' }
  | { kind: 'delay'; ms: number }
  | { kind: 'hang' }
  | { kind: 'drop' }
  | { kind: 'tamper-state' };

interface QueuedFault {
  fault: Fault;
  endpoint: string | undefined;
}

interface Account {
  credential: string;
  termsAgreed: boolean;
}

interface CodeRecord {
  account: Account;
  deviceId: string;
  expiresAt: number;
  used: boolean;
}

interface Grant {
  id: number;
  deviceId: string;
  revoked: boolean;
}

interface RefreshRecord {
  grant: Grant;
  /** Monotonic ms when it was rotated out; undefined while it is the current one. */
  rotatedAt: number | undefined;
  revoked: boolean;
}

interface AccessRecord {
  grant: Grant | undefined; // undefined for client-credentials tokens
  expiresAt: number;
  revoked: boolean;
  kind: 'clova' | 'cc';
}

export interface AuthEmulatorEvents {
  request: (req: RecordedRequest) => void;
}

const MAX_BODY_BYTES = 64 * 1024;

function rand(prefix: string): string {
  return `${prefix}-${randomBytes(18).toString('base64url')}`;
}

export class AuthEmulator extends TypedEmitter<AuthEmulatorEvents> {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly ca: string | undefined;
  readonly ccClients: ReadonlyArray<{ clientId: string; clientSecret: string; scopes: string[] }>;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Every secret issued or configured (tokens, codes, account credentials, client secrets). */
  readonly secrets = new Set<string>();

  private readonly options: AuthEmulatorOptions;
  private readonly clock: Clock;
  private readonly basePath: string;
  private readonly secretsLog: string | undefined;
  private server: https.Server | undefined;
  private port = 0;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly timers = new Set<TimerHandle>();
  private faults: QueuedFault[] = [];
  private readonly counts = new Map<string, number>();
  private readonly accounts = new Map<string, Account>();
  private readonly codes = new Map<string, CodeRecord>();
  private readonly refreshTokens = new Map<string, RefreshRecord>();
  private readonly accessTokens = new Map<string, AccessRecord>();
  /** Access tokens ended by a later refresh of their grant (revokeReplacedAccessTokens). */
  readonly replacedAccessTokens = new Set<string>();
  private nextGrantId = 1;
  accessTtlS: number;
  ccTtlS: number;
  refreshGraceMs: number;

  constructor(options: AuthEmulatorOptions) {
    super();
    this.options = options;
    this.clock = options.clock ?? systemClock;
    const base = `/${(options.basePath ?? '/').replace(/^\/+|\/+$/g, '')}`;
    this.basePath = base === '/' ? '/' : `${base}/`;
    this.secretsLog = options.secretsLog === null ? undefined : (options.secretsLog ?? process.env.CIC_TEST_SECRETS_LOG);
    this.ca = options.ca;
    this.clientId = options.clientId ?? `emu-client-${randomBytes(6).toString('hex')}`;
    this.clientSecret = options.clientSecret ?? rand('emu-client-secret');
    this.record(this.clientSecret);
    this.ccClients = options.ccClients ?? [{ clientId: `emu-cc-client-${randomBytes(4).toString('hex')}`, clientSecret: rand('emu-cc-secret'), scopes: ['read', 'write'] }];
    for (const c of this.ccClients) this.record(c.clientSecret);
    this.accessTtlS = options.accessTtlS ?? 3600;
    this.ccTtlS = options.ccTtlS ?? 3600;
    this.refreshGraceMs = options.refreshGraceMs ?? 0;
  }

  // --- lifecycle --------------------------------------------------------------------------

  /** Listens on 127.0.0.1 (port 0 unless given); resolves with the base URL (trailing slash). */
  async start(): Promise<string> {
    const server = https.createServer({ key: this.options.key, cert: this.options.cert }, (req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) this.json(res, 500, { error: 'server_error', error_description: 'emulator failure' });
      });
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** https://127.0.0.1:<port>, or https://[::1]:<port> for an IPv6 host. */
  get origin(): string {
    const host = this.options.host ?? '127.0.0.1';
    return `https://${isIPv6(host) ? `[${host}]` : host}:${this.port}`;
  }

  /** Base URL with the path prefix and a trailing slash. */
  get url(): string {
    return `${this.origin}${this.basePath}`;
  }

  /** Full URL of the client-credentials endpoint. */
  get ccTokenUrl(): string {
    return `${this.url}connect/token`;
  }

  // --- accounts and test controls ----------------------------------------------------------

  /** Adds an account and returns its credential (the Bearer token /authorize accepts). */
  addAccount(options: { termsAgreed?: boolean; credential?: string } = {}): string {
    const credential = options.credential ?? rand('emu-account');
    this.record(credential);
    this.accounts.set(credential, { credential, termsAgreed: options.termsAgreed ?? true });
    return credential;
  }

  /** Marks the account's terms as agreed (what the terms page does). */
  agreeTerms(credential: string): void {
    const a = this.accounts.get(credential);
    if (!a) throw new Error('unknown account');
    a.termsAgreed = true;
  }

  /** The next `n` requests (to `endpoint`, or any) get `fault` instead of (or before) normal processing. */
  inject(fault: Fault, n = 1, endpoint?: string): void {
    for (let i = 0; i < n; i++) this.faults.push({ fault, endpoint });
  }

  /** The next `n` requests answer `status` (default 500 with an OAuth server_error body). */
  failNext(n: number, options: { status?: number; body?: unknown; headers?: Record<string, string>; endpoint?: string } = {}): void {
    const status = options.status ?? 500;
    this.inject({ kind: 'status', status, body: options.body ?? { error: 'server_error', error_description: 'injected failure' }, headers: options.headers }, n, options.endpoint);
  }

  /** The next `n` requests get a 200 whose body is not JSON. */
  malformNext(n = 1, endpoint?: string): void {
    this.inject({ kind: 'malformed' }, n, endpoint);
  }

  /** The next `n` requests are answered `ms` later (on the emulator's clock). */
  delayNext(ms: number, n = 1, endpoint?: string): void {
    this.inject({ kind: 'delay', ms }, n, endpoint);
  }

  /** The next `n` requests are never answered (until stop()). */
  hangNext(n = 1, endpoint?: string): void {
    this.inject({ kind: 'hang' }, n, endpoint);
  }

  /** The next `n` requests have their connection destroyed after the request was read. */
  dropNext(n = 1, endpoint?: string): void {
    this.inject({ kind: 'drop' }, n, endpoint);
  }

  /** The next `n` /authorize answers carry a different state. */
  tamperStateNext(n = 1): void {
    this.inject({ kind: 'tamper-state' }, n, 'authorize');
  }

  clearFaults(): void {
    this.faults = [];
  }

  /**
   * Requests counted per endpoint: 'authorize', 'token' (all grants), 'token:authorization_code',
   * 'token:refresh_token', 'token:delete', 'connect/token', 'terms'; no argument: all.
   */
  count(endpoint?: string): number {
    if (endpoint === undefined) return this.requests.length;
    if (endpoint === 'token') return [...this.counts].filter(([k]) => k.startsWith('token:') || k === 'token').reduce((a, [, v]) => a + v, 0);
    return this.counts.get(endpoint) ?? 0;
  }

  resetCounts(): void {
    this.counts.clear();
    this.requests.length = 0;
  }

  /** Resolves with the next request to `endpoint` (a key or an endpoint; any when omitted). */
  waitForRequest(endpoint?: string): Promise<RecordedRequest> {
    return new Promise((resolve) => {
      const on = (r: RecordedRequest) => {
        if (endpoint !== undefined && r.endpoint !== endpoint && r.key !== endpoint) return;
        this.off('request', on);
        resolve(r);
      };
      this.on('request', on);
    });
  }

  /** The last request to `endpoint` (key or endpoint). */
  last(endpoint?: string): RecordedRequest | undefined {
    for (let i = this.requests.length - 1; i >= 0; i--) {
      const r = this.requests[i]!;
      if (endpoint === undefined || r.endpoint === endpoint || r.key === endpoint) return r;
    }
    return undefined;
  }

  /** Whether CIC should accept `token` (issued, not expired, not revoked, grant alive). */
  isValidAccessToken(token: string): boolean {
    const a = this.accessTokens.get(token);
    return !!a && a.kind === 'clova' && !a.revoked && !a.grant?.revoked && this.clock.now() < a.expiresAt;
  }

  isValidClientToken(token: string): boolean {
    const a = this.accessTokens.get(token);
    return !!a && a.kind === 'cc' && !a.revoked && this.clock.now() < a.expiresAt;
  }

  isValidRefreshToken(token: string): boolean {
    const r = this.refreshTokens.get(token);
    return !!r && this.refreshUsable(r);
  }

  /** Expires one access token (or all Clova and client-credentials access tokens) now. */
  expireAccessTokens(token?: string): void {
    const now = this.clock.now();
    for (const [t, a] of this.accessTokens) if (token === undefined || t === token) a.expiresAt = Math.min(a.expiresAt, now);
  }

  /** Kills one refresh token. */
  revokeRefreshToken(token: string): void {
    const r = this.refreshTokens.get(token);
    if (r) r.revoked = true;
  }

  /** Kills the whole grant behind an access or refresh token (every token of it). */
  revokeGrantOf(token: string): void {
    const g = this.refreshTokens.get(token)?.grant ?? this.accessTokens.get(token)?.grant;
    if (g) g.revoked = true;
  }

  /** Kills every grant and token issued so far. */
  revokeAll(): void {
    for (const r of this.refreshTokens.values()) {
      r.revoked = true;
      r.grant.revoked = true;
    }
    for (const a of this.accessTokens.values()) a.revoked = true;
  }

  /** Issues a grant directly (no /authorize round trip), e.g. to seed a token store. */
  issueTokens(deviceId: string): { access_token: string; refresh_token: string; expires_in: number; token_type: 'Bearer' } {
    const grant: Grant = { id: this.nextGrantId++, deviceId, revoked: false };
    return this.issueClova(grant);
  }

  /** A fresh authorization code for `credential`'s account, as if a companion app had run /authorize. */
  issueCode(credential: string, deviceId: string): string {
    const account = this.accounts.get(credential);
    if (!account) throw new Error('unknown account');
    const code = rand('emu-code');
    this.record(code);
    this.codes.set(code, { account, deviceId, expiresAt: this.clock.now() + (this.options.codeTtlS ?? 600) * 1000, used: false });
    return code;
  }

  // --- request handling --------------------------------------------------------------------

  private record(secret: string): void {
    if (this.secrets.has(secret)) return;
    this.secrets.add(secret);
    if (this.secretsLog) appendFileSync(this.secretsLog, `${secret}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://emulator.invalid');
    const raw = await readBody(req);
    if (raw === undefined) {
      this.json(res, 413, { error: 'invalid_request', error_description: 'body too large' });
      return;
    }
    const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    const query = Object.fromEntries(url.searchParams);
    const body = contentType === 'application/x-www-form-urlencoded' ? Object.fromEntries(new URLSearchParams(raw.toString('utf8'))) : {};
    let conflict = false;
    const params: Record<string, string> = { ...query };
    for (const [k, v] of Object.entries(body)) {
      if (k in params && params[k] !== v) conflict = true;
      params[k] = v;
    }

    const rel = url.pathname.startsWith(this.basePath) ? url.pathname.slice(this.basePath.length) : undefined;
    const endpoint: AuthEndpoint =
      rel === 'authorize' ? 'authorize' : rel === 'token' ? 'token' : rel === 'connect/token' ? 'connect/token' : rel === 'terms' ? 'terms' : 'other';
    const key = endpoint === 'token' ? `token:${params.grant_type ?? ''}` : endpoint;
    const recorded: RecordedRequest = { endpoint, key, method: req.method ?? '', path: url.pathname, query, body, params, headers: req.headers, contentType };
    this.requests.push(recorded);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.emit('request', recorded);

    let tamper = false;
    const idx = this.faults.findIndex((f) => f.endpoint === undefined || f.endpoint === endpoint || f.endpoint === key);
    if (idx >= 0) {
      const { fault } = this.faults.splice(idx, 1)[0]!;
      switch (fault.kind) {
        case 'status':
          this.json(res, fault.status, fault.body, fault.headers);
          return;
        case 'malformed':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"access_token": "trunc');
          return;
        case 'hang':
          this.hanging.add(res);
          res.on('close', () => this.hanging.delete(res));
          return;
        case 'drop':
          req.socket.destroy();
          return;
        case 'delay':
          await new Promise<void>((resolve) => {
            const t = this.clock.setTimeout(() => {
              this.timers.delete(t);
              resolve();
            }, fault.ms);
            this.timers.add(t);
          });
          if (res.destroyed) return;
          break;
        case 'tamper-state':
          tamper = true;
          break;
      }
    }

    if (conflict) {
      this.json(res, 400, { error: 'invalid_request', error_description: 'a parameter appears twice with different values' });
      return;
    }
    switch (endpoint) {
      case 'authorize':
        return this.authorize(req, res, params, tamper);
      case 'token':
        return this.token(req, res, params);
      case 'connect/token':
        return this.clientCredentials(req, res, params, contentType);
      case 'terms':
        return this.terms(res, params);
      default:
        this.json(res, 404, { error: 'not_found' });
    }
  }

  private authorize(req: IncomingMessage, res: ServerResponse, p: Record<string, string>, tamper: boolean): void {
    if (req.method !== 'GET' && req.method !== 'POST') return this.json(res, 405, { error: 'invalid_request' });
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/i.exec(auth);
    const account = m ? this.accounts.get(m[1]!) : undefined;
    if (!account) {
      return this.json(res, 401, { error: 'invalid_token', error_description: 'the account credential was not accepted' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    if (p.client_id !== this.clientId) return this.json(res, 401, { error: 'invalid_client', error_description: 'unknown client' });
    if (this.options.region === 'JP' && p.grant_type !== 'uauth_auth_code_v2') {
      return this.json(res, 400, { error: 'invalid_request', error_description: 'grant_type=uauth_auth_code_v2 is required' });
    }
    if (!p.device_id) return this.json(res, 400, { error: 'invalid_request', error_description: 'device_id is required' });
    if (p.response_type !== 'code') return this.json(res, 400, { error: 'unsupported_response_type' });
    if (!p.state) return this.json(res, 400, { error: 'invalid_request', error_description: 'state is required' });
    const code = rand('emu-code');
    this.record(code);
    this.codes.set(code, { account, deviceId: p.device_id, expiresAt: this.clock.now() + (this.options.codeTtlS ?? 600) * 1000, used: false });
    const state = tamper ? `${p.state}x` : p.state;
    if (!account.termsAgreed) {
      const redirect = `${this.url}terms?code=${encodeURIComponent(code)}&grant_type=code&state=${encodeURIComponent(p.state)}`;
      return this.json(res, 451, { code, redirect_uri: redirect, state });
    }
    this.json(res, 200, { code, state });
  }

  private terms(res: ServerResponse, p: Record<string, string>): void {
    const rec = p.code ? this.codes.get(p.code) : undefined;
    if (!rec) {
      res.writeHead(302, { location: 'clova://agreement-failure?error=invalid_code' });
      res.end();
      return;
    }
    rec.account.termsAgreed = true;
    res.writeHead(302, { location: 'clova://agreement-success' });
    res.end();
  }

  private token(req: IncomingMessage, res: ServerResponse, p: Record<string, string>): void {
    if (req.method !== 'GET' && req.method !== 'POST') return this.json(res, 405, { error: 'invalid_request' });
    if (p.client_id !== this.clientId || p.client_secret !== this.clientSecret) {
      return this.json(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
    }
    if (!p.device_id) return this.json(res, 400, { error: 'invalid_request', error_description: 'device_id is required' });
    const now = this.clock.now();
    switch (p.grant_type) {
      case 'authorization_code': {
        const rec = p.code ? this.codes.get(p.code) : undefined;
        if (!rec || rec.used || now >= rec.expiresAt || rec.deviceId !== p.device_id) {
          return this.json(res, 400, { error: 'invalid_grant', error_description: 'the authorization code is invalid, used or expired' });
        }
        if (!rec.account.termsAgreed) return this.json(res, 400, { error: 'invalid_grant', error_description: 'the terms have not been agreed' });
        rec.used = true;
        const grant: Grant = { id: this.nextGrantId++, deviceId: p.device_id, revoked: false };
        return this.json(res, 200, this.issueClova(grant));
      }
      case 'refresh_token': {
        const rec = p.refresh_token ? this.refreshTokens.get(p.refresh_token) : undefined;
        if (!rec || !this.refreshUsable(rec) || rec.grant.deviceId !== p.device_id) {
          return this.json(res, 400, { error: 'invalid_grant', error_description: 'the refresh token is invalid, rotated or revoked' });
        }
        if (this.options.rotateRefreshTokens === false) {
          // A non-rotating server leaves refresh_token out (RFC 6749 §6: "MAY issue a new one").
          const t = this.issueClova(rec.grant, false);
          return this.json(res, 200, { access_token: t.access_token, expires_in: t.expires_in, token_type: t.token_type });
        }
        if (rec.rotatedAt === undefined) rec.rotatedAt = now;
        return this.json(res, 200, this.issueClova(rec.grant));
      }
      case 'delete': {
        const a = p.access_token ? this.accessTokens.get(p.access_token) : undefined;
        if (!a || a.kind !== 'clova' || a.revoked || a.grant?.revoked || now >= a.expiresAt) {
          return this.json(res, 400, { error: 'invalid_grant', error_description: 'unknown or expired access token' });
        }
        a.revoked = true;
        if (a.grant) a.grant.revoked = true;
        return this.json(res, 200, {});
      }
      default:
        return this.json(res, 400, { error: 'unsupported_grant_type' });
    }
  }

  private clientCredentials(req: IncomingMessage, res: ServerResponse, p: Record<string, string>, contentType: string | undefined): void {
    if (req.method !== 'POST') return this.json(res, 405, { error: 'invalid_request', error_description: 'POST only' });
    if (contentType !== 'application/x-www-form-urlencoded') return this.json(res, 400, { error: 'invalid_request', error_description: 'form body expected' });
    if (p.grant_type !== 'client_credentials') return this.json(res, 400, { error: 'unsupported_grant_type' });
    let id = p.client_id;
    let secret = p.client_secret;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [u, s] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      id = decodeURIComponent(u ?? '');
      secret = decodeURIComponent(s ?? '');
    }
    const client = this.ccClients.find((c) => c.clientId === id && c.clientSecret === secret);
    if (!client) return this.json(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed.' }, { 'www-authenticate': 'Basic' });
    const requested = (p.scope ?? '').split(' ').filter((s) => s !== '');
    const bad = requested.filter((s) => !client.scopes.includes(s));
    if (bad.length) return this.json(res, 400, { error: 'invalid_scope', error_description: `scope not allowed: ${bad.join(' ')}` });
    const scope = (requested.length ? requested : client.scopes).join(' ');
    const token = rand('emu-cc-at');
    this.record(token);
    this.accessTokens.set(token, { grant: undefined, expiresAt: this.clock.now() + this.ccTtlS * 1000, revoked: false, kind: 'cc' });
    this.json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: this.ccTtlS, scope });
  }

  private refreshUsable(r: RefreshRecord): boolean {
    if (r.revoked || r.grant.revoked) return false;
    return r.rotatedAt === undefined || this.clock.now() < r.rotatedAt + this.refreshGraceMs;
  }

  private issueClova(grant: Grant, withRefresh = true): { access_token: string; refresh_token: string; expires_in: number; token_type: 'Bearer' } {
    const access = rand('emu-at');
    this.record(access);
    if (this.options.revokeReplacedAccessTokens) {
      for (const [token, a] of this.accessTokens) {
        if (a.grant === grant && !a.revoked) {
          a.revoked = true;
          this.replacedAccessTokens.add(token);
        }
      }
    }
    this.accessTokens.set(access, { grant, expiresAt: this.clock.now() + this.accessTtlS * 1000, revoked: false, kind: 'clova' });
    let refresh = '';
    if (withRefresh) {
      refresh = rand('emu-rt');
      this.record(refresh);
      this.refreshTokens.set(refresh, { grant, rotatedAt: undefined, revoked: false });
    }
    return { access_token: access, refresh_token: refresh, expires_in: this.accessTtlS, token_type: 'Bearer' };
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', 'cache-control': 'no-store', pragma: 'no-cache', ...headers });
    res.end(text);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on('error', () => resolve(undefined));
  });
}

// --- test helper -----------------------------------------------------------------------------


/**
 * In-memory TokenPersistence that records every call in order (`calls`), for tests and the
 * demo. `failSaves` makes the next saves throw; `gate` holds saves until released.
 */
export class MemoryPersistence implements TokenPersistence {
  readonly path = 'memory:tokens';
  tokens: StoredTokens | undefined;
  readonly calls: string[] = [];
  /** The next this-many save() calls throw an Error with code STORE_WRITE_FAILED. */
  failSaves = 0;
  saves = 0;
  private gates: Array<() => void> = [];
  private saveWaiters: Array<() => void> = [];
  private holding = false;

  constructor(initial?: StoredTokens) {
    this.tokens = initial ? { ...initial } : undefined;
  }

  /** Saves from now on wait until release() (or releaseAll()). */
  hold(): void {
    this.holding = true;
  }

  /** Lets held saves through and stops holding. */
  release(): void {
    this.holding = false;
    const g = this.gates;
    this.gates = [];
    for (const f of g) f();
  }

  get held(): number {
    return this.gates.length;
  }

  async load(): Promise<StoreLoadResult> {
    this.calls.push('load');
    return this.tokens ? { state: 'ok', tokens: { ...this.tokens }, recovered: false } : { state: 'empty', path: this.path };
  }

  /** Resolves when the next save() starts. */
  waitForSave(): Promise<void> {
    return new Promise((r) => this.saveWaiters.push(r));
  }

  async save(tokens: StoredTokens): Promise<{ written: boolean }> {
    this.calls.push('save:start');
    const w = this.saveWaiters;
    this.saveWaiters = [];
    for (const f of w) f();
    if (this.holding) await new Promise<void>((r) => this.gates.push(r));
    if (this.failSaves > 0) {
      this.failSaves--;
      this.calls.push('save:failed');
      const err = new Error('injected write failure') as Error & { code: string };
      err.code = 'EIO';
      throw err;
    }
    this.saves++;
    this.tokens = { ...tokens };
    this.calls.push('save:done');
    return { written: true };
  }

  async clear(): Promise<void> {
    this.calls.push('clear');
    this.tokens = undefined;
  }
}
