// Wyoming framing of the device socket, decoder and encoder alone: both data forms, payloads,
// any split of the byte stream, the limits, and what the runtime writes (the reference
// writer's layout: type, version, data_length, payload_length; data as a block, never inline).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame, FrameDecoder, WYOMING_VERSION, type Frame } from '../src/service/framing';
import { MAX_HEADER_AND_DATA_BYTES, MAX_PAYLOAD_BYTES } from '../src/service/limits';
import { isCicError } from '../src/errors';

function decodeAll(chunks: Buffer[], limits = {}): Frame[] {
  const d = new FrameDecoder(limits);
  const out: Frame[] = [];
  for (const c of chunks) d.push(c, (f) => out.push(f));
  d.end();
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isCicError(e)) return e.code;
    throw e;
  }
  throw new Error('did not throw');
}

const blockFrame = (type: string, data: object, payload?: Buffer) => {
  const body = Buffer.from(JSON.stringify(data));
  const header: Record<string, unknown> = { type, data_length: body.length };
  if (payload) header.payload_length = payload.length;
  return Buffer.concat([Buffer.from(JSON.stringify(header) + '\n'), body, payload ?? Buffer.alloc(0)]);
};

test('inline data and a data_length block; the block wins on a shared key', () => {
  const inline = Buffer.from('{"type":"ping","data":{"text":"a"}}\n');
  const block = blockFrame('ping', { text: 'b' });
  const both = Buffer.concat([Buffer.from('{"type":"ping","data":{"text":"inline","keep":1},"data_length":12}\n'), Buffer.from('{"text":"b"}')]);
  const frames = decodeAll([inline, block, both]);
  assert.equal(frames.map((f) => f.data), [{ text: 'a' }, { text: 'b' }, { text: 'b', keep: 1 }]);
  assert.equal(frames.map((f) => f.type), ['ping', 'ping', 'ping']);
});

test('payloads: binary bytes come back exactly, zero lengths mean none', () => {
  const pcm = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256));
  const frames = decodeAll([blockFrame('audio-chunk', { rate: 16000, width: 2, channels: 1 }, pcm), Buffer.from('{"type":"audio-stop","data_length":0,"payload_length":0}\n')]);
  assert.ok(frames[0]!.payload!.equals(pcm));
  assert.is(frames[1]!.payload, undefined);
  assert.equal(frames[1]!.data, {});
});

test('any split of the stream: one byte at a time and three frames in one chunk decode the same', () => {
  const pcm = Buffer.alloc(700, 7);
  const stream = Buffer.concat([blockFrame('describe', {}), blockFrame('audio-chunk', { rate: 16000 }, pcm), Buffer.from('{"type":"ping","data":{"text":"x"}}\n')]);
  const whole = decodeAll([stream]);
  const bytes = decodeAll([...stream].map((b) => Buffer.from([b])));
  const random: Buffer[] = [];
  for (let at = 0, n = 1; at < stream.length; at += n, n = (n * 7 + 3) % 97 + 1) random.push(stream.subarray(at, at + n));
  assert.is(whole.length, 3);
  assert.equal(bytes, whole);
  assert.equal(decodeAll(random), whole);
});

test('malformed input: each a SOCKET_BAD_FRAME, nothing quoted', () => {
  const cases: Array<[string, Buffer]> = [
    ['not JSON', Buffer.from('{"type": nope}\n')],
    ['not an object', Buffer.from('["ping"]\n')],
    ['no type', Buffer.from('{"data":{}}\n')],
    ['empty type', Buffer.from('{"type":""}\n')],
    ['odd type', Buffer.from('{"type":"a b"}\n')],
    ['data not an object', Buffer.from('{"type":"ping","data":[1]}\n')],
    ['negative length', Buffer.from('{"type":"ping","data_length":-1}\n')],
    ['fractional length', Buffer.from('{"type":"ping","payload_length":1.5}\n')],
    ['data block not JSON', Buffer.concat([Buffer.from('{"type":"ping","data_length":3}\n'), Buffer.from('abc')])],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x74, 0xff, 0x22, 0x7d, 0x0a])],
    ['empty line', Buffer.from('\n')],
  ];
  for (const [what, bytes] of cases) {
    assert.is(codeOf(() => decodeAll([bytes])), 'SOCKET_BAD_FRAME', what);
  }
  try {
    decodeAll([Buffer.from('{"type": "secret-value-123"')]);
  } catch (e) {
    assert.not.ok(String((e as Error).message).includes('secret-value-123'), 'the input is never quoted');
  }
});

test('limits: header plus data 64 KiB, payload 256 KiB, a line without end; truncated at end()', () => {
  const big = 'x'.repeat(MAX_HEADER_AND_DATA_BYTES);
  assert.is(codeOf(() => decodeAll([Buffer.from(`{"type":"ping","data":{"t":"${big}"}}\n`)])), 'SOCKET_FRAME_TOO_LARGE');
  assert.is(codeOf(() => decodeAll([Buffer.from(`{"type":"ping","data_length":${MAX_HEADER_AND_DATA_BYTES}}\n`)])), 'SOCKET_FRAME_TOO_LARGE');
  assert.is(codeOf(() => decodeAll([Buffer.from(`{"type":"audio-chunk","payload_length":${MAX_PAYLOAD_BYTES + 1}}\n`)])), 'SOCKET_FRAME_TOO_LARGE');
  // A header line that never ends is refused once it passes the limit, not buffered forever.
  const d = new FrameDecoder();
  assert.is(codeOf(() => {
    for (let i = 0; i < 100; i++) d.push(Buffer.alloc(1024, 0x41), () => {});
  }), 'SOCKET_FRAME_TOO_LARGE');
  // Exactly at the limit is fine.
  const exact = decodeAll([Buffer.from(`{"type":"audio-chunk","payload_length":${MAX_PAYLOAD_BYTES}}\n`), Buffer.alloc(MAX_PAYLOAD_BYTES)]);
  assert.is(exact[0]!.payload!.length, MAX_PAYLOAD_BYTES);
  // Truncated: header only, or data or payload cut short.
  for (const cut of ['{"type":"pi', '{"type":"ping","data_length":10}\n{"te', '{"type":"a","payload_length":5}\nab']) {
    const dec = new FrameDecoder();
    dec.push(Buffer.from(cut), () => {});
    assert.ok(dec.pending > 0, cut);
    assert.is(codeOf(() => dec.end()), 'SOCKET_BAD_FRAME', cut);
  }
});

test('frames before a bad one in the same chunk are still delivered', () => {
  const d = new FrameDecoder();
  const got: string[] = [];
  assert.is(codeOf(() => d.push(Buffer.from('{"type":"ping"}\n{"type":"describe"}\n{bad\n'), (f) => got.push(f.type))), 'SOCKET_BAD_FRAME');
  assert.equal(got, ['ping', 'describe']);
});

test('encoder: the reference layout (type, version, data_length, payload_length; data as a block)', () => {
  const [head, payload] = encodeFrame('attachment-chunk', { contentId: 'a1', messageId: 'm1' }, Buffer.from([1, 2, 3]));
  const nl = head!.indexOf(0x0a);
  const header = JSON.parse(head!.subarray(0, nl).toString());
  assert.equal(Object.keys(header), ['type', 'version', 'data_length', 'payload_length']);
  assert.equal(header, { type: 'attachment-chunk', version: WYOMING_VERSION, data_length: head!.length - nl - 1, payload_length: 3 });
  assert.equal(JSON.parse(head!.subarray(nl + 1).toString()), { contentId: 'a1', messageId: 'm1' });
  assert.equal([...payload!], [1, 2, 3]);
  // No data, no payload: the header alone, as the reference writes it.
  const [only] = encodeFrame('pong', {});
  assert.is(only!.toString(), `{"type":"pong","version":"${WYOMING_VERSION}"}\n`);
  // Round trip through the decoder; non-ASCII text stays UTF-8.
  const frames = decodeAll([...encodeFrame('pong', { text: 'こんにちは' }), ...encodeFrame('x', { a: 1 }, Buffer.alloc(10, 9))]);
  assert.equal(frames[0]!.data, { text: 'こんにちは' });
  assert.is(frames[0]!.version, WYOMING_VERSION);
  assert.is(frames[1]!.payload!.length, 10);
});

test.run();
