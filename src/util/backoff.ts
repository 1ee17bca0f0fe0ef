// Capped exponential backoff with full jitter (delay = random(0, min(cap, base·2^n))).
// Full jitter spreads a fleet of devices that lost the same server at the same moment.

export interface BackoffOptions {
  /** First ceiling, ms. AVS starts at 250 ms. */
  baseMs?: number;
  /** Largest ceiling, ms. AVS caps at 20 s. */
  maxMs?: number;
  /** Lower bound of every delay, ms; keeps a refusing server from causing a tight loop. */
  minMs?: number;
  /** Source of randomness in [0, 1); injected for tests. */
  random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 250; // AVS reconnect table, first step
export const DEFAULT_BACKOFF_MAX_MS = 20_000; // AVS reconnect table, last step (repeats)
export const DEFAULT_BACKOFF_MIN_MS = 100; // never retry sooner than this, whatever the dice say

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly minMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.maxMs = options.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
    this.minMs = Math.min(options.minMs ?? DEFAULT_BACKOFF_MIN_MS, this.maxMs);
    this.random = options.random ?? Math.random;
  }

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The ceiling the next delay is drawn under. */
  ceiling(): number {
    // 2^attempt overflows to Infinity long after it passed maxMs; min() keeps it finite.
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
  }

  next(): number {
    const ceiling = this.ceiling();
    this.attempt++;
    return Math.max(this.minMs, Math.floor(this.random() * ceiling));
  }

  reset(): void {
    this.attempt = 0;
  }
}
