// Test runner: transpiles the TypeScript, runs each uvu test file in its own Node process
// (a native crash or a hang then fails one file, not the run), bounded by a per-file time
// limit, and ends with the totals line `N passed, N failed` that CI reads.
//
//   node scripts/test.mjs [--suite main|faults|powercut|all] [--jobs N] [--timeout S] [filter…]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileTs } from './compile-ts.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const suite = opt('--suite', 'main');
const jobs = Number(opt('--jobs', process.env.CIC_TEST_JOBS ?? '1'));
// The fault suite holds the 10-minute soak and the 1,000-round crash tests, the power-cut suite
// hundreds of LazyFS mount cycles: a longer limit.
const fileTimeoutS = Number(opt('--timeout', process.env.CIC_TEST_FILE_TIMEOUT_S ?? (suite === 'main' ? '300' : '1200')));
const filters = args;

const SUITES = { main: ['test'], faults: ['test/faults'], powercut: ['test/powercut'], all: ['test', 'test/faults'] };
if (!SUITES[suite]) {
  console.error(`unknown suite ${suite}; one of ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}

if (!existsSync(join(root, 'build/Release/cic_h2.node'))) {
  console.error('warning: the native addon is missing (run `npm install`); HTTP/2 tests will fail');
}

await compileTs();

const files = [];
for (const dir of SUITES[suite]) {
  const abs = join(root, dir);
  if (!existsSync(abs)) continue;
  for (const name of readdirSync(abs).sort()) {
    if (!/^\d\d-.*\.test\.ts$/.test(name)) continue;
    const rel = join(dir, name);
    if (filters.length && !filters.some((f) => rel.includes(f))) continue;
    files.push(rel);
  }
}

const ANSI = /\x1b\[[0-9;]*m/g;
const logDir = join(root, 'build/test-logs');
mkdirSync(logDir, { recursive: true });
// Every token, code and secret a test server issues is appended here (one per line); after
// the run, the captured output of every test file is searched for each of them.
const secretsLog = join(root, 'build', `issued-secrets-${suite}.txt`);
rmSync(secretsLog, { force: true });

function runFile(rel) {
  const js = join(root, 'build/ts', rel.replace(/\.ts$/, '.js'));
  const started = Date.now();
  return new Promise((resolve) => {
    const preload = join(root, 'build/ts/test/support/uvu-details.js');
    const child = spawn(process.execPath, ['--enable-source-maps', '--require', preload, js], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', CIC_TEST_ROOT: root, CIC_TEST_SECRETS_LOG: secretsLog },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, fileTimeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = out.replace(ANSI, '');
      const num = (label) => Number((text.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm')) || [])[1] ?? NaN);
      let total = num('Total'), passed = num('Passed'), skipped = num('Skipped');
      // uvu's Total counts the tests that ran; skipped ones are reported apart from it.
      let failed = Number.isFinite(total) ? total - passed : NaN;
      const ok = code === 0 && !timedOut && Number.isFinite(total) && failed === 0;
      if (!Number.isFinite(total)) { total = 1; passed = 0; skipped = 0; failed = 1; }
      else if (!ok && failed === 0) failed = 1; // exited badly after reporting success
      writeFileSync(join(logDir, rel.replace(/[\/]/g, '_') + '.log'), out);
      resolve({ rel, ok, total, passed, failed, skipped: skipped || 0, ms: Date.now() - started, timedOut, code, signal, text });
    });
  });
}

const results = [];
let next = 0;
async function worker() {
  while (next < files.length) {
    const rel = files[next++];
    const r = await runFile(rel);
    results.push(r);
    const tag = r.ok ? 'ok  ' : 'FAIL';
    console.log(`${tag} ${rel}  ${r.passed}/${r.total} passed${r.skipped ? `, ${r.skipped} skipped` : ''}  ${(r.ms / 1000).toFixed(1)}s`);
    if (!r.ok) {
      const why = r.timedOut ? `timed out after ${fileTimeoutS}s` : `exit ${r.code ?? r.signal}`;
      console.log(`---- ${rel} (${why}) ----\n${r.text.trimEnd()}\n---- end ${rel} ----`);
    }
  }
}
await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));

const sum = (k) => results.reduce((a, r) => a + r[k], 0);
let passed = sum('passed'), failed = sum('failed');
const skipped = sum('skipped');

// Whole-suite secret check: no issued secret may appear in any captured output line.
if (existsSync(secretsLog)) {
  const issued = [...new Set(readFileSync(secretsLog, 'utf8').split('\n').filter((v) => v.length >= 8))];
  const leaks = [];
  for (const r of results) {
    for (const value of issued) {
      if (r.text.includes(value) || r.text.includes(encodeURIComponent(value))) leaks.push(r.rel);
    }
  }
  if (leaks.length) {
    failed += 1;
    console.log(`FAIL secret check: issued secrets appear in the output of ${[...new Set(leaks)].join(', ')} (values not shown)`);
  } else {
    passed += 1;
    console.log(`ok   secret check: none of ${issued.length} issued secrets appears in ${results.length} files' output`);
  }
}
console.log(`\n${files.length} files`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
