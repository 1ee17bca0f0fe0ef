// The README's provisioning walkthrough, run with the bundle as real processes against the
// auth and CIC emulators (real TLS, generated CA): a 0600 config file holding the client
// secret and deviceId "auto", `login --account-token-file -` fed through a pipe, the terms
// step (451 → terms page → --agreement-redirect), `status`, then `run` until ready and
// SIGTERM. While each process lives, its /proc/<pid>/cmdline — what `ps` shows every local
// user — is read and searched for every secret; so is everything it writes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthEmulator } from './emulator/auth-server';
import { startCicEmulator, type CicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { buildBundle, bundlePath, RuntimeProcess } from './support/runtime-process';
import { deriveDeviceId } from '../src/util/device-id';

const pki = testPki();
let auth: AuthEmulator;
let cic: CicEmulator;
let dir: string;
let configPath: string;
let deviceId: string;
const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The process's argv as /proc showed it while it ran ('' when it had already exited). */
  cmdline: string;
}

function cmdlineOf(pid: number | undefined): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/**
 * Runs one command; `input` is piped to its standard input. The argv is read right after
 * spawn, before the input is written: a login reading `-` cannot finish before that, and
 * neither can any command that waits for an emulator living in this (blocked) event loop.
 */
function cli(args: string[], input?: string): Promise<Result> {
  const child = spawn(process.execPath, [bundlePath, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const cmdline = cmdlineOf(child.pid);
  return collect(child, cmdline, input);
}

function collect(child: ChildProcessWithoutNullStreams, cmdline: string, input?: string): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => undefined); // a command that refuses early closes the pipe
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr, cmdline })));
}

/** Every secret the emulators know of (client secret, account tokens, codes, issued tokens). */
function secrets(): string[] {
  return [...auth.secrets];
}

function assertClean(what: string, text: string, allowed: string[] = []): void {
  for (const s of secrets()) {
    if (allowed.includes(s)) continue;
    assert.not.ok(text.includes(s), `${what} holds a secret`);
  }
}

function assertArgvClean(r: Result, alive: boolean): void {
  if (alive) assert.ok(r.cmdline.includes(bundlePath), `argv read while the process ran: ${JSON.stringify(r.cmdline)}`);
  assertClean('the command line (ps)', r.cmdline);
}

/** What the device's browser does on the terms page: GET it and read the redirect. */
function followTermsPage(uri: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(uri, { ca: pki.ca }, (res) => {
      res.resume();
      if (res.statusCode !== 302 || !res.headers.location) reject(new Error(`terms page answered ${res.statusCode}`));
      else resolve(res.headers.location);
    }).on('error', reject);
  });
}

function termsLine(r: Result): { terms: string; code: string } {
  assert.is(r.code, 4, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1);
  const j = JSON.parse(lines[0]!);
  assert.equal(Object.keys(j), ['terms', 'code']);
  return j;
}

test.before(async () => {
  await buildBundle();
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  dir = mkdtempSync(join(tmpdir(), 'cic-provision-'));
  // "auto" needs /etc/machine-id or a network interface; a host with neither runs the same
  // walkthrough with an explicit id (the derivation itself is covered by 76-device-id).
  let auto = true;
  try {
    deviceId = deriveDeviceId().id;
  } catch {
    auto = false;
    deviceId = 'provision-test-device';
    console.log('this host has no machine id and no MAC: the walkthrough uses an explicit deviceId');
  }
  configPath = join(dir, 'config.json');
  const config = {
    authUrl: auth.url,
    cicUrl: cic.url,
    clientId: auth.clientId,
    clientSecret: auth.clientSecret,
    deviceId: auto ? 'auto' : deviceId,
    userAgent: 'Maker/Speaker/1.0.0 (Linux;ci)',
    tokenFile: join(dir, 'state', 'token'),
    caFile: pki.caPath,
    logLevel: 'info',
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
});

test.after(async () => {
  await cic.stop();
  await auth.stop();
});

test('walkthrough: login from a pipe, the terms step, status, run — no secret in ps or output', async () => {
  assert.is(statSync(configPath).mode & 0o777, 0o600);
  const account = auth.addAccount({ termsAgreed: false });

  // 1. First login: the account has not agreed to the terms yet.
  const first = await cli(['login', '--config', configPath, '--account-token-file', '-'], `${account}\n`);
  assertArgvClean(first, true);
  const terms = termsLine(first);
  // The terms line carries the 451 authorization code by contract (for --code-file); nothing else.
  assertClean('stdout', first.stdout, [terms.code]);
  assertClean('stderr', first.stderr);

  // 2. The user agrees on the terms page; it redirects to clova://agreement-success.
  const location = await followTermsPage(terms.terms);
  assert.is(location, 'clova://agreement-success');

  // 3. Login again with the same account token and the redirect.
  const second = await cli(['login', '--config', configPath, '--account-token-file', '-', '--agreement-redirect', location], `${account}\n`);
  assertArgvClean(second, true);
  assert.is(second.code, 0, second.stderr);
  assert.is(second.stdout, '');
  assertClean('stderr', second.stderr);
  assert.not.ok(second.stderr.includes('SECRET_ON_COMMAND_LINE'));
  const authorize = auth.requests.filter((r) => r.endpoint === 'authorize');
  assert.ok(authorize.length >= 2 && authorize.every((r) => r.params.device_id === deviceId), 'every request sent the derived id');

  // 4. status shows the (derived) device id.
  const st = await cli(['status', '--config', configPath]);
  assertArgvClean(st, false);
  assert.is(st.code, 0, st.stderr);
  const s = JSON.parse(st.stdout);
  assert.equal([s.loggedIn, s.deviceId], [true, deviceId]);
  assertClean('stdout', st.stdout);
  assertClean('stderr', st.stderr);

  // 5. run until ready, then SIGTERM.
  const rt = new RuntimeProcess(env, ['run', '--config', configPath]);
  const runArgv = cmdlineOf(rt.child.pid);
  try {
    await rt.state('ready');
    assert.ok(runArgv.includes(bundlePath));
    assertClean('the command line of run (ps)', runArgv);
    assertClean('the command line of run once ready (ps)', cmdlineOf(rt.child.pid));
  } finally {
    rt.child.kill('SIGTERM');
  }
  assert.is(await rt.exit, 0);
  assertClean('run stdout', JSON.stringify(rt.out.map((l) => l.json)));
  assertClean('run stderr', JSON.stringify(rt.err.map((l) => l.json)));
});

test('walkthrough variant: the 451 code handed over in a 0600 file (--code-file PATH)', async () => {
  const account = auth.addAccount({ termsAgreed: false });
  const first = await cli(['login', '--config', configPath, '--account-token-file', '-'], account);
  assertArgvClean(first, true);
  const terms = termsLine(first);
  const location = await followTermsPage(terms.terms);
  const codeFile = join(dir, 'code');
  writeFileSync(codeFile, `${terms.code}\n`, { mode: 0o600 });
  const before = auth.count('authorize');
  const r = await cli(['login', '--config', configPath, '--code-file', codeFile, '--agreement-redirect', location]);
  assertArgvClean(r, true);
  assert.is(r.code, 0, r.stderr);
  assert.is(auth.count('authorize'), before, 'the code is exchanged directly, no second authorize');
  assertClean('stdout', r.stdout);
  assertClean('stderr', r.stderr);
  assert.is((await cli(['status', '--config', configPath])).code, 0);
});

test('agreement failure: exit 4, one JSON line on stdout, AUTH_TERMS_DECLINED on stderr, no request sent', async () => {
  const account = auth.addAccount({ termsAgreed: false });
  // The emulator's terms page refuses an unknown code with agreement-failure?error=invalid_code.
  const location = await followTermsPage(`${auth.url}terms?code=unknown`);
  assert.is(location, 'clova://agreement-failure?error=invalid_code');
  const before = auth.requests.length;
  const r = await cli(['login', '--config', configPath, '--account-token-file', '-', '--agreement-redirect', location], `${account}\n`);
  assert.is(r.code, 4, r.stderr);
  assert.equal(JSON.parse(r.stdout), { agreement: 'failure', reason: 'invalid_code' });
  const err = r.stderr.trim().split('\n').map((l) => JSON.parse(l)).find((j) => j.code === 'AUTH_TERMS_DECLINED');
  assert.ok(err, r.stderr);
  assert.is(err.level, 'error');
  assert.is(err.reason, 'invalid_code');
  assert.is(auth.requests.length, before);
  assertClean('stderr', r.stderr);
});

test('a value that is not an agreement redirect is a usage error (exit 2), not quoted', async () => {
  const account = auth.addAccount();
  const r = await cli(['login', '--config', configPath, '--account-token-file', '-', '--agreement-redirect', `https://terms.example/?code=${account}`], `${account}\n`);
  assert.is(r.code, 2);
  assert.match(r.stderr, /"code":"USAGE"/);
  assert.match(r.stderr, /--agreement-redirect: not an agreement redirect \(the scheme is https:\)/);
  assertClean('stderr', r.stderr);
});

test('login sources: exactly one; an empty pipe and a spaced token are usage errors that name no secret', async () => {
  const account = auth.addAccount();
  let r = await cli(['login', '--config', configPath]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /exactly one of --account-token-file PATH\|-, --code-file PATH\|-, --account-token TOKEN or --code CODE \(got none\)/);
  r = await cli(['login', '--config', configPath, '--account-token-file', '-', '--code-file', join(dir, 'code')], account);
  assert.is(r.code, 2);
  assert.match(r.stderr, /\(got --account-token-file and --code-file\)/);
  r = await cli(['login', '--config', configPath, '--account-token-file', '-'], '');
  assert.is(r.code, 2);
  assert.match(r.stderr, /--account-token-file -: standard input is empty/);
  r = await cli(['login', '--config', configPath, '--account-token-file', '-'], `Bearer ${account}\n`);
  assert.is(r.code, 2);
  assert.match(r.stderr, /standard input holds whitespace/);
  assertClean('stderr', r.stderr);
});

test('the argument forms still work, with a SECRET_ON_COMMAND_LINE warning naming the flag, not the value', async () => {
  const account = auth.addAccount();
  const r = await cli(['login', '--config', configPath, '--account-token', account]);
  assert.is(r.code, 0, r.stderr);
  // What the warning is about, and proof that the walkthrough's argv check sees real argv.
  assert.ok(r.cmdline.includes(account), 'an argument shows in ps');
  const warnings = r.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((j) => j.code === 'SECRET_ON_COMMAND_LINE');
  assert.is(warnings.length, 1);
  assert.equal([warnings[0].level, warnings[0].flag], ['warn', '--account-token']);
  assert.match(warnings[0].msg, /other processes can read it; use --account-token-file/);
  assertClean('stderr', r.stderr);

  // --client-secret, on any command (here next to a config file without one).
  const cfg = JSON.parse(readFileSync(configPath, 'utf8'));
  delete cfg.clientSecret;
  const bare = join(dir, 'no-secret.json');
  writeFileSync(bare, JSON.stringify(cfg), { mode: 0o600 });
  const s = await cli(['refresh', '--config', bare, '--client-secret', auth.clientSecret]);
  assert.is(s.code, 0, s.stderr);
  const w = s.stderr.trim().split('\n').map((l) => JSON.parse(l)).find((j) => j.code === 'SECRET_ON_COMMAND_LINE');
  assert.is(w?.flag, '--client-secret');
  assert.match(w.msg, /config file key clientSecret \(file mode 0600\), clientSecretFile, or CIC_CLIENT_SECRET/);
  assertClean('stderr', s.stderr);
});

test('clientSecretFile: the secret in its own 0600 file, the config file without it', async () => {
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, `${auth.clientSecret}\n`, { mode: 0o600 });
  const cfg = JSON.parse(readFileSync(configPath, 'utf8'));
  delete cfg.clientSecret;
  cfg.clientSecretFile = secretFile;
  const split = join(dir, 'split.json');
  writeFileSync(split, JSON.stringify(cfg), { mode: 0o644 });
  const r = await cli(['refresh', '--config', split]);
  assert.is(r.code, 0, r.stderr);
  assertClean('stderr', r.stderr);
});

test('login --help documents the new forms', async () => {
  const r = await cli(['login', '--help']);
  assert.is(r.code, 0);
  assert.ok(r.stdout.startsWith('usage: cic-runtime login (--account-token-file PATH|- | --code-file PATH|- | --account-token TOKEN | --code CODE) [--agreement-redirect URL]'));
  for (const words of ['(-) standard input', 'SECRET_ON_COMMAND_LINE', 'clova://agreement-success', '{"agreement":"failure","reason":R}', 'clientSecretFile', '"auto"']) {
    assert.ok(r.stdout.includes(words), words);
  }
});

test.run();
