// Hostile downchannel bodies from a frame-level peer (child process) against the real
// CicClient: a 100 MB directive part, a part that never closes, invalid UTF-8 and invalid
// JSON. The multipart parser keeps at most maxPartBytes (2 MiB) of a part and reports a
// larger one as CIC_PART_TOO_LARGE, so each case ends in a coded problem on a connection
// that stays up, with this process's RSS bounded far below what the peer sent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MAX_PART_BYTES } from '../../src/cic/multipart-parser';
import { now, report, sleep, until, within } from './support/fault-measure';
import { runHostile, warmUp, type RssFigures } from './support/hostile-case';

const MB = (v: number) => Math.round(v * 10) / 10;
const MiB = 1048576;

test.before(warmUp);

test('a 100 MB directive part: CIC_PART_TOO_LARGE for that part, the next directive arrives, RSS stays bounded', async () => {
  const rounds: Array<{ ms: number; bytesIn: number; rss: RssFigures }> = [];
  // Twice, each on a fresh connection: the first round lifts RSS to the allocator's working
  // level once; the second shows that level is a plateau, not a leak.
  for (let round = 1; round <= 2; round++) {
    let ms = 0;
    let bytesIn = 0;
    const rss = await runHostile({ scenario: 'big-part', bigBytes: 100 * MiB }, {}, async ({ peer, fc }) => {
      await fc.ready();
      const readyStates = fc.states.length;
      const t0 = now();
      await until(() => fc.directives.some((d) => d.directive.header.name === 'AfterHuge'), 'the directive after the 100 MB part', 60_000);
      ms = now() - t0;
      bytesIn = fc.client.stats().connection!.bytesIn;
      assert.ok(bytesIn > 100 * MiB, `${bytesIn} bytes received`);
      const tooLarge = fc.problems.filter((p) => p.code === 'CIC_PART_TOO_LARGE');
      assert.is(tooLarge.length, 1, `problems: ${fc.problems.map((p) => p.code)}`);
      assert.is((tooLarge[0]!.details as { limit: number }).limit, DEFAULT_MAX_PART_BYTES);
      assert.is(fc.problems.length, 1);
      assert.equal(fc.directives.map((d) => d.directive.header.name), ['AfterHuge'], 'the huge directive itself is never delivered');
      assert.is(fc.states.length, readyStates, 'the connection stayed up');
      const st = await peer.stats();
      assert.is(st.hostileCompleted, 1);
      assert.is(st.connections, 1);
      const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'AfterHugePart' }), 5_000, 'an event afterwards');
      assert.is(r.status, 204);
    });
    rounds.push({ ms, bytesIn, rss });
    // 100 MB went through; the runtime held a few MB of it at a time.
    assert.ok(rss.peakMb - rss.beforeMb < 60, `round ${round}: RSS peak ${MB(rss.beforeMb)} → ${MB(rss.peakMb)} MB`);
    // Nothing of it stays referenced once collected.
    assert.ok(rss.externalAfterMb - rss.externalBeforeMb < 4, `round ${round}: external ${MB(rss.externalBeforeMb)} → ${MB(rss.externalAfterMb)} MB`);
  }
  const [a, b] = rounds as [typeof rounds[0], typeof rounds[0]];
  assert.ok(b.rss.afterMb - a.rss.afterMb < 8, `RSS after round 1: ${MB(a.rss.afterMb)} MB, after round 2: ${MB(b.rss.afterMb)} MB`);
  assert.ok(a.rss.afterMb - a.rss.beforeMb < 45, `RSS ${MB(a.rss.beforeMb)} → ${MB(a.rss.afterMb)} MB`);
  report('directive-part-100mb', {
    transferMs: a.ms,
    mbPerS: a.bytesIn / MiB / (a.ms / 1000),
    rssBeforeMb: a.rss.beforeMb,
    rssPeakMb: Math.max(a.rss.peakMb, b.rss.peakMb),
    rssAfterMb: a.rss.afterMb,
    rssAfterSecondMb: b.rss.afterMb,
    externalBeforeMb: a.rss.externalBeforeMb,
    externalAfterMb: b.rss.externalAfterMb,
  });
});

test('a part that never closes: reported once, memory flat while hundreds of MB stream in, keepalive and events still work', async () => {
  const runMs = 3_000;
  let bytesIn = 0;
  let rssAt1 = 0;
  let rssAtEnd = 0;
  const rss = await runHostile({ scenario: 'endless-part' }, {}, async ({ peer, fc }) => {
    await fc.ready();
    const readyStates = fc.states.length;
    const t0 = now();
    await until(() => fc.problems.length > 0, 'the endless part to be reported', 10_000);
    await sleep(Math.max(0, 1_000 - (now() - t0)));
    rssAt1 = process.memoryUsage().rss / MiB;
    const in1 = fc.client.stats().connection!.bytesIn;
    const pings1 = fc.pings.length;
    // An event round trip on the same connection while the part keeps streaming.
    const r = await within(fc.client.sendEvent({ namespace: 'Test', name: 'DuringEndlessPart' }), 5_000, 'an event during the endless part');
    assert.is(r.status, 204);
    await sleep(Math.max(0, runMs - (now() - t0)));
    rssAtEnd = process.memoryUsage().rss / MiB;
    bytesIn = fc.client.stats().connection!.bytesIn;
    assert.ok(bytesIn - in1 > 20 * MiB, `the part kept streaming: ${bytesIn - in1} bytes in the last ${runMs - 1_000} ms`);
    assert.ok(fc.pings.length > pings1, 'keepalive RTTs kept coming during the flood');
    assert.equal(fc.problems.map((p) => p.code), ['CIC_PART_TOO_LARGE'], 'one report for the part, not one per chunk');
    assert.is(fc.states.length, readyStates, 'the connection stayed up');
    peer.stopHostile();
    const st = await peer.stats();
    assert.is(st.connections, 1);
  });
  // Memory is flat between the first second and the end, whatever the byte count.
  assert.ok(rssAtEnd - rssAt1 < 15, `RSS ${MB(rssAt1)} MB at 1 s, ${MB(rssAtEnd)} MB at ${runMs} ms`);
  assert.ok(rss.peakMb - rss.beforeMb < 50, `RSS peak ${MB(rss.beforeMb)} → ${MB(rss.peakMb)} MB`);
  report('endless-part', { streamedMb: bytesIn / MiB, durationMs: runMs, rssBeforeMb: rss.beforeMb, rssAt1sMb: rssAt1, rssAtEndMb: rssAtEnd, rssPeakMb: rss.peakMb, rssAfterMb: rss.afterMb });
});

test('invalid UTF-8 and invalid JSON in directive parts: CIC_BAD_DIRECTIVE each, without the bytes, the next directive arrives', async () => {
  const rss = await runHostile({ scenario: 'bad-directives' }, {}, async ({ fc }) => {
    await fc.ready();
    const readyStates = fc.states.length;
    await until(() => fc.directives.some((d) => d.directive.header.name === 'AfterBad'), 'the directive after the bad ones', 5_000);
    assert.equal(fc.problems.map((p) => p.code), ['CIC_BAD_DIRECTIVE', 'CIC_BAD_DIRECTIVE']);
    assert.match(fc.problems[0]!.message, /UTF-8/);
    assert.match(fc.problems[1]!.message, /JSON/);
    for (const p of fc.problems) {
      // The error names the problem, never the content (it could carry user data).
      assert.not.match(JSON.stringify(p.toJSON()), /BadUtf8|BadJson|"text"/);
    }
    assert.equal(fc.directives.map((d) => d.directive.header.name), ['AfterBad']);
    assert.is(fc.states.length, readyStates, 'the connection stayed up');
  });
  report('bad-directives', { problems: 2, reconnects: 0, rssBeforeMb: rss.beforeMb, rssAfterMb: rss.afterMb });
});

test.run();
