// Connection against a real node:http2 server over TLS on loopback (generated CA).
import { test } from 'uvu';
import { capabilityCase } from './support/capability';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import * as tls from 'node:tls';
import * as http2 from 'node:http2';
import { Connection } from '../src/h2/connection';
import { isCicError, type CicError } from '../src/errors';
import { binding } from './support/native';
import { readBody, startH2Server, type TestServer } from './support/h2-server';

let server: TestServer;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BIG = Buffer.alloc(5 * 1024 * 1024);
for (let i = 0; i < BIG.length; i += 4) BIG.writeUInt32LE((i * 2654435761) >>> 0, i);

function manyHeaders(count: number, size: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < count; i++) out[`x-h${i}`] = String.fromCharCode(97 + (i % 26)).repeat(size);
  return out;
}

test.before(async () => {
  server = await startH2Server({ settings: { maxConcurrentStreams: 1000 }, maxSendHeaderBlockLength: 1 << 20 });
  server.route('/hello', (s) => {
    s.respond({ ':status': 200, 'content-type': 'text/plain' });
    s.end('hello world');
  });
  server.route('/echo', async (s) => {
    const body = await readBody(s);
    s.respond({ ':status': 200, 'x-sha256': sha(body), 'x-length': String(body.length) });
    s.end();
  });
  server.route('/big', (s) => {
    s.respond({ ':status': 200 });
    s.end(BIG);
  });
  server.route('/slow', (s) => {
    s.respond({ ':status': 200 });
    s.write('partial');
    // never ends: the test decides what happens next
  });
  server.route('/reset', (s) => {
    s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
  server.route('/trailers', (s) => {
    s.respond({ ':status': 200 }, { waitForTrailers: true });
    s.on('wantTrailers', () => s.sendTrailers({ 'x-done': 'yes' }));
    s.end('body');
  });
  server.route('/huge-headers', (s) => {
    // 75 KB in five fields: above the 64 KiB list limit, within the CONTINUATION limit.
    s.respond({ ':status': 200, ...manyHeaders(5, 15_000) });
    s.end();
  });
  server.route('/endless-headers', (s) => {
    // 1 MB of headers: far more CONTINUATION frames than the session accepts.
    s.respond({ ':status': 200, ...manyHeaders(100, 10_000) });
    s.end();
  });
  server.route('/kill-socket', (s, _h, session) => {
    s.respond({ ':status': 200 });
    s.write('some', () => server.rawSocket(session)!.destroy());
  });
});

test.after(async () => {
  await server.close();
});

function connect(extra: Partial<Parameters<typeof Connection.connect>[0]> = {}) {
  return Connection.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, caMode: 'only', ...extra });
}

async function expectCode(p: Promise<unknown>, code: string): Promise<CicError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isCicError(e), `a CicError, got ${String(e)}`);
    assert.is((e as CicError).code, code);
    return e as CicError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

const hasIpv6Loopback = Object.values(networkInterfaces()).flat().some((a) => a?.address === '::1');
const IPV6_CASE = 'an IPv6 literal host: certificate verified against IP:::1, :authority bracketed (with a port and on 443)';
capabilityCase(IPV6_CASE, hasIpv6Loopback ? undefined : 'no interface holds ::1 (IPv6 is disabled)', async () => {
  const v6 = await startH2Server({}, undefined, '::1');
  try {
    let seen = '';
    v6.route('/authority', (s, h) => {
      seen = String(h[':authority']);
      s.respond({ ':status': 204 });
      s.end();
    });
    const conn = await Connection.connect({ host: '::1', port: v6.port, ca: v6.ca, caMode: 'only' });
    assert.is(conn.authority, `[::1]:${v6.port}`);
    assert.is((await conn.request({ path: '/authority' }).collect()).status, 204);
    assert.is(seen, `[::1]:${v6.port}`);
    await conn.close();
    // On the default port 443 the port is left out of :authority, the brackets are not (the
    // socket is handed in, so nothing has to listen on 443).
    const on443 = await Connection.connect({
      host: '::1',
      port: 443,
      createSocket: () => tls.connect({ host: '::1', port: v6.port, ca: [v6.ca], ALPNProtocols: ['h2'] }),
    });
    assert.is(on443.authority, '[::1]');
    assert.is((await on443.request({ path: '/authority' }).collect()).status, 204);
    assert.is(seen, '[::1]');
    await on443.close();
  } finally {
    await v6.close();
  }
});

test('GET returns status, headers and body', async () => {
  const conn = await connect();
  const res = await conn.request({ path: '/hello' }).collect();
  assert.is(res.status, 200);
  assert.is(res.headers['content-type'], 'text/plain');
  assert.is(res.body.toString(), 'hello world');
  await conn.close();
});

test('POST with a 1 MiB body streamed in chunks arrives intact', async () => {
  const conn = await connect();
  const body = BIG.subarray(0, 1024 * 1024);
  const s = conn.request({ path: '/echo', method: 'POST', body: 'stream' });
  const done = s.collect();
  let drains = 0;
  s.on('drain', () => drains++);
  for (let off = 0; off < body.length; off += 16 * 1024) {
    if (!s.write(body.subarray(off, off + 16 * 1024))) await new Promise<void>((r) => s.once('drain', r));
  }
  s.end();
  const res = await done;
  assert.is(res.status, 200);
  assert.is(res.headers['x-length'], String(body.length));
  assert.is(res.headers['x-sha256'], sha(body));
  assert.ok(drains >= 1, 'backpressure was signalled at least once');
  await conn.close();
});

test('POST with a complete body', async () => {
  const conn = await connect();
  const res = await conn.request({ path: '/echo', body: '{"a":1}', headers: { 'content-type': 'application/json' } }).collect();
  assert.is(res.headers['x-sha256'], sha(Buffer.from('{"a":1}')));
  await conn.close();
});

test('100 concurrent streams all complete on one connection', async () => {
  const conn = await connect();
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => conn.request({ path: '/echo', body: `request ${i}` }).collect()),
  );
  results.forEach((r, i) => assert.is(r.headers['x-sha256'], sha(Buffer.from(`request ${i}`))));
  assert.is(conn.stats().liveStreams, 0);
  await conn.close();
});

test('a response body far larger than the initial window arrives intact', async () => {
  const conn = await connect({ limits: { initialWindowSize: 65535, connectionWindowSize: 65535 } });
  const res = await conn.request({ path: '/big' }).collect(8 * 1024 * 1024);
  assert.is(res.body.length, BIG.length);
  assert.is(sha(res.body), sha(BIG));
  await conn.close();
});

test('trailers are delivered with the end of the stream', async () => {
  const conn = await connect();
  const res = await conn.request({ path: '/trailers' }).collect();
  assert.is(res.body.toString(), 'body');
  assert.equal(res.trailers, { 'x-done': 'yes' });
  await conn.close();
});

test('PING resolves with a round-trip time', async () => {
  const conn = await connect();
  const rtts = [];
  for (let i = 0; i < 5; i++) rtts.push(await conn.ping(5000));
  for (const rtt of rtts) assert.ok(rtt >= 0 && rtt < 5000, `rtt ${rtt}`);
  assert.is(conn.stats().pingsOutstanding, 0);
  await conn.close();
});

test('RST_STREAM from the server settles the request with H2_STREAM_RESET and its code', async () => {
  const conn = await connect();
  const err = await expectCode(conn.request({ path: '/reset' }).collect(), 'H2_STREAM_RESET');
  assert.is(err.details?.errorCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  // the connection survives
  assert.is((await conn.request({ path: '/hello' }).collect()).status, 200);
  await conn.close();
});

test('GOAWAY mid-flight: streams above last-stream-id are rejected as retryable, the rest complete', async () => {
  const conn = await connect();
  const held: http2.ServerHttp2Stream[] = [];
  let release!: () => void;
  const allHeld = new Promise<void>((r) => (release = r));
  server.route('/held', (s) => {
    held.push(s);
    if (held.length === 3) release();
  });
  const streams = [1, 2, 3].map(() => conn.request({ path: '/held' }));
  const outcomes = streams.map((s) => s.collect().then((r) => r.status, (e: CicError) => e));
  await allHeld;
  const goaway = new Promise((r) => conn.once('goaway', r));
  const session = held[0]!.session as http2.ServerHttp2Session;
  session.goaway(http2.constants.NGHTTP2_NO_ERROR, streams[1]!.id);
  await goaway;
  // the server still answers the streams it accepted
  for (const s of held.slice(0, 2)) {
    s.respond({ ':status': 200 });
    s.end();
  }
  const [a, b, c] = await Promise.all(outcomes);
  assert.is(a, 200);
  assert.is(b, 200);
  assert.ok(isCicError(c, 'H2_GOAWAY'), `third stream: ${String(c)}`);
  assert.is((c as CicError).retryable, true);
  // no new streams on a connection that is going away
  let after: unknown;
  try {
    after = await conn.request({ path: '/hello' }).collect();
  } catch (e) {
    after = e;
  }
  assert.ok(isCicError(after, 'H2_GOAWAY') || isCicError(after, 'H2_CONNECTION_CLOSED'), String(after));
  assert.is((after as CicError).retryable, true);
  await conn.close();
});

test('server socket destroyed mid-response: the request fails with H2_SOCKET_CLOSED', async () => {
  const conn = await connect();
  const closed = new Promise<CicError | undefined>((r) => conn.once('close', r));
  await expectCode(conn.request({ path: '/kill-socket' }).collect(), 'H2_SOCKET_CLOSED');
  const err = await closed;
  assert.is(err?.code, 'H2_SOCKET_CLOSED');
  assert.throws(() => conn.request({ path: '/hello' }), (e: CicError) => e.code === 'H2_CONNECTION_CLOSED');
});

test('closing locally settles in-flight requests and pings with H2_CONNECTION_CLOSED', async () => {
  const conn = await connect();
  const s = conn.request({ path: '/slow' });
  await s.response();
  const pending = s.collect();
  const ping = conn.ping(60_000);
  const closing = conn.close();
  await expectCode(pending, 'H2_CONNECTION_CLOSED');
  await expectCode(ping, 'H2_CONNECTION_CLOSED');
  await closing;
  await conn.close(); // idempotent
  assert.throws(() => conn.request({ path: '/hello' }), (e: CicError) => e.code === 'H2_CONNECTION_CLOSED');
  await expectCode(conn.ping(), 'H2_CONNECTION_CLOSED');
});

test('a response header list above the limit fails that request only', async () => {
  const conn = await connect({ limits: { maxHeaderListSize: 64 * 1024 } });
  await expectCode(conn.request({ path: '/huge-headers' }).collect(), 'H2_HEADERS_TOO_LARGE');
  assert.is((await conn.request({ path: '/hello' }).collect()).status, 200);
  await conn.close();
});

test('a header block longer than the CONTINUATION limit ends the session with H2_HEADERS_TOO_LARGE', async () => {
  const conn = await connect();
  const closed = new Promise<CicError | undefined>((r) => conn.once('close', r));
  await expectCode(conn.request({ path: '/endless-headers' }).collect(), 'H2_HEADERS_TOO_LARGE');
  assert.is((await closed)?.code, 'H2_HEADERS_TOO_LARGE');
});

test('a body above the collect limit cancels the stream with H2_BODY_TOO_LARGE', async () => {
  const conn = await connect();
  await expectCode(conn.request({ path: '/big' }).collect(1024), 'H2_BODY_TOO_LARGE');
  assert.is((await conn.request({ path: '/hello' }).collect()).status, 200);
  await conn.close();
});

test('an aborted request settles with H2_STREAM_RESET', async () => {
  const conn = await connect();
  const ac = new AbortController();
  const s = conn.request({ path: '/slow', signal: ac.signal });
  await s.response();
  ac.abort();
  await expectCode(s.finished(), 'H2_STREAM_RESET');
  await conn.close();
});

test('malformed request headers are refused before anything is sent', async () => {
  const conn = await connect();
  assert.throws(() => conn.request({ path: '/hello', headers: { 'Upper-Case': 'x' } }), (e: CicError) => e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => conn.request({ path: '/hello', headers: { connection: 'close' } }), (e: CicError) => e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => conn.request({ path: '/hello', headers: { 'x-a': 'a\r\nb' } }), (e: CicError) => e.code === 'ERR_INVALID_ARGUMENT');
  await conn.close();
});

test('native sessions are freed when connections close', async () => {
  const before = binding.liveSessions();
  const conns = await Promise.all([connect(), connect(), connect()]);
  assert.is(binding.liveSessions(), before + 3);
  await Promise.all(conns.map((c) => c.close()));
  assert.is(binding.liveSessions(), before);
});

test.run();
