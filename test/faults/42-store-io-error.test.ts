// I/O errors at every step of a save, injected through the store's fs layer (the real file
// system underneath): EIO as a failing flash chip returns it, and ENOSPC at fsync (where a
// delayed-allocation filesystem reports a full disk). Kernel-level EIO needs a device-mapper
// error target, which containers rarely have; the layer below the store is the next-closest.
// For every step: the coded error names step and errno, the token file still holds the
// previous pair (or, for a failed directory sync after the rename, the new one, flagged
// `renamed`), no temp file is left, and the next save works. A failing read makes load()
// throw STORE_READ_FAILED and the TokenManager report it and read again on the next call.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejects } from '../support/expect';
import { TokenStore, advanceUntil, assertWriteFailed, faultFs, withAuth, type FaultStep } from './41-store-kit';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cic-fault-42-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const STEPS: Array<{ step: FaultStep; errno: string; reported: string; renamed?: boolean }> = [
  { step: 'open-temp', errno: 'EIO', reported: 'open' },
  { step: 'write', errno: 'EIO', reported: 'write' },
  { step: 'sync', errno: 'EIO', reported: 'sync' },
  { step: 'sync', errno: 'ENOSPC', reported: 'sync' },
  { step: 'close', errno: 'EIO', reported: 'close' },
  { step: 'rename', errno: 'EIO', reported: 'rename' },
  { step: 'sync-dir', errno: 'EIO', reported: 'syncdir', renamed: true },
  { step: 'open-dir', errno: 'EIO', reported: 'syncdir', renamed: true },
];

for (const s of STEPS) {
  test(`${s.errno} at ${s.step}: STORE_WRITE_FAILED step=${s.reported}; ${s.renamed ? 'new pair visible, flagged renamed' : 'previous pair intact'}; no temp left; next save works`, () =>
    withAuth(async ({ grant }) =>
      withDir(async (dir) => {
        const path = join(dir, 'state', 'tokens.bin');
        const fs = faultFs();
        const store = new TokenStore({ path, fs });
        const old = grant();
        await store.save(old);
        const next = grant();
        fs.arm(s.step, s.errno, 1);
        const e = await rejects(store.save(next), 'STORE_WRITE_FAILED');
        assert.is(fs.fired, 1, 'the fault fired once');
        assertWriteFailed(e, s.errno, s.reported, [next.accessToken, next.refreshToken, old.accessToken, old.refreshToken]);
        assert.is((e.details as { renamed?: boolean }).renamed, s.renamed, 'details.renamed');
        const loaded = await new TokenStore({ path }).load();
        assert.equal(loaded, { state: 'ok', tokens: s.renamed ? next : old, recovered: false });
        assert.equal(await readdir(join(dir, 'state')), ['tokens.bin'], 'no temp file left');
        // The device keeps working: the next save (fault gone) succeeds.
        const third = grant();
        assert.equal(await store.save(third), { written: true });
        assert.equal(await new TokenStore({ path }).load(), { state: 'ok', tokens: third, recovered: false });
      }),
    ),
  );
}

test('EIO on every save: the TokenManager keeps using the new tokens, warns once per failed save, saves when the device recovers', () =>
  withAuth(async ({ clock, grant, manager, emu }) =>
    withDir(async (dir) => {
      const path = join(dir, 'tokens.bin');
      const fs = faultFs();
      const store = new TokenStore({ path, fs });
      const old = grant();
      await store.save(old);
      const { m, warnings } = manager(store);
      await m.start();
      fs.arm('sync', 'EIO');
      const t1 = await m.forceRefresh();
      assert.is(m.status().persisted, false);
      assert.is(warnings.length, 1);
      assertWriteFailed(warnings[0]!, 'EIO', 'sync', [t1]);
      // The retry fails too while the fault lasts: another coded warning, still in memory.
      await advanceUntil(clock, () => warnings.length >= 2, 'the first persist retry');
      assertWriteFailed(warnings[1]!, 'EIO', 'sync', [t1]);
      assert.is(await m.getAccessToken(), t1);
      assert.ok(emu.isValidAccessToken(t1));
      fs.clear();
      await advanceUntil(clock, () => m.status().persisted, 'a persist retry after the fault cleared');
      const saved = await new TokenStore({ path }).load();
      assert.ok(saved.state === 'ok' && saved.tokens.accessToken === t1 && emu.isValidRefreshToken(saved.tokens.refreshToken), 'the live pair is on flash');
    }),
  ),
);

test('EIO while reading: load() throws STORE_READ_FAILED; the TokenManager reports it and reads again on the next call', () =>
  withAuth(async ({ grant, manager }) =>
    withDir(async (dir) => {
      const path = join(dir, 'tokens.bin');
      const fs = faultFs();
      const store = new TokenStore({ path, fs });
      const old = grant();
      await store.save(old);
      fs.arm('read', 'EIO', 1);
      const e = await rejects(store.load(), 'STORE_READ_FAILED');
      assert.equal(e.details, { path, errno: 'EIO' });
      assert.not.ok(e.message.includes(old.accessToken));
      const { m } = manager(store);
      fs.arm('read', 'EIO', 1);
      await rejects(m.start(), 'STORE_READ_FAILED');
      assert.is(m.state, 'logged-out', 'nothing loaded yet');
      assert.is(await m.getAccessToken(), old.accessToken, 'the next call reads again and finds the tokens');
      assert.is(m.state, 'valid');
    }),
  ),
);

test.run();
