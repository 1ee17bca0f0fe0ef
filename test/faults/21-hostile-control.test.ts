// Control-frame abuse by a hostile peer (child process) against the real CicClient on the
// real clock: a PING flood the peer reads, a SETTINGS flood the peer never reads, and a
// stream of PING ACKs nobody asked for. RSS of this process (the runtime) before/peak/after.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuDuring, now, report, until, within } from './support/fault-measure';
import { runHostile, warmUp } from './support/hostile-case';

const MB = (v: number) => Math.round(v * 10) / 10;

test.before(warmUp);

test('a flood of 200,000 PINGs is answered in full while the runtime stays ready', async () => {
  let floodMs = 0;
  let cpuMs = 0;
  const rss = await runHostile({ scenario: 'ping-flood' }, {}, async ({ peer, fc }) => {
    await fc.ready();
    const readyAt = fc.states.length;
    const t0 = now();
    const used = await cpuDuring(async () => {
      const deadline = now() + 20_000;
      for (;;) {
        const st = await peer.stats();
        if (st.hostileCompleted === 1 && st.pingAcksIn >= 200_000) break;
        if (now() > deadline) throw new Error(`flood not answered: ${st.pingAcksIn} ACKs`);
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    floodMs = now() - t0;
    cpuMs = used.cpuMs;
    const st = await peer.stats();
    assert.is(st.pingAcksIn, 200_000, 'one ACK per PING, none lost, none extra');
    assert.is(st.connections, 1);
    assert.is(fc.states.length, readyAt, `no state change during the flood: ${fc.states.slice(readyAt).map((s) => s.to)}`);
    // The runtime's own keepalive still works afterwards, and so does an event.
    const pingsBefore = fc.pings.length;
    await until(() => fc.pings.length > pingsBefore, 'a keepalive RTT after the flood', 3_000);
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'AfterPingFlood' }), 5_000, 'an event after the flood');
    assert.is(r.status, 204);
  });
  assert.ok(rss.afterMb - rss.beforeMb < 15, `RSS ${MB(rss.beforeMb)} → ${MB(rss.afterMb)} MB`);
  report('ping-flood-200k', { floodMs, cpuMs, reconnects: 0, rssBeforeMb: rss.beforeMb, rssPeakMb: rss.peakMb, rssAfterMb: rss.afterMb });
});

test('a SETTINGS flood from a peer that reads nothing: H2_FLOOD, connection dropped, clean reconnect, bounded memory', async () => {
  let detect = 0;
  let recover = 0;
  let peerSent = 0;
  // A peer that reads nothing never ACKs our PINGs either: with the 1 s keepalive, a ping
  // timeout may win the race. A long interval leaves the flood limit as the only judge.
  const rss = await runHostile({ scenario: 'settings-flood-unread' }, { pingIntervalMs: 60_000 }, async ({ peer, fc }) => {
    await fc.ready();
    const readyAt = now();
    await until(() => fc.leftReadyAfter(readyAt) !== undefined, 'the flood to be refused', 15_000);
    const left = fc.leftReadyAfter(readyAt)!;
    assert.is(left.code, 'H2_FLOOD');
    // The flood starts 300 ms after the downchannel answered; report from then.
    detect = left.at - readyAt - 300;
    await fc.ready(10_000);
    recover = fc.readyAfter(left.at)!.at - left.at;
    const st = await peer.stats();
    peerSent = st.hostileBytesOut;
    assert.is(st.hostileCompleted, 0, 'the flood was cut off by the runtime');
    assert.is(st.connections, 2);
    assert.is(st.lifetimesMs.length, 1, 'the flooding connection was closed');
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'AfterSettingsFlood' }), 5_000, 'an event on the new connection');
    assert.is(r.status, 204);
  });
  assert.ok(detect < 5_000, `noticed after ${detect} ms`);
  assert.ok(recover < 2_000, `ready ${recover} ms later`);
  assert.ok(rss.peakMb - rss.beforeMb < 40, `RSS peak ${MB(rss.beforeMb)} → ${MB(rss.peakMb)} MB`);
  assert.ok(rss.afterMb - rss.beforeMb < 15, `RSS ${MB(rss.beforeMb)} → ${MB(rss.afterMb)} MB`);
  report('settings-flood-unread', { detect, recover, peerSentMb: peerSent / 1048576, rssBeforeMb: rss.beforeMb, rssPeakMb: rss.peakMb, rssAfterMb: rss.afterMb });
});

test('100,000 unsolicited PING ACKs are ignored: no reconnect, keepalive RTTs and events still work', async () => {
  let floodMs = 0;
  const rss = await runHostile({ scenario: 'unsolicited-acks' }, {}, async ({ peer, fc }) => {
    await fc.ready();
    const readyAt = fc.states.length;
    const t0 = now();
    const deadline = t0 + 20_000;
    for (;;) {
      const st = await peer.stats();
      if (st.hostileCompleted === 1) break;
      if (now() > deadline) throw new Error('the ACK flood did not finish');
      await new Promise((r) => setTimeout(r, 50));
    }
    floodMs = now() - t0;
    // The ACKs carry payloads no PING of ours had: none may count as a keepalive answer,
    // and none may disturb the real ones.
    const pingsBefore = fc.pings.length;
    await until(() => fc.pings.length >= pingsBefore + 2, 'two keepalive RTTs after the flood', 4_000);
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'AfterAckFlood' }), 5_000, 'an event after the flood');
    assert.is(r.status, 204);
    const st = await peer.stats();
    assert.is(st.connections, 1);
    assert.is(fc.states.length, readyAt, `no state change: ${fc.states.slice(readyAt).map((s) => s.to)}`);
    assert.ok(fc.pings.every((p) => p.rttMs >= 0 && p.rttMs < 500), `RTTs ${fc.pings.map((p) => p.rttMs)}`);
  });
  assert.ok(rss.afterMb - rss.beforeMb < 15, `RSS ${MB(rss.beforeMb)} → ${MB(rss.afterMb)} MB`);
  report('unsolicited-ping-acks-100k', { floodMs, reconnects: 0, rssBeforeMb: rss.beforeMb, rssPeakMb: rss.peakMb, rssAfterMb: rss.afterMb });
});

test.run();
