// Runs the soak test (test/faults/70-soak.test.ts) for a chosen time, e.g. overnight:
//
//   node scripts/soak.mjs [--seconds N] [--reconnect-seconds N]
//
// Defaults: 3600 s, a forced reconnect every 30 s. The runner's per-file time limit is set
// to the duration plus five minutes (start-up, settling, reporting). The result line
// `soak-result: …` is printed; the full output is in build/test-logs/.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const seconds = Number(opt('--seconds', '3600'));
const reconnect = Number(opt('--reconnect-seconds', '30'));
if (!(seconds > 0) || !(reconnect > 0) || seconds < 2.5 * reconnect) {
  console.error('usage: node scripts/soak.mjs [--seconds N] [--reconnect-seconds N]  (N seconds ≥ 2.5 × reconnect period)');
  process.exit(2);
}

const child = spawn(
  process.execPath,
  [join(root, 'scripts', 'test.mjs'), '--suite', 'faults', '--timeout', String(seconds + 300), 'test/faults/70-soak.test.ts'],
  { cwd: root, stdio: 'inherit', env: { ...process.env, CIC_SOAK_SECONDS: String(seconds), CIC_SOAK_RECONNECT_SECONDS: String(reconnect) } },
);
child.on('close', (code) => {
  try {
    const log = readFileSync(join(root, 'build', 'test-logs', 'test_faults_70-soak.test.ts.log'), 'utf8');
    const line = log.split('\n').find((l) => l.startsWith('soak-result:'));
    if (line) console.log(line);
  } catch {
    // No log: the runner already said why.
  }
  process.exit(code ?? 1);
});
