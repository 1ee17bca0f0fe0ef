// Event bodies: the writer's output parses back with our parser, the boundary never occurs in
// the metadata, streamed audio passes through untouched, and misuse is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicError } from '../src/errors';
import { parseMultipartContentType } from '../src/cic/content-type';
import { MultipartParser, type MultipartPart } from '../src/cic/multipart-parser';
import { collectParts } from '../src/cic/part-buffer';
import { EventBodyWriter, encodeEventBody, randomBoundary, writeMultipart } from '../src/cic/multipart-writer';
import { buildEventMetadata, newDialogRequestId } from '../src/cic/message';
import { seededRandom, trickyBinary } from './support/multipart-corpus';

function parse(contentType: string, body: Buffer | Buffer[]): { parts: MultipartPart[]; errors: CicError[]; closed: boolean } {
  const { boundary } = parseMultipartContentType(contentType);
  const parts: MultipartPart[] = [];
  const errors: CicError[] = [];
  const onError = (e: CicError) => errors.push(e);
  const p = new MultipartParser({ boundary, ...collectParts({ onPart: (x) => parts.push(x), onError }), onError });
  for (const c of Array.isArray(body) ? body : [body]) p.push(c);
  const closed = p.closed;
  p.end();
  return { parts, errors, closed };
}

const isArg = (e: unknown) => e instanceof CicError && e.code === 'ERR_INVALID_ARGUMENT';

test('boundary: random, URL-safe, valid RFC 2046 length, different every time', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const b = randomBoundary();
    assert.ok(/^cic-[A-Za-z0-9_-]{32}$/.test(b), b);
    assert.ok(b.length <= 70);
    seen.add(b);
  }
  assert.is(seen.size, 200);
  const w = new EventBodyWriter('{}');
  assert.is(w.contentType, `multipart/form-data; boundary=${w.boundary}`);
  assert.is(parseMultipartContentType(w.contentType).subtype, 'form-data');
});

test('metadata-only event round-trips through the parser (complete() and encodeEventBody)', () => {
  const metadata = buildEventMetadata({ namespace: 'TextRecognizer', name: 'Recognize', payload: { text: '오늘 날씨 어때? ☀' }, dialogRequestId: newDialogRequestId() });
  const json = JSON.stringify(metadata);
  const w = new EventBodyWriter(json);
  const body = w.complete();
  const r = parse(w.contentType, body);
  assert.equal(r.errors, []);
  assert.ok(r.closed, 'ends with the close delimiter');
  assert.is(r.parts.length, 1);
  const part = r.parts[0]!;
  assert.is(part.name, 'metadata');
  assert.is(part.headers['content-disposition'], 'form-data; name="metadata"');
  assert.is(part.contentType, 'application/json; charset=UTF-8');
  assert.equal(JSON.parse(part.body.toString('utf8')), metadata);
  assert.ok(body.subarray(0, 2 + w.boundary.length).equals(Buffer.from(`--${w.boundary}`)), 'no preamble');

  const e = encodeEventBody(metadata);
  const r2 = parse(e.contentType, e.body);
  assert.equal(JSON.parse(r2.parts[0]!.body.toString('utf8')), metadata);
  assert.is(e.boundary, parseMultipartContentType(e.contentType).boundary);
});

test('complete() is exactly head() + tail() for a metadata-only event', () => {
  const a = new EventBodyWriter('{"a":"ü"}', { boundary: 'fixed-b' });
  const b = new EventBodyWriter('{"a":"ü"}', { boundary: 'fixed-b' });
  assert.ok(a.complete().equals(Buffer.concat([b.head(), b.tail()])));
});

test('audio is streamed: head, chunks passed through without copying, tail; round-trips', () => {
  const json = JSON.stringify(buildEventMetadata({ namespace: 'SpeechRecognizer', name: 'Recognize', payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }, dialogRequestId: 'd-1' }));
  const w = new EventBodyWriter(json, { audio: true });
  const audio = trickyBinary(32000, 21, w.boundary);
  const out: Buffer[] = [w.head()];
  const rnd = seededRandom(43);
  for (let i = 0; i < audio.length;) {
    const n = Math.min(audio.length - i, 1 + Math.floor(rnd() * 6400)); // ~200 ms of 16 kHz 16-bit audio
    const chunk = audio.subarray(i, i + n);
    const pieces = w.audioChunk(chunk);
    assert.is(pieces.length, 1);
    assert.ok(pieces[0] === chunk, 'the same Buffer object comes back');
    out.push(...pieces);
    i += n;
  }
  const u8 = new Uint8Array([1, 2, 3]);
  const view = w.audioChunk(u8)[0]!;
  assert.ok(Buffer.isBuffer(view) && view.buffer === u8.buffer, 'a Uint8Array is wrapped, not copied');
  out.push(view);
  assert.equal(w.audioChunk(Buffer.alloc(0)), []);
  out.push(w.tail());
  const r = parse(w.contentType, out);
  assert.equal(r.errors, []);
  assert.equal(r.parts.map((p) => p.name), ['metadata', 'audio']);
  assert.is(r.parts[1]!.contentType, 'application/octet-stream');
  assert.ok(r.parts[1]!.body.equals(Buffer.concat([audio, Buffer.from([1, 2, 3])])));
  assert.equal(JSON.parse(r.parts[0]!.body.toString()), JSON.parse(json));
});

test('an audio event with no audio chunks still parses (empty audio part)', () => {
  const w = new EventBodyWriter('{}', { audio: true });
  const r = parse(w.contentType, [w.head(), w.tail()]);
  assert.equal(r.errors, []);
  assert.equal(r.parts.map((p) => [p.name, p.body.length]), [['metadata', 2], ['audio', 0]]);
});

test('the boundary never occurs in the metadata JSON', () => {
  const colliding = 'cic-collide';
  const json = JSON.stringify({ note: `contains ${colliding} on purpose` });
  const offered: string[] = [];
  const w = new EventBodyWriter(json, {
    randomBoundary: () => {
      const b = offered.length === 0 ? colliding : `cic-fresh-${offered.length}`;
      offered.push(b);
      return b;
    },
  });
  assert.equal(offered, [colliding, 'cic-fresh-1']);
  assert.is(w.boundary, 'cic-fresh-1');
  assert.ok(!json.includes(w.boundary));
  assert.throws(() => new EventBodyWriter(json, { boundary: colliding }), isArg);
  assert.throws(() => new EventBodyWriter(json, { randomBoundary: () => colliding }), (e: unknown) => e instanceof CicError && e.code === 'ERR_INTERNAL');
  // Random boundaries over metadata full of boundary-like text.
  for (let i = 0; i < 50; i++) {
    const m = JSON.stringify({ junk: Array.from({ length: 20 }, () => randomBoundary()) });
    const x = new EventBodyWriter(m);
    assert.ok(!m.includes(x.boundary));
  }
});

test('misuse is refused with ERR_INVALID_ARGUMENT', () => {
  const noAudio = new EventBodyWriter({ a: 1 });
  noAudio.head();
  assert.throws(() => noAudio.audioChunk(Buffer.from('x')), isArg);
  assert.throws(() => noAudio.head(), isArg);
  noAudio.tail();
  assert.throws(() => noAudio.tail(), isArg);
  const audio = new EventBodyWriter('{}', { audio: true });
  assert.throws(() => audio.audioChunk(Buffer.from('x')), isArg, 'audio before head');
  assert.throws(() => audio.tail(), isArg, 'tail before head');
  audio.head();
  assert.throws(() => audio.audioChunk('text' as unknown as Buffer), isArg);
  assert.throws(() => audio.complete(), isArg);
  audio.tail();
  assert.throws(() => audio.audioChunk(Buffer.from('x')), isArg, 'audio after tail');
  assert.throws(() => new EventBodyWriter('{}', { boundary: 'bad\r\n' }), isArg);
  assert.throws(() => new EventBodyWriter(undefined as unknown as string), isArg);
});

test('writeMultipart: LF bodies, padding, preamble/epilogue, unclosed (downchannel) bodies parse back', () => {
  const parts = [{ headers: { 'Content-ID': '<a>' }, body: 'one' }, { headers: [['Content-Type', 'application/json']] as Array<[string, string]>, body: Buffer.from('{}') }];
  for (const opts of [{}, { newline: '\n' as const }, { padding: '  ' }, { preamble: 'pre', epilogue: 'epi' }]) {
    const r = parse('multipart/related; boundary=wm', writeMultipart('wm', parts, opts));
    assert.equal(r.errors, [], JSON.stringify(opts));
    assert.equal(r.parts.map((p) => p.body.toString()), ['one', '{}']);
    assert.ok(r.closed);
  }
  const open = parse('multipart/related; boundary=wm', writeMultipart('wm', parts, { close: false }));
  assert.is(open.parts.length, 2, 'parts of an unclosed body are all dispatched');
  assert.is(open.errors.length, 1, 'and end() reports the missing close delimiter');
  assert.throws(() => writeMultipart('', parts), isArg);
});

test.run();
