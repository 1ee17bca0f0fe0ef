// Bounded retries of transient auth failures: capped exponential backoff with full jitter
// (util/backoff) on the injected clock, so tests drive the delays with a fake clock.
//
// Only errors that say they are retryable (CicError.retryable: 5xx, network, timeout, 429)
// are retried; a refusal (invalid_grant, invalid_client, 4xx) is final at once. A server's
// Retry-After (details.retryAfterMs) lengthens a delay, never beyond the cap.

import { isCicError, type CicError } from '../errors';
import { Backoff } from '../util/backoff';
import { sleep, type Clock } from '../util/clock';
import { abortError } from './http-request';

export interface RetryPolicy {
  /** Total tries including the first. Default 3. */
  maxAttempts?: number;
  /** First backoff ceiling, ms. Default 500. */
  baseMs?: number;
  /** Largest delay, ms. Default 8 s. */
  maxMs?: number;
  /** Randomness in [0, 1) for the jitter (tests inject a constant). */
  random?: () => number;
}

export interface RetryInfo {
  /** What is being retried, for logs ('token', 'authorize', …). */
  what: string;
  /** The attempt that failed (1-based). */
  attempt: number;
  /** The delay before the next attempt, ms. */
  delayMs: number;
  error: CicError;
}

export interface RetryOptions extends RetryPolicy {
  what: string;
  clock: Clock;
  signal?: AbortSignal;
  /** Called before each delay (logging, tests waiting for the client to back off). */
  onRetry?: (info: RetryInfo) => void;
}

export const DEFAULT_RETRY_ATTEMPTS = 3;
export const DEFAULT_RETRY_BASE_MS = 500;
export const DEFAULT_RETRY_MAX_MS = 8_000; // a person may be waiting on a login; keep it short

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? DEFAULT_RETRY_ATTEMPTS));
  const maxMs = options.maxMs ?? DEFAULT_RETRY_MAX_MS;
  const backoff = new Backoff({ baseMs: options.baseMs ?? DEFAULT_RETRY_BASE_MS, maxMs, random: options.random });
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (!isCicError(e) || !e.retryable || attempt >= maxAttempts) throw e;
      let delayMs = backoff.next();
      const after = e.details?.retryAfterMs;
      if (typeof after === 'number' && after > delayMs) delayMs = Math.min(after, maxMs);
      options.onRetry?.({ what: options.what, attempt, delayMs, error: e });
      try {
        await sleep(options.clock, delayMs, options.signal);
      } catch {
        throw abortError(options.signal!);
      }
    }
  }
}
