// The same client against nghttpd, an HTTP/2 server independent of node:http2.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '../src/h2/connection';
import { startNghttpd, type Nghttpd } from './support/nghttpd';

let server: Nghttpd;
const FILE = randomBytes(3 * 1024 * 1024);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.before(async () => {
  server = await startNghttpd((dir) => {
    writeFileSync(join(dir, 'big.bin'), FILE);
    writeFileSync(join(dir, 'small.txt'), 'small file\n');
  }, ['--echo-upload']);
});

test.after(async () => {
  await server?.stop();
});

const connect = () => Connection.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, caMode: 'only' });

test('nghttpd: GET of a small and a 3 MiB file', async () => {
  const conn = await connect();
  const small = await conn.request({ path: '/small.txt' }).collect();
  assert.is(small.status, 200);
  assert.is(small.body.toString(), 'small file\n');
  const big = await conn.request({ path: '/big.bin' }).collect(8 << 20);
  assert.is(big.body.length, FILE.length);
  assert.is(sha(big.body), sha(FILE));
  await conn.close();
});

test('nghttpd: a 1 MiB streamed upload is echoed back intact', async () => {
  const conn = await connect();
  const body = FILE.subarray(0, 1 << 20);
  const s = conn.request({ path: '/small.txt', method: 'POST', body: 'stream' });
  const res = s.collect(4 << 20);
  for (let off = 0; off < body.length; off += 10_000) {
    if (!s.write(body.subarray(off, off + 10_000))) await new Promise<void>((r) => s.once('drain', r));
  }
  s.end();
  const r = await res;
  assert.is(r.status, 200);
  assert.is(sha(r.body), sha(body));
  await conn.close();
});

test('nghttpd: 50 concurrent GETs, then PING', async () => {
  const conn = await connect();
  const all = await Promise.all(Array.from({ length: 50 }, () => conn.request({ path: '/small.txt' }).collect()));
  assert.ok(all.every((r) => r.status === 200 && r.body.toString() === 'small file\n'));
  const rtt = await conn.ping(5000);
  assert.ok(rtt >= 0 && rtt < 5000);
  assert.is(conn.stats().liveStreams, 0);
  await conn.close();
});

test('nghttpd: 404 is a response, not an error', async () => {
  const conn = await connect();
  const r = await conn.request({ path: '/missing' }).collect();
  assert.is(r.status, 404);
  await conn.close();
});

test.run();
