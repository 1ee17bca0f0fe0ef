// Push-based streaming multipart parser (RFC 2046 §5.1) for CIC responses.
//
// The downchannel is a multipart body that never ends, and an attachment part may be as long
// as an answer's audio: nothing here waits for the closing `--boundary--`, and nothing holds
// a part's body. A part is announced when its header block is complete (onPartStart), its body
// follows in pieces as bytes arrive (onPartData), and it is complete the moment `LF--boundary`
// has been seen in full (onPartEnd; RFC 2046: "it is sufficient that the boundary appear in
// its entirety following the CRLF"). The rest of the delimiter line (transport padding, CRLF,
// or `--` for the close delimiter) is read after the part ended, so a server that pauses right
// after the boundary does not delay the part. Collecting a part whole, with a size limit, is
// part-buffer.ts's job.
//
// Scanning. The only search is `chunk.indexOf(needle)` with needle = `\n--boundary`, once
// over each pushed chunk from the current position. A delimiter split across pushes is
// tracked as "how many needle bytes matched so far" (plus an optional CR before it), never
// by concatenating the new chunk to old bytes. Hazard: re-scanning an accumulated buffer
// from its start on every push makes a part that arrives in N small chunks cost O(N²) — a
// 1 MB attachment in 1 KB DATA frames would be scanned ~500 times over; here each byte is
// searched once (plus at most boundary.length+3 carried bytes per push).
//
// Line endings. Delimiters are found by `\n--boundary`; a CR right before the LF belongs to
// the delimiter, so CRLF and (leniently) bare-LF bodies both parse. Consequence: a body that
// really ends in CR followed by an LF-only delimiter loses that CR (ambiguous input; CRLF
// senders are unaffected). Body bytes that could be the start of a delimiter are held back
// until the next push decides (at most boundary.length+4 bytes).
//
// Memory. The parser holds at most maxHeaderBytes of header block + boundary.length+4 bytes
// of a partial delimiter, whatever the parts' sizes. Too-large header blocks and malformed
// parts are reported and skipped (discarded until the next delimiter); the body keeps parsing.
//
// Zero copy. onPartData gets subarrays of the pushed chunks. Retention hazard: a view keeps
// its whole chunk alive (here, the DATA payload the HTTP/2 layer handed out); a consumer that
// keeps a small piece for a long time should copy it.
import { CicError, toCicError } from '../errors';
import { checkBoundary, parseHeaderParams } from './content-type';

/** A part's header block, as announced by onPartStart. */
export interface PartHead {
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Content-ID without the surrounding `<>`. */
  contentId?: string;
  contentType?: string;
  /** `name` parameter of Content-Disposition. */
  name?: string;
}

/** A whole part (part-buffer.ts collects one). */
export interface MultipartPart extends PartHead {
  body: Buffer;
}

/** The callbacks run synchronously inside push() and end(), and must not call either. */
export interface MultipartParserOptions {
  boundary: string;
  /** Largest header block of a part (bytes, line ends included); larger → CIC_PART_TOO_LARGE, part skipped. */
  maxHeaderBytes?: number;
  /** Parts started per body before the parser gives up (CIC_MULTIPART). Unlimited when unset (downchannel). */
  maxParts?: number;
  /** A part's header block is complete; its body follows. */
  onPartStart(head: PartHead): void;
  /** The next piece of the current part's body (never empty; a view of a pushed chunk). */
  onPartData(chunk: Buffer): void;
  /**
   * The current part is over: complete, or — with `error` — cut short because the body ended
   * inside it (the same error also goes to onError).
   */
  onPartEnd(error?: CicError): void;
  /** Called for each problem; the parser keeps going unless the problem ends the body. */
  onError(err: CicError): void;
}

/** 8 KiB: CIC part headers are three or four short lines. */
export const DEFAULT_MAX_HEADER_BYTES = 8 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const SP = 0x20;
const HT = 0x09;

const PREAMBLE = 0; // before the first delimiter: bytes are discarded
const DELIM_LINE = 1; // after `--boundary`: `--`, transport padding, then LF
const HEADERS = 2; // part header lines up to the blank line
const BODY = 3; // part body up to the next delimiter
const DONE = 4; // after the close delimiter: epilogue ignored
const FAILED = 5; // gave up (maxParts) or end() was called

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const EMPTY = Buffer.alloc(0);

function positiveInt(v: unknown, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new CicError('ERR_INVALID_ARGUMENT', `${what} must be a positive integer`);
  return v;
}

export class MultipartParser {
  readonly boundary: string;
  private readonly needle: Buffer; // `\n--boundary`
  private readonly maxHeaderBytes: number;
  private readonly maxParts: number;
  private readonly onPartStart: (head: PartHead) => void;
  private readonly onPartData: (chunk: Buffer) => void;
  private readonly onPartEnd: (error?: CicError) => void;
  private readonly onError: (err: CicError) => void;

  private state = PREAMBLE;
  private seen = 0;
  private parts = 0;
  // Partial delimiter carried between pushes: `pendK` needle bytes matched, `pendCR` a CR
  // before them. At the very start a virtual LF is "matched" so a body that opens with
  // `--boundary` (no preceding line break) is recognised; it is never emitted as content.
  private pendK = 1;
  private pendCR = false;
  private pendVirtual = true;
  // Delimiter line.
  private lineLen = 0;
  private lineDashes = 0;
  private lineBad = false;
  // Header block.
  private headBytes = 0;
  private headerCount = 0;
  private lineCarry: Buffer[] = [];
  private lineCarryLen = 0;
  private headers: Record<string, string> = {};
  private lastHeader: string | undefined;
  /** A part has been announced and not yet ended. */
  private open = false;
  /** The current part is being discarded (malformed) until the next delimiter. */
  private skipping = false;

  constructor(opts: MultipartParserOptions) {
    if (!opts || typeof opts.onPartStart !== 'function' || typeof opts.onPartData !== 'function' || typeof opts.onPartEnd !== 'function' || typeof opts.onError !== 'function') {
      throw new CicError('ERR_INVALID_ARGUMENT', 'MultipartParser needs onPartStart, onPartData, onPartEnd and onError callbacks');
    }
    const why = checkBoundary(opts.boundary);
    if (why) throw new CicError('ERR_INVALID_ARGUMENT', `bad multipart boundary: ${why}`);
    this.boundary = opts.boundary;
    this.needle = Buffer.from(`\n--${opts.boundary}`, 'latin1');
    this.maxHeaderBytes = positiveInt(opts.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES, 'maxHeaderBytes');
    this.maxParts = positiveInt(opts.maxParts, Number.MAX_SAFE_INTEGER, 'maxParts');
    this.onPartStart = opts.onPartStart;
    this.onPartData = opts.onPartData;
    this.onPartEnd = opts.onPartEnd;
    this.onError = opts.onError;
  }

  /** Bytes the parser currently holds (header block + partial delimiter). */
  get bufferedBytes(): number {
    // headBytes already counts the carried partial header line (lineCarryLen is a part of it).
    return this.headBytes + this.pendK + (this.pendCR ? 1 : 0);
  }

  /** Body bytes pushed so far. */
  get bytesSeen(): number {
    return this.seen;
  }

  /** Parts started so far. */
  get partCount(): number {
    return this.parts;
  }

  /** True once the close delimiter has been read. */
  get closed(): boolean {
    return this.state === DONE;
  }

  /** Feeds body bytes. Never throws for bad input: problems go to onError. */
  push(chunk: Uint8Array): void {
    if (this.state >= DONE) return;
    if (!(chunk instanceof Uint8Array)) {
      this.report(new CicError('ERR_INVALID_ARGUMENT', 'MultipartParser.push() needs a Buffer'));
      return;
    }
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (buf.length === 0) return;
    this.seen += buf.length;
    let pos = 0;
    if (this.pendK > 0 || this.pendCR) {
      // Does this chunk continue the delimiter that the previous one ended with?
      const needle = this.needle;
      const want = needle.length - this.pendK;
      const m = Math.min(want, buf.length);
      if (buf.compare(needle, this.pendK, this.pendK + m, 0, m) === 0) {
        if (m < want) {
          this.pendK += m;
          return;
        }
        this.clearPending();
        pos = m;
        this.delimiter();
      } else {
        // Not a delimiter after all: the held bytes are content. (A delimiter cannot start
        // inside them: the needle's only LF is its first byte.)
        const held = this.heldBytes();
        this.clearPending();
        if (held.length > 0) this.flush(held, 0, held.length);
      }
    }
    this.scan(buf, pos);
  }

  /** The body ended. A body that ends before its close delimiter is reported (CIC_MULTIPART). */
  end(): void {
    const st = this.state;
    if (st === DONE || st === FAILED) return this.release();
    this.state = FAILED;
    const emptyBody = st === PREAMBLE && this.seen === 0;
    const wasOpen = this.open;
    this.release();
    if (emptyBody) return; // no bytes at all: simply no parts
    const where = st === PREAMBLE ? 'before the first delimiter' : st === BODY || st === HEADERS ? 'inside a part' : 'on a delimiter line';
    const err = new CicError('CIC_MULTIPART', `multipart body ended ${where} (no closing delimiter)`, {
      details: { reason: 'truncated', parts: this.parts },
    });
    if (wasOpen) this.call(this.onPartEnd, err, 'onPartEnd');
    this.report(err);
  }

  // ---- scanning ----------------------------------------------------------------------------

  private scan(buf: Buffer, from: number): void {
    const needle = this.needle;
    const len = buf.length;
    let pos = from;
    while (pos < len && this.state < DONE) {
      const idx = buf.indexOf(needle, pos);
      if (idx < 0) {
        this.hold(buf, pos);
        return;
      }
      const end = idx > pos && buf[idx - 1] === CR ? idx - 1 : idx;
      if (end > pos) this.flush(buf, pos, end);
      if (this.state >= DONE) return;
      pos = idx + needle.length;
      this.delimiter();
    }
  }

  /** No delimiter in buf[pos..]: emit what cannot be the start of one, carry the rest. */
  private hold(buf: Buffer, pos: number): void {
    const needle = this.needle;
    const len = buf.length;
    let h = len;
    let k = 0;
    let cr = false;
    const w = Math.max(pos, len - (needle.length - 1));
    if (w < len) {
      // Only the last LF in the window can start a partial match (the needle has one LF).
      const j = buf.subarray(w, len).lastIndexOf(LF);
      if (j >= 0 && buf.compare(needle, 0, len - (w + j), w + j, len) === 0) {
        h = w + j;
        k = len - h;
      }
    }
    if (k > 0) {
      if (h > pos && buf[h - 1] === CR) {
        cr = true;
        h--;
      }
    } else if (len > pos && buf[len - 1] === CR) {
      cr = true;
      h = len - 1;
    }
    if (h > pos) this.flush(buf, pos, h);
    if (this.state >= DONE) return;
    this.pendK = k;
    this.pendCR = cr;
    this.pendVirtual = false;
  }

  private heldBytes(): Buffer {
    const start = this.pendVirtual ? 1 : 0;
    const k = Math.max(this.pendK, start);
    if (!this.pendCR) return k > start ? Buffer.from(this.needle.subarray(start, k)) : EMPTY;
    const out = Buffer.allocUnsafe(1 + k - start);
    out[0] = CR;
    this.needle.copy(out, 1, start, k);
    return out;
  }

  private clearPending(): void {
    this.pendK = 0;
    this.pendCR = false;
    this.pendVirtual = false;
  }

  /** Content between delimiters (never contains one), routed by state. */
  private flush(buf: Buffer, start: number, end: number): void {
    while (start < end) {
      switch (this.state) {
        case DELIM_LINE:
          start = this.delimLine(buf, start, end);
          break;
        case HEADERS:
          start = this.headerBytes(buf, start, end);
          break;
        case BODY:
          this.bodyBytes(buf, start, end);
          return;
        default: // PREAMBLE, DONE, FAILED: discarded
          return;
      }
    }
  }

  private delimLine(buf: Buffer, start: number, end: number): number {
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      this.lineLen++;
      if (this.lineLen <= 2 && b === DASH && this.lineDashes === this.lineLen - 1) {
        if (++this.lineDashes === 2) {
          this.state = DONE; // close delimiter: the rest is epilogue
          this.release();
          return end;
        }
        continue;
      }
      if (b === LF) {
        if (this.lineBad || this.lineDashes > 0) {
          this.malformed('junk after the boundary on a delimiter line');
          this.state = BODY;
        } else {
          this.state = HEADERS;
        }
        return i + 1;
      }
      if (b !== SP && b !== HT && b !== CR) {
        this.lineBad = true;
        // Junk line: jump to its end instead of looking at every byte.
        const nl = buf.subarray(i, end).indexOf(LF);
        this.lineLen += (nl < 0 ? end - i : nl) - 1;
        if (nl > 0) i += nl - 1;
        else if (nl < 0) i = end - 1;
      }
      if (this.lineLen > this.maxHeaderBytes) {
        this.malformed('delimiter line longer than maxHeaderBytes');
        this.state = BODY;
        return end;
      }
    }
    return end;
  }

  private headerBytes(buf: Buffer, start: number, end: number): number {
    const nlRel = buf.subarray(start, end).indexOf(LF);
    const take = nlRel < 0 ? end - start : nlRel + 1;
    if (this.headBytes + take > this.maxHeaderBytes) {
      this.skip(new CicError('CIC_PART_TOO_LARGE', `part header block exceeds ${this.maxHeaderBytes} bytes`, {
        details: { limit: this.maxHeaderBytes, what: 'headers' },
      }));
      return end;
    }
    this.headBytes += take;
    if (nlRel < 0) {
      this.lineCarry.push(buf.subarray(start, end));
      this.lineCarryLen += end - start;
      return end;
    }
    const nl = start + nlRel;
    let line = buf.subarray(start, nl);
    if (this.lineCarry.length > 0) {
      this.lineCarry.push(line);
      line = Buffer.concat(this.lineCarry, this.lineCarryLen + line.length);
      this.lineCarry = [];
      this.lineCarryLen = 0;
    }
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (line.length === 0) {
      this.state = BODY; // blank line: the body follows
      this.startPart();
      if (this.state >= DONE) return end; // maxParts reached
    } else if (!this.headerLine(line)) {
      this.malformed('bad part header line');
      return end;
    }
    return nl + 1;
  }

  private headerLine(line: Buffer): boolean {
    const s = line.toString('utf8');
    const first = s.charCodeAt(0);
    if (first === SP || first === HT) {
      // Obsolete line folding (RFC 5322 §2.2.3): continues the previous header.
      if (this.lastHeader === undefined) return false;
      this.headers[this.lastHeader] += ` ${s.trim()}`;
      return true;
    }
    const colon = s.indexOf(':');
    if (colon <= 0) return false;
    const name = s.slice(0, colon).trimEnd().toLowerCase();
    if (!HEADER_NAME.test(name)) return false;
    const value = s.slice(colon + 1).trim();
    this.headerCount++;
    if (name === '__proto__') return true; // never a real header; would poison the record
    const prev = this.headers[name];
    this.headers[name] = prev === undefined ? value : `${prev}, ${value}`;
    this.lastHeader = name;
    return true;
  }

  private bodyBytes(buf: Buffer, start: number, end: number): void {
    if (this.skipping || !this.open) return;
    this.call(this.onPartData, start === 0 && end === buf.length ? buf : buf.subarray(start, end), 'onPartData');
  }

  // ---- part boundaries -----------------------------------------------------------------------

  /** A full `\n--boundary` was seen: the current part (if any) is complete. */
  private delimiter(): void {
    const st = this.state;
    if (st === DELIM_LINE) {
      // `--b` directly followed by the next delimiter: an empty part, nothing to dispatch.
      if (this.lineBad || this.lineDashes > 0) this.malformed('junk after the boundary on a delimiter line');
    } else if (st === HEADERS && !this.skipping) {
      if (this.lineCarryLen > 0) this.malformed('part headers not followed by a blank line');
      else if (this.headerCount > 0) this.startPart(); // headers and no body
      // else: no headers, no body: an empty part, ignored
    }
    if (this.open) {
      this.open = false;
      this.call(this.onPartEnd, undefined, 'onPartEnd');
    }
    if (this.state >= DONE) return; // maxParts reached
    this.resetPart();
    this.state = DELIM_LINE;
  }

  /** The header block is complete: announce the part. */
  private startPart(): void {
    if (++this.parts > this.maxParts) {
      this.state = FAILED;
      this.release();
      this.report(new CicError('CIC_MULTIPART', `multipart body has more than ${this.maxParts} parts`, {
        details: { reason: 'too-many-parts', limit: this.maxParts },
      }));
      return;
    }
    const headers = this.headers;
    const head: PartHead = { headers };
    const cid = stripAngles(headers['content-id']);
    if (cid !== undefined) head.contentId = cid;
    const type = headers['content-type'];
    if (type !== undefined) head.contentType = type;
    const disposition = headers['content-disposition'];
    if (disposition !== undefined) {
      const semi = disposition.indexOf(';');
      const name = semi < 0 ? undefined : parseHeaderParams(disposition, semi + 1)?.find(([k]) => k === 'name')?.[1];
      if (name !== undefined) head.name = name;
    }
    this.headBytes = 0; // the header block is parsed: nothing of it is held any more
    this.open = true;
    this.call(this.onPartStart, head, 'onPartStart');
  }

  /** Runs a callback; one that throws is reported (ERR_INTERNAL) and parsing goes on. */
  private call<T>(fn: (arg: T) => void, arg: T, what: string): void {
    try {
      fn(arg);
    } catch (e) {
      this.report(toCicError(e, 'ERR_INTERNAL', `a multipart ${what} callback threw`));
    }
  }

  private resetPart(): void {
    this.lineLen = 0;
    this.lineDashes = 0;
    this.lineBad = false;
    this.headBytes = 0;
    this.headerCount = 0;
    this.lineCarry = [];
    this.lineCarryLen = 0;
    this.headers = {};
    this.lastHeader = undefined;
    this.skipping = false;
  }

  /** Discard the current part until the next delimiter. */
  private skip(err: CicError): void {
    this.resetPart();
    this.skipping = true;
    this.state = BODY;
    this.report(err);
  }

  private malformed(reason: string): void {
    this.skip(new CicError('CIC_MULTIPART', `malformed multipart part: ${reason}`, { details: { reason, part: this.parts + 1 } }));
  }

  private release(): void {
    this.resetPart();
    this.clearPending();
    this.open = false;
  }

  private report(err: CicError): void {
    this.onError(err);
  }
}

function stripAngles(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  return t.length >= 2 && t[0] === '<' && t[t.length - 1] === '>' ? t.slice(1, -1).trim() : t;
}
