// The idle measurement: both contenders, a bare `node` and the bench bundle loaded without
// connecting idle side by side with the downchannel open. Memory, CPU and wakeups come from
// /proc over a window between the contenders' 1st and 2nd keepalive PING; system calls from
// `strace -c -f` over a second window, between the 2nd and 3rd.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaMode, ContenderKind } from './contender';
import type { BenchOptions } from './orchestrator';
import { activityDelta, readProcActivity, readProcMemory, type ProcActivity, type ProcMemory } from './proc';
import { sleep, start, type Child } from './spawn';

export const IDLE = ['runtime', 'baseline', 'bare', 'harness'] as const;
export type IdleName = (typeof IDLE)[number];

export interface IdleSample {
  mem: ProcMemory;
  activity: ProcActivity;
  /** Activity from "ready" to the window: start-up GC, stale start-up timers, the first PING. */
  settleActivity: ProcActivity;
  /** Actual lengths of the /proc window and of the strace window. */
  windowMs: number;
  straceMs: number;
  syscalls: number | undefined;
  syscallTop: string | undefined;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** `strace -c` summary: total calls and the three most frequent syscalls. */
function parseStrace(text: string): { calls: number; top: string } {
  const rows = text
    .split('\n')
    .map((l) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\S+)\s*$/.exec(l))
    .filter((m): m is RegExpExecArray => !!m && m[2] !== 'total')
    .map((m) => ({ calls: Number(m[1]), name: m[2]! }));
  rows.sort((x, y) => y.calls - x.calls);
  return { calls: rows.reduce((s, r) => s + r.calls, 0), top: rows.slice(0, 3).map((r) => `${r.name} ${r.calls}`).join(', ') };
}

const BARE_SCRIPT =
  "process.once('SIGUSR2',()=>{const m=process.memoryUsage(),c=process.cpuUsage();" +
  "process.stdout.write(JSON.stringify({idle:{heapUsed:m.heapUsed,heapTotal:m.heapTotal,external:m.external,arrayBuffers:m.arrayBuffers,rss:m.rss,cpuUs:c.user+c.system}})+'\\n');process.exit(0)});" +
  "setInterval(()=>{},1e9);process.stdout.write(JSON.stringify({ready:true})+'\\n')";

export async function idleRound(
  o: BenchOptions,
  r: number,
  clientCmd: (kind: ContenderKind | 'none', mode: string, caMode: CaMode, rep: number) => string[],
  node: string[],
  pinTo: (core: number) => string[],
  env: NodeJS.ProcessEnv,
  straceOk: boolean,
  scale: number,
  peak: (kind: ContenderKind, bytes: number) => void,
): Promise<Record<IdleName, IdleSample>> {
  // The two contenders, a bare `node` and the bench bundle alone idle side by side, in one window.
  const names = IDLE;
  const procs: Record<IdleName, Child> = {
    runtime: start(clientCmd('runtime', 'idle', 'pinned', r), env),
    baseline: start(clientCmd('baseline', 'idle', 'pinned', r), env),
    bare: start([...pinTo(1), ...node, '-e', BARE_SCRIPT], env),
    harness: start(clientCmd('none', 'idle', 'pinned', r), env),
  };
  const ready: Record<string, number> = {};
  for (const n of names) ready[n] = (await procs[n].line('ready', 60_000 * scale)).at;
  // Both contenders start their keepalive at Clova.Hello, just before their "ready" line.
  const first = Math.min(ready.runtime!, ready.baseline!);
  const last = Math.max(ready.runtime!, ready.baseline!);
  const P = o.idlePingIntervalMs;
  const until = (t: number) => sleep(Math.max(0, t - performance.now()));
  const s0 = Object.fromEntries(names.map((n) => [n, readProcActivity(procs[n].pid)]));
  await until(last + P + 1000); // the first PING is answered
  const a0 = Object.fromEntries(names.map((n) => [n, readProcActivity(procs[n].pid)]));
  const t0 = performance.now();
  await until(Math.min(t0 + o.idleSeconds * 1000, first + 2 * P - 1000)); // before the second PING
  const a1 = Object.fromEntries(names.map((n) => [n, readProcActivity(procs[n].pid)]));
  const windowMs = performance.now() - t0;
  const mem = Object.fromEntries(names.map((n) => [n, readProcMemory(procs[n].pid)]));

  const sys: Record<string, { calls: number; top: string } | undefined> = {};
  let straceMs = 0;
  if (straceOk && o.straceSeconds > 0) {
    // A separate window, between the second and the third PING: a tracer stops the tracee at
    // every syscall, which would inflate the wakeup and CPU figures above.
    await until(last + 2 * P + 500);
    const tracers = names.map((n) => ({ n, file: join(tmpdir(), `cic-bench-strace-${process.pid}-${n}.txt`) }));
    const running = tracers.map((t) => ({ ...t, c: start(['strace', '-c', '-f', '-p', String(procs[t.n].pid), '-o', t.file], env) }));
    const ts = performance.now();
    await until(Math.min(ts + 500 + o.straceSeconds * 1000, first + 3 * P - 500));
    straceMs = performance.now() - ts;
    for (const t of running) t.c.kill('SIGINT');
    for (const t of running) {
      await t.c.exited;
      const attached = /attached/.test(t.c.stderr());
      sys[t.n] = attached ? parseStrace(existsSync(t.file) ? readFileSync(t.file, 'utf8') : '') : undefined;
      rmSync(t.file, { force: true });
    }
  }

  const out = {} as Record<IdleName, IdleSample>;
  for (const n of names) {
    procs[n].kill('SIGUSR2');
    const { value } = await procs[n].line<{ idle: { heapUsed: number; heapTotal: number; external: number } }>('idle', 30_000 * scale);
    await procs[n].exited;
    out[n] = {
      mem: mem[n]!,
      activity: activityDelta(a0[n]!, a1[n]!),
      settleActivity: activityDelta(s0[n]!, a0[n]!),
      windowMs,
      straceMs,
      syscalls: sys[n]?.calls,
      syscallTop: sys[n]?.top,
      heapUsed: value.idle.heapUsed,
      heapTotal: value.idle.heapTotal,
      external: value.idle.external,
    };
    if (n === 'runtime' || n === 'baseline') peak(n, mem[n]!.hwm);
  }
  return out;
}
