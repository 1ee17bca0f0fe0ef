// Server misbehaviour around connection set-up, scripted at the frame level by a hostile peer
// in a child process; the real CicClient runs here on the real clock. Each case ends in a
// coded error and a clean reconnect (or a bounded retry schedule), with this process's RSS
// measured before, at its peak and after.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isCicError, type CicError } from '../../src/errors';
import { cpuDuring, now, outcome, report, sleep, until, within } from './support/fault-measure';
import { runHostile, warmUp } from './support/hostile-case';

const MB = (v: number) => Math.round(v * 10) / 10;

test.before(warmUp);

test('GOAWAY (last-stream-id 0) on every connection: retries follow the backoff, no tight loop, CPU stays low', async () => {
  const windowMs = 8_000;
  let attempts = 0;
  let intervals: number[] = [];
  let cpu = { cpuMs: 0, wallMs: 0 };
  let lifetimes: number[] = [];
  // The shipped backoff (250 ms base, 20 s cap); only the dice are fixed (half of each ceiling).
  const rss = await runHostile({ scenario: 'goaway-storm', hostileConnections: 'all' }, { backoff: { random: () => 0.5 } }, async ({ peer, fc }) => {
    cpu = await cpuDuring(() => sleep(windowMs));
    const connecting = fc.states.filter((s) => s.to === 'connecting').map((s) => s.at);
    attempts = connecting.length;
    intervals = connecting.slice(1).map((t, i) => Math.round(t - connecting[i]!));
    assert.ok(fc.states.every((s) => s.to !== 'ready'), 'never ready: every connection was sent away');
    const failures = fc.states.filter((s) => s.to === 'reconnecting');
    assert.ok(failures.length >= 5, `failures: ${failures.length}`);
    assert.ok(failures.every((s) => s.code === 'H2_GOAWAY'), `codes: ${failures.map((s) => s.code)}`);
    const st = await peer.stats();
    lifetimes = st.lifetimesMs;
    assert.is(st.connections, attempts, 'one TCP connection per attempt');
    assert.ok(st.open <= 1, `connections left open at the peer: ${st.open}`);
  });
  // Backoff delays with random 0.5: 125, 250, 500, 1000, 2000, 4000 ms (+ connect time).
  const expected = [125, 250, 500, 1000, 2000, 4000];
  assert.ok(attempts >= 6 && attempts <= 7, `${attempts} connection attempts in ${windowMs} ms`);
  intervals.forEach((iv, i) => {
    assert.ok(iv >= expected[i]! - 5 && iv <= expected[i]! + 1_000, `interval ${i + 1}: ${iv} ms, expected ≈ ${expected[i]} ms`);
  });
  // Every refused connection is closed by the runtime itself, at once.
  assert.ok(lifetimes.every((ms) => ms < 1_000), `connection lifetimes: ${lifetimes}`);
  const cpuShare = cpu.cpuMs / cpu.wallMs;
  assert.ok(cpuShare < 0.1, `CPU ${(cpuShare * 100).toFixed(1)} % of one core`);
  assert.ok(rss.afterMb - rss.beforeMb < 15, `RSS ${MB(rss.beforeMb)} → ${MB(rss.afterMb)} MB`);
  report('goaway-every-connection', {
    attempts,
    windowMs,
    intervals: intervals.join('/'),
    cpuPct: (cpuShare * 100).toFixed(2),
    rssBeforeMb: rss.beforeMb,
    rssPeakMb: rss.peakMb,
    rssAfterMb: rss.afterMb,
  });
});

test('no SETTINGS after the TLS handshake: H2_CONNECT_TIMEOUT at the connect deadline, then a clean reconnect', async () => {
  const deadline = 1_000;
  let detect = 0;
  let recover = 0;
  const rss = await runHostile({ scenario: 'no-settings' }, { connectTimeoutMs: deadline }, async ({ peer, fc }) => {
    await fc.ready(10_000);
    const connecting = fc.states.find((s) => s.to === 'connecting')!;
    const failed = fc.states.find((s) => s.to === 'reconnecting')!;
    const ready = fc.readyAfter(failed.at)!;
    assert.is(failed.code, 'H2_CONNECT_TIMEOUT');
    detect = failed.at - connecting.at;
    recover = ready.at - failed.at;
    const st = await peer.stats();
    assert.is(st.connections, 2);
    // The silent connection was closed by the runtime at its deadline, not left open.
    assert.is(st.lifetimesMs.length, 1);
    assert.ok(st.lifetimesMs[0]! >= deadline - 100 && st.lifetimesMs[0]! < deadline + 700, `silent connection lived ${st.lifetimesMs[0]} ms`);
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'AfterSilence' }), 5_000, 'an event after the reconnect');
    assert.is(r.status, 204);
  });
  assert.ok(detect >= deadline && detect < deadline + 700, `noticed after ${detect} ms (deadline ${deadline} ms)`);
  assert.ok(recover < 2_000, `ready ${recover} ms after the timeout`);
  report('no-settings', { detect, recover, deadlineMs: deadline, rssBeforeMb: rss.beforeMb, rssPeakMb: rss.peakMb, rssAfterMb: rss.afterMb });
});

test('endless CONTINUATION frames on the downchannel: H2_HEADERS_TOO_LARGE, connection dropped, clean reconnect', async () => {
  let detect = 0;
  let recover = 0;
  let hostileBytes = 0;
  const rss = await runHostile({ scenario: 'endless-continuation' }, {}, async ({ peer, fc }) => {
    await fc.ready(10_000);
    const opening = fc.states.find((s) => s.to === 'opening-downchannel')!;
    const failed = fc.states.find((s) => s.to === 'reconnecting')!;
    assert.is(failed.code, 'H2_HEADERS_TOO_LARGE');
    detect = failed.at - opening.at;
    recover = fc.readyAfter(failed.at)!.at - failed.at;
    const st = await peer.stats();
    hostileBytes = st.hostileBytesOut;
    assert.is(st.hostileCompleted, 0, 'the endless block was cut off by the runtime');
    assert.is(st.lifetimesMs.length, 1, 'the flooding connection was closed');
    assert.is(st.connections, 2, 'and replaced by one new connection');
    // What the peer got into the socket before the runtime hung up: kernel buffers, not more.
    assert.ok(hostileBytes < 16 * 1048576, `${hostileBytes} bytes of CONTINUATION written`);
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'AfterContinuation' }), 5_000, 'an event after the reconnect');
    assert.is(r.status, 204);
  });
  assert.ok(detect < 1_000, `noticed after ${detect} ms`);
  assert.ok(recover < 2_000, `ready ${recover} ms later`);
  assert.ok(rss.afterMb - rss.beforeMb < 15, `RSS ${MB(rss.beforeMb)} → ${MB(rss.afterMb)} MB`);
  report('endless-continuation', { detect, recover, peerSentMb: hostileBytes / 1048576, rssBeforeMb: rss.beforeMb, rssPeakMb: rss.peakMb, rssAfterMb: rss.afterMb });
});

test('an event response with 10 MB of headers: the event fails with a coded error, the connection is replaced', async () => {
  let detect = 0;
  let recover = 0;
  let failure: CicError | undefined;
  let hostileBytes = 0;
  const rss = await runHostile({ scenario: 'huge-headers', bigBytes: 10 * 1024 * 1024 }, {}, async ({ peer, fc }) => {
    await fc.ready();
    const t0 = now();
    const sent = fc.client.sendEvent({ namespace: 'Test', name: 'HugeAnswer' });
    const err = await within(outcome(sent), 10_000, 'the event with the huge answer');
    assert.ok(isCicError(err, 'CIC_EVENT_FAILED'), String(err));
    failure = err as CicError;
    assert.is((failure.details as { messageId: string }).messageId, sent.messageId);
    assert.is((failure.details as { cause: string }).cause, 'H2_HEADERS_TOO_LARGE');
    await until(() => fc.leftReadyAfter(t0) !== undefined, 'the connection to be dropped', 5_000);
    const left = fc.leftReadyAfter(t0)!;
    assert.is(left.code, 'H2_HEADERS_TOO_LARGE');
    detect = left.at - t0;
    await fc.ready(10_000);
    recover = fc.readyAfter(left.at)!.at - left.at;
    const st = await peer.stats();
    hostileBytes = st.hostileBytesOut;
    assert.is(st.hostileCompleted, 0, 'the 10 MB block was cut off by the runtime');
    assert.ok(hostileBytes < 10 * 1048576, `${hostileBytes} bytes of the header block written`);
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'AfterHugeHeaders' }), 5_000, 'an event on the new connection');
    assert.is(r.status, 204);
    assert.is(st.connections, 2);
  });
  assert.ok(detect < 1_000, `noticed after ${detect} ms`);
  assert.ok(recover < 2_000, `ready ${recover} ms later`);
  assert.ok(rss.afterMb - rss.beforeMb < 15, `RSS ${MB(rss.beforeMb)} → ${MB(rss.afterMb)} MB`);
  report('headers-10mb', { detect, recover, peerSentMb: hostileBytes / 1048576, rssBeforeMb: rss.beforeMb, rssPeakMb: rss.peakMb, rssAfterMb: rss.afterMb });
});

test.run();
