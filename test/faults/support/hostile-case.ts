// One hostile-server case: the peer in a child process, the real CicClient in this process,
// RSS of this process (the runtime alone) measured before, at its peak, and after.
import type { CicClientOptions } from '../../../src/cic/client';
import { startFaultClient, type FaultClient } from './fault-client';
import { rssPeak, settledRssMb, within } from './fault-measure';
import { spawnHostilePeer, type HostileProcess } from './hostile-process';
import type { HostileOptions } from './hostile-peer';

export interface HostileRun {
  peer: HostileProcess;
  fc: FaultClient;
}

export interface RssFigures {
  beforeMb: number;
  peakMb: number;
  afterMb: number;
  /** Buffers and other memory outside the JS heap that JS still references (after GC). */
  externalBeforeMb: number;
  externalAfterMb: number;
}

const externalMb = () => process.memoryUsage().external / 1048576;

/** Connects once to a well-behaved peer and sends one event, so later RSS baselines include the addon, TLS and JIT. */
export async function warmUp(): Promise<void> {
  await runHostile({ scenario: 'normal' }, {}, async ({ fc }) => {
    await fc.ready();
    await within(fc.client.sendEvent({ namespace: 'Test', name: 'Warm' }), 5_000, 'the warm-up event');
  });
}

export async function runHostile(opts: HostileOptions, clientOpts: Partial<CicClientOptions>, fn: (r: HostileRun) => Promise<void>): Promise<RssFigures> {
  const peer = await spawnHostilePeer(opts);
  try {
    const beforeMb = await settledRssMb();
    const externalBeforeMb = externalMb();
    const peak = rssPeak();
    const fc = startFaultClient(peer.url, clientOpts);
    try {
      await fn({ peer, fc });
      // Measured while the client still runs: what a live runtime keeps after the episode.
      const peakMb = peak.stop();
      const afterMb = await settledRssMb();
      return { beforeMb, peakMb, afterMb, externalBeforeMb, externalAfterMb: externalMb() };
    } finally {
      peak.stop();
      await fc.stop();
    }
  } finally {
    await peer.close();
  }
}
