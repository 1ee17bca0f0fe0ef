// Durable, atomic replacement of one small file (token store, credential caches).
//
// Hazards this exists for (flash storage on an appliance that loses power at any moment):
// - Writing the target in place can leave it half old, half new, or empty. We write a temp
//   file in the same directory and rename() it over the target: rename within one
//   filesystem is atomic, so a reader sees the old file or the new one, never a mix.
// - The temp file's data must be fsync'ed before the rename. Without it, ext4 (delalloc),
//   ubifs and f2fs may persist the rename before the data, and after power loss the target
//   is a zero-length or garbage file — the old content gone and the new never written.
// - The directory must be fsync'ed after the rename. The rename is a change to the
//   directory, not to the file; until the directory reaches flash, a power cut may bring
//   back the old name. For OAuth that is fatal in a subtle way: the server has already
//   rotated the refresh token, and the device boots with the dead one.
// - A crash leaves a `<file>.tmp-…` behind. It may hold a secret and occupies space on a
//   small partition, so the next write removes it first (best effort: a leftover never
//   blocks a write).
// - The directory of a secret file must not be listable or writable by others (another
//   user could read the file or swap it via rename). We create it 0700 and refuse to write
//   into an existing directory with group/other bits rather than chmod it: the path may be
//   a shared directory (/tmp, /var/lib) that is not ours to change.

import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { CicError } from '../errors';

/** The parts of an fs/promises FileHandle this module and the token store use. */
export interface FileHandleLike {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  writeFile(data: Uint8Array): Promise<void>;
  stat(): Promise<StatLike>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface StatLike {
  mode: number;
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

/**
 * The filesystem operations used, injectable so tests can raise ENOSPC/EIO/EROFS at a chosen
 * step. Production uses `realFs` (node:fs/promises).
 */
export interface FsLayer {
  open(path: string, flags: string, mode?: number): Promise<FileHandleLike>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<string | undefined>;
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<StatLike>;
}

export const realFs: FsLayer = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  mkdir: (path, options) => fsp.mkdir(path, options),
  readdir: (path) => fsp.readdir(path),
  stat: (path) => fsp.stat(path),
};

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;
/** Permission bits that let anyone but the owner read, write or traverse. */
const GROUP_OTHER_BITS = 0o077;

export interface AtomicFileOptions {
  fs?: FsLayer;
  /** Mode of the written file (default 0600; the umask can only narrow it). */
  mode?: number;
  /** Mode of directories created on the way (default 0700). */
  dirMode?: number;
}

// ---- test seam: test/powercut only ------------------------------------------------------------
// HAZARD: while set, writeFileAtomic renames a temp file whose data was never fsync'ed over the
// target — the exact bug the header describes: after a power cut the target is a zero-length
// file, the old content gone and the new never written (for tokens: the device must re-pair).
// It exists so the power-cut suite can prove it detects that bug (its negative control runs
// the real writer with this set and must see tokens lost). It is a process-wide switch that
// only code running inside the process can flip: nothing in src/ calls it, src/index.ts does
// not export it, and no option, configuration key or environment variable reaches it. Keep it
// that way — never wire it to anything a deployment can set.
let fileSyncSkippedForPowerCutTest = false;

/** @internal Test-only (test/powercut negative control). Skips the temp file's fsync; see the hazard above. */
export function skipFileSyncForPowerCutTest(skip: boolean): void {
  fileSyncSkippedForPowerCutTest = skip;
}

export type WriteStep = 'dir' | 'open' | 'write' | 'sync' | 'close' | 'rename' | 'syncdir' | 'unlink';

export function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function writeFailed(path: string, step: WriteStep, e: unknown, extra: Record<string, unknown> = {}): CicError {
  const errno = errnoOf(e) ?? 'EUNKNOWN';
  // The message names the step and errno only: never the data, which may be a secret.
  return new CicError('STORE_WRITE_FAILED', `writing ${path} failed at ${step}: ${errno}`, {
    cause: e,
    details: { path, errno, step, ...extra },
  });
}

/** Prefix of the temp files of `path` (shared with the readers that must ignore them). */
export function tempPrefix(path: string): string {
  return `${basename(path)}.tmp-`;
}

export function isTempOf(path: string, name: string): boolean {
  return name.startsWith(tempPrefix(path));
}

/** fsync on a directory: makes creations, renames and unlinks inside it durable. */
export async function syncDir(dir: string, fs: FsLayer = realFs): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch (e) {
    // EINVAL: this filesystem cannot sync directories (some FUSE/network mounts); there is
    // nothing stronger we could do there, and refusing to save would be worse.
    if (errnoOf(e) !== 'EINVAL') throw e;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Makes sure `dir` exists, is a directory and is private to its owner. Creates it (and missing
 * parents) with `dirMode`; throws STORE_PERMISSIONS when it exists with group/other bits.
 */
export async function ensurePrivateDir(dir: string, options: AtomicFileOptions = {}): Promise<void> {
  const fs = options.fs ?? realFs;
  let st: StatLike;
  try {
    st = await fs.stat(dir);
  } catch (e) {
    if (errnoOf(e) !== 'ENOENT') throw writeFailed(dir, 'dir', e);
    try {
      const first = await fs.mkdir(dir, { recursive: true, mode: options.dirMode ?? PRIVATE_DIR_MODE });
      // The new directory's own entry lives in its parent: sync that too, or a power cut can
      // take the directory (and the file we are about to put in it) away again.
      if (first !== undefined) await syncDir(dirname(first), fs);
      st = await fs.stat(dir);
    } catch (e2) {
      throw writeFailed(dir, 'dir', e2);
    }
  }
  if (!st.isDirectory()) throw writeFailed(dir, 'dir', Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
  if ((st.mode & GROUP_OTHER_BITS) !== 0) {
    throw new CicError('STORE_PERMISSIONS', `directory ${dir} is accessible to group/other (mode ${octal(st.mode)}); make it 0700`, {
      details: { path: dir, mode: octal(st.mode) },
    });
  }
}

export function octal(mode: number): string {
  return '0' + (mode & 0o777).toString(8).padStart(3, '0');
}

/** Removes temp files a crashed writer left next to `path`. Best effort; returns how many went. */
export async function removeStaleTemps(path: string, fs: FsLayer = realFs): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(dirname(path));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!isTempOf(path, name)) continue;
    try {
      await fs.unlink(join(dirname(path), name));
      removed++;
    } catch {
      // A leftover that cannot be removed (read-only fs) must not block the write itself.
    }
  }
  return removed;
}

/**
 * Replaces `path` with `data` atomically and durably. On any failure before the rename the
 * old file is untouched and the temp file is removed; the error is CicError
 * STORE_WRITE_FAILED with `details.errno` and `details.step`. A failure of the final directory
 * sync is reported with `details.renamed: true`: the new content is visible but may not
 * survive a power cut.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, options: AtomicFileOptions = {}): Promise<void> {
  const fs = options.fs ?? realFs;
  const dir = dirname(path);
  await ensurePrivateDir(dir, options);
  await removeStaleTemps(path, fs);

  // pid + random suffix: two processes (or a restarted one with a recycled pid) never share
  // a temp file; 'wx' refuses to follow a planted file or symlink.
  const tmp = join(dir, `${tempPrefix(path)}${process.pid}-${randomBytes(4).toString('hex')}`);
  let handle: FileHandleLike | undefined;
  let step: WriteStep = 'open';
  try {
    handle = await fs.open(tmp, 'wx', options.mode ?? PRIVATE_FILE_MODE);
    step = 'write';
    await handle.writeFile(data);
    step = 'sync';
    if (!fileSyncSkippedForPowerCutTest) await handle.sync();
    step = 'close';
    const h = handle;
    handle = undefined;
    await h.close();
    step = 'rename';
    await fs.rename(tmp, path);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    if (step !== 'open') await fs.unlink(tmp).catch(() => undefined);
    throw writeFailed(path, step, e);
  }
  try {
    await syncDir(dir, fs);
  } catch (e) {
    throw writeFailed(path, 'syncdir', e, { renamed: true });
  }
}

/** Removes `path` (and its leftover temp files) durably. Resolves false when nothing was there. */
export async function removeFileDurable(path: string, options: AtomicFileOptions = {}): Promise<boolean> {
  const fs = options.fs ?? realFs;
  let existed = true;
  try {
    await fs.unlink(path);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'ENOENT' || errno === 'ENOTDIR') existed = false;
    else throw writeFailed(path, 'unlink', e);
  }
  const temps = await removeStaleTemps(path, fs);
  if (!existed && temps === 0) return false;
  try {
    await syncDir(dirname(path), fs);
  } catch (e) {
    throw writeFailed(path, 'syncdir', e);
  }
  return existed;
}
