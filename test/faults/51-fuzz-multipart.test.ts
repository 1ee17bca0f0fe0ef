// The multipart parser under a seeded, bounded fuzz loop (see 51-multipart-fuzz-loop.ts for
// the two oracles: a generated-parts model and split invariance of mutated bodies), plus
// every saved regression case in test/fuzz/regressions/multipart.
//
//   CIC_FUZZ_MULTIPART_CASES (default 15000), CIC_FUZZ_MULTIPART_SEED (default 0x51f022)
//   longer run: node scripts/fuzz.mjs multipart --cases 1000000 --seed S
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkCase, runMultipartFuzz } from './51-multipart-fuzz-loop';

const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..');
const CASES = Number(process.env.CIC_FUZZ_MULTIPART_CASES ?? 15_000);
const SEED = Number(process.env.CIC_FUZZ_MULTIPART_SEED ?? 0x51f022);
const REGRESSIONS = join(root, 'test/fuzz/regressions/multipart');

test(`${CASES} seeded cases: generated bodies parse to exactly their parts; mutated bodies parse the same however they are split`, () => {
  const { stats, failures } = runMultipartFuzz({ cases: CASES, seed: SEED });
  console.log(
    `multipart fuzz: ${stats.cases} cases (${stats.generated} generated, ${stats.mutated} mutated), ${(stats.bytes / 1e6).toFixed(1)} MB, ` +
      `${stats.partsDelivered} parts delivered, errors ${JSON.stringify(stats.errors)}, ${stats.casesPerSecond} cases/s, seed ${SEED}`,
  );
  if (failures.length) {
    const f = failures[0]!;
    assert.unreachable(`${failures.length} failing cases; first: case ${f.case} [${f.kind}] ${f.message} (replay: node scripts/fuzz.mjs multipart --seed ${SEED} --cases ${f.case + 1})`);
  }
  assert.is(stats.cases, CASES);
  // The loop must reach every outcome it is meant to check, or it checks nothing.
  assert.ok(stats.generated > CASES / 4 && stats.mutated > CASES / 4, 'both oracles ran');
  assert.ok(stats.partsDelivered > CASES / 2, `parts delivered: ${stats.partsDelivered}`);
  assert.ok((stats.errors.CIC_PART_TOO_LARGE ?? 0) > CASES / 20, 'oversized parts were reported');
  assert.ok((stats.errors.CIC_MULTIPART ?? 0) > CASES / 20, 'malformed/truncated bodies were reported');
});

test('the same seed gives the same run (a CI failure replays locally)', () => {
  const a = runMultipartFuzz({ cases: 300, seed: SEED }).stats;
  const b = runMultipartFuzz({ cases: 300, seed: SEED }).stats;
  assert.equal({ ...a, ms: 0, casesPerSecond: 0 }, { ...b, ms: 0, casesPerSecond: 0 });
  const c = runMultipartFuzz({ cases: 300, seed: SEED + 1 }).stats;
  assert.not.equal(c.bytes, a.bytes, 'another seed explores other bodies');
});

test('every multipart regression case passes, with its expected outcome', () => {
  const files = readdirSync(REGRESSIONS).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 4, `regression cases: ${files.length}`);
  for (const f of files) {
    const c = JSON.parse(readFileSync(join(REGRESSIONS, f), 'utf8')) as {
      boundary: string;
      bodyHex: string;
      splits: number[][];
      maxPartBytes: number;
      maxHeaderBytes: number;
      expect?: { parts: number; errors: string[] };
    };
    const r = checkCase({ boundary: c.boundary, body: Buffer.from(c.bodyHex, 'hex'), maxPartBytes: c.maxPartBytes, maxHeaderBytes: c.maxHeaderBytes }, c.splits);
    if (!r.ok) assert.unreachable(`${f}: [${r.kind}] ${r.message}`);
    else if (c.expect) assert.equal({ parts: r.outcome.parts.length, errors: r.outcome.errors }, c.expect, f);
  }
});

test.run();
