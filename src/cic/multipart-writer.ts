// multipart/form-data bodies for CIC events: a `metadata` JSON part and an optional `audio`
// part whose bytes are streamed as the microphone produces them (about every 200 ms), so the
// body is produced in three steps: head() (delimiter + metadata + audio part headers), the
// caller's audio chunks passed through untouched, tail() (close delimiter).
//
// Boundary: "cic-" + 24 random bytes in base64url (36 URL-safe characters, all RFC 2046
// bchars), regenerated until it does not occur in the metadata JSON. Streamed audio cannot be
// checked in advance; 192 random bits make an accidental `CRLF--boundary` in audio about as
// likely as guessing a random 192-bit key, so it is not scanned for.
import { randomBytes } from 'node:crypto';
import { CicError } from '../errors';
import { checkBoundary } from './content-type';

const CRLF = '\r\n';

const BOUNDARY_BYTES = 24;
const POOL_BOUNDARIES = 64;
let pool: Buffer | undefined;
let poolOffset = 0;

/**
 * A fresh random boundary: "cic-" + 32 base64url characters. The random bytes come from a
 * pool filled 64 boundaries at a time: one CSPRNG call per event used to cost about 9 µs and a
 * getpid() syscall (OpenSSL's fork check), a noticeable share of an event's CPU on a device.
 */
export function randomBoundary(): string {
  if (pool === undefined || poolOffset === pool.length) {
    pool = randomBytes(BOUNDARY_BYTES * POOL_BOUNDARIES);
    poolOffset = 0;
  }
  const text = pool.toString('base64url', poolOffset, poolOffset + BOUNDARY_BYTES);
  poolOffset += BOUNDARY_BYTES;
  return `cic-${text}`;
}

export interface EventBodyOptions {
  /** Whether an `audio` part follows the metadata. */
  audio?: boolean;
  /** Fixed boundary (tests, emulator); must not occur in the metadata. */
  boundary?: string;
  /** Boundary source (tests): called until it returns one that does not occur in the metadata. */
  randomBoundary?: () => string;
}

function metadataText(metadata: unknown): string {
  if (typeof metadata === 'string') return metadata;
  const json = JSON.stringify(metadata);
  if (typeof json !== 'string') throw new CicError('ERR_INVALID_ARGUMENT', 'event metadata is not JSON-serialisable');
  return json;
}

function pickBoundary(text: string, opts: EventBodyOptions): string {
  if (opts.boundary !== undefined) {
    const why = checkBoundary(opts.boundary);
    if (why) throw new CicError('ERR_INVALID_ARGUMENT', `bad boundary: ${why}`);
    if (text.includes(opts.boundary)) throw new CicError('ERR_INVALID_ARGUMENT', 'the boundary occurs in the event metadata');
    return opts.boundary;
  }
  const gen = opts.randomBoundary ?? randomBoundary;
  for (let i = 0; i < 16; i++) {
    const b = gen();
    if (checkBoundary(b) === undefined && !text.includes(b)) return b;
  }
  throw new CicError('ERR_INTERNAL', 'could not find a boundary absent from the event metadata');
}

const METADATA_HEADERS = `Content-Disposition: form-data; name="metadata"${CRLF}Content-Type: application/json; charset=UTF-8${CRLF}${CRLF}`;
const AUDIO_HEADERS = `Content-Disposition: form-data; name="audio"${CRLF}Content-Type: application/octet-stream${CRLF}${CRLF}`;

/**
 * One event body, produced either in one piece (complete()) or streamed
 * (head(), audioChunk()…, tail()), in that order.
 */
export class EventBodyWriter {
  readonly boundary: string;
  /** Value for the request's `content-type` header. */
  readonly contentType: string;
  readonly audio: boolean;
  private readonly metadata: string;
  private step: 0 | 1 | 2 = 0; // 0 nothing written, 1 head written, 2 finished

  constructor(metadata: string | object, opts: EventBodyOptions = {}) {
    this.metadata = metadataText(metadata);
    this.audio = opts.audio === true;
    this.boundary = pickBoundary(this.metadata, opts);
    this.contentType = `multipart/form-data; boundary=${this.boundary}`;
  }

  private headText(): string {
    const b = this.boundary;
    const head = `--${b}${CRLF}${METADATA_HEADERS}${this.metadata}`;
    return this.audio ? `${head}${CRLF}--${b}${CRLF}${AUDIO_HEADERS}` : head;
  }

  private tailText(): string {
    return `${CRLF}--${this.boundary}--${CRLF}`;
  }

  /** Opening delimiter, metadata part and (with audio) the audio part's headers. */
  head(): Buffer {
    if (this.step !== 0) throw new CicError('ERR_INVALID_ARGUMENT', 'head() must come first and only once');
    this.step = 1;
    return Buffer.from(this.headText(), 'utf8');
  }

  /** Audio bytes to send as they are: returned as-is (a view, never a copy). */
  audioChunk(chunk: Uint8Array): Buffer[] {
    if (!this.audio) throw new CicError('ERR_INVALID_ARGUMENT', 'this event body has no audio part');
    if (this.step !== 1) throw new CicError('ERR_INVALID_ARGUMENT', 'audioChunk() must come after head() and before tail()');
    if (!(chunk instanceof Uint8Array)) throw new CicError('ERR_INVALID_ARGUMENT', 'an audio chunk must be a Buffer or Uint8Array');
    if (chunk.byteLength === 0) return [];
    return [Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)];
  }

  /** Close delimiter; ends the body. */
  tail(): Buffer {
    if (this.step !== 1) throw new CicError('ERR_INVALID_ARGUMENT', 'tail() must come after head() and only once');
    this.step = 2;
    return Buffer.from(this.tailText(), 'latin1');
  }

  /** The whole body in one allocation (an audio event gets an empty audio part). */
  complete(): Buffer {
    if (this.step !== 0) throw new CicError('ERR_INVALID_ARGUMENT', 'complete() cannot follow head()');
    this.step = 2;
    // Written piece by piece into one allocation: Buffer.from() of the concatenated text would
    // first flatten a second copy of the metadata on the JS heap, for every event.
    const b = this.boundary;
    const open = `--${b}${CRLF}${METADATA_HEADERS}`;
    const audioPart = this.audio ? `${CRLF}--${b}${CRLF}${AUDIO_HEADERS}` : '';
    const close = this.tailText();
    const metadataBytes = Buffer.byteLength(this.metadata, 'utf8');
    const body = Buffer.allocUnsafe(open.length + metadataBytes + audioPart.length + close.length); // the others are ASCII
    let at = body.write(open, 0, 'latin1');
    at += body.write(this.metadata, at, 'utf8');
    at += body.write(audioPart, at, 'latin1');
    at += body.write(close, at, 'latin1');
    if (at !== body.length) throw new CicError('ERR_INTERNAL', `event body is ${at} bytes, expected ${body.length}`);
    return body;
  }
}

/** A metadata-only event body: `{contentType, boundary, body}` with the body in one allocation. */
export function encodeEventBody(metadata: string | object, opts: Omit<EventBodyOptions, 'audio'> = {}): {
  contentType: string;
  boundary: string;
  body: Buffer;
} {
  const w = new EventBodyWriter(metadata, { ...opts, audio: false });
  return { contentType: w.contentType, boundary: w.boundary, body: w.complete() };
}

export interface RawPart {
  /** Written in order, as given (`name: value`). */
  headers?: Record<string, string> | Array<[string, string]>;
  body?: Uint8Array | string;
}

export interface WriteMultipartOptions {
  /** Bytes before the first delimiter. */
  preamble?: string;
  /** Bytes after the close delimiter (only with close). */
  epilogue?: string;
  /** Line ending for delimiters and headers (default CRLF; LF to exercise lenient parsers). */
  newline?: '\r\n' | '\n';
  /** Transport padding after each boundary (spaces / tabs). */
  padding?: string;
  /**
   * true (default): end with the close delimiter. false: end with a delimiter after the last
   * part, as the never-ending downchannel does.
   */
  close?: boolean;
}

/** Any multipart body from parts (tests, the CIC emulator). Bodies are copied once. */
export function writeMultipart(boundary: string, parts: RawPart[], opts: WriteMultipartOptions = {}): Buffer {
  const why = checkBoundary(boundary);
  if (why) throw new CicError('ERR_INVALID_ARGUMENT', `bad boundary: ${why}`);
  const nl = opts.newline ?? CRLF;
  const pad = opts.padding ?? '';
  const out: Buffer[] = [];
  if (opts.preamble) out.push(Buffer.from(opts.preamble, 'utf8'), Buffer.from(nl, 'latin1'));
  for (const part of parts) {
    const entries = Array.isArray(part.headers) ? part.headers : Object.entries(part.headers ?? {});
    let head = `--${boundary}${pad}${nl}`;
    for (const [k, v] of entries) head += `${k}: ${v}${nl}`;
    out.push(Buffer.from(`${head}${nl}`, 'utf8'));
    if (part.body !== undefined) out.push(typeof part.body === 'string' ? Buffer.from(part.body, 'utf8') : Buffer.from(part.body));
    out.push(Buffer.from(nl, 'latin1'));
  }
  if (opts.close === false) out.push(Buffer.from(`--${boundary}${pad}${nl}`, 'latin1'));
  else out.push(Buffer.from(`--${boundary}--${nl}${opts.epilogue ?? ''}`, 'utf8'));
  return Buffer.concat(out);
}
