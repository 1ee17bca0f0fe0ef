// Directives: event metadata, part decoding (strict UTF-8 JSON, shapes, System.Exception),
// cid: attachment links, reading event responses and the downchannel as they stream
// (directives at once, attachments with back-pressure and the stall rule), stale dialogs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicError } from '../src/errors';
import { DialogTracker, cidReferences, decodeDirectivePart, exceptionFromBody, linkAttachments, type AttachmentPart, type DecodedPart } from '../src/cic/directive';
import { DirectiveReader, readDirectives, type DirectiveReaderOptions } from '../src/cic/directive-reader';
import { ATTACHMENT_HIGH_WATER_BYTES, DEFAULT_ATTACHMENT_STALL_MS } from '../src/cic/attachment-sink';
import type { IncomingAttachment, ReceivedDirective } from '../src/cic/types';
import { FakeClock } from './support/fake-clock';
import { buildEventMetadata, newDialogRequestId, type Directive } from '../src/cic/message';
import type { MultipartPart } from '../src/cic/multipart-parser';
import { writeMultipart } from '../src/cic/multipart-writer';
import { BOUNDARY, EXCEPTION, HELLO, PLAY, PLAY_AUDIO, PLAY_CID, SAMPLES, SPEAK, SPEAK_AUDIO, SPEAK_CID, STOP_CAPTURE, randomSplit, seededRandom } from './support/multipart-corpus';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const isArg = (e: unknown) => e instanceof CicError && e.code === 'ERR_INVALID_ARGUMENT';

function jsonPart(value: unknown, contentType: string | undefined = 'application/json; charset=UTF-8'): MultipartPart {
  const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
  return { headers, body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), ...(contentType ? { contentType } : {}) };
}

function binPart(contentId: string, body: Buffer, contentType = 'application/octet-stream'): MultipartPart {
  return { headers: { 'content-type': contentType, 'content-id': `<${contentId}>` }, body, contentId, contentType };
}

function expectDirective(d: DecodedPart): Directive {
  if (d.kind !== 'directive') assert.unreachable(`expected a directive, got ${d.kind}${d.kind === 'error' ? ` ${d.error.message}` : ''}`);
  return (d as { directive: Directive }).directive;
}

function expectError(d: DecodedPart, code: string): CicError {
  if (d.kind !== 'error') assert.unreachable(`expected ${code}, got ${d.kind}`);
  const e = (d as { error: CicError }).error;
  assert.ok(e instanceof CicError);
  assert.is(e.code, code);
  return e;
}

// ---- event metadata ---------------------------------------------------------------------------

test('buildEventMetadata: shape, fresh UUID v4 messageId, context, dialogRequestId', () => {
  const ctx = [{ header: { namespace: 'AudioPlayer', name: 'PlayerState' }, payload: { state: 'IDLE' } }];
  const m = buildEventMetadata({ namespace: 'Clova', name: 'LaunchURI', payload: { uri: 'clova://x' }, context: ctx });
  assert.equal(m.context, ctx);
  assert.is(m.event.header.namespace, 'Clova');
  assert.is(m.event.header.name, 'LaunchURI');
  assert.ok(UUID_V4.test(m.event.header.messageId), m.event.header.messageId);
  assert.ok(!('dialogRequestId' in m.event.header));
  assert.equal(m.event.payload, { uri: 'clova://x' });
  const again = buildEventMetadata({ namespace: 'Clova', name: 'LaunchURI' });
  assert.is.not(again.event.header.messageId, m.event.header.messageId);
  assert.equal(again.context, []);
  assert.equal(again.event.payload, {});
  const d = newDialogRequestId();
  assert.ok(UUID_V4.test(d));
  const rec = buildEventMetadata({ namespace: 'SpeechRecognizer', name: 'Recognize', dialogRequestId: d, messageId: 'm-1' });
  assert.equal(rec.event.header, { namespace: 'SpeechRecognizer', name: 'Recognize', messageId: 'm-1', dialogRequestId: d });
});

test('buildEventMetadata: Recognize events without dialogRequestId and bad arguments throw ERR_INVALID_ARGUMENT', () => {
  assert.throws(() => buildEventMetadata({ namespace: 'SpeechRecognizer', name: 'Recognize' }), isArg);
  assert.throws(() => buildEventMetadata({ namespace: 'TextRecognizer', name: 'Recognize', payload: { text: 'hi' } }), isArg);
  assert.throws(() => buildEventMetadata({ namespace: '', name: 'X' }), isArg);
  assert.throws(() => buildEventMetadata({ namespace: 'A', name: 'B', payload: [] as unknown as Record<string, unknown> }), isArg);
  assert.throws(() => buildEventMetadata({ namespace: 'A', name: 'B', context: [{ payload: {} }] as never }), isArg);
  assert.throws(() => buildEventMetadata({ namespace: 'A', name: 'B', dialogRequestId: '' }), isArg);
  assert.throws(() => buildEventMetadata(null as never), isArg);
});

// ---- decoding ---------------------------------------------------------------------------------

test('Clova.Hello decodes: with charset, without content type (sniffed), upper-case type, bare form', () => {
  for (const part of [jsonPart(HELLO), jsonPart(HELLO, undefined), jsonPart(HELLO, 'APPLICATION/JSON'), jsonPart(`\r\n ${JSON.stringify(HELLO)}`, undefined), jsonPart(HELLO.directive)]) {
    const d = expectDirective(decodeDirectivePart(part));
    assert.equal(d.header, HELLO.directive.header);
    assert.equal(d.payload, {});
  }
  const noPayload = expectDirective(decodeDirectivePart(jsonPart({ directive: { header: { namespace: 'Clova', name: 'Hello', dialogRequestId: null } } })));
  assert.equal(noPayload.payload, {}, 'a missing payload becomes {}');
  assert.ok(!('dialogRequestId' in noPayload.header));
});

test('binary parts are attachments; they need a Content-ID', () => {
  const a = decodeDirectivePart(binPart(SPEAK_CID, SPEAK_AUDIO, 'audio/mpeg'));
  assert.is(a.kind, 'attachment');
  const att = a as AttachmentPart;
  assert.is(att.contentId, SPEAK_CID);
  assert.is(att.contentType, 'audio/mpeg');
  assert.ok(att.body === SPEAK_AUDIO);
  const noType = decodeDirectivePart({ headers: { 'content-id': '<raw>' }, body: Buffer.from([0, 1, 2]), contentId: 'raw' });
  assert.is(noType.kind, 'attachment', 'no content type and not JSON-looking');
  const e = expectError(decodeDirectivePart({ headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('x'), contentType: 'application/octet-stream' }), 'CIC_BAD_DIRECTIVE');
  assert.is(e.details?.reason, 'attachment-without-content-id');
});

test('invalid UTF-8 and invalid JSON → CIC_BAD_DIRECTIVE without any body content in the error', () => {
  const secret = 'SECRET-user-speech-7731';
  const badUtf8 = Buffer.concat([Buffer.from(`{"directive":{"header":{"namespace":"${secret}","name":"X"},"payload":{"t":"`), Buffer.from([0xc3, 0x28]), Buffer.from('"}}}')]);
  const cases: Array<[Buffer, string]> = [
    [badUtf8, 'invalid-utf8'],
    [Buffer.from([0xed, 0xa0, 0x80]), 'invalid-utf8'], // UTF-16 surrogate encoded in UTF-8
    [Buffer.from(`{"directive": {"header": "${secret}" `), 'invalid-json'],
    [Buffer.from(`{${secret}}`), 'invalid-json'],
    [Buffer.alloc(0), 'invalid-json'],
  ];
  for (const [body, reason] of cases) {
    const e = expectError(decodeDirectivePart({ headers: { 'content-type': 'application/json' }, body, contentType: 'application/json' }), 'CIC_BAD_DIRECTIVE');
    assert.is(e.details?.reason, reason);
    const everything = JSON.stringify(e.toJSON()) + e.message + String(e.stack) + String(e.cause ?? '');
    assert.not.match(everything, secret);
    assert.not.match(everything, 'payload');
  }
});

test('wrong shapes → CIC_BAD_DIRECTIVE', () => {
  const shapes: unknown[] = [
    [],
    'just a string',
    42,
    null,
    { directive: 'x' },
    { directive: { payload: {} } },
    { directive: { header: { name: 'Hello' }, payload: {} } },
    { directive: { header: { namespace: 'Clova', name: 7 }, payload: {} } },
    { directive: { header: { namespace: 'Clova', name: '' }, payload: {} } },
    { directive: { header: { namespace: 'Clova', name: 'Hello', messageId: 5 } } },
    { directive: { header: { namespace: 'Clova', name: 'Hello', dialogRequestId: {} } } },
    { directive: { header: { namespace: 'Clova', name: 'Hello' }, payload: [1] } },
    { directive: { header: { namespace: 'Clova', name: 'Hello' }, payload: 'text' } },
    { unrelated: true },
  ];
  for (const s of shapes) {
    const e = expectError(decodeDirectivePart(jsonPart(JSON.stringify(s))), 'CIC_BAD_DIRECTIVE');
    assert.is(e.details?.reason, 'shape', JSON.stringify(s));
  }
});

test('System.Exception in every published form → CIC_EXCEPTION with {code, description}', () => {
  const forms: Array<[unknown, string]> = [
    [EXCEPTION, '401'],
    [EXCEPTION.directive, '401'],
    [{ directive: { header: { namespace: 'System', name: 'Exception' }, payload: { code: '500', description: 'token expired' } } }, '500'],
    [{ header: { namespace: 'System', name: 'Exception', messageId: 'x' }, payload: { code: 400, description: 'token expired' } }, '400'],
    [{ payload: { code: 'INVALID_REQUEST', description: 'token expired' } }, 'INVALID_REQUEST'],
    [{ directive: { payload: { code: 412, description: 'token expired' } } }, '412'],
  ];
  for (const [form, code] of forms) {
    for (const part of [jsonPart(form), jsonPart(form, undefined)]) {
      const e = expectError(decodeDirectivePart(part), 'CIC_EXCEPTION');
      assert.equal(e.details, { code, description: 'token expired' });
      assert.match(e.message, code);
    }
    const fromBody = exceptionFromBody(Buffer.from(JSON.stringify(form)));
    assert.ok(fromBody instanceof CicError && fromBody.code === 'CIC_EXCEPTION' && fromBody.details?.code === code);
  }
  assert.is(exceptionFromBody(Buffer.from('<html>502</html>')), undefined);
  assert.is(exceptionFromBody(Buffer.from('{"not":"an exception"}')), undefined);
  assert.is(exceptionFromBody(Buffer.alloc(0)), undefined);
});

// ---- cid links --------------------------------------------------------------------------------

test('linkAttachments: payload.url and nested audioItem.stream.url, <> stripped, cid: prefix in any case, ids case-sensitive', () => {
  const speak = expectDirective(decodeDirectivePart(jsonPart(SPEAK)));
  const play = expectDirective(decodeDirectivePart(jsonPart(PLAY)));
  const atts: AttachmentPart[] = [{ contentId: SPEAK_CID, body: SPEAK_AUDIO }, { contentId: `<${PLAY_CID}>`, body: PLAY_AUDIO }];
  const { links, unmatched } = linkAttachments([speak, play], atts);
  assert.equal(unmatched, []);
  assert.equal(links.map((l) => [l.path.join('.'), l.contentId]), [['payload.url', SPEAK_CID], ['payload.audioItem.stream.url', PLAY_CID]]);
  assert.ok(links[0]!.attachment.body === SPEAK_AUDIO && links[0]!.directive === speak);

  const odd: Directive = {
    header: { namespace: 'X', name: 'Y' },
    payload: { a: 'CID:<Upper>', list: [{ u: 'Cid:upper' }, 'cid:a%40b'], not: 'see cid:inside', short: 'cid:' },
  };
  assert.equal(cidReferences(odd).map((r) => [r.path.join('.'), r.contentId]), [['payload.a', 'Upper'], ['payload.list.0.u', 'upper'], ['payload.list.1', 'a%40b']]);
  const r = linkAttachments([odd], new Map([['Upper', { contentId: 'Upper', body: Buffer.from('U') }], ['a@b', { contentId: 'a@b', body: Buffer.from('@') }]]));
  assert.equal(r.links.map((l) => l.attachment.body.toString()), ['U', '@'], 'percent-encoded ids resolve (RFC 2392)');
  assert.equal(r.unmatched, ['upper'], 'Content-IDs compare case-sensitively');
});

test('cidReferences survives hostile nesting without recursion', () => {
  let deep: unknown = 'cid:deep';
  for (let i = 0; i < 100_000; i++) deep = { d: deep };
  assert.equal(cidReferences({ header: { namespace: 'A', name: 'B' }, payload: deep as Record<string, unknown> }), []);
  const wide = { header: { namespace: 'A', name: 'B' }, payload: { list: Array.from({ length: 50_000 }, () => 'cid:x') } };
  assert.ok(cidReferences(wide).length < 10_000, 'walk is bounded');
});

// ---- streaming a response -----------------------------------------------------------------------

const B = BOUNDARY;
const JSON_H = { 'Content-Type': 'application/json; charset=UTF-8' };
const binH = (cid: string, type = 'application/octet-stream') => ({ 'Content-Type': type, 'Content-ID': `<${cid}>` });
/** `--B` + headers + blank line: a part's head (the previous part, if any, ends with this delimiter). */
const head = (headers: Record<string, string>) => Buffer.from(`--${B}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
/** A whole part; it is complete once the next part's head (or CLOSE) follows. */
const part = (headers: Record<string, string>, body: Buffer | string) => Buffer.concat([head(headers), Buffer.from(body), Buffer.from('\r\n')]);
const CLOSE = Buffer.from(`--${B}--\r\n`);
const tick = () => new Promise<void>((r) => setImmediate(r));

interface Streamed {
  a: IncomingAttachment;
  chunks: Buffer[];
  ended: boolean;
  error: CicError | undefined;
  body(): Buffer;
}

/** A DirectiveReader whose attachments are read as they flow (`read`) or kept and never read. */
function streamReader(source: 'event' | 'downchannel', extra: Partial<DirectiveReaderOptions> = {}, read = true) {
  const directives: ReceivedDirective[] = [];
  const attachments: Streamed[] = [];
  const problems: CicError[] = [];
  let pushed = 0;
  let consumed = 0;
  const reader = new DirectiveReader({
    contentType: `multipart/related; boundary=${B}`,
    source,
    ...(source === 'event' ? { eventMessageId: 'ev-1' } : {}),
    onDirective: (d) => void directives.push(d),
    onAttachment: (a) => {
      const s: Streamed = { a, chunks: [], ended: false, error: undefined, body: () => Buffer.concat(s.chunks) };
      attachments.push(s);
      if (!read) return;
      a.stream.on('data', (c: Buffer) => s.chunks.push(c));
      a.stream.on('end', () => (s.ended = true));
      a.stream.on('error', (e) => (s.error = e as CicError));
    },
    onProblem: (e) => problems.push(e),
    consume: (n) => (consumed += n),
    ...extra,
  });
  const push = (b: Buffer | string) => {
    const buf = Buffer.from(b);
    pushed += buf.length;
    reader.push(buf);
  };
  return {
    reader, directives, attachments, problems, push,
    names: () => directives.map((d) => d.directive.header.name),
    reasons: () => problems.map((e) => [e.code, e.details?.reason ?? null]),
    pushed: () => pushed,
    consumed: () => consumed,
  };
}

test('event response: a directive goes out when its JSON part is complete, before the body ends; its attachment streams with the directive ids', async () => {
  const t = streamReader('event');
  t.push(part(JSON_H, JSON.stringify(SPEAK)));
  assert.equal(t.names(), [], 'not before its delimiter');
  t.push(head(binH(SPEAK_CID)));
  assert.equal(t.names(), ['Speak'], 'delivered while the body goes on');
  const d = t.directives[0]!;
  assert.equal([d.source, d.eventMessageId], ['event', 'ev-1']);
  assert.equal(d.attachments, [{ contentId: SPEAK_CID }], 'metadata only: the bytes have not come yet');
  t.push(SPEAK_AUDIO.subarray(0, 1000));
  assert.is(t.attachments.length, 1, 'announced when its part starts');
  const a = t.attachments[0]!.a;
  assert.equal(
    { contentId: a.contentId, contentType: a.contentType, source: a.source, eventMessageId: a.eventMessageId, directiveMessageId: a.directiveMessageId, dialogRequestId: a.dialogRequestId },
    { contentId: SPEAK_CID, contentType: 'application/octet-stream', source: 'event', eventMessageId: 'ev-1', directiveMessageId: SPEAK.directive.header.messageId, dialogRequestId: 'dlg-1' },
  );
  await tick();
  const early = t.attachments[0]!.body();
  assert.ok(early.length >= 1000 - (B.length + 4) && SPEAK_AUDIO.subarray(0, early.length).equals(early), `first bytes out before the part ends (${early.length})`);
  assert.not.ok(t.attachments[0]!.ended);
  t.push(Buffer.concat([SPEAK_AUDIO.subarray(1000), Buffer.from('\r\n'), CLOSE]));
  t.reader.end();
  await tick();
  assert.ok(t.attachments[0]!.ended);
  assert.ok(t.attachments[0]!.body().equals(SPEAK_AUDIO), 'the attachment arrived whole, in order');
  assert.equal(t.problems, []);
  assert.is(t.consumed(), t.pushed(), 'every byte given back to flow control once');
});

test('event response: an attachment before its directive is announced without directive ids; the directive names its content type', async () => {
  const t = streamReader('event');
  t.push(part({ 'content-type': 'audio/mpeg', 'content-id': PLAY_CID }, PLAY_AUDIO));
  t.push(part(JSON_H, JSON.stringify(PLAY)));
  t.push(CLOSE);
  t.reader.end();
  await tick();
  const a = t.attachments[0]!;
  assert.is(a.a.contentId, PLAY_CID);
  assert.is(a.a.directiveMessageId, undefined);
  assert.is(a.a.dialogRequestId, undefined);
  assert.ok(a.body().equals(PLAY_AUDIO));
  assert.equal(t.names(), ['Play']);
  assert.equal(t.directives[0]!.attachments, [{ contentId: PLAY_CID, contentType: 'audio/mpeg' }]);
  assert.equal(t.problems, []);
});

test('event response: order kept and each directive out at once; a missing and an unreferenced attachment reported at the end; bad parts skipped', async () => {
  const t = streamReader('event');
  t.push(part(JSON_H, JSON.stringify(STOP_CAPTURE)));
  t.push(part(JSON_H, '{broken'));
  assert.equal(t.names(), ['StopCapture']);
  t.push(part(JSON_H, JSON.stringify(SPEAK)));
  t.push(part(binH('nobody-wants-me'), 'x'));
  assert.equal(t.names(), ['StopCapture', 'Speak']);
  t.push(part(JSON_H, JSON.stringify(EXCEPTION)));
  t.push(CLOSE);
  t.reader.end();
  t.reader.push(Buffer.from(JSON.stringify(HELLO))); // after end: ignored (and given back)
  await tick();
  assert.equal(t.names(), ['StopCapture', 'Speak']);
  assert.equal(t.directives[1]!.attachments, [{ contentId: SPEAK_CID }]);
  assert.equal(t.reasons(), [
    ['CIC_BAD_DIRECTIVE', 'invalid-json'],
    ['CIC_EXCEPTION', null],
    ['CIC_BAD_DIRECTIVE', 'missing-attachment'],
    ['CIC_BAD_DIRECTIVE', 'unreferenced-attachment'],
  ]);
  assert.ok(t.attachments[0]!.body().equals(Buffer.from('x')), 'an unreferenced attachment still streams');
});

test('a dropped directive (stale dialog) takes its attachment with it: not announced, its bytes discarded and given back', async () => {
  const t = streamReader('downchannel', { onDirective: (d) => d.directive.header.dialogRequestId !== 'dlg-1' });
  t.push(part(JSON_H, JSON.stringify(SPEAK)));
  t.push(part(binH(SPEAK_CID), SPEAK_AUDIO));
  t.push(head(JSON_H));
  assert.equal(t.attachments, []);
  assert.equal(t.problems, []);
  assert.is(t.consumed(), t.pushed());
});

test('nobody takes attachments: their bytes are counted and discarded, none held, every byte given back at once', () => {
  for (const extra of [{ onAttachment: undefined }, { wantsAttachments: () => false }] as Array<Partial<DirectiveReaderOptions>>) {
    const t = streamReader('downchannel', extra);
    t.push(part(JSON_H, JSON.stringify(SPEAK)));
    t.push(head(binH(SPEAK_CID)));
    const piece = Buffer.alloc(16 * 1024, 0x55);
    for (let i = 0; i < 64; i++) {
      t.push(piece);
      assert.is(t.consumed(), t.pushed(), `push ${i}: given back at once`);
      assert.is(t.reader.heldBytes, 0);
      assert.ok(t.reader.bufferedBytes <= B.length + 4, 'nothing of the attachment is buffered');
    }
    t.push(Buffer.from('\r\n'));
    t.push(part(JSON_H, JSON.stringify(STOP_CAPTURE)));
    t.push(head(JSON_H));
    assert.equal(t.names(), ['Speak', 'StopCapture']);
    assert.equal(t.attachments, []);
    assert.equal(t.problems, []);
  }
});

test('back-pressure: a 10 MB attachment through a slow reader — at most one window held, the stream buffer at most high-water mark + window, every byte in order', () => {
  const WINDOW = 256 * 1024; // what HTTP/2 flow control lets the server send ahead of consumption
  const FRAME = 16 * 1024;
  const TOTAL = 10 * 1024 * 1024;
  const byteAt = (i: number) => (i * 31 + (i >>> 13)) & 0xff;
  const t = streamReader('event', {}, false);
  const wire: Buffer[] = [part(JSON_H, JSON.stringify(SPEAK)), head(binH(SPEAK_CID))];
  for (let at = 0; at < TOTAL; at += FRAME) wire.push(Buffer.from(Array.from({ length: Math.min(FRAME, TOTAL - at) }, (_, k) => byteAt(at + k))));
  wire.push(Buffer.from('\r\n'), CLOSE);
  let next = 0;
  let received = 0;
  let maxHeld = 0;
  let maxBuffered = 0;
  let serverBlocked = 0;
  let mismatch = -1;
  for (let round = 0; round < 1_000_000; round++) {
    let moved = false;
    // The server sends whatever flow control allows.
    while (next < wire.length && t.pushed() - t.consumed() + wire[next]!.length <= WINDOW) {
      t.push(wire[next++]!);
      moved = true;
    }
    if (next < wire.length) serverBlocked++;
    if (next === wire.length && received === TOTAL) break;
    // The consumer takes 4 KiB per round: four times slower than the server would send.
    const s = t.attachments[0]?.a.stream;
    const c = s?.read(Math.min(4096, s.readableLength || 4096)) as Buffer | null | undefined;
    if (c) {
      for (let k = 0; k < c.length && mismatch < 0; k++) if (c[k] !== byteAt(received + k)) mismatch = received + k;
      received += c.length;
      moved = true;
    }
    maxHeld = Math.max(maxHeld, t.reader.heldBytes);
    maxBuffered = Math.max(maxBuffered, s?.readableLength ?? 0);
    if (!moved) assert.unreachable(`stalled after ${received} bytes: neither side can move (held ${t.reader.heldBytes})`);
  }
  t.reader.end();
  assert.is(received, TOTAL);
  assert.is(mismatch, -1, 'every byte in order');
  assert.ok(serverBlocked > 1000, `flow control held the server back (${serverBlocked} rounds)`);
  assert.ok(maxHeld <= WINDOW, `held ${maxHeld} ≤ one window`);
  assert.ok(maxBuffered <= ATTACHMENT_HIGH_WATER_BYTES + WINDOW, `stream buffer ${maxBuffered} ≤ high-water mark + window`);
  assert.is(t.consumed(), t.pushed());
  assert.equal(t.problems, []);
});

test('stall: a consumer that takes nothing for attachmentStallMs (fake clock) loses the stream with CIC_ATTACHMENT_STALLED; the rest is discarded and the downchannel goes on', async () => {
  const clock = new FakeClock();
  const t = streamReader('downchannel', { clock }, false);
  t.push(part(JSON_H, JSON.stringify(HELLO)));
  t.push(part(JSON_H, JSON.stringify(SPEAK)));
  t.push(head(binH(SPEAK_CID)));
  const piece = Buffer.alloc(16 * 1024, 0x33);
  for (let i = 0; i < 20; i++) t.push(piece);
  const s = t.attachments[0]!.a.stream;
  assert.ok(t.reader.heldBytes > 0, 'bytes beyond the high-water mark are held from flow control');
  assert.ok(t.pushed() - t.consumed() <= 20 * piece.length - ATTACHMENT_HIGH_WATER_BYTES + piece.length);
  clock.advance(DEFAULT_ATTACHMENT_STALL_MS - 1);
  assert.not.ok(s.destroyed, 'not a millisecond early');
  assert.equal(t.problems, []);
  let streamError: unknown;
  s.on('error', (e) => (streamError = e));
  clock.advance(1);
  assert.ok(s.destroyed);
  assert.equal(t.problems.map((e) => e.code), ['CIC_ATTACHMENT_STALLED']);
  assert.equal(t.problems[0]!.details?.contentId, SPEAK_CID);
  assert.is(t.reader.heldBytes, 0, 'held bytes given back');
  assert.is(t.consumed(), t.pushed());
  await tick();
  assert.ok(streamError instanceof CicError && streamError.code === 'CIC_ATTACHMENT_STALLED', 'the stream ends with the coded error');
  for (let i = 0; i < 20; i++) {
    t.push(piece);
    assert.is(t.consumed(), t.pushed(), 'the rest of the part is discarded and given back at once');
  }
  t.push(Buffer.from('\r\n'));
  t.push(part(JSON_H, JSON.stringify(STOP_CAPTURE)));
  t.push(head(JSON_H));
  assert.equal(t.names(), ['Hello', 'Speak', 'StopCapture'], 'later directives keep coming');
  assert.is(clock.pending, 0, 'no timer left behind');
});

test('stall rule: a slow but steady reader is never cut off, even after the part ended', () => {
  const clock = new FakeClock();
  const t = streamReader('event', { clock }, false);
  t.push(part(JSON_H, JSON.stringify(SPEAK)));
  t.push(head(binH(SPEAK_CID)));
  const piece = Buffer.alloc(16 * 1024, 0x44);
  for (let i = 0; i < 20; i++) t.push(piece);
  t.push(Buffer.from('\r\n'));
  t.push(CLOSE);
  t.reader.end();
  const s = t.attachments[0]!.a.stream;
  let got = 0;
  for (let step = 0; step < 40; step++) {
    clock.advance(DEFAULT_ATTACHMENT_STALL_MS - 1);
    const c = s.read(1024) as Buffer | null;
    got += c?.length ?? 0;
  }
  assert.not.ok(s.destroyed);
  assert.equal(t.problems, []);
  assert.is(got, 40 * 1024);
  assert.is(t.consumed(), t.pushed(), 'a complete part holds nothing back from flow control');
  // Then it stops reading: the stream is destroyed after the stall time.
  clock.advance(DEFAULT_ATTACHMENT_STALL_MS);
  clock.advance(DEFAULT_ATTACHMENT_STALL_MS);
  assert.ok(s.destroyed);
  assert.equal(t.problems.map((e) => e.code), ['CIC_ATTACHMENT_STALLED']);
});

test('abort: an attachment still streaming ends with the body error; the consumer destroying its stream discards the rest', async () => {
  const t = streamReader('event');
  t.push(part(JSON_H, JSON.stringify(SPEAK)));
  t.push(head(binH(SPEAK_CID)));
  t.push(SPEAK_AUDIO.subarray(0, 500));
  const err = new CicError('H2_STREAM_RESET', 'reset');
  t.reader.abort(err);
  await tick();
  assert.is(t.attachments[0]!.error, err);
  assert.is(t.consumed(), t.pushed());

  const u = streamReader('downchannel', {}, false);
  u.push(part(JSON_H, JSON.stringify(SPEAK)));
  u.push(head(binH(SPEAK_CID)));
  for (let i = 0; i < 10; i++) u.push(Buffer.alloc(16 * 1024));
  u.attachments[0]!.a.stream.destroy();
  await tick();
  assert.is(u.reader.heldBytes, 0);
  u.push(Buffer.alloc(64 * 1024));
  assert.is(u.consumed(), u.pushed());
  assert.equal(u.problems, []);
});

test('downchannel: a cid waits at most maxWaitParts parts for its counterpart, then it is reported', () => {
  const t = streamReader('downchannel', { maxWaitParts: 3 });
  t.push(part(JSON_H, JSON.stringify(SPEAK)));
  t.push(part(JSON_H, JSON.stringify(STOP_CAPTURE)));
  t.push(part(JSON_H, JSON.stringify(HELLO)));
  t.push(part(JSON_H, JSON.stringify(HELLO)));
  assert.equal(t.names(), ['Speak', 'StopCapture', 'Hello'], 'nothing waits for an attachment');
  assert.equal(t.reasons(), []);
  t.push(part(binH('orphan'), Buffer.alloc(100)));
  assert.equal(t.reasons(), [['CIC_BAD_DIRECTIVE', 'missing-attachment']], 'after 3 more parts');
  for (let i = 0; i < 3; i++) t.push(part(JSON_H, JSON.stringify(HELLO)));
  assert.equal(t.reasons(), [['CIC_BAD_DIRECTIVE', 'missing-attachment']], 'the orphan still waits for its directive');
  t.push(Buffer.concat([head(JSON_H), Buffer.from('{')])); // a part starts with its first body byte
  assert.equal(t.reasons(), [['CIC_BAD_DIRECTIVE', 'missing-attachment'], ['CIC_BAD_DIRECTIVE', 'unreferenced-attachment']]);
  // A late attachment is still streamed, just without directive ids.
  assert.is(t.attachments[0]!.a.directiveMessageId, undefined);
});

test('DirectiveReader: event response bodies in random pieces → directives, then attachments streamed whole', async () => {
  const rnd = seededRandom(44);
  for (const s of SAMPLES.slice(0, 2)) {
    for (let n = 0; n < 50; n++) {
      const t = streamReader('event', { contentType: s.contentType });
      for (const c of randomSplit(s.body, rnd, 9)) t.push(c);
      t.reader.end();
      await tick();
      assert.equal(t.problems, []);
      const withAudio = t.directives.find((d) => d.attachments.length > 0)!;
      assert.ok(withAudio, s.name);
      const want = withAudio.directive.header.name === 'Speak' ? SPEAK_AUDIO : PLAY_AUDIO;
      const a = t.attachments.find((x) => x.a.contentId === withAudio.attachments[0]!.contentId)!;
      assert.ok(a.ended && a.body().equals(want), `${s.name} case ${n}`);
      assert.is(t.consumed(), t.pushed());
    }
  }
});

test('DirectiveReader: never-ending downchannel delivers Hello before the body ends; untyped parts sniffed across splits; bad content type reported', () => {
  const t = streamReader('downchannel');
  t.push(writeMultipart(BOUNDARY, [{ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(HELLO) }], { close: false }));
  assert.equal(t.names(), ['Hello']);
  t.push(writeMultipart(BOUNDARY, [{ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(STOP_CAPTURE) }], { close: false }).subarray(2 + BOUNDARY.length + 2));
  assert.equal(t.names(), ['Hello', 'StopCapture']);
  // No content type: `{` after whitespace is JSON, even when the whitespace comes alone first.
  t.push(Buffer.from('Content-ID: <x>\r\n\r\n  \r\n'));
  t.push(Buffer.from(` ${JSON.stringify(HELLO)}\r\n--${B}`));
  assert.equal(t.names(), ['Hello', 'StopCapture', 'Hello']);
  t.push(Buffer.from(`\r\nContent-ID: <raw>\r\n\r\n`));
  t.push(Buffer.from([0, 1, 2]));
  assert.equal(t.attachments.map((a) => a.a.contentId), ['raw'], 'untyped, not JSON: an attachment');
  assert.equal(t.problems, []);

  const bad: CicError[] = [];
  const r = readDirectives({ contentType: 'application/json', source: 'event', onDirective: () => assert.unreachable(), onProblem: (e) => bad.push(e) });
  r.push(Buffer.from('{}'));
  r.end();
  assert.equal(bad.map((e) => e.code), ['CIC_MULTIPART']);
  assert.throws(() => new DirectiveReader({ contentType: '', source: 'sideways' as 'event', onDirective() {}, onProblem() {} }), isArg);
});

// ---- dialogs ----------------------------------------------------------------------------------

test('DialogTracker: stale dialog directives are dropped; those without dialogRequestId always pass', () => {
  const t = new DialogTracker();
  const withId = (id?: string) => ({ header: { namespace: 'SpeechSynthesizer', name: 'Speak', ...(id ? { dialogRequestId: id } : {}) } });
  assert.ok(t.isCurrent(withId()));
  assert.ok(!t.isCurrent(withId('d1')), 'no dialog is current');
  t.start('d1');
  assert.is(t.current, 'd1');
  assert.ok(t.isCurrent(withId('d1')));
  const d2 = t.start();
  assert.ok(UUID_V4.test(d2));
  assert.ok(!t.isCurrent(withId('d1')), 'barge-in: the old dialog is stale');
  assert.ok(t.isCurrent(withId(d2)));
  assert.ok(t.isCurrent(withId()), 'Hello and cloud-initiated directives pass');
  t.end('d1');
  assert.is(t.current, d2, 'ending another dialog changes nothing');
  t.end(d2);
  assert.is(t.current, undefined);
  assert.ok(!t.isCurrent(withId(d2)));
  assert.throws(() => t.start(''), isArg);
});

test.run();
