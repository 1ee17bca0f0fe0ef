// Events sent while the connection is not ready wait here. Bounded in count and in age:
// overflow rejects the new event with CIC_QUEUE_FULL, an event older than the age limit is
// rejected with CIC_QUEUE_EXPIRED. Nothing is ever dropped without its caller being told.
//
// At most one timer is armed (for the oldest entry), and only while the queue is not empty.
import type { Clock, TimerHandle } from '../util/clock';
import { CicError } from '../errors';

export const EVENT_QUEUE_SIZE = 16; // events waiting for a connection
export const EVENT_QUEUE_MAX_AGE_MS = 30_000; // a voice request older than this is stale

export interface Queued<T> {
  item: T;
  enqueuedAt: number;
  reject: (err: CicError) => void;
}

export class EventQueue<T> {
  private readonly entries: Queued<T>[] = [];
  private timer: TimerHandle | undefined;
  private readonly clock: Clock;
  readonly maxSize: number;
  readonly maxAgeMs: number;

  constructor(clock: Clock, maxSize = EVENT_QUEUE_SIZE, maxAgeMs = EVENT_QUEUE_MAX_AGE_MS) {
    if (!(maxSize >= 1) || !(maxAgeMs >= 1)) throw new CicError('ERR_INVALID_ARGUMENT', 'queue size and age must be positive');
    this.clock = clock;
    this.maxSize = maxSize;
    this.maxAgeMs = maxAgeMs;
  }

  get length(): number {
    return this.entries.length;
  }

  /** Adds an entry; throws CIC_QUEUE_FULL (the caller settles its own promise with it). */
  push(item: T, reject: (err: CicError) => void): void {
    if (this.entries.length >= this.maxSize) {
      throw new CicError('CIC_QUEUE_FULL', `the event queue is full (${this.maxSize} events waiting for a connection)`, {
        details: { size: this.maxSize },
      });
    }
    this.entries.push({ item, enqueuedAt: this.clock.now(), reject });
    if (this.entries.length === 1) this.arm();
  }

  /** Puts an entry back at the front (work a GOAWAY refused keeps its place and its age). */
  unshift(entry: Queued<T>): void {
    this.entries.unshift(entry);
    this.arm();
  }

  /** Removes and returns every entry that is still fresh, oldest first. */
  drain(): Queued<T>[] {
    this.expire();
    const out = this.entries.splice(0);
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    return out;
  }

  /** Rejects every entry with `err` (client stopped). */
  rejectAll(err: CicError): void {
    for (const e of this.entries.splice(0)) e.reject(err);
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expire(): void {
    const now = this.clock.now();
    while (this.entries.length && now - this.entries[0]!.enqueuedAt >= this.maxAgeMs) {
      const e = this.entries.shift()!;
      e.reject(new CicError('CIC_QUEUE_EXPIRED', `the event waited ${Math.round(now - e.enqueuedAt)} ms for a connection`, {
        details: { maxAgeMs: this.maxAgeMs },
      }));
    }
  }

  private arm(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const oldest = this.entries[0];
    if (!oldest) return;
    const due = oldest.enqueuedAt + this.maxAgeMs - this.clock.now();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.expire();
      this.arm();
    }, Math.max(0, due));
  }
}
