// Network faults in user space (the kernel here has no netem): a TCP relay between the real
// CicClient and the CIC emulator adds delay and jitter, drops chunks, stalls one direction,
// freezes both with the sockets open, and cuts the connection. Real clock, keepalive 1000 ms
// with a 500 ms timeout. For each fault: time to notice (bounded by interval + timeout), time
// to be ready again after the link returns, queued events delivered exactly once, the
// in-flight event reported failed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCicEmulator, type CicEmulator } from '../emulator/cic-server';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { BACKOFF, CONNECT_TIMEOUT_MS, PING_INTERVAL_MS, PING_TIMEOUT_MS, startFaultClient, type FaultClient } from './support/fault-client';
import { now, report, until, within } from './support/fault-measure';
import { runLinkFault, type FaultServer, type LinkFault } from './support/link-fault';

// Generous on a loaded 2-core machine, still far below anything a tight loop or a missing
// deadline would give.
const SLACK_MS = 1_000;
const PING_BOUND = PING_INTERVAL_MS + PING_TIMEOUT_MS + SLACK_MS;
// After the restore: at most one backoff step (half of the 2 s cap) or a held handshake
// that completes, plus a connect deadline if a handshake was lost on the way.
const RECOVER_BOUND = BACKOFF.maxMs / 2 + CONNECT_TIMEOUT_MS + SLACK_MS;

function emulatorServer(emu: CicEmulator): FaultServer {
  return {
    hold: async (name) => emu.setResponder(name, () => 'hold'),
    eventSeen: async (messageId, timeoutMs) => {
      if (emu.events.some((e) => e.messageId === messageId)) return;
      await emu.next<{ messageId: string }>('event', (e) => e.messageId === messageId, timeoutMs);
    },
    count: async (messageId) => emu.events.filter((e) => e.messageId === messageId).length,
  };
}

async function withProxy(fn: (emu: CicEmulator, proxy: FaultProxy, fc: FaultClient) => Promise<void>): Promise<void> {
  const emu = await startCicEmulator();
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: emu.port }, 7);
  const fc = startFaultClient(`https://127.0.0.1:${proxy.port}`);
  try {
    await fn(emu, proxy, fc);
  } finally {
    await fc.stop();
    await proxy.close();
    await emu.stop();
  }
}

async function linkCase(fault: (proxy: FaultProxy) => LinkFault): Promise<void> {
  await withProxy(async (emu, proxy, fc) => {
    const f = fault(proxy);
    const r = await runLinkFault(fc, emulatorServer(emu), f);
    assert.ok(proxy.accepted >= 2, 'the link was replaced by a new connection');
    report(f.name, { detect: r.detectMs, recover: r.recoverMs, code: r.code, queued: `${r.queued}x1`, inflight: 'failed', connections: proxy.accepted });
  });
}

test('delay 100 ms ± 50 ms each way: the link is slow but alive — no reconnect, RTTs measured, events answered', async () => {
  await withProxy(async (emu, proxy, fc) => {
    await fc.ready();
    const states = fc.states.length;
    proxy.settings.delayMs = 100;
    proxy.settings.jitterMs = 50;
    const t0 = now();
    const pingsBefore = fc.pings.length;
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'Slow' }), 5_000, 'an event over the slow link');
    const eventMs = now() - t0;
    assert.is(r.status, 204);
    await until(() => fc.pings.length >= pingsBefore + 3, 'three pings over the slow link', 6_000);
    const rtts = fc.pings.slice(pingsBefore).map((p) => p.rttMs);
    assert.is(fc.states.length, states, `no state change: ${fc.states.slice(states).map((s) => `${s.to}/${s.code}`)}`);
    assert.is(proxy.accepted, 1);
    assert.ok(rtts.every((v) => v >= 200 && v < PING_TIMEOUT_MS), `RTTs ${rtts.map(Math.round)} within [200, ${PING_TIMEOUT_MS})`);
    assert.ok(eventMs >= 200, `event round trip ${eventMs} ms`);
    assert.is(emu.events.filter((e) => e.name === 'Slow').length, 1);
    report('delay-100ms-jitter-50ms', { detect: 'none', rttMinMs: Math.min(...rtts), rttMaxMs: Math.max(...rtts), eventMs, reconnects: 0 });
  });
});

test('delay 400 ms each way (RTT above the ping timeout): noticed as H2_PING_TIMEOUT, recovered when the delay goes', async () => {
  await linkCase((proxy) => ({
    name: 'delay-400ms',
    apply: () => {
      proxy.settings.delayMs = 400;
    },
    restore: () => {
      proxy.settings.delayMs = 0;
    },
    outageMs: 1_000,
    detectBoundMs: PING_BOUND,
    recoverBoundMs: RECOVER_BOUND,
    codes: ['H2_PING_TIMEOUT'],
  }));
});

test('60 % of chunks dropped (a lossy middlebox): noticed within interval + timeout, recovered when loss stops', async () => {
  await linkCase((proxy) => ({
    // High enough that no new connection gets through while it lasts (a TLS handshake,
    // SETTINGS and the downchannel take about ten chunks: 0.4^10 ≈ 1e-4).
    name: 'drop-60pct',
    apply: () => {
      proxy.settings.dropRate = 0.6;
    },
    restore: () => {
      proxy.settings.dropRate = 0;
    },
    outageMs: 1_000,
    detectBoundMs: PING_BOUND,
    recoverBoundMs: RECOVER_BOUND,
    // A lost chunk either silences the link (no ACK) or breaks a TLS record (the peer or we
    // drop the connection).
    codes: ['H2_PING_TIMEOUT', 'H2_SOCKET_CLOSED', 'H2_TLS_FAILED', 'H2_PROTOCOL'],
  }));
});

test('client→server stalled (bytes held, sockets open): H2_PING_TIMEOUT within interval + timeout', async () => {
  await linkCase((proxy) => ({
    name: 'stall-up',
    apply: () => proxy.stall(true, false),
    restore: () => proxy.stall(false, false),
    outageMs: 1_000,
    detectBoundMs: PING_BOUND,
    recoverBoundMs: RECOVER_BOUND,
    codes: ['H2_PING_TIMEOUT'],
  }));
});

test('server→client stalled (bytes held, sockets open): H2_PING_TIMEOUT within interval + timeout', async () => {
  await linkCase((proxy) => ({
    name: 'stall-down',
    apply: () => proxy.stall(false, true),
    restore: () => proxy.stall(false, false),
    outageMs: 1_000,
    detectBoundMs: PING_BOUND,
    recoverBoundMs: RECOVER_BOUND,
    codes: ['H2_PING_TIMEOUT'],
  }));
});

test('both directions frozen with the sockets open: H2_PING_TIMEOUT within interval + timeout', async () => {
  await linkCase((proxy) => ({
    name: 'freeze',
    apply: () => proxy.freeze(),
    restore: () => proxy.thaw(),
    outageMs: 1_000,
    detectBoundMs: PING_BOUND,
    recoverBoundMs: RECOVER_BOUND,
    codes: ['H2_PING_TIMEOUT'],
  }));
});

test('connection cut (both sockets destroyed): noticed at once, replaced at once', async () => {
  await linkCase((proxy) => ({
    name: 'cut',
    apply: () => proxy.cut(),
    restore: () => {},
    outageMs: 0,
    detectBoundMs: 500,
    recoverBoundMs: 2_000,
    codes: ['H2_SOCKET_CLOSED'],
  }));
});

test('connection cut while new connections are refused for 1.5 s: attempts follow the backoff, ready once accepted again', async () => {
  await withProxy(async (emu, proxy, fc) => {
    const f: LinkFault = {
      name: 'cut-and-refuse',
      apply: () => {
        proxy.refuse(true);
        proxy.cut();
      },
      restore: () => proxy.refuse(false),
      outageMs: 1_500,
      detectBoundMs: 500,
      recoverBoundMs: RECOVER_BOUND,
      codes: ['H2_SOCKET_CLOSED'],
    };
    const before = proxy.accepted;
    const r = await runLinkFault(fc, emulatorServer(emu), f);
    const refusedAttempts = proxy.accepted - before - 1; // the last one was accepted
    // 1.5 s of refusals: attempts at 0, 125(min 100…), 375, 875 ms … → a handful, not hundreds.
    assert.ok(refusedAttempts >= 2 && refusedAttempts <= 6, `${refusedAttempts} refused attempts in ${f.outageMs} ms`);
    report(f.name, { detect: r.detectMs, recover: r.recoverMs, code: r.code, refusedAttempts, queued: `${r.queued}x1`, inflight: 'failed' });
  });
});

test.run();
