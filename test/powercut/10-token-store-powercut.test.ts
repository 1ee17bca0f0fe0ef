// Power cuts during token saves. The SIGKILL crash tests (test/61-…, test/faults/40-…) keep the
// kernel's page cache, so a store that never fsyncs passes them. Here the token file lives on
// LazyFS, which holds written data in its own cache until fsync; a cut drops that cache, as
// losing power does. A real writer process (test/powercut/support/powercut-writer) saves new
// generations through the real TokenStore with real fsyncs, and power is cut at every step of
// a save:
//   - crash rules: LazyFS kills itself just before/after the temp file's create, write and
//     fsync and the rename over the token file; the writer sees the mount die
//     (ECONNABORTED/ENOTCONN/EIO) and is then killed;
//   - clear-cache: the writer is stopped between two file operations of a save (or right
//     after acknowledging it), killed, and the cache dropped;
//   - kill + clear-cache at a random moment while the writer saves back to back.
// After every cut the machine "reboots" (unmount, mount again over the same backing directory)
// and the real TokenStore loads the file: it must hold exactly the last acknowledged
// generation or the one in flight (never older, empty, corrupt, mixed or "recovered"), with
// the generation before it intact behind it. Acknowledged = the writer printed the save as
// done (fsync + rename + directory fsync returned) before the cut.
//
// Negative control: the same writer with its temp-file fsync skipped (the test seam in
// util/atomic-file) must lose tokens in this same harness, or the harness proves nothing.
//
// Blind spot: LazyFS caches file data only; create, rename and unlink reach the backing
// directory at once and fsync on a directory is a no-op there. A store that skipped the
// directory fsync after the rename would pass this suite — on ext4/ubifs it can come back
// with the old name after a cut. That step is covered by review and the module's hazard
// notes only.
//
//   CIC_POWERCUT_ROUNDS_PER_POINT (default 16), CIC_POWERCUT_LOOP_ROUNDS (default 64),
//   CIC_POWERCUT_NEGATIVE_ROUNDS_PER_POINT (default 4), CIC_POWERCUT_TIME_LIMIT_S (default 270),
//   CIC_POWERCUT_SEED, CIC_LAZYFS_BIN (default build/lazyfs/lazyfs/lazyfs)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '../../src/auth/token-store';
import { decodeTokens, scanFile } from '../../src/auth/token-record';
import { prng } from '../support/prng';
import { LazyFs, lazyfsBinary, type CrashOp } from './support/lazyfs';
import { PAUSE_POINTS, counterOf, tokensFor, type PausePoint } from './support/powercut-writer';

const PER_POINT = Number(process.env.CIC_POWERCUT_ROUNDS_PER_POINT ?? 16);
const LOOP_ROUNDS = Number(process.env.CIC_POWERCUT_LOOP_ROUNDS ?? 64);
const NEGATIVE_PER_POINT = Number(process.env.CIC_POWERCUT_NEGATIVE_ROUNDS_PER_POINT ?? 4);
const TIME_LIMIT_MS = Number(process.env.CIC_POWERCUT_TIME_LIMIT_S ?? 270) * 1000;
const SEED = Number(process.env.CIC_POWERCUT_SEED ?? 0x9c07);
const WRITER = join(__dirname, 'support', 'powercut-writer.js');
/** Bounds every wait on the writer: a line, a load, the exit after a kill. */
const LINE_TIMEOUT_MS = 10_000;
/** Saves before the cut save, so cuts also land on a later save of one process. */
const MAX_PRE_SAVES = 2;
/** Errnos a process sees from a FUSE mount whose daemon died under it. */
const DEAD_MOUNT_ERRNOS = ['ECONNABORTED', 'ENOTCONN', 'EIO'];
/** Backing-path regexes (LazyFS matches `.*RE.*` against the backing path). */
const TEMP_RGX = 'tokens\\.bin\\.tmp-';
const TARGET_RGX = '/tokens\\.bin$';

// NODE_EXTRA_CA_CERTS costs ~50 ms per Node start (it parses a whole CA bundle).
const childEnv = { ...process.env };
delete childEnv.NODE_EXTRA_CA_CERTS;

type Plan =
  | { name: string; kind: 'crash'; timing: 'before' | 'after'; op: CrashOp }
  | { name: string; kind: 'clear'; at: PausePoint }
  | { name: string; kind: 'loop' };

const CRASH_PLANS: Plan[] = (['create', 'write', 'fsync', 'rename'] as const).flatMap((op) =>
  (['before', 'after'] as const).map((timing): Plan => ({ name: `crash ${timing} ${op}`, kind: 'crash', timing, op })),
);
const CLEAR_PLANS: Plan[] = PAUSE_POINTS.map((at): Plan => ({ name: `clear-cache ${at}`, kind: 'clear', at }));
const LOOP_PLAN: Plan = { name: 'kill+clear-cache at random', kind: 'loop' };
const ALL_PLANS = [...CRASH_PLANS, ...CLEAR_PLANS, LOOP_PLAN];

/**
 * What the cut points must load with the real store: this checks that each cut landed on the
 * step it names. LazyFS writes a rename through at once, so from the rename on, the new file
 * (fsync'ed before the rename) is what survives.
 */
function placementExpected(plan: Plan): 'acked' | 'in-flight' | undefined {
  if (plan.kind === 'crash') return plan.op === 'rename' && plan.timing === 'after' ? 'in-flight' : 'acked';
  if (plan.kind === 'clear') return plan.at === 'after-rename' || plan.at === 'after-syncdir' ? 'in-flight' : 'acked';
  return undefined;
}

/** The writer child: one line-oriented conversation, every wait bounded. */
class Writer {
  private buf = '';
  private lines: string[] = [];
  private wake: (() => void) | undefined;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly closed: Promise<void>;
  stderr = '';

  constructor(
    private readonly proc: ChildProcess,
    readonly skipFileSync: boolean,
  ) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.wake?.();
    });
    proc.stderr!.on('data', (d) => (this.stderr += d));
    // A write to a writer that just died is EPIPE: its exit is reported through next().
    proc.stdin!.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      proc.on('error', (e) => (this.stderr += `spawn failed: ${e.message}\n`));
      proc.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.wake?.();
        resolve();
      });
    });
  }

  static spawn(path: string, salt: string, skipFileSync: boolean): Writer {
    const args = [WRITER, path, ...(skipFileSync ? ['--skip-file-sync'] : [])];
    return new Writer(spawn(process.execPath, args, { env: { ...childEnv, CIC_POWERCUT_SALT: salt }, stdio: ['pipe', 'pipe', 'pipe'] }), skipFileSync);
  }

  send(cmd: string): void {
    this.proc.stdin!.write(`${cmd}\n`);
  }

  /** The next complete line; rejects on timeout or when the writer exits first. */
  async next(what: string): Promise<string> {
    const deadline = Date.now() + LINE_TIMEOUT_MS;
    while (this.lines.length === 0) {
      if (this.exit) throw new Error(`writer exited (${this.exit.signal ?? this.exit.code}) before ${what}; stderr: ${this.stderr.trim()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`writer: no line within ${LINE_TIMEOUT_MS} ms (${what})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.lines.shift()!;
  }

  /** Complete lines received but not read yet (after a kill: everything the writer said). */
  rest(): string[] {
    return this.lines.splice(0);
  }

  /** SIGKILL (a no-op if already dead) and reap, bounded. */
  async kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exit) this.proc.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`writer pid ${this.proc.pid} not reaped within ${LINE_TIMEOUT_MS} ms of SIGKILL`)), LINE_TIMEOUT_MS))),
    ]).finally(() => clearTimeout(timer));
    return this.exit!;
  }
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${LINE_TIMEOUT_MS} ms`)), LINE_TIMEOUT_MS)))]).finally(() =>
    clearTimeout(timer),
  );
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

type LossKind = 'empty' | 'corrupt' | 'older' | 'other';
type Verdict = { outcome: 'acked' | 'in-flight'; generation: number } | { loss: LossKind; why: string };

interface Tally {
  rounds: number;
  acked: number;
  inFlight: number;
  losses: number;
}

test('power cuts at every step of a token save: after a reboot the store holds the acknowledged or the in-flight generation', async () => {
  const bin = lazyfsBinary();
  const dir = await mkdtemp(join(tmpdir(), 'cic-powercut-'));
  const lfs = new LazyFs(bin, dir);
  const onExit = () => lfs.killNow();
  process.on('exit', onExit);
  const storeDir = 'state';
  const mountPath = join(lfs.mnt, storeDir, 'tokens.bin');
  const backingPath = join(lfs.root, storeDir, 'tokens.bin');
  // Unique per run, so the runner's secret check searches the output for this run's tokens.
  const salt = randomBytes(4).toString('hex');
  const random = prng(SEED);
  const started = Date.now();
  let highest = 0; // the highest generation any writer or seed used
  let saveMsTotal = 0;
  let saveCount = 0;
  const tallies = new Map<string, Tally>();
  const negative = new Map<string, Tally>();
  const negativeLosses: Record<LossKind, number> = { empty: 0, corrupt: 0, older: 0, other: 0 };
  const crashErrnos = new Map<string, number>();
  let leftoverRounds = 0;
  let writer: Writer | undefined;
  /** The next round's writer, started during the reboot; it touches nothing before 'open'. */
  let spare: Writer | undefined;
  let planned = 0;
  let done = 0;

  /** Writes [g, g-1] straight into the backing directory (host fs, real fsync) while unmounted. */
  const seed = async (g: number) => {
    assert.ok(!lfs.running, 'seed only while unmounted');
    const store = new TokenStore({ path: backingPath });
    await store.save(tokensFor(salt, g - 1));
    await store.save(tokensFor(salt, g));
    highest = Math.max(highest, g);
  };

  /** After the reboot: loads through the mount and reads the backing bytes. */
  const judge = async (lastAck: number, inFlight: number | undefined): Promise<Verdict> => {
    const loaded = await withTimeout(new TokenStore({ path: mountPath }).load(), 'TokenStore.load after the reboot');
    if (loaded.state === 'empty') return { loss: 'empty', why: 'the store loads empty' };
    if (loaded.state !== 'ok') return { loss: 'corrupt', why: `the store loads ${loaded.state}: ${loaded.reason}` };
    const n = counterOf(salt, loaded.tokens);
    if (Number.isNaN(n)) return { loss: 'other', why: 'the store loads tokens that no save wrote (mixed generations)' };
    if (loaded.recovered || loaded.warning !== undefined) return { loss: 'other', why: `generation ${n} loaded as recovered=${loaded.recovered} (${loaded.warning ?? 'no warning'})` };
    if (n < lastAck) return { loss: 'older', why: `the store loads generation ${n}, but ${lastAck} was acknowledged` };
    if (n !== lastAck && n !== inFlight) return { loss: 'other', why: `the store loads generation ${n}; acknowledged ${lastAck}, in flight ${inFlight ?? 'none'}` };
    // The exact bytes on the backing device: [n, n-1], both intact, nothing else.
    const scan = scanFile(await readFile(backingPath));
    if (scan.kind !== 'slots') return { loss: 'corrupt', why: `backing file scans as ${scan.kind}` };
    const gens = scan.slots.map((s) => {
      const t = decodeTokens(s.payload);
      return typeof t === 'string' ? NaN : counterOf(salt, t);
    });
    if (gens.length !== 2 || gens[0] !== n || gens[1] !== n - 1 || scan.strayBytes !== 0) {
      return { loss: 'other', why: `backing file holds generations [${gens.join(', ')}] and ${scan.strayBytes} stray bytes; expected [${n}, ${n - 1}]` };
    }
    const temps = (await readdir(join(lfs.root, storeDir))).filter((f) => f !== 'tokens.bin');
    // One cut leaves at most one temp; the next save removes it. More means cleanup broke.
    if (temps.length > 1) return { loss: 'other', why: `${temps.length} temp files next to the token file` };
    if (temps.length) leftoverRounds++;
    return { outcome: n === lastAck ? 'acked' : 'in-flight', generation: n };
  };

  const loopDelay = () => {
    // A span of a few saves, measured here (FUSE costs differ a lot between machines).
    const perSave = saveCount ? saveMsTotal / saveCount : 5;
    return random() * perSave * 4;
  };

  /** One round on a booted LazyFS holding `baseline`: cut, reboot, judge. */
  const round = async (plan: Plan, pre: number, baseline: number, skipFileSync: boolean, where: string): Promise<Verdict> => {
    let w = spare;
    spare = undefined;
    if (!w || w.skipFileSync !== skipFileSync) {
      await w?.kill();
      w = Writer.spawn(mountPath, salt, skipFileSync);
    }
    writer = w;
    w.send('open');
    assert.is(await w.next('start'), `start ${baseline}`, `${where}: the writer starts from the verified generation`);
    let lastAck = baseline;
    for (let i = 0; i < pre; i++) {
      const t0 = performance.now();
      w.send('save');
      assert.is(await w.next('a save before the cut'), `ack ${lastAck + 1}`, `${where}: save before the cut`);
      saveMsTotal += performance.now() - t0;
      saveCount++;
      lastAck++;
    }
    let inFlight: number | undefined = lastAck + 1;
    if (plan.kind === 'crash') {
      if (plan.op === 'rename') await lfs.armCrash(plan.timing, 'rename', TEMP_RGX, TARGET_RGX);
      else await lfs.armCrash(plan.timing, plan.op, TEMP_RGX);
      w.send('save');
      const l = await w.next('the save cut by the crash rule');
      const m = /^fail (\d+) (\S+) (\S+)$/.exec(l);
      if (!m) assert.unreachable(`${where}: the crash rule did not stop the save: writer said "${l}"`);
      else {
        assert.is(Number(m[1]), inFlight, `${where}: failed generation`);
        assert.ok(DEAD_MOUNT_ERRNOS.includes(m[3]!), `${where}: the writer saw ${m[3]} at ${m[2]}, not a dead mount (${DEAD_MOUNT_ERRNOS.join('/')})`);
        const key = `${m[2]} ${m[3]}`;
        crashErrnos.set(key, (crashErrnos.get(key) ?? 0) + 1);
      }
      const exit = await lfs.waitExit();
      assert.is(exit.signal, 'SIGKILL', `${where}: LazyFS must have died by its crash rule (exit ${exit.code})`);
      const wexit = await w.kill();
      assert.is(wexit.signal, 'SIGKILL', `${where}: the writer must still be alive until killed (exit ${wexit.code}); stderr: ${w.stderr.trim()}`);
    } else if (plan.kind === 'clear') {
      const cut = lastAck + 1;
      w.send(`pause ${plan.at}`);
      let l = await w.next(`the pause at ${plan.at}`);
      if (plan.at === 'acked') {
        assert.is(l, `ack ${cut}`, `${where}: acknowledgement`);
        lastAck = cut;
        inFlight = undefined;
        l = await w.next('the pause after the acknowledgement');
      }
      assert.is(l, `paused ${plan.at} ${cut}`, `${where}: the writer stops at the cut point`);
      const wexit = await w.kill();
      assert.is(wexit.signal, 'SIGKILL', `${where}: writer exit`);
      await lfs.clearCache();
    } else {
      const delay = loopDelay();
      w.send('loop');
      // The timer is the random moment of the cut, not a wait for anything.
      await new Promise((r) => setTimeout(r, delay));
      const wexit = await w.kill();
      assert.is(wexit.signal, 'SIGKILL', `${where}: writer exit; stderr: ${w.stderr.trim()}`);
      for (const l of w.rest()) {
        assert.is(l, `ack ${lastAck + 1}`, `${where}: acknowledgements in order`);
        lastAck++;
      }
      inFlight = lastAck + 1;
      await lfs.clearCache();
    }
    writer = undefined;
    assert.is(w.stderr, '', `${where}: writer stderr`);
    spare = Writer.spawn(mountPath, salt, skipFileSync);
    highest = Math.max(highest, lastAck + 1);
    // Reboot: unmounting never flushes LazyFS's cache, so this is part of the cut as well.
    await lfs.stop();
    await lfs.start();
    return judge(lastAck, inFlight);
  };

  const count = (map: Map<string, Tally>, plan: Plan, v: Verdict) => {
    const t = map.get(plan.name) ?? { rounds: 0, acked: 0, inFlight: 0, losses: 0 };
    t.rounds++;
    if ('loss' in v) t.losses++;
    else if (v.outcome === 'acked') t.acked++;
    else t.inFlight++;
    map.set(plan.name, t);
  };

  const overTime = () => Date.now() - started > TIME_LIMIT_MS;

  try {
    // ---- the real store: every cut point, seeded schedule ----
    const schedule = shuffle(
      [...[...CRASH_PLANS, ...CLEAR_PLANS].flatMap((p) => Array.from({ length: PER_POINT }, () => p)), ...Array.from({ length: LOOP_ROUNDS }, () => LOOP_PLAN)],
      random,
    ).map((plan) => ({ plan, pre: Math.floor(random() * (MAX_PRE_SAVES + 1)) }));
    const negSchedule = shuffle(
      [CLEAR_PLANS.find((p) => p.kind === 'clear' && p.at === 'acked')!, CLEAR_PLANS.find((p) => p.kind === 'clear' && p.at === 'after-rename')!, CRASH_PLANS.find((p) => p.kind === 'crash' && p.op === 'rename' && p.timing === 'after')!, LOOP_PLAN].flatMap(
        (p) => Array.from({ length: NEGATIVE_PER_POINT }, () => p),
      ),
      random,
    ).map((plan) => ({ plan, pre: Math.floor(random() * (MAX_PRE_SAVES + 1)) }));
    planned = schedule.length + negSchedule.length;

    await seed(2);
    await lfs.start();
    let baseline = 2;
    for (const [i, { plan, pre }] of schedule.entries()) {
      if (overTime()) break;
      const where = `round ${i + 1} "${plan.name}", ${pre} saves before (seed ${SEED})`;
      const v = await round(plan, pre, baseline, false, where);
      if ('loss' in v) assert.unreachable(`${where}: ${v.why}`);
      else {
        const expected = placementExpected(plan);
        if (expected) assert.is(v.outcome, expected, `${where}: the cut did not land on the step it names`);
        baseline = v.generation;
      }
      count(tallies, plan, v);
      done++;
    }

    // ---- negative control: the same writer without the temp file's fsync ----
    for (const [i, { plan, pre }] of negSchedule.entries()) {
      if (overTime()) break;
      // Each round starts from a durable, known file: a loss must not carry into the next.
      await lfs.stop();
      baseline = highest + 2;
      await seed(baseline);
      await lfs.start();
      const where = `negative-control round ${i + 1} "${plan.name}", ${pre} saves before (seed ${SEED})`;
      const v = await round(plan, pre, baseline, true, where);
      if ('loss' in v) negativeLosses[v.loss]++;
      count(negative, plan, v);
      done++;
    }
  } finally {
    if (writer) await writer.kill().catch(() => undefined);
    if (spare) await spare.kill().catch(() => undefined);
    if (process.env.CIC_TEST_SECRETS_LOG && highest > 0) {
      const issued: string[] = [];
      for (let n = 1; n <= highest; n++) {
        const t = tokensFor(salt, n);
        issued.push(t.accessToken, t.refreshToken);
      }
      appendFileSync(process.env.CIC_TEST_SECRETS_LOG, `${issued.join('\n')}\n`);
    }
    const elapsed = (Date.now() - started) / 1000;
    const row = (name: string, t: Tally) => `  ${name.padEnd(30)} ${String(t.rounds).padStart(4)} rounds: acknowledged ${t.acked}, in-flight ${t.inFlight}, lost ${t.losses}`;
    const negTotal = [...negative.values()].reduce((a, t) => a + t.rounds, 0);
    const negLost = [...negative.values()].reduce((a, t) => a + t.losses, 0);
    console.log(
      [
        `power-cut test: ${done} of ${planned} rounds in ${elapsed.toFixed(1)} s (seed ${SEED}), ${lfs.boots} LazyFS boots, ` +
          `a save through LazyFS takes ≈${saveCount ? (saveMsTotal / saveCount).toFixed(1) : '?'} ms; generation loaded after each cut and reboot:`,
        ...ALL_PLANS.filter((p) => tallies.has(p.name)).map((p) => row(p.name, tallies.get(p.name)!)),
        `  crash rules: the writer saw ${[...crashErrnos.entries()].map(([k, v]) => `${k} ×${v}`).join(', ') || 'nothing'}; ${leftoverRounds} rounds left a temp file`,
        `negative control (temp file not fsync'ed): ${negLost} of ${negTotal} rounds lost tokens ` +
          `(empty ${negativeLosses.empty}, corrupt ${negativeLosses.corrupt}, older than acknowledged ${negativeLosses.older}, other ${negativeLosses.other})`,
        ...ALL_PLANS.filter((p) => negative.has(p.name)).map((p) => row(p.name, negative.get(p.name)!)),
      ].join('\n'),
    );
    try {
      await lfs.stop();
    } finally {
      process.off('exit', onExit);
      lfs.killNow();
    }
    await rm(dir, { recursive: true, force: true });
  }
  assert.is(done, planned, `only ${done} of ${planned} rounds within ${TIME_LIMIT_MS / 1000} s`);
  const negLost = [...negative.values()].reduce((a, t) => a + t.losses, 0);
  assert.ok(negLost > 0, 'negative control: without the temp file fsync no round lost tokens — this harness cannot see a missing fsync');
});

test.run();
