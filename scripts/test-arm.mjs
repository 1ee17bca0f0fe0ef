// Runs the shipped bundle and the cross-built addons on the ARM targets under qemu user-mode
// emulation, with the official Node ARM builds (scripts/arm-node.mjs): no ARM hardware, no
// binfmt, no chroot. Each scenario may start servers on the host (native Node); the emulated
// process only ever runs one script and never starts children — without binfmt an emulated
// program cannot start another emulated program. The same scenarios also run natively on
// linux-x64 with the official Node 18 build: the oldest Node the bundle and addon support.
//
//   node scripts/test-arm.mjs [--target linux-arm64|linux-armv7|linux-x64]… [--scenario NAME]…
//                             [--timeout-scale N] [--verbose]
//
// Needs: dist/cic-runtime.js (node scripts/build.mjs), dist/cic-runtime.<target>.node
// (node scripts/cross.mjs; for linux-x64 node scripts/build.mjs), and for the ARM targets
// qemu-user-static and the target's libraries under /usr/<triple> (they come with Debian's
// cross toolchain packages). Prints one PASS/FAIL line
// per target and scenario and ends with `N passed, N failed`; exit 1 when anything failed.
//
// Adding a scenario is one entry in SCENARIOS:
//   {
//     name,                                   unique, used by --scenario
//     timeoutMs,                              emulated run limit (scaled by --timeout-scale)
//     hostSetup?(ctx) → host                  start host-side peers; host.close() runs afterwards
//     beforeRun?(ctx, host, emulate)          earlier emulated steps: await emulate({args, env})
//                                             → run (e.g. `login` before `run`)
//     emulatedScript(ctx, host) → path        JS file the emulated node runs (e.g. ctx.bundle)
//     args?(ctx, host) → string[]             its arguments
//     env?(ctx, host) → {}                    extra environment (e.g. CIC_ADDON_PATH: ctx.addon)
//     onLine?(line, json, io, ctx, host, stream)  each stdout/stderr line as it arrives (json
//                                             when it parses; stream 'stdout' | 'stderr');
//                                             io.write(data), io.end(), io.kill(signal), io.elapsedMs()
//     check(run, ctx, host) → summary         throw to fail; run = {code, signal, stdout, stderr,
//                                             lines, at: {step: ms since spawn}, ms, timedOut}
//   }
//   ctx = {target, node, nodeVersion, qemu, sysroot, addon, bundle, armBuild, root}
//   (qemu and sysroot are null for the native target)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS } from './cross.mjs';

/** Runs natively (no qemu): the oldest supported Node on this machine's own architecture. */
const NATIVE = { 'linux-x64': { qemu: null, sysroot: null } };
const RUN_TARGETS = { ...TARGETS, ...NATIVE };
import { armNodeVersion, ensureArmNode } from './arm-node.mjs';
import { cicScenario } from './arm-cic.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const BUNDLE = join(root, 'dist', 'cic-runtime.js');
const ARM_BUILD = join(root, 'build', 'arm');
const KILL_GRACE_MS = 5_000; // after SIGTERM on timeout, wait this long before SIGKILL

// ---- scenarios ------------------------------------------------------------------------------

/** Steps test/arm/h2-smoke.ts prints, in order. */
const H2_STEPS = ['addon', 'connected', 'first-response', 'post', 'ping', 'dropped', 'reconnected', 'done'];

export const SCENARIOS = [
  {
    // The shipped bundle, which finds dist/cic-runtime.<target>.node beside itself by the
    // emulated process.platform/process.arch (no $CIC_ADDON_PATH).
    name: 'version',
    timeoutMs: 60_000,
    emulatedScript: (ctx) => ctx.bundle,
    args: () => ['--version'],
    check(run, ctx) {
      if (run.code !== 0) throw new Error(`exit ${run.code ?? run.signal}`);
      const line = run.stdout.trim();
      if (!new RegExp(`^cic-runtime \\S+ nghttp2 \\d+\\.\\d+\\.\\d+ ${ctx.target}$`).test(line)) {
        throw new Error(`unexpected --version output ${JSON.stringify(line)}`);
      }
      return `"${line}" in ${run.ms} ms`;
    },
  },
  {
    // The runtime's HTTP/2 layer with the ARM addon against node:http2 on the host: GET, POST
    // (200 KiB, past the initial window), PING, forced reconnect after the server kills the socket.
    name: 'h2-exchange',
    timeoutMs: 180_000,
    async hostSetup() {
      const { startSmokeServer } = require(join(ARM_BUILD, 'host-server.js'));
      return startSmokeServer();
    },
    emulatedScript: () => join(ARM_BUILD, 'h2-smoke.js'),
    args: (ctx, host) => ['--port', String(host.port), '--ca', host.caPath],
    env: (ctx) => ({ CIC_ADDON_PATH: ctx.addon }),
    check(run, ctx, host) {
      const steps = new Map(run.lines.filter((l) => l.json?.step).map((l) => [l.json.step, l.json]));
      const error = steps.get('error');
      if (error) throw new Error(`failed after step "${lastStep(run)}": ${error.code ?? ''} ${error.message}`);
      const missing = H2_STEPS.filter((s) => !steps.has(s));
      if (missing.length) throw new Error(`no step ${missing.join(', ')} (last: ${lastStep(run)}; exit ${run.code ?? run.signal})`);
      if (run.code !== 0) throw new Error(`exit ${run.code ?? run.signal} after all steps`);
      const addon = steps.get('addon');
      const wantArch = { 'linux-armv7': 'arm', 'linux-arm64': 'arm64', 'linux-x64': 'x64' }[ctx.target];
      if (addon.arch !== wantArch) throw new Error(`the emulated process.arch is ${addon.arch}, expected ${wantArch}`);
      if (host.sessionsSeen() < 2 || host.drops() !== 1) {
        throw new Error(`the server saw ${host.sessionsSeen()} sessions and ${host.drops()} drops (want ≥2 and 1)`);
      }
      const ping = steps.get('ping');
      const dropped = steps.get('dropped');
      return `node ${addon.node}, nghttp2 ${addon.nghttp2}; spawn→first response ${run.at['first-response']} ms ` +
        `(in-process ${steps.get('first-response').t} ms), ping rtt ${ping.rttMs} ms, ` +
        `drop → ${dropped.requestError}/${dropped.closeCode}, reconnected in ${steps.get('reconnected').t - dropped.t} ms; total ${run.ms} ms`;
    },
  },
  cicScenario,
];

function lastStep(run) {
  const steps = run.lines.filter((l) => l.json?.step && l.json.step !== 'error');
  return steps.length ? steps[steps.length - 1].json.step : 'none';
}

// ---- runner ---------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { targets: [], scenarios: [], timeoutScale: Number(process.env.CIC_ARM_TIMEOUT_SCALE) || 1, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--target') opts.targets.push(argv[++i]);
    else if (a === '--scenario') opts.scenarios.push(argv[++i]);
    else if (a === '--timeout-scale') opts.timeoutScale = Number(argv[++i]);
    else if (a === '--verbose' || a === '-v') opts.verbose = true;
    else {
      console.error(`test-arm: unknown argument ${a} (see the header of scripts/test-arm.mjs)`);
      process.exit(2);
    }
  }
  for (const t of opts.targets) {
    if (!RUN_TARGETS[t]) {
      console.error(`test-arm: unknown target ${t}; one of ${Object.keys(RUN_TARGETS).join(', ')}`);
      process.exit(2);
    }
  }
  for (const s of opts.scenarios) {
    if (!SCENARIOS.some((x) => x.name === s)) {
      console.error(`test-arm: unknown scenario ${s}; one of ${SCENARIOS.map((x) => x.name).join(', ')}`);
      process.exit(2);
    }
  }
  // By default: both ARM targets, and the native one where this machine is that target.
  if (!opts.targets.length) opts.targets = Object.keys(RUN_TARGETS).filter((t) => !NATIVE[t] || t === `${process.platform}-${process.arch}`);
  if (!(opts.timeoutScale > 0)) opts.timeoutScale = 1;
  return opts;
}

function has(cmd) {
  return spawnSync('sh', ['-c', 'command -v "$1" >/dev/null 2>&1', 'sh', cmd]).status === 0;
}

/** Bundles the test/arm/ scripts (host and emulated side) into build/arm/. */
async function buildTestScripts() {
  const { build } = await import('esbuild');
  mkdirSync(ARM_BUILD, { recursive: true });
  await build({
    entryPoints: [join(root, 'test/arm/h2-smoke.ts'), join(root, 'test/arm/host-server.ts')],
    outdir: ARM_BUILD,
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    logLevel: 'warning',
  });
}

/** What is missing for `target` (each with its fix), and the context when nothing is. */
function prepareTarget(target) {
  const spec = RUN_TARGETS[target];
  const native = NATIVE[target] !== undefined;
  const problems = [];
  const addon = join(root, 'dist', `cic-runtime.${target}.node`);
  if (!existsSync(BUNDLE)) problems.push(`${relative(root, BUNDLE)} is missing: run node scripts/build.mjs`);
  const addonFix = native ? 'node scripts/build.mjs' : `node scripts/cross.mjs --target ${target}`;
  if (!existsSync(addon)) problems.push(`${relative(root, addon)} is missing: run ${addonFix}`);
  if (native && `${process.platform}-${process.arch}` !== target) problems.push(`${target} runs natively only on a ${target} machine`);
  if (!native) {
    if (!has(spec.qemu)) problems.push(`${spec.qemu} is missing: apt-get install -y --no-install-recommends qemu-user-static`);
    const libs = join(spec.sysroot, 'lib');
    if (!existsSync(join(libs, 'libc.so.6')) || !existsSync(join(libs, 'libstdc++.so.6'))) {
      problems.push(`the ${spec.triple} libraries are missing in ${spec.sysroot}: apt-get install -y --no-install-recommends ${spec.packages[0]}`);
    }
  }
  let node;
  if (!problems.length) {
    try {
      node = ensureArmNode(target);
    } catch (e) {
      problems.push(e.message);
    }
  }
  const ctx = {
    target, node, nodeVersion: armNodeVersion(target), qemu: spec.qemu, sysroot: spec.sysroot, addon,
    bundle: BUNDLE, armBuild: ARM_BUILD, root,
  };
  return { problems, ctx };
}

function emulatedEnv(ctx, extra) {
  const env = { ...process.env, NO_COLOR: '1', ...extra };
  if (ctx.sysroot) env.QEMU_LD_PREFIX = ctx.sysroot;
  // Host settings that must not leak into the emulated Node (or make it pick the host addon).
  delete env.NODE_OPTIONS;
  if (!extra.CIC_ADDON_PATH) delete env.CIC_ADDON_PATH;
  return env;
}

function runEmulated(ctx, scenario, host, timeoutMs, verbose) {
  return new Promise((resolve) => {
    const script = scenario.emulatedScript(ctx, host);
    const argv = [ctx.node, script, ...(scenario.args?.(ctx, host) ?? [])];
    const env = emulatedEnv(ctx, scenario.env?.(ctx, host) ?? {});
    const started = process.hrtime.bigint();
    const elapsedMs = () => Number((process.hrtime.bigint() - started) / 1_000_000n);
    const [cmd, ...cmdArgs] = ctx.qemu ? [ctx.qemu, ...argv] : argv;
    const child = spawn(cmd, cmdArgs, { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const run = { code: null, signal: null, stdout: '', stderr: '', lines: [], at: {}, ms: 0, timedOut: false };
    const io = {
      write: (data) => child.stdin.write(data),
      end: () => child.stdin.end(),
      kill: (signal = 'SIGTERM') => child.kill(signal),
      elapsedMs,
    };
    if (!scenario.onLine) child.stdin.end();
    child.stdin.on('error', () => {}); // the script may exit without reading stdin
    const partial = { stdout: '', stderr: '' };
    const onText = (stream, text) => {
      run[stream] += text;
      partial[stream] += text;
      let nl;
      while ((nl = partial[stream].indexOf('\n')) >= 0) {
        const line = partial[stream].slice(0, nl);
        partial[stream] = partial[stream].slice(nl + 1);
        let json;
        try {
          json = line.startsWith('{') ? JSON.parse(line) : undefined;
        } catch {
          json = undefined;
        }
        const ms = elapsedMs();
        if (stream === 'stdout') {
          if (json?.step && run.at[json.step] === undefined) run.at[json.step] = ms;
          run.lines.push({ ms, text: line, json });
        }
        if (verbose) console.log(`    [${ctx.target} ${scenario.name} ${stream} +${ms} ms] ${line}`);
        try {
          scenario.onLine?.(line, json, io, ctx, host, stream);
        } catch (e) {
          run.onLineError = e;
          child.kill('SIGKILL');
        }
      }
    };
    child.stdout.on('data', (d) => onText('stdout', d.toString('utf8')));
    child.stderr.on('data', (d) => onText('stderr', d.toString('utf8')));
    let killTimer;
    const timer = setTimeout(() => {
      run.timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    child.on('error', (e) => {
      run.stderr += `spawn ${cmd}: ${e.message}\n`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      Object.assign(run, { code, signal, ms: elapsedMs() });
      resolve(run);
    });
  });
}

function tail(text, lines = 12) {
  return text.trim().split('\n').slice(-lines).map((l) => `      | ${l}`).join('\n');
}

async function runScenario(ctx, scenario, opts) {
  const timeoutMs = Math.round(scenario.timeoutMs * opts.timeoutScale);
  let host;
  try {
    host = scenario.hostSetup ? await scenario.hostSetup(ctx) : undefined;
    if (scenario.beforeRun) {
      const emulate = (step) =>
        runEmulated(ctx, { name: `${scenario.name}:before`, emulatedScript: scenario.emulatedScript, ...step, args: () => step.args ?? [], env: () => step.env ?? {} }, host, timeoutMs, opts.verbose);
      await scenario.beforeRun(ctx, host, emulate);
    }
    const run = await runEmulated(ctx, scenario, host, timeoutMs, opts.verbose);
    if (run.onLineError) throw run.onLineError;
    try {
      if (run.timedOut) throw new Error(`timed out after ${timeoutMs} ms`);
      return { ok: true, summary: scenario.check(run, ctx, host) };
    } catch (e) {
      const output = [run.stdout && `stdout:\n${tail(run.stdout)}`, run.stderr && `stderr:\n${tail(run.stderr)}`].filter(Boolean).join('\n');
      return { ok: false, summary: e.message, output };
    }
  } catch (e) {
    return { ok: false, summary: `host side: ${e.message}` };
  } finally {
    try {
      await host?.close?.();
    } catch {
      /* a teardown error must not hide the result */
    }
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const scenarios = SCENARIOS.filter((s) => !opts.scenarios.length || opts.scenarios.includes(s.name));
  // The host peers use the test PKI under build/test-certs (test/support/certs.ts).
  process.env.CIC_TEST_ROOT ??= root;
  let passed = 0;
  let failed = 0;
  let built;
  try {
    await buildTestScripts();
    built = true;
  } catch (e) {
    console.error(`test-arm: could not bundle test/arm/: ${e.message}`);
    built = false;
  }
  for (const target of opts.targets) {
    const { problems, ctx } = built ? prepareTarget(target) : { problems: ['test/arm/ did not bundle'], ctx: null };
    if (problems.length) {
      for (const s of scenarios) {
        console.log(`FAIL ${target} ${s.name}: not run: ${problems.join('; ')}`);
        failed++;
      }
      continue;
    }
    if (ctx.qemu) {
      const qemuVersion = spawnSync(ctx.qemu, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
      console.log(`# ${target}: ${relative(root, ctx.node)} (Node ${ctx.nodeVersion}) under ${qemuVersion}, QEMU_LD_PREFIX=${ctx.sysroot}`);
    } else {
      console.log(`# ${target}: ${relative(root, ctx.node)} (Node ${ctx.nodeVersion}, the oldest supported), native`);
    }
    for (const s of scenarios) {
      const r = await runScenario(ctx, s, opts);
      console.log(`${r.ok ? 'PASS' : 'FAIL'} ${target} ${s.name}: ${r.summary}`);
      if (!r.ok && r.output) console.log(r.output);
      if (r.ok) passed++;
      else failed++;
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
