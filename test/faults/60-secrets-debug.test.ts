// Secrets through the failure paths of the whole stack at debug level: the real TokenManager
// (real TokenStore file, ClovaAuthClient against the auth emulator) feeding a real CicClient
// (TLS HTTP/2 to the CIC emulator, which checks tokens with the auth emulator). Every log
// line, every error's message, stack, details, JSON form and cause chain, every state change
// and every emitted warning is captured, then searched for every secret the servers issued
// (tokens, codes, account credentials, client secrets) and for the secrets the test made up
// — verbatim, URL-encoded, JSON-escaped, base64/base64url at every byte alignment, and
// 12-character fragments of their random part.
//
// The captured text is also written to stderr at the end, so the runner's whole-suite check
// (which searches every file's output for everything in $CIC_TEST_SECRETS_LOG) covers it too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientCredentialsClient } from '../../src/auth/client-credentials';
import { ClovaAuthClient } from '../../src/auth/clova-auth';
import { TokenManager } from '../../src/auth/token-manager';
import { TokenStore } from '../../src/auth/token-store';
import { CicClient } from '../../src/cic/client';
import { readDirectives } from '../../src/cic/directive-reader';
import type { TokenSource } from '../../src/cic/types';
import { isCicError, type CicError } from '../../src/errors';
import { createLogger } from '../../src/log';
import { AuthEmulator } from '../emulator/auth-server';
import { startCicEmulator, type CicEmulator } from '../emulator/cic-server';
import { testPki } from '../support/certs';

const pki = testPki();
const DEVICE = 'device-faults-60';
const UA = 'Faults/Secrets/1.0.0 (Linux 6.1;faults-hw)';
// Made-up secrets the client is handed (wrong credentials): they must not leak either.
const WRONG_CLIENT_SECRET = 'wrong-client-secret-60-Qm9vb2JhYXJiYXo';
const WRONG_CC_SECRET = 'wrong-cc-secret-60-ZnVubnlidXNpbmVzcw';
const UNKNOWN_ACCOUNT = 'unknown-account-60-c2VjcmV0c2VjcmV0';
const MADE_UP = [WRONG_CLIENT_SECRET, WRONG_CC_SECRET, UNKNOWN_ACCOUNT];

// ---- capture ------------------------------------------------------------------------------

const lines: string[] = [];
const texts: string[] = [];
const log = createLogger({ level: 'debug', write: (l) => lines.push(l) });
const codesSeen = new Set<string>();

/** JSON.stringify, or a note when the value is circular (a TLS error's certificate chain). */
function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? '';
  } catch (e) {
    return `[not serializable: ${(e as Error).message.split('\n')[0]}]`;
  }
}

/** Everything an error can carry into a log, a crash report or a caller's message. */
function captureError(e: unknown, depth = 0): void {
  if (depth > 5 || e === undefined || e === null) return;
  if (typeof e !== 'object') {
    texts.push(String(e));
    return;
  }
  const err = e as Error & { code?: unknown; details?: unknown; toJSON?: () => unknown };
  if (typeof err.code === 'string') codesSeen.add(err.code);
  // Every serialized form: message, stack, String(), JSON.stringify (CicError.toJSON carries
  // the details), util.inspect (console.log / crash output), then the cause chain. The raw
  // `details` object is program data, not text: the 451 details carry the code on purpose.
  texts.push(String(err.message), String(err.stack), String(err), safeJson(err), inspect(err, { depth: 6 }));
  captureError(err.cause, depth + 1);
  if (depth === 0) log.error('error seen by the application', { err: e });
}

/** Awaits a call that must fail with `code`; captures the error. */
async function fails(what: string, code: string, p: Promise<unknown>): Promise<CicError> {
  try {
    await p;
  } catch (e) {
    captureError(e);
    assert.ok(isCicError(e), `${what}: a coded CicError (got ${String(e)})`);
    assert.is((e as CicError).code, code, `${what}: code`);
    return e as CicError;
  }
  throw new Error(`${what}: expected ${code}, but the call succeeded`);
}

process.on('warning', (w) => captureError(w));

// ---- secret forms -------------------------------------------------------------------------

/**
 * The base64 characters that depend only on `s` when it sits at byte offset 0, 1 or 2 of a
 * longer encoded value (e.g. `Basic base64(id:secret)`): the characters overlapping a
 * neighbouring byte are left out.
 */
function base64Cores(s: string): string[] {
  const out: string[] = [];
  const n = Buffer.byteLength(s);
  for (const p of [0, 1, 2]) {
    const buf = Buffer.concat([Buffer.alloc(p, 0x3a), Buffer.from(s)]);
    const from = Math.ceil((8 * p) / 6);
    const to = Math.floor((8 * (p + n)) / 6);
    for (const enc of ['base64', 'base64url'] as const) out.push(buf.toString(enc).replace(/=+$/, '').slice(from, to));
  }
  return out;
}

/** The random tail of an emulator secret (`prefix-<24 base64url chars>`), or the value itself. */
function randomPart(s: string): string {
  const m = /^[a-z]+(?:-[a-z]+)*-([A-Za-z0-9_-]{20,})$/.exec(s);
  return m ? m[1]! : s;
}

function secretForms(s: string): string[] {
  const r = randomPart(s);
  return [
    s,
    encodeURIComponent(s),
    encodeURIComponent(encodeURIComponent(s)),
    JSON.stringify(s).slice(1, -1),
    ...base64Cores(s),
    s.slice(0, 12),
    r.slice(0, 12),
    r.slice(-12),
  ].filter((f) => f.length >= 10);
}

/** Which secrets (by index) appear in `text` in any form. */
function leaks(text: string, secrets: string[]): Array<{ index: number; form: number }> {
  const out: Array<{ index: number; form: number }> = [];
  secrets.forEach((s, index) => {
    const forms = secretForms(s);
    const form = forms.findIndex((f) => text.includes(f));
    if (form >= 0) out.push({ index, form });
  });
  return out;
}

// ---- the stack ------------------------------------------------------------------------------

let dir: string;
let auth: AuthEmulator;
let cic: CicEmulator;
let manager: TokenManager;
let client: CicClient;
let clovaAuth: ClovaAuthClient;
let store: TokenStore;
const others: AuthEmulator[] = [];

function waitState(c: CicClient, pred: (to: string, code?: string) => boolean, what: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      c.off('state', on);
      reject(new Error(`no state change: ${what}`));
    }, ms);
    const on = (s: { to: string; code?: string }) => {
      if (!pred(s.to, s.code)) return;
      clearTimeout(t);
      c.off('state', on);
      resolve();
    };
    c.on('state', on);
  });
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cic-faults-60-'));
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ validateToken: (t) => auth.isValidAccessToken(t) });
  clovaAuth = new ClovaAuthClient({
    authUrl: auth.url,
    clientId: auth.clientId,
    clientSecret: auth.clientSecret,
    deviceId: DEVICE,
    caPem: pki.ca,
    log,
    retry: { baseMs: 20, maxMs: 50 },
  });
  store = new TokenStore({ path: join(dir, 'state', 'token'), logger: log });
  manager = new TokenManager({ auth: clovaAuth, store, log, deviceId: DEVICE, retry: { baseMs: 50, maxMs: 200, minMs: 20 } });
  manager.on('warning', (w) => captureError(w));
  manager.on('refresh-failed', (e) => captureError(e));
  manager.on('dead', (e) => captureError(e));
  client = new CicClient({
    url: cic.url,
    userAgent: UA,
    tokens: manager,
    readDirectives,
    ca: pki.ca,
    caMode: 'only',
    log,
    pingIntervalMs: 1_000,
    backoff: { baseMs: 20, maxMs: 100, minMs: 10 },
  });
  client.on('state', (s) => texts.push(JSON.stringify(s)));
  client.on('problem', (e) => captureError(e));
});

test.after(async () => {
  await client?.stop().catch(() => undefined);
  await manager?.close().catch(() => undefined);
  await cic?.stop();
  await auth?.stop();
  for (const a of others) await a.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('login and a first event at debug level', async () => {
  await manager.login(auth.addAccount());
  client.start();
  await client.ready();
  const r = await client.sendEvent({ namespace: 'System', name: 'SynchronizeState', payload: {} });
  assert.is(r.status, 204);
  assert.ok(lines.some((l) => l.includes('"level":"debug"')), 'debug lines are captured');
});

test('401 on an event: one refresh, the event is retried with the new token', async () => {
  const refreshed = new Promise((r) => manager.once('refreshed', r));
  auth.expireAccessTokens();
  const before = cic.counters.unauthorized;
  const r = await client.sendEvent({ namespace: 'System', name: 'SynchronizeState', payload: {} });
  await refreshed;
  assert.is(r.status, 204);
  assert.is(cic.counters.unauthorized, before + 1);
});

test('401 on the downchannel after a dropped connection: refresh, ready again', async () => {
  auth.expireAccessTokens();
  const before = cic.counters.unauthorized;
  const notReady = waitState(client, (to) => to !== 'ready', 'leave ready');
  cic.dropSocket();
  await notReady;
  await client.ready();
  assert.ok(cic.counters.unauthorized > before, 'the downchannel got a 401');
  assert.is(client.state, 'ready');
});

test('refresh failures: a retried 503, then retries exhausted (AUTH_SERVER), then a dropped auth connection', async () => {
  auth.failNext(1, { status: 503, endpoint: 'token:refresh_token' });
  await manager.forceRefresh();
  assert.ok(lines.some((l) => l.includes('auth: retrying')), 'the retry path ran');
  auth.failNext(3, { status: 503, endpoint: 'token:refresh_token' });
  await fails('503 ×3', 'AUTH_SERVER', manager.forceRefresh());
  auth.dropNext(3, 'token');
  await fails('dropped auth connection ×3', 'AUTH_NETWORK', manager.forceRefresh());
  // The manager recovers with the next success (its retry timer may have done it already).
  await manager.forceRefresh();
  assert.is(manager.state, 'valid');
});

test('an event in flight when the CIC connection drops fails CIC_EVENT_FAILED', async () => {
  cic.setResponder('Faults.Hold', () => 'hold');
  const arrived = cic.next('event', (e: { name: string }) => e.name === 'Hold');
  const p = client.sendEvent({ namespace: 'Faults', name: 'Hold', payload: {} });
  await arrived;
  cic.dropSocket();
  const e = await fails('dropped in flight', 'CIC_EVENT_FAILED', p);
  assert.is(e.details?.messageId, p.messageId);
  await client.ready();
});

test('servers that echo secrets back: CIC quotes the token, auth quotes the refresh token', async () => {
  const token = await manager.getAccessToken();
  cic.setResponder('Faults.Echo', () => ({ status: 400, description: `token ${token} is not acceptable here` }));
  await fails('CIC echo', 'CIC_BAD_REQUEST', client.sendEvent({ namespace: 'Faults', name: 'Echo', payload: {} }));
  const loaded = await store.load();
  assert.is(loaded.state, 'ok');
  const rt = loaded.state === 'ok' ? loaded.tokens.refreshToken : '';
  auth.failNext(1, { status: 400, body: { error: 'invalid_request', error_description: `refresh_token=${rt} and client_secret=${auth.clientSecret} rejected` }, endpoint: 'token:refresh_token' });
  await fails('auth echo', 'AUTH_INVALID_REQUEST', manager.forceRefresh());
});

test('authorization codes and wrong credentials: a used code, an unknown account, a wrong client secret', async () => {
  const code = auth.issueCode(auth.addAccount(), DEVICE);
  await clovaAuth.token(code);
  await fails('used code', 'AUTH_INVALID_GRANT', clovaAuth.token(code));
  await fails('unknown account', 'AUTH_UNAUTHORIZED', clovaAuth.authorize(UNKNOWN_ACCOUNT));
  const wrong = new ClovaAuthClient({ authUrl: auth.url, clientId: auth.clientId, clientSecret: WRONG_CLIENT_SECRET, deviceId: DEVICE, caPem: pki.ca, log });
  await fails('wrong client secret', 'AUTH_INVALID_CLIENT', wrong.token(auth.issueCode(auth.addAccount(), DEVICE)));
  const cc = new ClientCredentialsClient({ tokenUrl: auth.ccTokenUrl, clientId: auth.ccClients[0]!.clientId, clientSecret: WRONG_CC_SECRET, scope: 'read', caPem: pki.ca, log });
  await fails('wrong cc secret', 'AUTH_INVALID_CLIENT', cc.getToken());
});

test('TLS errors: CIC with an untrusted certificate, auth with a certificate for another host', async () => {
  const bad = await startCicEmulator({ cert: pki.selfSigned.cert, key: pki.selfSigned.key });
  const issued = auth.issueTokens(DEVICE);
  const tokens: TokenSource = { getAccessToken: async () => issued.access_token, onUnauthorized: async () => issued.access_token };
  const c2 = new CicClient({ url: bad.url, userAgent: UA, tokens, readDirectives, ca: pki.ca, caMode: 'only', log, backoff: { baseMs: 20, maxMs: 50 } });
  let tlsCode: string | undefined;
  c2.on('state', (s) => {
    texts.push(JSON.stringify(s));
    if (s.to === 'reconnecting' || s.to === 'closed') tlsCode ??= s.code;
  });
  try {
    const failed = waitState(c2, (to) => to === 'reconnecting' || to === 'closed', 'TLS failure');
    c2.start();
    await failed;
    // The event queued meanwhile is rejected with a code when the client stops.
    await fails('queued behind a TLS failure', 'CIC_STOPPED', Promise.all([c2.sendEvent({ namespace: 'System', name: 'SynchronizeState', payload: {} }), c2.stop()]));
  } finally {
    await c2.stop();
    await bad.stop();
  }
  assert.is(tlsCode, 'H2_TLS_CERT');
  if (c2.closeError) captureError(c2.closeError);

  const wrongHost = new AuthEmulator({ cert: pki.wrongHost.cert, key: pki.wrongHost.key, ca: pki.ca });
  others.push(wrongHost);
  await wrongHost.start();
  const a2 = new ClovaAuthClient({ authUrl: wrongHost.url, clientId: wrongHost.clientId, clientSecret: wrongHost.clientSecret, deviceId: DEVICE, caPem: pki.ca, log, retry: { maxAttempts: 1 } });
  const e = await fails('auth TLS host mismatch', 'AUTH_NETWORK', a2.authorize(wrongHost.addAccount()));
  assert.ok(JSON.stringify(e.toJSON()).includes('TLS') || String(e.message).toLowerCase().includes('cert') || e.cause !== undefined, 'the TLS failure is described');
});

test('invalid_grant: the grant dies, CIC says 401, the client closes with AUTH_INVALID_GRANT', async () => {
  assert.is(client.state, 'ready');
  const closed = waitState(client, (to) => to === 'closed', 'closed', 15_000);
  auth.revokeAll();
  auth.expireAccessTokens();
  cic.dropSocket();
  await closed;
  assert.is(client.closeError?.code, 'AUTH_INVALID_GRANT');
  captureError(client.closeError);
  assert.is(manager.state, 'dead');
  await fails('after the grant died', 'AUTH_INVALID_GRANT', manager.getAccessToken().then(() => manager.forceRefresh()));
});

test('the leak detector finds a secret in every form it searches for', () => {
  const s = [...auth.secrets][0]!;
  const samples = [
    `x ${s} y`,
    `q=${encodeURIComponent(s + '/+=')}`,
    `Basic ${Buffer.from(`id:${s}`).toString('base64')}`,
    `Basic ${Buffer.from(`i:${s}`).toString('base64url')}`,
    `b ${Buffer.from(`${s}`).toString('base64')}`,
    `truncated ${randomPart(s).slice(0, 12)}…`,
  ];
  for (const text of samples) assert.is(leaks(text, [s]).length, 1, `detects: ${text.slice(0, 8)}…`);
  assert.is(leaks(lines.slice(0, 3).join(''), ['a-value-never-issued-xyz0123456789']).length, 0, 'no false positive');
});

test('no issued or made-up secret appears in any captured log line, message, stack or detail', () => {
  const secrets = [...new Set([...auth.secrets, ...others.flatMap((a) => [...a.secrets]), ...MADE_UP])];
  assert.ok(secrets.length >= 25, `the flows issued secrets (${secrets.length})`);
  for (const code of ['AUTH_SERVER', 'AUTH_NETWORK', 'AUTH_INVALID_GRANT', 'AUTH_INVALID_CLIENT', 'AUTH_UNAUTHORIZED', 'CIC_EVENT_FAILED', 'CIC_BAD_REQUEST', 'H2_SOCKET_CLOSED']) {
    assert.ok(codesSeen.has(code) || lines.some((l) => l.includes(`"${code}"`)), `the ${code} path ran`);
  }
  assert.ok(lines.some((l) => l.includes('"level":"debug"')) && lines.some((l) => l.includes('"level":"warn"')) && lines.some((l) => l.includes('"level":"error"')), 'every level was captured');
  const text = lines.join('') + texts.join('\n');
  assert.ok(text.length > 20_000, `enough was captured to mean something (${text.length} chars)`);
  // Into the file's output: the runner's whole-suite check searches it as well.
  process.stderr.write(`---- captured (${lines.length} log lines, ${texts.length} texts) ----\n${text}\n---- end captured ----\n`);
  const found = leaks(text, secrets);
  assert.equal(found.map((f) => `secret #${f.index} (form ${f.form})`), [], 'secrets leaked (values not shown)');
});

test.run();
