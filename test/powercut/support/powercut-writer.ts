// Child process for test/powercut: the real TokenStore saving new token generations to a file
// on a LazyFS mount, one save per command from the parent, so the parent can cut power at a
// chosen step of a chosen save. Tokens never leave this process: lines carry generation
// numbers, steps and errnos only.
//
//   node powercut-writer.js <token-file> [--skip-file-sync]
//   env CIC_POWERCUT_SALT: makes this run's tokens unique (the runner's secret check looks for them)
//
// stdin, one command a line (the parent sends the next only after the answer):
//   open           load the store (the first command)  → `start <n>`, the generation on disk
//   save           save generation n+1                 → `ack <n>` | `fail <n> <step> <errno>`
//   pause <point>  save generation n+1 and stop forever at <point> (see PAUSE_POINTS)
//                                                      → `paused <point> <n>` (after `ack <n>` for 'acked')
//   loop           save n+1, n+2, … until killed       → `ack <n>` each
// Nothing touches the file before `open`: the parent starts the next writer while it reboots
// the filesystem, so Node's start-up does not add to every round. stdout to a pipe is
// synchronous on Linux: a printed line is in the pipe before the next file operation starts.
//
// --skip-file-sync flips the test seam in util/atomic-file (the negative control): the same
// writer, without the temp file's fsync.
import { createInterface } from 'node:readline';
import { dirname } from 'node:path';
import { TokenStore } from '../../../src/auth/token-store';
import type { StoredTokens } from '../../../src/auth/types';
import { errnoOf, realFs, skipFileSyncForPowerCutTest, type FileHandleLike, type FsLayer } from '../../../src/util/atomic-file';

const EPOCH_MS = Date.UTC(2026, 0, 1);

export function tokensFor(salt: string, n: number): StoredTokens {
  // Lengths vary with n, so old and new bytes mixed up cannot pass as one record.
  return {
    accessToken: `pc-access-${salt}-${n}-${'a'.repeat(n % 97)}`,
    refreshToken: `pc-refresh-${salt}-${n}-${'r'.repeat(n % 89)}`,
    expiresAt: EPOCH_MS + n * 1000 + 3_600_000,
    tokenType: 'Bearer',
    obtainedAt: EPOCH_MS + n * 1000,
  };
}

/** n when `t` is exactly tokensFor(salt, n), else NaN. */
export function counterOf(salt: string, t: StoredTokens): number {
  const m = /^pc-access-([0-9a-f]+)-(\d+)-/.exec(t.accessToken);
  if (!m || m[1] !== salt) return NaN;
  const n = Number(m[2]);
  const want = tokensFor(salt, n);
  const same = (Object.keys(want) as (keyof StoredTokens)[]).every((k) => t[k] === want[k]) && Object.keys(t).length === Object.keys(want).length;
  return same ? n : NaN;
}

/** Where `pause` can stop a save: between the file operations of writeFileAtomic, and after the acknowledgement. */
export const PAUSE_POINTS = ['before-create', 'after-create', 'after-write', 'after-fsync', 'after-close', 'after-rename', 'after-syncdir', 'acked'] as const;
export type PausePoint = (typeof PAUSE_POINTS)[number];

const MAX_SAVES = 100_000; // an orphaned child must not write forever

let pauseAt: PausePoint | undefined;

function line(s: string): void {
  process.stdout.write(`${s}\n`);
}

/** Stops this save for good: the parent kills the process (the power cut) while it waits here. */
async function maybePause(point: PausePoint, n: number): Promise<void> {
  if (pauseAt !== point) return;
  line(`paused ${point} ${n}`);
  await new Promise<never>(() => undefined);
}

/** realFs with pause points; every operation is the real one. */
function pausingFs(path: string, current: () => number): FsLayer {
  const dir = dirname(path);
  const wrap = (h: FileHandleLike, kind: 'temp' | 'dir' | 'other'): FileHandleLike => ({
    read: (b, o, l, p) => h.read(b, o, l, p),
    stat: () => h.stat(),
    writeFile: async (data) => {
      await h.writeFile(data);
      if (kind === 'temp') await maybePause('after-write', current());
    },
    sync: async () => {
      await h.sync();
      if (kind === 'temp') await maybePause('after-fsync', current());
      if (kind === 'dir') await maybePause('after-syncdir', current());
    },
    close: async () => {
      await h.close();
      if (kind === 'temp') await maybePause('after-close', current());
    },
  });
  return {
    ...realFs,
    open: async (p, flags, mode) => {
      const kind = flags === 'wx' ? 'temp' : p === dir ? 'dir' : 'other';
      if (kind === 'temp') await maybePause('before-create', current());
      const h = await realFs.open(p, flags, mode);
      if (kind === 'temp') await maybePause('after-create', current());
      return wrap(h, kind);
    },
    rename: async (from, to) => {
      await realFs.rename(from, to);
      await maybePause('after-rename', current());
    },
  };
}

async function main(path: string, salt: string): Promise<void> {
  process.stdout.on('error', () => process.exit(0));
  let n = 0;
  const store = new TokenStore({ path, fs: pausingFs(path, () => n) });
  const open = async () => {
    const loaded = await store.load();
    if (loaded.state === 'ok') n = counterOf(salt, loaded.tokens);
    else if (loaded.state !== 'empty') throw new Error(`writer found the file ${loaded.state}`);
    if (!Number.isSafeInteger(n)) throw new Error('writer found a record it did not write');
    line(`start ${n}`);
  };

  const save = async (): Promise<boolean> => {
    n++;
    try {
      await store.save(tokensFor(salt, n));
    } catch (e) {
      const d = (e as { details?: { step?: string; errno?: string } }).details;
      // Only the step and errno: the error's cause may carry a path, never worth the risk.
      line(`fail ${n} ${d?.step ?? 'unknown'} ${d?.errno ?? errnoOf(e) ?? 'EUNKNOWN'}`);
      return false;
    }
    line(`ack ${n}`);
    return true;
  };

  let chain = Promise.resolve();
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (cmd) => {
    chain = chain.then(async () => {
      if (cmd === 'open') await open();
      else if (cmd === 'save') await save();
      else if (cmd.startsWith('pause ')) {
        const point = cmd.slice(6) as PausePoint;
        if (!PAUSE_POINTS.includes(point)) throw new Error(`unknown pause point ${point}`);
        pauseAt = point;
        if (await save()) await maybePause('acked', n);
        // Reached only when the save never passed the point (it failed first, or the step
        // does not happen, like the fsync with --skip-file-sync).
        pauseAt = undefined;
        line(`not-paused ${point} ${n}`);
      } else if (cmd === 'loop') {
        for (let i = 0; i < MAX_SAVES && (await save()); i++);
      } else throw new Error(`unknown command ${cmd}`);
    });
    chain.catch((e) => {
      process.stderr.write(`writer failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    });
  });
  // The parent went away: stop.
  rl.on('close', () => process.exit(0));
}

if (require.main === module) {
  const path = process.argv[2];
  const salt = process.env.CIC_POWERCUT_SALT;
  if (!path || !salt || !/^[0-9a-f]+$/.test(salt)) {
    process.stderr.write('usage: CIC_POWERCUT_SALT=<hex> powercut-writer <token-file> [--skip-file-sync]\n');
    process.exit(2);
  }
  if (process.argv.includes('--skip-file-sync')) skipFileSyncForPowerCutTest(true);
  main(path, salt).catch((e) => {
    process.stderr.write(`writer failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
