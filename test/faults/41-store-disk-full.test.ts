// A full disk, for real: the token file lives on a small tmpfs (root only) that is filled up.
// The kernel returns ENOSPC when the temp file's data is written (no space) or when the temp
// file is created (no inode left). In every case the save fails with STORE_WRITE_FAILED
// naming the errno and the step, the previous file still loads unchanged, no temp file stays
// behind to eat space, and once space is freed the next save goes through. Through the
// TokenManager: a refresh on a full disk still hands out the new token (the server has
// already rotated; the copy in memory is the only live one), says so with a coded warning
// and status().persisted = false, and saves it as soon as the retry finds space.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSync, closeSync, writeSync, readdirSync, rmSync, unlinkSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejects } from '../support/expect';
import { TokenStore, advanceUntil, assertWriteFailed, mountTmpfs, umount, withAuth } from './41-store-kit';

/** Writes zeros into `path` until the filesystem refuses; returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096);
  let total = 0;
  try {
    for (;;) {
      try {
        total += writeSync(fd, block);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return total;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Uses up every free inode of the mount at `dir` with empty files. */
function exhaustInodes(dir: string): number {
  for (let i = 0; ; i++) {
    try {
      closeSync(openSync(join(dir, `inode-filler-${i}`), 'wx'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return i;
      throw e;
    }
  }
}

function withMount(sizeKiB: number, inodes: number | undefined, fn: (mnt: string) => Promise<void>): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'cic-fault-41-'));
  const mnt = join(base, 'mnt');
  mountTmpfs(mnt, sizeKiB, inodes);
  return fn(mnt).finally(() => {
    umount(mnt);
    rmSync(base, { recursive: true, force: true });
  });
}

test('no space left for the data: STORE_WRITE_FAILED (ENOSPC at write), old tokens intact, no temp left, saves again once space is freed', () =>
  withAuth(async ({ grant }) =>
    withMount(64, undefined, async (mnt) => {
      const path = join(mnt, 'state', 'tokens.bin');
      const store = new TokenStore({ path });
      const old = grant();
      assert.equal(await store.save(old), { written: true });
      const filled = fill(join(mnt, 'filler'));
      assert.ok(filled > 0, 'the filler took the remaining space');

      const next = grant();
      const e = await rejects(store.save(next), 'STORE_WRITE_FAILED');
      assertWriteFailed(e, 'ENOSPC', 'write', [next.accessToken, next.refreshToken, old.refreshToken]);
      assert.is(e.retryable, true);
      const loaded = await store.load();
      assert.equal(loaded, { state: 'ok', tokens: old, recovered: false }, 'the previous tokens load unchanged');
      assert.equal(readdirSync(join(mnt, 'state')), ['tokens.bin'], 'the temp file was removed');

      unlinkSync(join(mnt, 'filler'));
      assert.equal(await store.save(next), { written: true });
      assert.equal(await store.load(), { state: 'ok', tokens: next, recovered: false });
    }),
  ),
);

test('no inode left: STORE_WRITE_FAILED (ENOSPC at open), old tokens intact', () =>
  withAuth(async ({ grant }) =>
    withMount(256, 16, async (mnt) => {
      const path = join(mnt, 'tokens.bin');
      const store = new TokenStore({ path });
      const old = grant();
      await store.save(old);
      const used = exhaustInodes(mnt);
      assert.ok(used > 0, 'inodes filled');
      const next = grant();
      const e = await rejects(store.save(next), 'STORE_WRITE_FAILED');
      assertWriteFailed(e, 'ENOSPC', 'open', [next.accessToken, next.refreshToken]);
      assert.equal(await store.load(), { state: 'ok', tokens: old, recovered: false });
      for (const f of readdirSync(mnt)) if (f.startsWith('inode-filler-')) unlinkSync(join(mnt, f));
      assert.equal(await store.save(next), { written: true });
      assert.equal(await store.load(), { state: 'ok', tokens: next, recovered: false });
    }),
  ),
);

test('refresh on a full disk: the new token is used from memory with a coded warning, saved by the retry once space is back', () =>
  withAuth(async ({ clock, emu, grant, manager }) =>
    withMount(64, undefined, async (mnt) => {
      const path = join(mnt, 'state', 'tokens.bin');
      const store = new TokenStore({ path });
      const old = grant();
      await store.save(old);
      const { m, warnings } = manager(store);
      assert.is((await m.start()).state, 'valid');
      const refreshed: Array<{ persisted: boolean; rotated: boolean }> = [];
      m.on('refreshed', (i) => refreshed.push(i));
      fill(join(mnt, 'filler'));

      const token = await m.forceRefresh();
      // The server rotated: the refresh token on flash is dead, the new pair lives in memory.
      assert.ok(emu.isValidAccessToken(token), 'the new access token works');
      assert.not.ok(emu.isValidRefreshToken(old.refreshToken), 'the server rotated the refresh token out');
      assert.equal(refreshed, [{ reason: 'manual', expiresInMs: 3_600_000, rotated: true, persisted: false }] as unknown as typeof refreshed);
      assert.is(warnings.length, 1, 'one warning');
      assertWriteFailed(warnings[0]!, 'ENOSPC', 'write', [token]);
      const st = m.status();
      assert.is(st.persisted, false, 'status says the newest tokens are not on flash');
      assert.is(st.state, 'valid');
      assert.is(await m.getAccessToken(), token, 'the new token is handed out');
      const onFlash = await store.load();
      assert.ok(onFlash.state === 'ok' && onFlash.tokens.accessToken === old.accessToken, 'flash still holds the previous pair');

      // Space comes back; the persist retry (on the fake clock) saves the pair.
      unlinkSync(join(mnt, 'filler'));
      await advanceUntil(clock, () => m.status().persisted, 'the retry saved the tokens');
      const saved = await store.load();
      assert.ok(saved.state === 'ok' && saved.tokens.accessToken === token, 'flash holds the new pair');
      assert.ok(saved.state === 'ok' && emu.isValidRefreshToken(saved.tokens.refreshToken), 'and its refresh token is the live one');
      assert.is(warnings.length, 1, 'no further warning after the successful retry');
      assert.equal(readdirSync(join(mnt, 'state')), ['tokens.bin']);
    }),
  ),
);

test.run();
