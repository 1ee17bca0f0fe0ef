// The benchmark run: one TLS server, the contenders as separate processes, interleaved
// repetitions (runtime, baseline, runtime, baseline, …) so slow drift of the machine hits
// both alike, then the report. Cores: with two or more and `taskset`, the server and this
// process run on core 0, every client (and h2load) on core 1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { addonFileName, RUNTIME_VERSION } from '../../../src/index';
import type { BenchArgs } from './args';
import type { LoadResult, Workload } from './client-main';
import type { CaMode, ContenderKind } from './contender';
import { h2loadVersion, runH2load, writeH2loadBody, type H2loadResult } from './h2load';
import { benchPki } from './pki';
import { idleRound, type IdleName, type IdleSample } from './idle';
import { buildReport, type BenchRun } from './report';
import { serviceRound, type ServiceSample } from './service-phase';
import { killAll, start, type Child } from './spawn';

export const KINDS: ContenderKind[] = ['runtime', 'baseline'];

export interface ColdSample {
  ms: number;
  /** performance.now() inside the client at Hello: time since its own process start. */
  inProcessMs: number;
  maxRssBytes: number;
}

export interface RepResult {
  cold: Record<CaMode, Record<ContenderKind, ColdSample>>;
  /** A bare `node` printing one line: the floor under every cold start. */
  coldBare: number | undefined;
  /** Spawn → exit: the command line's `--version` (no compile cache, then a warm one) and `node -e 0`. */
  version: { cli: number; cliWarm: number; bare: number } | undefined;
  /** Cold start → Clova.Hello with a warm compile cache (pinned CA; Node ≥ 22, else the same as cold). */
  coldWarm: Record<ContenderKind, ColdSample> | undefined;
  load: Record<ContenderKind, LoadResult> | undefined;
  idle: Record<IdleName, IdleSample> | undefined;
  h2load: { sequential: H2loadResult; concurrent: H2loadResult } | undefined;
  /** The device service between the bench server and a socket client (runtime only). */
  service: ServiceSample | undefined;
  peakRssBytes: Record<ContenderKind, number>;
}

export interface BenchOptions extends Workload {
  reps: number;
  quick: boolean;
  url: string | undefined;
  caFile: string | undefined;
  certFile: string | undefined;
  keyFile: string | undefined;
  idleSeconds: number;
  /** Keepalive interval of the idle contenders: the window lies between their 1st and 2nd PING. */
  idlePingIntervalMs: number;
  straceSeconds: number;
  pin: boolean;
  h2load: boolean;
  strace: boolean;
  keepExtraCa: boolean;
  clientExec: string[];
  clientEnv: Record<string, string>;
  phases: Set<string>;
  cpuProfDir: string | undefined;
  json: string | undefined;
  timeoutScale: number;
  label: string | undefined;
  serviceSamples: number;
  audioChunks: number;
  transferBytes: number;
}

const PHASES = ['cold', 'load', 'idle', 'h2load', 'service'];

export function benchOptions(a: BenchArgs): BenchOptions {
  const quick = a.flag('quick');
  const phases = new Set((a.str('phases') ?? PHASES.join(',')).split(',').filter(Boolean));
  for (const p of phases) if (!PHASES.includes(p)) throw new Error(`--phases: unknown phase ${p} (${PHASES.join(', ')})`);
  const clientEnv: Record<string, string> = {};
  for (const kv of a.all('client-env')) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--client-env wants NAME=VALUE, got ${kv}`);
    clientEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const idleSeconds = a.num('idle-seconds', quick ? 3 : 30);
  return {
    reps: Math.max(1, Math.floor(a.num('reps', quick ? 2 : 5))),
    quick,
    url: a.str('url')?.replace(/\/+$/, ''),
    caFile: a.str('ca'),
    certFile: a.str('cert'),
    keyFile: a.str('key'),
    idleSeconds,
    // The window starts 1 s after the first keepalive PING and ends 1 s before the second, so
    // it measures the steady state between two PINGs (start-up GC and the stale connect and
    // Clova.Hello timers are over by then). The syscall window lies between the 2nd and 3rd.
    idlePingIntervalMs: a.num('idle-ping-interval-ms', (idleSeconds + 2) * 1000),
    straceSeconds: a.num('strace-seconds', Math.min(idleSeconds, quick ? 2 : 10)),
    seqEvents: a.num('seq-events', quick ? 1000 : 10_000),
    concEvents: a.num('conc-events', quick ? 2000 : 20_000),
    concurrency: a.num('concurrency', 16),
    warmup: a.num('warmup', quick ? 100 : 500),
    pingRounds: a.num('pings', quick ? 100 : 1000),
    heapEvents: a.num('heap-events', quick ? 300 : 2000),
    pingIntervalMs: a.num('ping-interval-ms', 60_000),
    pin: !a.flag('no-pin'),
    h2load: !a.flag('no-h2load'),
    strace: !a.flag('no-strace'),
    keepExtraCa: a.flag('keep-extra-ca'),
    clientExec: (a.str('client-exec') ?? '').split(' ').filter(Boolean),
    clientEnv,
    phases,
    cpuProfDir: a.str('cpu-prof'),
    json: a.str('json'),
    timeoutScale: a.num('timeout-scale', 1),
    label: a.str('label'),
    serviceSamples: Math.max(1, Math.floor(a.num('service-samples', quick ? 10 : 50))),
    audioChunks: Math.max(1, Math.floor(a.num('audio-chunks', quick ? 40 : 200))),
    transferBytes: Math.floor(a.num('transfer-mib', 10) * 1024 * 1024),
  };
}

function has(cmd: string, args: string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function cpuModel(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^model name\s*:\s*(.+)$/m.exec(info) ?? /^Hardware\s*:\s*(.+)$/m.exec(info);
    if (m) return m[1]!.trim();
  } catch {
    // no /proc/cpuinfo
  }
  return cpus()[0]?.model ?? 'unknown';
}

function fileSize(path: string): { path: string; bytes: number; gzipBytes: number } | undefined {
  if (!existsSync(path)) return undefined;
  return { path, bytes: statSync(path).size, gzipBytes: gzipSync(readFileSync(path), { level: 9 }).length };
}

const BARE_COLD_SCRIPT = "process.stdout.write(JSON.stringify({hello:performance.now()})+'\\n')";

export async function orchestrate(o: BenchOptions): Promise<number> {
  const bundle = __filename;
  const dist = dirname(bundle);
  const tmp = mkdtempSync(join(tmpdir(), 'cic-bench-'));
  const cleanup = () => {
    killAll();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    return await run(o, bundle, dist, tmp);
  } finally {
    cleanup();
  }
}

async function run(o: BenchOptions, bundle: string, dist: string, tmp: string): Promise<number> {
  const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
  const pki = benchPki({ caFile: o.caFile, certFile: o.certFile, keyFile: o.keyFile }, tmp);
  const cores = availableParallelism();
  const pin = o.pin && cores >= 2 && has('taskset', ['-V']);
  const pinTo = (core: number) => (pin ? ['taskset', '-c', String(core)] : []);
  if (pin) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

  // The same environment for every contender; NODE_EXTRA_CA_CERTS makes every Node start read
  // and parse a CA file (≈50 ms, 2 MB), so it is dropped unless --keep-extra-ca.
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  // The compile cache (Node ≥ 22, src/compile-cache-banner.js) is off for every figure but the
  // rows that name it, which get a directory of their own, warmed by one discarded run.
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.clientEnv, CIC_COMPILE_CACHE: 'off' };
  if (!o.keepExtraCa) delete env.NODE_EXTRA_CA_CERTS;
  const warmEnv: NodeJS.ProcessEnv = { ...env, CIC_COMPILE_CACHE: join(tmp, 'compile-cache') };
  mkdirSync(warmEnv.CIC_COMPILE_CACHE!, { recursive: true });
  const cli = join(dist, 'cic-runtime.js');
  const node = o.clientExec.length ? o.clientExec : [process.execPath];
  const scale = o.timeoutScale * (o.clientExec.length ? 20 : 1);

  const probe = spawnSync(node[0]!, [...node.slice(1), '-p', 'process.version + " " + process.arch'], { env, encoding: 'utf8' });
  const [clientNode, clientArch] = (probe.stdout ?? '').trim().split(' ');
  if (!clientNode) throw new Error(`cannot run the client node (${node.join(' ')}): ${probe.stderr ?? probe.error?.message}`);
  const emulated = o.clientExec.some((p) => /qemu/.test(p));

  // ---- the server ----
  let server: Child | undefined;
  let url = o.url;
  if (!url) {
    if (!pki.certFile || !pki.keyFile) throw new Error('the local server needs --cert and --key with --ca');
    server = start([...pinTo(0), process.execPath, bundle, 'server', '--cert', pki.certFile, '--key', pki.keyFile], { ...env, ...stripClientEnv(o) });
    const { value } = await server.line<{ port: number }>('port', 30_000);
    url = `https://127.0.0.1:${value.port}`;
  }
  // h2load runs natively on this machine: against emulated or foreign clients it is no floor.
  const h2loadVer = o.h2load && o.phases.has('h2load') && !o.clientExec.length ? h2loadVersion() : undefined;
  const straceOk = o.strace && has('strace', ['-V']);
  const h2body = writeH2loadBody(tmp);
  const serviceOk = o.phases.has('service') && !!pki.certFile && !!pki.keyFile;
  if (o.phases.has('service') && !serviceOk) log('service phase skipped: it needs the local server\'s --cert and --key');

  const meta = {
    date: new Date().toISOString(),
    label: o.label,
    runtimeVersion: RUNTIME_VERSION,
    orchestratorNode: process.version,
    clientNode,
    clientArch,
    clientExec: o.clientExec.length ? o.clientExec.join(' ') : undefined,
    emulated,
    cpu: cpuModel(),
    cores,
    kernel: release(),
    pinning: pin ? 'server + orchestrator on core 0, clients + h2load on core 1 (taskset)' : `off (${cores} core(s)${o.pin ? ', or no taskset' : ', --no-pin'})`,
    nodeExtraCaCerts: extraCa === undefined ? 'unset' : o.keepExtraCa ? `set (${extraCa}), kept for every contender` : `set on this machine (${extraCa}), removed for every contender`,
    nodeOptions: env.NODE_OPTIONS ?? 'unset',
    server: o.url
      ? `external: ${o.url}`
      : `dedicated minimal CIC server (scripts/bench/src/server.ts, node:http2 ${process.version}, TLS) on ${url}`,
    pki: pki.source,
    h2load: h2loadVer ?? (!o.h2load || !o.phases.has('h2load') ? 'disabled' : o.clientExec.length ? 'skipped (clients run through --client-exec; h2load would run natively)' : 'not installed (Debian: nghttp2-client)'),
    strace: straceOk ? 'strace -c -f' : 'not used',
    workload: {
      event: 'System.SynchronizeState, ~1 KB metadata JSON, multipart/form-data POST /v1/events, answered 204',
      seqEvents: o.seqEvents,
      concEvents: o.concEvents,
      concurrency: o.concurrency,
      warmup: o.warmup,
      pingRounds: o.pingRounds,
      heapEvents: o.heapEvents,
      idleSeconds: o.idleSeconds,
      idlePingIntervalMs: o.idlePingIntervalMs,
      straceSeconds: straceOk ? o.straceSeconds : 0,
      pingIntervalMs: o.pingIntervalMs,
      reps: o.reps,
      service: serviceOk ? { attachmentsTimed: o.serviceSamples, audioChunks: o.audioChunks, audioChunkBytes: 640, transferBytes: o.transferBytes, slowRead: '20 ms pause every 256 KiB' } : undefined,
    },
    methods: {
      cpu: 'process.cpuUsage() (user + system, all threads) inside the client over the measured events, warm-up excluded',
      heap: 'v8.GCProfiler: used(end) - used(start) + sum over GCs of (used before - used after)',
      cold: 'orchestrator: spawn() → the client\'s "hello" line on stdout (written when Clova.Hello arrived)',
      idle: '/proc/<pid>/status RssAnon/RssFile and smaps_rollup Pss at the end of the window; wakeups = schedstat run count and ctxt switches summed over all threads over a window between the 1st and 2nd keepalive PING; syscalls = strace -c -f between the 2nd and 3rd',
      ratio: 'per repetition runtime ÷ baseline (adjacent runs), then median and min–max',
      service: 'a `service` process (device service over a CicClient) between an in-orchestrator bench server and an in-orchestrator Wyoming socket client, one performance.now() clock for both ends; first byte: server writes the first attachment body bytes (30 ms after the Speak directive) → first attachment-chunk payload byte read off the socket, median per rep; RSS: VmRSS of the service 0.5 s after Hello (idle), peak = VmHWM after a clear_refs reset while a 10 MiB attachment streams to a client pausing 20 ms every 256 KiB; audio: 640-byte audio-chunk written to the socket → the server\'s data event holding it, median per rep',
    },
    sizes: {
      bundle: fileSize(join(dist, 'cic-runtime.js')),
      addon: fileSize(join(dist, addonFileName('linux', clientArch))),
      benchBundle: fileSize(bundle),
    },
  };
  log(`${meta.clientNode} ${meta.clientArch}${emulated ? ' (emulated)' : ''}, ${o.reps} reps, server ${url}, pinning ${pin ? 'on' : 'off'}`);

  const clientCmd = (kind: ContenderKind | 'none', mode: string, caMode: CaMode, rep: number) => {
    const pingEvery = mode === 'idle' ? o.idlePingIntervalMs : o.pingIntervalMs;
    const prof = o.cpuProfDir && mode === 'load' ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir, '--cpu-prof-name', `${kind}-rep${rep + 1}.cpuprofile`] : [];
    return [
      ...pinTo(1), ...node, ...prof, bundle, 'client', '--kind', kind, '--mode', mode, '--url', url!, '--ca-file', pki.caFile, '--ca-mode', caMode,
      '--seq-events', String(o.seqEvents), '--conc-events', String(o.concEvents), '--concurrency', String(o.concurrency),
      '--warmup', String(o.warmup), '--pings', String(o.pingRounds), '--heap-events', String(o.heapEvents), '--ping-interval-ms', String(pingEvery),
    ];
  };
  if (o.cpuProfDir) mkdirSync(o.cpuProfDir, { recursive: true });

  const reps: RepResult[] = [];
  for (let r = 0; r < o.reps; r++) {
    const rep: RepResult = {
      cold: { system: {} as Record<ContenderKind, ColdSample>, pinned: {} as Record<ContenderKind, ColdSample> },
      coldBare: undefined,
      version: undefined,
      coldWarm: undefined,
      load: undefined,
      idle: undefined,
      h2load: undefined,
      service: undefined,
      peakRssBytes: { runtime: 0, baseline: 0 },
    };
    const peak = (kind: ContenderKind, bytes: number) => (rep.peakRssBytes[kind] = Math.max(rep.peakRssBytes[kind], bytes || 0));

    if (o.phases.has('cold')) {
      let tb = 0;
      const bare = start([...pinTo(1), ...node, '-e', BARE_COLD_SCRIPT], env, (t) => (tb = t));
      rep.coldBare = (await bare.line('hello', 60_000 * scale)).at - tb;
      await bare.exited;
      for (const caMode of ['system', 'pinned'] as CaMode[]) {
        for (const kind of KINDS) {
          let t0 = 0;
          const c = start(clientCmd(kind, 'cold', caMode, r), env, (t) => (t0 = t));
          const { value, at } = await c.line<{ hello: number; maxRssBytes: number; http2Loaded: boolean }>('hello', 60_000 * scale);
          await c.exited;
          if (kind === 'runtime' && value.http2Loaded) throw new Error('the runtime contender loaded node:http2');
          rep.cold[caMode][kind] = { ms: at - t0, inProcessMs: value.hello, maxRssBytes: value.maxRssBytes };
          peak(kind, value.maxRssBytes);
        }
      }
      // With a warm compile cache: the first run of each fills the cache and is discarded.
      const coldWarm = {} as Record<ContenderKind, ColdSample>;
      for (const kind of KINDS) {
        for (const keep of [false, true]) {
          let t0 = 0;
          const c = start(clientCmd(kind, 'cold', 'pinned', r), warmEnv, (t) => (t0 = t));
          const { value, at } = await c.line<{ hello: number; maxRssBytes: number }>('hello', 60_000 * scale);
          await c.exited;
          if (keep) coldWarm[kind] = { ms: at - t0, inProcessMs: value.hello, maxRssBytes: value.maxRssBytes };
        }
      }
      rep.coldWarm = coldWarm;
      if (existsSync(cli)) {
        const untilExit = async (cmd: string[], e: NodeJS.ProcessEnv) => {
          let t0 = 0;
          const c = start([...pinTo(1), ...node, ...cmd], e, (t) => (t0 = t));
          const code = await c.exited;
          if (code !== 0) throw new Error(`${cmd.join(' ')} exited ${code}: ${c.stderr().slice(-500)}`);
          return performance.now() - t0;
        };
        const bareMs = await untilExit(['-e', '0'], env);
        const cliMs = await untilExit([cli, '--version'], env);
        await untilExit([cli, '--version'], warmEnv);
        rep.version = { cli: cliMs, cliWarm: await untilExit([cli, '--version'], warmEnv), bare: bareMs };
      }
    }

    if (o.phases.has('load')) {
      const load = {} as Record<ContenderKind, LoadResult>;
      for (const kind of KINDS) {
        const c = start(clientCmd(kind, 'load', 'pinned', r), env);
        const { value } = await c.line<{ result: LoadResult }>('result', 600_000 * scale);
        const code = await c.exited;
        if (code !== 0) throw new Error(`${kind} load client exited ${code}: ${c.stderr().slice(-1000)}`);
        if (kind === 'runtime' && value.result.http2Loaded) throw new Error('the runtime contender loaded node:http2');
        load[kind] = value.result;
        peak(kind, value.result.maxRssBytes);
      }
      rep.load = load;
    }

    if (h2loadVer) {
      const h = (inFlight: number, n: number) => runH2load({ url: url!, requests: n, inFlight, body: h2body, pin: pinTo(1), env });
      rep.h2load = { sequential: h(1, o.seqEvents), concurrent: h(o.concurrency, o.concEvents) };
    }

    if (o.phases.has('idle')) rep.idle = await idleRound(o, r, clientCmd, node, pinTo, env, straceOk, scale, peak);
    // Its own in-process server on loopback (one clock for both ends), also with --url.
    if (serviceOk) {
      rep.service = await serviceRound({
        bundle, node: [...pinTo(1), ...node], env, tmp, cert: readFileSync(pki.certFile!, 'utf8'), key: readFileSync(pki.keyFile!, 'utf8'), caFile: pki.caFile,
        samples: o.serviceSamples, audioChunks: o.audioChunks, transferBytes: o.transferBytes, timeoutScale: scale,
      }, r);
    }
    reps.push(rep);
    log(`rep ${r + 1}/${o.reps} done`);
  }

  let serverCounts: Record<string, number> | undefined;
  if (server) {
    server.kill('SIGTERM');
    serverCounts = (await server.line<{ counts: Record<string, number> }>('counts', 10_000)).value.counts;
    await server.exited;
    if (serverCounts.badEvents || serverCounts.unauthorized) throw new Error(`the server rejected requests: ${JSON.stringify(serverCounts)}`);
  }
  const benchRun: BenchRun = { meta: { ...meta, serverCounts }, reps };
  return buildReport(benchRun, o.json);
}

function stripClientEnv(o: BenchOptions): NodeJS.ProcessEnv {
  // The server runs natively even when the clients are emulated: no QEMU_* for it.
  const out: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(o.clientEnv)) out[k] = undefined;
  return out;
}
