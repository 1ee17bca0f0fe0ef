// ClientCredentialsClient (RFC 6749 §4.4) against the emulator's /connect/token, on fake time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientCredentialsClient, type CachedClientToken, type ClientCredentialsOptions, type ClientTokenCache } from '../src/auth/client-credentials';
import type { RetryInfo } from '../src/auth/retry';
import { isCicError } from '../src/errors';
import { AuthEmulator, type AuthEmulatorOptions } from './emulator/auth-server';
import { testPki } from './support/certs';
import { FakeClock } from './support/fake-clock';
import { rejects } from './support/expect';

const pki = testPki();

interface Ctx {
  clock: FakeClock;
  emu: AuthEmulator;
  retries: RetryInfo[];
  client(over?: Partial<ClientCredentialsOptions>): ClientCredentialsClient;
}

async function withEmulator(opts: Partial<AuthEmulatorOptions>, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const clock = new FakeClock();
  const emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, clock, ...opts });
  await emu.start();
  const retries: RetryInfo[] = [];
  const cc = emu.ccClients[0]!;
  const ctx: Ctx = {
    clock,
    emu,
    retries,
    client: (over = {}) =>
      new ClientCredentialsClient({
        tokenUrl: emu.ccTokenUrl,
        clientId: cc.clientId,
        clientSecret: cc.clientSecret,
        scope: 'read',
        caPem: pki.ca,
        clock,
        retry: { random: () => 0.5 },
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

test('first call fetches with a form POST (grant_type, client_id, client_secret, scope); the answer is typed', () =>
  withEmulator({ ccTtlS: 86400 }, async ({ emu, client, clock }) => {
    const c = client();
    const t = await c.getToken();
    const req = emu.last('connect/token')!;
    assert.is(req.method, 'POST');
    assert.is(req.contentType, 'application/x-www-form-urlencoded');
    assert.equal(req.query, {});
    assert.is(req.body.grant_type, 'client_credentials');
    assert.is(req.body.client_id, emu.ccClients[0]!.clientId);
    assert.ok(req.body.client_secret === emu.ccClients[0]!.clientSecret);
    assert.is(req.body.scope, 'read');
    assert.ok(emu.isValidClientToken(t.accessToken));
    assert.is(t.tokenType, 'Bearer');
    assert.is(t.scope, 'read');
    assert.is(t.expiresAt, clock.now() + 86_400_000);
  }));

test('the token is cached and reused: many calls, one request', () =>
  withEmulator({}, async ({ emu, client, clock }) => {
    const c = client();
    const first = await c.getAccessToken();
    for (let i = 0; i < 5; i++) {
      clock.advance(60_000);
      assert.ok((await c.getAccessToken()) === first, 'same token');
    }
    assert.is(emu.count('connect/token'), 1);
  }));

test('single-flight: 10 concurrent callers share one request', () =>
  withEmulator({}, async ({ emu, client }) => {
    const c = client();
    const all = await Promise.all(Array.from({ length: 10 }, () => c.getAccessToken()));
    assert.is(emu.count('connect/token'), 1);
    assert.ok(all.every((t) => t === all[0]), 'everyone got the same token');
  }));

test('renewed ahead of time: inside the renew window callers get the cached token while one background request fetches the next', () =>
  withEmulator({ ccTtlS: 3600 }, async ({ emu, client, clock }) => {
    const c = client({ renewBeforeMs: 300_000, minValidityMs: 10_000 });
    const t1 = await c.getAccessToken();
    clock.advance(3_600_000 - 300_001);
    assert.ok((await c.getAccessToken()) === t1, 'outside the window: cached, no request');
    assert.is(emu.count('connect/token'), 1);
    clock.advance(1);
    const served = await Promise.all([c.getAccessToken(), c.getAccessToken(), c.getAccessToken()]);
    assert.ok(served.every((t) => t === t1), 'callers are not kept waiting');
    await c.whenIdle();
    assert.is(emu.count('connect/token'), 2, 'one background renewal');
    const t2 = await c.getAccessToken();
    assert.ok(t2 !== t1, 'the renewed token is served');
    assert.ok(emu.isValidClientToken(t2));
    assert.is(emu.count('connect/token'), 2);
  }));

test('expired (or within minValidity): callers wait for the new token', () =>
  withEmulator({ ccTtlS: 3600 }, async ({ emu, client, clock }) => {
    const c = client({ renewBeforeMs: 60_000, minValidityMs: 10_000 });
    const t1 = await c.getAccessToken();
    clock.advance(3_600_000 - 10_000);
    const t2 = await c.getAccessToken();
    assert.ok(t2 !== t1, 'a new token');
    assert.is(emu.count('connect/token'), 2);
    clock.advance(3_600_000 + 1);
    assert.ok((await c.getAccessToken()) !== t2);
    assert.is(emu.count('connect/token'), 3);
  }));

test('short lifetimes cap the windows: a 60 s token is reused for 30 s, not renewed on every call', () =>
  withEmulator({ ccTtlS: 60 }, async ({ emu, client, clock }) => {
    const c = client({ renewBeforeMs: 300_000, minValidityMs: 60_000 });
    const t1 = await c.getAccessToken();
    clock.advance(29_999);
    assert.ok((await c.getAccessToken()) === t1);
    assert.is(emu.count('connect/token'), 1);
  }));

test('error payload: invalid_client → AUTH_INVALID_CLIENT with error and error_description in details', () =>
  withEmulator({}, async ({ emu, client, retries }) => {
    const err = await rejects(client({ clientSecret: 'not-the-right-secret' }).getToken(), 'AUTH_INVALID_CLIENT');
    assert.is(err.details?.error, 'invalid_client');
    assert.is(err.details?.error_description, 'Client authentication failed.');
    assert.is(err.details?.status, 401);
    assert.is(err.details?.endpoint, 'client_credentials');
    assert.is(retries.length, 0, 'not retried');
    assert.is(emu.count('connect/token'), 1);
  }));

test('error payload: invalid_scope → AUTH_INVALID_REQUEST with error=invalid_scope', () =>
  withEmulator({}, async ({ client }) => {
    const err = await rejects(client({ scope: ['read', 'admin'] }).getToken(), 'AUTH_INVALID_REQUEST');
    assert.is(err.details?.error, 'invalid_scope');
    assert.match(String(err.details?.error_description), /admin/);
  }));

test('scope as a list is sent space-separated; no scope → parameter left out', () =>
  withEmulator({}, async ({ emu, client }) => {
    const t = await client({ scope: ['read', 'write'] }).getToken();
    assert.is(emu.last('connect/token')!.body.scope, 'read write');
    assert.is(t.scope, 'read write');
    await client({ scope: undefined }).getToken();
    assert.not.ok('scope' in emu.last('connect/token')!.body);
  }));

test('5xx is retried with backoff, then succeeds', () =>
  withEmulator({}, async ({ emu, client, retries }) => {
    emu.failNext(2, { status: 502 });
    const t = await client().getAccessToken();
    assert.ok(emu.isValidClientToken(t));
    assert.is(emu.count('connect/token'), 3);
    assert.equal(retries.map((r) => r.error.code), ['AUTH_SERVER', 'AUTH_SERVER']);
  }));

test('single-flight failure: concurrent callers share the error; the next call tries again', () =>
  withEmulator({}, async ({ emu, client }) => {
    const c = client({ retry: { maxAttempts: 1 } });
    emu.failNext(1, { status: 400, body: { error: 'invalid_request', error_description: 'bad' } });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => c.getToken()));
    assert.is(emu.count('connect/token'), 1);
    assert.ok(results.every((r) => r.status === 'rejected' && isCicError(r.reason, 'AUTH_INVALID_REQUEST')));
    assert.ok(await c.getAccessToken());
    assert.is(emu.count('connect/token'), 2);
  }));

test('one caller aborting does not fail the others sharing the request', () =>
  withEmulator({}, async ({ emu, client, clock }) => {
    const c = client();
    emu.delayNext(1_000, 1, 'connect/token');
    const ac = new AbortController();
    const a = c.getToken({ signal: ac.signal });
    const b = c.getToken();
    await emu.waitForRequest('connect/token');
    ac.abort();
    await rejects(a, 'ERR_CLOSED');
    clock.advance(1_000);
    assert.ok(emu.isValidClientToken((await b).accessToken));
  }));

test('invalidate(rejected) after a 401 makes the next call fetch; a stale token does not evict the new one', () =>
  withEmulator({}, async ({ emu, client }) => {
    const c = client();
    const t1 = await c.getAccessToken();
    c.invalidate(t1);
    const t2 = await c.getAccessToken();
    assert.ok(t2 !== t1);
    c.invalidate(t1); // late 401 for the old token
    assert.ok((await c.getAccessToken()) === t2);
    assert.is(emu.count('connect/token'), 2);
  }));

test('malformed JSON answer → AUTH_BAD_RESPONSE', () =>
  withEmulator({}, async ({ emu, client }) => {
    emu.malformNext(1);
    await rejects(client({ retry: { maxAttempts: 1 } }).getToken(), 'AUTH_BAD_RESPONSE');
  }));

// --- cache hook -------------------------------------------------------------------------------

class MemoryCache implements ClientTokenCache {
  entry: CachedClientToken | undefined;
  saves = 0;
  loads = 0;
  failLoad = false;
  failSave = false;
  async load() {
    this.loads++;
    if (this.failLoad) throw new Error('cache unreadable');
    return this.entry;
  }
  async save(t: CachedClientToken) {
    if (this.failSave) throw new Error('cache unwritable');
    this.saves++;
    this.entry = { ...t };
  }
}

test('cache hook: a fetched token is saved with wall-clock times; a new client reuses it without a request', () =>
  withEmulator({ ccTtlS: 3600 }, async ({ emu, client, clock }) => {
    const cache = new MemoryCache();
    const t1 = await client({ cache }).getAccessToken();
    assert.is(cache.saves, 1);
    assert.is(cache.entry!.obtainedAt, clock.wallNow());
    assert.is(cache.entry!.expiresAt, clock.wallNow() + 3_600_000);
    assert.is(cache.entry!.requestedScope, 'read');
    clock.advance(600_000);
    const again = client({ cache });
    const t2 = await again.getToken();
    assert.ok(t2.accessToken === t1, 'reused from the cache');
    assert.is(t2.expiresAt, clock.now() + 3_000_000);
    assert.is(emu.count('connect/token'), 1);
  }));

test('cache hook: an entry for another scope or client, or an expired one, is ignored', () =>
  withEmulator({}, async ({ emu, client, clock }) => {
    const cache = new MemoryCache();
    await client({ cache }).getToken();
    await client({ cache, scope: 'write' }).getToken();
    assert.is(emu.count('connect/token'), 2);
    cache.entry = { ...cache.entry!, clientId: 'someone-else' };
    await client({ cache, scope: 'write' }).getToken();
    assert.is(emu.count('connect/token'), 3);
    clock.advance(3_600_000);
    await client({ cache, scope: 'write' }).getToken();
    assert.is(emu.count('connect/token'), 4);
  }));

test('cache hook: with the wall clock unset (1970 at boot) a cached token is not believed', () =>
  withEmulator({}, async ({ emu, client, clock }) => {
    const cache = new MemoryCache();
    await client({ cache }).getToken();
    clock.setWall(30_000); // 1970-01-01T00:00:30Z
    await client({ cache }).getToken();
    assert.is(emu.count('connect/token'), 2);
  }));

test('cache hook: load and save failures are logged and ignored', () =>
  withEmulator({}, async ({ emu, client }) => {
    const cache = new MemoryCache();
    cache.failLoad = true;
    cache.failSave = true;
    assert.ok(await client({ cache }).getAccessToken());
    assert.is(emu.count('connect/token'), 1);
  }));

test('concurrent first calls read the cache once and make no request when it holds a good token', () =>
  withEmulator({}, async ({ emu, client }) => {
    const cache = new MemoryCache();
    await client({ cache }).getToken();
    const c = client({ cache });
    cache.loads = 0;
    await Promise.all(Array.from({ length: 5 }, () => c.getToken()));
    assert.is(cache.loads, 1);
    assert.is(emu.count('connect/token'), 1);
  }));

test.run();
