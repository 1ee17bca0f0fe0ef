// The native Session on its own: argument guards, lifecycle, framing under arbitrary input
// splits, PING floods, malformed frames and protective limits. No sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BodyMode, EV } from '../src/h2/native';
import * as F from './support/frames';
import { binding, clientFrames, countFrames, drain, normalize } from './support/native';

const REQ = [':method', 'GET', ':scheme', 'https', ':authority', 'example.test', ':path', '/'];

function openSession(requests = 0) {
  const s = new binding.Session();
  for (let i = 0; i < requests; i++) s.request(REQ, BodyMode.None);
  drain(s);
  return s;
}

function seededRandom(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

test('addon carries nghttp2 1.64 and has no dynamic nghttp2_ symbols', () => {
  assert.is(binding.nghttp2Version(), '1.64.0');
  const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..');
  const dyn = execFileSync('nm', ['-D', join(root, 'build/Release/cic_h2.node')], { encoding: 'utf8' });
  assert.equal(dyn.split('\n').filter((l) => l.includes('nghttp2_')), []);
});

test('bad arguments throw TypeError, nothing aborts', () => {
  const s = new binding.Session();
  assert.throws(() => s.receive('bytes' as unknown as Uint8Array), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.receive(new Uint16Array(4) as unknown as Uint8Array), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.request(['a'] as string[], BodyMode.None), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.request([...REQ.slice(0, 7), 5 as unknown as string], BodyMode.None), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.request(REQ, 7 as BodyMode), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.request(REQ, BodyMode.Fixed), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.write(0, null, true), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.write(1, null, 'yes' as unknown as boolean), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.ping('a' as unknown as number, 0), (e: Error) => e instanceof TypeError);
  assert.throws(() => new binding.Session({ maxHeaderListSize: -1 }), (e: Error) => e instanceof TypeError);
  assert.throws(() => new binding.Session({ initialWindowSize: 'big' as unknown as number }), (e: Error) => e instanceof TypeError);
  s.close();
});

test('close is idempotent; calls after close throw ERR_CLOSED; live session counter returns', () => {
  const before = binding.liveSessions();
  const s = new binding.Session();
  assert.is(binding.liveSessions(), before + 1);
  s.close();
  s.close();
  assert.is(binding.liveSessions(), before);
  assert.throws(() => s.receive(Buffer.alloc(1)), (e: Error & { code?: string }) => e.code === 'ERR_CLOSED');
  assert.throws(() => s.send(), (e: Error & { code?: string }) => e.code === 'ERR_CLOSED');
  assert.throws(() => s.request(REQ, BodyMode.None), (e: Error & { code?: string }) => e.code === 'ERR_CLOSED');
  assert.is(s.wantRead(), false);
  assert.equal(s.stats(), [0, 0, 0, 0]);
});

test('client preface and SETTINGS go out first, with push disabled', () => {
  const s = new binding.Session({ initialWindowSize: 123456, maxHeaderListSize: 4096 });
  const out = drain(s);
  assert.is(out.subarray(0, 24).toString('latin1'), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const frames = clientFrames(out);
  const st = frames.find((f) => f.type === F.FRAME.SETTINGS)!;
  const entries = new Map<number, number>();
  for (let i = 0; i < st.payload.length; i += 6) entries.set(st.payload.readUInt16BE(i), st.payload.readUInt32BE(i + 2));
  assert.is(entries.get(2), 0); // ENABLE_PUSH
  assert.is(entries.get(4), 123456); // INITIAL_WINDOW_SIZE
  assert.is(entries.get(6), 4096); // MAX_HEADER_LIST_SIZE
  s.close();
});

test('inbound windows reopen only when received bytes are consumed (no automatic WINDOW_UPDATE); consume() checks its arguments', () => {
  const s = new binding.Session({ initialWindowSize: 65535, connectionWindowSize: 4 * 65535 });
  s.request(REQ, BodyMode.None);
  drain(s);
  const body = Buffer.alloc(16_000, 1);
  const windowUpdates = () => clientFrames(drain(s)).filter((f) => f.type === F.FRAME.WINDOW_UPDATE).map((f) => [f.streamId, f.payload.readUInt32BE(0) & 0x7fffffff]);
  s.receive(Buffer.concat([F.settings(), F.headers(1, [[':status', '200']]), F.data(1, body), F.data(1, body), F.data(1, body)]));
  assert.equal(windowUpdates(), [], '48,000 of 65,535 bytes received, nothing consumed: no WINDOW_UPDATE');
  assert.is(s.consume(1, 16_000), 0);
  assert.equal(windowUpdates(), [], 'below half the window: still none');
  assert.is(s.consume(1, 32_000), 0);
  assert.equal(windowUpdates(), [[1, 48_000]], 'half a stream window consumed: the stream reopens (the connection window is larger)');
  // A stream the peer may not overrun: 65,535 bytes is all it may send before a consume.
  s.receive(Buffer.concat([F.data(1, body), F.data(1, body), F.data(1, body), F.data(1, body), F.data(1, Buffer.alloc(1535))]));
  assert.equal(windowUpdates(), []);
  s.receive(F.data(1, Buffer.alloc(1)));
  const rst = clientFrames(drain(s)).filter((f) => f.type === F.FRAME.RST_STREAM).map((f) => [f.streamId, f.payload.readUInt32BE(0)]);
  assert.equal(rst, [[1, 0x3]], 'one byte beyond the window: RST_STREAM FLOW_CONTROL_ERROR');
  // Arguments are checked at the boundary; an unknown or closed stream still credits the connection.
  assert.throws(() => s.consume(0, 1), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.consume(1, -1), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.consume(1, 1.5), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.consume(1, 2 ** 31), (e: Error) => e instanceof TypeError);
  assert.throws(() => s.consume(1, 'x' as unknown as number), (e: Error) => e instanceof TypeError);
  assert.is(s.consume(99, 10), 0);
  assert.is(s.consume(1, 0), 0);
  s.close();
  assert.throws(() => s.consume(1, 1), (e: Error & { code?: string }) => e.code === 'ERR_CLOSED');
});

test('2,000 PING frames in one buffer produce 2,000 ACKs with their payloads', () => {
  const s = openSession();
  const pings: Buffer[] = [F.settings()];
  for (let i = 0; i < 2000; i++) {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(i, 4);
    pings.push(F.ping(p));
  }
  const events = s.receive(Buffer.concat(pings));
  assert.ok(!events.some((_, i) => i % 4 === 0 && events[i] === EV.SESSION_ERROR), 'no session error');
  const acks = clientFrames(drain(s)).filter((f) => f.type === F.FRAME.PING && f.flags & F.FLAG.ACK);
  assert.is(acks.length, 2000);
  assert.equal(acks.map((f) => f.payload.readUInt32BE(4)), Array.from({ length: 2000 }, (_, i) => i));
  assert.ok(s.wantRead());
  s.close();
});

test('PING ACK payload comes back as two 32-bit halves', () => {
  const s = openSession();
  const p = Buffer.alloc(8);
  p.writeUInt32BE(0xdeadbeef, 0);
  p.writeUInt32BE(0x01020304, 4);
  const ev = s.receive(Buffer.concat([F.settings(), F.ping(p, true)]));
  const i = ev.findIndex((v, k) => k % 4 === 0 && v === EV.PING_ACK);
  assert.ok(i >= 0);
  assert.is(ev[i + 2], 0xdeadbeef);
  assert.is(ev[i + 3], 0x01020304);
  s.close();
});

function scriptedResponse(): Buffer {
  // Three streams: a small response, a multi-frame body with trailers, and a reset.
  const big = Buffer.alloc(40_000, 7);
  return Buffer.concat([
    F.settings([[3, 100], [4, 65535]]),
    F.settings([], true),
    F.headers(1, [[':status', '200'], ['content-type', 'text/plain'], ['x-a', '1']]),
    F.headers(3, [[':status', '200'], ['content-type', 'application/octet-stream']]),
    F.data(1, 'hello '),
    F.data(3, big.subarray(0, 16384)),
    F.data(1, 'world', true),
    F.data(3, big.subarray(16384, 32768)),
    F.ping(Buffer.from('01234567'), true),
    F.data(3, big.subarray(32768)),
    F.headers(3, [['x-trailer', 'done']], true),
    F.rstStream(5, 8),
    F.goaway(5, 0, 'bye'),
  ]);
}

function feed(bytes: Buffer, splits: number[]): ReturnType<typeof normalize> {
  const s = openSession(3);
  const raw: Array<{ events: unknown[]; input: Buffer }> = [];
  let off = 0;
  for (const n of [...splits, bytes.length]) {
    const piece = bytes.subarray(off, Math.min(bytes.length, off + n));
    if (piece.length === 0) break;
    off += piece.length;
    // A fresh copy each time: the session must not depend on earlier inputs staying alive.
    const input = Buffer.from(piece);
    raw.push({ events: s.receive(input), input });
    drain(s);
    const late = s.takeEvents();
    if (late) raw.push({ events: late, input: Buffer.alloc(0) });
  }
  s.close();
  return normalize(raw);
}

test('the same byte stream fed whole, in 1-byte pieces and in random splits gives identical events', () => {
  const bytes = scriptedResponse();
  const whole = feed(bytes, []);
  assert.ok(whole.length > 10);
  const kinds = whole.map((e) => e.kind);
  for (const k of [EV.HEADERS, EV.DATA, EV.END_STREAM, EV.STREAM_CLOSE, EV.PING_ACK, EV.GOAWAY, EV.SETTINGS, EV.RST_STREAM]) {
    assert.ok(kinds.includes(k), `event kind ${k} present`);
  }
  assert.equal(feed(bytes, Array(bytes.length).fill(1)), whole);
  const rnd = seededRandom(42);
  for (let round = 0; round < 50; round++) {
    const splits: number[] = [];
    let left = bytes.length;
    while (left > 0) {
      const n = 1 + Math.floor(rnd() * Math.min(left, rnd() < 0.5 ? 20 : 20_000));
      splits.push(n);
      left -= n;
    }
    assert.equal(feed(bytes, splits), whole, `random split round ${round}`);
  }
});

test('a malformed frame ends the session with GOAWAY and no crash', () => {
  const s = openSession(1);
  // PING must be 8 bytes long: 7 is a connection error (FRAME_SIZE_ERROR).
  const bad = F.frame(F.FRAME.PING, 0, 0, Buffer.alloc(7));
  const ev = s.receive(Buffer.concat([F.settings(), bad, F.ping()]));
  assert.ok(Array.isArray(ev));
  drain(s);
  const late = s.takeEvents() ?? [];
  const i = late.findIndex((v, k) => k % 4 === 0 && v === EV.GOAWAY_SENT);
  assert.ok(i >= 0, 'GOAWAY was sent');
  assert.is(late[i + 2], 6); // FRAME_SIZE_ERROR
  assert.is(s.wantRead(), false);
  assert.is(s.wantWrite(), false);
  s.close();
});

test('garbage bytes instead of frames end the session, never crash', () => {
  const rnd = seededRandom(7);
  for (let round = 0; round < 200; round++) {
    const s = openSession(2);
    const junk = Buffer.alloc(1 + Math.floor(rnd() * 300));
    for (let k = 0; k < junk.length; k++) junk[k] = Math.floor(rnd() * 256);
    s.receive(Buffer.concat([F.settings(), junk]));
    drain(s);
    s.takeEvents();
    s.close();
  }
  assert.ok(true);
});

test('a header list above the limit resets that stream only, with HEADERS_TOO_LARGE', () => {
  const s = new binding.Session({ maxHeaderListSize: 1024 });
  s.request(REQ, BodyMode.None);
  s.request(REQ, BodyMode.None);
  drain(s);
  const ev = s.receive(Buffer.concat([
    F.settings(),
    F.headers(1, [[':status', '200'], ['x-big', 'x'.repeat(4000)]]),
    F.headers(3, [[':status', '200']], true),
  ]));
  const kinds = (k: number) => ev.filter((v, i) => i % 4 === 0 && v === k).length;
  assert.is(kinds(EV.HEADERS_TOO_LARGE), 1);
  const tl = ev.findIndex((v, i) => i % 4 === 0 && v === EV.HEADERS_TOO_LARGE);
  assert.is(ev[tl + 1], 1);
  const out = clientFrames(drain(s));
  assert.is(countFrames(out.filter((f) => f.streamId === 1), F.FRAME.RST_STREAM), 1);
  // stream 3 still got its response
  const h = ev.findIndex((v, i) => i % 4 === 0 && v === EV.HEADERS && ev[i + 1] === 3);
  assert.ok(h >= 0);
  assert.ok(s.wantRead());
  s.close();
});

test('a streamed body waits for writes and ends with END_STREAM', () => {
  const s = new binding.Session();
  const sid = s.request([...REQ.slice(0, 1), 'POST', ...REQ.slice(2)], BodyMode.Streamed);
  assert.is(sid, 1);
  let frames = clientFrames(drain(s));
  assert.is(countFrames(frames, F.FRAME.DATA), 0);
  assert.is(s.write(sid, Buffer.alloc(1000, 1), false), 0);
  assert.equal(s.stats().slice(0, 2), [1, 1000]);
  frames = clientFrames(drain(s));
  assert.is(frames.filter((f) => f.type === F.FRAME.DATA).reduce((a, f) => a + f.payload.length, 0), 1000);
  assert.is(s.stats()[1], 0);
  assert.is(s.write(sid, Buffer.alloc(10, 2), true), 0);
  frames = clientFrames(drain(s));
  const last = frames.filter((f) => f.type === F.FRAME.DATA).pop()!;
  assert.ok(last.flags & F.FLAG.END_STREAM);
  assert.ok(s.write(sid, Buffer.alloc(1), false) < 0, 'write after end is refused');
  s.close();
});

test('a request the session cannot start is reported as NOT_SENT after GOAWAY', () => {
  const s = openSession();
  s.receive(Buffer.concat([F.settings(), F.goaway(0, 0)]));
  const sid = s.request(REQ, BodyMode.None);
  assert.is(sid, 1); // nghttp2 accepts the submit and refuses at send time
  drain(s);
  const events = s.takeEvents() ?? [];
  const i = events.findIndex((v, k) => k % 4 === 0 && v === EV.NOT_SENT);
  assert.ok(i >= 0, 'NOT_SENT reported');
  assert.is(events[i + 1], 1);
  assert.is(events[i + 2], -516); // NGHTTP2_ERR_START_STREAM_NOT_ALLOWED
  assert.is(s.stats()[0], 0);
  s.close();
});

test('body buffer limit refuses writes beyond it', () => {
  const s = new binding.Session({ maxBufferedBody: 4096 });
  const sid = s.request([...REQ.slice(0, 1), 'POST', ...REQ.slice(2)], BodyMode.Streamed);
  assert.is(s.write(sid, Buffer.alloc(4000), false), 0);
  assert.ok(s.write(sid, Buffer.alloc(200), false) < 0);
  assert.ok(s.request(REQ, BodyMode.Fixed, Buffer.alloc(5000)) < 0);
  s.close();
});

test.run();
