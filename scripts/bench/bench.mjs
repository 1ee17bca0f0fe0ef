// `npm run bench`: builds the bench bundle (dist/cic-runtime-bench.js) and runs it. Every
// option is passed through (node dist/cic-runtime-bench.js --help), plus:
//
//   --emulate linux-arm64|linux-armv7   run the clients (and the bare node) under qemu user-mode
//                    emulation with the official Node ARM build (scripts/arm-node.mjs) and the
//                    cross-built addon (npm run cross); the server and the orchestrator stay
//                    native on the host, which also times the emulated cold starts
//   --no-build       use the bench bundle as it is
//
//   npm run bench                           # the full run: 5 interleaved repetitions
//   npm run bench -- --quick                # a smoke run (about a minute)
//   npm run bench -- --json build/bench/result.json   # + result.svg beside it
//   npm run bench -- --emulate linux-arm64 --quick
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_BUNDLE, buildBenchBundle } from './bundle.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const take = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [, value] = args.splice(i, 2);
  return value;
};
const noBuild = args.includes('--no-build') ? (args.splice(args.indexOf('--no-build'), 1), true) : false;
const emulate = take('--emulate');

function fail(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

const hostTarget = `linux-${process.arch === 'arm' ? 'armv7' : process.arch}`;
if (!existsSync(join(root, 'dist', 'cic-runtime.js')) || !existsSync(join(root, 'dist', `cic-runtime.${hostTarget}.node`))) {
  console.error('bench: dist/ is incomplete; running node scripts/build.mjs');
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) fail('the release build failed');
}
if (!noBuild || !existsSync(BENCH_BUNDLE)) await buildBenchBundle();

const extra = [];
if (emulate) {
  const { TARGETS } = await import('../cross.mjs');
  const spec = TARGETS[emulate];
  if (!spec) fail(`--emulate: unknown target ${emulate}; one of ${Object.keys(TARGETS).join(', ')}`);
  if (spawnSync(spec.qemu, ['--version'], { stdio: 'ignore' }).status !== 0) fail(`${spec.qemu} is missing: apt-get install -y qemu-user-static`);
  if (!existsSync(join(spec.sysroot, 'lib'))) fail(`the ${spec.triple} libraries are missing in ${spec.sysroot}: apt-get install -y ${spec.packages[0]}`);
  if (!existsSync(join(root, 'dist', `cic-runtime.${emulate}.node`))) fail(`dist/cic-runtime.${emulate}.node is missing: npm run cross -- --target ${emulate}`);
  const { ensureArmNode, armNodeVersion } = await import('../arm-node.mjs');
  const armNode = ensureArmNode(emulate);
  extra.push('--client-exec', `${spec.qemu} ${armNode}`, '--client-env', `QEMU_LD_PREFIX=${spec.sysroot}`);
  if (!args.includes('--label')) extra.push('--label', `${emulate}, official Node ${armNodeVersion(emulate)} under ${spec.qemu}`);
}

const child = spawn(process.execPath, [BENCH_BUNDLE, ...extra, ...args], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
