// Directives: event metadata, part decoding (strict UTF-8 JSON, shapes, System.Exception),
// cid: attachment links, assembling event responses and the downchannel, stale dialogs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicError } from '../src/errors';
import {
  DialogTracker, DirectiveAssembler, DirectiveReader, cidReferences, createDirectiveReader, decodeDirectivePart, exceptionFromBody, linkAttachments,
  type AssembledDirective, type Attachment, type DecodedPart, type DirectiveAssemblerOptions,
} from '../src/cic/directive';
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

function assembler(source: 'event' | 'downchannel', extra: Partial<DirectiveAssemblerOptions> = {}) {
  const out: AssembledDirective[] = [];
  const errors: CicError[] = [];
  const a = new DirectiveAssembler({ source, onDirective: (d) => out.push(d), onError: (e) => errors.push(e), ...extra });
  return { a, out, errors, names: () => out.map((d) => d.directive.header.name) };
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
  const att = a as Attachment;
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
  const atts: Attachment[] = [{ contentId: SPEAK_CID, body: SPEAK_AUDIO }, { contentId: `<${PLAY_CID}>`, body: PLAY_AUDIO }];
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

// ---- assembling: event responses --------------------------------------------------------------

test('event response: attachment after or before the directive, delivered at end() with the attachment', () => {
  for (const order of ['after', 'before'] as const) {
    const { a, out, errors } = assembler('event');
    const parts = [jsonPart(SPEAK), binPart(SPEAK_CID, SPEAK_AUDIO)];
    for (const p of order === 'after' ? parts : parts.reverse()) a.push(p);
    assert.is(out.length, 0, 'nothing before the response ends');
    a.end();
    assert.equal(errors, []);
    assert.is(out.length, 1);
    assert.is(out[0]!.source, 'event');
    assert.is(out[0]!.directive.header.name, 'Speak');
    assert.equal(out[0]!.attachments.map((x) => x.contentId), [SPEAK_CID]);
    assert.ok(out[0]!.attachments[0]!.body === SPEAK_AUDIO);
    assert.is(a.pendingBytes, 0);
  }
});

test('event response: order kept; missing attachment reported but the directive still delivered; bad parts skipped', () => {
  const { a, out, errors, names } = assembler('event');
  a.push(jsonPart(STOP_CAPTURE));
  a.push(jsonPart('{broken'));
  a.push(jsonPart(SPEAK));
  a.push(binPart('nobody-wants-me', Buffer.from('x')));
  a.push(jsonPart(EXCEPTION));
  a.end();
  a.push(jsonPart(HELLO)); // after end: ignored
  assert.equal(names(), ['StopCapture', 'Speak']);
  assert.equal(out[1]!.attachments, []);
  assert.equal(errors.map((e) => [e.code, e.details?.reason ?? null]), [
    ['CIC_BAD_DIRECTIVE', 'invalid-json'],
    ['CIC_EXCEPTION', null],
    ['CIC_BAD_DIRECTIVE', 'missing-attachment'],
    ['CIC_BAD_DIRECTIVE', 'unreferenced-attachment'],
  ]);
});

test('event response: held bytes and parts are capped', () => {
  const { a, out, errors } = assembler('event', { maxPendingBytes: 4000, maxPendingParts: 3 });
  a.push(binPart(SPEAK_CID, SPEAK_AUDIO)); // 3000 bytes
  a.push(binPart('second', Buffer.alloc(2000))); // would exceed 4000
  a.push(jsonPart(SPEAK));
  a.push(jsonPart(HELLO));
  a.push(jsonPart(STOP_CAPTURE)); // fourth held part
  assert.ok(a.pendingBytes <= 4000);
  a.end();
  assert.equal(out.map((d) => d.directive.header.name), ['Speak', 'Hello']);
  assert.equal(errors.map((e) => e.code), ['CIC_PART_TOO_LARGE', 'CIC_PART_TOO_LARGE']);
});

// ---- assembling: downchannel ------------------------------------------------------------------

test('downchannel: directives without cid are delivered at once; with cid as soon as the attachment arrives', () => {
  const { a, errors, names, out } = assembler('downchannel');
  a.push(jsonPart(HELLO));
  assert.equal(names(), ['Hello']);
  assert.is(out[0]!.source, 'downchannel');
  a.push(jsonPart(SPEAK));
  assert.equal(names(), ['Hello'], 'Speak waits for its audio');
  a.push(binPart(SPEAK_CID, SPEAK_AUDIO));
  assert.equal(names(), ['Hello', 'Speak']);
  assert.ok(out[1]!.attachments[0]!.body === SPEAK_AUDIO);
  // Attachment first, then its directive: delivered on arrival.
  a.push(binPart(PLAY_CID, PLAY_AUDIO));
  assert.equal(names(), ['Hello', 'Speak']);
  a.push(jsonPart(PLAY));
  assert.equal(names(), ['Hello', 'Speak', 'Play']);
  assert.equal(errors, []);
  assert.is(a.pendingBytes, 0, 'delivered attachments leave the assembler');
  assert.is(a.pendingParts, 0);
});

test('downchannel: a waiting directive holds later ones back (order kept) for at most maxWaitParts parts', () => {
  const { a, errors, names, out } = assembler('downchannel', { maxWaitParts: 3 });
  a.push(jsonPart(SPEAK));
  a.push(jsonPart(STOP_CAPTURE));
  a.push(jsonPart(HELLO));
  assert.equal(names(), [], 'StopCapture and Hello wait behind Speak');
  a.push(jsonPart({ directive: { header: { namespace: 'Settings', name: 'ExpectReport' }, payload: {} } }));
  assert.equal(names(), ['Speak', 'StopCapture', 'Hello', 'ExpectReport'], 'released after 3 more parts');
  assert.equal(out[0]!.attachments, []);
  assert.equal(errors.map((e) => e.details?.reason), ['missing-attachment']);
  // An attachment that nobody references is dropped after the same window.
  a.push(binPart('orphan', Buffer.alloc(100)));
  for (let i = 0; i < 3; i++) a.push(jsonPart(HELLO));
  assert.is(a.pendingParts, 0);
  assert.equal(errors.map((e) => e.details?.reason), ['missing-attachment', 'unreferenced-attachment']);
});

test('downchannel: caps release the oldest waiting directive instead of growing; end() flushes', () => {
  const { a, errors, names } = assembler('downchannel', { maxPendingParts: 2, maxWaitParts: 100 });
  a.push(jsonPart(SPEAK));
  a.push(jsonPart(PLAY));
  assert.equal(names(), []);
  a.push(jsonPart(HELLO)); // third held part: Speak is released without audio
  assert.equal(names(), ['Speak']);
  assert.ok(a.pendingParts <= 2);
  a.end();
  assert.equal(names(), ['Speak', 'Play', 'Hello']);
  assert.equal(errors.map((e) => e.details?.reason), ['missing-attachment', 'missing-attachment']);
});

// ---- whole responses --------------------------------------------------------------------------

test('DirectiveReader: event response body in random pieces → directives with attachments', () => {
  const rnd = seededRandom(44);
  for (const s of SAMPLES.slice(0, 2)) {
    for (let n = 0; n < 50; n++) {
      const out: AssembledDirective[] = [];
      const errors: CicError[] = [];
      const reader = createDirectiveReader(s.contentType, 'event', (d) => out.push(d), (e) => errors.push(e));
      for (const c of randomSplit(s.body, rnd, 9)) reader.push(c);
      reader.end();
      assert.equal(errors, []);
      const withAudio = out.find((d) => d.attachments.length > 0)!;
      assert.ok(withAudio, s.name);
      assert.ok(withAudio.attachments[0]!.body.equals(withAudio.directive.header.name === 'Speak' ? SPEAK_AUDIO : PLAY_AUDIO));
    }
  }
});

test('DirectiveReader: never-ending downchannel delivers Hello before the body ends; bad content type reported', () => {
  const out: AssembledDirective[] = [];
  const errors: CicError[] = [];
  const reader = new DirectiveReader({ contentType: `multipart/related; boundary="${BOUNDARY}";`, source: 'downchannel', onDirective: (d) => out.push(d), onError: (e) => errors.push(e) });
  reader.push(writeMultipart(BOUNDARY, [{ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(HELLO) }], { close: false }));
  assert.equal(out.map((d) => d.directive.header.name), ['Hello']);
  reader.push(writeMultipart(BOUNDARY, [{ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(STOP_CAPTURE) }], { close: false }).subarray(2 + BOUNDARY.length + 2));
  assert.equal(out.map((d) => d.directive.header.name), ['Hello', 'StopCapture']);
  assert.equal(errors, []);

  const bad: CicError[] = [];
  const r = createDirectiveReader('application/json', 'event', () => assert.unreachable(), (e) => bad.push(e));
  r.push(Buffer.from('{}'));
  r.end();
  assert.equal(bad.map((e) => e.code), ['CIC_MULTIPART']);
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
