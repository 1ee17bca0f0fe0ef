// `npm start`: builds what is missing, starts a local HTTP/2 TLS peer on 127.0.0.1 with a
// generated CA, and shows the runtime's HTTP/2 layer at work: a GET, a streamed POST, PING
// round trips, and a connection loss that settles in-flight work with a coded error.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const step = (msg) => console.log(`\n▶ ${msg}`);

if (!existsSync(join(root, 'build/Release/cic_h2.node'))) {
  step('building the native addon');
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { compileTs } = await import('./compile-ts.mjs');
await compileTs();

const { Connection } = require(join(root, 'build/ts/src/h2/connection.js'));
const { loadBinding } = require(join(root, 'build/ts/src/h2/native.js'));
const { startH2Server, readBody } = require(join(root, 'build/ts/test/support/h2-server.js'));

console.log(`cic-runtime demo — nghttp2 ${loadBinding().nghttp2Version()} inside the addon, Node ${process.version}`);
const server = await startH2Server();
server.route('/hello', (s) => {
  s.respond({ ':status': 200, 'content-type': 'text/plain' });
  s.end('hello from the local HTTP/2 peer');
});
server.route('/upload', async (s) => {
  const body = await readBody(s);
  s.respond({ ':status': 200 });
  s.end(`received ${body.length} bytes`);
});
let arrived;
const hangArrived = new Promise((r) => (arrived = r));
server.route('/hang', () => arrived());
console.log(`local TLS HTTP/2 peer on 127.0.0.1:${server.port} (certificate from a generated test CA)`);

const conn = await Connection.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, caMode: 'only' });
step('GET /hello');
const hello = await conn.request({ path: '/hello' }).collect();
console.log(`  ${hello.status} ${hello.body}`);

step('POST /upload — 256 KiB streamed in 16 KiB chunks');
const up = conn.request({ path: '/upload', body: 'stream' });
const upDone = up.collect();
for (let i = 0; i < 16; i++) if (!up.write(Buffer.alloc(16384, i))) await new Promise((r) => up.once('drain', r));
up.end();
const upRes = await upDone;
console.log(`  ${upRes.status} ${upRes.body}`);

step('PING round trips');
for (let i = 0; i < 3; i++) console.log(`  rtt ${(await conn.ping(5000)).toFixed(3)} ms`);

step('connection loss while a request is in flight');
const hanging = conn.request({ path: '/hang' }).collect().catch((e) => e);
await hangArrived;
for (const s of server.sessions) server.rawSocket(s)?.destroy();
const err = await hanging;
console.log(`  in-flight request settled with ${err.code} (retryable: ${err.retryable})`);
console.log(`  connection closed: ${conn.closed} (${conn.closeError?.code})`);

await server.close();
console.log('\nDone. The full CIC demo (auth, downchannel, events, reconnects) builds on this layer.');
