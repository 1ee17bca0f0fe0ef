// Torn temp files: what a power cut during a save leaves next to the token file (a
// `tokens.bin.tmp-<pid>-<hex>` holding part of the new record, never renamed). Loading must
// ignore it — the token file itself is intact — and the next save must remove it and leave
// exactly one file. Also: a torn temp left by the very first save (no token file yet), a
// leftover that cannot be removed (a directory in its place), and a planted symlink (its
// target outside must survive untouched).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenManager } from '../../src/auth/token-manager';
import { TokenStore, withAuth } from './41-store-kit';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cic-fault-43-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The bytes a save of `tokens` writes, cut at `fraction` (what a power cut leaves in the temp file). */
async function tornRecord(dir: string, store: TokenStore, tokens: Parameters<TokenStore['save']>[0], fraction: number): Promise<Buffer> {
  const scratch = join(dir, 'scratch', 'tokens.bin');
  const copy = new TokenStore({ path: scratch });
  const current = await store.load();
  if (current.state === 'ok') await copy.save(current.tokens);
  await copy.save(tokens);
  const full = await readFile(scratch);
  await rm(join(dir, 'scratch'), { recursive: true });
  return full.subarray(0, Math.floor(full.length * fraction));
}

test('a torn temp file next to a good token file: load ignores it, the next save removes it', () =>
  withAuth(async ({ grant }) =>
    withDir(async (dir) => {
      const path = join(dir, 'state', 'tokens.bin');
      const store = new TokenStore({ path });
      const old = grant();
      await store.save(old);
      const next = grant();
      for (const fraction of [0, 0.1, 0.5, 0.99]) {
        await writeFile(join(dir, 'state', `tokens.bin.tmp-4242-${Math.round(fraction * 100).toString(16).padStart(8, '0')}`), await tornRecord(dir, store, next, fraction), { mode: 0o600 });
      }
      assert.is((await readdir(join(dir, 'state'))).length, 5);
      // A fresh process loads exactly the last good pair, with nothing to complain about.
      assert.equal(await new TokenStore({ path }).load(), { state: 'ok', tokens: old, recovered: false });
      assert.equal(await store.save(next), { written: true });
      assert.equal(await readdir(join(dir, 'state')), ['tokens.bin'], 'every leftover removed by the save');
      assert.equal(await new TokenStore({ path }).load(), { state: 'ok', tokens: next, recovered: false });
    }),
  ),
);

test('a torn temp from the very first save (no token file): "empty", not corrupt; login saves and cleans up', () =>
  withAuth(async ({ emu, auth, grant }) =>
    withDir(async (dir) => {
      const path = join(dir, 'tokens.bin');
      const store = new TokenStore({ path });
      await writeFile(join(dir, 'tokens.bin.tmp-77-deadbeef'), await tornRecord(dir, store, grant(), 0.6));
      assert.equal(await store.load(), { state: 'empty', path });
      const m = new TokenManager({ auth, store, autoRefresh: false });
      const st = await m.start();
      assert.is(st.loggedIn, false);
      const r = await m.login(emu.addAccount());
      assert.is(r.persisted, true);
      assert.equal(await readdir(dir), ['tokens.bin']);
      const loaded = await new TokenStore({ path }).load();
      assert.ok(loaded.state === 'ok' && emu.isValidAccessToken(loaded.tokens.accessToken));
      await m.close();
    }),
  ),
);

test('a leftover that cannot be removed (a directory with the temp name) does not block the save', () =>
  withAuth(async ({ grant }) =>
    withDir(async (dir) => {
      const path = join(dir, 'tokens.bin');
      const store = new TokenStore({ path });
      await store.save(grant());
      const stuck = join(dir, 'tokens.bin.tmp-1-00000000');
      await mkdir(stuck);
      await writeFile(join(stuck, 'x'), 'x');
      const next = grant();
      assert.equal(await store.save(next), { written: true });
      assert.equal(await store.load(), { state: 'ok', tokens: next, recovered: false });
      assert.equal((await readdir(dir)).sort(), ['tokens.bin', 'tokens.bin.tmp-1-00000000']);
    }),
  ),
);

test('a planted symlink with the temp name is removed, its target outside is untouched', () =>
  withAuth(async ({ grant }) =>
    withDir(async (dir) => {
      await mkdir(join(dir, 'state'), { mode: 0o700 });
      const outside = join(dir, 'precious.txt');
      await writeFile(outside, 'do not touch');
      const path = join(dir, 'state', 'tokens.bin');
      await symlink(outside, join(dir, 'state', 'tokens.bin.tmp-9-feedface'));
      const store = new TokenStore({ path });
      const t = grant();
      assert.equal(await store.save(t), { written: true });
      assert.is(await readFile(outside, 'utf8'), 'do not touch');
      assert.equal(await readdir(join(dir, 'state')), ['tokens.bin']);
      assert.equal(await store.load(), { state: 'ok', tokens: t, recovered: false });
    }),
  ),
);

test.run();
