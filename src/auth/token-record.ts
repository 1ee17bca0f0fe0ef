// On-disk encoding of the token file: pure bytes in, bytes out (no I/O, no keys).
//
// The file holds one or two framed "slots": the newest generation first, then the previous
// one. Each slot is self-delimiting and carries its own SHA-256, so damage to one (a flipped
// bit on worn flash, a torn sector) costs one generation, never both. Two generations rather
// than one because a record that fails its checksum must not leave the device without
// tokens: the previous refresh token is often still valid, and re-pairing needs a human.
//
// Slot (big-endian):
//   0   8  magic  89 'C' 'I' 'C' 'T' 'O' 'K' 0A   (high byte and LF catch 7-bit/newline mangling)
//   8   1  format version of the payload (1)
//   9   1  flags: bit 0 = payload sealed (AES-256-GCM, see seal.ts)
//  10   2  reserved, 0
//  12   8  generation (uint64, +1 per write)
//  20   4  payload length n
//  24   n  payload: canonical JSON of StoredTokens, or nonce|ciphertext|tag when sealed
//  24+n 32 SHA-256 over bytes [0, 24+n)
//
// The framing (magic, header layout, checksum) is fixed for this magic; the version byte
// describes the payload only. A future incompatible frame needs a new magic. So a slot with a
// good checksum and an unknown version was written by a newer runtime (→ foreign), while a
// flipped version byte fails the checksum (→ damaged, fall back).

import { createHash } from 'node:crypto';
import type { StoredTokens } from './types';

export const RECORD_MAGIC = Buffer.from([0x89, 0x43, 0x49, 0x43, 0x54, 0x4f, 0x4b, 0x0a]);
export const FORMAT_VERSION = 1;
export const FLAG_SEALED = 0x01;
export const HEADER_BYTES = 24;
export const CHECKSUM_BYTES = 32;
/** Tokens are a few KB at most; a larger length field is damage, not data. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Two full slots; anything larger is not a token file and is not read whole. */
export const MAX_FILE_BYTES = 2 * (HEADER_BYTES + MAX_PAYLOAD_BYTES + CHECKSUM_BYTES);
/** Bit errors tolerated in the magic at offset 0 before a file is called foreign. */
const MAGIC_FUZZ_BITS = 4;

export interface SlotHeader {
  version: number;
  flags: number;
  generation: number;
}

export interface Slot extends SlotHeader {
  /** Byte offset of the slot in the file. */
  offset: number;
  /** The 24 header bytes (additional authenticated data when sealed). */
  header: Buffer;
  payload: Buffer;
  /** The whole slot, header to checksum, for copying a generation forward unchanged. */
  raw: Buffer;
}

export function encodeHeader(h: SlotHeader, payloadLength: number): Buffer {
  if (!Number.isSafeInteger(h.generation) || h.generation < 0) throw new RangeError('generation out of range');
  if (payloadLength > MAX_PAYLOAD_BYTES) throw new RangeError('payload too large');
  const b = Buffer.alloc(HEADER_BYTES);
  RECORD_MAGIC.copy(b, 0);
  b.writeUInt8(h.version, 8);
  b.writeUInt8(h.flags, 9);
  b.writeBigUInt64BE(BigInt(h.generation), 12);
  b.writeUInt32BE(payloadLength, 20);
  return b;
}

/** Header (from encodeHeader with payload.length) + payload + checksum. */
export function frameSlot(header: Buffer, payload: Buffer): Buffer {
  const body = Buffer.concat([header, payload]);
  return Buffer.concat([body, sha256(body)]);
}

function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/** Parses the slot at `offset`: a Slot, or why it is not a good one. */
export function parseSlot(buf: Buffer, offset: number): Slot | string {
  if (buf.length - offset < RECORD_MAGIC.length) return `truncated header at byte ${offset}`;
  if (!buf.subarray(offset, offset + RECORD_MAGIC.length).equals(RECORD_MAGIC)) return `bad magic at byte ${offset}`;
  if (buf.length - offset < HEADER_BYTES) return `truncated header at byte ${offset}`;
  const length = buf.readUInt32BE(offset + 20);
  if (length > MAX_PAYLOAD_BYTES) return `implausible payload length at byte ${offset}`;
  const end = offset + HEADER_BYTES + length + CHECKSUM_BYTES;
  if (end > buf.length) return `truncated record at byte ${offset} (${buf.length - offset} of ${end - offset} bytes)`;
  const body = buf.subarray(offset, end - CHECKSUM_BYTES);
  if (!sha256(body).equals(buf.subarray(end - CHECKSUM_BYTES, end))) return `checksum mismatch in record at byte ${offset}`;
  const generation = Number(buf.readBigUInt64BE(offset + 12));
  if (!Number.isSafeInteger(generation)) return `generation out of range at byte ${offset}`;
  return {
    offset,
    version: buf.readUInt8(offset + 8),
    flags: buf.readUInt8(offset + 9),
    generation,
    header: Buffer.from(buf.subarray(offset, offset + HEADER_BYTES)),
    payload: Buffer.from(buf.subarray(offset + HEADER_BYTES, end - CHECKSUM_BYTES)),
    raw: Buffer.from(buf.subarray(offset, end)),
  };
}

export type FileScan =
  | {
      kind: 'slots';
      /** Checksum-good slots, newest generation first. */
      slots: Slot[];
      /** Why the slot at offset 0 is bad, when it is (the newest generation was lost). */
      firstDamage?: string;
      /** Bytes not covered by good slots (a damaged older generation, trailing junk). */
      strayBytes: number;
    }
  | { kind: 'corrupt'; reason: string }
  | { kind: 'foreign'; reason: string };

/**
 * Finds every good slot in `buf` (the first bytes of a file of `fileSize` bytes) and decides
 * whether a file without any is ours-but-damaged (corrupt) or someone else's (foreign).
 * Reasons name offsets and lengths, never content.
 */
export function scanFile(buf: Buffer, fileSize = buf.length): FileScan {
  if (fileSize === 0) return { kind: 'corrupt', reason: 'empty file' };
  const ours = looksOurs(buf);
  if (fileSize > MAX_FILE_BYTES) {
    return ours
      ? { kind: 'corrupt', reason: `file is ${fileSize} bytes, larger than any token file` }
      : { kind: 'foreign', reason: `file is ${fileSize} bytes and has no token-file header` };
  }
  const slots: Slot[] = [];
  let firstDamage: string | undefined;
  let covered = 0;
  // Resynchronise on the magic rather than trusting the first slot's length field: when the
  // newest slot's header is hit, its length is garbage, yet the previous slot is intact.
  let at = 0;
  while (at < buf.length) {
    const parsed = parseSlot(buf, at);
    if (typeof parsed === 'string') {
      if (at === 0) firstDamage = parsed;
      const next = buf.indexOf(RECORD_MAGIC, at + 1);
      if (next < 0) break;
      at = next;
    } else {
      slots.push(parsed);
      covered += parsed.raw.length;
      at += parsed.raw.length;
    }
  }
  if (slots.length > 0) {
    slots.sort((a, b) => b.generation - a.generation);
    return { kind: 'slots', slots, ...(firstDamage !== undefined ? { firstDamage } : {}), strayBytes: buf.length - covered };
  }
  if (ours || buf.includes(RECORD_MAGIC)) return { kind: 'corrupt', reason: firstDamage ?? 'no intact record' };
  if (isBlank(buf)) return { kind: 'corrupt', reason: `file is blank (${buf.length} bytes of 0x${buf[0]!.toString(16).padStart(2, '0')})` };
  return { kind: 'foreign', reason: `no token-file header (${describe(buf)})` };
}

/** The first bytes are our magic, a prefix of it (truncated), or it with a few flipped bits. */
function looksOurs(buf: Buffer): boolean {
  const n = Math.min(buf.length, RECORD_MAGIC.length);
  let bits = 0;
  for (let i = 0; i < n; i++) bits += popcount(buf[i]! ^ RECORD_MAGIC[i]!);
  return n === RECORD_MAGIC.length ? bits <= MAGIC_FUZZ_BITS : bits === 0;
}

function popcount(x: number): number {
  let c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}

// Erased or zero-filled flash: damage to our file, not another program's file.
function isBlank(buf: Buffer): boolean {
  const b = buf[0];
  return (b === 0x00 || b === 0xff) && buf.every((x) => x === b);
}

function describe(buf: Buffer): string {
  const first = buf[0]!;
  if (first === 0x7b || first === 0x5b) return 'looks like JSON';
  const text = buf.subarray(0, 256).every((x) => x === 0x09 || x === 0x0a || x === 0x0d || (x >= 0x20 && x < 0x7f));
  return text ? 'looks like text' : 'binary data';
}

/** Canonical JSON (fixed key order), so equal tokens give equal bytes and "unchanged" is exact. */
export function encodeTokens(t: StoredTokens): Buffer {
  const o: Record<string, unknown> = {
    accessToken: t.accessToken,
    refreshToken: t.refreshToken,
    expiresAt: t.expiresAt,
    tokenType: t.tokenType,
    obtainedAt: t.obtainedAt,
  };
  if (t.deviceId !== undefined) o.deviceId = t.deviceId;
  return Buffer.from(JSON.stringify(o), 'utf8');
}

/** Why `t` is not a StoredTokens (field names only), or undefined when it is one. */
export function invalidTokens(t: unknown): string | undefined {
  if (t === null || typeof t !== 'object') return 'not an object';
  const r = t as Record<string, unknown>;
  for (const k of ['accessToken', 'refreshToken', 'tokenType'] as const) {
    if (typeof r[k] !== 'string' || r[k] === '') return `${k} must be a non-empty string`;
  }
  for (const k of ['expiresAt', 'obtainedAt'] as const) {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) return `${k} must be a finite number`;
  }
  if (r.deviceId !== undefined && typeof r.deviceId !== 'string') return 'deviceId must be a string';
  return undefined;
}

/** Parses a plaintext payload: tokens, or why it holds none (never quoting it). */
export function decodeTokens(payload: Buffer): StoredTokens | string {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'payload is not JSON';
  }
  const why = invalidTokens(value);
  if (why) return `payload is not a token record: ${why}`;
  const r = value as StoredTokens;
  return {
    accessToken: r.accessToken,
    refreshToken: r.refreshToken,
    expiresAt: r.expiresAt,
    tokenType: r.tokenType,
    obtainedAt: r.obtainedAt,
    ...(r.deviceId !== undefined ? { deviceId: r.deviceId } : {}),
  };
}
