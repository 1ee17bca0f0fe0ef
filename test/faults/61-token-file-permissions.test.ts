// The token file and its directory are never group- or world-accessible: created 0700/0600
// even under a permissive umask (0), a temp file is 0600 from the moment it exists, a refresh
// that rewrites the file keeps it 0600, a file made 0644 is tightened by the next save, and
// an existing directory open to group/other is refused with STORE_PERMISSIONS (never
// chmod'ed: it may be a shared directory). Also through the real command line under umask 0.
//
// Hazard: process.umask(0) is process-wide; every test restores it in a finally block.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClovaAuthClient } from '../../src/auth/clova-auth';
import { TokenManager } from '../../src/auth/token-manager';
import { TokenStore } from '../../src/auth/token-store';
import type { StoredTokens } from '../../src/auth/types';
import { isCicError, type CicError } from '../../src/errors';
import { realFs, type FsLayer } from '../../src/util/atomic-file';
import { AuthEmulator } from '../emulator/auth-server';
import { testPki } from '../support/certs';

const pki = testPki();
const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..', '..');
const DEVICE = 'device-faults-61';
const mode = async (p: string) => (await stat(p)).mode & 0o777;
const tokens = (n: number): StoredTokens => ({
  accessToken: `perm-access-${n}-aaaaaaaaaaaa`,
  refreshToken: `perm-refresh-${n}-bbbbbbbbbbbb`,
  expiresAt: Date.now() + 3_600_000,
  tokenType: 'Bearer',
  obtainedAt: Date.now(),
});

let base: string;
let auth: AuthEmulator;

test.before(async () => {
  base = mkdtempSync(join(tmpdir(), 'cic-faults-61-'));
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
});

test.after(async () => {
  await auth.stop();
  rmSync(base, { recursive: true, force: true });
});

async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

/** realFs, recording the mode of every file the moment it is created and every directory made. */
function spyFs(): { fs: FsLayer; created: Array<{ path: string; mode: number }>; dirs: string[] } {
  const created: Array<{ path: string; mode: number }> = [];
  const dirs: string[] = [];
  const fs: FsLayer = {
    ...realFs,
    open: async (path, flags, m) => {
      const h = await realFs.open(path, flags, m);
      if (flags.includes('w')) created.push({ path, mode: (await h.stat()).mode & 0o777 });
      return h;
    },
    mkdir: async (path, options) => {
      const first = await realFs.mkdir(path, options);
      dirs.push(path);
      return first;
    },
  };
  return { fs, created, dirs };
}

function manager(path: string): { m: TokenManager; store: TokenStore; warnings: CicError[] } {
  const store = new TokenStore({ path });
  const clova = new ClovaAuthClient({ authUrl: auth.url, clientId: auth.clientId, clientSecret: auth.clientSecret, deviceId: DEVICE, caPem: pki.ca, retry: { maxAttempts: 1 } });
  const m = new TokenManager({ auth: clova, store, deviceId: DEVICE, autoRefresh: false, retry: { baseMs: 60_000, maxMs: 60_000 } });
  const warnings: CicError[] = [];
  m.on('warning', (w) => warnings.push(w));
  return { m, store, warnings };
}

test('umask 0: missing directories are created 0700, the file 0600, the temp file 0600 from its first moment', async () => {
  await withUmask(0, async () => {
    const path = join(base, 'u0', 'a', 'b', 'token');
    const spy = spyFs();
    const store = new TokenStore({ path, fs: spy.fs });
    assert.equal(await store.save(tokens(1)), { written: true });
    assert.is(await mode(join(base, 'u0')), 0o700);
    assert.is(await mode(join(base, 'u0', 'a')), 0o700);
    assert.is(await mode(join(base, 'u0', 'a', 'b')), 0o700);
    assert.is(await mode(path), 0o600);
    const temps = spy.created.filter((c) => c.path.includes('.tmp-'));
    assert.is(temps.length, 1, 'the write went through one temp file');
    assert.is(temps[0]!.mode, 0o600, 'the temp file was private when it was created');
    assert.equal(readdirSync(join(base, 'u0', 'a', 'b')), ['token'], 'no temp file left');
  });
});

test('umask 0: login and every refresh through the TokenManager leave the file 0600 in a 0700 directory', async () => {
  await withUmask(0, async () => {
    const dir = join(base, 'mgr');
    const path = join(dir, 'token');
    const { m, store, warnings } = manager(path);
    try {
      await m.login(auth.addAccount());
      assert.is(await mode(dir), 0o700);
      assert.is(await mode(path), 0o600);
      for (let i = 0; i < 3; i++) {
        const before = await stat(path);
        await m.forceRefresh();
        const after = await stat(path);
        assert.is.not(after.ino, before.ino, `refresh ${i + 1} replaced the file`);
        assert.is(after.mode & 0o777, 0o600, `refresh ${i + 1}: 0600`);
      }
      const loaded = await store.load();
      assert.is(loaded.state, 'ok');
      assert.is(loaded.state === 'ok' && loaded.tokens.accessToken, await m.getAccessToken(), 'the file holds the newest tokens');
      assert.equal(readdirSync(dir), ['token']);
      assert.equal(warnings.map((w) => w.code), []);
    } finally {
      await m.close();
    }
  });
});

test('a token file made 0644 (or 0666) loads with a warning and the next refresh tightens it to 0600', async () => {
  await withUmask(0, async () => {
    const dir = join(base, 'lax-file');
    const path = join(dir, 'token');
    const { m, store } = manager(path);
    try {
      await m.login(auth.addAccount());
      for (const lax of [0o644, 0o666]) {
        await chmod(path, lax);
        const loaded = await store.load();
        assert.is(loaded.state, 'ok');
        assert.match(loaded.state === 'ok' ? (loaded.warning ?? '') : '', /accessible to group\/other/);
        await m.forceRefresh();
        assert.is(await mode(path), 0o600, `0${lax.toString(8)} → 0600 after the refresh`);
      }
      // Unchanged tokens too: the save that would be skipped for flash wear still rewrites a lax file.
      const cur = await store.load();
      assert.ok(cur.state === 'ok');
      await chmod(path, 0o640);
      assert.equal(await store.save(cur.state === 'ok' ? cur.tokens : tokens(0)), { written: true });
      assert.is(await mode(path), 0o600);
      assert.equal(await store.save(cur.state === 'ok' ? cur.tokens : tokens(0)), { written: false }, 'once private, unchanged tokens cost no write');
    } finally {
      await m.close();
    }
  });
});

test('an existing directory open to group/other is refused with STORE_PERMISSIONS and left as it is', async () => {
  await withUmask(0, async () => {
    for (const lax of [0o755, 0o775, 0o777, 0o710]) {
      const dir = join(base, `lax-dir-${lax.toString(8)}`);
      await mkdir(dir, { mode: lax });
      assert.is(await mode(dir), lax);
      const store = new TokenStore({ path: join(dir, 'token') });
      let err: unknown;
      await store.save(tokens(2)).catch((e) => (err = e));
      assert.ok(isCicError(err, 'STORE_PERMISSIONS'), `0${lax.toString(8)}: STORE_PERMISSIONS`);
      assert.match((err as CicError).message, dir);
      assert.not.match((err as CicError).message, 'perm-');
      assert.is(await mode(dir), lax, 'not chmod-ed');
      assert.equal(readdirSync(dir), [], 'nothing written into it');
    }
  });
});

test('login into a lax directory: the tokens stay usable in memory, with a coded STORE_PERMISSIONS warning', async () => {
  await withUmask(0, async () => {
    const dir = join(base, 'lax-login');
    await mkdir(dir, { mode: 0o755 });
    const { m, warnings } = manager(join(dir, 'token'));
    try {
      const r = await m.login(auth.addAccount());
      assert.is(r.persisted, false);
      assert.equal(warnings.map((w) => w.code), ['STORE_PERMISSIONS']);
      assert.ok(auth.isValidAccessToken(await m.getAccessToken()));
      assert.equal(readdirSync(dir), []);
      // Fixing the directory lets the next save through (0600 file).
      await chmod(dir, 0o700);
      await m.forceRefresh();
      assert.is(await mode(join(dir, 'token')), 0o600);
    } finally {
      await m.close();
    }
  });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'dist', 'cic-runtime.js'), ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('the command line under umask 0: login, refresh and the cached oauth-token file are all private', async () => {
  if (!existsSync(join(root, 'dist', 'cic-runtime.js'))) {
    const { bundle } = await import(join(root, 'scripts', 'build.mjs'));
    await bundle();
  }
  const dir = join(base, 'cli', 'state');
  const env = {
    CIC_AUTH_URL: auth.url,
    CIC_CLIENT_ID: auth.clientId,
    CIC_CLIENT_SECRET: auth.clientSecret,
    CIC_DEVICE_ID: DEVICE,
    CIC_TOKEN_FILE: join(dir, 'token'),
    CIC_CA_FILE: pki.caPath,
    CIC_LOG_LEVEL: 'debug',
  };
  // The child inherits the umask of the process that spawns it.
  await withUmask(0, async () => {
    const login = await cli(['login', '--account-token', auth.addAccount()], env);
    assert.is(login.code, 0, login.stderr);
    const refresh = await cli(['refresh'], env);
    assert.is(refresh.code, 0, refresh.stderr);
    const cc = auth.ccClients[0]!;
    const oauth = await cli(['oauth-token', '--token-url', auth.ccTokenUrl, '--scope', 'read'], { ...env, CIC_CLIENT_ID: cc.clientId, CIC_CLIENT_SECRET: cc.clientSecret });
    assert.is(oauth.code, 0, oauth.stderr);
    assert.ok(auth.isValidClientToken(oauth.stdout.trim()), 'a usable client-credentials token was printed');
    for (const r of [login, refresh, oauth]) {
      for (const s of auth.secrets) assert.not.ok(r.stderr.includes(s), 'no secret on stderr at debug level');
    }
  });
  assert.is(await mode(join(base, 'cli')), 0o700);
  assert.is(await mode(dir), 0o700);
  const names = readdirSync(dir).sort();
  assert.is(names.length, 2, `the token file and one oauth cache file: ${names.join(', ')}`);
  assert.ok(names.includes('token') && names.some((n) => /^token\.oauth-[0-9a-f]{16}\.json$/.test(n)));
  for (const n of names) assert.is(await mode(join(dir, n)), 0o600, `${n} is 0600`);
});

test.run();
