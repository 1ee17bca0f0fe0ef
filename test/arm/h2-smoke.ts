// Runs inside the emulated ARM Node (scripts/test-arm.mjs bundles it into build/arm/): the
// runtime's HTTP/2 layer with the cross-built addon against a node:http2 server on the host
// (test/arm/host-server.ts). GET, POST with a body larger than the initial window, PING, then
// a forced reconnect: the server destroys the socket under a request, a new connection works.
//
//   node build/arm/h2-smoke.js --port N --ca PATH      (addon from $CIC_ADDON_PATH)
//
// Output: one JSON line per step, {"step": …, "t": ms since process start, …}; the host reads
// them (and the time each one arrives). Exit 0 only when every step passed.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Connection, type ConnectOptions } from '../../src/h2/connection';
import { loadBinding } from '../../src/h2/native';

const POST_BYTES = 200 * 1024; // more than the 64 KiB initial window: flow control must work

function emit(step: string, data: Record<string, unknown> = {}): void {
  // Pipes are written synchronously on Linux, so the host sees each line as it happens.
  process.stdout.write(`${JSON.stringify({ step, t: Math.round(performance.now()), ...data })}\n`);
}

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) throw new Error(`missing ${name}`);
  return v;
}

function expect(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`expected ${what}`);
}

async function main(): Promise<void> {
  const options: ConnectOptions = {
    host: '127.0.0.1',
    port: Number(arg('--port')),
    ca: readFileSync(arg('--ca'), 'utf8'),
    caMode: 'only',
    connectTimeoutMs: 60_000, // TLS handshake crypto runs about 10× slower under emulation
  };
  const binding = loadBinding();
  emit('addon', { arch: process.arch, node: process.version, nghttp2: binding.nghttp2Version() });

  let conn = await Connection.connect(options);
  emit('connected');

  const hello = await conn.request({ path: '/hello', headers: { 'x-arch': process.arch } }).collect();
  expect(hello.status === 200, `GET /hello 200, got ${hello.status}`);
  const first = JSON.parse(hello.body.toString('utf8')) as { session: number; arch: string };
  expect(first.arch === process.arch, `the server to see x-arch ${process.arch}, got ${first.arch}`);
  emit('first-response', { status: hello.status, session: first.session });

  const body = Buffer.alloc(POST_BYTES);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  const posted = await conn.request({ path: '/echo-hash', method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } }).collect();
  expect(posted.status === 200, `POST /echo-hash 200, got ${posted.status}`);
  const seen = JSON.parse(posted.body.toString('utf8')) as { length: number; sha256: string };
  const sha256 = createHash('sha256').update(body).digest('hex');
  expect(seen.length === body.length && seen.sha256 === sha256, `the server to receive the exact ${body.length} bytes, got ${seen.length}`);
  emit('post', { status: posted.status, bytes: seen.length });

  const rttMs = await conn.ping(30_000);
  emit('ping', { rttMs: Math.round(rttMs * 10) / 10 });

  // Forced reconnect: the server destroys the TCP/TLS socket while our request is open.
  const closed = new Promise<string>((resolve) => conn.once('close', (err) => resolve(err?.code ?? 'clean')));
  const dropped = conn.request({ path: '/drop' }).collect().then(
    (r) => `completed with ${r.status}`,
    (e: { code?: string }) => e.code ?? 'error',
  );
  const [closeCode, requestError] = await Promise.all([closed, dropped]);
  expect(requestError !== 'completed with 200' && !requestError.startsWith('completed'), `the /drop request to fail, it ${requestError}`);
  expect(conn.closed, 'the dropped connection to be closed');
  emit('dropped', { closeCode, requestError });

  conn = await Connection.connect(options);
  const again = await conn.request({ path: '/hello', headers: { 'x-arch': process.arch } }).collect();
  expect(again.status === 200, `GET /hello after reconnect 200, got ${again.status}`);
  const second = JSON.parse(again.body.toString('utf8')) as { session: number };
  expect(second.session !== first.session, `a new server session after reconnect (both ${second.session})`);
  emit('reconnected', { status: again.status, session: second.session });

  await conn.close();
  emit('done', { ok: true });
}

main().then(
  () => process.exit(0),
  (e: Error & { code?: string }) => {
    emit('error', { message: e.message, code: e.code });
    process.exit(1);
  },
);
