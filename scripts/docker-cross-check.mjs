// Runs the Docker path of the cross build for real, end to end, on a Debian 12 machine without
// Docker, and proves its addons equal to the local cross build's:
//
//   1. install what is missing (Debian 12: docker.io, containerd, runc, mmdebstrap; the cross
//      toolchains, qemu-user-static, file; the buildx plugin from Debian 13, unpacked privately)
//   2. start the private engine (scripts/docker-engine.sh), build the base image from Debian
//      packages (no container registry needed)
//   3. node scripts/cross.mjs --docker … --out build/docker-check/docker/ (one buildx call per
//      target), then the local cross build (node scripts/cross.mjs) → build/docker-check/local/;
//      both again when the sources changed meanwhile (a shared checkout)
//   4. compare per target: bytes, exported symbols, needed libraries, GLIBC/GLIBCXX/CXXABI
//      version floor, file(1), and for armv7 the ARM attributes
//   5. stop the engine — also when a step fails or the run is interrupted
//   6. the qemu scenarios (scripts/test-arm.mjs --addon-dir build/docker-check/docker) on the
//      default Node build per ARM target (--all-nodes: every Node build of the matrix)
//
// Hazard on a shared checkout: `node-gyp rebuild` (npm install) deletes build/ whole, with
// build/docker-check/ and build/arm/ in it; the engine keeps nothing there.
//
//   node scripts/docker-cross-check.mjs [--all-nodes] [--purge] [--no-install]
//
//   --purge       also delete the engine's data root afterwards (images, build cache)
//   --no-install  fail instead of installing missing packages
//
// Needs root and a Debian 12 apt configuration. Network: the Debian mirror apt is configured
// with and the npm registry npm is configured with, nothing else. Prints PASS/FAIL lines, the
// time of each phase, and ends with `N passed, N failed`; exit 1 when anything failed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS, missingPackages } from './cross.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const ENGINE = join(root, 'scripts/docker-engine.sh');
const CHECK_DIR = join(root, 'build', 'docker-check');
const LOCAL = join(CHECK_DIR, 'local');
const DOCKER = join(CHECK_DIR, 'docker');
const BASE_IMAGE = process.env.CIC_DOCKER_BASE_IMAGE || 'cic-build-base:bookworm';
const ARM = Object.keys(TARGETS);

const opts = { allNodes: false, purge: false, install: true };
for (const a of process.argv.slice(2)) {
  if (a === '--all-nodes') opts.allNodes = true;
  else if (a === '--purge') opts.purge = true;
  else if (a === '--no-install') opts.install = false;
  else {
    console.error(`docker-cross-check: unknown argument ${a} (see the header of scripts/docker-cross-check.mjs)`);
    process.exit(2);
  }
}

let passed = 0;
let failed = 0;
const phases = [];
const result = (ok, what) => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);
  if (ok) passed++;
  else failed++;
  return ok;
};

let current; // the child running now, stopped on SIGINT/SIGTERM before the engine is
/** Runs a command with inherited output, bounded in time; resolves with its exit status. */
function run(cmd, args, { timeoutMs, env, capture = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'] });
    current = child;
    let out = '';
    if (capture) {
      child.stdout.on('data', (d) => {
        out += d;
        process.stdout.write(d);
      });
    }
    const timer = setTimeout(() => {
      console.error(`docker-cross-check: ${cmd} ${args[0] ?? ''} still running after ${timeoutMs / 60_000} min: SIGTERM`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, timeoutMs);
    child.on('error', (e) => console.error(`docker-cross-check: ${cmd}: ${e.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      resolve({ status: code ?? signal, out });
    });
  });
}

async function phase(name, fn) {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    phases.push([name, (Date.now() - started) / 1000]);
  }
}

function engineEnv() {
  const out = spawnSync(ENGINE, ['env'], { encoding: 'utf8', timeout: 15_000 }).stdout ?? '';
  return Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
}

let engineStarted = false;
async function stopEngine() {
  if (!engineStarted) return;
  engineStarted = false;
  const r = spawnSync(ENGINE, ['stop', ...(opts.purge ? ['--purge'] : [])], { stdio: 'inherit', timeout: 120_000 });
  result(r.status === 0, `engine stopped${opts.purge ? ' and purged' : ''}`);
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    console.error(`docker-cross-check: ${sig}: stopping`);
    current?.kill('SIGTERM');
    await stopEngine();
    console.log(`${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  });
}

// ---- comparing two builds of one target -----------------------------------------------------

function tool(t, name) {
  return `${TARGETS[t].triple}-${name}`;
}
function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout;
}

/** The properties that decide whether the addon loads and links the same on a device. */
function traits(t, file) {
  const dyn = sh(tool(t, 'readelf'), ['--dyn-syms', '-W', file]);
  const exported = [...dyn.matchAll(/^\s*\d+:\s+\S+\s+\d+\s+(\w+)\s+(\w+)\s+\w+\s+(?!UND)\S+\s+(\S+)/gm)]
    .filter((m) => m[2] !== 'LOCAL').map((m) => m[3]).sort();
  const imported = [...dyn.matchAll(/\sUND\s+(\S+)/g)].map((m) => m[1]).sort();
  const floor = {};
  for (const m of dyn.matchAll(/@(GLIBC|GLIBCXX|CXXABI)_([\d.]+)/g)) {
    const [, lib, ver] = m;
    if (!floor[lib] || cmpVersion(ver, floor[lib]) > 0) floor[lib] = ver;
  }
  const needed = [...sh(tool(t, 'readelf'), ['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const fileOut = sh('file', ['-b', file]).trim().replace(/BuildID\[sha1\]=[0-9a-f]+, /, '');
  const attrs = TARGETS[t].hardFloat
    ? sh(tool(t, 'readelf'), ['-A', file]).split('\n').filter((l) => /Tag_/.test(l)).map((l) => l.trim()).join('; ')
    : '(none)';
  const sections = sh(tool(t, 'readelf'), ['-S', '-W', file]).split('\n')
    .map((l) => l.match(/\]\s+(\.\S+)\s+\S+\s+\S+\s+\S+\s+([0-9a-f]+)/)).filter(Boolean).map((m) => `${m[1]}:${parseInt(m[2], 16)}`).join(' ');
  return { exported, imported, floor, needed, file: fileOut, attrs, sections };
}

function cmpVersion(a, b) {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** One hash over everything both builds compile from. */
function inputsHash() {
  const h = createHash('sha256');
  const add = (p) => {
    if (statSync(p).isDirectory()) for (const n of readdirSync(p).sort()) add(join(p, n));
    else h.update(`${relative(root, p)}\0`).update(readFileSync(p));
  };
  for (const p of ['binding.gyp', 'native', 'scripts/nghttp2.sh', 'package-lock.json']) add(join(root, p));
  return h.digest('hex');
}

function compare(t) {
  const name = `cic-runtime.${t}.node`;
  const a = join(LOCAL, name), b = join(DOCKER, name);
  if (!existsSync(a) || !existsSync(b)) return result(false, `${t} compare: ${existsSync(a) ? relative(root, b) : relative(root, a)} is missing`);
  const [ha, hb] = [sha256(a), sha256(b)];
  if (ha === hb) result(true, `${t} bytes: identical, ${statSync(a).size} bytes, sha256 ${ha}`);
  else console.log(`note ${t} bytes: differ (local ${statSync(a).size} bytes sha256 ${ha}, docker ${statSync(b).size} bytes sha256 ${hb}); equivalence below`);
  const [ta, tb] = [traits(t, a), traits(t, b)];
  const same = (x, y) => JSON.stringify(x) === JSON.stringify(y);
  result(same(ta.exported, tb.exported), `${t} exported symbols: ${tb.exported.join(', ')}${same(ta.exported, tb.exported) ? '' : ` (local: ${ta.exported.join(', ')})`}`);
  result(same(ta.imported, tb.imported), `${t} imported symbols: ${tb.imported.length} the same${same(ta.imported, tb.imported) ? '' : ` — NOT the same as the local ${ta.imported.length}`}`);
  result(same(ta.needed, tb.needed), `${t} needed libraries: ${tb.needed.join(', ')}`);
  const floor = (f) => Object.entries(f).map(([k, v]) => `${k}_${v}`).join(', ');
  result(same(ta.floor, tb.floor), `${t} version floor: ${floor(tb.floor)}${same(ta.floor, tb.floor) ? '' : ` (local: ${floor(ta.floor)})`}`);
  result(ta.file === tb.file, `${t} file(1): ${tb.file}${ta.file === tb.file ? '' : ` (local: ${ta.file})`}`);
  if (TARGETS[t].hardFloat) result(ta.attrs === tb.attrs, `${t} ARM attributes: ${tb.attrs}`);
  if (ha !== hb) console.log(`note ${t} sections: local ${ta.sections}\nnote ${t} sections: docker ${tb.sections}`);
  return true;
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  if (process.getuid?.() !== 0) {
    result(false, 'must run as root (dockerd, mounts, apt-get)');
    return;
  }

  const ok = await phase('install', async () => {
    const need = [...missingPackages(ARM)];
    for (const t of ARM) if (spawnSync('sh', ['-c', `command -v ${TARGETS[t].qemu}`], { stdio: 'ignore' }).status !== 0) need.push('qemu-user-static');
    const pkgs = [...new Set(need)];
    if (pkgs.length) {
      if (!opts.install) return result(false, `missing packages: ${pkgs.join(' ')} (without --no-install they are installed)`);
      console.log(`docker-cross-check: installing ${pkgs.join(' ')}`);
      const env = { DEBIAN_FRONTEND: 'noninteractive' };
      for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...pkgs]]) {
        const r = await run('apt-get', args, { timeoutMs: 15 * 60_000, env });
        if (r.status !== 0) return result(false, `apt-get ${args[0]} failed (${r.status})`);
      }
    }
    if (!opts.install && spawnSync('sh', ['-c', 'command -v dockerd && command -v mmdebstrap'], { stdio: 'ignore' }).status !== 0) {
      return result(false, 'docker.io / mmdebstrap are not installed (without --no-install they are)');
    }
    const r = await run(ENGINE, ['install'], { timeoutMs: 20 * 60_000 });
    return result(r.status === 0, 'docker.io, containerd, runc, mmdebstrap (Debian 12) and the buildx plugin (Debian 13) present');
  });
  if (!ok) return;

  try {
    const up = await phase('engine start', async () => {
      engineStarted = true; // from here on a failure stops whatever part of it came up
      const r = await run(ENGINE, ['start'], { timeoutMs: 3 * 60_000 });
      return result(r.status === 0, 'private engine started');
    });
    if (!up) return;
    const env = engineEnv();

    const base = await phase('base image', async () => {
      const r = await run(ENGINE, ['base-image'], { timeoutMs: 25 * 60_000 });
      return result(r.status === 0, `base image ${BASE_IMAGE} (mmdebstrap, Debian packages only)`);
    });
    if (!base) return;

    // Both builds must see the same sources. On a shared checkout someone may edit native/
    // meanwhile: the inputs are hashed before the first build and after the second, and both
    // builds run again (mostly from cache) when they changed.
    for (let attempt = 1; ; attempt++) {
      const before = inputsHash();
      const built = await phase('docker cross build', async () => {
        rmSync(DOCKER, { recursive: true, force: true });
        const r = await run(process.execPath, [join(root, 'scripts/cross.mjs'), '--docker', '--docker-base', BASE_IMAGE,
          '--docker-network', 'host', '--out', DOCKER], { timeoutMs: 90 * 60_000, env });
        return result(r.status === 0, `npm run cross -- --docker → ${relative(root, DOCKER)}/ (docker buildx build, one call per target)`);
      });
      if (!built) return;
      const local = await phase('local cross build', async () => {
        const r = await run(process.execPath, [join(root, 'scripts/cross.mjs')], { timeoutMs: 40 * 60_000 });
        if (r.status !== 0) return result(false, `local cross build failed (${r.status})`);
        rmSync(LOCAL, { recursive: true, force: true });
        mkdirSync(LOCAL, { recursive: true });
        for (const t of ARM) copyFileSync(join(root, 'dist', `cic-runtime.${t}.node`), join(LOCAL, `cic-runtime.${t}.node`));
        return result(true, `local cross build (node scripts/cross.mjs) → ${relative(root, LOCAL)}/`);
      });
      if (!local) return;
      if (inputsHash() === before) break;
      if (attempt === 2) return result(false, 'the sources changed during both attempts: the builds cannot be compared');
      console.log('note the sources (binding.gyp, native/, scripts/nghttp2.sh) changed during the builds: building both again');
    }

    await phase('compare', async () => {
      for (const t of ARM) {
        try {
          compare(t);
        } catch (e) {
          result(false, `${t} compare: ${e.message}`);
        }
      }
    });
  } finally {
    await phase('engine stop', stopEngine);
  }

  await phase('qemu scenarios', async () => {
    const args = [join(root, 'scripts/test-arm.mjs'), '--addon-dir', DOCKER, ...ARM.flatMap((t) => ['--target', t])];
    if (!opts.allNodes) args.push('--node', 'default');
    const r = await run(process.execPath, args, { timeoutMs: 30 * 60_000, capture: true });
    const totals = r.out.match(/^(\d+) passed, (\d+) failed/m);
    if (!totals) return result(false, `test-arm printed no totals (exit ${r.status})`);
    passed += Number(totals[1]);
    failed += Number(totals[2]);
    console.log(`docker-cross-check: the qemu scenarios on the Docker-built addons: ${totals[0]}`);
  });

  console.log('');
  for (const [name, s] of phases) console.log(`docker-cross-check: ${name.padEnd(20)} ${s.toFixed(1)} s`);
  console.log(`docker-cross-check: total                ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
  await main();
} catch (e) {
  result(false, `unexpected: ${e.stack ?? e.message}`);
  await stopEngine();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
