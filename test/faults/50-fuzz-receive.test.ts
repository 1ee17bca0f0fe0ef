// Fuzzing the native receive() path: builds native/fuzz/receive_fuzzer (libFuzzer, ASan,
// UBSan; session.cc and the node-addon-api glue unchanged) and runs it for a bounded number
// of inputs over the recorded-session corpus, then replays every regression input. Any
// sanitizer report, leak or broken contract (see the harness) ends the fuzzer with a non-zero
// status and fails here; a new crashing input is copied to test/fuzz/regressions/receive so
// it stays a regression test.
//
//   CIC_FUZZ_RUNS (default 20000), CIC_FUZZ_MAX_S (default 60)
//   longer run: node scripts/fuzz.mjs receive --minutes 30
//
// Without clang and the libFuzzer runtime the test FAILS with the packages to install: a
// skipped fuzz run must not pass as a green one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..');
const RUNS = Number(process.env.CIC_FUZZ_RUNS ?? 20_000);
const MAX_S = Number(process.env.CIC_FUZZ_MAX_S ?? 60);
const CORPUS = join(root, 'test/fuzz/corpus/receive');
const REGRESSIONS = join(root, 'test/fuzz/regressions/receive');

interface FuzzScript {
  buildReceiveFuzzer(o?: { quiet?: boolean }): Promise<string>;
  replayRegressions(fuzzer?: string): { status: number | null; files: number; output: string };
}

let fuzzer: string | undefined;

async function fuzzScript(): Promise<FuzzScript> {
  return (await import(pathToFileURL(join(root, 'scripts/fuzz.mjs')).href)) as FuzzScript;
}

function haveClang(): boolean {
  return spawnSync('sh', ['-c', 'command -v clang++ || command -v clang++-14'], { encoding: 'utf8' }).status === 0;
}

test('the seed corpus holds recorded sessions: each starts with the server SETTINGS frame', () => {
  const files = readdirSync(CORPUS).filter((f) => f.endsWith('.bin'));
  assert.ok(files.length >= 5, `recorded seeds in ${CORPUS}: ${files.length}`);
  for (const f of files) {
    const b = readFileSync(join(CORPUS, f));
    // Frame header: 24-bit length, type 4 (SETTINGS), flags 0, stream 0.
    assert.ok(b.length > 9, `${f}: ${b.length} bytes`);
    assert.is(b[3], 4, `${f}: first frame type`);
    assert.is(b.readUInt32BE(5) & 0x7fffffff, 0, `${f}: first frame stream`);
  }
});

test('the fuzz target builds with clang, libFuzzer, ASan and UBSan', async () => {
  if (!haveClang()) {
    assert.unreachable('clang is not installed: the receive() fuzzer cannot be built. Install it (Debian 12: apt-get install -y clang libclang-rt-14-dev)');
  }
  const started = Date.now();
  fuzzer = await (await fuzzScript()).buildReceiveFuzzer({ quiet: true });
  assert.ok(existsSync(fuzzer), 'fuzzer binary');
  // The binary really carries the sanitizers and libFuzzer (not a plain build).
  const help = spawnSync(fuzzer, ['-help=1'], { encoding: 'utf8' });
  assert.match(`${help.stdout}${help.stderr}`, /libFuzzer|Usage:/);
  const nm = spawnSync('nm', ['-C', fuzzer], { encoding: 'utf8', maxBuffer: 256 << 20 });
  assert.match(nm.stdout, /__asan_init/);
  assert.match(nm.stdout, /__ubsan_handle_/);
  assert.match(nm.stdout, /cic::Session::OnDataChunk/);
  console.log(`receive fuzzer ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test(`${RUNS} fuzz inputs over the recorded corpus: no sanitizer report, no contract violation`, () => {
  assert.ok(fuzzer, 'fuzzer built');
  const scratch = mkdtempSync(join(tmpdir(), 'cic-fuzz-'));
  const artifacts = join(scratch, 'artifacts');
  const work = join(scratch, 'corpus');
  spawnSync('mkdir', ['-p', artifacts, work]);
  try {
    const started = Date.now();
    // -seed fixed: the same run every time in CI (the corpus decides what is explored).
    const r = spawnSync(fuzzer!, [`-runs=${RUNS}`, `-max_total_time=${MAX_S}`, '-seed=424242', '-max_len=65536', '-print_final_stats=1', `-artifact_prefix=${artifacts}/`, work, CORPUS], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    const out = `${r.stdout}${r.stderr}`;
    const stat = (k: string) => Number((out.match(new RegExp(`stat::${k}:\\s+(\\d+)`)) ?? [])[1]);
    const found = existsSync(artifacts) ? readdirSync(artifacts) : [];
    for (const f of found) copyFileSync(join(artifacts, f), join(REGRESSIONS, f));
    const executed = stat('number_of_executed_units');
    console.log(
      `receive fuzzer: ${executed} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s, ${stat('average_exec_per_sec')} exec/s, ` +
        `${stat('new_units_added')} new inputs, peak RSS ${stat('peak_rss_mb')} MB, crashes ${found.length}`,
    );
    if (r.status !== 0 || found.length) {
      const report = out.split('\n').filter((l) => /ERROR|SUMMARY|violation|threw|runtime error|#\d+ 0x/.test(l)).slice(0, 40).join('\n');
      assert.unreachable(`fuzzer exit ${r.status}; inputs saved to ${REGRESSIONS}: ${found.join(', ')}\n${report}`);
    }
    assert.ok(executed >= Math.min(RUNS, 2000), `executed ${executed} inputs`);
    assert.ok(stat('new_units_added') > 0, 'the fuzzer found new coverage beyond the seeds (it is exploring)');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('every receive() regression input runs clean', async () => {
  assert.ok(fuzzer, 'fuzzer built');
  const r = (await fuzzScript()).replayRegressions(fuzzer);
  assert.ok(r.files >= 6, `regression inputs: ${r.files}`);
  if (r.status !== 0) assert.unreachable(`replay exit ${r.status}\n${r.output.split('\n').filter((l) => /ERROR|SUMMARY|violation|Running:/.test(l)).join('\n')}`);
  // libFuzzer prints one "Running: FILE" and "Executed FILE" per input.
  assert.is((r.output.match(/^Executed /gm) ?? []).length, r.files, 'every input executed');
});

test.run();
