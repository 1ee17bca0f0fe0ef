// The runner's whole-suite secret check works for the fault suite: scripts/test.mjs is run
// with `--suite faults` on a scratch tree holding probe test files that register a secret in
// $CIC_TEST_SECRETS_LOG (as the emulators do) and then print it — inside a debug log line,
// an error message, a stack trace, URL-encoded — or print nothing secret. The run must fail
// the secret check exactly when something leaked, and never print the value itself.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..', '..');

/** A probe test file: registers `secret`, then prints `print(secret)` and passes one test. */
function probe(print: string): string {
  return `import { appendFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
const secret = process.argv[2] ?? process.env.PROBE_SECRET!;
appendFileSync(process.env.CIC_TEST_SECRETS_LOG!, secret + '\\n');
test('probe', () => {
  ${print}
  assert.ok(true);
});
test.run();
`;
}

async function runProbes(files: Record<string, string>, secret: string): Promise<{ code: number | null; out: string }> {
  const tree = mkdtempSync(join(tmpdir(), 'cic-faults-62-'));
  try {
    mkdirSync(join(tree, 'scripts'));
    mkdirSync(join(tree, 'src'));
    mkdirSync(join(tree, 'test', 'faults'), { recursive: true });
    for (const f of ['test.mjs', 'compile-ts.mjs']) copyFileSync(join(root, 'scripts', f), join(tree, 'scripts', f));
    // What the runner preloads into every test process (when it does) comes along.
    mkdirSync(join(tree, 'test', 'support'), { recursive: true });
    for (const f of readdirSync(join(root, 'test', 'support')).filter((n) => n.startsWith('uvu-'))) {
      copyFileSync(join(root, 'test', 'support', f), join(tree, 'test', 'support', f));
    }
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(tree, 'test', 'faults', name), text);
    return await new Promise((resolve) => {
      const child = spawn(process.execPath, [join(tree, 'scripts', 'test.mjs'), '--suite', 'faults'], {
        cwd: tree,
        env: { PATH: process.env.PATH, PROBE_SECRET: secret },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('close', (code) => resolve({ code, out }));
    });
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

const fresh = () => `probe-secret-${randomBytes(15).toString('base64url')}/+=`;

test('a clean fault suite passes the secret check', async () => {
  const secret = fresh();
  const r = await runProbes({ '10-clean.test.ts': probe(`console.error(JSON.stringify({ level: 'debug', msg: 'refreshed', token: '[redacted]' }));`) }, secret);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /ok\s+secret check: none of 1 issued secrets appears in 1 files' output/);
  assert.match(r.out, /2 passed, 0 failed/);
});

test('a secret in a debug line, an error message, a stack trace or URL-encoded fails the run, unnamed', async () => {
  const secret = fresh();
  const leaks: Record<string, string> = {
    '10-debug-line.test.ts': `console.error(JSON.stringify({ level: 'debug', msg: 'refresh', body: 'refresh_token=' + secret }));`,
    '11-error-message.test.ts': `console.log('error: ' + new Error('refused ' + secret).message);`,
    '12-stack.test.ts': `const e = new Error('x'); e.stack = 'Error: x\\n    at refresh (' + secret + ')'; console.error(e.stack);`,
    '13-url-encoded.test.ts': `console.error('GET /token?refresh_token=' + encodeURIComponent(secret));`,
  };
  for (const [name, print] of Object.entries(leaks)) {
    const r = await runProbes({ '09-clean.test.ts': probe(''), [name]: probe(print) }, secret);
    assert.is(r.code, 1, `${name}: the run fails`);
    assert.match(r.out, new RegExp(`FAIL secret check: issued secrets appear in the output of test/faults/${name.replace('.', '\\.')} \\(values not shown\\)`));
    const verdict = r.out.split('\n').find((l) => l.startsWith('FAIL secret check')) ?? '';
    assert.not.match(verdict, '09-clean', `${name}: only the leaking file is named`);
    assert.not.ok(r.out.includes(secret) || r.out.includes(encodeURIComponent(secret)), `${name}: the runner's output does not repeat the value`);
  }
});

test.run();
