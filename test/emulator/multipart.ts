// Multipart for the CIC emulator, independent of src/cic/ (the emulator must not share the
// code it tests): a writer for the bodies the server sends (downchannel, event responses) and
// the client sends (event bodies, in tests), and a small streaming parser for both.
//
// Wire shape written here, as CIC does it: the body opens with `--B`, and every part is
// `CRLF headers CRLF CRLF body CRLF --B`, so each part is followed at once by the next
// delimiter and a reader can dispatch it without waiting for the next part; `--CRLF` closes.
import { randomBytes } from 'node:crypto';

export type PartHeaders = Record<string, string>;

export function randomBoundary(prefix = 'cic-emu'): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

export class MultipartWriter {
  readonly boundary: string;

  constructor(boundary = randomBoundary()) {
    this.boundary = boundary;
  }

  contentType(subtype: 'related' | 'form-data' = 'related'): string {
    return `multipart/${subtype}; boundary=${this.boundary}`;
  }

  /** The first delimiter (`--B`); written once, before the first part. */
  open(): Buffer {
    return Buffer.from(`--${this.boundary}`, 'latin1');
  }

  /** A part's headers (starts with the CRLF that ends the preceding delimiter line). */
  head(headers: PartHeaders): Buffer {
    let text = '\r\n';
    for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
    return Buffer.from(`${text}\r\n`, 'latin1');
  }

  /** Ends the current part's body with the next delimiter. */
  delimiter(): Buffer {
    return Buffer.from(`\r\n--${this.boundary}`, 'latin1');
  }

  /** A whole part: headers, body, then the delimiter that follows it. */
  part(headers: PartHeaders, body: Buffer | string): Buffer {
    return Buffer.concat([this.head(headers), typeof body === 'string' ? Buffer.from(body) : body, this.delimiter()]);
  }

  /** Turns the last delimiter into the close delimiter (`--B--`). */
  close(): Buffer {
    return Buffer.from('--\r\n', 'latin1');
  }
}

export const JSON_PART = 'application/json; charset=UTF-8';
export const BINARY_PART = 'application/octet-stream';

/** A complete multipart body from whole parts. */
export function multipartBody(writer: MultipartWriter, parts: Array<{ headers: PartHeaders; body: Buffer | string }>): Buffer {
  return Buffer.concat([writer.open(), ...parts.map((p) => writer.part(p.headers, p.body)), writer.close()]);
}

/** A complete CIC event body (multipart/form-data): metadata JSON, then optional audio. */
export function eventBody(writer: MultipartWriter, metadata: unknown, audio?: Buffer): Buffer {
  const out = [writer.open(), writer.part(metadataHeaders(), JSON.stringify(metadata))];
  if (audio) out.push(writer.part(audioHeaders(), audio));
  out.push(writer.close());
  return Buffer.concat(out);
}

export function metadataHeaders(): PartHeaders {
  return { 'Content-Disposition': 'form-data; name="metadata"', 'Content-Type': JSON_PART };
}

export function audioHeaders(): PartHeaders {
  return { 'Content-Disposition': 'form-data; name="audio"', 'Content-Type': BINARY_PART };
}

// ---- parsing ----------------------------------------------------------------------------

/** `boundary` parameter of a multipart content type (quotes and a trailing `;` tolerated). */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\//i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  return b && b.length <= 70 ? b : undefined;
}

/** The `name` of a `Content-Disposition: form-data; name="…"` header. */
export function dispositionName(headers: PartHeaders): string | undefined {
  const cd = headers['content-disposition'];
  if (!cd) return undefined;
  const m = /;\s*name\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(cd);
  return m?.[1] ?? m?.[2];
}

/** `Content-ID` without the angle brackets. */
export function contentIdOf(headers: PartHeaders): string | undefined {
  const id = headers['content-id'];
  return id === undefined ? undefined : id.trim().replace(/^<(.*)>$/, '$1');
}

export interface MultipartHandlers {
  /** A part began; header names are lower-cased. */
  partStart?(headers: PartHeaders): void;
  partData?(chunk: Buffer): void;
  /** The part's closing delimiter arrived (the part is complete). */
  partEnd?(): void;
  /** The close delimiter (`--B--`) arrived. */
  end?(): void;
}

const MAX_HEADER_BYTES = 16 * 1024;

type State = 'preamble' | 'afterDelimiter' | 'headers' | 'body' | 'epilogue';

/**
 * Streaming multipart parser. A part ends as soon as its delimiter (`CRLF--B`) has arrived,
 * before the bytes that say whether another part or the end follows — so a never-ending
 * body (the downchannel) yields each part at once. Throws on malformed input.
 */
export class MultipartParser {
  private readonly delim: Buffer; // CRLF--boundary
  private readonly handlers: MultipartHandlers;
  private state: State = 'preamble';
  private buf: Buffer;
  private ended = false;

  constructor(boundary: string, handlers: MultipartHandlers) {
    this.delim = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.handlers = handlers;
    // A virtual CRLF lets the first delimiter (at offset 0, no CRLF before it) match too.
    this.buf = Buffer.from('\r\n', 'latin1');
  }

  get done(): boolean {
    return this.ended;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.state === 'epilogue') {
        this.buf = Buffer.alloc(0);
        return;
      }
      if (this.state === 'preamble') {
        const i = this.buf.indexOf(this.delim);
        if (i < 0) {
          this.buf = this.buf.subarray(Math.max(0, this.buf.length - this.delim.length + 1));
          return;
        }
        this.buf = this.buf.subarray(i + this.delim.length);
        this.state = 'afterDelimiter';
        continue;
      }
      if (this.state === 'afterDelimiter') {
        if (this.buf.length < 2) return;
        if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
          this.state = 'epilogue';
          this.ended = true;
          this.handlers.end?.();
          continue;
        }
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) {
          if (this.buf.length > 256) throw new Error('multipart: garbage after a delimiter');
          return;
        }
        if (!/^[ \t]*$/.test(this.buf.subarray(0, eol).toString('latin1'))) throw new Error('multipart: garbage after a delimiter');
        this.buf = this.buf.subarray(eol + 2);
        this.state = 'headers';
        continue;
      }
      if (this.state === 'headers') {
        // A part with no headers starts with the empty line at once.
        const end = this.buf.subarray(0, 2).toString('latin1') === '\r\n' ? -2 : this.buf.indexOf('\r\n\r\n');
        if (end === -1) {
          if (this.buf.length > MAX_HEADER_BYTES) throw new Error('multipart: part headers too large');
          return;
        }
        const headers: PartHeaders = {};
        if (end >= 0) {
          for (const line of this.buf.subarray(0, end).toString('latin1').split('\r\n')) {
            const colon = line.indexOf(':');
            if (colon <= 0) throw new Error(`multipart: bad header line ${JSON.stringify(line.slice(0, 40))}`);
            headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
          }
        }
        this.buf = this.buf.subarray(end + 4);
        this.state = 'body';
        this.handlers.partStart?.(headers);
        continue;
      }
      // body
      const i = this.buf.indexOf(this.delim);
      if (i >= 0) {
        if (i > 0) this.handlers.partData?.(this.buf.subarray(0, i));
        this.buf = this.buf.subarray(i + this.delim.length);
        this.state = 'afterDelimiter';
        this.handlers.partEnd?.();
        continue;
      }
      // Keep a tail that could be the start of a delimiter split across chunks.
      const keep = this.partialDelimiterTail();
      const emit = this.buf.length - keep;
      if (emit > 0) this.handlers.partData?.(this.buf.subarray(0, emit));
      this.buf = Buffer.from(this.buf.subarray(emit));
      return;
    }
  }

  /** Length of the longest buffer suffix that is a proper prefix of the delimiter. */
  private partialDelimiterTail(): number {
    const max = Math.min(this.delim.length - 1, this.buf.length);
    for (let n = max; n > 0; n--) {
      if (this.buf.subarray(this.buf.length - n).equals(this.delim.subarray(0, n))) return n;
    }
    return 0;
  }
}

export interface ParsedPart {
  headers: PartHeaders;
  body: Buffer;
}

/** Collects whole parts from a streaming parser; `onPart` runs as each part completes. */
export function partCollector(boundary: string, onPart: (p: ParsedPart) => void, onEnd?: () => void): MultipartParser {
  let headers: PartHeaders = {};
  let chunks: Buffer[] = [];
  return new MultipartParser(boundary, {
    partStart: (h) => {
      headers = h;
      chunks = [];
    },
    partData: (c) => chunks.push(Buffer.from(c)),
    partEnd: () => onPart({ headers, body: Buffer.concat(chunks) }),
    end: onEnd,
  });
}

/** Parses a complete body into parts. */
export function parseMultipart(body: Buffer, boundary: string): ParsedPart[] {
  const parts: ParsedPart[] = [];
  partCollector(boundary, (p) => parts.push(p)).push(body);
  return parts;
}
