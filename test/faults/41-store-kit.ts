// Shared parts of the token-store fault tests (test/faults/41-… to 44-…): a TokenManager over
// the real TokenStore and the real ClovaAuthClient talking TLS to the auth emulator, on a
// fake clock (the persist-retry timer is advanced, never slept on); small tmpfs mounts for
// real ENOSPC / EROFS; an fs layer that raises an errno at one chosen step.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { ClovaAuthClient } from '../../src/auth/clova-auth';
import { TokenManager } from '../../src/auth/token-manager';
import { TokenStore } from '../../src/auth/token-store';
import type { StoredTokens } from '../../src/auth/types';
import type { CicError } from '../../src/errors';
import { realFs, type FileHandleLike, type FsLayer } from '../../src/util/atomic-file';
import { AuthEmulator } from '../emulator/auth-server';
import { testPki } from '../support/certs';
import { FakeClock, flushMicrotasks } from '../support/fake-clock';

export const DEVICE = 'device-fault-store';

export interface AuthRig {
  clock: FakeClock;
  emu: AuthEmulator;
  auth: ClovaAuthClient;
  /** A fresh grant from the emulator, shaped as the store keeps it. */
  grant(): StoredTokens;
  /** A TokenManager on `store` collecting its 'warning' events. */
  manager(store: TokenStore): { m: TokenManager; warnings: CicError[] };
}

export async function withAuth(fn: (rig: AuthRig) => Promise<void>): Promise<void> {
  const pki = testPki();
  const clock = new FakeClock(1_000, Date.now());
  const emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, clock });
  await emu.start();
  const auth = new ClovaAuthClient({ authUrl: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, deviceId: DEVICE, caPem: pki.ca, clock, retry: { maxAttempts: 1 } });
  const managers: TokenManager[] = [];
  try {
    await fn({
      clock,
      emu,
      auth,
      grant: () => {
        const t = emu.issueTokens(DEVICE);
        const now = clock.wallNow();
        return { accessToken: t.access_token, refreshToken: t.refresh_token, expiresAt: now + t.expires_in * 1000, obtainedAt: now, tokenType: 'Bearer', deviceId: DEVICE };
      },
      manager: (store) => {
        const warnings: CicError[] = [];
        // retry: fixed 10 s persist-retry delay (random 0.5 of a 20 s ceiling), on the fake clock.
        const m = new TokenManager({ auth, store, clock, deviceId: DEVICE, autoRefresh: false, retry: { baseMs: 20_000, maxMs: 20_000, minMs: 0, random: () => 0.5 } });
        m.on('warning', (w) => warnings.push(w));
        managers.push(m);
        return { m, warnings };
      },
    });
  } finally {
    for (const m of managers) await m.close().catch(() => undefined);
    await emu.stop();
  }
}

/** Advances the fake clock in steps until `check` holds (real I/O runs in between). */
export async function advanceUntil(clock: FakeClock, check: () => boolean, what: string, stepMs = 1_000, maxMs = 120_000): Promise<void> {
  for (let t = 0; t <= maxMs; t += stepMs) {
    for (let i = 0; i < 20 && !check(); i++) {
      await flushMicrotasks();
      await new Promise((r) => setImmediate(r));
    }
    if (check()) return;
    clock.advance(stepMs);
  }
  assert.unreachable(`${what}: not within ${maxMs} ms of fake time`);
}

// ---- real mounts (root) -----------------------------------------------------------------------

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Mounts a private tmpfs of `sizeKiB` at `dir` (and `inodes` inodes when given). Needs root
 * (CAP_SYS_ADMIN); fails the test with the reason otherwise — a fake disk-full is covered
 * separately (42-…), this one is the real kernel path.
 */
export function mountTmpfs(dir: string, sizeKiB: number, inodes?: number): void {
  mkdirSync(dir, { recursive: true });
  const opts = [`size=${sizeKiB}k`, 'mode=0700', ...(inodes ? [`nr_inodes=${inodes}`] : [])].join(',');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'cic-fault', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    assert.unreachable(`cannot mount a tmpfs at ${dir} (${isRoot() ? 'root' : 'not root'}): ${r.stderr.trim()} — this test needs root (CI runs as root)`);
  }
}

export function remount(dir: string, mode: 'ro' | 'rw'): void {
  execFileSync('mount', ['-o', `remount,${mode}`, dir]);
}

export function umount(dir: string): void {
  spawnSync('umount', ['-l', dir]);
}

// ---- injected faults --------------------------------------------------------------------------

export type FaultStep = 'open-temp' | 'write' | 'sync' | 'close' | 'rename' | 'open-dir' | 'sync-dir' | 'read';

export interface FaultFs extends FsLayer {
  /** Raise `errno` at `step` (the next `times` occurrences; default every one) until cleared. */
  arm(step: FaultStep, errno: string, times?: number): void;
  clear(): void;
  /** How often the armed fault fired. */
  fired: number;
}

function errnoError(errno: string, syscall: string): Error {
  return Object.assign(new Error(`${errno}: injected, ${syscall}`), { code: errno, syscall });
}

/**
 * realFs with one injected failure point: the error an ext4/ubifs device returns on a dying
 * flash chip (EIO) or a delayed-allocation ENOSPC at fsync, at exactly one step of the save.
 */
export function faultFs(base: FsLayer = realFs): FaultFs {
  let armed: { step: FaultStep; errno: string; left: number } | undefined;
  const hit = (step: FaultStep, syscall: string) => {
    if (!armed || armed.step !== step || armed.left === 0) return;
    armed.left--;
    fs.fired++;
    throw errnoError(armed.errno, syscall);
  };
  const wrap = (h: FileHandleLike, kind: 'temp' | 'dir' | 'read'): FileHandleLike => ({
    read: async (buf, off, len, pos) => {
      if (kind === 'read') hit('read', 'read');
      return h.read(buf, off, len, pos);
    },
    writeFile: async (data) => {
      hit('write', 'write');
      return h.writeFile(data);
    },
    stat: () => h.stat(),
    sync: async () => {
      hit(kind === 'dir' ? 'sync-dir' : 'sync', 'fsync');
      return h.sync();
    },
    close: async () => {
      // The descriptor is released either way (as close(2) does), then the error is reported.
      await h.close();
      if (kind === 'temp') hit('close', 'close');
    },
  });
  const fs: FaultFs = {
    fired: 0,
    arm(step, errno, times = Infinity) {
      armed = { step, errno, left: times };
    },
    clear() {
      armed = undefined;
    },
    open: async (path, flags, mode) => {
      const kind = flags === 'wx' ? 'temp' : flags === 'r' && !/tokens[^/]*$/.test(path) ? 'dir' : 'read';
      if (kind === 'temp') hit('open-temp', 'open');
      if (kind === 'dir') hit('open-dir', 'open');
      return wrap(await base.open(path, flags, mode), kind);
    },
    rename: async (from, to) => {
      hit('rename', 'rename');
      return base.rename(from, to);
    },
    unlink: (p) => base.unlink(p),
    mkdir: (p, o) => base.mkdir(p, o),
    readdir: (p) => base.readdir(p),
    stat: (p) => base.stat(p),
  };
  return fs;
}

/** Asserts `e` is STORE_WRITE_FAILED with `errno` (and `step`), and that no token text is in its message. */
export function assertWriteFailed(e: CicError, errno: string, step: string | undefined, secrets: string[]): void {
  assert.is(e.code, 'STORE_WRITE_FAILED', e.message);
  const d = e.details as { errno?: string; step?: string } | undefined;
  assert.is(d?.errno, errno, `errno in ${e.message}`);
  if (step !== undefined) assert.is(d?.step, step, `step in ${e.message}`);
  for (const s of secrets) assert.not.ok(e.message.includes(s), 'a token appears in the error message');
}

export { TokenStore };
