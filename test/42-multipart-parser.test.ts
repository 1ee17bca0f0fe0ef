// Multipart content types and the streaming parser: every format variant CIC's three
// published versions produce, every split point, the never-ending downchannel, limits that
// skip a part but keep the connection, bounded memory, and a bounded fuzz loop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicError, ERROR_CODES, type ErrorCode } from '../src/errors';
import { parseMultipartContentType, parseHeaderParams, checkBoundary } from '../src/cic/content-type';
import { MultipartParser, type MultipartPart, type MultipartParserOptions } from '../src/cic/multipart-parser';
import { DirectiveReader } from '../src/cic/directive';
import { writeMultipart } from '../src/cic/multipart-writer';
import { BOUNDARY, SAMPLES, HELLO, randomSplit, seededRandom, splitAt, trickyBinary, type Sample } from './support/multipart-corpus';

interface Run {
  parts: MultipartPart[];
  errors: CicError[];
  maxBuffered: number;
  parser: MultipartParser;
}

function run(boundary: string, chunks: Buffer[], opts: Partial<MultipartParserOptions> = {}, end = true): Run {
  const parts: MultipartPart[] = [];
  const errors: CicError[] = [];
  const parser = new MultipartParser({ boundary, onPart: (p) => parts.push(p), onError: (e) => errors.push(e), ...opts });
  let maxBuffered = 0;
  for (const c of chunks) {
    parser.push(c);
    maxBuffered = Math.max(maxBuffered, parser.bufferedBytes);
  }
  if (end) parser.end();
  return { parts, errors, maxBuffered, parser };
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
  const p = new MultipartParser({ boundary: BOUNDARY, onPart: (x) => parts.push(x), onError: (e) => errors.push(e) });
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
  const p = new MultipartParser({ boundary: BOUNDARY, maxPartBytes: 1024 * 1024, maxHeaderBytes: 8192, onPart: () => parts++, onError: (e) => errors.push(e) });
  p.push(Buffer.from(`--${BOUNDARY}\r\nContent-ID: <endless>\r\n\r\n`));
  let max = 0;
  const bound = 1024 * 1024 + 8192 + BOUNDARY.length + 4;
  for (let sent = 0; sent < 50 * 1024 * 1024; sent += chunk.length) {
    p.push(chunk);
    max = Math.max(max, p.bufferedBytes);
    if (p.bufferedBytes > bound) assert.unreachable(`buffered ${p.bufferedBytes} after ${sent} bytes`);
  }
  assert.equal(codes(errors), ['CIC_PART_TOO_LARGE']);
  assert.ok(max <= bound);
  assert.ok(p.bufferedBytes < 64, 'after the error the part is discarded, not held');
  // The connection survives: the next part parses.
  p.push(Buffer.from(`\r\n--${BOUNDARY}\r\n\r\nafter\r\n--${BOUNDARY}`));
  assert.is(parts, 1);
});

test('a preamble without any delimiter is not held in memory', () => {
  const errors: CicError[] = [];
  const p = new MultipartParser({ boundary: 'b', onPart: () => assert.unreachable(), onError: (e) => errors.push(e) });
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
  const p = new MultipartParser({
    boundary: 'b',
    onPart: () => {
      n++;
      throw new Error('app bug');
    },
    onError: (e) => errors.push(e),
  });
  p.push('text' as unknown as Buffer);
  p.push(new Uint8Array(Buffer.from('--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--')));
  p.end();
  p.push(Buffer.from('after end'));
  assert.is(n, 2);
  assert.equal(codes(errors), ['ERR_INVALID_ARGUMENT', 'ERR_INTERNAL', 'ERR_INTERNAL']);
  assert.throws(() => new MultipartParser({ boundary: '', onPart() {}, onError() {} }), (e: unknown) => e instanceof CicError && e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => new MultipartParser({ boundary: 'b', maxPartBytes: 0, onPart() {}, onError() {} }), (e: unknown) => e instanceof CicError);
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

test('fuzz: 2,000 mutated corpus bodies at random split points — no throw, coded errors, bounded memory', () => {
  const rnd = seededRandom(0xf022);
  const maxPartBytes = 2048;
  const maxHeaderBytes = 256;
  const limits = { maxPendingBytes: 8192, maxPendingParts: 8, maxWaitParts: 3 };
  let delivered = 0;
  let problems = 0;
  for (let n = 0; n < 2000; n++) {
    const s = SAMPLES[Math.floor(rnd() * SAMPLES.length)]!;
    const body = mutate(s.body, s.boundary, rnd);
    const errors: unknown[] = [];
    const source = rnd() < 0.5 ? 'event' : 'downchannel';
    const reader = new DirectiveReader({
      contentType: s.contentType, source, maxPartBytes, maxHeaderBytes, ...limits,
      onDirective: () => delivered++,
      onError: (e) => errors.push(e),
    });
    try {
      for (const c of randomSplit(body, rnd, 10)) {
        reader.push(c);
        const bound = maxPartBytes + maxHeaderBytes + s.boundary.length + 4 + limits.maxPendingBytes;
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
