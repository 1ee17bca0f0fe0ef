// The token directory became read-only (a filesystem remounted ro after errors, an immutable
// directory, lost write permission). Root ignores permission bits, so as root the real
// mechanisms are used: a tmpfs remounted read-only (EROFS) and `chattr +i` on an ext4
// directory (EPERM); as another user, chmod 0500 (EACCES). In each case: the save fails with
// STORE_WRITE_FAILED naming the errno, the last good tokens still load, a leftover temp file
// (which cannot be removed now) is ignored, and through the TokenManager a refresh keeps the
// new tokens in memory with a coded warning until the directory is writable again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejects } from '../support/expect';
import { TokenStore, advanceUntil, assertWriteFailed, isRoot, mountTmpfs, remount, umount, withAuth } from './41-store-kit';

interface Lock {
  /** errno the kernel gives for a create in the locked directory. */
  errno: string;
  lock(dir: string): void;
  unlock(dir: string): void;
}

const MECHANISMS: Record<string, Lock> = isRoot()
  ? {
      'tmpfs remounted read-only': { errno: 'EROFS', lock: (d) => remount(d, 'ro'), unlock: (d) => remount(d, 'rw') },
      'chattr +i directory': {
        errno: 'EPERM',
        lock: (d) => {
          const r = spawnSync('chattr', ['+i', d], { encoding: 'utf8' });
          if (r.status !== 0) assert.unreachable(`chattr +i ${d} failed: ${r.stderr.trim()} (needs e2fsprogs and an ext4/xfs/btrfs /tmp)`);
        },
        unlock: (d) => void spawnSync('chattr', ['-i', d]),
      },
    }
  : { 'chmod 0500 directory': { errno: 'EACCES', lock: (d) => chmodSync(d, 0o500), unlock: (d) => chmodSync(d, 0o700) } };

/** A token directory for `name`: its own tmpfs for the remount variant, a plain directory otherwise. */
function makeDir(name: string): { dir: string; cleanup(): void } {
  const base = mkdtempSync(join(tmpdir(), 'cic-fault-44-'));
  const dir = join(base, 'state');
  if (name.startsWith('tmpfs')) mountTmpfs(dir, 64);
  else mkdirSync(dir, { mode: 0o700 });
  return {
    dir,
    cleanup() {
      MECHANISMS[name]!.unlock(dir);
      if (name.startsWith('tmpfs')) umount(dir);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

for (const [name, mech] of Object.entries(MECHANISMS)) {
  test(`${name}: save fails with STORE_WRITE_FAILED (${mech.errno}); last good tokens load; leftover temp ignored`, () =>
    withAuth(async ({ grant }) => {
      const { dir, cleanup } = makeDir(name);
      try {
        const path = join(dir, 'tokens.bin');
        const store = new TokenStore({ path });
        const old = grant();
        await store.save(old);
        writeFileSync(join(dir, 'tokens.bin.tmp-5-0badf00d'), Buffer.from([1, 2, 3]), { mode: 0o600 });
        mech.lock(dir);
        const next = grant();
        const e = await rejects(store.save(next), 'STORE_WRITE_FAILED');
        assertWriteFailed(e, mech.errno, 'open', [next.accessToken, next.refreshToken]);
        assert.equal(await new TokenStore({ path }).load(), { state: 'ok', tokens: old, recovered: false });
        assert.equal(readdirSync(dir).sort(), ['tokens.bin', 'tokens.bin.tmp-5-0badf00d'], 'nothing could be created or removed');
        mech.unlock(dir);
        assert.equal(await store.save(next), { written: true });
        assert.equal(readdirSync(dir), ['tokens.bin'], 'the leftover went with the first writable save');
        assert.equal(await store.load(), { state: 'ok', tokens: next, recovered: false });
      } finally {
        cleanup();
      }
    }),
  );

  test(`${name}: a refresh keeps the new tokens in memory (coded warning, persisted=false), saved once writable`, () =>
    withAuth(async ({ clock, emu, grant, manager }) => {
      const { dir, cleanup } = makeDir(name);
      try {
        const path = join(dir, 'tokens.bin');
        const store = new TokenStore({ path });
        const old = grant();
        await store.save(old);
        const { m, warnings } = manager(store);
        await m.start();
        mech.lock(dir);
        const token = await m.forceRefresh();
        assert.ok(emu.isValidAccessToken(token));
        assert.is(warnings.length, 1);
        assertWriteFailed(warnings[0]!, mech.errno, 'open', [token]);
        assert.equal({ persisted: m.status().persisted, state: m.status().state }, { persisted: false, state: 'valid' });
        assert.is(await m.getAccessToken(), token);
        const onFlash = await store.load();
        assert.ok(onFlash.state === 'ok' && onFlash.tokens.accessToken === old.accessToken, 'flash still holds the last good pair');
        mech.unlock(dir);
        await advanceUntil(clock, () => m.status().persisted, 'the persist retry after the directory became writable');
        const saved = await store.load();
        assert.ok(saved.state === 'ok' && saved.tokens.accessToken === token && emu.isValidRefreshToken(saved.tokens.refreshToken));
      } finally {
        cleanup();
      }
    }),
  );
}

test.run();
