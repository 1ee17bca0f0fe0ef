// No token, code, account credential or client secret reaches a log line or an error message.
// Every auth flow (success and failure paths) runs with a debug-level logger whose output is
// captured; every error is also logged the way the daemon would log it. Then the captured
// text is searched for every secret the emulator issued or was configured with.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientCredentialsClient } from '../src/auth/client-credentials';
import { ClovaAuthClient, termsRequired } from '../src/auth/clova-auth';
import { TokenManager } from '../src/auth/token-manager';
import { isCicError } from '../src/errors';
import { createLogger } from '../src/log';
import { AuthEmulator, MemoryPersistence } from './emulator/auth-server';
import { testPki } from './support/certs';
import { FakeClock } from './support/fake-clock';

const pki = testPki();
const DEVICE = 'device-54';

test('secrets never appear in debug logs or error messages across every auth flow', async () => {
  const clock = new FakeClock();
  const emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, clock, accessTtlS: 600 });
  await emu.start();
  const lines: string[] = [];
  const messages: string[] = [];
  const log = createLogger({ level: 'debug', write: (l) => lines.push(l), now: () => 0 });
  /** Runs a flow expected to fail with `code` and logs the error the way the daemon would. */
  const caught = async (what: string, code: string, p: Promise<unknown>): Promise<unknown> => {
    try {
      await p;
    } catch (e) {
      assert.ok(isCicError(e) && e.code === code, `${what}: expected ${code}, got ${(e as { code?: string }).code}`);
      messages.push(String((e as Error).message), String((e as Error).stack));
      log.error(`flow failed: ${what}`, { err: e });
      return e;
    }
    throw new Error(`${what}: expected ${code}, but the call resolved`);
  };
  try {
    const auth = new ClovaAuthClient({
      authUrl: emu.url,
      clientId: emu.clientId,
      clientSecret: emu.clientSecret,
      deviceId: DEVICE,
      modelId: 'model-54',
      caPem: pki.ca,
      clock,
      log,
      retry: { random: () => 0.5 },
      onRetry: (i) => setImmediate(() => clock.advance(i.delayMs)),
    });
    const store = new MemoryPersistence();
    const m = new TokenManager({ auth, store, clock, log, refreshMarginMs: 60_000, retry: { random: () => 0.5 } });
    m.on('warning', (w) => log.warn('warning event', { err: w }));
    m.on('dead', (e) => log.error('dead event', { err: e }));

    // login, proactive refresh with a retried 5xx, 401-driven refresh, a failed save, logout
    await m.login(emu.addAccount());
    emu.failNext(1, { status: 503, endpoint: 'token:refresh_token' });
    const refreshed = new Promise((r) => m.once('refreshed', r));
    clock.advance(540_000);
    await refreshed;
    store.failSaves = 1;
    await m.onUnauthorized(await m.getAccessToken());
    log.info('status', { status: m.status() });
    await m.logout();

    // dead grant
    await m.login(emu.addAccount());
    emu.revokeAll();
    await caught('dead refresh', 'AUTH_INVALID_GRANT', m.forceRefresh());
    assert.equal(await m.logout(), { revoked: false });

    // 451 (the error's details carry the code and the URI on purpose: the CLI prints them to
    // stdout; the logger must still redact them)
    const terms = await caught('terms', 'AUTH_TERMS_REQUIRED', auth.authorize(emu.addAccount({ termsAgreed: false })));
    assert.ok(termsRequired(terms), 'the 451 details are reachable');

    // state mismatch, 401, invalid_client, invalid_grant, malformed, timeout
    emu.tamperStateNext();
    await caught('state', 'AUTH_STATE_MISMATCH', auth.authorize(emu.addAccount()));
    await caught('unauthorized', 'AUTH_UNAUTHORIZED', auth.authorize('unknown-account-credential-54'));
    const { code } = await auth.authorize(emu.addAccount());
    const wrong = new ClovaAuthClient({ authUrl: emu.url, clientId: emu.clientId, clientSecret: 'wrong-secret-54-abcdef', deviceId: DEVICE, caPem: pki.ca, clock, log });
    await caught('invalid_client', 'AUTH_INVALID_CLIENT', wrong.token(code));
    const t = await auth.token(code);
    await caught('used code', 'AUTH_INVALID_GRANT', auth.token(code));
    emu.failNext(1, { status: 400, body: { error: 'invalid_grant', error_description: `refresh token ${t.refresh_token} was revoked` } });
    await caught('echoing server', 'AUTH_INVALID_GRANT', auth.refresh(t.refresh_token!));
    emu.malformNext(1); // a 200 that does not parse is not retried: the server did the work
    await caught('malformed', 'AUTH_BAD_RESPONSE', auth.refresh(t.refresh_token!));
    emu.hangNext(1, 'token');
    const hung = caught('timeout', 'AUTH_TIMEOUT', new ClovaAuthClient({ authUrl: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, deviceId: DEVICE, caPem: pki.ca, clock, log, retry: { maxAttempts: 1 } }).revoke(t.access_token));
    await emu.waitForRequest('token');
    clock.advance(15_000);
    await hung;
    await auth.revoke(t.access_token);

    // client credentials: success, retry, invalid_client
    const cc = emu.ccClients[0]!;
    const ccClient = new ClientCredentialsClient({ tokenUrl: emu.ccTokenUrl, clientId: cc.clientId, clientSecret: cc.clientSecret, scope: 'read', caPem: pki.ca, clock, log, retry: { random: () => 0.5 }, onRetry: (i) => setImmediate(() => clock.advance(i.delayMs)) });
    emu.failNext(1, { status: 500, endpoint: 'connect/token' });
    await ccClient.getToken();
    const badCc = new ClientCredentialsClient({ tokenUrl: emu.ccTokenUrl, clientId: cc.clientId, clientSecret: 'wrong-cc-secret-54-xyz', caPem: pki.ca, clock, log });
    await caught('cc invalid_client', 'AUTH_INVALID_CLIENT', badCc.getToken());

    await m.close();
  } finally {
    await emu.stop();
  }

  const text = lines.join('') + messages.join('\n');
  assert.ok(lines.some((l) => l.includes('"level":"debug"')), 'debug lines were captured');
  assert.ok(lines.some((l) => l.includes('auth: retrying')), 'the retry path ran');
  assert.ok(lines.some((l) => l.includes('could not save')), 'the failed-save path ran');
  assert.ok(lines.some((l) => l.includes('grant is dead')), 'the dead path ran');
  const secrets = [...emu.secrets, 'wrong-secret-54-abcdef', 'wrong-cc-secret-54-xyz', 'unknown-account-credential-54'];
  assert.ok(secrets.length > 20, 'the flows issued secrets');
  let leaked = 0;
  for (const s of secrets) if (text.includes(s) || text.includes(encodeURIComponent(s))) leaked++;
  assert.is(leaked, 0, `${leaked} secrets appear in the captured output (values not shown)`);
  assert.ok(text.includes('[redacted]'), 'redaction was exercised');
});

test.run();
