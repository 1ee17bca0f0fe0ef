// The multipart parser's fuzz loop (seeded, bounded; used by test/faults/51-fuzz-multipart
// and `node scripts/fuzz.mjs multipart --cases N --seed S`). Each case is reproducible from
// (seed, case index) alone. Two oracles, both asserting what the parser delivered:
//
//  1. Model: a body GENERATED from a list of parts (random boundary, header sets, binary
//     bodies full of near-miss delimiters, CRLF or bare LF, transport padding, preamble,
//     epilogue, open or closed) must yield exactly those parts — same headers, same bytes,
//     contentId/contentType/name — except the parts above maxPartBytes, each reported once
//     as CIC_PART_TOO_LARGE, and an unclosed body reported once as CIC_MULTIPART at end().
//  2. Split invariance: a MUTATED body (generated or from the sample corpus, then bytes
//     flipped, delimiters inserted, ranges cut or repeated) fed whole, in random slices and
//     byte by byte must yield the same parts and the same error codes in the same order.
//
// Always: push()/end() never throw, every error is a CicError with a multipart code, the
// streaming parser holds at most maxHeaderBytes + boundary + 4 bytes (never a body) and the
// part collector at most maxPartBytes, no delivered body is larger than maxPartBytes, and the
// parser's callbacks nest: start, data only inside a part, exactly one end per start.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CicError } from '../../src/errors';
import { MultipartParser, type MultipartPart } from '../../src/cic/multipart-parser';
import { collectParts } from '../../src/cic/part-buffer';
import { SAMPLES, seededRandom, splitAt } from '../support/multipart-corpus';

const CODES = new Set(['CIC_MULTIPART', 'CIC_PART_TOO_LARGE']);
const BOUNDARY_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ";

export interface Outcome {
  parts: Array<{ headers: Record<string, string>; body: string; contentId?: string; contentType?: string; name?: string }>;
  errors: string[];
  closed: boolean;
}

export interface CaseInput {
  boundary: string;
  body: Buffer;
  maxPartBytes: number;
  maxHeaderBytes: number;
}

function digest(b: Buffer): string {
  return b.length <= 32 ? b.toString('hex') : `${b.length}:${createHash('sha256').update(b).digest('hex').slice(0, 24)}`;
}

/** Feeds `pieces` to a fresh parser; returns what it delivered, or throws a description of a broken invariant. */
export function feed(c: CaseInput, pieces: Buffer[]): Outcome {
  const out: Outcome = { parts: [], errors: [], closed: false };
  const onError = (e: CicError) => {
    if (!(e instanceof CicError) || !CODES.has(e.code)) throw new Error(`uncoded or unexpected error: ${String(e)}`);
    out.errors.push(e.code);
  };
  const collector = collectParts({
    maxPartBytes: c.maxPartBytes,
    onPart: (part: MultipartPart) => {
      if (part.body.length > c.maxPartBytes) throw new Error(`delivered a ${part.body.length}-byte body above maxPartBytes ${c.maxPartBytes}`);
      const o: Outcome['parts'][number] = { headers: { ...part.headers }, body: digest(part.body) };
      if (part.contentId !== undefined) o.contentId = part.contentId;
      if (part.contentType !== undefined) o.contentType = part.contentType;
      if (part.name !== undefined) o.name = part.name;
      out.parts.push(o);
    },
    onError,
  });
  // Callback nesting, checked outside the parser's own guard (a throw there would be reported, not seen).
  let open = false;
  let broken: string | undefined;
  const p = new MultipartParser({
    boundary: c.boundary,
    maxHeaderBytes: c.maxHeaderBytes,
    onPartStart: (h) => {
      if (open) broken ??= 'a part started inside another';
      open = true;
      collector.onPartStart(h);
    },
    onPartData: (chunk) => {
      if (!open) broken ??= 'body bytes outside a part';
      if (chunk.length === 0) broken ??= 'an empty body piece';
      collector.onPartData(chunk);
    },
    onPartEnd: (err) => {
      if (!open) broken ??= 'a part ended twice';
      open = false;
      collector.onPartEnd(err);
    },
    onError,
  });
  const parserBound = c.maxHeaderBytes + c.boundary.length + 4;
  for (const piece of pieces) {
    p.push(piece);
    if (p.bufferedBytes > parserBound) throw new Error(`parser bufferedBytes ${p.bufferedBytes} > bound ${parserBound}`);
    if (collector.bufferedBytes > c.maxPartBytes) throw new Error(`collector holds ${collector.bufferedBytes} > maxPartBytes ${c.maxPartBytes}`);
  }
  p.end();
  if (open) broken ??= 'a part never ended';
  if (broken) throw new Error(`callbacks out of order: ${broken}`);
  out.closed = p.closed;
  return out;
}

// ---- generation -------------------------------------------------------------------------------

interface GenPart {
  headers: Array<[string, string]>;
  body: Buffer;
}

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function int(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

function genBoundary(rnd: () => number): string {
  const n = int(rnd, 1, 70);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(rnd, [...BOUNDARY_CHARS]);
  return s.replace(/ +$/, '') || 'b';
}

/** Binary body with near-miss delimiters; never `\n--boundary` (that would end the part). */
function genBody(rnd: () => number, boundary: string, size: number, lf: boolean): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = rnd() < 0.2 ? pick(rnd, [0x0d, 0x0a, 0x2d]) : Math.floor(rnd() * 256);
  const traps = ['\r\n--', `\r\n--${boundary.slice(0, -1)}`, `--${boundary}`, `\n-${boundary}`, '\r\n\r\n'];
  for (let t = int(rnd, 0, 3); t > 0 && size > 0; t--) b.write(pick(rnd, traps), int(rnd, 0, size - 1), 'latin1');
  const needle = Buffer.from(`\n--${boundary}`, 'latin1');
  for (let i = b.indexOf(needle); i >= 0; i = b.indexOf(needle, i)) b[i] = 0x20;
  // The blank line before the body ends in LF, so a body starting with `--boundary` would
  // begin with a delimiter (RFC 2046): that is a different part list, not this one.
  if (b.subarray(0, needle.length - 1).equals(needle.subarray(1))) b[0] = 0x20;
  // Ambiguous inputs the parser documents: a body that is itself `--boundary…` at its very
  // start after a delimiter line is fine; a trailing CR before a bare-LF delimiter is eaten.
  if (lf && b.length && b[b.length - 1] === 0x0d) b[b.length - 1] = 0x20;
  return b;
}

function genHeaders(rnd: () => number, i: number): Array<[string, string]> {
  const h: Array<[string, string]> = [];
  if (rnd() < 0.8) h.push([pick(rnd, ['Content-Type', 'content-type', 'CONTENT-TYPE']), pick(rnd, ['application/json; charset=UTF-8', 'application/octet-stream', 'audio/mpeg'])]);
  if (rnd() < 0.5) h.push(['Content-ID', `<cid-${i}-${int(rnd, 0, 999)}@clova>`]);
  if (rnd() < 0.3) h.push(['Content-Disposition', `form-data; name="${pick(rnd, ['metadata', 'audio', 'x y'])}"`]);
  if (rnd() < 0.2) h.push(['X-Extra', `v${int(rnd, 0, 99)}`]);
  return h;
}

export interface GeneratedCase extends CaseInput {
  expected: Outcome;
}

export function generate(rnd: () => number): GeneratedCase {
  const boundary = genBoundary(rnd);
  const lf = rnd() < 0.25;
  const nl = lf ? '\n' : '\r\n';
  const pad = rnd() < 0.2 ? pick(rnd, [' ', '\t', ' \t ']) : '';
  const maxPartBytes = pick(rnd, [64, 300, 4096, 1 << 20]);
  const maxHeaderBytes = 8 * 1024;
  const closed = rnd() < 0.8;
  const parts: GenPart[] = [];
  for (let i = int(rnd, 0, 6); i > 0; i--) {
    const size = pick(rnd, [0, 1, int(rnd, 2, 100), int(rnd, 100, 2000), int(rnd, 2000, 9000)]);
    parts.push({ headers: genHeaders(rnd, i), body: genBody(rnd, boundary, size, lf) });
  }
  const out: Buffer[] = [];
  if (rnd() < 0.3) out.push(Buffer.from(`preamble text --${boundary.slice(1)}${nl}`, 'latin1'));
  for (const part of parts) {
    let head = `--${boundary}${pad}${nl}`;
    for (const [k, v] of part.headers) head += `${k}: ${v}${nl}`;
    out.push(Buffer.from(`${head}${nl}`, 'latin1'), part.body, Buffer.from(nl, 'latin1'));
  }
  if (closed) out.push(Buffer.from(`--${boundary}--${nl}${rnd() < 0.3 ? `epilogue --${boundary}${nl}` : ''}`, 'latin1'));
  else if (parts.length) out.push(Buffer.from(`--${boundary}${pad}${nl}`, 'latin1'));

  const expected: Outcome = { parts: [], errors: [], closed };
  for (const part of parts) {
    if (part.body.length > maxPartBytes) {
      expected.errors.push('CIC_PART_TOO_LARGE');
      continue;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of part.headers) headers[k.toLowerCase()] = v;
    const o: Outcome['parts'][number] = { headers, body: digest(part.body) };
    if (headers['content-id'] !== undefined) o.contentId = headers['content-id'].replace(/^<|>$/g, '');
    if (headers['content-type'] !== undefined) o.contentType = headers['content-type'];
    const name = /name="([^"]*)"/.exec(headers['content-disposition'] ?? '')?.[1];
    if (name !== undefined) o.name = name;
    expected.parts.push(o);
  }
  // An unclosed body: end() reports the missing close delimiter (unless nothing came at all).
  if (!closed && out.length) expected.errors.push('CIC_MULTIPART');
  return { boundary, body: Buffer.concat(out), maxPartBytes, maxHeaderBytes, expected };
}

export function mutate(body: Buffer, boundary: string, rnd: () => number): Buffer {
  let b = Buffer.from(body);
  const at = () => Math.floor(rnd() * (b.length + 1));
  const frags = ['\r\n', '\n', '\r', '--', `--${boundary}`, `\r\n--${boundary}`, `\r\n--${boundary}--`, `\n--${boundary} \t\r\n`, '\r\n\r\n', 'Content-ID: <x>\r\n', ': no-name\r\n', 'Bad Header\r\n', ' folded\r\n', '\xff'];
  for (let o = int(rnd, 1, 5); o > 0; o--) {
    const k = int(rnd, 0, 5);
    if (k === 0 && b.length) b[Math.min(b.length - 1, at())] = Math.floor(rnd() * 256);
    else if (k === 1) {
      const i = at();
      b = Buffer.concat([b.subarray(0, i), Buffer.from(pick(rnd, frags), 'latin1'), b.subarray(i)]);
    } else if (k === 2) {
      const i = at();
      b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + int(rnd, 1, 60)))]);
    } else if (k === 3) {
      const i = at();
      const j = Math.min(b.length, i + int(rnd, 0, 300));
      b = Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
    } else if (k === 4) b = b.subarray(0, at());
    else {
      const i = at();
      b = Buffer.concat([b.subarray(0, i), Buffer.alloc(int(rnd, 0, 5000), Math.floor(rnd() * 256)), b.subarray(i)]);
    }
  }
  return b;
}

export function randomSplits(len: number, rnd: () => number): number[] {
  const n = int(rnd, 0, Math.min(40, len));
  return Array.from({ length: n }, () => int(rnd, 0, len)).sort((a, b) => a - b);
}

// ---- the loop ---------------------------------------------------------------------------------

export interface Failure {
  seed: number;
  case: number;
  kind: 'model' | 'invariance' | 'invariant';
  message: string;
  boundary: string;
  bodyHex: string;
  splits: number[][];
  maxPartBytes: number;
  maxHeaderBytes: number;
}

export interface FuzzStats {
  seed: number;
  cases: number;
  generated: number;
  mutated: number;
  bytes: number;
  partsDelivered: number;
  errors: Record<string, number>;
  ms: number;
  casesPerSecond: number;
}

function same(a: Outcome, b: Outcome): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describe(a: Outcome, b: Outcome): string {
  return `parts ${a.parts.length} vs ${b.parts.length}, errors [${a.errors.join(',')}] vs [${b.errors.join(',')}], closed ${a.closed} vs ${b.closed}`;
}

/** One case's checks over explicit splits (the regression runner replays saved cases with this). */
export function checkCase(c: CaseInput, splits: number[][], expected?: Outcome): { ok: true; outcome: Outcome } | { ok: false; kind: Failure['kind']; message: string } {
  let whole: Outcome;
  try {
    whole = feed(c, [c.body]);
    if (expected && !same(whole, expected)) return { ok: false, kind: 'model', message: `whole body: ${describe(whole, expected)}` };
    for (const s of splits) {
      const got = feed(c, splitAt(c.body, s));
      if (!same(got, whole)) return { ok: false, kind: 'invariance', message: `split at [${s.slice(0, 8).join(',')}${s.length > 8 ? ',…' : ''}]: ${describe(got, whole)}` };
    }
  } catch (e) {
    return { ok: false, kind: 'invariant', message: e instanceof Error ? e.message : String(e) };
  }
  return { ok: true, outcome: whole };
}

export function runMultipartFuzz(o: { cases: number; seed: number; saveFailuresTo?: string; log?: (s: string) => void; maxFailures?: number }): { stats: FuzzStats; failures: Failure[] } {
  const started = Date.now();
  const stats: FuzzStats = { seed: o.seed, cases: 0, generated: 0, mutated: 0, bytes: 0, partsDelivered: 0, errors: {}, ms: 0, casesPerSecond: 0 };
  const failures: Failure[] = [];
  for (let n = 0; n < o.cases && failures.length < (o.maxFailures ?? 10); n++) {
    // Each case has its own stream of randomness: (seed, n) replays it alone.
    const rnd = seededRandom((Math.imul(o.seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(n + 1, 0xc2b2ae35)) >>> 0);
    let c: CaseInput;
    let expected: Outcome | undefined;
    const r = rnd();
    if (r < 0.4) {
      const g = generate(rnd);
      c = g;
      expected = g.expected;
      stats.generated++;
    } else {
      let boundary: string;
      let body: Buffer;
      if (r < 0.7) {
        const g = generate(rnd);
        boundary = g.boundary;
        body = g.body;
      } else {
        const s = pick(rnd, SAMPLES);
        boundary = s.boundary;
        body = s.body;
      }
      c = { boundary, body: mutate(body, boundary, rnd), maxPartBytes: pick(rnd, [64, 2048, 1 << 20]), maxHeaderBytes: pick(rnd, [128, 8192]) };
      stats.mutated++;
    }
    const splits = [randomSplits(c.body.length, rnd), randomSplits(c.body.length, rnd)];
    if (c.body.length <= 4096) splits.push(Array.from({ length: c.body.length }, (_, i) => i)); // byte by byte
    stats.cases++;
    stats.bytes += c.body.length;
    const res = checkCase(c, splits, expected);
    if (res.ok) {
      stats.partsDelivered += res.outcome.parts.length;
      for (const e of res.outcome.errors) stats.errors[e] = (stats.errors[e] ?? 0) + 1;
      continue;
    }
    const f: Failure = { seed: o.seed, case: n, kind: res.kind, message: res.message, boundary: c.boundary, bodyHex: c.body.toString('hex'), splits, maxPartBytes: c.maxPartBytes, maxHeaderBytes: c.maxHeaderBytes };
    failures.push(f);
    o.log?.(`multipart fuzz: case ${n} (seed ${o.seed}) failed [${res.kind}]: ${res.message}`);
    if (o.saveFailuresTo) {
      mkdirSync(o.saveFailuresTo, { recursive: true });
      writeFileSync(join(o.saveFailuresTo, `seed-${o.seed}-case-${n}.json`), `${JSON.stringify(f, null, 1)}\n`);
    }
  }
  stats.ms = Date.now() - started;
  stats.casesPerSecond = Math.round((stats.cases * 1000) / Math.max(1, stats.ms));
  return { stats, failures };
}

export default { runMultipartFuzz, checkCase };
