// One contender in one process (`client` subcommand). The orchestrator spawns it, reads its
// JSON lines on stdout and, for idle runs, samples /proc/<pid> from outside.
//
//   cold  connect, print {"hello": ms since process start, ...} the moment Clova.Hello is in,
//         exit: the orchestrator times spawn → that line
//   load  sequential events, then events with `concurrency` in flight, then PINGs, then a
//         heap-accounting pass; prints one {"result": …} line
//   idle  connect, print {"ready": true}, do nothing until SIGUSR2, then print the heap and
//         CPU figures and exit
//
// CPU per event is process.cpuUsage() (user + system of every thread of this process) over
// the measured events only, warm-up excluded. Heap per event: see heapPass().
import { performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { readFileSync } from 'node:fs';
import type { CaMode, Contender, ContenderKind, ContenderOptions } from './contender';
import { percentile } from './stats';
import { BENCH_TOKEN } from './workload';

/** How much work a load client does; the orchestrator's options carry the same fields. */
export interface Workload {
  seqEvents: number;
  concEvents: number;
  concurrency: number;
  warmup: number;
  pingRounds: number;
  heapEvents: number;
  pingIntervalMs: number;
}

export interface ClientArgs extends Workload {
  /** 'none': the bench bundle loaded, no connection (the harness's own idle cost). */
  kind: ContenderKind | 'none';
  mode: 'cold' | 'load' | 'idle';
  url: string;
  caFile: string;
  caMode: CaMode;
}

export interface LoadResult {
  kind: ContenderKind | 'none';
  sequential: { events: number; cpuUsPerEvent: number; userUs: number; sysUs: number; wallUsPerEvent: number; p50Ms: number; p99Ms: number };
  concurrent: { events: number; concurrency: number; cpuUsPerEvent: number; wallUsPerEvent: number; p50Ms: number; p99Ms: number };
  ping: { count: number; p50Ms: number; p99Ms: number };
  heap: { events: number; bytesPerEvent: number; gcs: number; method: string };
  maxRssBytes: number;
  rssBytes: number;
  http2Loaded: boolean;
  nodeVersion: string;
  arch: string;
}

/** Whether node:http2 was loaded in this process (the runtime contender must not load it). */
function http2Loaded(): boolean {
  return ((process as unknown as { moduleLoadList?: string[] }).moduleLoadList ?? []).includes('NativeModule http2');
}

function out(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function makeContender(kind: ContenderKind, o: ContenderOptions): Contender {
  // Required lazily: the runtime process never loads node:http2, the baseline never loads
  // the runtime's modules or its addon.
  if (kind === 'runtime') return (require('./runtime-client') as typeof import('./runtime-client')).createRuntimeContender(o);
  return (require('./baseline-client') as typeof import('./baseline-client')).createBaselineContender(o);
}

async function expect204(p: Promise<number>): Promise<void> {
  const status = await p;
  if (status !== 204) throw new Error(`event answered ${status}, expected 204`);
}

async function sequential(c: Contender, n: number, lat?: Float64Array): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await expect204(c.sendEvent());
    if (lat) lat[i] = performance.now() - t;
  }
}

async function concurrent(c: Contender, n: number, inFlight: number, lat?: Float64Array): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const t = performance.now();
      await expect204(c.sendEvent());
      if (lat) lat[i] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
}

/**
 * JS heap bytes allocated per event. Every byte allocated during the pass is either still in
 * use at its end or was freed by one of the collections that ran in between, so
 *   allocated = used(end) − used(start) + Σ over GCs (used before − used after)
 * with the per-collection figures from v8.GCProfiler (Node ≥ 18.15). Checked against known
 * allocations (arrays of known size) to within 1 %.
 */
async function heapPass(c: Contender, n: number): Promise<LoadResult['heap']> {
  const profiler = new v8.GCProfiler();
  const used0 = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  await sequential(c, n);
  const used1 = v8.getHeapStatistics().used_heap_size;
  const stats = profiler.stop().statistics;
  let freed = 0;
  for (const s of stats) freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
  return { events: n, bytesPerEvent: (used1 - used0 + freed) / n, gcs: stats.length, method: 'v8.GCProfiler: used(end) - used(start) + sum(freed per GC)' };
}

async function load(c: Contender, a: ClientArgs): Promise<LoadResult> {
  await sequential(c, a.warmup);
  const seqLat = new Float64Array(a.seqEvents);
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  await sequential(c, a.seqEvents, seqLat);
  const seqWall = performance.now() - t0;
  const seqCpu = process.cpuUsage(cpu0);

  await concurrent(c, a.warmup, a.concurrency);
  const concLat = new Float64Array(a.concEvents);
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  await concurrent(c, a.concEvents, a.concurrency, concLat);
  const concWall = performance.now() - t0;
  const concCpu = process.cpuUsage(cpu0);

  const pingLat = new Float64Array(a.pingRounds);
  for (let i = 0; i < a.pingRounds; i++) {
    const t = performance.now();
    await c.ping();
    pingLat[i] = performance.now() - t;
  }

  const heap = await heapPass(c, a.heapEvents);
  return {
    kind: a.kind,
    sequential: {
      events: a.seqEvents,
      cpuUsPerEvent: (seqCpu.user + seqCpu.system) / a.seqEvents,
      userUs: seqCpu.user / a.seqEvents,
      sysUs: seqCpu.system / a.seqEvents,
      wallUsPerEvent: (seqWall * 1000) / a.seqEvents,
      p50Ms: percentile(seqLat, 50),
      p99Ms: percentile(seqLat, 99),
    },
    concurrent: {
      events: a.concEvents,
      concurrency: a.concurrency,
      cpuUsPerEvent: (concCpu.user + concCpu.system) / a.concEvents,
      wallUsPerEvent: (concWall * 1000) / a.concEvents,
      p50Ms: percentile(concLat, 50),
      p99Ms: percentile(concLat, 99),
    },
    ping: { count: a.pingRounds, p50Ms: percentile(pingLat, 50), p99Ms: percentile(pingLat, 99) },
    heap,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    rssBytes: process.memoryUsage.rss(),
    http2Loaded: http2Loaded(),
    nodeVersion: process.version,
    arch: process.arch,
  };
}

function idleUntilSignalled(): void {
  process.once('SIGUSR2', () => {
    const m = process.memoryUsage();
    const cpu = process.cpuUsage();
    out({ idle: { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, cpuUs: cpu.user + cpu.system } });
    process.exit(0);
  });
  out({ ready: true, pid: process.pid });
}

export async function clientMain(a: ClientArgs): Promise<void> {
  if (a.kind === 'none') {
    if (a.mode !== 'idle') throw new Error('client: --kind none is for --mode idle only');
    setInterval(() => {}, 1e9); // what keeps the process alive, as in the bare node
    idleUntilSignalled();
    return;
  }
  const c = makeContender(a.kind, {
    url: a.url,
    ca: readFileSync(a.caFile, 'utf8'),
    caMode: a.caMode,
    token: BENCH_TOKEN,
    pingIntervalMs: a.pingIntervalMs,
  });
  await c.connect();
  if (a.mode === 'cold') {
    // Pipes are synchronous on Linux: the line is out before exit.
    out({ hello: performance.now(), maxRssBytes: process.resourceUsage().maxRSS * 1024, http2Loaded: http2Loaded() });
    process.exit(0);
  }
  if (a.mode === 'idle') {
    idleUntilSignalled();
    return;
  }
  const result = await load(c, a);
  out({ result });
  await c.close();
  process.exit(0);
}
