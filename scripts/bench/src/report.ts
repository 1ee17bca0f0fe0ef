// Figures from the raw repetitions: a table on stdout, JSON for machines, and an SVG chart of
// the headline ratios (runtime ÷ node:http2, per repetition, median with min–max).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ContenderKind } from './contender';
import type { RepResult } from './orchestrator';
import { percentile, summarize, type Summary } from './stats';
import { ratioChart } from './svg';

export interface BenchRun {
  meta: Record<string, unknown> & { sizes: Record<string, { bytes: number; gzipBytes: number; path: string } | undefined> };
  reps: RepResult[];
}

type Get = (rep: RepResult) => number | undefined;
type Target = { ratioMax: number; ref?: string } | { zero: true } | { max: number };

interface MetricSpec {
  id: string;
  label: string;
  unit: string;
  /** raw value ÷ div = shown value */
  div?: number;
  get: (rep: RepResult, kind: ContenderKind) => number | undefined;
  bare?: Get;
  h2load?: Get;
  target?: Target;
  ratio?: boolean;
}

const MiB = 1024 * 1024;

/** The service phase has no node:http2 counterpart: runtime column only, medians of the rep's samples. */
const svc = (f: (s: NonNullable<RepResult['service']>) => number) => (r: RepResult, k: ContenderKind) => (k === 'runtime' && r.service ? f(r.service) : undefined);
const p50 = (xs: number[]) => percentile(xs, 50);

const METRICS: MetricSpec[] = [
  { id: 'cold_system_ms', label: 'cold start → Clova.Hello, system CA store', unit: 'ms', get: (r, k) => r.cold.system[k]?.ms, bare: (r) => r.coldBare, ratio: true, target: { ratioMax: 0.75, ref: 'node:http2 77 ms' } },
  { id: 'cold_pinned_ms', label: 'cold start → Clova.Hello, pinned CA file', unit: 'ms', get: (r, k) => r.cold.pinned[k]?.ms, bare: (r) => r.coldBare, ratio: true, target: { ratioMax: 0.75, ref: 'node:http2 77 ms' } },
  { id: 'cold_warm_ms', label: 'cold start → Clova.Hello, pinned CA, warm compile cache', unit: 'ms', get: (r, k) => r.coldWarm?.[k]?.ms, ratio: true, target: { ratioMax: 0.75 } },
  // The command line's `--version` in the runtime column against `node -e 0` in the other.
  { id: 'version_ms', label: '`--version` (runtime) vs `node -e 0` (node:http2 column)', unit: 'ms', get: (r, k) => (k === 'runtime' ? r.version?.cli : r.version?.bare), ratio: true, target: { ratioMax: 1.15 } },
  { id: 'version_warm_ms', label: '`--version`, warm compile cache, vs `node -e 0`', unit: 'ms', get: (r, k) => (k === 'runtime' ? r.version?.cliWarm : r.version?.bare), ratio: true, target: { ratioMax: 1.15 } },
  { id: 'seq_cpu_us', label: 'CPU per event, sequential', unit: 'µs', get: (r, k) => r.load?.[k].sequential.cpuUsPerEvent, h2load: (r) => r.h2load?.sequential.cpuUsPerRequest, ratio: true, target: { ratioMax: 0.5, ref: 'node:http2 159 µs, h2load 37 µs' } },
  { id: 'seq_p50_ms', label: 'latency p50, sequential (h2load: mean)', unit: 'ms', get: (r, k) => r.load?.[k].sequential.p50Ms, h2load: (r) => r.h2load?.sequential.meanMs, ratio: true },
  { id: 'seq_p99_ms', label: 'latency p99, sequential', unit: 'ms', get: (r, k) => r.load?.[k].sequential.p99Ms, ratio: true },
  { id: 'conc_cpu_us', label: 'CPU per event, 16 in flight', unit: 'µs', get: (r, k) => r.load?.[k].concurrent.cpuUsPerEvent, h2load: (r) => r.h2load?.concurrent.cpuUsPerRequest, ratio: true, target: { ratioMax: 0.4, ref: 'node:http2 70 µs, h2load 9.7 µs' } },
  { id: 'conc_p50_ms', label: 'latency p50, 16 in flight (h2load: mean)', unit: 'ms', get: (r, k) => r.load?.[k].concurrent.p50Ms, h2load: (r) => r.h2load?.concurrent.meanMs, ratio: true },
  { id: 'conc_p99_ms', label: 'latency p99, 16 in flight', unit: 'ms', get: (r, k) => r.load?.[k].concurrent.p99Ms, ratio: true },
  { id: 'heap_per_event_kib', label: 'JS heap allocated per event', unit: 'KiB', div: 1024, get: (r, k) => r.load?.[k].heap.bytesPerEvent, ratio: true, target: { ratioMax: 0.25, ref: 'node:http2 ≈14.6 KB' } },
  { id: 'ping_p50_ms', label: 'PING RTT p50', unit: 'ms', get: (r, k) => r.load?.[k].ping.p50Ms, ratio: true },
  { id: 'ping_p99_ms', label: 'PING RTT p99', unit: 'ms', get: (r, k) => r.load?.[k].ping.p99Ms, ratio: true },
  { id: 'idle_rss_mib', label: 'idle RSS', unit: 'MiB', div: MiB, get: (r, k) => r.idle?.[k].mem.rss, bare: (r) => r.idle?.bare.mem.rss, ratio: true, target: { ratioMax: 1, ref: 'node:http2 46 MB' } },
  { id: 'idle_rss_anon_mib', label: 'idle RssAnon', unit: 'MiB', div: MiB, get: (r, k) => r.idle?.[k].mem.rssAnon, bare: (r) => r.idle?.bare.mem.rssAnon, ratio: true },
  {
    id: 'idle_anon_above_bare_mib', label: 'idle RssAnon above bare node', unit: 'MiB', div: MiB,
    get: (r, k) => (r.idle ? r.idle[k].mem.rssAnon - r.idle.bare.mem.rssAnon : undefined), ratio: true,
    target: { ratioMax: 0.6, ref: 'node:http2 7.8 − bare 5.2 MB' },
  },
  {
    // The bench bundle itself (parsed, its harness running) costs both contenders the same;
    // without it the increments are what each client's job costs.
    id: 'idle_anon_above_harness_mib', label: 'idle RssAnon above the bench bundle alone', unit: 'MiB', div: MiB,
    get: (r, k) => (r.idle ? r.idle[k].mem.rssAnon - r.idle.harness.mem.rssAnon : undefined),
    bare: (r) => (r.idle ? r.idle.harness.mem.rssAnon - r.idle.bare.mem.rssAnon : undefined), ratio: true,
  },
  { id: 'idle_rss_file_mib', label: 'idle RssFile (file-backed)', unit: 'MiB', div: MiB, get: (r, k) => r.idle?.[k].mem.rssFile, bare: (r) => r.idle?.bare.mem.rssFile, ratio: true },
  { id: 'idle_pss_mib', label: 'idle PSS', unit: 'MiB', div: MiB, get: (r, k) => r.idle?.[k].mem.pss, bare: (r) => r.idle?.bare.mem.pss, ratio: true },
  { id: 'idle_pss_anon_mib', label: 'idle Pss_Anon', unit: 'MiB', div: MiB, get: (r, k) => r.idle?.[k].mem.pssAnon, bare: (r) => r.idle?.bare.mem.pssAnon, ratio: true },
  { id: 'idle_heap_used_mib', label: 'idle JS heap used', unit: 'MiB', div: MiB, get: (r, k) => r.idle?.[k].heapUsed, bare: (r) => r.idle?.bare.heapUsed, ratio: true },
  { id: 'idle_cpu_ms', label: 'idle CPU between two PINGs', unit: 'ms', div: 1e6, get: (r, k) => r.idle?.[k].activity.cpuNs, bare: (r) => r.idle?.bare.activity.cpuNs },
  { id: 'idle_wakeups', label: 'idle wakeups between two PINGs (schedstat runs)', unit: '', get: (r, k) => r.idle?.[k].activity.runs, bare: (r) => r.idle?.bare.activity.runs, target: { zero: true } },
  { id: 'idle_settle_wakeups', label: 'wakeups from Hello to the window (GC, 1st PING)', unit: '', get: (r, k) => r.idle?.[k].settleActivity.runs, bare: (r) => r.idle?.bare.settleActivity.runs },
  { id: 'idle_ctx_switches', label: 'idle context switches between two PINGs', unit: '', get: (r, k) => r.idle?.[k].activity.ctxSwitches, bare: (r) => r.idle?.bare.activity.ctxSwitches },
  { id: 'idle_syscalls', label: 'idle syscalls between two PINGs (strace -c -f)', unit: '', get: (r, k) => r.idle?.[k].syscalls, bare: (r) => r.idle?.bare.syscalls, target: { zero: true } },
  { id: 'service_first_byte_ms', label: 'service: attachment first byte on the wire → out of the socket, p50', unit: 'ms', get: svc((s) => p50(s.firstByteMs)), target: { max: 5 } },
  { id: 'service_first_byte_p99_ms', label: 'service: attachment first byte on the wire → out of the socket, p99', unit: 'ms', get: svc((s) => percentile(s.firstByteMs, 99)) },
  { id: 'service_rss_idle_mib', label: 'service: RSS idle (after Hello)', unit: 'MiB', div: MiB, get: svc((s) => s.rss.idle) },
  { id: 'service_rss_peak_mib', label: 'service: peak RSS, 10 MiB attachment to a slow socket reader', unit: 'MiB', div: MiB, get: svc((s) => s.rss.peak) },
  { id: 'service_rss_growth_mib', label: 'service: peak RSS − idle', unit: 'MiB', div: MiB, get: svc((s) => s.rss.peak - s.rss.idle), target: { max: 2 } },
  { id: 'service_rss_growth_warm_mib', label: 'service: peak RSS − RSS after a 64 KiB warm-up attachment', unit: 'MiB', div: MiB, get: svc((s) => s.rss.peak - s.rss.beforeTransfer) },
  { id: 'service_audio_ms', label: 'service: audio-chunk into the socket → DATA at the server, p50', unit: 'ms', get: svc((s) => p50(s.audioMs)) },
  { id: 'service_audio_p99_ms', label: 'service: audio-chunk into the socket → DATA at the server, p99', unit: 'ms', get: svc((s) => percentile(s.audioMs, 99)) },
  { id: 'peak_rss_mib', label: 'peak RSS over the whole run', unit: 'MiB', div: MiB, get: (r, k) => r.peakRssBytes[k] || undefined, ratio: true, target: { ratioMax: 0.7, ref: 'node:http2 97 MB' } },
];

export interface MetricResult {
  id: string;
  label: string;
  unit: string;
  runtime: Summary;
  baseline: Summary;
  bare?: Summary;
  h2load?: Summary;
  ratio?: Summary;
  ratioToH2load?: Summary;
  target?: string;
  met?: boolean;
  verdict?: string;
}

function defined(xs: Array<number | undefined>): number[] {
  return xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
}

export function computeMetrics(reps: RepResult[]): MetricResult[] {
  const out: MetricResult[] = [];
  for (const m of METRICS) {
    const d = m.div ?? 1;
    const col = (f: Get) => summarize(defined(reps.map((r) => f(r))).map((v) => v / d));
    const runtime = col((r) => m.get(r, 'runtime'));
    const baseline = col((r) => m.get(r, 'baseline'));
    if (runtime.values.length === 0 && baseline.values.length === 0) continue;
    const res: MetricResult = { id: m.id, label: m.label, unit: m.unit, runtime, baseline };
    if (m.bare) res.bare = col(m.bare);
    if (m.h2load) {
      const h = col(m.h2load);
      if (h.values.length) {
        res.h2load = h;
        if (m.unit === 'µs') {
          res.ratioToH2load = summarize(defined(reps.map((r) => {
            const a = m.get(r, 'runtime');
            const b = m.h2load!(r);
            return a !== undefined && b ? a / b : undefined;
          })));
        }
      }
    }
    if (m.ratio) {
      res.ratio = summarize(defined(reps.map((r) => {
        const a = m.get(r, 'runtime');
        const b = m.get(r, 'baseline');
        return a !== undefined && b !== undefined && b !== 0 ? a / b : undefined;
      })));
    }
    if (m.target && 'ratioMax' in m.target && res.ratio && res.ratio.values.length) {
      res.target = `≤ ${m.target.ratioMax}×${m.target.ref ? ` [${m.target.ref}]` : ''}`;
      res.met = res.ratio.median <= m.target.ratioMax;
      res.verdict = res.met ? 'met' : `MISSED by ${(((res.ratio.median - m.target.ratioMax) / m.target.ratioMax) * 100).toFixed(0)} %`;
    } else if (m.target && 'max' in m.target && runtime.values.length) {
      res.target = `≤ ${m.target.max} ${m.unit} (runtime)`;
      res.met = runtime.median <= m.target.max;
      res.verdict = res.met ? 'met' : `MISSED (${fmt(runtime.median)})`;
    } else if (m.target && 'zero' in m.target && runtime.values.length) {
      res.target = '0 (runtime)';
      res.met = runtime.max === 0;
      res.verdict = res.met ? 'met' : `MISSED (${fmt(runtime.median)})`;
    }
    out.push(res);
  }
  return out;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

function cell(s: Summary | undefined, unit = ''): string {
  if (!s || s.values.length === 0) return '–';
  const u = unit ? ` ${unit}` : '';
  return s.values.length === 1 ? `${fmt(s.median)}${u}` : `${fmt(s.median)}${u} (${fmt(s.min)}–${fmt(s.max)})`;
}

function ratioCell(s: Summary | undefined): string {
  if (!s || s.values.length === 0) return '';
  return s.values.length === 1 ? `${s.median.toFixed(2)}×` : `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: string[]) => r.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' │ ').trimEnd();
  const sep = widths.map((w) => '─'.repeat(w)).join('─┼─');
  return [line(rows[0]!), sep, ...rows.slice(1).map(line)].join('\n');
}

function sizeLine(name: string, s: { bytes: number; gzipBytes: number; path: string } | undefined): string {
  return s ? `${name} ${(s.bytes / 1024).toFixed(1)} KiB (gzip -9 ${(s.gzipBytes / 1024).toFixed(1)} KiB)` : `${name} not found`;
}

export function renderTable(run: BenchRun, metrics: MetricResult[]): string {
  const m = run.meta as Record<string, unknown> & { workload: Record<string, unknown>; sizes: BenchRun['meta']['sizes'] };
  const w = m.workload;
  const head = [
    `cic-runtime benchmark ${m.runtimeVersion}  ${m.date}${m.label ? `  (${m.label})` : ''}`,
    `client node ${m.clientNode} ${m.clientArch}${m.emulated ? ` EMULATED (${m.clientExec})` : ''}; orchestrator/server node ${m.orchestratorNode}`,
    `cpu ${m.cpu}, ${m.cores} core(s), kernel ${m.kernel}; pinning: ${m.pinning}`,
    `NODE_EXTRA_CA_CERTS: ${m.nodeExtraCaCerts}; NODE_OPTIONS: ${m.nodeOptions}`,
    `server: ${m.server}`,
    `h2load: ${m.h2load}; syscalls: ${m.strace}`,
    `workload: ${w.event}; ${w.reps} reps interleaved runtime/baseline; sequential ${w.seqEvents}, ${w.concurrency} in flight ${w.concEvents}, warm-up ${w.warmup}, ` +
      `${w.pingRounds} PINGs, heap pass ${w.heapEvents} events; idle: keepalive PING every ${Number(w.idlePingIntervalMs) / 1000} s, ${w.idleSeconds} s window between the 1st and 2nd PING (+${w.straceSeconds} s strace window between the 2nd and 3rd); load/cold keepalive ${Number(w.pingIntervalMs) / 1000} s`,
    `figures: median (min–max) over repetitions; ratio = runtime ÷ node:http2 per repetition`,
  ];
  const rows = [['metric', 'runtime', 'node:http2', 'ratio', 'target', 'verdict', 'h2load', 'rt÷h2load', 'bare node*']];
  for (const r of metrics) {
    rows.push([
      `${r.label}${r.unit ? ` [${r.unit}]` : ''}`,
      cell(r.runtime),
      cell(r.baseline),
      ratioCell(r.ratio),
      r.target ?? '',
      r.verdict ?? '',
      cell(r.h2load),
      ratioCell(r.ratioToH2load),
      cell(r.bare),
    ]);
  }
  const note = '* bare node: `node -e` printing one line (cold start) or idling on a timer; in the "above the bench bundle alone" row: that bundle loaded without connecting, above bare node';
  const sizes = `artefacts: ${sizeLine('bundle', m.sizes.bundle)}; ${sizeLine('addon', m.sizes.addon)}; ${sizeLine('bench bundle', m.sizes.benchBundle)}`;
  const methods = Object.entries(m.methods as Record<string, string>).map(([k, v]) => `  ${k}: ${v}`);
  return [...head, '', table(rows), note, '', sizes, 'methods:', ...methods].join('\n');
}

export function buildReport(run: BenchRun, jsonFile: string | undefined): number {
  const metrics = computeMetrics(run.reps);
  process.stdout.write(`${renderTable(run, metrics)}\n`);
  if (jsonFile) {
    mkdirSync(dirname(jsonFile), { recursive: true });
    writeFileSync(jsonFile, `${JSON.stringify({ meta: run.meta, metrics, reps: run.reps }, null, 2)}\n`);
    const svgFile = jsonFile.replace(/\.json$/i, '') + '.svg';
    writeFileSync(svgFile, ratioChart(metrics, run.meta));
    process.stdout.write(`\nwrote ${jsonFile} and ${svgFile}\n`);
  }
  return 0;
}
