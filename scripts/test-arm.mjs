// Runs the shipped bundle and the cross-built addons on every supported Node line: the ARM
// targets under qemu user-mode emulation (no ARM hardware, no binfmt, no chroot), linux-x64
// natively. The Node builds are scripts/arm-node.mjs's NODE_BUILDS: official builds from npm
// (x64: 18, 20, 22, 24, 26; arm64: 20, 22, 24, 26; armv7: 20.11.0, the newest armv7 build
// published) and Debian 12's own nodejs for armhf (18, in a sysroot of Debian packages). One
// addon per target serves all of them (Node-API): its SHA-256 is printed before and checked
// after the runs. Each scenario may start servers on the host (native Node); the emulated
// process only ever runs one script and never starts children — without binfmt an emulated
// program cannot start another emulated program.
//
//   node scripts/test-arm.mjs [--target linux-arm64|linux-armv7|linux-x64]… [--node LINE]…
//                             [--scenario NAME]… [--addon-dir DIR] [--timeout-scale N] [--verbose]
//
//   --node LINE     only these Node builds: a major (18, 20, 22, 24, 26), "debian" (Debian's
//                   nodejs) or "default" (one build per target: arm64 20, armv7 20, x64 18)
//   --addon-dir DIR the addons to test are DIR/cic-runtime.<target>.node (e.g. the Docker
//                   build's) instead of dist/'s: the bundle is copied beside them into
//                   build/arm/stage/ so it finds them the way a device install does
//
// Needs: dist/cic-runtime.js (node scripts/build.mjs), dist/cic-runtime.<target>.node
// (node scripts/cross.mjs; for linux-x64 node scripts/build.mjs), and for the ARM targets
// qemu-user-static and the target's libraries under /usr/<triple> (they come with Debian's
// cross toolchain packages). Prints one PASS/FAIL line per target, Node build and scenario, a
// table of the figures, and ends with `N passed, N failed`; exit 1 when anything failed.
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
//     figure?(run, ctx, host) → ms            the one number the summary table shows
//   }
//   ctx = {target, build, id, node, nodeVersion, qemu, sysroot, addon, bundle, armBuild, root}
//   (qemu and sysroot are null for the native target)
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS } from './cross.mjs';
import { NODE_BUILDS, armNodeSysroot, armNodeVersion, buildId, ensureArmNode } from './arm-node.mjs';
import { cicScenario } from './arm-cic.mjs';

/** Runs natively (no qemu) on this machine's own architecture. */
const NATIVE = { 'linux-x64': { qemu: null, sysroot: null } };
const RUN_TARGETS = { ...TARGETS, ...NATIVE };

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
    figure: (run) => run.ms,
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
      // The Node that loaded the addon is the build under test (not the host's node).
      const wantNode = `v${String(ctx.nodeVersion).split('+')[0]}`;
      if (ctx.nodeVersion !== 'custom' && addon.node !== wantNode) throw new Error(`the addon was loaded by Node ${addon.node}, expected ${wantNode}`);
      if (host.sessionsSeen() < 2 || host.drops() !== 1) {
        throw new Error(`the server saw ${host.sessionsSeen()} sessions and ${host.drops()} drops (want ≥2 and 1)`);
      }
      const ping = steps.get('ping');
      const dropped = steps.get('dropped');
      return `node ${addon.node}, nghttp2 ${addon.nghttp2}; spawn→first response ${run.at['first-response']} ms ` +
        `(in-process ${steps.get('first-response').t} ms), ping rtt ${ping.rttMs} ms, ` +
        `drop → ${dropped.requestError}/${dropped.closeCode}, reconnected in ${steps.get('reconnected').t - dropped.t} ms; total ${run.ms} ms`;
    },
    figure: (run) => run.at['first-response'],
  },
  cicScenario,
];

function lastStep(run) {
  const steps = run.lines.filter((l) => l.json?.step && l.json.step !== 'error');
  return steps.length ? steps[steps.length - 1].json.step : 'none';
}

// ---- runner ---------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = {
    targets: [], nodes: [], scenarios: [], addonDir: null,
    timeoutScale: Number(process.env.CIC_ARM_TIMEOUT_SCALE) || 1, verbose: false,
  };
  const usage = (msg) => {
    console.error(`test-arm: ${msg} (see the header of scripts/test-arm.mjs)`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--target') opts.targets.push(value());
    else if (a === '--node') opts.nodes.push(value());
    else if (a === '--scenario') opts.scenarios.push(value());
    else if (a === '--addon-dir') opts.addonDir = resolve(value());
    else if (a === '--timeout-scale') opts.timeoutScale = Number(value());
    else if (a === '--verbose' || a === '-v') opts.verbose = true;
    else usage(`unknown argument ${a}`);
  }
  for (const t of opts.targets) {
    if (!RUN_TARGETS[t]) usage(`unknown target ${t}; one of ${Object.keys(RUN_TARGETS).join(', ')}`);
  }
  const lines = new Set(NODE_BUILDS.map((b) => String(b.line)));
  for (const n of opts.nodes) {
    if (n !== 'debian' && n !== 'default' && !lines.has(n)) usage(`unknown --node ${n}; one of ${[...lines].join(', ')}, debian, default`);
  }
  for (const s of opts.scenarios) {
    if (!SCENARIOS.some((x) => x.name === s)) usage(`unknown scenario ${s}; one of ${SCENARIOS.map((x) => x.name).join(', ')}`);
  }
  if (opts.addonDir && !existsSync(opts.addonDir)) usage(`--addon-dir ${opts.addonDir} does not exist`);
  // By default: both ARM targets, and the native one where this machine is that target.
  if (!opts.targets.length) opts.targets = Object.keys(RUN_TARGETS).filter((t) => !NATIVE[t] || t === `${process.platform}-${process.arch}`);
  if (!(opts.timeoutScale > 0)) opts.timeoutScale = 1;
  return opts;
}

/** The Node builds to run for `target`, in NODE_BUILDS order, filtered by --node. */
function buildsFor(target, nodes) {
  return NODE_BUILDS.filter((b) => b.target === target).filter((b) =>
    !nodes.length || nodes.some((n) => (n === 'debian' ? !!b.debian : n === 'default' ? !!b.default : !b.debian && String(b.line) === n)));
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

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * The bundle and addon of `target` as the runs use them. With --addon-dir the bundle is copied
 * beside that directory's addon (build/arm/stage/), so `--version` and `run` load it the way a
 * device install does (beside the bundle); otherwise dist/ is used as it is.
 */
function stageFiles(target, addonDir) {
  const name = `cic-runtime.${target}.node`;
  if (!addonDir) return { bundle: BUNDLE, addon: join(root, 'dist', name), problems: [] };
  const from = join(addonDir, name);
  const stage = join(ARM_BUILD, 'stage');
  const problems = [];
  if (!existsSync(from)) problems.push(`${from} is missing`);
  if (!existsSync(BUNDLE)) problems.push(`${relative(root, BUNDLE)} is missing: run node scripts/build.mjs`);
  if (problems.length) return { problems };
  mkdirSync(stage, { recursive: true });
  copyFileSync(BUNDLE, join(stage, 'cic-runtime.js'));
  rmSync(join(stage, name), { force: true });
  copyFileSync(from, join(stage, name));
  return { bundle: join(stage, 'cic-runtime.js'), addon: join(stage, name), problems };
}

/** What is missing for `target` (each with its fix): checked once per target. */
function targetProblems(target, files) {
  const spec = RUN_TARGETS[target];
  const native = NATIVE[target] !== undefined;
  const problems = [...files.problems];
  if (problems.length) return problems;
  if (!existsSync(files.bundle)) problems.push(`${relative(root, files.bundle)} is missing: run node scripts/build.mjs`);
  const addonFix = native ? 'node scripts/build.mjs' : `node scripts/cross.mjs --target ${target}`;
  if (!existsSync(files.addon)) problems.push(`${relative(root, files.addon)} is missing: run ${addonFix}`);
  if (native && `${process.platform}-${process.arch}` !== target) problems.push(`${target} runs natively only on a ${target} machine`);
  if (!native) {
    if (!has(spec.qemu)) problems.push(`${spec.qemu} is missing: apt-get install -y --no-install-recommends qemu-user-static`);
    const libs = join(spec.sysroot, 'lib');
    if (!existsSync(join(libs, 'libc.so.6')) || !existsSync(join(libs, 'libstdc++.so.6'))) {
      problems.push(`the ${spec.triple} libraries are missing in ${spec.sysroot}: apt-get install -y --no-install-recommends ${spec.packages[0]}`);
    }
  }
  return problems;
}

/** Fetches `build` if needed; the context for its runs, or the problem. */
function prepareBuild(target, build, files) {
  const spec = RUN_TARGETS[target];
  let node;
  try {
    node = ensureArmNode(build);
  } catch (e) {
    return { problems: [e.message] };
  }
  // Debian's node runs in its own sysroot of Debian packages (its libnode, libuv, OpenSSL…),
  // which also holds the libc and libstdc++ the addon needs.
  const sysroot = armNodeSysroot(build) ?? spec.sysroot;
  const ctx = {
    target, build, id: buildId(build), node, nodeVersion: armNodeVersion(build), qemu: spec.qemu, sysroot,
    addon: files.addon, bundle: files.bundle, armBuild: ARM_BUILD, root,
  };
  return { problems: [], ctx };
}

function emulatedEnv(ctx, extra) {
  const env = { ...process.env, NO_COLOR: '1' };
  // Host settings that must not leak into the emulated Node (or make it pick the host addon);
  // a scenario's own (the cic scenario's heap limits, an explicit addon path) still apply.
  delete env.NODE_OPTIONS;
  delete env.CIC_ADDON_PATH;
  Object.assign(env, extra);
  if (ctx.sysroot) env.QEMU_LD_PREFIX = ctx.sysroot;
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
      const summary = scenario.check(run, ctx, host);
      return { ok: true, summary, figure: scenario.figure?.(run, ctx, host) };
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

function seconds(ms) {
  return ms === undefined ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const scenarios = SCENARIOS.filter((s) => !opts.scenarios.length || opts.scenarios.includes(s.name));
  // The host peers use the test PKI under build/test-certs (test/support/certs.ts).
  process.env.CIC_TEST_ROOT ??= root;
  const started = Date.now();
  let passed = 0;
  let failed = 0;
  const table = []; // one row per target × Node build
  const addons = []; // per target: the file every build loaded, hashed before and after
  let built;
  try {
    await buildTestScripts();
    built = true;
  } catch (e) {
    console.error(`test-arm: could not bundle test/arm/: ${e.message}`);
    built = false;
  }
  const notRun = (label, problems) => {
    for (const s of scenarios) {
      console.log(`FAIL ${label} ${s.name}: not run: ${problems.join('; ')}`);
      failed++;
    }
  };
  for (const target of opts.targets) {
    const builds = buildsFor(target, opts.nodes);
    if (!builds.length) continue;
    const files = built ? stageFiles(target, opts.addonDir) : { problems: ['test/arm/ did not bundle'] };
    const problems = targetProblems(target, files);
    if (problems.length) {
      for (const b of builds) notRun(buildId(b), problems);
      continue;
    }
    const spec = RUN_TARGETS[target];
    const addon = { target, file: files.addon, sha256: sha256(files.addon), loadedBy: [], builds: builds.length };
    addons.push(addon);
    const emulator = spec.qemu ? spawnSync(spec.qemu, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] : 'native';
    console.log(`# ${target}: addon ${relative(root, files.addon)} sha256 ${addon.sha256}; ${emulator}`);
    for (const build of builds) {
      const { problems: missing, ctx } = prepareBuild(target, build, files);
      const id = buildId(build);
      if (missing.length) {
        notRun(id, missing);
        table.push({ target, id, node: armNodeVersion(build) ?? '?', flavour: build.debian ? 'Debian' : 'official', results: {} });
        continue;
      }
      const where = ctx.qemu ? `QEMU_LD_PREFIX=${ctx.sysroot.startsWith(root) ? relative(root, ctx.sysroot) : ctx.sysroot}` : 'native';
      console.log(`# ${id}: ${relative(root, ctx.node)} (${build.debian ? 'Debian nodejs' : 'Node'} ${ctx.nodeVersion}), ${where}`);
      const row = { target, id, node: ctx.nodeVersion, flavour: build.debian ? 'Debian' : 'official', results: {} };
      table.push(row);
      for (const s of scenarios) {
        const r = await runScenario(ctx, s, opts);
        console.log(`${r.ok ? 'PASS' : 'FAIL'} ${id} ${s.name}: ${r.summary}`);
        if (!r.ok && r.output) console.log(r.output);
        row.results[s.name] = r;
        if (r.ok) passed++;
        else failed++;
      }
      if (scenarios.every((s) => row.results[s.name]?.ok)) addon.loadedBy.push(ctx.nodeVersion);
    }
  }

  // One addon per target for every Node line: the same file (unchanged after all the runs)
  // passed every scenario on every build.
  for (const a of addons) {
    const after = existsSync(a.file) ? sha256(a.file) : 'missing';
    const ok = after === a.sha256 && a.loadedBy.length === a.builds;
    console.log(`${ok ? 'PASS' : 'FAIL'} ${a.target} one-addon: ${relative(root, a.file)} sha256 ${a.sha256.slice(0, 16)}… ` +
      `${after === a.sha256 ? 'unchanged' : `changed to ${after}`} after the runs; every scenario passed on ${a.loadedBy.length} of ${a.builds} Node builds: ${a.loadedBy.join(', ') || 'none'}`);
    if (ok) passed++;
    else failed++;
  }

  if (table.length) {
    const cols = scenarios.map((s) => s.name);
    console.log('');
    console.log(`| target | Node | build | ${cols.join(' | ')} |`);
    console.log(`|---|---|---|${cols.map(() => '---|').join('')}`);
    for (const r of table) {
      const cells = cols.map((c) => {
        const x = r.results[c];
        return !x ? 'not run' : x.ok ? `pass ${seconds(x.figure)}` : 'FAIL';
      });
      console.log(`| ${r.target} | ${r.node} | ${r.flavour} | ${cells.join(' | ')} |`);
    }
    console.log('(figures: version = spawn → exit; h2-exchange = spawn → first response; cic = spawn → Clova.Hello)');
  }
  console.log(`test-arm: ${table.length} Node builds × ${scenarios.length} scenarios in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
