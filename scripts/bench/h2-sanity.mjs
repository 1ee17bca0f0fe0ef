// First sanity figure: 10,000 sequential 1 KB POSTs over TLS on loopback, the runtime's
// Connection against a node:http2 client, interleaved A B A B, server on its own core.
//   node scripts/bench/h2-sanity.mjs [--n 10000] [--reps 3]
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : d);
const n = opt('--n', 10_000);
const reps = opt('--reps', 3);

execFileSync(process.execPath, [join(root, 'scripts/compile-ts.mjs')], { stdio: 'ignore' });
const { testPki } = await import(join(root, 'build/ts/test/support/certs.js'));
const pki = testPki.default ? testPki.default() : testPki();

const twoCores = (await import('node:os')).availableParallelism?.() >= 2;
const pin = (core, cmd) => (twoCores ? ['taskset', ['-c', String(core), ...cmd]] : [cmd[0], cmd.slice(1)]);
const env = { ...process.env };
const extraCa = env.NODE_EXTRA_CA_CERTS;
delete env.NODE_EXTRA_CA_CERTS; // same (clean) environment for both contenders

const [sCmd, sArgs] = pin(1, [process.execPath, join(root, 'scripts/bench/h2-server.mjs'), pki.server.keyPath, pki.server.certPath]);
const server = spawn(sCmd, sArgs, { stdio: ['ignore', 'pipe', 'inherit'], env });
const port = await new Promise((resolve) => server.stdout.once('data', (d) => resolve(Number(String(d).trim()))));

function runClient(kind) {
  const [cmd, cargs] = pin(0, [process.execPath, join(root, 'scripts/bench/h2-client.mjs'), kind, String(port), pki.caPath, String(n)]);
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, cargs, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${kind} exited ${code}`))));
  });
}

const results = { runtime: [], 'node-http2': [] };
for (let r = 0; r < reps; r++) {
  for (const kind of ['runtime', 'node-http2']) results[kind].push(await runClient(kind));
}
server.kill('SIGTERM');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`node ${process.version}, ${n} sequential 1 KB POSTs x ${reps} reps, NODE_EXTRA_CA_CERTS ${extraCa ? 'unset for the run (was set)' : 'unset'}, taskset ${twoCores ? 'server core 1, client core 0' : 'off'}`);
for (const kind of Object.keys(results)) {
  const rs = results[kind];
  console.log(`${kind.padEnd(11)} cpu ${median(rs.map((x) => x.cpuUsPerReq)).toFixed(1)} µs/req  wall ${median(rs.map((x) => x.wallUsPerReq)).toFixed(1)} µs/req  rss ${median(rs.map((x) => x.rssMB)).toFixed(1)} MB  maxrss ${median(rs.map((x) => x.maxRssMB)).toFixed(1)} MB`);
}
const ratio = median(results.runtime.map((x) => x.cpuUsPerReq)) / median(results['node-http2'].map((x) => x.cpuUsPerReq));
console.log(`cpu ratio runtime / node:http2 = ${ratio.toFixed(2)}`);
