// CI's suite accounting (.ci/suites.sh, sourced by .ci/run): a suite that exits non-zero,
// prints no totals or runs nothing cannot pass, and skips count as failures when CI asks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'cic-ci-'));

/** Feeds one suite's exit status and output to count_suite; returns the run's totals. */
function count(status: number, output: string, env: Record<string, string> = {}): { passed: number; failed: number; skipped: number } {
  const log = join(dir, `suite-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(log, output);
  const out = execFileSync('bash', ['-c', `. .ci/suites.sh; count_suite s ${status} "$1" >/dev/null; echo "$total_passed $total_failed $total_skipped"`, 'bash', log], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });
  const [passed, failed, skipped] = out.trim().split(' ').map(Number);
  return { passed: passed!, failed: failed!, skipped: skipped! };
}

test('a clean suite adds its totals', () => {
  assert.equal(count(0, 'ok  a\n12 passed, 0 failed\n'), { passed: 12, failed: 0, skipped: 0 });
});

test('failures in the totals are counted', () => {
  assert.equal(count(1, '10 passed, 2 failed\n'), { passed: 10, failed: 2, skipped: 0 });
});

test('a suite that exits non-zero after printing clean totals fails', () => {
  assert.equal(count(134, '12 passed, 0 failed\nAborted (core dumped)\n'), { passed: 12, failed: 1, skipped: 0 });
});

test('a suite that prints no totals fails', () => {
  assert.equal(count(0, 'something went wrong\n'), { passed: 0, failed: 1, skipped: 0 });
});

test('a suite that ran no test fails', () => {
  assert.equal(count(0, '0 passed, 0 failed\n'), { passed: 0, failed: 1, skipped: 0 });
});

test('the last totals line wins; a leading word with a colon is accepted', () => {
  assert.equal(count(0, '1 passed, 1 failed\nrun: 7 passed, 0 failed\n'), { passed: 7, failed: 0, skipped: 0 });
});

test('skips are reported, and fail the run under CI_FAIL_ON_SKIP=1', () => {
  assert.equal(count(0, '7 passed, 0 failed, 2 skipped\n'), { passed: 7, failed: 0, skipped: 2 });
  assert.equal(count(0, '7 passed, 0 failed, 2 skipped\n', { CI_FAIL_ON_SKIP: '1' }), { passed: 7, failed: 2, skipped: 2 });
});

test('a capability case fails under CI=true instead of skipping', () => {
  const file = join(root, 'build', 'ts', 'test', 'support', 'capability.js');
  const script = `const { test } = require('uvu'); require(${JSON.stringify(file)}).capabilityCase('needs a thing', 'the thing is missing', () => {}); test.run();`;
  const run = (ci: string) => {
    try {
      return { code: 0, out: execFileSync(process.execPath, ['-e', script], { cwd: root, env: { PATH: process.env.PATH, CI: ci, NO_COLOR: '1' }, encoding: 'utf8' }) };
    } catch (e) {
      const err = e as { status: number; stdout: string };
      return { code: err.status, out: err.stdout };
    }
  };
  const dev = run('');
  assert.is(dev.code, 0);
  assert.match(dev.out, /SKIP needs a thing: the thing is missing/);
  assert.match(dev.out, /Skipped:\s+1/);
  const ci = run('true');
  assert.is.not(ci.code, 0);
  assert.match(ci.out, /Passed:\s+0/);
});

test.run();
