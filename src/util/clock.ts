// Time source for every time-based class. Production uses the monotonic clock and unref'd
// timers (a pending timer never keeps the process alive on its own); tests inject a fake.

export type TimerHandle = { readonly __timer: unique symbol } | object;

export interface Clock {
  /** Monotonic milliseconds; never jumps when the wall clock is set (NTP after boot). */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for persisted expiry times. */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined | null): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    if (handle) clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock` (used for retry delays; cancellable through `signal`). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
