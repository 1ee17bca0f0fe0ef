// Soak: one real CicClient (child process, --expose-gc) against the CIC emulator over TLS for
// CIC_SOAK_SECONDS (default 600) with a PING every second, events at 5/s (204s, Speak with
// an attachment, streamed audio with StopCapture on the downchannel), a directive pushed
// every 2 s, and a forced reconnect every CIC_SOAK_RECONNECT_SECONDS (default 30): GOAWAY and
// a dropped socket in turn. Afterwards memory, the addon's session/stream counters and the
// process's handles must be back at their level after warm-up, and every event and
// directive must be accounted for.
//
// Tolerances (after forced GCs; baseline = mid-cycle sample after one GOAWAY and one drop):
// - heapUsed without the code spaces ≤ +1 MiB: the objects. A leak of ~350 bytes per event
//   (3,000 events), ~1.7 KiB per ping (600) or ~50 KiB per reconnect (20) exceeds it.
// - heapUsed ≤ +2 MiB in all: V8 keeps optimizing hot functions for minutes, so compiled
//   code grows by a few hundred KiB over a run (heap snapshot diffs show code objects, not
//   application objects); a runaway would still show here.
// - RSS ≤ +8 MiB: RSS also holds malloc arenas and freed pages the allocator keeps; a
//   native leak per connection (nghttp2 session, 32 KiB read buffer, TLS state) × 20 or
//   per stream × 3,000 exceeds it.
// - liveSessions back to 1 (the current connection), live streams to 1 (the downchannel),
//   no event in flight or queued, the same number of sockets as at the baseline; after
//   stop() zero sessions and a process that exits by itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runSoak, type SoakResult } from './support/soak-driver';

const DURATION_S = Number(process.env.CIC_SOAK_SECONDS ?? '600');
const RECONNECT_S = Number(process.env.CIC_SOAK_RECONNECT_SECONDS ?? '30');
const EVENT_INTERVAL_MS = Number(process.env.CIC_SOAK_EVENT_INTERVAL_MS ?? '200');
const HEAP_TOLERANCE = 2 * 1024 * 1024;
const OBJECT_HEAP_TOLERANCE = 1024 * 1024;
const RSS_TOLERANCE = 8 * 1024 * 1024;
const MiB = (n: number) => `${(n / 1048576).toFixed(1)}MB`;

let r: SoakResult | undefined;
const result = (): SoakResult => {
  if (!r) throw new Error('the soak run did not complete (see the first test)');
  return r;
};

test(`soak runs ${DURATION_S} s with a forced reconnect every ${RECONNECT_S} s`, async () => {
  assert.ok(Number.isFinite(DURATION_S) && DURATION_S > 0, 'CIC_SOAK_SECONDS must be a positive number');
  r = await runSoak({
    durationMs: DURATION_S * 1000,
    reconnectMs: RECONNECT_S * 1000,
    eventIntervalMs: EVENT_INTERVAL_MS,
    heapSnapshotDir: process.env.CIC_SOAK_HEAP_SNAPSHOTS || undefined,
  });
  const base = r.samples[r.baselineIndex]!;
  const fin = r.report.final;
  console.log(
    `soak-result: duration=${Math.round(r.elapsedMs / 1000)}s reconnects=${r.forced.length} events=${r.report.eventsSent} pings=${r.report.pings} ` +
      `rss_start=${MiB(base.rss)} rss_end=${MiB(fin.rss)} heap_start=${MiB(base.heapUsed)} heap_end=${MiB(fin.heapUsed)} liveSessions=${fin.liveSessions}`,
  );
  console.log(`soak-memory: heap_objects_start=${MiB(base.heapUsed - base.codeUsed)} heap_objects_end=${MiB(fin.heapUsed - fin.codeUsed)} code_start=${MiB(base.codeUsed)} code_end=${MiB(fin.codeUsed)} external_start=${MiB(base.external)} external_end=${MiB(fin.external)}`);
  console.log(`soak-samples: ${r.samples.map((s) => `${Math.round(s.atMs / 1000)}s rss=${MiB(s.rss)} heap=${MiB(s.heapUsed)} code=${MiB(s.codeUsed)} ext=${MiB(s.external)}`).join(' | ')}`);
  console.log(`soak-detail: ${JSON.stringify({ forced: r.forced, failed: r.report.eventsFailed, transitions: r.report.transitions, directives: r.report.directives, logged: r.report.logged, maxPingRttMs: r.report.maxPingRttMs, baseResources: base.resources, finalResources: fin.resources })}`);
  assert.ok(r.elapsedMs >= DURATION_S * 1000, 'ran for the whole duration');
  const expected = Math.floor((DURATION_S - 1) / RECONNECT_S);
  assert.ok(r.forced.length >= expected - 1 && r.forced.length <= expected, `about one forced reconnect per ${RECONNECT_S} s (${r.forced.length}, expected ${expected})`);
});

test('every forced reconnect was followed by exactly one reconnect, and nothing else reconnected', () => {
  const { report, forced, emulator } = result();
  const goaways = forced.filter((f) => f.kind === 'goaway').length;
  const drops = forced.filter((f) => f.kind === 'drop').length;
  assert.ok(goaways >= 1 && drops >= 1, 'both kinds of forced reconnect ran');
  assert.is(report.readyCount, 1 + forced.length, 'ready once at start and once per forced reconnect');
  assert.is(emulator.sessions, 1 + forced.length, 'one TLS session per connection, no extra connection');
  assert.is(emulator.goawaysSent, goaways);
  const fromReady = Object.entries(report.transitions).filter(([k]) => k.startsWith('ready->'));
  const byKey = Object.fromEntries(fromReady);
  assert.is(byKey['ready->authorizing (goaway)'], goaways, 'each GOAWAY moved a ready client at once');
  assert.is(byKey['ready->reconnecting (connection lost: H2_SOCKET_CLOSED)'], drops, 'each dropped socket was noticed as such');
  assert.is(fromReady.reduce((a, [, n]) => a + n, 0), forced.length, `no unforced way out of ready: ${JSON.stringify(byKey)}`);
  for (const f of forced) assert.ok(f.readyAfterMs < 10_000, `ready again ${f.readyAfterMs} ms after a forced ${f.kind}`);
});

test('a PING every second the whole time, every one answered', () => {
  const { report, emulator, elapsedMs } = result();
  const seconds = elapsedMs / 1000;
  assert.ok(report.pings >= 0.7 * seconds, `${report.pings} PING round trips in ${seconds.toFixed(0)} s`);
  assert.ok(report.pings <= seconds + 1, 'not more often than once a second');
  assert.ok(emulator.pings >= report.pings, 'every round trip the client measured was a PING the server saw');
  assert.not.ok(Object.keys(report.transitions).some((k) => k.includes('PING')), 'no ping timeout');
});

test('every event succeeded or failed with a coded error; none lost, none sent twice', () => {
  const { report, emulator, forced, elapsedMs, okStatus } = result();
  const failed = Object.values(report.eventsFailed).reduce((a, n) => a + n, 0);
  assert.ok(report.eventsSent >= (0.7 * elapsedMs) / EVENT_INTERVAL_MS, `${report.eventsSent} events sent`);
  assert.is(report.eventsUnsettled, 0, 'no event left unsettled');
  assert.is(report.eventsOk + failed, report.eventsSent, 'each sent event settled exactly once');
  assert.equal(Object.keys(report.eventsFailed).filter((c) => c !== 'CIC_EVENT_FAILED'), [], `only in-flight failures: ${JSON.stringify(report.eventsFailed)}`);
  const drops = forced.filter((f) => f.kind === 'drop').length;
  assert.ok(failed <= 4 * drops, `${failed} in-flight failures for ${drops} dropped sockets`);
  const seen = new Map<string, number>();
  for (const e of emulator.events) seen.set(e.messageId, (seen.get(e.messageId) ?? 0) + 1);
  assert.equal([...seen.values()].filter((n) => n > 1), [], 'no event reached the server twice');
  assert.is(okStatus.size, report.eventsOk, 'every success was reported once, each with its own messageId');
  const byId = new Map(emulator.events.map((e) => [e.messageId, e]));
  let missing = 0;
  let statusMismatch = 0;
  for (const [id, status] of okStatus) {
    const ev = byId.get(id);
    if (!ev) missing++;
    else if (ev.status !== status) statusMismatch++;
  }
  assert.is(missing, 0, 'every successful event is on the server');
  assert.is(statusMismatch, 0, 'with the status the server answered');
  assert.is(report.directives['SpeechSynthesizer.Speak (event)'], report.okByStatus[200], 'one Speak directive per 200 answer');
});

test('every pushed directive arrived exactly once', () => {
  const { pushed, acked, duplicateAcks, report, emulator } = result();
  assert.ok(pushed >= 10, `${pushed} directives pushed`);
  assert.is(acked.size, pushed);
  assert.is(duplicateAcks, 0);
  assert.is(report.directives['Soak.Push (downchannel)'], pushed);
  assert.ok(emulator.directivesPushed >= pushed, 'the emulator counted them (and the StopCaptures)');
});

test('memory and the addon counters are back at their level after warm-up', () => {
  const { samples, baselineIndex, rssBaselineIndex, report } = result();
  const base = samples[baselineIndex]!;
  const rssBase = samples[rssBaselineIndex]!;
  const fin = report.final;
  assert.is(base.liveSessions, 1, 'the baseline had one native session');
  assert.is(base.liveStreams, 1, 'the baseline had one live stream');
  assert.is(fin.liveSessions, 1, 'one native session: the current connection');
  assert.is(fin.liveStreams, 1, 'one live stream: the downchannel');
  assert.is(fin.inFlight, 0);
  assert.is(fin.queued, 0);
  assert.is(fin.bufferedBodyBytes, 0);
  assert.is(fin.pendingOutputBytes, 0);
  const objects = (s: typeof fin) => s.heapUsed - s.codeUsed;
  assert.ok(objects(fin) - objects(base) <= OBJECT_HEAP_TOLERANCE, `heap objects ${MiB(objects(base))} → ${MiB(objects(fin))}`);
  assert.ok(fin.heapUsed - base.heapUsed <= HEAP_TOLERANCE, `heapUsed ${MiB(base.heapUsed)} → ${MiB(fin.heapUsed)}`);
  assert.ok(fin.rss - rssBase.rss <= RSS_TOLERANCE, `rss ${MiB(rssBase.rss)} → ${MiB(fin.rss)}`);
  for (const kind of ['TCPSocketWrap', 'TLSWrap']) {
    assert.is(fin.resources[kind] ?? 0, base.resources[kind] ?? 0, `${kind} handles back to the baseline`);
  }
  for (const s of samples.slice(baselineIndex)) {
    assert.ok(s.liveSessions <= 2, `at most the current and one draining session at ${s.atMs} ms (${s.liveSessions})`);
  }
});

test('after stop(): no native session, emulator sees no connection, the process exits by itself', () => {
  const { stopped, exitCode, exitSignal, emulator } = result();
  assert.is(stopped.liveSessions, 0);
  assert.is(emulator.connectionsAtReport, 1, 'only the current connection was open before stop');
  assert.is(emulator.connectionsOpenAtEnd, 0);
  assert.is(exitSignal, null, 'the client process ended without being killed');
  assert.is(exitCode, 0);
});

test.run();
