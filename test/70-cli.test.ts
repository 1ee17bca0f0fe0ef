// The command line, run from the bundle as a device would run it, against the auth emulator
// (node:https on 127.0.0.1, generated CA). Checks outputs, files and exit codes (a contract).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthEmulator } from './emulator/auth-server';
import { testPki } from './support/certs';

const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..');
const bundle = join(root, 'dist', 'cic-runtime.js');
const pki = testPki();
let emu: AuthEmulator;
let dir: string;
const DEVICE = 'device-7f3c';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, CIC_AUTH_URL: emu.url, CIC_CLIENT_ID: emu.clientId, CIC_CLIENT_SECRET: emu.clientSecret, CIC_DEVICE_ID: DEVICE, CIC_TOKEN_FILE: join(dir, 'state', 'token'), CIC_CA_FILE: pki.caPath, CIC_LOG_LEVEL: 'debug', ...env };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function noSecrets(r: Result, extra: string[] = []): void {
  for (const s of [...emu.secrets, ...extra]) {
    assert.not.ok(r.stderr.includes(s), 'a secret appeared on stderr');
  }
}

test.before(async () => {
  const { bundle: build } = await import(join(root, 'scripts', 'build.mjs'));
  await build();
  dir = mkdtempSync(join(tmpdir(), 'cic-cli-'));
  emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await emu.start();
});

test.after(async () => {
  await emu.stop();
});

test('status before login: one JSON line, exit 3', async () => {
  const r = await cli(['status']);
  assert.is(r.code, 3);
  assert.equal(JSON.parse(r.stdout), { loggedIn: false, expiresAt: null, deviceId: DEVICE, tokenFile: join(dir, 'state', 'token') });
});

test('login --account-token stores the tokens (0600 in a 0700 directory); status reports them', async () => {
  const account = emu.addAccount();
  const r = await cli(['login', '--account-token', account]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '');
  noSecrets(r, [account]);
  const st = statSync(join(dir, 'state', 'token'));
  assert.is(st.mode & 0o777, 0o600);
  assert.is(statSync(join(dir, 'state')).mode & 0o777, 0o700);
  const s = await cli(['status']);
  assert.is(s.code, 0);
  const j = JSON.parse(s.stdout);
  assert.equal(Object.keys(j), ['loggedIn', 'expiresAt', 'deviceId', 'tokenFile']);
  assert.is(j.loggedIn, true);
  assert.ok(Date.parse(j.expiresAt) > Date.now());
  assert.is(j.deviceId, DEVICE);
});

test('refresh rotates the refresh token through the emulator', async () => {
  const before = emu.count('token:refresh_token');
  const r = await cli(['refresh']);
  assert.is(r.code, 0, r.stderr);
  assert.is(emu.count('token:refresh_token'), before + 1);
  assert.ok(JSON.parse(r.stdout).refreshed);
  noSecrets(r);
});

test('451: the terms line on stdout and exit 4; after agreement, login --code', async () => {
  const account = emu.addAccount({ termsAgreed: false });
  const r = await cli(['login', '--account-token', account]);
  assert.is(r.code, 4, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1);
  const j = JSON.parse(lines[0]!);
  assert.equal(Object.keys(j), ['terms', 'code']);
  assert.ok(j.terms.startsWith('https://'));
  noSecrets(r, [account]);
  emu.agreeTerms(account);
  const ok = await cli(['login', '--code', j.code]);
  assert.is(ok.code, 0, ok.stderr);
  assert.is((await cli(['status'])).code, 0);
});

test('oauth-token prints the token alone, and a second call reuses the cache', async () => {
  const before = emu.count('connect/token');
  const env = { CIC_CLIENT_ID: emu.ccClients[0]!.clientId, CIC_CLIENT_SECRET: emu.ccClients[0]!.clientSecret };
  const a = await cli(['oauth-token', '--token-url', emu.ccTokenUrl, '--scope', 'read'], env);
  assert.is(a.code, 0, a.stderr);
  assert.ok(/^[^\s]+\n$/.test(a.stdout), 'one token, one line');
  assert.ok(emu.isValidClientToken(a.stdout.trim()));
  const b = await cli(['oauth-token', '--token-url', emu.ccTokenUrl, '--scope', 'read'], env);
  assert.is(b.stdout, a.stdout);
  assert.is(emu.count('connect/token'), before + 1);
  noSecrets(a, [env.CIC_CLIENT_SECRET]);
});

test('logout revokes (grant_type=delete) and removes the token', async () => {
  const before = emu.count('token:delete');
  const r = await cli(['logout']);
  assert.is(r.code, 0, r.stderr);
  assert.is(emu.count('token:delete'), before + 1);
  assert.is((await cli(['status'])).code, 3);
});

test('a dead grant: refresh exits 3', async () => {
  const account = emu.addAccount();
  assert.is((await cli(['login', '--account-token', account])).code, 0);
  emu.revokeAll();
  const r = await cli(['refresh']);
  assert.is(r.code, 3, r.stderr);
  assert.ok(r.stderr.includes('AUTH_INVALID_GRANT'));
});

test('usage and configuration errors exit 2 and name the problem', async () => {
  let r = await cli(['login', '--bogus']);
  assert.is(r.code, 2);
  assert.ok(r.stderr.includes('--bogus'));
  r = await cli(['login', '--account-token']);
  assert.is(r.code, 2);
  r = await cli(['nonsense']);
  assert.is(r.code, 2);
  r = await cli(['status', '--ping-interval-ms', 'soon']);
  assert.is(r.code, 2);
  assert.ok(r.stderr.includes('pingIntervalMs (from --ping-interval-ms)'));
  r = await cli(['login', '--account-token', 'x'], { CIC_AUTH_URL: '' , CIC_CLIENT_SECRET: 'a-very-secret-value-123' , CIC_USER_AGENT: 'broken' });
  assert.is(r.code, 2);
  assert.ok(r.stderr.includes('authUrl: required'));
  assert.ok(r.stderr.includes('userAgent (from CIC_USER_AGENT)'));
  assert.not.ok(r.stderr.includes('a-very-secret-value-123'));
});

test('--help works on every command', async () => {
  for (const c of ['login', 'status', 'refresh', 'logout', 'oauth-token', 'run']) {
    const r = await cli([c, '--help']);
    assert.is(r.code, 0);
    assert.ok(r.stdout.startsWith(`usage: cic-runtime ${c}`));
  }
  const top = await cli(['--help']);
  assert.is(top.code, 0);
  assert.ok(top.stdout.includes('CIC_PING_INTERVAL_MS'));
});

test('--version names the runtime, nghttp2 and the target', async () => {
  const r = await cli(['--version']);
  assert.is(r.code, 0);
  assert.match(r.stdout, /^cic-runtime \d+\.\d+\.\d+ nghttp2 1\.64\.0 linux-(x64|arm64|armv7)\n$/);
});

test.run();
