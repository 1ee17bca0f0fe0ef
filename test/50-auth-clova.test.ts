// ClovaAuthClient against the auth emulator (real HTTPS on 127.0.0.1, generated test CA).
// Time (request deadlines, retry delays, token lifetimes) runs on a FakeClock shared by the
// client and the emulator; nothing here sleeps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as https from 'node:https';
import { ClovaAuthClient, termsRequired, type ClovaAuthOptions } from '../src/auth/clova-auth';
import type { RetryInfo } from '../src/auth/retry';
import { isCicError } from '../src/errors';
import { AuthEmulator, type AuthEmulatorOptions } from './emulator/auth-server';
import { testPki } from './support/certs';
import { FakeClock } from './support/fake-clock';
import { rejects } from './support/expect';

const pki = testPki();
const DEVICE = 'device-50';

interface Ctx {
  clock: FakeClock;
  emu: AuthEmulator;
  retries: RetryInfo[];
  client(over?: Partial<ClovaAuthOptions>): ClovaAuthClient;
}

/** Starts an emulator on a fresh FakeClock; retry delays are advanced as soon as the client sleeps. */
async function withEmulator(opts: Partial<AuthEmulatorOptions>, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const clock = new FakeClock();
  const emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca, clock, ...opts });
  await emu.start();
  const retries: RetryInfo[] = [];
  const ctx: Ctx = {
    clock,
    emu,
    retries,
    client: (over = {}) =>
      new ClovaAuthClient({
        authUrl: emu.url,
        clientId: emu.clientId,
        clientSecret: emu.clientSecret,
        deviceId: DEVICE,
        modelId: 'model-50',
        caPem: pki.ca,
        clock,
        retry: { random: () => 0.5 },
        // sleep() arms its timer right after onRetry returns; setImmediate runs after that.
        onRetry: (info) => {
          retries.push(info);
          setImmediate(() => clock.advance(info.delayMs));
        },
        ...over,
      }),
  };
  try {
    await fn(ctx);
  } finally {
    await emu.stop();
  }
}

/** A fresh grant through /authorize + /token. */
async function pair(ctx: Ctx, c = ctx.client()) {
  const cred = ctx.emu.addAccount();
  const { code } = await c.authorize(cred);
  return c.token(code);
}

// --- /authorize ------------------------------------------------------------------------------

test('authorize (GET): bearer credential, client/device/model ids, response_type=code and a fresh URL-safe state', () =>
  withEmulator({}, async ({ emu, client }) => {
    const cred = emu.addAccount();
    const c = client();
    const r1 = await c.authorize(cred);
    const req = emu.last('authorize')!;
    assert.is(req.method, 'GET');
    assert.ok(req.headers.authorization === `Bearer ${cred}`, 'Authorization: Bearer <account credential>');
    assert.is(req.query.client_id, emu.clientId);
    assert.is(req.query.device_id, DEVICE);
    assert.is(req.query.model_id, 'model-50');
    assert.is(req.query.response_type, 'code');
    assert.is(req.query.grant_type, undefined, 'KR sends no grant_type');
    assert.match(req.query.state!, /^[A-Za-z0-9_-]{32}$/);
    assert.is(r1.state, req.query.state);
    assert.ok(emu.secrets.has(r1.code), 'the code is the one the emulator issued');
    const r2 = await c.authorize(cred);
    assert.is.not(r2.state, r1.state, 'every call uses a fresh state');
  }));

test('authorize (POST option): parameters travel as a form body', () =>
  withEmulator({}, async ({ emu, client }) => {
    const cred = emu.addAccount();
    await client({ authorizeMethod: 'POST' }).authorize(cred);
    const req = emu.last('authorize')!;
    assert.is(req.method, 'POST');
    assert.is(req.contentType, 'application/x-www-form-urlencoded');
    assert.equal(Object.keys(req.query), []);
    assert.is(req.body.response_type, 'code');
    assert.is(req.body.client_id, emu.clientId);
    assert.ok(req.body.state);
  }));

test('authorize without model_id leaves the parameter out', () =>
  withEmulator({}, async ({ emu, client }) => {
    await client({ modelId: undefined }).authorize(emu.addAccount());
    assert.not.ok('model_id' in emu.last('authorize')!.params);
  }));

test('authorize: an answer with another state is refused with AUTH_STATE_MISMATCH', () =>
  withEmulator({}, async ({ emu, client }) => {
    emu.tamperStateNext();
    const err = await rejects(client().authorize(emu.addAccount()), 'AUTH_STATE_MISMATCH');
    assert.is(err.retryable, false);
    assert.is(emu.count('authorize'), 1, 'not retried');
  }));

test('authorize: 451 → AUTH_TERMS_REQUIRED with redirectUri and code in details (not in the message); after agreeing, the code yields tokens', () =>
  withEmulator({}, async ({ emu, client }) => {
    const cred = emu.addAccount({ termsAgreed: false });
    const c = client();
    const err = await rejects(c.authorize(cred), 'AUTH_TERMS_REQUIRED');
    const terms = termsRequired(err);
    assert.ok(terms, 'termsRequired() returns the details');
    assert.ok(emu.secrets.has(terms!.code));
    assert.ok(terms!.redirectUri.startsWith(`${emu.url}terms?`));
    assert.not.ok(err.message.includes(terms!.code), 'the code is not in the message');
    assert.not.ok(err.message.includes(terms!.redirectUri), 'the redirect URI is not in the message');
    assert.is(termsRequired(new Error('x')), undefined);

    // Before the user agrees, the code is refused.
    await rejects(c.token(terms!.code), 'AUTH_INVALID_GRANT');
    // The terms page redirects to clova://agreement-success.
    const location = await new Promise<string | undefined>((resolve, reject) => {
      https.get(terms!.redirectUri, { ca: pki.ca }, (res) => {
        res.resume();
        resolve(res.headers.location);
      }).on('error', reject);
    });
    assert.is(location, 'clova://agreement-success');
    const fresh = await c.authorize(cred);
    const tokens = await c.token(fresh.code);
    assert.ok(emu.isValidAccessToken(tokens.access_token));
  }));

test('authorize: a 451 with another state is a state mismatch, not a terms page', () =>
  withEmulator({}, async ({ emu, client }) => {
    const cred = emu.addAccount({ termsAgreed: false });
    emu.tamperStateNext();
    await rejects(client().authorize(cred), 'AUTH_STATE_MISMATCH');
  }));

test('authorize: an unknown account credential → AUTH_UNAUTHORIZED (401), not retried', () =>
  withEmulator({}, async ({ emu, client }) => {
    const err = await rejects(client().authorize('not-an-account-credential'), 'AUTH_UNAUTHORIZED');
    assert.is(err.details?.status, 401);
    assert.is(emu.count('authorize'), 1);
  }));

test('JP region: /authorize carries grant_type=uauth_auth_code_v2 (a KR client is refused by a JP server)', () =>
  withEmulator({ region: 'JP' }, async ({ emu, client }) => {
    const lineCode = emu.addAccount();
    const jp = client({ region: 'JP' });
    assert.is(jp.region, 'JP');
    const { code } = await jp.authorize(lineCode);
    const req = emu.last('authorize')!;
    assert.is(req.query.grant_type, 'uauth_auth_code_v2');
    assert.is(req.query.response_type, 'code');
    assert.ok(req.headers.authorization === `Bearer ${lineCode}`);
    const t = await jp.token(code);
    assert.ok(emu.isValidAccessToken(t.access_token));
    const err = await rejects(client({ region: 'KR' }).authorize(lineCode), 'AUTH_INVALID_REQUEST');
    assert.is(err.details?.error, 'invalid_request');
  }));

test('JP region with POST: grant_type travels in the form body', () =>
  withEmulator({ region: 'JP' }, async ({ emu, client }) => {
    await client({ region: 'JP', authorizeMethod: 'POST' }).authorize(emu.addAccount());
    assert.is(emu.last('authorize')!.body.grant_type, 'uauth_auth_code_v2');
  }));

// --- /token -----------------------------------------------------------------------------------

test('token(code): grant_type in the query, the rest as a form POST body; typed answer', () =>
  withEmulator({ accessTtlS: 332000 }, async (ctx) => {
    const t = await pair(ctx);
    const req = ctx.emu.last('token:authorization_code')!;
    assert.is(req.method, 'POST');
    assert.equal(req.query, { grant_type: 'authorization_code' });
    assert.is(req.contentType, 'application/x-www-form-urlencoded');
    assert.is(req.body.client_id, ctx.emu.clientId);
    assert.ok(req.body.client_secret === ctx.emu.clientSecret, 'client_secret in the body');
    assert.is(req.body.device_id, DEVICE);
    assert.is(req.body.model_id, 'model-50');
    assert.ok(req.body.code);
    assert.is(t.token_type, 'Bearer');
    assert.is(t.expires_in, 332000);
    assert.ok(ctx.emu.isValidAccessToken(t.access_token));
    assert.ok(ctx.emu.isValidRefreshToken(t.refresh_token!));
  }));

test('token(code): a used code → AUTH_INVALID_GRANT with the OAuth error in details', () =>
  withEmulator({}, async ({ emu, client }) => {
    const c = client();
    const { code } = await c.authorize(emu.addAccount());
    await c.token(code);
    const err = await rejects(c.token(code), 'AUTH_INVALID_GRANT');
    assert.is(err.details?.error, 'invalid_grant');
    assert.type(err.details?.error_description, 'string');
    assert.is(err.details?.status, 400);
    assert.is(err.retryable, false);
  }));

test('refresh: rotates the refresh token; the old one is dead at once (AUTH_INVALID_GRANT)', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client();
    const t1 = await pair(ctx, c);
    const t2 = await c.refresh(t1.refresh_token!);
    const req = ctx.emu.last('token:refresh_token')!;
    assert.equal(req.query, { grant_type: 'refresh_token' });
    assert.ok(req.body.refresh_token === t1.refresh_token);
    assert.ok(t2.refresh_token && t2.refresh_token !== t1.refresh_token, 'rotated');
    assert.not.ok(ctx.emu.isValidRefreshToken(t1.refresh_token!));
    await rejects(c.refresh(t1.refresh_token!), 'AUTH_INVALID_GRANT');
    const t3 = await c.refresh(t2.refresh_token!);
    assert.ok(ctx.emu.isValidAccessToken(t3.access_token));
  }));

test('refresh: with a grace period the rotated token keeps working until the grace ends', () =>
  withEmulator({ refreshGraceMs: 10_000 }, async (ctx) => {
    const c = ctx.client();
    const t1 = await pair(ctx, c);
    await c.refresh(t1.refresh_token!);
    ctx.clock.advance(9_999);
    await c.refresh(t1.refresh_token!); // a retry whose first answer was lost
    ctx.clock.advance(1);
    await rejects(c.refresh(t1.refresh_token!), 'AUTH_INVALID_GRANT');
  }));

test('refresh: a server that does not rotate leaves refresh_token out; the answer has none', () =>
  withEmulator({ rotateRefreshTokens: false }, async (ctx) => {
    const c = ctx.client();
    const t1 = await pair(ctx, c);
    const t2 = await c.refresh(t1.refresh_token!);
    assert.is(t2.refresh_token, undefined);
    assert.ok(ctx.emu.isValidRefreshToken(t1.refresh_token!));
  }));

test('revoke: grant_type=delete kills the access token; a second revoke → AUTH_INVALID_GRANT', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client();
    const t = await pair(ctx, c);
    await c.revoke(t.access_token);
    const req = ctx.emu.last('token:delete')!;
    assert.equal(req.query, { grant_type: 'delete' });
    assert.ok(req.body.access_token === t.access_token);
    assert.not.ok(ctx.emu.isValidAccessToken(t.access_token));
    assert.not.ok(ctx.emu.isValidRefreshToken(t.refresh_token!), 'the whole grant is gone');
    await rejects(c.revoke(t.access_token), 'AUTH_INVALID_GRANT');
  }));

test('invalid_client: a wrong client secret → AUTH_INVALID_CLIENT, not retried', () =>
  withEmulator({}, async (ctx) => {
    const good = ctx.client();
    const { code } = await good.authorize(ctx.emu.addAccount());
    const err = await rejects(ctx.client({ clientSecret: 'wrong-client-secret-value' }).token(code), 'AUTH_INVALID_CLIENT');
    assert.is(err.details?.error, 'invalid_client');
    assert.is(err.details?.error_description, 'client authentication failed');
    assert.is(ctx.emu.count('token'), 1);
  }));

test('other 4xx → AUTH_INVALID_REQUEST with error and error_description in details', () =>
  withEmulator({}, async (ctx) => {
    ctx.emu.failNext(1, { status: 400, body: { error: 'unsupported_grant_type', error_description: 'nope', error_uri: 'https://example.invalid/e' }, endpoint: 'token' });
    const err = await rejects(ctx.client().refresh('some-refresh-token-value'), 'AUTH_INVALID_REQUEST');
    assert.is(err.details?.error, 'unsupported_grant_type');
    assert.is(err.details?.error_description, 'nope');
    assert.is(err.details?.error_uri, 'https://example.invalid/e');
    assert.is(err.retryable, false);
    assert.is(ctx.retries.length, 0);
  }));

test('an error_description quoting a registered secret is redacted in details and message', () =>
  withEmulator({}, async (ctx) => {
    const rt = 'refresh-token-that-the-server-echoes';
    ctx.emu.failNext(1, { status: 400, body: { error: 'invalid_grant', error_description: `token ${rt} is unknown` } });
    const err = await rejects(ctx.client().refresh(rt), 'AUTH_INVALID_GRANT');
    assert.not.ok(String(err.details?.error_description).includes(rt));
    assert.not.ok(err.message.includes(rt));
    assert.ok(String(err.details?.error_description).includes('[redacted]'));
  }));

// --- transient failures -----------------------------------------------------------------------

test('5xx is retried with jittered backoff on the injected clock, then succeeds', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client();
    const t1 = await pair(ctx, c);
    ctx.emu.failNext(2, { status: 503, endpoint: 'token' });
    const t2 = await c.refresh(t1.refresh_token!);
    assert.ok(ctx.emu.isValidAccessToken(t2.access_token));
    assert.is(ctx.emu.count('token:refresh_token'), 3);
    // random() = 0.5: half of the ceiling, base 500 ms doubling.
    assert.equal(ctx.retries.map((r) => [r.attempt, r.delayMs, r.error.code]), [
      [1, 250, 'AUTH_SERVER'],
      [2, 500, 'AUTH_SERVER'],
    ]);
  }));

test('5xx exhausted: AUTH_SERVER after maxAttempts requests', () =>
  withEmulator({}, async (ctx) => {
    ctx.emu.failNext(10, { status: 500 });
    const err = await rejects(ctx.client({ retry: { maxAttempts: 4, random: () => 0 } }).authorize(ctx.emu.addAccount()), 'AUTH_SERVER');
    assert.is(err.retryable, true);
    assert.is(err.details?.status, 500);
    assert.is(ctx.emu.count('authorize'), 4);
    assert.is(ctx.retries.length, 3);
    assert.ok(ctx.retries.every((r) => r.delayMs >= 100), 'never faster than the backoff floor');
  }));

test('Retry-After lengthens the delay (capped by maxMs)', () =>
  withEmulator({}, async (ctx) => {
    ctx.emu.failNext(1, { status: 503, headers: { 'retry-after': '3' } });
    ctx.emu.failNext(1, { status: 503, headers: { 'retry-after': '120' } });
    await ctx.client({ retry: { random: () => 0, maxMs: 8_000 } }).authorize(ctx.emu.addAccount());
    assert.equal(ctx.retries.map((r) => r.delayMs), [3_000, 8_000]);
  }));

test('a request that gets no answer fails with AUTH_TIMEOUT after requestMs (fake time)', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client({ timeouts: { requestMs: 7_000 }, retry: { maxAttempts: 1 } });
    const { code } = await c.authorize(ctx.emu.addAccount());
    ctx.emu.hangNext(1, 'token');
    const p = c.token(code);
    await ctx.emu.waitForRequest('token');
    ctx.clock.advance(7_000);
    const err = await rejects(p, 'AUTH_TIMEOUT');
    assert.is(err.details?.timeoutMs, 7_000);
    assert.is(err.retryable, true);
  }));

test('a timeout is retried like any transient failure', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client({ timeouts: { requestMs: 5_000 } });
    const cred = ctx.emu.addAccount();
    ctx.emu.hangNext(1, 'authorize');
    const p = c.authorize(cred);
    await ctx.emu.waitForRequest('authorize');
    ctx.clock.advance(5_000);
    const r = await p;
    assert.ok(r.code);
    assert.is(ctx.emu.count('authorize'), 2);
    assert.is(ctx.retries[0]?.error.code, 'AUTH_TIMEOUT');
  }));

test('a response delayed past the deadline times out; one inside it arrives', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client({ timeouts: { requestMs: 5_000 }, retry: { maxAttempts: 1 } });
    const cred = ctx.emu.addAccount();
    ctx.emu.delayNext(4_000, 1, 'authorize');
    const ok = c.authorize(cred);
    await ctx.emu.waitForRequest('authorize');
    ctx.clock.advance(4_000);
    assert.ok((await ok).code);
    ctx.emu.delayNext(6_000, 1, 'authorize');
    const late = c.authorize(cred);
    await ctx.emu.waitForRequest('authorize');
    ctx.clock.advance(5_000);
    await rejects(late, 'AUTH_TIMEOUT');
  }));

test('refresh: the deadline is clamped to the access token time left, never below the floor', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client({ timeouts: { requestMs: 15_000, refreshFloorMs: 2_000 }, retry: { maxAttempts: 1 } });
    const t = await pair(ctx, c);
    ctx.emu.hangNext(1, 'token');
    const p1 = c.refresh(t.refresh_token!, { accessExpiresAt: ctx.clock.now() + 6_000 });
    await ctx.emu.waitForRequest('token');
    ctx.clock.advance(6_000);
    assert.is((await rejects(p1, 'AUTH_TIMEOUT')).details?.timeoutMs, 6_000);

    ctx.emu.hangNext(1, 'token');
    const p2 = c.refresh(t.refresh_token!, { accessExpiresAt: ctx.clock.now() - 60_000 }); // already expired
    await ctx.emu.waitForRequest('token');
    ctx.clock.advance(2_000);
    assert.is((await rejects(p2, 'AUTH_TIMEOUT')).details?.timeoutMs, 2_000);

    ctx.emu.hangNext(1, 'token');
    const p3 = c.refresh(t.refresh_token!, { accessExpiresAt: ctx.clock.now() + 3_600_000 });
    await ctx.emu.waitForRequest('token');
    ctx.clock.advance(15_000);
    assert.is((await rejects(p3, 'AUTH_TIMEOUT')).details?.timeoutMs, 15_000);
  }));

test('a dropped connection → AUTH_NETWORK, retried', () =>
  withEmulator({}, async (ctx) => {
    ctx.emu.dropNext(1, 'authorize');
    const r = await ctx.client().authorize(ctx.emu.addAccount());
    assert.ok(r.code);
    assert.is(ctx.retries[0]?.error.code, 'AUTH_NETWORK');
  }));

test('connection refused → AUTH_NETWORK after the bounded attempts', () =>
  withEmulator({}, async (ctx) => {
    const url = ctx.emu.url;
    await ctx.emu.stop();
    const err = await rejects(ctx.client({ authUrl: url, retry: { maxAttempts: 2 } }).authorize('account-credential-x'), 'AUTH_NETWORK');
    assert.is(err.details?.reason, 'ECONNREFUSED');
    assert.is(ctx.retries.length, 1);
  }));

test('TLS verification is on: without the test CA the server is refused (AUTH_NETWORK, not retryable)', () =>
  withEmulator({}, async (ctx) => {
    const err = await rejects(ctx.client({ caPem: undefined }).authorize(ctx.emu.addAccount()), 'AUTH_NETWORK');
    assert.is(err.retryable, false);
    assert.is(err.details?.tls, true);
    assert.is(ctx.emu.count(), 0, 'no request reached the server');
  }));

test('TLS: a certificate for another host name is refused', async () => {
  const clock = new FakeClock();
  const emu = new AuthEmulator({ cert: pki.wrongHost.cert, key: pki.wrongHost.key, clock });
  await emu.start();
  try {
    const c = new ClovaAuthClient({ authUrl: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, deviceId: DEVICE, caPem: pki.ca, clock, retry: { maxAttempts: 1 } });
    const err = await rejects(c.authorize(emu.addAccount()), 'AUTH_NETWORK');
    assert.is(err.details?.reason, 'ERR_TLS_CERT_ALTNAME_INVALID');
  } finally {
    await emu.stop();
  }
});

// --- malformed answers ----------------------------------------------------------------------

test('malformed JSON → AUTH_BAD_RESPONSE (body not quoted)', () =>
  withEmulator({}, async (ctx) => {
    ctx.emu.malformNext(1);
    const err = await rejects(ctx.client({ retry: { maxAttempts: 1 } }).refresh('some-refresh-token-value'), 'AUTH_BAD_RESPONSE');
    assert.not.ok(err.message.includes('trunc'));
  }));

test('token answers with wrong types → AUTH_BAD_RESPONSE naming the field', () =>
  withEmulator({}, async (ctx) => {
    const c = ctx.client({ retry: { maxAttempts: 1 } });
    const cases: Array<[unknown, string]> = [
      [{ access_token: 42, expires_in: 10, refresh_token: 'r-123456', token_type: 'Bearer' }, 'access_token'],
      [{ access_token: 'a-123456', expires_in: 'soon', refresh_token: 'r-123456', token_type: 'Bearer' }, 'expires_in'],
      [{ access_token: 'a-123456', expires_in: -5, refresh_token: 'r-123456', token_type: 'Bearer' }, 'expires_in'],
      [{ access_token: 'a-123456', expires_in: 10, refresh_token: 7, token_type: 'Bearer' }, 'refresh_token'],
      [{ access_token: 'a-123456', expires_in: 10, refresh_token: 'r-123456', token_type: 'mac' }, 'token_type'],
      [{ access_token: 'a-123456', expires_in: 10, refresh_token: 'r-123456' }, 'token_type'],
      [[1, 2, 3], ''],
    ];
    for (const [body, field] of cases) {
      ctx.emu.failNext(1, { status: 200, body });
      const err = await rejects(c.refresh('some-refresh-token-value'), 'AUTH_BAD_RESPONSE');
      if (field) assert.is(err.details?.field, field, JSON.stringify(body));
    }
    // token(code) insists on a refresh token
    ctx.emu.failNext(1, { status: 200, body: { access_token: 'a-123456', expires_in: 10, token_type: 'Bearer' } });
    assert.is((await rejects(c.token('some-code-value'), 'AUTH_BAD_RESPONSE')).details?.field, 'refresh_token');
    // authorize without a code
    ctx.emu.failNext(1, { status: 200, body: { state: 'x' } });
    await rejects(c.authorize(ctx.emu.addAccount()), 'AUTH_BAD_RESPONSE');
  }));

test('token answers: expires_in as a digit string and lower-case bearer are accepted', () =>
  withEmulator({}, async (ctx) => {
    ctx.emu.failNext(1, { status: 200, body: { access_token: 'a-123456', expires_in: '3600', refresh_token: 'r-123456', token_type: 'bearer' } });
    const t = await ctx.client().refresh('some-refresh-token-value');
    assert.is(t.expires_in, 3600);
    assert.is(t.token_type, 'Bearer');
  }));

test('a 3xx is not followed: AUTH_BAD_RESPONSE, not retried', () =>
  withEmulator({}, async (ctx) => {
    ctx.emu.failNext(1, { status: 302, body: '', headers: { location: 'https://elsewhere.invalid/' } });
    const err = await rejects(ctx.client().authorize(ctx.emu.addAccount()), 'AUTH_BAD_RESPONSE');
    assert.is(err.retryable, false);
    assert.is(ctx.emu.count('authorize'), 1);
  }));

// --- base URLs --------------------------------------------------------------------------------

test('base URL with a path prefix works with and without a trailing slash', () =>
  withEmulator({ basePath: '/clova/auth/' }, async (ctx) => {
    const base = ctx.emu.url; // …/clova/auth/
    assert.ok(base.endsWith('/clova/auth/'));
    for (const authUrl of [base, base.slice(0, -1), `${base}/`]) {
      const c = ctx.client({ authUrl });
      const { code } = await c.authorize(ctx.emu.addAccount());
      await c.token(code);
      assert.is(ctx.emu.last('authorize')!.path, '/clova/auth/authorize', authUrl);
      assert.is(ctx.emu.last('token')!.path, '/clova/auth/token', authUrl);
    }
  }));

test('bad configuration is refused at construction with ERR_INVALID_ARGUMENT', () => {
  const base = { authUrl: 'https://auth.example/', clientId: 'id', clientSecret: 'secret-123', deviceId: 'd' };
  for (const over of [
    { authUrl: 'http://auth.example/' },
    { authUrl: 'not a url' },
    { authUrl: 'https://user:pw@auth.example/' },
    { authUrl: 'https://auth.example/?x=1' },
    { clientId: '' },
    { deviceId: undefined },
    { region: 'US' },
    { authorizeMethod: 'PUT' },
  ]) {
    try {
      new ClovaAuthClient({ ...base, ...over } as unknown as ClovaAuthOptions);
      assert.unreachable(JSON.stringify(over));
    } catch (e) {
      assert.ok(isCicError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(over));
    }
  }
  assert.ok(new ClovaAuthClient({ ...base, authUrl: 'http://127.0.0.1:1/', allowHttp: true }));
});

// --- emulator behaviour the client relies on -------------------------------------------------

test('emulator: accepts /token parameters in the query, the body, or split; refuses conflicting duplicates', () =>
  withEmulator({}, async (ctx) => {
    const cred = ctx.emu.addAccount();
    const post = (query: Record<string, string>, form?: Record<string, string>, method = 'POST') =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const u = new URL(`${ctx.emu.url}token`);
        for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
        const body = form ? new URLSearchParams(form).toString() : undefined;
        const req = https.request(u, { method, ca: pki.ca, headers: body ? { 'content-type': 'application/x-www-form-urlencoded' } : {} }, (res) => {
          let t = '';
          res.on('data', (d) => (t += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(t) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const creds = { client_id: ctx.emu.clientId, client_secret: ctx.emu.clientSecret, device_id: DEVICE };
    const c1 = ctx.emu.issueCode(cred, DEVICE);
    const all = await post({ grant_type: 'authorization_code', code: c1, ...creds }, undefined, 'GET');
    assert.is(all.status, 200);
    const c2 = ctx.emu.issueCode(cred, DEVICE);
    const body = await post({}, { grant_type: 'authorization_code', code: c2, ...creds });
    assert.is(body.status, 200);
    const dup = await post({ grant_type: 'refresh_token' }, { grant_type: 'authorization_code', ...creds });
    assert.is(dup.status, 400);
    assert.is(dup.body.error, 'invalid_request');
  }));

test.run();
