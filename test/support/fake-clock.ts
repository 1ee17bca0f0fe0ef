// Deterministic clock for tests: time moves only when the test says so.
import type { Clock, TimerHandle } from '../../src/util/clock';

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  private t: number;
  private wallOffset: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(start = 1_000, wallStart = Date.UTC(2026, 0, 1)) {
    this.t = start;
    this.wallOffset = wallStart - start;
  }

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.t + this.wallOffset;
  }

  /** Sets the wall clock without moving monotonic time (a device setting its clock). */
  setWall(ms: number): void {
    this.wallOffset = ms - this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = { id: ++this.seq, at: this.t + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined | null): void {
    if (!handle) return;
    this.timers = this.timers.filter((t) => t !== handle);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.timers.length;
  }

  /** Milliseconds until the next timer fires, or undefined when none is pending. */
  nextDelay(): number | undefined {
    if (this.timers.length === 0) return undefined;
    return Math.min(...this.timers.map((t) => t.at)) - this.t;
  }

  /** Moves time forward by `ms`, firing due timers in order (and timers they schedule). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }

  /** Advances, letting promise callbacks run between timer firings. */
  async advanceAsync(ms: number, step = ms): Promise<void> {
    let left = ms;
    while (left > 0) {
      const d = Math.min(step, left);
      this.advance(d);
      left -= d;
      await flushMicrotasks();
    }
  }
}

/** Lets queued promise reactions and I/O callbacks settle. */
export async function flushMicrotasks(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
