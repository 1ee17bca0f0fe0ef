// Soak driver: runs the CIC emulator in this process and the client in a child process
// (soak-client.ts, with --expose-gc), pushes directives, forces a reconnect every
// `reconnectMs` (GOAWAY and dropped socket in turn) and samples the client's memory.
//
// Timeline (R = reconnectMs):
//   cycle 0: connect, run R ms  → forced reconnect #1 (GOAWAY)
//   cycle 1: run R ms           → forced reconnect #2 (socket drop)
//   cycle 2: baseline sample at mid-cycle (both reconnect kinds have run once: one-off
//            first-use allocations — TLS contexts, JIT code, grown heap spaces — are in),
//            taken at rest like the final one: events pause until every one settled
//            (memory under load holds in-flight buffers and would flatter the comparison),
//   …        one sample per cycle at mid-cycle, a forced reconnect at each cycle's end,
//   end:     events stop, the client settles, final sample, client.stop(), exit.
//
// Directives are pushed only while the client is ready, and every pushed one must be
// acknowledged by the child before the next forced reconnect, so the count is exact.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startCicEmulator, directive, type CicEmulator, type EventRecord } from '../../emulator/cic-server';
import { testPki } from '../../support/certs';
import type { ClientMessage, DriverMessage, SoakReport, SoakSample } from './soak-protocol';

export interface SoakOptions {
  durationMs: number;
  reconnectMs: number;
  /** Directive push period while ready. */
  pushMs?: number;
  eventIntervalMs?: number;
  /** Bound for each wait on the other side (ready again, directive acks, a sample). */
  stepTimeoutMs?: number;
  /** Write the client's heap snapshots at the baseline and at the end into this directory. */
  heapSnapshotDir?: string;
}

export interface ForcedReconnect {
  kind: 'goaway' | 'drop';
  atMs: number;
  /** ms from the forced fault until the client reported ready again. */
  readyAfterMs: number;
}

export interface SoakResult {
  elapsedMs: number;
  forced: ForcedReconnect[];
  pushed: number;
  acked: Set<number>;
  /** messageId → status of every event the client reported as succeeded. */
  okStatus: Map<string, number>;
  duplicateAcks: number;
  samples: SoakSample[];
  /** Index in `samples` of the baseline (after warm-up). */
  baselineIndex: number;
  /**
   * Index of the RSS baseline: the same, except with heap snapshots on, where it is the next
   * sample (writing a snapshot grows RSS by tens of MB that the allocator keeps).
   */
  rssBaselineIndex: number;
  report: SoakReport;
  stopped: { liveSessions: number; resources: Record<string, number> };
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  emulator: {
    sessions: number;
    pings: number;
    /** Emulator-side connections still open when the report was taken (the client's current one). */
    connectionsAtReport: number;
    /** …and after the client stopped. */
    connectionsOpenAtEnd: number;
    goawaysSent: number;
    events: EventRecord[];
    directivesPushed: number;
    statuses: Record<number, number>;
  };
}

/** The third mid-cycle sample: after one GOAWAY and one dropped socket. */
const BASELINE_INDEX = 2;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class ChildLink {
  readonly acked = new Set<number>();
  readonly okStatus = new Map<string, number>();
  duplicateAcks = 0;
  readyCount = 0;
  private waiters: Array<() => void> = [];
  private sampleWaiters = new Map<number, (s: SoakSample) => void>();
  private nextSample = 1;
  report: SoakReport | undefined;
  stopped: SoakResult['stopped'] | undefined;
  fatal: string | undefined;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: ClientMessage) => {
      if (m.type === 'ready') this.readyCount = m.n;
      else if (m.type === 'directive') {
        if (this.acked.has(m.seq)) this.duplicateAcks++;
        this.acked.add(m.seq);
      } else if (m.type === 'ok') this.okStatus.set(m.messageId, m.status);
      else if (m.type === 'sample') this.sampleWaiters.get(m.id)?.(m.sample);
      else if (m.type === 'report') this.report = m.report;
      else if (m.type === 'stopped') this.stopped = { liveSessions: m.liveSessions, resources: m.resources };
      else if (m.type === 'fatal') this.fatal = m.message;
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  send(m: DriverMessage): void {
    this.child.send(m);
  }

  /** Resolves when `pred` holds (re-checked on every message from the child); bounded. */
  async until(pred: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (this.fatal) throw new Error(`soak client failed: ${this.fatal}`);
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`soak client exited while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`soak: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async sample(timeoutMs: number, quiet: boolean, snapshot?: string): Promise<SoakSample> {
    const id = this.nextSample++;
    let got: SoakSample | undefined;
    this.sampleWaiters.set(id, (s) => (got = s));
    this.send({ type: 'sample', id, quiet, ...(snapshot ? { snapshot } : {}) });
    await this.until(() => got !== undefined, 'a memory sample', timeoutMs);
    this.sampleWaiters.delete(id);
    return got!;
  }
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const R = opts.reconnectMs;
  const pushMs = opts.pushMs ?? 2_000;
  const stepTimeoutMs = opts.stepTimeoutMs ?? 30_000;
  const minPeriods = opts.heapSnapshotDir ? 3.5 : 2.5;
  if (opts.durationMs < minPeriods * R) throw new Error(`soak: the duration must be at least ${minPeriods} reconnect periods (${minPeriods * R} ms) for a baseline after warm-up`);
  const pki = testPki();
  const cic: CicEmulator = await startCicEmulator();
  const child = fork(join(__dirname, 'soak-client.js'), [], {
    execArgv: ['--expose-gc', '--enable-source-maps'],
    env: {
      ...process.env,
      CIC_SOAK_URL: cic.url,
      CIC_SOAK_CA: pki.caPath,
      CIC_SOAK_EVENT_INTERVAL_MS: String(opts.eventIntervalMs ?? 200),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const link = new ChildLink(child);
  const forced: ForcedReconnect[] = [];
  const samples: SoakSample[] = [];
  let pushed = 0;
  const started = Date.now();
  const end = started + opts.durationMs;
  try {
    await link.until(() => link.readyCount >= 1, 'the first ready', stepTimeoutMs);
    for (;;) {
      const cycleStart = Date.now();
      const cycleEnd = Math.min(cycleStart + R, end);
      const last = cycleStart + R >= end;
      let sampled = false;
      while (Date.now() < cycleEnd) {
        await sleep(Math.min(pushMs, Math.max(0, cycleEnd - Date.now())));
        // Not in the last second before a forced reconnect: the ack must come back first.
        if (Date.now() < cycleEnd - 1_000 && cic.pushDirective(directive('Soak', 'Push', { seq: pushed + 1 }))) pushed++;
        if (!sampled && !last && Date.now() >= cycleStart + R / 2) {
          // Baselines are taken at rest, like the final reading; the other samples (trend) under load.
          const baseline = samples.length === BASELINE_INDEX || (samples.length === BASELINE_INDEX + 1 && !!opts.heapSnapshotDir);
          const snap = samples.length === BASELINE_INDEX && opts.heapSnapshotDir ? join(opts.heapSnapshotDir, 'soak-baseline.heapsnapshot') : undefined;
          samples.push(await link.sample(stepTimeoutMs + 35_000, baseline, snap));
          sampled = true;
        }
      }
      if (last) break;
      await link.until(() => link.acked.size >= pushed, `acks of ${pushed} pushed directives`, stepTimeoutMs);
      const kind = forced.length % 2 === 0 ? 'goaway' : 'drop';
      const before = link.readyCount;
      const at = Date.now();
      const n = kind === 'goaway' ? cic.goaway({ close: true }) : cic.dropSocket();
      if (n !== 1) throw new Error(`soak: expected exactly one live connection to ${kind}, found ${n}`);
      await link.until(() => link.readyCount > before, `ready after forced ${kind} #${forced.length + 1}`, stepTimeoutMs);
      forced.push({ kind, atMs: at - started, readyAfterMs: Date.now() - at });
    }
    await link.until(() => link.acked.size >= pushed, `acks of ${pushed} pushed directives`, stepTimeoutMs);
    link.send({ type: 'finish', ...(opts.heapSnapshotDir ? { snapshot: join(opts.heapSnapshotDir, 'soak-end.heapsnapshot') } : {}) });
    await link.until(() => link.report !== undefined, 'the final report', stepTimeoutMs + 35_000);
    const elapsedMs = Date.now() - started;
    const connectionsAtReport = cic.connections.size;
    link.send({ type: 'stop' });
    await link.until(() => link.stopped !== undefined, 'the client to stop', stepTimeoutMs);
    // The client is stopped; with IPC gone nothing may keep its process alive.
    child.disconnect();
    let exitTimer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([link.exited, new Promise<undefined>((r) => (exitTimer = setTimeout(() => r(undefined), 10_000)))]);
    clearTimeout(exitTimer);
    if (!exit) child.kill('SIGKILL');
    // Old connections close on both sides once the client let go of them.
    await sleep(200);
    return {
      elapsedMs,
      forced,
      pushed,
      acked: link.acked,
      okStatus: link.okStatus,
      duplicateAcks: link.duplicateAcks,
      samples,
      baselineIndex: BASELINE_INDEX,
      rssBaselineIndex: opts.heapSnapshotDir ? BASELINE_INDEX + 1 : BASELINE_INDEX,
      report: link.report!,
      stopped: link.stopped!,
      exitCode: exit ? exit.code : null,
      exitSignal: exit ? exit.signal : 'SIGKILL',
      emulator: {
        sessions: cic.counters.sessions,
        pings: cic.counters.pings,
        connectionsAtReport,
        connectionsOpenAtEnd: cic.connections.size,
        goawaysSent: cic.counters.goawaysSent,
        events: cic.events,
        directivesPushed: cic.counters.directivesPushed,
        statuses: { ...cic.counters.statuses },
      },
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await cic.stop();
  }
}
