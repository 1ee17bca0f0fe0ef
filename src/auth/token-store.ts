// TokenStore: the device's OAuth tokens in one small file on flash.
//
// Contract (see TokenPersistence):
// - load() only reads. Bad content never throws: missing → empty, ours but unreadable →
//   corrupt, not ours → foreign. A damaged newest generation falls back to the previous one
//   (recovered: true + warning). I/O errors other than ENOENT throw STORE_READ_FAILED.
// - save() writes only when the bytes would change (flash wear: a refresh that returns the
//   same tokens, or a restart, costs no erase cycle). A write replaces the file atomically
//   and durably (util/atomic-file) with [new generation, previous good generation].
// - Nothing happens in the constructor; no timers: an idle store never touches the flash.
//
// Decisions:
// - Permissions. The file is written 0600 into a directory created 0700. An existing
//   directory with group/other bits makes save() throw STORE_PERMISSIONS instead of chmod'ing
//   it (it may be /tmp or another shared directory). load() still reads such a file but
//   warns: refusing would strand a device whose tokens are already exposed. A token file
//   with lax bits is rewritten 0600 by the next save even when the tokens are unchanged.
// - Keys (sealing, option keyPath). A sealed record that cannot be opened — no keyPath
//   configured, key file missing/unreadable/malformed, or the wrong key — throws STORE_KEY
//   from load() and save(); it is not reported as 'corrupt', because the record is intact
//   and a caller that re-pairs on 'corrupt' would overwrite good tokens over a
//   configuration mistake. A key file readable by group/other throws STORE_PERMISSIONS. A
//   plaintext record with keyPath configured loads with a warning (migration) and the next
//   save seals both generations. clear() needs no key.
// - save() over a foreign file throws STORE_FOREIGN: it may be another program's file.
//   clear() removes it explicitly. A corrupt file (no good generation left) is overwritten.

import { dirname } from 'node:path';
import { CicError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { registerSecret } from '../util/secrets';
import { errnoOf, octal, realFs, removeFileDurable, writeFileAtomic, type FsLayer } from '../util/atomic-file';
import { SEAL_OVERHEAD, readDeviceKey, sealPayload, unsealPayload } from './seal';
import {
  FLAG_SEALED,
  FORMAT_VERSION,
  MAX_FILE_BYTES,
  decodeTokens,
  encodeHeader,
  encodeTokens,
  frameSlot,
  invalidTokens,
  scanFile,
  type FileScan,
  type Slot,
} from './token-record';
import type { StoreLoadResult, StoredTokens, TokenPersistence } from './types';

export interface TokenStoreOptions {
  /** The token file; its directory is created 0700 on the first save. */
  path: string;
  /** Enables sealing: a file holding the 32-byte device key (raw or 64 hex digits), mode 0600/0400. */
  keyPath?: string;
  /** Filesystem layer (tests inject faults here). Default node:fs/promises. */
  fs?: FsLayer;
  logger?: Logger;
}

type Current =
  | { kind: 'empty'; maxGeneration: 0 }
  | { kind: 'corrupt'; reason: string; maxGeneration: number }
  | { kind: 'foreign'; reason: string; maxGeneration: number }
  | {
      kind: 'ok';
      tokens: StoredTokens;
      slot: Slot;
      plaintext: Buffer;
      recovered: boolean;
      warnings: string[];
      /** The file should be rewritten even if the tokens are unchanged. */
      repair: boolean;
      maxGeneration: number;
    };

export class TokenStore implements TokenPersistence {
  readonly path: string;
  readonly sealed: boolean;
  private readonly keyPath: string | undefined;
  private readonly fs: FsLayer;
  private readonly log: Logger;
  private key: Promise<Buffer> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: TokenStoreOptions) {
    if (!options || typeof options.path !== 'string' || options.path === '') {
      throw new CicError('ERR_INVALID_ARGUMENT', 'TokenStore needs a path');
    }
    if (options.keyPath !== undefined && (typeof options.keyPath !== 'string' || options.keyPath === '')) {
      throw new CicError('ERR_INVALID_ARGUMENT', 'keyPath must be a non-empty string');
    }
    this.path = options.path;
    this.keyPath = options.keyPath;
    this.sealed = options.keyPath !== undefined;
    this.fs = options.fs ?? realFs;
    this.log = options.logger ?? silentLogger;
  }

  load(): Promise<StoreLoadResult> {
    return this.serial(async () => {
      const cur = await this.current();
      switch (cur.kind) {
        case 'empty':
          return { state: 'empty', path: this.path };
        case 'corrupt':
        case 'foreign':
          this.log.warn(`token store: file is ${cur.kind}`, { path: this.path, reason: cur.reason });
          return { state: cur.kind, path: this.path, reason: cur.reason };
        case 'ok': {
          const dirWarning = await this.laxDirWarning();
          const warnings = dirWarning ? [...cur.warnings, dirWarning] : cur.warnings;
          if (warnings.length) this.log.warn('token store: loaded with warnings', { path: this.path, warnings, generation: cur.slot.generation });
          return { state: 'ok', tokens: cur.tokens, recovered: cur.recovered, ...(warnings.length ? { warning: warnings.join('; ') } : {}) };
        }
      }
    });
  }

  save(tokens: StoredTokens): Promise<{ written: boolean }> {
    const why = invalidTokens(tokens);
    if (why) return Promise.reject(new CicError('ERR_INVALID_ARGUMENT', `tokens: ${why}`));
    registerSecret(tokens.accessToken);
    registerSecret(tokens.refreshToken);
    return this.serial(async () => {
      // The key first: a missing key must fail before anything is read or written.
      const key = this.sealed ? await this.deviceKey() : undefined;
      const cur = await this.current();
      if (cur.kind === 'foreign') {
        throw new CicError('STORE_FOREIGN', `${this.path} is not a token file (${cur.reason}); clear() it to replace it`, {
          details: { path: this.path, reason: cur.reason },
        });
      }
      const plaintext = encodeTokens(tokens);
      if (cur.kind === 'ok' && !cur.repair && cur.plaintext.equals(plaintext)) return { written: false };
      if (cur.kind === 'corrupt') this.log.warn('token store: replacing a corrupt file', { path: this.path, reason: cur.reason });

      const fresh = encodeSlot(cur.maxGeneration + 1, plaintext, key);
      let previous: Buffer | undefined;
      if (cur.kind === 'ok') {
        // The generation we would load today goes along unchanged, so a damaged write of the
        // new one can still fall back to it. Only re-encode it when the sealing mode changes
        // (a plaintext previous generation must not outlive the switch to sealing).
        const sameMode = ((cur.slot.flags & FLAG_SEALED) !== 0) === (key !== undefined);
        previous = sameMode ? cur.slot.raw : encodeSlot(cur.slot.generation, cur.plaintext, key);
      }
      await writeFileAtomic(this.path, previous ? Buffer.concat([fresh, previous]) : fresh, { fs: this.fs });
      return { written: true };
    });
  }

  clear(): Promise<void> {
    return this.serial(async () => {
      await removeFileDurable(this.path, { fs: this.fs });
    });
  }

  // Calls run one at a time: save() is read-modify-write and must not interleave.
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private deviceKey(): Promise<Buffer> {
    if (!this.keyPath) {
      return Promise.reject(new CicError('STORE_KEY', `${this.path} holds a sealed record but no device key is configured`, { details: { path: this.path } }));
    }
    if (!this.key) {
      this.key = readDeviceKey(this.keyPath, this.fs);
      // Forget a failure: the key file may be provisioned later in the same process.
      this.key.catch(() => (this.key = undefined));
    }
    return this.key;
  }

  /** Reads and interprets the file as it is now. */
  private async current(): Promise<Current> {
    const read = await this.readRaw();
    if (read === null) return { kind: 'empty', maxGeneration: 0 };
    if (typeof read === 'string') return { kind: 'foreign', reason: read, maxGeneration: 0 };
    const scan = scanFile(read.buf, read.size);
    if (scan.kind !== 'slots') return { ...scan, maxGeneration: 0 };
    return this.choose(scan, read.mode);
  }

  /** The file bytes (at most MAX_FILE_BYTES), null when missing, or a reason it is not a file. */
  private async readRaw(): Promise<{ buf: Buffer; size: number; mode: number } | string | null> {
    try {
      const handle = await this.fs.open(this.path, 'r');
      try {
        const st = await handle.stat();
        if (!st.isFile()) return 'not a regular file';
        const buf = Buffer.alloc(Math.min(st.size, MAX_FILE_BYTES));
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return { buf: buf.subarray(0, got), size: st.size, mode: st.mode };
      } finally {
        await handle.close().catch(() => undefined);
      }
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === 'ENOENT') return null;
      throw new CicError('STORE_READ_FAILED', `reading ${this.path} failed: ${errno ?? 'EUNKNOWN'}`, {
        cause: e,
        details: { path: this.path, errno: errno ?? 'EUNKNOWN' },
      });
    }
  }

  private async choose(scan: Extract<FileScan, { kind: 'slots' }>, mode: number): Promise<Current> {
    const maxGeneration = scan.slots[0]!.generation;
    let damage = scan.firstDamage;
    for (const [i, slot] of scan.slots.entries()) {
      if (slot.version !== FORMAT_VERSION || (slot.flags & ~FLAG_SEALED) !== 0) {
        // An intact newest record in a format we do not know: a newer runtime wrote it.
        // Rolling back to an older generation would resurrect a rotated refresh token.
        if (i === 0) return { kind: 'foreign', reason: `record format version ${slot.version} (flags ${slot.flags}) is not supported`, maxGeneration };
        damage ??= `generation ${slot.generation} has an unsupported format`;
        continue;
      }
      let plaintext = slot.payload;
      if (slot.flags & FLAG_SEALED) {
        const opened = unsealPayload(await this.deviceKey(), slot.payload, slot.header);
        if (!opened) {
          throw new CicError('STORE_KEY', `the device key does not open the sealed record in ${this.path}`, {
            details: { path: this.path, keyPath: this.keyPath, generation: slot.generation },
          });
        }
        plaintext = opened;
      }
      const tokens = decodeTokens(plaintext);
      if (typeof tokens === 'string') {
        damage ??= `generation ${slot.generation}: ${tokens}`;
        continue;
      }
      registerSecret(tokens.accessToken);
      registerSecret(tokens.refreshToken);

      const recovered = i > 0 || slot.offset !== 0;
      const warnings: string[] = [];
      if (recovered) warnings.push(`newest generation is damaged (${damage ?? 'unreadable'}); using generation ${slot.generation}`);
      else if (scan.strayBytes > 0) warnings.push(`previous generation is damaged (${scan.strayBytes} bytes unreadable); the next save replaces it`);
      const sealingChanges = ((slot.flags & FLAG_SEALED) !== 0) !== this.sealed;
      if (sealingChanges) warnings.push('record is not sealed; the next save seals it');
      const laxFile = (mode & 0o077) !== 0;
      if (laxFile) warnings.push(`token file mode ${octal(mode)} is accessible to group/other; the next save rewrites it 0600`);
      return { kind: 'ok', tokens, slot, plaintext, recovered, warnings, repair: recovered || sealingChanges || laxFile, maxGeneration };
    }
    return { kind: 'corrupt', reason: damage ?? 'no readable record', maxGeneration };
  }

  private async laxDirWarning(): Promise<string | undefined> {
    try {
      const st = await this.fs.stat(dirname(this.path));
      if ((st.mode & 0o077) !== 0) return `directory mode ${octal(st.mode)} is accessible to group/other; saving will be refused until it is 0700`;
    } catch {
      // The file was just read from it; a failing stat here adds nothing worth failing load().
    }
    return undefined;
  }
}

function encodeSlot(generation: number, plaintext: Buffer, key: Buffer | undefined): Buffer {
  const flags = key ? FLAG_SEALED : 0;
  const length = key ? plaintext.length + SEAL_OVERHEAD : plaintext.length;
  const header = encodeHeader({ version: FORMAT_VERSION, flags, generation }, length);
  return frameSlot(header, key ? sealPayload(key, plaintext, header) : plaintext);
}
