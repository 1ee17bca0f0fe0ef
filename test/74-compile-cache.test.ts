// The bundle's compile cache (src/compile-cache-banner.js) on the Node lines that have one
// (22, 24, 26; the official x64 builds test:arm also runs, fetched once by scripts/arm-node.mjs):
// the first run writes V8's code for the bundle into the directory, a second run uses it and
// writes nothing new, "off" writes nothing, and a directory that cannot be used turns the cache
// off without an error — including one under /proc, where Node's own recursive mkdir never
// returns. On Node 18 and 20 the banner does nothing at all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, bundlePath, root } from './support/runtime-process';

type ArmNode = { NODE_BUILDS: Array<{ target: string; line: number }>; ensureArmNode(b: unknown, o: { log: (m: string) => void }): string; armNodePath(b: unknown): string };

let nodes: Array<{ line: number; path: string }> = [];

test.before(async () => {
  await buildBundle();
  const m = (await import(join(root, 'scripts', 'arm-node.mjs'))) as ArmNode;
  for (const b of m.NODE_BUILDS.filter((x) => x.target === 'linux-x64' && x.line >= 22)) {
    m.ensureArmNode(b, { log: (msg) => console.log(msg) });
    nodes.push({ line: b.line, path: m.armNodePath(b) });
  }
});

function version(node: string, cache: string | undefined, extraEnv: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: '/nonexistent-home', ...extraEnv };
  if (cache !== undefined) env.CIC_COMPILE_CACHE = cache;
  const r = spawnSync(node, [bundlePath, '--version'], { env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, timedOut: r.error !== undefined };
}

/** Every file under `dir` with its modification time. */
function files(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p, statSync(p).mtimeMs);
    }
  };
  walk(dir);
  return out;
}

test('Node 22, 24 and 26: the cache is written once, then used; "off" and unusable directories run without it', () => {
  assert.ok(nodes.length >= 3, 'the official x64 builds of 22, 24 and 26');
  for (const { line, path } of nodes) {
    const dir = mkdtempSync(join(tmpdir(), `cic-cc-${line}-`));
    const first = version(path, dir);
    assert.is(first.code, 0, `Node ${line}: ${first.stderr}`);
    assert.match(first.stdout, /^cic-runtime \S+ nghttp2 \S+ linux-x64\n$/);
    const written = files(dir);
    assert.ok([...written.keys()].length > 0, `Node ${line}: the first run wrote the cache`);
    const second = version(path, dir);
    assert.is(second.code, 0);
    assert.is(second.stdout, first.stdout);
    assert.equal(files(dir), written, `Node ${line}: the second run used the cache and wrote nothing`);

    const off = mkdtempSync(join(tmpdir(), `cic-cc-off-${line}-`));
    const noCache = version(path, 'off', { CACHE_DIRECTORY: off });
    assert.is(noCache.code, 0);
    assert.is(files(off).size, 0, `Node ${line}: "off" writes nothing`);

    const file = join(off, 'a-file');
    writeFileSync(file, 'x');
    for (const bad of ['/proc/cic-no-such-dir', join(file, 'below-a-file'), '/nonexistent-root/cache']) {
      const r = version(path, bad);
      assert.not.ok(r.timedOut, `Node ${line}: ${bad} must not hang`);
      assert.is(r.code, 0, `Node ${line}: ${bad}: ${r.stderr}`);
      assert.is(r.stderr, '', `Node ${line}: ${bad}: no error output`);
      assert.is(r.stdout, first.stdout);
    }
    // The default location: systemd's CacheDirectory (CACHE_DIRECTORY), under cic-runtime/.
    const cacheDirectory = mkdtempSync(join(tmpdir(), `cic-cc-sd-${line}-`));
    chmodSync(cacheDirectory, 0o700);
    assert.is(version(path, undefined, { CACHE_DIRECTORY: cacheDirectory }).code, 0);
    assert.ok(files(join(cacheDirectory, 'cic-runtime')).size > 0, `Node ${line}: written under $CACHE_DIRECTORY/cic-runtime`);
    console.log(`Node ${line}: cache of ${[...written.keys()].length} file(s) written once and reused; off and 3 unusable directories ran without it`);
  }
});

test('Node 18/20 (this Node if older than 22): the banner does nothing, --version works', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cic-cc-host-'));
  const r = version(process.execPath, dir);
  assert.is(r.code, 0, r.stderr);
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) assert.is(files(dir).size, 0, 'no compile cache before Node 22');
});

test.run();
