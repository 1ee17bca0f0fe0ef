// Keepalive and the event queue on fake time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Keepalive } from '../src/cic/keepalive';
import { EventQueue } from '../src/cic/event-queue';
import { CicError, isCicError } from '../src/errors';
import { FakeClock, flushMicrotasks } from './support/fake-clock';

test('keepalive probes once per interval, and only one timer is armed while idle', async () => {
  const clock = new FakeClock();
  const probes: number[] = [];
  const ka = new Keepalive({ clock, intervalMs: 60_000, timeoutMs: 10_000, probe: async () => (probes.push(clock.now()), 3), onDead: () => assert.unreachable() });
  ka.start();
  assert.is(clock.pending, 1);
  for (let i = 0; i < 5; i++) {
    await clock.advanceAsync(60_000);
    await flushMicrotasks();
    assert.is(clock.pending, 1, 'exactly one timer between pings');
  }
  assert.is(probes.length, 5);
  assert.equal(probes.map((t, i) => (i ? t - probes[i - 1]! : 0)).slice(1), [60_000, 60_000, 60_000, 60_000]);
  ka.stop();
  assert.is(clock.pending, 0, 'stop cancels every timer');
});

test('keepalive declares the connection dead when the probe rejects', async () => {
  const clock = new FakeClock();
  let dead: CicError | undefined;
  const ka = new Keepalive({
    clock,
    intervalMs: 1000,
    timeoutMs: 500,
    probe: () => Promise.reject(new CicError('H2_PING_TIMEOUT', 'no ack')),
    onDead: (e) => (dead = e),
  });
  ka.start();
  await clock.advanceAsync(1000);
  await flushMicrotasks();
  assert.ok(isCicError(dead, 'H2_PING_TIMEOUT'));
  assert.is(ka.active, false);
  assert.is(clock.pending, 0);
});

test('keepalive guard fires when a probe never settles', async () => {
  const clock = new FakeClock();
  let dead: CicError | undefined;
  const ka = new Keepalive({ clock, intervalMs: 1000, timeoutMs: 500, probe: () => new Promise<number>(() => {}), onDead: (e) => (dead = e) });
  ka.start();
  await clock.advanceAsync(1000);
  assert.is(dead, undefined);
  await clock.advanceAsync(500);
  assert.is(dead, undefined, 'not before timeout + 1 ms');
  await clock.advanceAsync(1);
  assert.ok(isCicError(dead, 'H2_PING_TIMEOUT'));
});

test('a probe that settles after stop() reports nothing', async () => {
  const clock = new FakeClock();
  let resolveProbe!: (n: number) => void;
  let rtts = 0;
  const ka = new Keepalive({ clock, intervalMs: 10, timeoutMs: 5, probe: () => new Promise((r) => (resolveProbe = r)), onRtt: () => rtts++, onDead: () => assert.unreachable() });
  ka.start();
  clock.advance(10);
  ka.stop();
  resolveProbe(1);
  await flushMicrotasks();
  assert.is(rtts, 0);
  assert.is(clock.pending, 0);
});

test('event queue: overflow is a coded error and nothing already queued is lost', () => {
  const clock = new FakeClock();
  const q = new EventQueue<number>(clock, 3, 10_000);
  const rejected: CicError[] = [];
  for (let i = 0; i < 3; i++) q.push(i, (e) => rejected.push(e));
  assert.throws(() => q.push(99, () => {}), (e: CicError) => e.code === 'CIC_QUEUE_FULL');
  assert.equal(q.drain().map((e) => e.item), [0, 1, 2]);
  assert.is(rejected.length, 0);
});

test('event queue: entries older than the age limit are rejected with CIC_QUEUE_EXPIRED, on time', () => {
  const clock = new FakeClock();
  const q = new EventQueue<string>(clock, 10, 1000);
  const rejected: string[] = [];
  q.push('a', (e) => rejected.push(`a:${e.code}`));
  clock.advance(600);
  q.push('b', (e) => rejected.push(`b:${e.code}`));
  assert.is(clock.pending, 1, 'one timer for the oldest entry only');
  clock.advance(399);
  assert.equal(rejected, []);
  clock.advance(1);
  assert.equal(rejected, ['a:CIC_QUEUE_EXPIRED']);
  clock.advance(600);
  assert.equal(rejected, ['a:CIC_QUEUE_EXPIRED', 'b:CIC_QUEUE_EXPIRED']);
  assert.is(q.length, 0);
  assert.is(clock.pending, 0, 'an empty queue holds no timer');
});

test('event queue: requeued work keeps its place at the front and its age', () => {
  const clock = new FakeClock();
  const q = new EventQueue<string>(clock, 10, 1000);
  q.push('later', () => {});
  q.unshift({ item: 'first', enqueuedAt: clock.now() - 900, reject: () => {} });
  clock.advance(100);
  assert.equal(q.drain().map((e) => e.item), ['later']);
});

test('event queue: rejectAll tells every waiting caller', () => {
  const clock = new FakeClock();
  const q = new EventQueue<number>(clock, 5, 1000);
  const codes: string[] = [];
  q.push(1, (e) => codes.push(e.code));
  q.push(2, (e) => codes.push(e.code));
  q.rejectAll(new CicError('CIC_STOPPED'));
  assert.equal(codes, ['CIC_STOPPED', 'CIC_STOPPED']);
  assert.is(clock.pending, 0);
});

test.run();
