// Connection against a scripted frame-level peer over real TLS: the cases a well-behaved
// server never produces. Deadlines run on a fake clock; nothing here waits on wall time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Connection, type ConnectOptions } from '../src/h2/connection';
import { isCicError, type CicError } from '../src/errors';
import { FakeClock, flushMicrotasks } from './support/fake-clock';
import { testPki } from './support/certs';
import * as F from './support/frames';
import { startRawPeer, type RawConnection, type RawPeer } from './support/raw-peer';

const pki = testPki();

async function withPeer(onConn: (c: RawConnection) => void, fn: (peer: RawPeer) => Promise<void>, alpn?: string[]) {
  const peer = await startRawPeer(onConn, alpn);
  try {
    await fn(peer);
  } finally {
    await peer.close();
  }
}

const opts = (port: number, extra: Partial<ConnectOptions> = {}): ConnectOptions => ({ host: '127.0.0.1', port, ca: pki.ca, caMode: 'only', ...extra });

async function settle<T>(p: Promise<T>): Promise<T | CicError> {
  try {
    return await p;
  } catch (e) {
    return e as CicError;
  }
}

test('a PING without ACK rejects with H2_PING_TIMEOUT exactly at its deadline (fake clock)', async () => {
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const clock = new FakeClock();
    const conn = await Connection.connect(opts(peer.port, { clock }));
    const raw = peer.connections[0]!;
    const outcome = settle(conn.ping(5000));
    await raw.waitFor((f) => f.type === F.FRAME.PING && !(f.flags & F.FLAG.ACK));
    clock.advance(4999);
    await flushMicrotasks();
    assert.is(conn.stats().pingsOutstanding, 1, 'still waiting 1 ms before the deadline');
    clock.advance(1);
    const err = await outcome;
    assert.ok(isCicError(err, 'H2_PING_TIMEOUT'), String(err));
    assert.is(conn.stats().pingsOutstanding, 0);
    assert.is(conn.closed, false, 'the connection itself is not judged here');
    await conn.close();
  });
});

test('PING RTT is computed from the echoed payload (fake clock)', async () => {
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const clock = new FakeClock();
    const conn = await Connection.connect(opts(peer.port, { clock }));
    const raw = peer.connections[0]!;
    const rtt = conn.ping(5000);
    const ping = await raw.waitFor((f) => f.type === F.FRAME.PING && !(f.flags & F.FLAG.ACK));
    clock.advance(42.5);
    raw.write(F.ping(Buffer.from(ping.payload), true));
    assert.is(await rtt, 42.5);
    await conn.close();
  });
});

test('an unsolicited PING ACK is ignored and reported', async () => {
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const conn = await Connection.connect(opts(peer.port));
    const seen = new Promise<void>((r) => conn.once('unsolicitedPingAck', r));
    peer.connections[0]!.write(F.ping(Buffer.from('zzzzzzzz'), true));
    await seen;
    assert.is(conn.closed, false);
    await conn.close();
  });
});

test('no SETTINGS after the TLS handshake: connect fails with H2_CONNECT_TIMEOUT at the deadline', async () => {
  await withPeer(() => {}, async (peer) => {
    const clock = new FakeClock();
    const pending = settle(Connection.connect(opts(peer.port, { clock, connectTimeoutMs: 3000 })));
    await peer.nextConnection();
    await peer.connections[0]!.waitFor((f) => f.type === F.FRAME.SETTINGS);
    clock.advance(3000);
    const err = await pending;
    assert.ok(isCicError(err, 'H2_CONNECT_TIMEOUT'), String(err));
    assert.is((err as CicError).details?.stage, 'settings');
  });
});

test('a malformed frame from the peer ends the session with H2_PROTOCOL and settles the request', async () => {
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const conn = await Connection.connect(opts(peer.port));
    const raw = peer.connections[0]!;
    const req = settle(conn.request({ path: '/x' }).collect());
    const closed = new Promise<CicError | undefined>((r) => conn.once('close', r));
    await raw.waitFor((f) => f.type === F.FRAME.HEADERS);
    raw.write(F.frame(F.FRAME.PING, 0, 0, Buffer.alloc(7))); // PING must be 8 bytes
    const err = await req;
    assert.ok(isCicError(err, 'H2_PROTOCOL'), String(err));
    assert.is((await closed)?.code, 'H2_PROTOCOL');
    const goaway = await raw.waitFor((f) => f.type === F.FRAME.GOAWAY);
    assert.is(goaway.payload.readUInt32BE(4), 6); // FRAME_SIZE_ERROR
  });
});

test('DATA on stream 0 is a protocol error, not a crash', async () => {
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const conn = await Connection.connect(opts(peer.port));
    const closed = new Promise<CicError | undefined>((r) => conn.once('close', r));
    peer.connections[0]!.write(F.data(0, 'nope'));
    assert.is((await closed)?.code, 'H2_PROTOCOL');
  });
});

test('GOAWAY with last-stream-id 0 rejects in-flight requests as retryable H2_GOAWAY', async () => {
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const conn = await Connection.connect(opts(peer.port));
    const raw = peer.connections[0]!;
    const req = settle(conn.request({ path: '/x' }).collect());
    await raw.waitFor((f) => f.type === F.FRAME.HEADERS);
    raw.write(F.goaway(0, 0));
    const err = await req;
    assert.ok(isCicError(err, 'H2_GOAWAY'), String(err));
    assert.is((err as CicError).retryable, true);
  });
});

test('flow control: a held stream grants no window while its reader holds the bytes; consume() reopens it; a failure gives held bytes back to the connection', async () => {
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const conn = await Connection.connect(opts(peer.port, { limits: { initialWindowSize: 65_535, connectionWindowSize: 4 * 65_535 } }));
    const raw = peer.connections[0]!;
    const updates = (sid: number) => raw.frames.filter((f) => f.type === F.FRAME.WINDOW_UPDATE && f.streamId === sid).reduce((n, f) => n + (f.payload.readUInt32BE(0) & 0x7fffffff), 0);
    /** A PING round trip: every frame the client wrote before its ACK went out has arrived. */
    const roundTrip = async () => {
      raw.write(F.ping(Buffer.from('syncsync')));
      await raw.waitFor((f) => f.type === F.FRAME.PING && (f.flags & F.FLAG.ACK) !== 0 && f.payload.toString() === 'syncsync');
      raw.frames.splice(raw.frames.findIndex((f) => f.type === F.FRAME.PING && f.payload.toString() === 'syncsync'), 1);
    };
    const held = conn.request({ path: '/held' });
    let got = 0;
    held.once('response', () => held.holdWindow());
    held.on('data', (c) => (got += c.length));
    const auto = conn.request({ path: '/auto' });
    let autoGot = 0;
    auto.on('data', (c) => (autoGot += c.length));
    await raw.waitFor((f) => f.type === F.FRAME.HEADERS && f.streamId === 3);
    const frame = Buffer.alloc(16_000, 2);
    raw.write(Buffer.concat([F.headers(1, [[':status', '200']]), F.headers(3, [[':status', '200']])]));
    raw.write(Buffer.concat([frame, frame, frame].map((b) => F.data(1, b))));
    raw.write(Buffer.concat([frame, frame, frame].map((b) => F.data(3, b))));
    await roundTrip();
    assert.is(got, 48_000);
    assert.is(autoGot, 48_000);
    assert.is(held.heldBytes, 48_000);
    assert.is(updates(1), 0, 'the held stream: no WINDOW_UPDATE');
    // nghttp2 grants a window once half of it is consumed: what is still owed is under half.
    assert.ok(updates(3) > 0 && 48_000 - updates(3) < 65_535 / 2, `an ordinary stream is consumed on delivery (${updates(3)} granted)`);
    held.consume(20_000);
    await roundTrip();
    assert.is(updates(1), 0, 'below half a window');
    held.consume(28_000);
    held.consume(1_000_000); // more than is held: clamped
    await roundTrip();
    assert.is(updates(1), 48_000);
    assert.is(held.heldBytes, 0);
    await conn.close();
  });
  // Bytes still held when the stream fails go back to the connection window (one stream window
  // wide here, so without that the whole connection would stay shut).
  await withPeer((c) => c.write(F.settings()), async (peer) => {
    const conn = await Connection.connect(opts(peer.port, { limits: { initialWindowSize: 65_535, connectionWindowSize: 65_535 } }));
    const raw = peer.connections[0]!;
    const connUpdates = () => raw.frames.filter((f) => f.type === F.FRAME.WINDOW_UPDATE && f.streamId === 0).reduce((n, f) => n + (f.payload.readUInt32BE(0) & 0x7fffffff), 0);
    const held = conn.request({ path: '/held' });
    held.once('response', () => held.holdWindow());
    const failed = new Promise<void>((r) => held.once('close', () => r()));
    await raw.waitFor((f) => f.type === F.FRAME.HEADERS && f.streamId === 1);
    raw.write(Buffer.concat([F.headers(1, [[':status', '200']]), ...Array.from({ length: 4 }, () => F.data(1, Buffer.alloc(15_000)))]));
    raw.write(F.ping(Buffer.from('syncsync')));
    await raw.waitFor((f) => f.type === F.FRAME.PING && (f.flags & F.FLAG.ACK) !== 0);
    assert.is(held.heldBytes, 60_000);
    assert.is(connUpdates(), 0, 'the connection window is nearly shut');
    raw.write(F.rstStream(1, 0x2));
    await failed;
    await raw.waitFor((f) => f.type === F.FRAME.WINDOW_UPDATE && f.streamId === 0);
    assert.is(connUpdates(), 60_000, 'the held bytes were given back to the connection when the stream failed');
    assert.is(held.heldBytes, 0);
    await conn.close();
  });
});

test('a server that offers ALPN without h2 is refused with H2_ALPN', async () => {
  await withPeer(() => {}, async (peer) => {
    const err = await settle(Connection.connect(opts(peer.port)));
    assert.ok(isCicError(err, 'H2_ALPN'), String(err));
  }, ['http/1.1']);
});

test('a server that ignores ALPN is refused with H2_ALPN', async () => {
  await withPeer(() => {}, async (peer) => {
    const err = await settle(Connection.connect(opts(peer.port)));
    assert.ok(isCicError(err, 'H2_ALPN'), String(err));
  }, []);
});

test('certificate for another host name is refused with H2_TLS_HOSTNAME', async () => {
  await withPeer(() => {}, async (peer) => {
    const err = await settle(Connection.connect(opts(peer.port, { host: 'localhost', servername: 'cic.example.test' })));
    assert.ok(isCicError(err, 'H2_TLS_HOSTNAME'), String(err));
  });
});

test('a server whose CA is not trusted is refused with H2_TLS_CERT', async () => {
  await withPeer(() => {}, async (peer) => {
    const err = await settle(Connection.connect(opts(peer.port, { ca: undefined, caMode: 'add' })));
    assert.ok(isCicError(err, 'H2_TLS_CERT'), String(err));
  });
});

test('connection refused maps to H2_CONNECT_FAILED', async () => {
  const peer = await startRawPeer();
  const port = peer.port;
  await peer.close();
  const err = await settle(Connection.connect(opts(port)));
  assert.ok(isCicError(err, 'H2_CONNECT_FAILED'), String(err));
});

test.run();
