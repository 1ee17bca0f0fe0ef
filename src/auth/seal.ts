// Optional sealing of the token payload at rest: AES-256-GCM under a per-device key file.
//
// Threat: the flash chip (or an image of it) is copied off the device. Sealing keeps the
// refresh token unreadable without the key file, which on a real device lives on a separate,
// protected location (secure element export, read-only partition, tmpfs filled at boot).
// The slot header is the additional authenticated data, so a sealed payload cannot be moved
// to another generation or have its flags flipped without detection.
//
// Hazards:
// - GCM nonce reuse under one key leaks the authentication key and XOR of plaintexts. Every
//   write draws a fresh random 96-bit nonce; at one write per token refresh the birthday
//   bound (2^32 writes) is far beyond a device's lifetime.
// - A key file others can read makes sealing decorative, so it is refused (STORE_PERMISSIONS),
//   not warned about: a warning on a headless appliance is a log line nobody reads.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CicError } from '../errors';
import { errnoOf, octal, realFs, type FsLayer } from '../util/atomic-file';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;
const KEY_FILE_MAX_BYTES = 128; // raw key or hex with a newline; anything larger is not a key

/** nonce | ciphertext | tag */
export function sealPayload(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** The plaintext, or null when the key (or the data) does not authenticate. */
export function unsealPayload(key: Buffer, sealed: Buffer, aad: Buffer): Buffer | null {
  if (sealed.length < SEAL_OVERHEAD) return null;
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return null;
  }
}

/**
 * Reads the device key: exactly 32 raw bytes, or 64 hex digits with an optional trailing
 * newline. Missing/unreadable/malformed → STORE_KEY; readable by group/other → STORE_PERMISSIONS.
 */
export async function readDeviceKey(path: string, fs: FsLayer = realFs): Promise<Buffer> {
  let raw: Buffer;
  let mode: number;
  try {
    const handle = await fs.open(path, 'r');
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
      mode = st.mode;
      raw = Buffer.alloc(Math.min(st.size, KEY_FILE_MAX_BYTES + 1));
      const { bytesRead } = await handle.read(raw, 0, raw.length, 0);
      raw = raw.subarray(0, bytesRead);
    } finally {
      await handle.close().catch(() => undefined);
    }
  } catch (e) {
    const errno = errnoOf(e) ?? 'EUNKNOWN';
    throw new CicError('STORE_KEY', `device key ${path} cannot be read: ${errno}`, { cause: e, details: { keyPath: path, errno } });
  }
  if ((mode & 0o077) !== 0) {
    throw new CicError('STORE_PERMISSIONS', `device key ${path} is accessible to group/other (mode ${octal(mode)}); make it 0600 or 0400`, {
      details: { keyPath: path, mode: octal(mode) },
    });
  }
  const key = parseKey(raw);
  if (!key) {
    throw new CicError('STORE_KEY', `device key ${path} must hold ${KEY_BYTES} raw bytes or ${KEY_BYTES * 2} hex digits`, {
      details: { keyPath: path, bytes: raw.length },
    });
  }
  return key;
}

function parseKey(raw: Buffer): Buffer | null {
  const text = raw.toString('latin1').replace(/\r?\n$/, '');
  if (text.length === KEY_BYTES * 2 && /^[0-9a-fA-F]+$/.test(text)) return Buffer.from(text, 'hex');
  if (raw.length === KEY_BYTES) return Buffer.from(raw);
  return null;
}
