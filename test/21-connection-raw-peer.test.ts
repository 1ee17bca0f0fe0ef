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
