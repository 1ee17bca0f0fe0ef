import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '../src/auth/token-store';
import { FLAG_SEALED, FORMAT_VERSION, encodeHeader, encodeTokens, frameSlot, scanFile } from '../src/auth/token-record';
import type { StoreLoadResult, StoredTokens } from '../src/auth/types';
import { realFs, type FileHandleLike, type FsLayer } from '../src/util/atomic-file';
import { isCicError, type CicError } from '../src/errors';

// ---- helpers ------------------------------------------------------------------------------

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cic-store-'));
  dirs.push(d);
  return d;
}
/** A token path in a directory that does not exist yet (the store creates it). */
async function freshPath(): Promise<{ dir: string; path: string }> {
  const dir = join(await freshDir(), 'state');
  return { dir, path: join(dir, 'tokens.bin') };
}

function tokens(n: number): StoredTokens {
  return {
    accessToken: `AT-${n}-${'x'.repeat(40)}`,
    refreshToken: `RT-${n}-SECRETREFRESH-${'y'.repeat(40)}`,
    expiresAt: 1_800_000_000_000 + n,
    tokenType: 'Bearer',
    obtainedAt: 1_700_000_000_000 + n,
    deviceId: 'device-1',
  };
}

function okTokens(r: StoreLoadResult): StoredTokens {
  if (r.state !== 'ok') throw new Error(`expected ok, got ${r.state}${'reason' in r ? `: ${r.reason}` : ''}`);
  return r.tokens;
}

async function rejects(p: Promise<unknown>, code: string): Promise<CicError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isCicError(e), `expected CicError, got ${String(e)}`);
    assert.is((e as CicError).code, code, (e as Error).message);
    return e as CicError;
  }
  throw new Error(`expected a rejection with ${code}, but the call resolved`);
}

/** No token of tokens(0..9) may appear in text shown to people. */
function assertNoSecret(text: string | undefined): void {
  for (let n = 0; n < 10; n++) {
    assert.not.ok(text?.includes(tokens(n).refreshToken), 'refresh token leaked into text');
    assert.not.ok(text?.includes(tokens(n).accessToken), 'access token leaked into text');
  }
}

async function identity(path: string): Promise<string> {
  const s = await stat(path);
  return `${s.ino}/${s.mtimeMs}/${s.ctimeMs}/${s.size}`;
}

/** A store file with generations 1 (tokens(1)) and 2 (tokens(2)); returns the raw bytes. */
async function twoGenerations(path: string): Promise<Buffer> {
  const store = new TokenStore({ path });
  await store.save(tokens(1));
  await store.save(tokens(2));
  return readFile(path);
}

type Op = 'open' | 'read' | 'write' | 'sync' | 'close' | 'rename' | 'unlink' | 'mkdir' | 'readdir' | 'stat';

/**
 * The real filesystem with faults injected below the store: `fail(op, path)` returns an errno
 * to raise. A failing write writes half of the data first (disk full mid-write). `calls`
 * records every operation, so tests can prove that nothing mutating happened.
 */
function faultyFs(fail: (op: Op, path: string, flags?: string) => string | undefined = () => undefined) {
  const calls: string[] = [];
  const check = (op: Op, path: string, flags?: string) => {
    calls.push(flags ? `${op}:${flags}:${path}` : `${op}:${path}`);
    const errno = fail(op, path, flags);
    if (errno) throw Object.assign(new Error(`${errno}: injected`), { code: errno });
  };
  const wrap = (h: FileHandleLike, path: string): FileHandleLike => ({
    read: async (b, o, l, p) => (check('read', path), h.read(b, o, l, p)),
    writeFile: async (data) => {
      calls.push(`write:${path}`);
      const errno = fail('write', path);
      if (errno) {
        await h.writeFile(data.subarray(0, data.length >> 1));
        throw Object.assign(new Error(`${errno}: injected`), { code: errno });
      }
      return h.writeFile(data);
    },
    stat: () => h.stat(),
    sync: async () => (check('sync', path), h.sync()),
    close: async () => (check('close', path), h.close()),
  });
  const fs: FsLayer = {
    open: async (p, flags, mode) => (check('open', p, flags), wrap(await realFs.open(p, flags, mode), p)),
    rename: async (a, b) => (check('rename', a), realFs.rename(a, b)),
    unlink: async (p) => (check('unlink', p), realFs.unlink(p)),
    mkdir: async (p, o) => (check('mkdir', p), realFs.mkdir(p, o)),
    readdir: async (p) => (check('readdir', p), realFs.readdir(p)),
    stat: async (p) => (check('stat', p), realFs.stat(p)),
  };
  const mutating = () => calls.filter((c) => /^(write|sync|rename|unlink|mkdir)|^open:(w|a)/.test(c));
  return { fs, calls, mutating };
}

const isTemp = (p: string) => p.includes('.tmp-');

test.after(async () => {
  for (const d of dirs) {
    await chmod(d, 0o700).catch(() => undefined);
    await rm(d, { recursive: true, force: true });
  }
});

// ---- round trip, modes, wear ----------------------------------------------------------------

test('round trip keeps the newest and the previous generation', async () => {
  const { path } = await freshPath();
  const store = new TokenStore({ path });
  assert.equal(await store.load(), { state: 'empty', path });
  assert.equal(await store.save(tokens(1)), { written: true });
  assert.equal(await store.load(), { state: 'ok', tokens: tokens(1), recovered: false });
  assert.equal(await store.save(tokens(2)), { written: true });
  assert.equal(await new TokenStore({ path }).load(), { state: 'ok', tokens: tokens(2), recovered: false });
  const scan = scanFile(await readFile(path));
  if (scan.kind !== 'slots') return assert.unreachable(scan.kind);
  assert.equal(scan.slots.map((s) => s.generation), [2, 1]);
  assert.is(scan.strayBytes, 0);
  const { deviceId: _omit, ...noDevice } = tokens(3);
  await store.save(noDevice);
  assert.equal(okTokens(await store.load()), noDevice);
});

test('file is 0600 and a created directory 0700', async () => {
  const base = await freshDir();
  const path = join(base, 'a', 'b', 'tokens.bin');
  await new TokenStore({ path }).save(tokens(1));
  assert.is((await stat(path)).mode & 0o777, 0o600);
  assert.is((await stat(join(base, 'a', 'b'))).mode & 0o777, 0o700);
  assert.is((await stat(join(base, 'a'))).mode & 0o777, 0o700);
});

test('an existing directory open to group/other is refused with STORE_PERMISSIONS, not chmodded', async () => {
  const dir = await freshDir();
  await chmod(dir, 0o755);
  const path = join(dir, 'tokens.bin');
  const e = await rejects(new TokenStore({ path }).save(tokens(1)), 'STORE_PERMISSIONS');
  assert.is(e.details?.path, dir);
  assert.is((await stat(dir)).mode & 0o777, 0o755);
  assert.equal(await readdir(dir), []);
  // A file already there still loads (refusing would strand the device), with a warning.
  await chmod(dir, 0o700);
  await new TokenStore({ path }).save(tokens(1));
  await chmod(dir, 0o755);
  const r = await new TokenStore({ path }).load();
  assert.ok(r.state === 'ok' && /directory mode 0755/.test(r.warning ?? ''), 'lax directory warning');
  await rejects(new TokenStore({ path }).save(tokens(2)), 'STORE_PERMISSIONS');
});

test('a token file made group-readable loads with a warning and is rewritten 0600 by the next save', async () => {
  const { path } = await freshPath();
  const store = new TokenStore({ path });
  await store.save(tokens(1));
  await chmod(path, 0o644);
  const r = await store.load();
  assert.is(r.state === 'ok' && r.warning?.includes('0644'), true);
  assert.equal(await store.save(tokens(1)), { written: true });
  assert.is((await stat(path)).mode & 0o777, 0o600);
  assert.equal(await store.save(tokens(1)), { written: false });
});

test('saving unchanged tokens writes nothing (same inode, mtime, ctime; no mutating call)', async () => {
  const { dir, path } = await freshPath();
  await new TokenStore({ path }).save(tokens(1));
  const before = await identity(path);
  const bytes = await readFile(path);
  const probe = faultyFs();
  const store = new TokenStore({ path, fs: probe.fs });
  // Same values, different key order and a fresh object.
  const t = tokens(1);
  const reordered: StoredTokens = { deviceId: t.deviceId, tokenType: t.tokenType, obtainedAt: t.obtainedAt, expiresAt: t.expiresAt, refreshToken: t.refreshToken, accessToken: t.accessToken };
  assert.equal(await store.save(reordered), { written: false });
  assert.equal(await store.save(tokens(1)), { written: false });
  assert.equal(probe.mutating(), []);
  assert.is(await identity(path), before);
  assert.equal(await readFile(path), bytes);
  assert.equal(await readdir(dir), ['tokens.bin']);
  assert.equal(await store.save(tokens(2)), { written: true });
  assert.is.not(await identity(path), before);
});

test('constructing and loading never write (missing, ok, recovered, corrupt, foreign, leftover temp)', async () => {
  const { dir, path } = await freshPath();
  const probe = faultyFs();
  const store = new TokenStore({ path, fs: probe.fs });
  assert.equal(probe.calls, [], 'the constructor touches nothing');
  assert.is((await store.load()).state, 'empty');
  assert.is(await readdir(dir).catch(() => null), null, 'load must not create the directory');

  const raw = await twoGenerations(path);
  await writeFile(join(dir, 'tokens.bin.tmp-1-dead'), 'torn');
  const variants: Array<[string, Buffer]> = [
    ['ok', raw],
    ['recovered', flip(raw, 30)],
    ['corrupt', raw.subarray(0, 10)],
    ['foreign', Buffer.from('{"hello":1}')],
  ];
  for (const [state, bytes] of variants) {
    await writeFile(path, bytes);
    const before = await identity(path);
    const r = await store.load();
    assert.is(r.state === 'ok' ? (r.recovered ? 'recovered' : 'ok') : r.state, state);
    assert.is(await identity(path), before);
  }
  assert.equal(probe.mutating(), []);
  assert.equal((await readdir(dir)).sort(), ['tokens.bin', 'tokens.bin.tmp-1-dead']);
});

// ---- damaged and foreign content -------------------------------------------------------------

function flip(buf: Buffer, byte: number, bit = 0): Buffer {
  const b = Buffer.from(buf);
  b[byte] = b[byte]! ^ (1 << bit);
  return b;
}

async function loadBytes(bytes: Buffer): Promise<StoreLoadResult> {
  const { dir, path } = await freshPath();
  await mkdir(dir, { mode: 0o700 });
  await writeFile(path, bytes, { mode: 0o600 });
  const r = await new TokenStore({ path }).load();
  if (r.state !== 'ok' && r.state !== 'empty') {
    assert.is(r.path, path);
    assertNoSecret(r.reason);
  } else if (r.state === 'ok') assertNoSecret(r.warning);
  return r;
}

test('an empty file is corrupt', async () => {
  const r = await loadBytes(Buffer.alloc(0));
  assert.is(r.state, 'corrupt');
  assert.ok(r.state === 'corrupt' && /empty/.test(r.reason));
});

test('a blank (zeroed or erased) file is corrupt, not foreign', async () => {
  assert.is((await loadBytes(Buffer.alloc(300))).state, 'corrupt');
  assert.is((await loadBytes(Buffer.alloc(300, 0xff))).state, 'corrupt');
});

test('truncation inside the newest generation is corrupt; inside the previous keeps the newest', async () => {
  const { path } = await freshPath();
  const raw = await twoGenerations(path);
  const scan = scanFile(raw);
  if (scan.kind !== 'slots') return assert.unreachable(scan.kind);
  const firstEnd = scan.slots.find((s) => s.offset === 0)!.raw.length;
  for (const len of [1, 4, 8, 12, 23, 24, 25, 60, firstEnd - 33, firstEnd - 1]) {
    const r = await loadBytes(raw.subarray(0, len));
    assert.is(r.state, 'corrupt', `truncated to ${len}`);
    assert.ok(r.state === 'corrupt' && /truncated/.test(r.reason), `reason at ${len}`);
  }
  assert.equal(await loadBytes(raw.subarray(0, firstEnd)), { state: 'ok', tokens: tokens(2), recovered: false });
  for (const len of [firstEnd + 1, firstEnd + 30, raw.length - 1]) {
    const r = await loadBytes(raw.subarray(0, len));
    assert.equal(okTokens(r), tokens(2), `truncated to ${len}`);
    assert.ok(r.state === 'ok' && !r.recovered && /previous generation is damaged/.test(r.warning ?? ''));
  }
});

test('a flipped bit anywhere in the newest generation falls back to the previous one (recovered)', async () => {
  const { path } = await freshPath();
  const raw = await twoGenerations(path);
  const firstEnd = (scanFile(raw) as { slots: Array<{ offset: number; raw: Buffer }> }).slots.find((s) => s.offset === 0)!.raw.length;
  // magic, version, flags, generation, length, payload, checksum
  for (const at of [0, 3, 8, 9, 19, 21, 23, 24, 50, firstEnd - 40, firstEnd - 1]) {
    const r = await loadBytes(flip(raw, at, at % 8));
    assert.equal(okTokens(r), tokens(1), `bit flip at byte ${at}`);
    assert.ok(r.state === 'ok' && r.recovered && /newest generation is damaged/.test(r.warning ?? ''), `warning at ${at}`);
  }
});

test('after a fallback the next save keeps the good older generation', async () => {
  const { path } = await freshPath();
  const raw = await twoGenerations(path);
  await writeFile(path, flip(raw, 40));
  const store = new TokenStore({ path });
  assert.equal(okTokens(await store.load()), tokens(1));
  // Saving the recovered tokens again repairs the file even though they are "unchanged".
  assert.equal(await store.save(tokens(1)), { written: true });
  assert.equal(await store.load(), { state: 'ok', tokens: tokens(1), recovered: false });
  await store.save(tokens(3));
  const scan = scanFile(await readFile(path));
  if (scan.kind !== 'slots') return assert.unreachable(scan.kind);
  assert.is(scan.slots.length, 2);
  await writeFile(path, flip(await readFile(path), 40));
  assert.equal(okTokens(await store.load()), tokens(1));
});

test('flipped bits in both generations: corrupt, and the next save replaces the file', async () => {
  const { path } = await freshPath();
  const raw = await twoGenerations(path);
  const r = await loadBytes(flip(flip(raw, 40), raw.length - 40));
  assert.is(r.state, 'corrupt');
  assert.ok(r.state === 'corrupt' && /checksum/.test(r.reason));
  await writeFile(path, flip(flip(raw, 40), raw.length - 40));
  const store = new TokenStore({ path });
  assert.equal(await store.save(tokens(2)), { written: true });
  assert.equal(okTokens(await store.load()), tokens(2));
});

test('foreign files: JSON, text, binary; save refuses to overwrite them, clear removes them', async () => {
  const cases: Array<[string, Buffer]> = [
    ['JSON', Buffer.from(JSON.stringify({ access_token: 'abc', refresh_token: 'def' }))],
    ['text', Buffer.from('# some config file\nkey = value\n')],
    ['binary', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), randomBytes(500)])],
  ];
  for (const [kind, bytes] of cases) {
    const r = await loadBytes(bytes);
    assert.is(r.state, 'foreign', kind);
  }
  const { dir, path } = await freshPath();
  await mkdir(dir, { mode: 0o700 });
  await writeFile(path, cases[0]![1]);
  const store = new TokenStore({ path });
  const e = await rejects(store.save(tokens(1)), 'STORE_FOREIGN');
  assert.is(e.details?.path, path);
  assert.equal(await readFile(path), cases[0]![1]);
  await store.clear();
  assert.is((await store.load()).state, 'empty');
  assert.equal(await store.save(tokens(1)), { written: true });
});

test('a record in an unknown format version is foreign; a flipped version byte is damage', async () => {
  const payload = encodeTokens(tokens(1));
  const v2 = frameSlot(encodeHeader({ version: FORMAT_VERSION + 1, flags: 0, generation: 7 }, payload.length), payload);
  const r = await loadBytes(v2);
  assert.is(r.state, 'foreign');
  assert.ok(r.state === 'foreign' && /format version 2/.test(r.reason));

  const v1 = frameSlot(encodeHeader({ version: FORMAT_VERSION, flags: 0, generation: 7 }, payload.length), payload);
  assert.equal(okTokens(await loadBytes(v1)), tokens(1));
  assert.is((await loadBytes(flip(v1, 8, 1))).state, 'corrupt');
});

// ---- temp files -------------------------------------------------------------------------------

test('a torn temp file from a crash is ignored by load and removed by the next save', async () => {
  const { dir, path } = await freshPath();
  const store = new TokenStore({ path });
  await writeFile(join(await freshDir(), 'unrelated'), 'x'); // other dirs are not scanned
  await mkdir(dir, { mode: 0o700 });
  await writeFile(join(dir, 'tokens.bin.tmp-4242-cafe'), Buffer.from([0x89, 0x43, 0x49]));
  assert.is((await store.load()).state, 'empty');
  await store.save(tokens(1));
  await writeFile(join(dir, 'tokens.bin.tmp-4243-beef'), (await readFile(path)).subarray(0, 30));
  await writeFile(join(dir, 'other.txt'), 'not ours');
  assert.equal(okTokens(await store.load()), tokens(1));
  assert.equal(await store.save(tokens(1)), { written: false });
  assert.is((await readdir(dir)).filter(isTemp).length, 1, 'an unchanged save touches nothing, not even leftovers');
  await store.save(tokens(2));
  assert.equal((await readdir(dir)).sort(), ['other.txt', 'tokens.bin']);
});

// ---- write failures ----------------------------------------------------------------------------

for (const errno of ['ENOSPC', 'EIO']) {
  for (const op of ['write', 'sync'] as const) {
    test(`${errno} at ${op} of the temp file: STORE_WRITE_FAILED, temp removed, old record intact`, async () => {
      const { dir, path } = await freshPath();
      await new TokenStore({ path }).save(tokens(1));
      const before = await readFile(path);
      const faulty = faultyFs((o, p) => (o === op && isTemp(p) ? errno : undefined));
      const e = await rejects(new TokenStore({ path, fs: faulty.fs }).save(tokens(2)), 'STORE_WRITE_FAILED');
      assert.is(e.details?.errno, errno);
      assert.is(e.details?.step, op);
      assert.is(e.details?.path, path);
      assertNoSecret(e.message);
      assertNoSecret(JSON.stringify(e.toJSON()));
      assert.ok(faulty.calls.some((c) => c.startsWith(`${op}:`) && isTemp(c)), 'the fault was reached');
      assert.equal(await readdir(dir), ['tokens.bin']);
      assert.equal(await readFile(path), before);
      assert.equal(await new TokenStore({ path }).load(), { state: 'ok', tokens: tokens(1), recovered: false });
    });
  }
}

test('EIO at rename: STORE_WRITE_FAILED, temp removed, old record intact', async () => {
  const { dir, path } = await freshPath();
  await new TokenStore({ path }).save(tokens(1));
  const faulty = faultyFs((o) => (o === 'rename' ? 'EIO' : undefined));
  const e = await rejects(new TokenStore({ path, fs: faulty.fs }).save(tokens(2)), 'STORE_WRITE_FAILED');
  assert.is(e.details?.step, 'rename');
  assert.equal(await readdir(dir), ['tokens.bin']);
  assert.equal(okTokens(await new TokenStore({ path }).load()), tokens(1));
});

test('EIO at the directory fsync is reported (renamed: true): durability unknown, content new', async () => {
  const { dir, path } = await freshPath();
  await new TokenStore({ path }).save(tokens(1));
  const faulty = faultyFs((o, p) => (o === 'sync' && p === dir ? 'EIO' : undefined));
  const e = await rejects(new TokenStore({ path, fs: faulty.fs }).save(tokens(2)), 'STORE_WRITE_FAILED');
  assert.is(e.details?.step, 'syncdir');
  assert.is(e.details?.renamed, true);
  const r = await new TokenStore({ path }).load();
  assert.equal(okTokens(r), tokens(2));
  const scan = scanFile(await readFile(path));
  assert.is(scan.kind === 'slots' && scan.slots.length, 2, 'the previous generation is still there');
});

test('the directory is fsynced after the rename, and the file before it', async () => {
  const { dir, path } = await freshPath();
  await new TokenStore({ path }).save(tokens(1));
  const probe = faultyFs();
  await new TokenStore({ path, fs: probe.fs }).save(tokens(2));
  const seq = probe.calls.filter((c) => /^(sync|rename)/.test(c)).map((c) => (c.startsWith('rename') ? 'rename' : c === `sync:${dir}` ? 'syncdir' : 'syncfile'));
  assert.equal(seq, ['syncfile', 'rename', 'syncdir']);
});

for (const errno of ['EROFS', 'EACCES']) {
  test(`read-only directory (${errno} injected): STORE_WRITE_FAILED and the old record loads`, async () => {
    const { dir, path } = await freshPath();
    await new TokenStore({ path }).save(tokens(1));
    // A read-only mount refuses every change in the directory, including leftover cleanup.
    const faulty = faultyFs((o, p, flags) => ((o === 'open' && flags === 'wx') || o === 'unlink' || o === 'rename' ? (p.startsWith(dir) ? errno : undefined) : undefined));
    await writeFile(join(dir, 'tokens.bin.tmp-1-0000'), 'torn');
    const e = await rejects(new TokenStore({ path, fs: faulty.fs }).save(tokens(2)), 'STORE_WRITE_FAILED');
    assert.is(e.details?.errno, errno);
    assert.is(e.details?.step, 'open');
    assert.equal(okTokens(await new TokenStore({ path }).load()), tokens(1));
  });
}

// chmod does not stop root; as root the same scenario runs in a child process as `nobody`.
const READ_ONLY_SCENARIO = `
const { TokenStore } = require(process.argv[1]);
const { chmod, readdir } = require('node:fs/promises');
(async () => {
  const [path, dir] = [process.argv[2], process.argv[3]];
  const t = (n) => ({ accessToken: 'AT-' + n + '-'.repeat(30), refreshToken: 'RT-' + n + '-'.repeat(30), expiresAt: 1e12 + n, tokenType: 'Bearer', obtainedAt: 1e12, deviceId: 'device-1' });
  await new TokenStore({ path }).save(t(1));
  await chmod(dir, 0o500);
  let code, errno;
  try { await new TokenStore({ path }).save(t(2)); } catch (e) { code = e.code; errno = e.details && e.details.errno; }
  await chmod(dir, 0o700);
  const files = await readdir(dir);
  const r = await new TokenStore({ path }).load();
  process.stdout.write(JSON.stringify({ code, errno, files, state: r.state, access: r.tokens && r.tokens.accessToken }));
})();`;

test('read-only directory (real chmod 0500): the save fails coded and the old record stays', async () => {
  const { dir, path } = await freshPath();
  const storeModule = join(__dirname, '..', 'src', 'auth', 'token-store.js');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    // The scenario needs a user chmod applies to; the temp tree is handed to `nobody`.
    const base = join(dir, '..');
    await chown(base, 65534, 65534);
  }
  const out = execFileSync(process.execPath, ['-e', READ_ONLY_SCENARIO, storeModule, path, dir], {
    encoding: 'utf8',
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    env: { PATH: process.env.PATH ?? '' },
  });
  const r = JSON.parse(out);
  assert.is(r.code, 'STORE_WRITE_FAILED');
  assert.is(r.errno, 'EACCES');
  assert.equal(r.files, ['tokens.bin']);
  assert.is(r.state, 'ok');
  assert.is(r.access, 'AT-1' + '-'.repeat(30));
});

test('an I/O error while reading throws STORE_READ_FAILED with the path, never content', async () => {
  const { path } = await freshPath();
  await new TokenStore({ path }).save(tokens(1));
  const faulty = faultyFs((o) => (o === 'read' ? 'EIO' : undefined));
  const e = await rejects(new TokenStore({ path, fs: faulty.fs }).load(), 'STORE_READ_FAILED');
  assert.equal(e.details, { path, errno: 'EIO' });
  assertNoSecret(e.message);
  await rejects(new TokenStore({ path, fs: faulty.fs }).save(tokens(2)), 'STORE_READ_FAILED');
  assert.equal(okTokens(await new TokenStore({ path }).load()), tokens(1));
});

// ---- sealing ------------------------------------------------------------------------------------

async function keyFile(dir: string, name: string, content: Buffer | string = randomBytes(32), mode = 0o600): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, content, { mode });
  await chmod(p, mode);
  return p;
}

test('sealed round trip; the raw file does not contain the tokens', async () => {
  const keys = await freshDir();
  const { path } = await freshPath();
  const store = new TokenStore({ path, keyPath: await keyFile(keys, 'device.key') });
  assert.is(store.sealed, true);
  await store.save(tokens(1));
  await store.save(tokens(2));
  assert.equal(await store.load(), { state: 'ok', tokens: tokens(2), recovered: false });
  const raw = await readFile(path);
  for (const n of [1, 2]) {
    assert.is(raw.includes(tokens(n).refreshToken), false, 'refresh token in plain sight');
    assert.is(raw.includes(tokens(n).accessToken), false, 'access token in plain sight');
  }
  assert.is(raw.includes('SECRETREFRESH'), false);
  const scan = scanFile(raw);
  assert.ok(scan.kind === 'slots' && scan.slots.every((s) => (s.flags & FLAG_SEALED) !== 0));
  // Unchanged tokens: no write, even though every seal uses a fresh nonce.
  assert.equal(await store.save(tokens(2)), { written: false });
  // Damage is still caught by the checksum (fallback), not mistaken for a wrong key.
  await writeFile(path, flip(raw, 60));
  assert.equal(okTokens(await store.load()), tokens(1));
});

test('a hex key file works; the same key in another store opens the record', async () => {
  const keys = await freshDir();
  const key = randomBytes(32);
  const { path } = await freshPath();
  await new TokenStore({ path, keyPath: await keyFile(keys, 'raw.key', key) }).save(tokens(1));
  const hex = new TokenStore({ path, keyPath: await keyFile(keys, 'hex.key', key.toString('hex') + '\n') });
  assert.equal(okTokens(await hex.load()), tokens(1));
});

test('wrong, missing or absent key: STORE_KEY from load and save, file untouched', async () => {
  const keys = await freshDir();
  const { path } = await freshPath();
  await new TokenStore({ path, keyPath: await keyFile(keys, 'good.key') }).save(tokens(1));
  const before = await readFile(path);
  const wrong = new TokenStore({ path, keyPath: await keyFile(keys, 'wrong.key') });
  const e = await rejects(wrong.load(), 'STORE_KEY');
  assertNoSecret(e.message);
  await rejects(wrong.save(tokens(2)), 'STORE_KEY');
  const missing = new TokenStore({ path, keyPath: join(keys, 'nope.key') });
  const m = await rejects(missing.load(), 'STORE_KEY');
  assert.is(m.details?.errno, 'ENOENT');
  await rejects(missing.save(tokens(2)), 'STORE_KEY');
  await rejects(new TokenStore({ path }).load(), 'STORE_KEY');
  await rejects(new TokenStore({ path, keyPath: await keyFile(keys, 'short.key', randomBytes(16)) }).load(), 'STORE_KEY');
  assert.equal(await readFile(path), before);
});

test('a key file readable by group/other is refused with STORE_PERMISSIONS', async () => {
  const keys = await freshDir();
  const { path } = await freshPath();
  const store = new TokenStore({ path, keyPath: await keyFile(keys, 'lax.key', randomBytes(32), 0o644) });
  await rejects(store.save(tokens(1)), 'STORE_PERMISSIONS');
  assert.is((await store.load()).state, 'empty');
});

test('a plaintext record is read with a key configured (warning) and sealed by the next save', async () => {
  const keys = await freshDir();
  const { path } = await freshPath();
  await twoGenerations(path);
  const store = new TokenStore({ path, keyPath: await keyFile(keys, 'device.key') });
  const r = await store.load();
  assert.ok(r.state === 'ok' && /not sealed/.test(r.warning ?? ''));
  assert.equal(await store.save(tokens(2)), { written: true });
  const raw = await readFile(path);
  assert.is(raw.includes('SECRETREFRESH'), false, 'both generations are sealed');
  assert.equal(await store.load(), { state: 'ok', tokens: tokens(2), recovered: false });
});

// ---- clear, concurrency, arguments -------------------------------------------------------------

test('clear() removes the file and leftover temp files; clearing nothing is fine', async () => {
  const { dir, path } = await freshPath();
  const store = new TokenStore({ path });
  await store.clear();
  await store.save(tokens(1));
  await writeFile(join(dir, 'tokens.bin.tmp-9-abcd'), 'RT-1 torn');
  await store.clear();
  assert.equal(await readdir(dir), []);
  assert.equal(await store.load(), { state: 'empty', path });
  await store.clear();
});

test('concurrent saves are serialised: the last one wins and the file stays valid', async () => {
  const { path } = await freshPath();
  const store = new TokenStore({ path });
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => store.save(tokens(n))));
  assert.ok(results.every((r) => r.written));
  assert.equal(await store.load(), { state: 'ok', tokens: tokens(5), recovered: false });
  const scan = scanFile(await readFile(path));
  assert.ok(scan.kind === 'slots' && scan.slots[0]!.generation === 5 && scan.slots[1]!.generation === 4);
});

test('invalid tokens are refused before any I/O', async () => {
  const probe = faultyFs();
  const store = new TokenStore({ path: '/nonexistent/tokens.bin', fs: probe.fs });
  await rejects(store.save({ ...tokens(1), refreshToken: '' }), 'ERR_INVALID_ARGUMENT');
  await rejects(store.save({ ...tokens(1), expiresAt: NaN }), 'ERR_INVALID_ARGUMENT');
  assert.equal(probe.calls, []);
  assert.throws(() => new TokenStore({ path: '' }), (e: unknown) => isCicError(e, 'ERR_INVALID_ARGUMENT'));
});

test.run();
