// The precise clock (src/h2/precise-clock.ts) on the real event loop: order, cancellation,
// re-entrancy, exceptions — and the reason it exists: a cancelled timer arms nothing, so the
// native alarm fires only for timers that are still pending. Real time with generous bounds:
// every wait is on an event (a callback), never on a margin.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { preciseClock } from '../src/h2/precise-clock';
import { systemClock } from '../src/util/clock';
import type { NativeBinding } from '../src/h2/native';
import { binding } from './support/native';

// The clock's alarm is unref'd (it never keeps a process alive on its own); this keeps the test
// process alive while it waits for one.
const hold = setInterval(() => {}, 60_000);
test.after(() => clearInterval(hold));

/** The real addon with an Alarm that counts how often it fired and how often it was armed. */
function countingBinding(): { b: NativeBinding; fired: () => number; armed: number[] } {
  let fired = 0;
  const armed: number[] = [];
  const Real = binding.Alarm;
  class CountingAlarm {
    private readonly real: InstanceType<typeof Real>;
    constructor(cb: () => void) {
      this.real = new Real(() => {
        fired++;
        cb();
      });
    }
    arm(ms: number): void {
      armed.push(ms);
      this.real.arm(ms);
    }
    disarm(): void {
      this.real.disarm();
    }
    close(): void {
      this.real.close();
    }
  }
  return { b: { ...binding, Alarm: CountingAlarm } as NativeBinding, fired: () => fired, armed };
}

test('timers fire in deadline order, equal deadlines in insertion order', async () => {
  const clock = preciseClock(countingBinding().b);
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    clock.setTimeout(() => order.push('c30'), 30);
    clock.setTimeout(() => order.push('a10'), 10);
    clock.setTimeout(() => order.push('b20'), 20);
    clock.setTimeout(() => order.push('b20-second'), 20);
    clock.setTimeout(() => (order.push('d40'), resolve()), 40);
  });
  assert.equal(order, ['a10', 'b20', 'b20-second', 'c30', 'd40']);
});

test('a timer never fires before its deadline', async () => {
  const clock = preciseClock(countingBinding().b);
  for (const ms of [0, 1, 5, 25]) {
    const started = performance.now();
    const at = await new Promise<number>((resolve) => clock.setTimeout(() => resolve(performance.now()), ms));
    assert.ok(at - started >= ms - 1, `${ms} ms timer fired after ${(at - started).toFixed(2)} ms`);
  }
});

test('a cancelled timer costs no wake-up: the alarm fires once, for the timer still pending', async () => {
  const { b, fired, armed } = countingBinding();
  const clock = preciseClock(b);
  // A PING deadline (50 ms) cancelled by its ACK, then the next probe (150 ms).
  const deadline = clock.setTimeout(() => assert.unreachable('cancelled deadline fired'), 50);
  clock.clearTimeout(deadline);
  await new Promise<void>((resolve) => clock.setTimeout(resolve, 150));
  assert.is(fired(), 1, 'one alarm for one pending timer');
  assert.is(armed.length, 2, `armed ${JSON.stringify(armed)}: the deadline, then (after it was disarmed) the next probe`);
});

test('cancelling the earliest re-arms for the next; cancelling inside a callback of the same round', async () => {
  const clock = preciseClock(countingBinding().b);
  const got: string[] = [];
  await new Promise<void>((resolve) => {
    const first = clock.setTimeout(() => got.push('first'), 10);
    let later: ReturnType<typeof clock.setTimeout> | undefined;
    clock.setTimeout(() => {
      got.push('second');
      clock.clearTimeout(later); // due in the same round, cancelled before it runs
    }, 30);
    later = clock.setTimeout(() => got.push('cancelled-late'), 30);
    clock.setTimeout(() => (got.push('last'), resolve()), 60);
    clock.clearTimeout(first);
    clock.clearTimeout(first); // twice is harmless
  });
  assert.equal(got, ['second', 'last']);
});

test('a timer set from a callback runs; a throwing callback reaches uncaughtException and the rest still run', async () => {
  const clock = preciseClock(countingBinding().b);
  const got: string[] = [];
  const caught: unknown[] = [];
  const listeners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', (e) => caught.push(e));
  try {
    await new Promise<void>((resolve) => {
      clock.setTimeout(() => {
        throw new Error('boom from a timer');
      }, 5);
      clock.setTimeout(() => {
        got.push('after-throw');
        clock.setTimeout(() => (got.push('nested'), resolve()), 5);
      }, 5);
    });
    await new Promise((r) => setImmediate(r));
  } finally {
    process.removeAllListeners('uncaughtException');
    for (const l of listeners) process.on('uncaughtException', l);
  }
  assert.equal(got, ['after-throw', 'nested']);
  assert.is(caught.length, 1);
  assert.match(String(caught[0]), /boom from a timer/);
});

test('promise reactions queued by a callback run right after it (a top-level task)', async () => {
  const clock = preciseClock(countingBinding().b);
  const got: string[] = [];
  await new Promise<void>((resolve) => {
    clock.setTimeout(() => {
      void Promise.resolve().then(() => got.push('microtask'));
      got.push('callback');
    }, 5);
    clock.setTimeout(() => (got.push('next-timer'), resolve()), 5);
  });
  assert.equal(got, ['callback', 'microtask', 'next-timer']);
});

test('pending alarms do not keep the process alive (unref), like systemClock', () => {
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  const script = `const { preciseClock } = require(${JSON.stringify(require.resolve('../src/h2/precise-clock'))});
    const c = preciseClock(); c.setTimeout(() => { console.log('fired'); }, 60000); console.log('armed');`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.is(out.trim(), 'armed');
});

test('without a loadable addon the clock falls back to systemClock', () => {
  assert.is(preciseClock('/nonexistent/cic_h2.node'), systemClock);
  assert.is(preciseClock({ ...binding, Alarm: undefined } as unknown as NativeBinding), systemClock);
});

test.run();
