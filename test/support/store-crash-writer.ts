// Child process for test/61-token-store-crash: saves ever newer tokens to the real file in a
// tight loop until the parent SIGKILLs it. Protocol on stdout, one line each:
//   `start <n>`  the counter found on disk (0 when empty); writing begins right after
//   `<n>`        save(tokensFor(n)) has resolved (the acknowledgement)
// stdout to a pipe is synchronous on Linux, so a printed line is in the pipe before the next
// save starts, and the parent reads it even after the kill.
import { TokenStore } from '../../src/auth/token-store';
import type { StoredTokens } from '../../src/auth/types';

const EPOCH_MS = Date.UTC(2026, 0, 1);

export function tokensFor(n: number): StoredTokens {
  // Vary the length too, so a mix-up of old and new bytes cannot pass as a record.
  return {
    accessToken: `access-${n}-${'a'.repeat(n % 97)}`,
    refreshToken: `refresh-${n}-${'r'.repeat(n % 89)}`,
    expiresAt: EPOCH_MS + n * 1000 + 3_600_000,
    tokenType: 'Bearer',
    obtainedAt: EPOCH_MS + n * 1000,
  };
}

/** The counter n of tokensFor(n), or NaN when `t` is not such a record. */
export function counterOf(t: StoredTokens): number {
  const m = /^access-(\d+)-/.exec(t.accessToken);
  if (!m) return NaN;
  const n = Number(m[1]);
  const expected = tokensFor(n);
  return t.refreshToken === expected.refreshToken && t.expiresAt === expected.expiresAt && t.obtainedAt === expected.obtainedAt ? n : NaN;
}

const MAX_SAVES = 1_000_000; // an orphaned child must not write forever

async function main(path: string): Promise<void> {
  // The parent going away closes the pipe: stop instead of wearing the disk.
  process.stdout.on('error', () => process.exit(0));
  const store = new TokenStore({ path });
  const loaded = await store.load();
  let n = 0;
  if (loaded.state === 'ok') n = counterOf(loaded.tokens);
  else if (loaded.state !== 'empty') throw new Error(`writer found the file ${loaded.state}: ${loaded.reason}`);
  if (!Number.isSafeInteger(n)) throw new Error('writer found a record it did not write');
  process.stdout.write(`start ${n}\n`);
  for (let i = 0; i < MAX_SAVES; i++) {
    n++;
    await store.save(tokensFor(n));
    process.stdout.write(`${n}\n`);
  }
}

if (require.main === module) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: store-crash-writer <token-file>\n');
    process.exit(2);
  }
  main(path).catch((e) => {
    process.stderr.write(`writer failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
