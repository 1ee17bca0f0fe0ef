// Real-time measurement helpers for the fault suite: bounded waits, forced GC, RSS and CPU
// samples, and the `fault-result:` lines the reliability table is built from.
//
// These tests run on the wall clock on purpose (they measure how long the runtime takes to
// notice a fault and to recover), so every wait is a bounded failure guard, never a sleep
// that makes a test pass.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const now = (): number => performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every few ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(pred: () => boolean, what: string, timeoutMs = 10_000, everyMs = 5): Promise<number> {
  const start = now();
  for (;;) {
    if (pred()) return now() - start;
    if (now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves with `p`'s value or throws after `timeoutMs` (a hang is a failure, not a wait). */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Settles `p` into its value or its error. */
export async function outcome<T>(p: Promise<T>): Promise<T | Error> {
  try {
    return await p;
  } catch (e) {
    return e as Error;
  }
}

let gcFn: (() => void) | undefined;

/** A full garbage collection (the test runner starts files without --expose-gc). */
export function forceGc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

/** RSS in MB after a forced GC and a short settle, so freed pages can be returned. */
export async function settledRssMb(): Promise<number> {
  forceGc();
  await sleep(50);
  forceGc();
  return process.memoryUsage().rss / 1048576;
}

/** Tracks the highest RSS seen while a case runs (sampled every `everyMs`). */
export function rssPeak(everyMs = 20): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const t = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      peak = Math.max(peak, process.memoryUsage().rss);
      return peak / 1048576;
    },
  };
}

/** CPU time (user + system, ms) this process spends while `fn` runs, and the wall time. */
export async function cpuDuring(fn: () => Promise<void>): Promise<{ cpuMs: number; wallMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = now();
  await fn();
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs: now() - t0 };
}

const fmt = (v: number | string): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : v);

/**
 * Prints one `fault-result: <case> key=value…` line, the raw material of the README's
 * reliability table. Numbers under `detect`, `recover` or a key ending in `Ms` are printed
 * with an `ms` unit, keys ending in `Mb` with `MB` (the suffix is dropped from the key).
 */
export function report(name: string, fields: Record<string, number | string>): void {
  const parts = Object.entries(fields).map(([k, v]) => {
    if (typeof v === 'number' && (k === 'detect' || k === 'recover' || k.endsWith('Ms'))) return `${k.replace(/Ms$/, '')}=${fmt(v)}ms`;
    if (typeof v === 'number' && k.endsWith('Mb')) return `${k.replace(/Mb$/, '')}=${fmt(v)}MB`;
    return `${k}=${fmt(v)}`;
  });
  console.log(`fault-result: ${name} ${parts.join(' ')}`);
}
