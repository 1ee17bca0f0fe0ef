// LazyFS (FUSE, vendored in ../shared/tools/lazyfs, built into build/lazyfs) as a power-cut
// simulator: it keeps written file data in its own cache until the writer fsyncs it, so
// dropping that cache — or killing the daemon — loses exactly what a power cut would lose.
// Everything here is bounded: a dead or wedged LazyFS fails the test with its log tail, it
// never hangs it. The LazyFS log holds paths and sizes only, never file contents.
//
// Hazards handled here (see ../shared/tools/lazyfs/USAGE.md):
// - Fault commands are asynchronous, and two commands read from the fifo in one go become one
//   unknown command: one command at a time, each followed by a wait for its own log line.
// - A crash rule is logged *before* it is installed: a later command's log line is the only
//   proof that the fault worker has finished installing it.
// - Opening the fifo for writing blocks forever once LazyFS is dead: O_NONBLOCK, where a dead
//   reader is ENXIO instead of a hang.
// - A crashed LazyFS leaves a dead mount (ENOTCONN) until it is unmounted; unmounting never
//   flushes the cache (a clean unmount is a power cut too).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

// Compiled to build/ts/test/powercut/support: five levels below the project.
const ROOT = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..', '..', '..');
const BUILD_HINT = 'build it with `bash ../shared/tools/lazyfs/build.sh build/lazyfs` from the project directory (root; installs fuse3 and the build packages), or point CIC_LAZYFS_BIN at a lazyfs binary';

/** Cache size: far above what a test writes, or the excess is written through and survives a cut. */
const CACHE_SIZE = '8mb';
const START_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 5_000;
const EXIT_TIMEOUT_MS = 5_000;

/** The lazyfs binary, or an Error that says how to get one. Never a skip: a missing tool is a failure. */
export function lazyfsBinary(): string {
  const bin = process.env.CIC_LAZYFS_BIN || join(ROOT, 'build', 'lazyfs', 'lazyfs', 'lazyfs');
  if (!existsSync(bin)) throw new Error(`LazyFS is not built (no ${bin}): ${BUILD_HINT}`);
  if (!existsSync('/dev/fuse')) throw new Error('LazyFS needs /dev/fuse, which this machine does not have');
  if (spawnSync('fusermount3', ['-V'], { encoding: 'utf8' }).error) throw new Error(`fusermount3 is missing (Debian package fuse3): ${BUILD_HINT}`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new Error('LazyFS mounts need root here (CI runs as root)');
  return bin;
}

function isMounted(dir: string): boolean {
  // Field 5 of /proc/self/mountinfo is the mount point (octal escapes for blanks; our paths have none).
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);
}

function unmount(dir: string, lazy: boolean): { ok: boolean; why: string } {
  const r = spawnSync('fusermount3', ['-u', ...(lazy ? ['-z'] : []), dir], { encoding: 'utf8', timeout: EXIT_TIMEOUT_MS });
  return { ok: r.status === 0, why: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}

export type CrashOp = 'create' | 'write' | 'fsync' | 'rename' | 'unlink';

/**
 * One LazyFS daemon over `<dir>/root`, mounted at `<dir>/mnt`. `start()` again after `stop()`
 * or a crash is a reboot: same backing directory, empty cache.
 */
export class LazyFs {
  readonly root: string;
  readonly mnt: string;
  private readonly fifo: string;
  private readonly config: string;
  private proc: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private out = '';
  private waiters = new Set<() => void>();
  /** Mounts started so far (each one a boot). */
  boots = 0;

  constructor(private readonly bin: string, dir: string) {
    this.root = join(dir, 'root');
    this.mnt = join(dir, 'mnt');
    this.fifo = join(dir, 'faults.fifo');
    this.config = join(dir, 'lazyfs.toml');
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    mkdirSync(this.mnt, { recursive: true, mode: 0o700 });
    writeFileSync(
      this.config,
      [
        '[faults]',
        `fifo_path="${this.fifo}"`,
        '[cache]',
        'apply_eviction=false',
        '[cache.simple]',
        `custom_size="${CACHE_SIZE}"`,
        'blocks_per_page=1',
        '[filesystem]',
        'log_all_operations=false',
        'logfile=""',
        '',
      ].join('\n'),
    );
  }

  get running(): boolean {
    return this.proc !== undefined && this.exit === undefined;
  }

  /** The last lines of this boot's log, for failure messages. */
  tail(lines = 15): string {
    return this.out.trimEnd().split('\n').slice(-lines).join('\n');
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('LazyFS is already running');
    if (isMounted(this.mnt)) throw new Error(`${this.mnt} is still mounted from an earlier boot`);
    this.out = '';
    this.exit = undefined;
    const proc = spawn(this.bin, [this.mnt, '--config-path', this.config, '-o', 'allow_other', '-o', 'modules=subdir', '-o', `subdir=${this.root}`, '-f'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.boots++;
    const onData = (d: Buffer) => {
      this.out += d.toString('utf8');
      for (const w of this.waiters) w();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => {
      proc.on('error', (e) => {
        this.out += `\nspawn failed: ${e.message}\n`;
      });
      proc.on('close', (code, signal) => {
        this.exit = { code, signal };
        for (const w of this.waiters) w();
        resolve(this.exit);
      });
    });
    // The fault worker starts in FUSE's init callback, which runs only once the kernel mount exists.
    await this.waitLog(0, /waiting for fault commands/, START_TIMEOUT_MS, 'start');
    if (!isMounted(this.mnt)) throw new Error(`LazyFS started but ${this.mnt} is not mounted\n${this.tail()}`);
  }

  /** Waits for `re` in the log after offset `from`; fails on timeout or if LazyFS exits first. */
  private waitLog(from: number, re: RegExp, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (re.test(this.out.slice(from))) done();
        else if (this.exit) done(new Error(`LazyFS exited (${this.exit.signal ?? this.exit.code}) while waiting for ${what}\n${this.tail()}`));
      };
      const timer = setTimeout(() => done(new Error(`LazyFS: no ${re} within ${timeoutMs} ms (${what})\n${this.tail()}`)), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Sends one fault command and waits for the log line that says it was carried out. */
  private async command(cmd: string, doneLine: RegExp): Promise<void> {
    if (Buffer.byteLength(cmd) > 95) throw new Error(`LazyFS command too long (${cmd.length} bytes): ${cmd}`);
    if (!this.running) throw new Error(`LazyFS is not running; cannot send ${cmd}`);
    const from = this.out.length;
    let fd: number;
    try {
      fd = openSync(this.fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      throw new Error(`LazyFS fault fifo has no reader (${(e as NodeJS.ErrnoException).code}); is LazyFS dead?\n${this.tail()}`);
    }
    try {
      writeSync(fd, `${cmd}\n`);
    } finally {
      closeSync(fd);
    }
    await this.waitLog(from, doneLine, COMMAND_TIMEOUT_MS, cmd);
  }

  /** The power cut: drops every byte not fsync'ed. The filesystem stays mounted. */
  async clearCache(): Promise<void> {
    await this.command('lazyfs::clear-cache', /cache is cleared/);
  }

  /**
   * Arms a crash rule: LazyFS SIGKILLs itself (losing its cache) just before/after the next
   * `op` whose backing path matches `.*fromRgx.*` (for rename: whose target matches `toRgx`).
   * Resolves once the rule is installed.
   */
  async armCrash(timing: 'before' | 'after', op: CrashOp, fromRgx: string, toRgx?: string): Promise<void> {
    const twoPath = op === 'rename';
    if (twoPath !== (toRgx !== undefined)) throw new Error(`crash rule for ${op}: to_rgx ${twoPath ? 'required' : 'not allowed'}`);
    const from = this.out.length;
    await this.command(`lazyfs::crash::timing=${timing}::op=${op}::from_rgx=${fromRgx}${twoPath ? `::to_rgx=${toRgx}` : ''}`, twoPath ? /=> crash: to regex path/ : /=> crash: from regex path/);
    if (/INVALID crash fault/.test(this.out.slice(from))) throw new Error(`LazyFS rejected the crash rule\n${this.tail()}`);
    // The rule's log lines come before it is added; a second command is handled only after.
    await this.command('lazyfs::display-cache-usage', /cache usage/);
  }

  /** Resolves when LazyFS has exited (e.g. killed by a crash rule); rejects after `timeoutMs`. */
  async waitExit(timeoutMs = EXIT_TIMEOUT_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exited) throw new Error('LazyFS was never started');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`LazyFS did not exit within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Unmounts and waits for the daemon to end. After a crash the mount is dead and is detached
   * lazily. Unmounting does not flush: whatever is unsynced is lost here as well.
   */
  async stop(): Promise<void> {
    if (this.running) {
      const u = unmount(this.mnt, false);
      if (!u.ok) {
        // Busy or wedged: detach it, then end the daemon (our own child, by pid).
        unmount(this.mnt, true);
        this.proc?.kill('SIGKILL');
      }
      await this.waitExit();
    }
    if (isMounted(this.mnt)) {
      const u = unmount(this.mnt, true);
      if (!u.ok || isMounted(this.mnt)) throw new Error(`cannot unmount ${this.mnt}: ${u.why}`);
    }
  }

  /** Last-resort cleanup for process exit paths: synchronous, never throws. */
  killNow(): void {
    try {
      if (this.running) this.proc?.kill('SIGKILL');
      if (isMounted(this.mnt)) unmount(this.mnt, true);
    } catch {
      // Exit path: nothing left to report to.
    }
  }
}
