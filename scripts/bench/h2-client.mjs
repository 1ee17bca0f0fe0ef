// One benchmark client process: N sequential 1 KB POSTs over one TLS HTTP/2 connection.
//   node scripts/bench/h2-client.mjs runtime|node-http2 PORT CA N
// Prints one JSON line: CPU µs per request (user+system), RSS, max RSS.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [kind, portText, caPath, nText] = process.argv.slice(2);
const port = Number(portText);
const ca = readFileSync(caPath, 'utf8');
const n = Number(nText);
const body = Buffer.alloc(1024, 'x');
const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);

async function runtimeClient() {
  const { Connection } = require(`${root}build/ts/src/h2/connection.js`);
  const conn = await Connection.connect({ host: '127.0.0.1', port, ca, caMode: 'only' });
  return {
    post: () => conn.request({ path: '/v1/events', method: 'POST', body, headers: { 'content-type': 'application/json' } }).collect().then((r) => r.status),
    close: () => conn.close(),
  };
}

async function nodeHttp2Client() {
  const http2 = require('node:http2');
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca });
  await new Promise((resolve, reject) => (session.once('connect', resolve), session.once('error', reject)));
  return {
    post: () =>
      new Promise((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/v1/events', 'content-type': 'application/json' });
        let status = 0;
        req.on('response', (h) => (status = h[':status']));
        req.on('data', () => {});
        req.on('end', () => resolve(status));
        req.on('error', reject);
        req.end(body);
      }),
    close: () => new Promise((resolve) => session.close(resolve)),
  };
}

const client = kind === 'runtime' ? await runtimeClient() : await nodeHttp2Client();
for (let i = 0; i < 500; i++) await client.post(); // warm-up
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const status = await client.post();
  if (status !== 204) throw new Error(`unexpected status ${status}`);
}
const wall = Number(process.hrtime.bigint() - t0) / 1e3;
const cpu = process.cpuUsage(cpu0);
const rss = process.memoryUsage().rss;
await client.close();
process.stdout.write(JSON.stringify({ kind, n, cpuUsPerReq: (cpu.user + cpu.system) / n, userUs: cpu.user / n, sysUs: cpu.system / n, wallUsPerReq: wall / n, rssMB: rss / 1048576, maxRssMB: process.resourceUsage().maxRSS / 1024 }) + '\n');
