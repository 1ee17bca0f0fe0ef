// Wyoming framing (the convention of local voice services, rhasspy/wyoming event.py):
//
//   {"type": T, "data"?: {...}, "data_length"?: N, "payload_length"?: M, "version"?: V}\n
//   N bytes: a UTF-8 JSON object merged into `data` (when N > 0)
//   M bytes: binary payload (when M > 0)
//
// Read: inline `data` and a `data_length` block are both accepted (the reference client sends
// the block; hand-written clients and socat sessions find inline data easier); the block's keys
// win, as in the reference reader. Written: what the reference writer sends — a header with
// `type`, `version`, then `data_length` only when there is data and `payload_length` only when
// there is a payload; never inline `data`.
//
// Hazard: the decoder sees a byte stream, not messages. After any framing error it cannot know
// where the next frame starts, so every error it throws ends the connection (the session sends
// the coded error first). Memory is linear in the frame: pieces are kept in a list and joined
// once, so a client writing one byte at a time costs no quadratic copying.
import { CicError } from '../errors';
import { MAX_HEADER_AND_DATA_BYTES, MAX_PAYLOAD_BYTES } from './limits';

/**
 * The `version` written in every header: the Wyoming protocol release whose framing this
 * follows (and which the independent-client test runs, Debian 13's python3-wyoming).
 */
export const WYOMING_VERSION = '1.6.2';

export interface Frame {
  type: string;
  data: Record<string, unknown>;
  payload: Buffer | undefined;
  version?: string;
}

export interface FrameLimits {
  maxHeaderAndDataBytes: number;
  maxPayloadBytes: number;
}

const DEFAULT_LIMITS: FrameLimits = { maxHeaderAndDataBytes: MAX_HEADER_AND_DATA_BYTES, maxPayloadBytes: MAX_PAYLOAD_BYTES };
const TYPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NEWLINE = 0x0a;
// Fatal: a header with a broken byte sequence is refused, never "repaired" with U+FFFD.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

type Stage = 'header' | 'data' | 'payload';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function badFrame(text: string): CicError {
  return new CicError('SOCKET_BAD_FRAME', text);
}

function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(UTF8.decode(bytes));
  } catch {
    // Never the parser's message: it quotes the input.
    throw badFrame(`${what} is not UTF-8 JSON`);
  }
  if (!isObject(v)) throw badFrame(`${what} is not a JSON object`);
  return v;
}

function length(v: unknown, name: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw badFrame(`"${name}" must be a non-negative integer`);
  return v;
}

/** Incremental decoder: push() returns the frames completed by a chunk; throws a coded error. */
export class FrameDecoder {
  private readonly limits: FrameLimits;
  private stage: Stage = 'header';
  private pieces: Buffer[] = [];
  private have = 0;
  private need = 0;
  private headerBytes = 0;
  private current: { type: string; data: Record<string, unknown>; version?: string; payloadLength: number } | undefined;
  private failed = false;

  constructor(limits: Partial<FrameLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Bytes of an incomplete frame held (0 between frames). */
  get pending(): number {
    return this.stage === 'header' ? this.have : this.headerBytes + this.have;
  }

  /**
   * Feeds bytes; `onFrame` runs for each completed frame, in order, before the next is parsed
   * (frames ahead of a bad one in the same chunk are still delivered). Throws a coded error.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    if (this.failed) throw badFrame('the decoder failed earlier');
    try {
      let at = 0;
      while (at < chunk.length) {
        if (this.stage === 'header') {
          const nl = chunk.indexOf(NEWLINE, at);
          const end = nl < 0 ? chunk.length : nl;
          if (this.have + (end - at) > this.limits.maxHeaderAndDataBytes) {
            throw new CicError('SOCKET_FRAME_TOO_LARGE', `a header line longer than ${this.limits.maxHeaderAndDataBytes} bytes`);
          }
          this.keep(chunk.subarray(at, end));
          at = end;
          if (nl < 0) break;
          at = nl + 1;
          this.headerBytes = this.have + 1;
          const frame = this.onHeader(this.take());
          if (frame) onFrame(frame);
          continue;
        }
        const n = Math.min(this.need - this.have, chunk.length - at);
        this.keep(chunk.subarray(at, at + n));
        at += n;
        if (this.have < this.need) break;
        const frame = this.stage === 'data' ? this.onData(this.take()) : this.finish(this.take());
        if (frame) onFrame(frame);
      }
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  /** The peer ended its side: throws SOCKET_BAD_FRAME when a frame was cut short. */
  end(): void {
    if (this.failed || this.pending === 0) return;
    this.failed = true;
    throw badFrame(`the connection ended inside a frame (${this.stage}${this.current ? ` of "${this.current.type}"` : ''})`);
  }

  private keep(b: Buffer): void {
    if (b.length === 0) return;
    // A copy: the socket's chunk may be a view of a buffer that is reused.
    this.pieces.push(Buffer.from(b));
    this.have += b.length;
  }

  private take(): Buffer {
    const b = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.have);
    this.pieces = [];
    this.have = 0;
    return b;
  }

  private onHeader(line: Buffer): Frame | undefined {
    const text = line.length && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
    if (text.length === 0) throw badFrame('an empty header line');
    const h = parseJsonObject(text, 'the header line');
    const dataLength = length(h.data_length, 'data_length');
    const payloadLength = length(h.payload_length, 'payload_length');
    if (this.headerBytes + dataLength > this.limits.maxHeaderAndDataBytes) {
      throw new CicError('SOCKET_FRAME_TOO_LARGE', `header line plus data of ${this.headerBytes + dataLength} bytes (limit ${this.limits.maxHeaderAndDataBytes})`);
    }
    if (payloadLength > this.limits.maxPayloadBytes) {
      throw new CicError('SOCKET_FRAME_TOO_LARGE', `a payload of ${payloadLength} bytes (limit ${this.limits.maxPayloadBytes})`);
    }
    if (typeof h.type !== 'string' || h.type === '') throw badFrame('the header has no "type"');
    if (!TYPE.test(h.type)) throw badFrame('"type" must be 1-64 characters of A-Z a-z 0-9 . _ -');
    if (h.data !== undefined && h.data !== null && !isObject(h.data)) throw badFrame('"data" must be a JSON object');
    const version = typeof h.version === 'string' ? h.version : undefined;
    this.current = { type: h.type, data: isObject(h.data) ? h.data : {}, ...(version ? { version } : {}), payloadLength };
    if (dataLength > 0) return this.expect('data', dataLength);
    if (payloadLength > 0) return this.expect('payload', payloadLength);
    return this.finish(undefined);
  }

  private onData(block: Buffer): Frame | undefined {
    const cur = this.current!;
    Object.assign(cur.data, parseJsonObject(block, 'the data block'));
    if (cur.payloadLength > 0) return this.expect('payload', cur.payloadLength);
    return this.finish(undefined);
  }

  private expect(stage: Stage, n: number): undefined {
    this.stage = stage;
    this.need = n;
    return undefined;
  }

  private finish(payload: Buffer | undefined): Frame {
    const cur = this.current!;
    this.current = undefined;
    this.stage = 'header';
    this.need = 0;
    this.headerBytes = 0;
    return { type: cur.type, data: cur.data, payload, ...(cur.version ? { version: cur.version } : {}) };
  }
}

/**
 * One frame as the reference writer lays it out: header line, data block (when `data` has a
 * key), payload (when non-empty). The payload is returned as its own buffer, not copied.
 */
export function encodeFrame(type: string, data?: Record<string, unknown>, payload?: Uint8Array): Buffer[] {
  const header: Record<string, unknown> = { type, version: WYOMING_VERSION };
  let block: Buffer | undefined;
  if (data && Object.keys(data).length > 0) {
    block = Buffer.from(JSON.stringify(data), 'utf8');
    header.data_length = block.length;
  }
  const body = payload && payload.byteLength > 0 ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : undefined;
  if (body) header.payload_length = body.length;
  const head = Buffer.from(JSON.stringify(header) + '\n', 'utf8');
  const first = block ? Buffer.concat([head, block]) : head;
  return body ? [first, body] : [first];
}
