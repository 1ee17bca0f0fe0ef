// Pairing while running: with a socket, no token (or a dead grant) is not the end of `run` —
// it waits in waiting-for-login, answers status, refuses events with a code, takes `login`
// over the socket (account token, terms, authorization code) and then connects with a new
// CicClient. Real token manager and store, auth and CIC emulators, a real Unix socket.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { AuthEmulator } from './emulator/auth-server';
import { startCicEmulator, type CicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { startStack, STACK_DEVICE } from './support/service-stack';
import { EventEmitter } from 'node:events';
import { RuntimeSupervisor } from '../src/service/supervisor';
import type { CicClientLike } from '../src/service/cic-port';
import { FakeClock } from './support/fake-clock';

const pki = testPki();
let auth: AuthEmulator;
let cic: CicEmulator;

test.before(async () => {
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
});

test.after(async () => {
  await cic.stop();
  await auth.stop();
});

test('no token: waiting-for-login → login {accountToken} over the socket → connecting → ready', async () => {
  const stack = await startStack(auth, cic, { login: false });
  try {
    const setup = await stack.connect();
    setup.send('subscribe');
    await stack.supervisor.start();
    const first = await setup.next('state', (f) => f.data.state === 'waiting-for-login');
    assert.is(first.data.loggedIn, false);
    assert.is(first.data.tokenExpiresAt, null);
    assert.is((await setup.ask('status', undefined, 'status')).data.state, 'waiting-for-login');
    const refused = await setup.ask('cic-event', { namespace: 'System', name: 'SynchronizeState', id: 'early' }, 'event-failed');
    assert.equal(refused.data, { id: 'early', messageId: null, code: 'SOCKET_NOT_READY', text: 'the runtime is waiting for login' });
    assert.is(cic.counters.sessions, 0, 'nothing connected yet');
    assert.not.ok(existsSync(stack.tokenFile));

    const account = auth.addAccount();
    const mark = setup.frames.length;
    setup.send('login', { accountToken: account });
    const done = await setup.next('logged-in', () => true, mark);
    assert.is(done.data.deviceId, STACK_DEVICE);
    assert.match(String(done.data.expiresAt), /^\d{4}-/);
    await setup.next('state', (f) => f.data.state === 'ready', mark, 20_000);
    assert.equal(
      setup.frames.slice(mark).filter((f) => f.type === 'state').map((f) => f.data.state),
      ['connecting', 'ready'],
    );
    assert.ok(existsSync(stack.tokenFile), 'the token file was written');
    const ok = await setup.ask('cic-event', { namespace: 'System', name: 'SynchronizeState', id: 'now' }, 'event-sent');
    assert.is(ok.data.status, 204);
    assert.not.ok(setup.received.includes(Buffer.from(account)), 'the account token is never sent back');
  } finally {
    await stack.stop();
  }
});

test('terms: login answers `terms` {uri, code}; after agreeing, login {code} pairs', async () => {
  const stack = await startStack(auth, cic, { login: false });
  try {
    await stack.supervisor.start();
    const bridge = await stack.connect();
    const account = auth.addAccount({ termsAgreed: false });
    const terms = await bridge.ask('login', { accountToken: account }, 'terms');
    assert.match(String(terms.data.uri), /^https?:\/\//);
    assert.is(typeof terms.data.code, 'string');
    assert.is(stack.supervisor.status().state, 'waiting-for-login');
    auth.agreeTerms(account);
    const done = await bridge.ask('login', { code: terms.data.code as string }, 'logged-in');
    assert.is(done.data.deviceId, STACK_DEVICE);
    await stack.waitState('ready');
  } finally {
    await stack.stop();
  }
});

test('a refused account token: error AUTH_UNAUTHORIZED, still waiting, the client may try again', async () => {
  const stack = await startStack(auth, cic, { login: false });
  try {
    await stack.supervisor.start();
    const bridge = await stack.connect();
    const err = await bridge.ask('login', { accountToken: 'not-an-account-token-0001' }, 'error');
    assert.is(err.data.code, 'AUTH_UNAUTHORIZED');
    assert.not.ok(String(err.data.text).includes('not-an-account-token-0001'));
    assert.is((await bridge.ask('status', undefined, 'status')).data.state, 'waiting-for-login');
  } finally {
    await stack.stop();
  }
});

test('the grant dies while running (invalid_grant): waiting-for-login, then login {code} → a new client → ready', async () => {
  const stack = await startStack(auth, cic);
  try {
    const led = await stack.connect();
    led.send('subscribe');
    await stack.supervisor.start();
    await led.next('state', (f) => f.data.state === 'ready', 0, 20_000);
    const sessionsBefore = cic.counters.sessions;
    // The grant dies at the auth server; CIC refuses the token; the refresh gets invalid_grant.
    auth.revokeAll();
    cic.expireTokens('all');
    const mark = led.frames.length;
    cic.dropSocket();
    const waiting = await led.next('state', (f) => f.data.state === 'waiting-for-login', mark, 20_000);
    assert.is(waiting.data.code, 'AUTH_INVALID_GRANT');
    assert.is(waiting.data.loggedIn, false);
    assert.ok(stack.logs.some((l) => l.msg === 'the grant is gone: waiting for a login on the device socket'));

    cic.restoreTokens();
    const account = auth.addAccount();
    const code = auth.issueCode(account, STACK_DEVICE);
    const m2 = led.frames.length;
    assert.is((await led.ask('login', { code }, 'logged-in')).data.deviceId, STACK_DEVICE);
    await led.next('state', (f) => f.data.state === 'ready', m2, 20_000);
    assert.ok(cic.counters.sessions > sessionsBefore, 'a new connection from a new client');
    assert.is((await led.ask('cic-event', { namespace: 'System', name: 'SynchronizeState' }, 'event-sent')).data.status, 204);
    assert.not.ok(led.received.includes(Buffer.from(code)), 'the code is never sent back');
  } finally {
    await stack.stop();
  }
});

test('status surfaces the client\'s warning while CIC keeps refusing tokens, and counts reconnects', async () => {
  const clock = new FakeClock();
  const fake = Object.assign(new EventEmitter(), {
    state: 'idle',
    closeError: undefined,
    start() {},
    async stop() {},
    warning: undefined as { code: string; message: string } | undefined,
    stats() {
      return { queued: 2, ...(this.warning ? { warning: this.warning } : {}) };
    },
    sendEvent() {
      throw new Error('unused');
    },
  });
  const tokens = {
    start: async () => ({ state: 'valid' as const, loggedIn: true, persisted: true, wallClockTrusted: true }),
    status: () => ({ state: 'valid' as const, loggedIn: true, persisted: true, wallClockTrusted: true, expiresAt: Date.UTC(2026, 0, 2), deviceId: 'dev-w' }),
    login: async () => ({ persisted: true, expiresInMs: 1 }),
    loginWithCode: async () => ({ persisted: true, expiresInMs: 1 }),
  };
  const sup = new RuntimeSupervisor({ tokens, waitForLogin: true, version: '1.2.3', clock, createClient: () => fake as unknown as CicClientLike });
  const seen: string[] = [];
  sup.listen({ state: (s) => seen.push(s.state) });
  await sup.start();
  const change = (from: string, to: string, code?: string) => fake.emit('state', { from, to, reason: 'test', ...(code ? { code } : {}) });
  change('idle', 'authorizing');
  change('authorizing', 'connecting');
  change('opening-downchannel', 'ready');
  assert.is(sup.status().connectedSince, new Date(clock.wallNow()).toISOString());
  fake.warning = { code: 'CIC_UNAUTHORIZED', message: 'CIC refused 2 fresh tokens in a row' };
  change('ready', 'reconnecting', 'CIC_UNAUTHORIZED');
  const st = sup.status();
  assert.equal(st.warning, { code: 'CIC_UNAUTHORIZED', message: 'CIC refused 2 fresh tokens in a row' });
  assert.equal([st.state, st.code, st.reconnects, st.queuedEvents, st.connectedSince, st.deviceId, st.tokenExpiresAt], ['reconnecting', 'CIC_UNAUTHORIZED', 1, 2, null, 'dev-w', '2026-01-02T00:00:00.000Z']);
  fake.emit('ping', 12.4);
  assert.is(sup.status().lastPingRttMs, 12);
  assert.equal(seen, ['connecting', 'ready', 'reconnecting'], 'one state message per change, not per client step');
});

test.run();
