// One network fault, measured end to end on a ready CicClient:
//
//   1. an event is put in flight (the server holds it unanswered) — it must be reported
//      failed (CIC_EVENT_FAILED), never resent;
//   2. the fault is applied at t0; detection is the first state change out of 'ready';
//   3. at that moment three events are sent: they wait in the queue and must each reach the
//      server exactly once after the reconnect;
//   4. after `outageMs` the link is restored; recovery is the time from the restore to
//      'ready' on a new connection.
import * as assert from 'uvu/assert';
import type { EventResult } from '../../../src/cic/types';
import { isCicError, type CicError } from '../../../src/errors';
import type { FaultClient } from './fault-client';
import { now, outcome, sleep, until, within } from './fault-measure';

/** The server side, whatever runs it (in-process emulator, or a child in a namespace). */
export interface FaultServer {
  /** Events of `qualifiedName` are accepted and never answered from now on. */
  hold(qualifiedName: string): Promise<void>;
  /** Resolves once the server has the event with `messageId`. */
  eventSeen(messageId: string, timeoutMs: number): Promise<void>;
  /** How many times the server received `messageId`. */
  count(messageId: string): Promise<number>;
}

export interface LinkFault {
  name: string;
  apply(): void | Promise<void>;
  restore(): void | Promise<void>;
  /** How long the fault stays after it was noticed (0: restored at once). */
  outageMs: number;
  /** Upper bound for detection (ms after the fault). */
  detectBoundMs: number;
  /** Upper bound for recovery (ms after the restore). */
  recoverBoundMs: number;
  /** Codes the runtime may report for this fault. */
  codes: string[];
}

export interface LinkFaultResult {
  detectMs: number;
  recoverMs: number;
  code: string;
  queued: number;
}

const QUEUED = 3;

export async function runLinkFault(fc: FaultClient, server: FaultServer, fault: LinkFault): Promise<LinkFaultResult> {
  const client = fc.client;
  await fc.ready();
  const warm = await within(client.sendEvent({ namespace: 'Test', name: 'Warm' }), 5_000, `${fault.name}: the warm-up event`);
  assert.is(warm.status, 204);

  await server.hold('Test.InFlight');
  const inflight = client.sendEvent({ namespace: 'Test', name: 'InFlight' });
  const inflightOutcome = outcome(inflight);
  await server.eventSeen(inflight.messageId, 5_000);

  // The moment the runtime notices, three more events arrive from the application.
  const queued: Array<Promise<EventResult> & { messageId: string }> = [];
  let queuedAtOnce = 0;
  const onState = (s: { from: string; to: string }) => {
    if (s.from !== 'ready' || queued.length > 0) return;
    for (let i = 1; i <= QUEUED; i++) queued.push(client.sendEvent({ namespace: 'Test', name: `Queued${i}` }));
    queuedAtOnce = client.stats().queued;
  };
  client.on('state', onState);
  try {
    const t0 = now();
    await fault.apply();
    await until(() => fc.leftReadyAfter(t0) !== undefined, `${fault.name}: the fault to be noticed`, fault.detectBoundMs + 5_000);
    const left = fc.leftReadyAfter(t0)!;
    const detectMs = left.at - t0;
    assert.ok(fault.codes.includes(left.code ?? ''), `${fault.name}: noticed as ${left.code}, expected one of ${fault.codes}`);
    assert.is(queuedAtOnce, QUEUED, `${fault.name}: the new events wait in the queue`);

    let restoredAt = left.at;
    if (fault.outageMs > 0) {
      await sleep(fault.outageMs);
      assert.ok(client.state !== 'ready', `${fault.name}: not ready while the link is still down`);
      restoredAt = now();
    }
    await fault.restore();
    await until(() => fc.readyAfter(left.at) !== undefined, `${fault.name}: ready again`, fault.recoverBoundMs + 10_000);
    const recoverMs = Math.max(0, fc.readyAfter(left.at)!.at - restoredAt);

    // In flight when the link died: reported failed, with its messageId, never resent.
    const err = await within(inflightOutcome, 10_000, `${fault.name}: the in-flight event`);
    assert.ok(isCicError(err, 'CIC_EVENT_FAILED'), `${fault.name}: in-flight event settled with ${String(err)}`);
    assert.is(((err as CicError).details as { messageId: string }).messageId, inflight.messageId);

    // Queued: each delivered once, answered 204.
    const results = await within(Promise.all(queued), 10_000, `${fault.name}: the queued events`);
    assert.equal(results.map((r) => r.status), Array(QUEUED).fill(204));
    await sleep(100); // a duplicate, if any, would be on the wire by now
    for (const q of queued) assert.is(await server.count(q.messageId), 1, `${fault.name}: queued event delivered exactly once`);
    assert.is(await server.count(inflight.messageId), 1, `${fault.name}: the in-flight event was never resent`);

    assert.ok(detectMs <= fault.detectBoundMs, `${fault.name}: noticed after ${Math.round(detectMs)} ms (bound ${fault.detectBoundMs} ms)`);
    assert.ok(recoverMs <= fault.recoverBoundMs, `${fault.name}: ready ${Math.round(recoverMs)} ms after the restore (bound ${fault.recoverBoundMs} ms)`);
    return { detectMs, recoverMs, code: left.code!, queued: QUEUED };
  } finally {
    client.off('state', onState);
  }
}
