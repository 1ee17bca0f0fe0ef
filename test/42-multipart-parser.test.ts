// Multipart content types and the streaming parser: every format variant CIC's three
// published versions produce, every split point, the never-ending downchannel, parts streamed
// as they arrive, limits that skip a part but keep the connection, bounded memory, and a
// bounded fuzz loop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicError, ERROR_CODES, type ErrorCode } from '../src/errors';
import { parseMultipartContentType, parseHeaderParams, checkBoundary } from '../src/cic/content-type';
import { MultipartParser, type MultipartPart, type MultipartParserOptions, type PartHead } from '../src/cic/multipart-parser';
import { collectParts, DEFAULT_MAX_PART_BYTES, type PartCallbacks } from '../src/cic/part-buffer';
import { DirectiveReader } from '../src/cic/directive-reader';
import { SNIFF_BYTES } from '../src/cic/directive';
import { writeMultipart } from '../src/cic/multipart-writer';
import { BOUNDARY, SAMPLES, HELLO, randomSplit, seededRandom, splitAt, trickyBinary, type Sample } from './support/multipart-corpus';

interface Run {
  parts: MultipartPart[];
  errors: CicError[];
  maxBuffered: number;
  parser: MultipartParser;
}

type RunOptions = Partial<Omit<MultipartParserOptions, 'onPartStart' | 'onPartData' | 'onPartEnd'>> & { maxPartBytes?: number };

/** Parses with every part collected whole (collectParts); maxBuffered counts the parser and the collector. */
function run(boundary: string, chunks: Buffer[], opts: RunOptions = {}, end = true): Run {
  const parts: MultipartPart[] = [];
  const errors: CicError[] = [];
  const { maxPartBytes, ...parserOpts } = opts;
  const onError = (e: CicError) => errors.push(e);
  const collector: PartCallbacks = collectParts({ ...(maxPartBytes !== undefined ? { maxPartBytes } : {}), onPart: (p) => parts.push(p), onError });
  const parser = new MultipartParser({ boundary, ...collector, onError, ...parserOpts });
  let maxBuffered = 0;
  for (const c of chunks) {
    parser.push(c);
    maxBuffered = Math.max(maxBuffered, parser.bufferedBytes + collector.bufferedBytes);
  }
  if (end) parser.end();
  return { parts, errors, maxBuffered, parser };
}

/** Records the parser's streaming callbacks as a flat log. */
function streamLog(boundary: string, extra: Partial<MultipartParserOptions> = {}) {
  const log: Array<['start', PartHead] | ['data', Buffer] | ['end', CicError | undefined]> = [];
  const errors: CicError[] = [];
  const parser = new MultipartParser({
    boundary,
    onPartStart: (h) => log.push(['start', h]),
    onPartData: (c) => log.push(['data', c]),
    onPartEnd: (e) => log.push(['end', e]),
    onError: (e) => errors.push(e),
    ...extra,
  });
  const bodyOf = (i: number) => Buffer.concat(log.filter((x, k) => x[0] === 'data' && log.slice(0, k).filter((y) => y[0] === 'start').length === i + 1).map((x) => x[1] as Buffer));
  return { parser, log, errors, kinds: () => log.map((x) => x[0]), bodyOf };
}

function codes(errors: CicError[]): string[] {
  return errors.map((e) => e.code);
}

function checkSample(s: Sample, chunks: Buffer[], label: string): void {
  const r = run(s.boundary, chunks, {}, s.finite);
  if (r.errors.length) assert.unreachable(`${label}: unexpected errors ${r.errors.map((e) => e.message).join('; ')}`);
  assert.is(r.parts.length, s.parts.length, `${label}: part count`);
  s.parts.forEach((want, i) => {
    const got = r.parts[i]!;
    assert.ok(got.body.equals(want.body), `${label}: body of part ${i}`);
    assert.is(got.contentType, want.contentType, `${label}: content type of part ${i}`);
    assert.is(got.contentId, want.contentId, `${label}: content id of part ${i}`);
    assert.is(got.name, want.name, `${label}: name of part ${i}`);
  });
}

// ---- content type ---------------------------------------------------------------------------

test('content type: every multipart subtype, quoting, case, spacing, trailing ;, other params', () => {
  const ok: Array<[string, string, string]> = [
    ['multipart/related; boundary=abc', 'related', 'abc'],
    ['multipart/form-data; boundary=abc', 'form-data', 'abc'],
    ['multipart/mixed;boundary=abc', 'mixed', 'abc'],
    ['Multipart/Related; Boundary=AbC', 'related', 'AbC'],
    ['MULTIPART/RELATED; BOUNDARY="x-y_z"', 'related', 'x-y_z'],
    ['multipart/related; boundary=abc;', 'related', 'abc'],
    ['multipart/related; boundary="abc";', 'related', 'abc'],
    ['multipart/related ;  boundary  =  abc  ;  ', 'related', 'abc'],
    ['multipart/related; type="application/json"; start="<root>"; boundary=abc', 'related', 'abc'],
    ['multipart/related; boundary=abc; type=application/json', 'related', 'abc'],
    ['multipart/related; start="a;b=c"; boundary="q\\"uote"', 'related', 'q"uote'],
    ['multipart/related; boundary="with space"', 'related', 'with space'],
    ['multipart/related; boundary=' + 'b'.repeat(70), 'related', 'b'.repeat(70)],
    ['multipart/related;;boundary=abc;;', 'related', 'abc'],
    ['multipart/related; boundary=abc; boundary=abc', 'related', 'abc'],
  ];
  for (const [value, subtype, boundary] of ok) {
    const ct = parseMultipartContentType(value);
    assert.is(ct.type, 'multipart', value);
    assert.is(ct.subtype, subtype, value);
    assert.is(ct.boundary, boundary, value);
  }
  assert.is(parseMultipartContentType('multipart/related; TYPE="application/json"; boundary=a').params.type, 'application/json');
});

test('content type: refused with CIC_MULTIPART', () => {
  const bad = [
    undefined,
    '',
    'application/json',
    'multipart',
    'multipart/; boundary=abc',
    'multipart/related',
    'multipart/related; boundary=',
    'multipart/related; boundary=""',
    'multipart/related; boundary=' + 'b'.repeat(71),
    'multipart/related; boundary="a\r\nb"',
    'multipart/related; boundary="a\nb"',
    'multipart/related; boundary="abc',
    'multipart/related; boundary="trailing "',
    'multipart/related; boundary="ctl\u0001"',
    'multipart/related; boundary="caf\u00e9"',
    'multipart/related; boundary=abc; boundary=def',
    'text/plain; boundary=abc',
  ];
  for (const value of bad) {
    assert.throws(() => parseMultipartContentType(value), (e: unknown) => e instanceof CicError && e.code === 'CIC_MULTIPART', String(value));
  }
  assert.is(checkBoundary('x'), undefined);
  assert.ok(checkBoundary('') && checkBoundary('a\rb'));
  assert.equal(parseHeaderParams('form-data; name="audio"; filename=a.raw', 10), [['name', 'audio'], ['filename', 'a.raw']]);
});

// ---- formats --------------------------------------------------------------------------------

test('every corpus sample parses in one chunk', () => {
  for (const s of SAMPLES) {
    assert.not.throws(() => parseMultipartContentType(s.contentType), s.name);
    assert.is(parseMultipartContentType(s.contentType).boundary, s.boundary, s.name);
    checkSample(s, [s.body], s.name);
  }
});

test('header names are case-insensitive; Content-ID with and without <>; repeated headers joined', () => {
  const body = writeMultipart('b', [
    { headers: [['CONTENT-ID', '<one@x>'], ['X-Note', 'a'], ['x-note', 'b'], ['Content-Disposition', 'form-data; NAME="meta"']], body: 'A' },
    { headers: { 'content-id': 'two' }, body: 'B' },
    { headers: { 'Content-Id': ' < three > ' }, body: 'C' },
  ]);
  const r = run('b', [body]);
  assert.equal(codes(r.errors), []);
  assert.equal(r.parts.map((p) => p.contentId), ['one@x', 'two', 'three']);
  assert.is(r.parts[0]!.headers['x-note'], 'a, b');
  assert.is(r.parts[0]!.headers['content-id'], '<one@x>');
  assert.is(r.parts[0]!.name, 'meta');
});

test('preamble, transport padding, folded header, close delimiter with epilogue', () => {
  const body = Buffer.from(
    'junk line\r\n--x-ish\r\n--b \t \r\nContent-Type: application/json;\r\n charset=UTF-8\r\n\r\n{}\r\n--b--  epilogue\r\n--b\r\n\r\nignored\r\n',
  );
  const r = run('b', [body]);
  assert.equal(codes(r.errors), []);
  assert.is(r.parts.length, 1);
  assert.is(r.parts[0]!.contentType, 'application/json; charset=UTF-8');
  assert.is(r.parts[0]!.body.toString(), '{}');
  assert.ok(r.parser.closed);
});

test('body that starts with the delimiter; boundary text inside a line is content', () => {
  const r = run('b', [Buffer.from('--b\r\n\r\nx--b y\r\n-b\r\n--bb? no: that is a delimiter line\r\n--b--')]);
  // `--bb…` starts with the boundary: RFC 2046 treats it as a delimiter with junk after it.
  assert.is(r.parts[0]!.body.toString(), 'x--b y\r\n-b');
  assert.equal(codes(r.errors), ['CIC_MULTIPART']);
});

test('a part that arrived in one chunk is a view of that chunk, not a copy', () => {
  const s = SAMPLES[0]!;
  const r = run(s.boundary, [s.body]);
  assert.ok(r.parts[1]!.body.buffer === s.body.buffer, 'attachment body shares the chunk memory');
  assert.is(r.parts[1]!.body.byteOffset - s.body.byteOffset, s.body.indexOf(s.parts[1]!.body));
});

test('mixed CRLF and LF, headers with no body, empty parts are skipped', () => {
  const body = Buffer.from('--b\nContent-ID: <h>\r\n\r\n--b\r\n\r\n--b\r\n--b\nA: 1\n\nbody\n--b--\n');
  const r = run('b', [body]);
  assert.equal(codes(r.errors), []);
  assert.equal(r.parts.map((p) => [p.contentId, p.body.toString()]), [['h', ''], [undefined, 'body']]);
});

// ---- splits ---------------------------------------------------------------------------------

test('every split point of every sample (2 pieces), and byte by byte', () => {
  for (const s of SAMPLES) {
    for (let i = 0; i <= s.body.length; i++) checkSample(s, splitAt(s.body, [i]), `${s.name} @${i}`);
    checkSample(s, Array.from(s.body, (b) => Buffer.from([b])), `${s.name} byte by byte`);
  }
});

test('every pair of split points around each delimiter (3 pieces)', () => {
  for (const s of SAMPLES) {
    const marks: number[] = [];
    for (let at = s.body.indexOf(`--${s.boundary}`); at >= 0; at = s.body.indexOf(`--${s.boundary}`, at + 1)) marks.push(at);
    for (const m of marks) {
      const lo = Math.max(0, m - 4);
      const hi = Math.min(s.body.length, m + s.boundary.length + 8);
      for (let i = lo; i <= hi; i++) for (let j = i; j <= hi; j++) checkSample(s, splitAt(s.body, [i, j]), `${s.name} @${i},${j}`);
    }
  }
});

test('random splits (seeded, 3,000 cases)', () => {
  const rnd = seededRandom(0x42);
  for (let n = 0; n < 3000; n++) {
    const s = SAMPLES[n % SAMPLES.length]!;
    checkSample(s, randomSplit(s.body, rnd, 12), `${s.name} case ${n}`);
  }
});

// ---- downchannel ------------------------------------------------------------------------------

test('downchannel that never ends: each part dispatched as soon as its delimiter arrives', () => {
  const parts: MultipartPart[] = [];
  const errors: CicError[] = [];
  const onError = (e: CicError) => errors.push(e);
  const p = new MultipartParser({ boundary: BOUNDARY, ...collectParts({ onPart: (x) => parts.push(x), onError }), onError });
  const hello = JSON.stringify(HELLO);
  p.push(Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n${hello}`));
  assert.is(parts.length, 0, 'not before the delimiter');
  p.push(Buffer.from(`\r\n--${BOUNDARY}`)); // the server may pause right after the boundary
  assert.is(parts.length, 1, 'dispatched on the delimiter, before its line end');
  assert.equal(JSON.parse(parts[0]!.body.toString()), HELLO);
  for (let i = 0; i < 50; i++) {
    p.push(Buffer.from(`\r\nContent-Type: application/json\r\n\r\n{"n":${i}}\r\n`));
    p.push(Buffer.from(`--${BOUNDARY}`));
    assert.is(parts.length, 2 + i, `directive ${i} dispatched while the body is still open`);
    assert.ok(p.bufferedBytes < 200, 'nothing accumulates between directives');
  }
  assert.equal(errors, []);
  assert.ok(!p.closed);
});

// ---- streaming ----------------------------------------------------------------------------------

test('streaming: a part starts when its header block is complete and its body comes out as it arrives', () => {
  const t = streamLog('b');
  t.parser.push(Buffer.from('--b\r\nContent-Type: application/octet-stream\r\nContent-'));
  assert.equal(t.kinds(), [], 'not before the header block is complete');
  t.parser.push(Buffer.from('ID: <att-1>\r\n'));
  assert.equal(t.kinds(), []);
  t.parser.push(Buffer.from('\r\n'));
  // The blank line's LF could still be the start of `\n--b` (a part with an empty body).
  assert.equal(t.kinds(), []);
  const piece = trickyBinary(4000, 3, 'b');
  t.parser.push(piece.subarray(0, 1));
  assert.equal(t.kinds(), ['start', 'data'], 'announced with its first body byte');
  assert.is((t.log[0]![1] as PartHead).contentId, 'att-1');
  assert.is((t.log[0]![1] as PartHead).contentType, 'application/octet-stream');
  t.parser.push(piece.subarray(1));
  // Everything but a possible delimiter start is out at once.
  const out = t.bodyOf(0);
  assert.ok(out.length >= piece.length - ('\r\n--b'.length), `${out.length} of ${piece.length} bytes out`);
  assert.ok(piece.subarray(0, out.length).equals(out));
  assert.ok(t.parser.bufferedBytes <= 'b'.length + 4, 'the parser holds no body');
  t.parser.push(Buffer.from('\r\n--b'));
  assert.equal(t.kinds().at(-1), 'end', 'the part ends on its delimiter, before the line end');
  assert.is(t.log.at(-1)![1], undefined, 'complete: no error');
  assert.ok(t.bodyOf(0).equals(piece), 'the body came out exactly, delimiter CRLF excluded');
  t.parser.push(Buffer.from('--'));
  t.parser.end();
  assert.equal(t.errors, []);
  assert.ok(t.parser.closed);
});

test('streaming: every split point of every sample gives the same parts, bodies piecewise (views, never copies of the chunk)', () => {
  for (const s of SAMPLES) {
    for (let i = 0; i <= s.body.length; i += 7) {
      const t = streamLog(s.boundary);
      for (const c of splitAt(s.body, [i])) t.parser.push(c);
      if (s.finite) t.parser.end();
      assert.equal(t.errors, [], `${s.name} @${i}`);
      const starts = t.log.filter((x) => x[0] === 'start').length;
      assert.is(starts, s.parts.length, `${s.name} @${i}: starts`);
      assert.is(t.log.filter((x) => x[0] === 'end').length, starts, `${s.name} @${i}: every start ends`);
      s.parts.forEach((want, k) => assert.ok(t.bodyOf(k).equals(want.body), `${s.name} @${i}: body ${k}`));
      for (const x of t.log) if (x[0] === 'data') assert.ok((x[1] as Buffer).length > 0, 'never an empty piece');
    }
  }
});

test('streaming: a body cut inside a part ends that part with the error, reported once', () => {
  const t = streamLog('b');
  t.parser.push(Buffer.from('--b\r\nContent-ID: <cut>\r\n\r\npartial bytes'));
  t.parser.end();
  assert.equal(t.kinds(), ['start', 'data', 'end']);
  const err = t.log[2]![1] as CicError;
  assert.ok(err instanceof CicError && err.code === 'CIC_MULTIPART' && err.details?.reason === 'truncated');
  assert.equal(t.errors, [err], 'the same error, once');
  // A part that completed before the cut keeps its clean end.
  const u = streamLog('b');
  u.parser.push(Buffer.from('--b\r\n\r\ncomplete\r\n--b\r\nA: 1\r\n'));
  u.parser.end();
  assert.equal(u.kinds(), ['start', 'data', 'end']);
  assert.is(u.log[2]![1], undefined);
  assert.equal(codes(u.errors), ['CIC_MULTIPART']);
});

test('streaming: a 50 MB part passes through with the parser holding a partial delimiter at most', () => {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  chunk.write('\r\n--', chunk.length - 4, 'latin1'); // every chunk ends like a delimiter start
  let bytes = 0;
  let ends = 0;
  const errors: CicError[] = [];
  const p = new MultipartParser({ boundary: BOUNDARY, onPartStart() {}, onPartData: (c) => (bytes += c.length), onPartEnd: () => ends++, onError: (e) => errors.push(e) });
  p.push(Buffer.from(`--${BOUNDARY}\r\nContent-ID: <big>\r\n\r\n`));
  const total = 50 * 1024 * 1024;
  for (let sent = 0; sent < total; sent += chunk.length) {
    p.push(chunk);
    if (p.bufferedBytes > BOUNDARY.length + 4) assert.unreachable(`parser holds ${p.bufferedBytes} bytes`);
  }
  assert.is(bytes, total - 4, 'all but the trailing delimiter candidate came out');
  p.push(Buffer.from(`${BOUNDARY}--`));
  assert.is(ends, 1);
  assert.is(bytes, total - 4, 'the CRLF-- before the boundary belonged to the delimiter');
  assert.equal(errors, []);
});

// ---- limits -----------------------------------------------------------------------------------

test('oversize part → CIC_PART_TOO_LARGE, that part skipped, the next part still parses', () => {
  const big = trickyBinary(5000, 5);
  const body = writeMultipart('b', [
    { headers: { 'Content-ID': '<big>' }, body: big },
    { headers: { 'Content-Type': 'application/json' }, body: '{"ok":true}' },
  ]);
  for (const size of [body.length, 700, 64, 1]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
    const r = run('b', chunks, { maxPartBytes: 1000 });
    assert.equal(codes(r.errors), ['CIC_PART_TOO_LARGE'], `chunk ${size}`);
    assert.is(r.errors[0]!.details?.contentId, 'big');
    assert.is(r.parts.length, 1);
    assert.is(r.parts[0]!.body.toString(), '{"ok":true}');
    assert.ok(r.maxBuffered <= 1000 + 8192 + 40, `bounded (${r.maxBuffered})`);
  }
});

test('oversize header block → CIC_PART_TOO_LARGE, next part parses', () => {
  const headers: Array<[string, string]> = Array.from({ length: 40 }, (_, i) => [`X-H${i}`, 'v'.repeat(30)]);
  const body = writeMultipart('b', [{ headers, body: 'lost' }, { headers: { A: '1' }, body: 'kept' }]);
  const r = run('b', Array.from({ length: Math.ceil(body.length / 7) }, (_, i) => body.subarray(i * 7, i * 7 + 7)), { maxHeaderBytes: 512 });
  assert.equal(codes(r.errors), ['CIC_PART_TOO_LARGE']);
  assert.equal(r.parts.map((p) => p.body.toString()), ['kept']);
  // One endless header line, too.
  const r2 = run('b', [Buffer.from(`--b\r\nX: ${'y'.repeat(3000)}`), Buffer.from(`${'y'.repeat(3000)}\r\n\r\nlost\r\n--b\r\n\r\nkept\r\n--b--`)], { maxHeaderBytes: 1024 });
  assert.equal(codes(r2.errors), ['CIC_PART_TOO_LARGE']);
  assert.equal(r2.parts.map((p) => p.body.toString()), ['kept']);
});

test('malformed parts → CIC_MULTIPART for that part; parsing continues at the next delimiter', () => {
  const cases: Array<[string, string]> = [
    ['no blank line after headers', '--b\r\nContent-Type: application/json\r\n{"a":1}\r\n--b\r\n\r\nnext\r\n--b--'],
    ['header line without colon', '--b\r\nnot a header\r\n\r\nx\r\n--b\r\n\r\nnext\r\n--b--'],
    ['header name with a space', '--b\r\nBad Name: v\r\n\r\nx\r\n--b\r\n\r\nnext\r\n--b--'],
    ['fold before any header', '--b\r\n folded\r\n\r\nx\r\n--b\r\n\r\nnext\r\n--b--'],
    ['headers cut by the delimiter', '--b\r\nContent-Type: a\r\n--b\r\n\r\nnext\r\n--b--'],
    ['junk after the boundary', '--bjunk\r\nA: 1\r\n\r\nx\r\n--b\r\n\r\nnext\r\n--b--'],
    ['single dash after the boundary', '--b-\r\n\r\nx\r\n--b\r\n\r\nnext\r\n--b--'],
  ];
  for (const [label, text] of cases) {
    const buf = Buffer.from(text);
    for (let i = 0; i <= buf.length; i++) {
      const r = run('b', splitAt(buf, [i]));
      assert.equal(codes(r.errors), ['CIC_MULTIPART'], `${label} @${i}`);
      assert.equal(r.parts.map((p) => p.body.toString()), ['next'], `${label} @${i}`);
    }
  }
});

test('a part that never closes stays bounded: 50 MB in 64 KB chunks, maxPartBytes 1 MB', () => {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  chunk.write('\r\n--', chunk.length - 4, 'latin1'); // every chunk ends like a delimiter start
  const errors: CicError[] = [];
  let parts = 0;
  const onError = (e: CicError) => errors.push(e);
  const collector = collectParts({ maxPartBytes: 1024 * 1024, onPart: () => parts++, onError });
  const p = new MultipartParser({ boundary: BOUNDARY, maxHeaderBytes: 8192, ...collector, onError });
  const held = () => p.bufferedBytes + collector.bufferedBytes;
  p.push(Buffer.from(`--${BOUNDARY}\r\nContent-ID: <endless>\r\n\r\n`));
  let max = 0;
  const bound = 1024 * 1024 + 8192 + BOUNDARY.length + 4;
  for (let sent = 0; sent < 50 * 1024 * 1024; sent += chunk.length) {
    p.push(chunk);
    max = Math.max(max, held());
    if (held() > bound) assert.unreachable(`buffered ${held()} after ${sent} bytes`);
  }
  assert.equal(codes(errors), ['CIC_PART_TOO_LARGE']);
  assert.ok(max <= bound);
  assert.ok(held() < 64, 'after the error the part is discarded, not held');
  // The connection survives: the next part parses.
  p.push(Buffer.from(`\r\n--${BOUNDARY}\r\n\r\nafter\r\n--${BOUNDARY}`));
  assert.is(parts, 1);
});

test('a preamble without any delimiter is not held in memory', () => {
  const errors: CicError[] = [];
  const p = new MultipartParser({ boundary: 'b', onPartStart: () => assert.unreachable(), onPartData: () => assert.unreachable(), onPartEnd: () => assert.unreachable(), onError: (e) => errors.push(e) });
  const junk = Buffer.alloc(1 << 20, 0x0a); // a megabyte of LFs: each one a possible delimiter start
  for (let i = 0; i < 8; i++) {
    p.push(junk);
    assert.ok(p.bufferedBytes <= 4);
  }
  p.end();
  assert.equal(codes(errors), ['CIC_MULTIPART']);
});

test('many tiny pushes stay linear (a 400 KB part pushed 1 byte at a time)', () => {
  const body = writeMultipart('b', [{ headers: { 'Content-ID': '<a>' }, body: trickyBinary(400 * 1024, 9, 'b') }]);
  const started = Date.now();
  const r = run('b', Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1)), { maxPartBytes: 1 << 20 });
  assert.equal(codes(r.errors), []);
  assert.ok(r.parts[0]!.body.equals(trickyBinary(400 * 1024, 9, 'b')));
  assert.ok(Date.now() - started < 5000, 'quadratic rescanning would take minutes');
});

test('maxParts: the body is refused after too many parts', () => {
  const body = writeMultipart('b', Array.from({ length: 10 }, (_, i) => ({ body: `p${i}` })));
  const r = run('b', [body], { maxParts: 3 });
  assert.is(r.parts.length, 3);
  assert.equal(codes(r.errors), ['CIC_MULTIPART']);
  assert.is(r.errors[0]!.details?.reason, 'too-many-parts');
});

// ---- end of body ------------------------------------------------------------------------------

test('end(): mid-part, mid-delimiter, preamble only → CIC_MULTIPART; empty body and closed body → fine', () => {
  const truncated = ['--b\r\nA: 1\r\n\r\npartial body', '--b\r\nA: 1', '--b\r\n\r\nx\r\n--b', '--b\r\n\r\nx\r\n--b-', 'just a preamble', '--b\r\n\r\nx\r\n--'];
  for (const text of truncated) {
    const r = run('b', [Buffer.from(text)]);
    assert.equal(codes(r.errors), ['CIC_MULTIPART'], text);
    assert.is(r.errors[0]!.details?.reason, 'truncated', text);
  }
  assert.equal(codes(run('b', []).errors), []);
  assert.equal(codes(run('b', [Buffer.from('--b\r\n\r\nx\r\n--b--')]).errors), []);
  const partial = run('b', [Buffer.from('--b\r\n\r\ncomplete\r\n--b\r\n\r\nincomplete')]);
  assert.equal(partial.parts.map((p) => p.body.toString()), ['complete'], 'complete parts stay delivered');
});

test('push() never throws: bad arguments and throwing callbacks are reported', () => {
  const errors: CicError[] = [];
  let n = 0;
  const onError = (e: CicError) => errors.push(e);
  const collector = collectParts({
    onPart: () => {
      n++;
      throw new Error('app bug');
    },
    onError,
  });
  const p = new MultipartParser({ boundary: 'b', ...collector, onError });
  p.push('text' as unknown as Buffer);
  p.push(new Uint8Array(Buffer.from('--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--')));
  p.end();
  p.push(Buffer.from('after end'));
  assert.is(n, 2);
  assert.equal(codes(errors), ['ERR_INVALID_ARGUMENT', 'ERR_INTERNAL', 'ERR_INTERNAL']);
  // Each streaming callback is guarded the same way.
  for (const which of ['onPartStart', 'onPartData'] as const) {
    const errs: CicError[] = [];
    const q = new MultipartParser({ boundary: 'b', onPartStart() {}, onPartData() {}, onPartEnd() {}, [which]: () => { throw new Error('app bug'); }, onError: (e) => errs.push(e) });
    q.push(Buffer.from('--b\r\n\r\none\r\n--b--'));
    assert.equal(codes(errs), ['ERR_INTERNAL'], which);
  }
  const none = { onPartStart() {}, onPartData() {}, onPartEnd() {}, onError() {} };
  assert.throws(() => new MultipartParser({ boundary: '', ...none }), (e: unknown) => e instanceof CicError && e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => new MultipartParser({ boundary: 'b', onPartStart() {}, onError() {} } as unknown as MultipartParserOptions), (e: unknown) => e instanceof CicError && e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => collectParts({ maxPartBytes: 0, onPart() {}, onError() {} }), (e: unknown) => e instanceof CicError);
  assert.is(DEFAULT_MAX_PART_BYTES, 2 * 1024 * 1024);
});

// ---- fuzz -------------------------------------------------------------------------------------

const FUZZ_CODES = new Set<ErrorCode>(['CIC_MULTIPART', 'CIC_PART_TOO_LARGE', 'CIC_BAD_DIRECTIVE', 'CIC_EXCEPTION']);

function mutate(body: Buffer, boundary: string, rnd: () => number): Buffer {
  let b = Buffer.from(body);
  const ops = 1 + Math.floor(rnd() * 4);
  const at = () => Math.floor(rnd() * (b.length + 1));
  const fragments = ['\r\n', '\n', '\r', '--', `--${boundary}`, `\r\n--${boundary}`, `\r\n--${boundary}--`, '\r\n\r\n', 'Content-ID: <x>\r\n', ':', '{', '\xff\xfe', `--${boundary.slice(0, 3)}`];
  for (let o = 0; o < ops; o++) {
    const kind = Math.floor(rnd() * 6);
    if (kind === 0 && b.length) b[Math.min(b.length - 1, at())] = Math.floor(rnd() * 256);
    else if (kind === 1) {
      const i = at();
      b = Buffer.concat([b.subarray(0, i), Buffer.from(fragments[Math.floor(rnd() * fragments.length)]!, 'latin1'), b.subarray(i)]);
    } else if (kind === 2) {
      const i = at();
      b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + Math.floor(rnd() * 40)))]);
    } else if (kind === 3) {
      const i = at();
      const j = Math.min(b.length, i + Math.floor(rnd() * 200));
      b = Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
    } else if (kind === 4) b = b.subarray(0, at());
    else {
      const i = at();
      b = Buffer.concat([b.subarray(0, i), Buffer.alloc(Math.floor(rnd() * 3000), Math.floor(rnd() * 256)), b.subarray(i)]);
    }
  }
  return b;
}

test('fuzz: 2,000 mutated corpus bodies at random split points — no throw, coded errors, bounded memory, every byte consumed once', () => {
  const rnd = seededRandom(0xf022);
  const maxPartBytes = 2048;
  const maxHeaderBytes = 256;
  const limits = { maxWaitParts: 3 };
  let delivered = 0;
  let problems = 0;
  for (let n = 0; n < 2000; n++) {
    const s = SAMPLES[Math.floor(rnd() * SAMPLES.length)]!;
    const body = mutate(s.body, s.boundary, rnd);
    const errors: unknown[] = [];
    const source = rnd() < 0.5 ? 'event' : 'downchannel';
    let pushed = 0;
    let consumed = 0;
    const reader = new DirectiveReader({
      contentType: s.contentType, source, maxPartBytes, maxHeaderBytes, ...limits,
      onDirective: () => void delivered++,
      onProblem: (e) => errors.push(e),
      consume: (k) => (consumed += k),
    });
    try {
      for (const c of randomSplit(body, rnd, 10)) {
        reader.push(c);
        pushed += c.length;
        // Nobody takes attachments here: they are discarded, so nothing is held back.
        if (consumed !== pushed) assert.unreachable(`case ${n}: ${pushed} pushed, ${consumed} given back`);
        const bound = maxPartBytes + maxHeaderBytes + s.boundary.length + 4 + SNIFF_BYTES;
        if (reader.bufferedBytes > bound) assert.unreachable(`case ${n}: buffered ${reader.bufferedBytes} > ${bound}`);
      }
      reader.end();
    } catch (e) {
      assert.unreachable(`case ${n} (${s.name}) threw: ${String(e)}`);
    }
    for (const e of errors) {
      if (!(e instanceof CicError) || !FUZZ_CODES.has(e.code) || !(e.code in ERROR_CODES)) assert.unreachable(`case ${n}: unexpected error ${String(e)}`);
    }
    problems += errors.length;
  }
  assert.ok(delivered > 500, `most mutations still deliver directives (${delivered})`);
  assert.ok(problems > 500, `mutations are noticed (${problems})`);
});

test.run();
