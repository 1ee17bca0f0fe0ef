// Bundles the benchmark (scripts/bench/src/main.ts: orchestrator, bench CIC server, runtime and
// node:http2 clients) into dist/cic-runtime-bench.js with the release build's settings, so the
// runtime contender runs the code the shipped bundle runs. The bench server's throwaway TLS
// identity (CA + 127.0.0.1/::1/localhost certificate, openssl) is generated here and embedded,
// so the bundle needs no openssl on a device.
//
//   node scripts/bench/bundle.mjs        → dist/cic-runtime-bench.js
import { build, transform } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { releaseBuildOptions } from '../release-options.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dist = join(root, 'dist');
export const BENCH_BUNDLE = join(dist, 'cic-runtime-bench.js');

/** CA + server certificate for loopback, valid 10 years; undefined without openssl. */
export function generateBenchPki() {
  const dir = mkdtempSync(join(tmpdir(), 'cic-bench-pki-'));
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
      '-days', '3650', '-subj', '/CN=cic-runtime bench CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '3650', '-extfile', 'server.ext');
    const read = (f) => readFileSync(join(dir, f), 'utf8');
    return { ca: read('ca.crt'), cert: read('server.crt'), key: read('server.key') };
  } catch (e) {
    console.error(`bench bundle: no embedded PKI (openssl failed: ${e.message.split('\n')[0]}); the bench will need --ca/--cert/--key`);
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function buildBenchBundle({ outfile = BENCH_BUNDLE } = {}) {
  mkdirSync(dist, { recursive: true });
  const common = await releaseBuildOptions(); // the release bundle's settings
  await build({
    ...common,
    entryPoints: [join(root, 'scripts/bench/src/main.ts')],
    outfile,
    define: { ...common.define, __BENCH_PKI__: JSON.stringify(generateBenchPki() ?? null) },
    // The release bundle's compile-cache banner, so both contenders can be measured with a
    // warm cache (the orchestrator turns it off for every other figure).
    banner: { js: `#!/usr/bin/env node\n"use strict";${(await transform(readFileSync(join(root, 'src/compile-cache-banner.js'), 'utf8'), { minify: true, target: 'node18' })).code}` },
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await buildBenchBundle();
  console.log(`bench bundle: ${out.replace(root, '')}`);
}
