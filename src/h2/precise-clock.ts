// A Clock whose cleared timers never wake the process.
//
// Node's clearTimeout() drops the JavaScript timer but leaves libuv's timer armed for the old
// expiry: every PING deadline cancelled by its ACK still wakes the process once, 10 s later.
// On an idle appliance that is the only wake-up between two PINGs. This clock keeps its
// timers in one sorted list and arms a single native alarm (native/alarm.h) for the earliest;
// cancelling the earliest re-arms or stops the alarm for real.
//
// Semantics match systemClock: monotonic now(), unref'd timers, each callback a top-level
// task; an exception thrown by one callback reaches 'uncaughtException' without losing the
// timers due after it.
import { systemClock, type Clock, type TimerHandle } from '../util/clock';
import { loadBinding, type NativeAlarm, type NativeBinding } from './native';

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/** uv timers count whole milliseconds of a loop time cached at the start of the iteration. */
const EARLY_MS = 1;

class PreciseClock implements Clock {
  private readonly alarm: NativeAlarm;
  private readonly queue: Entry[] = [];
  private armedAt: number | undefined;
  private seq = 0;

  constructor(binding: NativeBinding) {
    this.alarm = new binding.Alarm(() => this.fire());
  }

  now(): number {
    return performance.now();
  }

  wallNow(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const e: Entry = { at: this.now() + Math.max(0, ms), seq: this.seq++, fn, live: true };
    // Binary search: after every entry due at the same time or earlier (insertion order).
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.queue[mid]!.at <= e.at) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, e);
    if (lo === 0) this.rearm();
    return e;
  }

  clearTimeout(handle: TimerHandle | undefined | null): void {
    const e = handle as Entry | undefined | null;
    if (!e || !e.live) return;
    e.live = false;
    const i = this.queue.indexOf(e);
    if (i < 0) return;
    this.queue.splice(i, 1);
    if (i === 0) this.rearm();
  }

  private rearm(): void {
    const head = this.queue[0];
    if (!head) {
      if (this.armedAt !== undefined) this.alarm.disarm();
      this.armedAt = undefined;
      return;
    }
    if (this.armedAt === head.at) return;
    this.armedAt = head.at;
    this.alarm.arm(Math.max(0, Math.ceil(head.at - this.now())));
  }

  /**
   * One due timer per alarm callback: each runs as its own top-level task (native
   * MakeCallback), so promise reactions it queues run before the next timer, as with Node's
   * timers, and an exception it throws goes to 'uncaughtException' after the alarm has
   * already been re-armed for the rest.
   */
  private fire(): void {
    this.armedAt = undefined;
    const head = this.queue[0];
    if (!head || head.at > this.now() + EARLY_MS) {
      this.rearm(); // woke early (whole-millisecond loop time): wait for the rest
      return;
    }
    this.queue.shift();
    head.live = false;
    this.rearm();
    head.fn();
  }
}

const clocks = new WeakMap<NativeBinding, Clock>();

/**
 * The process's precise clock for `binding` (one alarm per loaded addon), or systemClock when
 * the addon cannot be loaded (the connection then reports ADDON_NOT_FOUND itself).
 */
export function preciseClock(binding?: string | NativeBinding): Clock {
  let b: NativeBinding;
  try {
    b = loadBinding(binding);
  } catch {
    return systemClock;
  }
  if (typeof b.Alarm !== 'function') return systemClock; // an addon built before the alarm existed
  let clock = clocks.get(b);
  if (!clock) {
    clock = new PreciseClock(b);
    clocks.set(b, clock);
  }
  return clock;
}
