// TokenManager over the real ClovaAuthClient and the auth emulator, with an in-memory
// persistence that records call order. Time is a FakeClock shared by the manager, the auth
// client and the emulator (token lifetimes); nothing here sleeps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClovaAuthClient } from '../src/auth/clova-auth';
import { MAX_TIMER_MS, TokenManager, WALL_RECHECK_MS, type TokenManagerEvents, type TokenManagerOptions, type TokenState } from '../src/auth/token-manager';
import type { StoreLoadResult, StoredTokens, TokenPersistence } from '../src/auth/types';
import type { TokenSource } from '../src/cic/types';
import { AuthEmulator, MemoryPersistence, type AuthEmulatorOptions } from './emulator/auth-server';
import { testPki } from './support/certs';
import { FakeClock, flushMicrotasks } from './support/fake-clock';
import { rejects } from './support/expect';

const pki = testPki();
const DEVICE = 'device-52';

function once<K extends keyof TokenManagerEvents>(m: TokenManager, event: K): Promise<Parameters<TokenManagerEvents[K]>> {
  return new Promise((resolve) => m.once(event, ((...args: Parameters<TokenManagerEvents[K]>) => resolve(args)) as TokenManagerEvents[K]));
}

interface Ctx {
  clock: FakeClock;
  emu: AuthEmulator;
  auth: ClovaAuthClient;
  store: MemoryPersistence;
  manager(over?: Partial<TokenManagerOptions>, store?: TokenPersistence): TokenManager;
  /** Tokens for a fresh grant, shaped as the store keeps them (obtained now). */
  seed(): StoredTokens;
}

async function withSetup(opts: Partial<AuthEmulatorOptions>, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const clock = new FakeClock();
  const emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, clock, ...opts });
  await emu.start();
  const auth = new ClovaAuthClient({
    authUrl: emu.url,
    clientId: emu.clientId,
    clientSecret: emu.clientSecret,
    deviceId: DEVICE,
    caPem: pki.ca,
    clock,
    retry: { random: () => 0.5 },
    onRetry: (info) => setImmediate(() => clock.advance(info.delayMs)),
  });
  const store = new MemoryPersistence();
  const managers: TokenManager[] = [];
  const ctx: Ctx = {
    clock,
    emu,
    auth,
    store,
    manager: (over = {}, s = store) => {
      const m = new TokenManager({ auth, store: s, clock, deviceId: DEVICE, refreshMarginMs: 60_000, minValidityMs: 5_000, retry: { random: () => 0.5 }, ...over });
      managers.push(m);
      return m;
    },
    seed: () => {
      const t = emu.issueTokens(DEVICE);
      return { accessToken: t.access_token, refreshToken: t.refresh_token, expiresAt: clock.wallNow() + t.expires_in * 1000, obtainedAt: clock.wallNow(), tokenType: 'Bearer', deviceId: DEVICE };
    },
  };
  try {
    await fn(ctx);
  } finally {
    for (const m of managers) void m.close();
    await emu.stop();
  }
}

// --- login / status -------------------------------------------------------------------------

test('login: authorize + token → saved → valid; the refresh is scheduled margin before expiry', () =>
  withSetup({ accessTtlS: 600 }, async ({ emu, store, manager, clock }) => {
    const m = manager();
    const states: TokenState[] = [];
    m.on('state', (s) => states.push(s));
    const r = await m.login(emu.addAccount());
    assert.equal(r, { persisted: true, expiresInMs: 600_000 });
    assert.equal(states, ['valid']);
    assert.equal(store.calls, ['save:start', 'save:done']);
    const saved = store.tokens!;
    assert.ok(emu.isValidAccessToken(saved.accessToken) && emu.isValidRefreshToken(saved.refreshToken));
    assert.is(saved.expiresAt, clock.wallNow() + 600_000);
    assert.is(saved.obtainedAt, clock.wallNow());
    assert.is(saved.deviceId, DEVICE);
    assert.ok((await m.getAccessToken()) === saved.accessToken);
    const s = m.status();
    assert.is(s.state, 'valid');
    assert.is(s.loggedIn, true);
    assert.is(s.expiresInMs, 600_000);
    assert.is(s.refreshInMs, 540_000);
    assert.is(s.persisted, true);
    assert.is(s.wallClockTrusted, true);
    assert.is(clock.nextDelay(), 540_000);
  }));

test('loginWithCode: a code from the companion app', () =>
  withSetup({}, async ({ emu, store, manager }) => {
    const m = manager();
    const code = emu.issueCode(emu.addAccount(), DEVICE);
    await m.loginWithCode(code);
    assert.is(m.state, 'valid');
    assert.ok(emu.isValidAccessToken(store.tokens!.accessToken));
  }));

test('login: 451 surfaces as AUTH_TERMS_REQUIRED; nothing is stored, the state does not change', () =>
  withSetup({}, async ({ emu, store, manager }) => {
    const m = manager();
    await rejects(m.login(emu.addAccount({ termsAgreed: false })), 'AUTH_TERMS_REQUIRED');
    assert.is(m.state, 'logged-out');
    assert.equal(store.calls, []);
  }));

test('no stored token: getAccessToken → AUTH_NOT_LOGGED_IN, state logged-out', () =>
  withSetup({}, async ({ manager }) => {
    const m = manager();
    const st = await m.start();
    assert.is(st.state, 'logged-out');
    assert.is(st.loggedIn, false);
    await rejects(m.getAccessToken(), 'AUTH_NOT_LOGGED_IN');
    await rejects(m.onUnauthorized('whatever-token'), 'AUTH_NOT_LOGGED_IN');
  }));

test('a corrupt store reads as logged-out with a coded warning', () =>
  withSetup({}, async ({ manager }) => {
    const corrupt: TokenPersistence = {
      path: '/x/tokens.bin',
      load: async (): Promise<StoreLoadResult> => ({ state: 'corrupt', path: '/x/tokens.bin', reason: 'bad checksum' }),
      save: async () => ({ written: true }),
      clear: async () => undefined,
    };
    const m = manager({}, corrupt);
    const warned = once(m, 'warning');
    await m.start();
    const [w] = await warned;
    assert.is(w.code, 'STORE_CORRUPT');
    assert.is(w.details?.reason, 'bad checksum');
    assert.is(m.state, 'logged-out');
  }));

// --- loading and the clocks ------------------------------------------------------------------

test('start: the stored wall-clock expiry becomes a monotonic deadline once; later wall-clock jumps do not move it', () =>
  withSetup({ accessTtlS: 3600 }, async ({ store, manager, clock, seed }) => {
    store.tokens = seed();
    clock.advance(1_000_000); // the token is 1000 s old at boot
    const m = manager();
    const st = await m.start();
    assert.is(st.state, 'valid');
    assert.is(st.expiresInMs, 2_600_000);
    clock.setWall(clock.wallNow() + 86_400_000); // NTP steps the clock a day ahead
    assert.is(m.status().expiresInMs, 2_600_000);
    clock.setWall(clock.wallNow() - 2 * 86_400_000); // … and back
    assert.is(m.status().expiresInMs, 2_600_000);
    assert.is(m.status().refreshInMs, 2_540_000);
  }));

test('boot with the wall clock unset (1970): expiry unknown, the stored token is used as is, the clock is re-checked until set', () =>
  withSetup({ accessTtlS: 3600 }, async ({ emu, store, manager, clock, seed }) => {
    const stored = seed();
    store.tokens = stored;
    const realWall = clock.wallNow();
    clock.setWall(20_000); // 1970-01-01T00:00:20Z
    const m = manager();
    const st = await m.start();
    assert.is(st.expiresInMs, null);
    assert.is(st.wallClockTrusted, false);
    assert.is(st.state, 'valid');
    assert.ok((await m.getAccessToken()) === stored.accessToken, 'handed out without a refresh');
    assert.is(emu.count('token'), 0);
    assert.is(clock.nextDelay(), WALL_RECHECK_MS);
    clock.advance(WALL_RECHECK_MS); // still unset: re-armed
    assert.is(m.status().expiresInMs, null);
    // NTP sets the clock: 2 h after the token was issued, so it is already expired.
    clock.setWall(realWall + 7_200_000);
    const refreshed = once(m, 'refreshed');
    clock.advance(WALL_RECHECK_MS);
    await refreshed;
    assert.is(emu.count('token:refresh_token'), 1);
    assert.ok(m.status().expiresInMs! > 3_000_000);
  }));

test('a wall clock behind the token obtainedAt is not believed either', () =>
  withSetup({}, async ({ store, manager, clock, seed }) => {
    store.tokens = seed();
    clock.setWall(clock.wallNow() - 86_400_000);
    const m = manager();
    assert.is((await m.start()).expiresInMs, null);
  }));

test('a stored token already inside the margin is refreshed at start', () =>
  withSetup({ accessTtlS: 600 }, async ({ emu, store, manager, clock, seed }) => {
    store.tokens = seed();
    clock.advance(570_000);
    const m = manager();
    const refreshed = once(m, 'refreshed');
    await m.start();
    const [info] = await refreshed;
    assert.is(info.reason, 'proactive');
    assert.is(emu.count('token:refresh_token'), 1);
  }));

// --- refresh ---------------------------------------------------------------------------------

test('proactive refresh on fake time: fires margin before expiry, rotates, persists, re-arms', () =>
  withSetup({ accessTtlS: 600 }, async ({ emu, store, manager, clock }) => {
    const m = manager();
    await m.login(emu.addAccount());
    const before = { ...store.tokens! };
    clock.advance(539_999);
    assert.is(emu.count('token:refresh_token'), 0);
    const refreshed = once(m, 'refreshed');
    clock.advance(1);
    const [info] = await refreshed;
    assert.equal(info, { reason: 'proactive', expiresInMs: 600_000, rotated: true, persisted: true });
    assert.is(emu.count('token:refresh_token'), 1);
    const after = store.tokens!;
    assert.ok(after.refreshToken !== before.refreshToken && emu.isValidRefreshToken(after.refreshToken), 'the rotated token was saved');
    assert.not.ok(emu.isValidRefreshToken(before.refreshToken));
    assert.ok((await m.getAccessToken()) === after.accessToken);
    assert.is(m.status().refreshInMs, 540_000);
  }));

test('timer delays are clamped to 2^31-1 ms (a 40-day token is not refreshed in a loop)', () =>
  withSetup({ accessTtlS: 40 * 86_400 }, async ({ emu, manager, clock }) => {
    const m = manager({ refreshMarginMs: 600_000 });
    await m.login(emu.addAccount());
    const total = 40 * 86_400_000 - 600_000;
    assert.is(clock.nextDelay(), MAX_TIMER_MS);
    clock.advance(MAX_TIMER_MS);
    await flushMicrotasks();
    assert.is(emu.count('token:refresh_token'), 0);
    assert.is(clock.nextDelay(), total - MAX_TIMER_MS);
    const refreshed = once(m, 'refreshed');
    clock.advance(total - MAX_TIMER_MS);
    await refreshed;
    assert.is(emu.count('token:refresh_token'), 1);
  }));

test('the margin is capped at half the lifetime (short-lived tokens are not refreshed continuously)', () =>
  withSetup({ accessTtlS: 60 }, async ({ emu, manager, clock }) => {
    const m = manager({ refreshMarginMs: 600_000 });
    await m.login(emu.addAccount());
    assert.is(clock.nextDelay(), 30_000);
  }));

test('an expired token is refreshed on demand (autoRefresh off); concurrent callers share the refresh', () =>
  withSetup({ accessTtlS: 600 }, async ({ emu, manager, clock }) => {
    const m = manager({ autoRefresh: false });
    await m.login(emu.addAccount());
    assert.is(clock.pending, 0, 'no timer without autoRefresh');
    const old = await m.getAccessToken();
    clock.advance(595_000); // inside minValidity
    const got = await Promise.all(Array.from({ length: 10 }, () => m.getAccessToken()));
    assert.is(emu.count('token:refresh_token'), 1);
    assert.ok(got.every((t) => t === got[0] && t !== old));
    assert.ok(emu.isValidAccessToken(got[0]!));
  }));

test('401-driven refresh: onUnauthorized(current) refreshes and returns the new token', () =>
  withSetup({}, async ({ emu, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    const old = await m.getAccessToken();
    emu.expireAccessTokens(old); // CIC now answers 401 for it
    const fresh = await m.onUnauthorized(old);
    assert.ok(fresh !== old && emu.isValidAccessToken(fresh));
    assert.is(emu.count('token:refresh_token'), 1);
  }));

test('single-flight: 10 concurrent 401s cause 1 refresh request; a late 401 for the replaced token causes none', () =>
  withSetup({}, async ({ emu, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    const old = await m.getAccessToken();
    const results = await Promise.all(Array.from({ length: 10 }, () => m.onUnauthorized(old)));
    assert.is(emu.count('token:refresh_token'), 1, 'one refresh at the emulator');
    assert.ok(results.every((t) => t === results[0] && t !== old), 'everyone got the same new token');
    const late = await m.onUnauthorized(old);
    assert.ok(late === results[0]);
    assert.is(emu.count('token:refresh_token'), 1, 'no second refresh');
  }));

test('rotation is persisted BEFORE the new access token is handed out', () =>
  withSetup({}, async ({ emu, store, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    const old = { ...store.tokens! };
    store.calls.length = 0;
    store.hold();
    const saveStarted = store.waitForSave();
    const waiters = Array.from({ length: 3 }, () =>
      m.onUnauthorized(old.accessToken).then((t) => {
        store.calls.push('token-available');
        return t;
      }),
    );
    await saveStarted;
    // The server has rotated; the new tokens exist only in the manager, on their way to flash.
    assert.not.ok(emu.isValidRefreshToken(old.refreshToken));
    await flushMicrotasks();
    assert.equal(store.calls, ['save:start'], 'nobody got the new token while the save is pending');
    assert.is(m.state, 'refreshing');
    assert.ok(store.tokens!.refreshToken === old.refreshToken);
    store.release();
    const got = await Promise.all(waiters);
    assert.equal(store.calls, ['save:start', 'save:done', 'token-available', 'token-available', 'token-available']);
    assert.ok(got[0] === store.tokens!.accessToken);
    assert.ok(emu.isValidRefreshToken(store.tokens!.refreshToken));
  }));

test('a failed save keeps the new tokens in memory, warns STORE_WRITE_FAILED, and retries the save', () =>
  withSetup({}, async ({ emu, store, manager, clock }) => {
    const m = manager();
    await m.login(emu.addAccount());
    const old = { ...store.tokens! };
    store.failSaves = 1;
    const warned = once(m, 'warning');
    const refreshed = once(m, 'refreshed');
    const fresh = await m.onUnauthorized(old.accessToken);
    const [w] = await warned;
    assert.is(w.code, 'STORE_WRITE_FAILED');
    assert.is((await refreshed)[0].persisted, false);
    assert.ok(fresh !== old.accessToken && emu.isValidAccessToken(fresh), 'the new token is in use');
    assert.ok(store.tokens!.refreshToken === old.refreshToken, 'flash still has the old (now dead) one');
    assert.is(m.status().persisted, false);
    // retry of the save: backoff base 5 s, random 0.5 → 2.5 s
    const saved = store.waitForSave();
    clock.advance(2_500);
    await saved;
    await flushMicrotasks();
    assert.is(m.status().persisted, true);
    assert.ok(store.tokens!.accessToken === fresh);
    assert.ok(emu.isValidRefreshToken(store.tokens!.refreshToken));
  }));

test('close() makes one last attempt to save unsaved tokens', () =>
  withSetup({}, async ({ emu, store, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    store.failSaves = 1;
    const fresh = await m.onUnauthorized(await m.getAccessToken());
    await m.close();
    assert.ok(store.tokens!.accessToken === fresh);
    await rejects(m.getAccessToken(), 'ERR_CLOSED');
  }));

test('transient refresh failure: refresh-failed with a retry delay, state stays valid, the retry succeeds', () =>
  withSetup({ accessTtlS: 600 }, async ({ emu, manager, clock }) => {
    const m = manager();
    await m.login(emu.addAccount());
    emu.failNext(3, { status: 503, endpoint: 'token:refresh_token' }); // the client's 3 attempts
    const failed = once(m, 'refresh-failed');
    clock.advance(540_000);
    const [err, retryInMs] = await failed;
    assert.is(err.code, 'AUTH_SERVER');
    assert.is(retryInMs, 2_500);
    assert.is(m.state, 'valid');
    assert.is(m.status().lastError?.code, 'AUTH_SERVER');
    const refreshed = once(m, 'refreshed');
    clock.advance(2_500);
    const [info] = await refreshed;
    assert.is(info.reason, 'retry');
    assert.is(m.status().lastError, undefined);
  }));

test('transient failure past expiry: state expired, callers get the coded error, a later call recovers', () =>
  withSetup({ accessTtlS: 600 }, async ({ emu, manager, clock }) => {
    const m = manager({ autoRefresh: false });
    await m.login(emu.addAccount());
    clock.advance(600_000);
    emu.failNext(3, { status: 500, endpoint: 'token:refresh_token' });
    await rejects(m.getAccessToken(), 'AUTH_SERVER');
    assert.is(m.state, 'expired');
    const t = await m.getAccessToken();
    assert.ok(emu.isValidAccessToken(t));
    assert.is(m.state, 'valid');
  }));

test('dead grant: invalid_grant → state dead, a dead event, every call rejects AUTH_INVALID_GRANT, no timers', () =>
  withSetup({ accessTtlS: 600 }, async ({ emu, store, manager, clock }) => {
    const m = manager();
    await m.login(emu.addAccount());
    emu.revokeGrantOf(store.tokens!.refreshToken);
    const dead = once(m, 'dead');
    const states: TokenState[] = [];
    m.on('state', (s) => states.push(s));
    clock.advance(540_000);
    const [err] = await dead;
    assert.is(err.code, 'AUTH_INVALID_GRANT');
    assert.equal(states, ['refreshing', 'dead']);
    assert.is(m.status().state, 'dead');
    assert.is(m.status().lastError?.code, 'AUTH_INVALID_GRANT');
    await rejects(m.getAccessToken(), 'AUTH_INVALID_GRANT');
    await rejects(m.onUnauthorized('anything-at-all'), 'AUTH_INVALID_GRANT');
    assert.is(clock.pending, 0);
    assert.is(emu.count('token:refresh_token'), 1, 'not retried');
    // A new login revives it.
    await m.login(emu.addAccount());
    assert.is(m.state, 'valid');
  }));

test('invalid_client on refresh is terminal too', () =>
  withSetup({}, async ({ emu, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    emu.failNext(1, { status: 401, body: { error: 'invalid_client' }, endpoint: 'token:refresh_token' });
    await rejects(m.forceRefresh(), 'AUTH_INVALID_CLIENT');
    assert.is(m.state, 'dead');
  }));

test('login while a refresh hangs: the old refresh is abandoned and the new login wins', () =>
  withSetup({}, async ({ emu, store, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    emu.hangNext(1, 'token:refresh_token');
    const hung = m.forceRefresh();
    await emu.waitForRequest('token:refresh_token');
    await m.login(emu.addAccount());
    await rejects(hung, 'ERR_CLOSED');
    assert.is(m.state, 'valid');
    assert.ok((await m.getAccessToken()) === store.tokens!.accessToken);
  }));

// --- logout -----------------------------------------------------------------------------------

test('logout: revokes at the server, then clears the store', () =>
  withSetup({}, async ({ emu, store, manager, clock }) => {
    const m = manager();
    await m.login(emu.addAccount());
    const at = store.tokens!.accessToken;
    store.calls.length = 0;
    assert.equal(await m.logout(), { revoked: true });
    assert.not.ok(emu.isValidAccessToken(at));
    assert.is(emu.count('token:delete'), 1);
    assert.equal(store.calls, ['clear']);
    assert.is(store.tokens, undefined);
    assert.is(m.state, 'logged-out');
    assert.is(clock.pending, 0);
    await rejects(m.getAccessToken(), 'AUTH_NOT_LOGGED_IN');
  }));

test('logout clears even when the server says invalid_grant (dead grant)', () =>
  withSetup({}, async ({ emu, store, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    emu.revokeAll();
    assert.equal(await m.logout(), { revoked: false });
    assert.is(store.tokens, undefined);
    assert.is(m.state, 'logged-out');
  }));

test('logout with the server unreachable throws and keeps the tokens; force clears anyway', () =>
  withSetup({}, async ({ emu, store, manager }) => {
    const m = manager();
    await m.login(emu.addAccount());
    emu.failNext(3, { status: 500, endpoint: 'token:delete' });
    await rejects(m.logout(), 'AUTH_SERVER');
    assert.ok(store.tokens, 'kept');
    assert.is(m.state, 'valid');
    emu.failNext(3, { status: 500, endpoint: 'token:delete' });
    assert.equal(await m.logout({ force: true }), { revoked: false });
    assert.is(store.tokens, undefined);
  }));

test('logout of stored tokens loads them first', () =>
  withSetup({}, async ({ emu, store, manager, seed }) => {
    const t = seed();
    store.tokens = t;
    const m = manager();
    await m.logout();
    assert.not.ok(emu.isValidAccessToken(t.accessToken));
    assert.is(store.tokens, undefined);
  }));

test('the manager is the CIC client\'s TokenSource', () =>
  withSetup({}, async ({ emu, manager }) => {
    const source: TokenSource = manager(); // compile-time check of the contract the CIC layer uses
    await rejects(source.getAccessToken(), 'AUTH_NOT_LOGGED_IN');
    await (source as TokenManager).login(emu.addAccount());
    const t = await source.getAccessToken();
    assert.ok((await source.onUnauthorized(t)) !== t);
  }));

test('close: idempotent, cancels timers, later calls throw ERR_CLOSED', () =>
  withSetup({}, async ({ emu, manager, clock }) => {
    const m = manager();
    await m.login(emu.addAccount());
    assert.is(clock.pending, 1);
    await Promise.all([m.close(), m.close()]);
    assert.is(clock.pending, 0);
    await rejects(m.getAccessToken(), 'ERR_CLOSED');
    await rejects(m.login('x-account-credential'), 'ERR_CLOSED');
  }));

test.run();
