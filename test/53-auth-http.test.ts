// The auth layer's building blocks: URL joining, the HTTP client (deadline, size limit,
// abort, TLS trust), the OAuth error mapping and the retry loop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpRequest, parseJsonObject } from '../src/auth/http-request';
import { oauthError } from '../src/auth/oauth-error';
import { withRetry } from '../src/auth/retry';
import { joinUrl, parseBaseUrl } from '../src/auth/url';
import { CicError, isCicError } from '../src/errors';
import { registerSecret } from '../src/util/secrets';
import { AuthEmulator } from './emulator/auth-server';
import { testPki } from './support/certs';
import { FakeClock } from './support/fake-clock';
import { rejects } from './support/expect';

const pki = testPki();

// --- url -------------------------------------------------------------------------------------

test('joinUrl: same result with or without trailing/leading slashes; the base path prefix is kept', () => {
  const cases: Array<[string, string, string]> = [
    ['https://auth.example', 'token', 'https://auth.example/token'],
    ['https://auth.example/', 'token', 'https://auth.example/token'],
    ['https://auth.example/', '/token', 'https://auth.example/token'],
    ['https://auth.example/api/auth', 'token', 'https://auth.example/api/auth/token'],
    ['https://auth.example/api/auth/', 'token', 'https://auth.example/api/auth/token'],
    ['https://auth.example/api/auth/', '/token', 'https://auth.example/api/auth/token'],
    ['https://auth.example/api/auth//', '//token', 'https://auth.example/api/auth/token'],
    ['https://auth.example:8443/a', 'connect/token', 'https://auth.example:8443/a/connect/token'],
  ];
  for (const [base, path, want] of cases) assert.is(joinUrl(base, path).href, want, `${base} + ${path}`);
});

test('joinUrl: query parameters are encoded, undefined ones left out', () => {
  const u = joinUrl('https://a.example/x/', 'authorize', { state: '95/Kja+Jf==', model_id: undefined, client_id: 'c' });
  assert.is(u.search, '?state=95%2FKja%2BJf%3D%3D&client_id=c');
  assert.is(u.searchParams.get('state'), '95/Kja+Jf==');
});

test('parseBaseUrl: refuses http (unless allowed), credentials, queries, fragments and garbage', () => {
  for (const bad of ['http://a.example/', 'ftp://a.example/', 'https://u:p@a.example/', 'https://a.example/?q=1', 'https://a.example/#f', '::']) {
    try {
      parseBaseUrl(bad);
      assert.unreachable(bad);
    } catch (e) {
      assert.ok(isCicError(e, 'ERR_INVALID_ARGUMENT'), bad);
      assert.not.ok((e as Error).message.includes('u:p'), 'credentials not echoed');
    }
  }
  assert.is(parseBaseUrl('http://127.0.0.1:8080/x', 'authUrl', { allowHttp: true }).pathname, '/x');
});

// --- http-request ------------------------------------------------------------------------------

async function withEmu(fn: (emu: AuthEmulator, clock: FakeClock) => Promise<void>): Promise<void> {
  const clock = new FakeClock();
  const emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, clock });
  await emu.start();
  try {
    await fn(emu, clock);
  } finally {
    await emu.stop();
  }
}

test('httpRequest: form body, status and headers; any status resolves', () =>
  withEmu(async (emu, clock) => {
    const res = await httpRequest({ method: 'POST', url: new URL(`${emu.url}token?grant_type=delete`), form: { a: '1', b: undefined }, timeoutMs: 5_000, clock, caPem: pki.ca });
    assert.is(res.status, 401);
    assert.match(String(res.headers['content-type']), /application\/json/);
    assert.is(parseJsonObject(res, 't').error, 'invalid_client');
    const req = emu.last('token')!;
    assert.equal(req.body, { a: '1' });
    assert.is(req.headers['content-length'], '3');
    assert.is(req.headers.accept, 'application/json');
    assert.is(clock.pending, 0, 'the deadline timer is cleared');
  }));

test('httpRequest: the deadline covers a server that never answers (AUTH_TIMEOUT on the injected clock)', () =>
  withEmu(async (emu, clock) => {
    emu.hangNext();
    const p = httpRequest({ method: 'GET', url: new URL(`${emu.url}authorize`), timeoutMs: 1_234, clock, caPem: pki.ca });
    await emu.waitForRequest();
    clock.advance(1_233);
    clock.advance(1);
    const err = await rejects(p, 'AUTH_TIMEOUT');
    assert.is(err.details?.timeoutMs, 1_234);
  }));

test('httpRequest: a body above maxResponseBytes → AUTH_BAD_RESPONSE (declared or streamed)', () =>
  withEmu(async (emu, clock) => {
    emu.failNext(1, { status: 200, body: 'x'.repeat(5_000) });
    const err = await rejects(httpRequest({ method: 'GET', url: new URL(`${emu.url}x`), timeoutMs: 5_000, clock, caPem: pki.ca, maxResponseBytes: 4_096 }), 'AUTH_BAD_RESPONSE');
    assert.is(err.details?.limit, 4_096);
  }));

test('httpRequest: a streamed body without content-length is also bounded', async () => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length declared
    res.write('x'.repeat(3_000));
    res.write('x'.repeat(3_000));
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await rejects(httpRequest({ method: 'GET', url, timeoutMs: 5_000, clock: new FakeClock(), maxResponseBytes: 4_096 }), 'AUTH_BAD_RESPONSE');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('httpRequest: abort → ERR_CLOSED (or the CicError given as reason)', () =>
  withEmu(async (emu, clock) => {
    emu.hangNext(2);
    const ac = new AbortController();
    const p = httpRequest({ method: 'GET', url: new URL(`${emu.url}a`), timeoutMs: 5_000, clock, caPem: pki.ca, signal: ac.signal });
    await emu.waitForRequest();
    ac.abort();
    await rejects(p, 'ERR_CLOSED');
    const ac2 = new AbortController();
    const p2 = httpRequest({ method: 'GET', url: new URL(`${emu.url}a`), timeoutMs: 5_000, clock, caPem: pki.ca, signal: ac2.signal });
    await emu.waitForRequest();
    ac2.abort(new CicError('CIC_STOPPED'));
    await rejects(p2, 'CIC_STOPPED');
    const pre = new AbortController();
    pre.abort();
    await rejects(httpRequest({ method: 'GET', url: new URL(`${emu.url}a`), timeoutMs: 5_000, clock, signal: pre.signal }), 'ERR_CLOSED');
    assert.is(clock.pending, 0);
  }));

test('httpRequest: the extra CA is added to the bundled roots; without it the test server is refused', () =>
  withEmu(async (emu, clock) => {
    const url = new URL(`${emu.url}token`);
    const err = await rejects(httpRequest({ method: 'GET', url, timeoutMs: 5_000, clock }), 'AUTH_NETWORK');
    assert.is(err.retryable, false);
    assert.is(err.details?.reason, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const res = await httpRequest({ method: 'GET', url, timeoutMs: 5_000, clock, caPem: pki.ca });
    assert.is(res.status, 401);
    await rejects(httpRequest({ method: 'GET', url, timeoutMs: 5_000, clock, caPem: 'not a pem' }), 'ERR_INVALID_ARGUMENT');
  }));

test('parseJsonObject: non-JSON and non-objects → AUTH_BAD_RESPONSE without quoting the body', () => {
  const mk = (s: string) => ({ status: 200, headers: {}, body: Buffer.from(s) });
  for (const body of ['<html>secret-looking-portal</html>', '[1]', 'null', '"x"']) {
    try {
      parseJsonObject(mk(body), 'what');
      assert.unreachable(body);
    } catch (e) {
      assert.ok(isCicError(e, 'AUTH_BAD_RESPONSE'));
      assert.not.ok((e as Error).message.includes('portal'));
    }
  }
  assert.equal(parseJsonObject(mk('{"a":1}'), 'w'), { a: 1 });
});

// --- oauth-error -------------------------------------------------------------------------------

test('oauthError: status + RFC 6749 §5.2 payload → stable codes', () => {
  const body = (o: unknown) => Buffer.from(JSON.stringify(o));
  const cases: Array<[number, unknown, 'authorize' | 'token' | 'client_credentials', string, boolean]> = [
    [400, { error: 'invalid_grant' }, 'token', 'AUTH_INVALID_GRANT', false],
    [401, { error: 'invalid_client' }, 'token', 'AUTH_INVALID_CLIENT', false],
    [400, { error: 'invalid_client' }, 'client_credentials', 'AUTH_INVALID_CLIENT', false],
    [401, { error: 'invalid_client' }, 'authorize', 'AUTH_INVALID_CLIENT', false],
    [401, { error: 'invalid_token' }, 'authorize', 'AUTH_UNAUTHORIZED', false],
    [401, undefined, 'authorize', 'AUTH_UNAUTHORIZED', false],
    [401, undefined, 'token', 'AUTH_INVALID_REQUEST', false],
    [400, { error: 'invalid_scope' }, 'client_credentials', 'AUTH_INVALID_REQUEST', false],
    [403, '<html>', 'token', 'AUTH_INVALID_REQUEST', false],
    [429, {}, 'token', 'AUTH_INVALID_REQUEST', true],
    [408, {}, 'token', 'AUTH_INVALID_REQUEST', true],
    [400, { error: 'temporarily_unavailable' }, 'token', 'AUTH_SERVER', true],
    [500, undefined, 'token', 'AUTH_SERVER', true],
    [503, { error: 'server_error' }, 'authorize', 'AUTH_SERVER', true],
    [302, undefined, 'token', 'AUTH_BAD_RESPONSE', false],
  ];
  for (const [status, payload, endpoint, code, retryable] of cases) {
    const e = oauthError(status, payload === undefined ? undefined : typeof payload === 'string' ? Buffer.from(payload) : body(payload), endpoint);
    const label = `${status} ${JSON.stringify(payload)} ${endpoint}`;
    assert.is(e.code, code, label);
    assert.is(e.retryable, retryable, label);
    assert.is(e.details?.status, status);
    assert.is(e.details?.endpoint, endpoint);
  }
});

test('oauthError: details are bounded, printable and redacted; Retry-After is parsed and capped', () => {
  registerSecret('very-secret-refresh-token-53');
  const e = oauthError(
    400,
    Buffer.from(JSON.stringify({ error: 'x'.repeat(200), error_description: `bad token very-secret-refresh-token-53 \u0000\n${'y'.repeat(500)}` })),
    'token',
    { 'retry-after': '86400' },
  );
  assert.is(String(e.details?.error).length, 65);
  const d = String(e.details?.error_description);
  assert.ok(d.length <= 257);
  assert.not.ok(d.includes('very-secret-refresh-token-53'));
  assert.not.ok(/[\u0000\n]/.test(d));
  assert.not.ok(e.message.includes('very-secret-refresh-token-53'));
  assert.is(e.details?.retryAfterMs, 300_000);
  assert.is(oauthError(503, undefined, 'token', { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }).details?.retryAfterMs, undefined);
});

// --- retry -------------------------------------------------------------------------------------

test('withRetry: retries only retryable CicErrors, bounded, with capped jittered delays on the clock', async () => {
  const clock = new FakeClock();
  const delays: number[] = [];
  let calls = 0;
  const p = withRetry(
    async () => {
      calls++;
      throw new CicError('AUTH_NETWORK', 'down');
    },
    { what: 't', clock, maxAttempts: 5, baseMs: 1_000, maxMs: 3_000, random: () => 0.99, onRetry: (i) => (delays.push(i.delayMs), setImmediate(() => clock.advance(i.delayMs))) },
  );
  await rejects(p, 'AUTH_NETWORK');
  assert.is(calls, 5);
  assert.equal(delays, [990, 1_980, 2_970, 2_970]);

  let n = 0;
  await rejects(withRetry(async () => {
    n++;
    throw new CicError('AUTH_INVALID_GRANT');
  }, { what: 't', clock }), 'AUTH_INVALID_GRANT');
  assert.is(n, 1);
  let m = 0;
  try {
    await withRetry(async () => {
      m++;
      throw new TypeError('a bug');
    }, { what: 't', clock });
  } catch (e) {
    assert.instance(e, TypeError);
  }
  assert.is(m, 1);
});

test('withRetry: an abort during the backoff sleep ends the loop with ERR_CLOSED', async () => {
  const clock = new FakeClock();
  const ac = new AbortController();
  const p = withRetry(async () => {
    throw new CicError('AUTH_SERVER');
  }, { what: 't', clock, signal: ac.signal, onRetry: () => setImmediate(() => ac.abort()) });
  await rejects(p, 'ERR_CLOSED');
  assert.is(clock.pending, 0);
});

test.run();
