// CicClient state machine over real TLS sockets on loopback, with every timer of the client
// (keepalive, backoff, deadlines) on a fake clock.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicClient, type CicClientOptions } from '../src/cic/client';
import { readDirectives } from '../src/cic/directive-reader';
import type { StateChange } from '../src/cic/state';
import { CicError as CicErrorClass, isCicError, type CicError } from '../src/errors';
import { FakeClock } from './support/fake-clock';
import { directive, startCicEmulator, type CicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { startFaultProxy } from './support/fault-proxy';

const UA = 'Test/Client/1.0.0 (Linux 6.1;test-hw)';
const pki = testPki();
const startCic = () => startCicEmulator({ cert: pki.server.cert, key: pki.server.key });

/** Bounded wait for a condition produced by real I/O (a failure guard, not a delay). */
async function until(pred: () => boolean, what: string, rounds = 2500): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function tokens(initial = 'token-one-aaaaaa') {
  const t = { current: initial, refreshes: 0, rejected: [] as string[] };
  return {
    t,
    source: {
      getAccessToken: async () => t.current,
      onUnauthorized: async (rejected: string) => {
        t.rejected.push(rejected);
        t.refreshes++;
        t.current = `token-${t.refreshes + 1}-refreshed`;
        return t.current;
      },
    },
  };
}

function makeClient(port: number, ca: string, clock: FakeClock, extra: Partial<CicClientOptions> = {}) {
  const tk = tokens();
  const client = new CicClient({
    url: `https://127.0.0.1:${port}`,
    userAgent: UA,
    tokens: tk.source,
    readDirectives,
    ca,
    caMode: 'only',
    clock,
    pingIntervalMs: 60_000,
    pingTimeoutMs: 5_000,
    backoff: { baseMs: 250, maxMs: 20_000, random: () => 0.5 },
    ...extra,
  });
  const states: StateChange[] = [];
  client.on('state', (c) => states.push(c));
  return { client, states, tk };
}

async function withCic(fn: (cic: CicEmulator) => Promise<void>): Promise<void> {
  const cic = await startCic();
  try {
    await fn(cic);
  } finally {
    await cic.stop();
  }
}

test('normal start: every state once, ready only after the downchannel said Hello', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, states } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    assert.equal(states.map((s) => s.to), ['authorizing', 'connecting', 'opening-downchannel', 'ready']);
    assert.is(cic.counters.downchannelsOpened, 1);
    await client.stop();
    assert.is(client.state, 'closed');
  });
});

test('an event round trip carries a fresh messageId, the token and the User-Agent', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    const sent = client.sendEvent({ namespace: 'System', name: 'SynchronizeState', payload: { a: 1 } });
    const r = await sent;
    assert.is(r.status, 204);
    assert.match(r.messageId, /^[0-9a-f-]{36}$/);
    assert.is(cic.events[0]!.messageId, r.messageId);
    assert.is(cic.events[0]!.token, 'token-one-aaaaaa');
    await client.stop();
  });
});

test('events sent before ready wait in the queue and are sent exactly once', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client } = makeClient(cic.port, pki.ca, clock);
    const pending = [1, 2, 3].map((i) => client.sendEvent({ namespace: 'Test', name: `E${i}` }));
    assert.is(client.stats().queued, 3);
    client.start();
    const results = await Promise.all(pending);
    assert.equal(results.map((r) => r.status), [204, 204, 204]);
    const names = cic.events.map((e) => e.name);
    assert.equal(names.sort(), ['E1', 'E2', 'E3']);
    await client.stop();
  });
});

test('queue limits: overflow rejects with CIC_QUEUE_FULL, old entries with CIC_QUEUE_EXPIRED', async () => {
  const clock = new FakeClock();
  const { client } = makeClient(1, 'unused', clock, { queueSize: 2, queueMaxAgeMs: 1000 });
  const a = client.sendEvent({ namespace: 'T', name: 'A' }).catch((e: CicError) => e.code);
  const b = client.sendEvent({ namespace: 'T', name: 'B' }).catch((e: CicError) => e.code);
  const c = client.sendEvent({ namespace: 'T', name: 'C' }).catch((e: CicError) => e.code);
  assert.is(await c, 'CIC_QUEUE_FULL');
  clock.advance(1000);
  assert.is(await a, 'CIC_QUEUE_EXPIRED');
  assert.is(await b, 'CIC_QUEUE_EXPIRED');
});

test('a downchannel reset on a live connection is re-created at once', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, states } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    cic.resetDownchannel(0x2); // RST_STREAM INTERNAL_ERROR
    await until(() => cic.counters.downchannelsOpened === 2 && client.state === 'ready', 'a second downchannel');
    const after = states.slice(4).map((s) => s.to);
    assert.equal(after, ['opening-downchannel', 'ready']);
    assert.is(cic.counters.sessions, 1, 'same connection');
    await client.stop();
  });
});

test('401 on the downchannel: one refresh, one retry, ready with the new token', async () => {
  await withCic(async (cic) => {
    cic.respondStatus('/v1/directives', 401);
    const clock = new FakeClock();
    const { client, tk } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    assert.is(tk.t.refreshes, 1);
    assert.equal(tk.t.rejected, ['token-one-aaaaaa']);
    await client.stop();
  });
});

test('401 again and again with a live grant: backs off, warns, never closes, ready once CIC accepts', async () => {
  await withCic(async (cic) => {
    cic.respondStatus('/v1/directives', 401, 4);
    const clock = new FakeClock();
    const { client, tk, states } = makeClient(cic.port, pki.ca, clock, { unauthorizedBackoff: { baseMs: 5_000, maxMs: 60_000, random: () => 0.5 } });
    const problems: CicError[] = [];
    client.on('problem', (e) => problems.push(e));
    client.start();
    // 401 #1 refreshes and retries at once; #2 starts the backoff (5 s · 0.5, then 5 s, 10 s).
    await until(() => client.state === 'reconnecting', 'the first backoff');
    assert.is(client.stats().warning?.code, 'CIC_UNAUTHORIZED');
    assert.is(client.stats().unauthorizedStreak, 2);
    for (const step of [2_500, 5_000, 10_000]) {
      const before = cic.counters.unauthorized;
      clock.advance(step - 1);
      await new Promise((r) => setImmediate(r));
      assert.is(cic.counters.unauthorized, before, `nothing sent before the ${step} ms delay is over`);
      clock.advance(1);
      await until(() => cic.counters.unauthorized > before || client.state === 'ready', `the retry after ${step} ms`);
      if (client.state !== 'ready') await until(() => client.state === 'reconnecting' || client.state === 'ready', 'the next step');
    }
    await client.ready();
    assert.is(cic.counters.unauthorized, 4);
    // Every 401 refreshed the token it refused (single-flight in the token source).
    assert.is(tk.t.refreshes, 4);
    assert.equal(problems.map((p) => p.code), ['CIC_UNAUTHORIZED', 'CIC_UNAUTHORIZED', 'CIC_UNAUTHORIZED']);
    assert.not.ok(states.some((s) => s.to === 'closed'));
    assert.is(client.stats().warning, undefined, 'the warning clears once CIC accepts');
    assert.is(client.stats().unauthorizedStreak, 0);
    await client.stop();
  });
});

test('401 and a dead grant (invalid_grant from the refresh): closes with AUTH_INVALID_GRANT', async () => {
  await withCic(async (cic) => {
    cic.respondStatus('/v1/directives', 401);
    const clock = new FakeClock();
    const { client } = makeClient(cic.port, pki.ca, clock, {
      tokens: {
        getAccessToken: async () => 'token-dead-grant',
        onUnauthorized: async () => {
          throw new CicErrorClass('AUTH_INVALID_GRANT', 'the refresh token is invalid');
        },
      },
    });
    client.start();
    const err = await client.ready().catch((e: CicError) => e);
    assert.ok(isCicError(err, 'AUTH_INVALID_GRANT'), String(err));
    assert.is(client.state, 'closed');
  });
});

test('401 on an event with replayable audio (a function): refreshed, the audio is sent again', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, tk } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    cic.respondStatus('/v1/events', 401);
    let opened = 0;
    const audio = () => {
      opened++;
      return [Buffer.alloc(3200, 1), Buffer.alloc(3200, 2)];
    };
    const r = await client.sendEvent({ namespace: 'SpeechRecognizer', name: 'Recognize', payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }, dialogRequestId: randomUUID(), audio });
    assert.is(r.status, 200);
    assert.is(opened, 2, 'the audio source was opened once per attempt');
    assert.is(tk.t.refreshes, 1);
    assert.is(cic.events.length, 1);
    assert.is(cic.events[0]!.token, tk.t.current);
    assert.is(cic.events[0]!.audioBytes, 6400);
    await client.stop();
  });
});

test('401 on an event with live audio: CIC_AUDIO_NOT_REPLAYABLE, and the next request has the new token', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, tk } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    cic.respondStatus('/v1/events', 401);
    async function* mic() {
      yield Buffer.alloc(3200, 1);
      yield Buffer.alloc(3200, 2);
    }
    const err = await client
      .sendEvent({ namespace: 'SpeechRecognizer', name: 'Recognize', payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }, dialogRequestId: randomUUID(), audio: mic() })
      .catch((e: CicError) => e);
    assert.ok(isCicError(err, 'CIC_AUDIO_NOT_REPLAYABLE'), String(err));
    assert.is(tk.t.refreshes, 1, 'the token was refreshed all the same');
    const r = await client.sendEvent({ namespace: 'T', name: 'Next' });
    assert.is(r.status, 204);
    assert.is(cic.events.at(-1)!.token, tk.t.current);
    assert.is(client.state, 'ready');
    await client.stop();
  });
});

test('401 on an event: one refresh, the event is retried once and succeeds', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, tk } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    cic.respondStatus('/v1/events', 401);
    const r = await client.sendEvent({ namespace: 'T', name: 'X' });
    assert.is(r.status, 204);
    assert.is(tk.t.refreshes, 1);
    assert.is(cic.events.length, 1);
    assert.is(cic.events[0]!.token, tk.t.current);
    await client.stop();
  });
});

test('GOAWAY while ready: a new connection is opened at once and events go there', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, states } = makeClient(cic.port, pki.ca, clock);
    client.start();
    await client.ready();
    cic.goaway({ code: 0 });
    await until(() => cic.counters.downchannelsOpened === 2 && client.state === 'ready', 'the new connection');
    assert.ok(states.some((s) => s.reason === 'goaway'));
    const r = await client.sendEvent({ namespace: 'T', name: 'AfterGoaway' });
    assert.is(r.status, 204);
    await client.stop();
  });
});

test('a frozen link is declared dead after one ping interval plus the timeout, then replaced', async () => {
  await withCic(async (cic) => {
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: cic.port });
    try {
      const clock = new FakeClock();
      const { client, states } = makeClient(proxy.port, pki.ca, clock, { pingIntervalMs: 1_000, pingTimeoutMs: 500 });
      client.start();
      await client.ready();
      proxy.freeze();
      clock.advance(1_000); // the ping leaves; nothing comes back
      clock.advance(499);
      await new Promise((r) => setImmediate(r));
      assert.is(client.state, 'ready', 'not dead before the deadline');
      clock.advance(1);
      await until(() => client.state !== 'ready', 'the link to be declared dead');
      const dead = states.find((s) => s.to === 'reconnecting')!;
      assert.is(dead.code, 'H2_PING_TIMEOUT');
      // Regression: the dying connection's downchannel must not be reopened on it.
      assert.is(dead.from, 'ready');
      proxy.thaw();
      clock.advance(20_000); // any backoff delay
      await until(() => client.state === 'ready', 'a new connection');
      assert.is(proxy.accepted, 2);
      await client.stop();
    } finally {
      await proxy.close();
    }
  });
});

test('pingMode http: GET /ping every interval, and a missing 204 declares the link dead', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, states } = makeClient(cic.port, pki.ca, clock, { pingMode: 'http', pingIntervalMs: 1_000, pingTimeoutMs: 500 });
    client.start();
    await client.ready();
    const rtts: number[] = [];
    client.on('ping', (r) => rtts.push(r));
    clock.advance(1_000);
    await until(() => rtts.length === 1, 'the first /ping answer');
    assert.is(cic.counters.pingRequests, 1);
    cic.holdPingRequests(true); // accepted, never answered
    clock.advance(1_000);
    await until(() => cic.counters.pingRequestsHeld === 1, 'the second probe to reach the server');
    assert.is(client.state, 'ready');
    clock.advance(500);
    await until(() => client.state === 'reconnecting', 'the link to be declared dead');
    assert.is(states.find((s) => s.to === 'reconnecting')!.code, 'H2_PING_TIMEOUT');
    await client.stop();
  });
});

test('pingMode http: a 401 on GET /ping keeps the link, refreshes, and the next ping carries the new token', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client, tk, states } = makeClient(cic.port, pki.ca, clock, { pingMode: 'http', pingIntervalMs: 1_000, pingTimeoutMs: 500 });
    client.start();
    await client.ready();
    const rtts: number[] = [];
    client.on('ping', (r) => rtts.push(r));
    cic.respondStatus('/ping', 401);
    clock.advance(1_000);
    await until(() => rtts.length === 1 && tk.t.refreshes === 1, 'the 401 answer and the refresh');
    assert.is(client.state, 'ready', 'an answer, even 401, proves the link alive');
    clock.advance(1_000);
    await until(() => rtts.length === 2, 'the next /ping answer');
    assert.is(cic.counters.pingRequests, 1, 'only the 204 is counted as a ping request');
    assert.not.ok(states.some((s) => s.to === 'closed' || s.to === 'reconnecting'));
    await client.stop();
  });
});

test('refused connections: bounded attempts with a growing backoff, no tight loop', async () => {
  const clock = new FakeClock();
  const dead = await startCic();
  const port = dead.port;
  await dead.stop();
  const { client, states } = makeClient(port, pki.ca, clock);
  client.start();
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    await until(() => client.state === 'reconnecting' && clock.pending > 0, `failure ${i + 1}`);
    const d = clock.nextDelay()!;
    delays.push(d);
    clock.advance(d);
  }
  await until(() => client.state === 'reconnecting', 'the ninth attempt to fail');
  const attempts = states.filter((s) => s.to === 'connecting').length;
  assert.is(attempts, 9, 'one connect per backoff step, nothing in between');
  // random() = 0.5: each delay is half its ceiling, doubling up to the cap.
  assert.equal(delays, [125, 250, 500, 1000, 2000, 4000, 8000, 10000]);
  await client.stop();
});

test('an event in flight when the connection dies is reported failed, never resent', async () => {
  await withCic(async (cic) => {
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: cic.port });
    try {
      const clock = new FakeClock();
      const { client } = makeClient(proxy.port, pki.ca, clock);
      client.start();
      await client.ready();
      cic.holdEvents(true); // accepted, never answered
      const sent = client.sendEvent({ namespace: 'T', name: 'InFlight' }).catch((e: CicError) => e);
      await until(() => cic.counters.eventsHeld === 1 && client.stats().inFlight === 1, 'the event to reach the server');
      proxy.cut();
      const err = await sent;
      assert.ok(isCicError(err as CicError, 'CIC_EVENT_FAILED'), String(err));
      assert.is(((err as CicError).details as { messageId: string }).messageId.length, 36);
      await client.stop();
    } finally {
      await proxy.close();
    }
  });
});

test('an event the server accepts and never answers fails after the idle deadline (fake clock); the connection stays up', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client } = makeClient(cic.port, pki.ca, clock, { eventTimeoutMs: 5_000 });
    client.start();
    await client.ready();
    cic.holdEvents(true); // accepted, never answered; PINGs still ACKed
    const sent = client.sendEvent({ namespace: 'T', name: 'Unanswered' }).catch((e: CicError) => e);
    await until(() => cic.counters.eventsHeld === 1, 'the event to reach the server');
    clock.advance(4_999);
    assert.is(client.stats().inFlight, 1, 'still waiting just before the deadline');
    clock.advance(1);
    const err = (await sent) as CicError;
    assert.ok(isCicError(err, 'CIC_EVENT_FAILED'), String(err));
    assert.is((err.details as { cause: string }).cause, 'ERR_TIMEOUT');
    assert.match(err.message, /no byte moved for 5000 ms/);
    assert.is(client.state, 'ready');
    cic.holdEvents(false);
    const ok = await client.sendEvent({ namespace: 'T', name: 'Answered' });
    assert.ok(ok.status === 200 || ok.status === 204, `status ${ok.status}`);
    assert.is(cic.counters.sessions, 1, 'no reconnect for one slow event');
    await client.stop();
  });
});

test('stop() rejects queued events with CIC_STOPPED and closes', async () => {
  const clock = new FakeClock();
  const { client } = makeClient(1, 'unused', clock);
  const queued = client.sendEvent({ namespace: 'T', name: 'Q' }).catch((e: CicError) => e.code);
  await client.stop();
  assert.is(await queued, 'CIC_STOPPED');
  assert.is(await client.sendEvent({ namespace: 'T', name: 'Late' }).catch((e: CicError) => e.code), 'CIC_STOPPED');
});

test('directives of a dialog that is no longer current are dropped', async () => {
  await withCic(async (cic) => {
    const clock = new FakeClock();
    const { client } = makeClient(cic.port, pki.ca, clock);
    const got: string[] = [];
    const dropped: string[] = [];
    client.on('directive', (d) => got.push(d.directive.header.name));
    client.on('dropped', (d) => dropped.push(d.directive.header.name));
    client.start();
    await client.ready();
    client.dialogRequestId = 'dialog-2';
    cic.pushDirective(directive('Test', 'Stale', {}, 'dialog-1'));
    cic.pushDirective(directive('Test', 'Current', {}, 'dialog-2'));
    cic.pushDirective(directive('Test', 'NoDialog'));
    await until(() => got.length + dropped.length === 4, 'Hello and three directives');
    // Clova.Hello is delivered too (after ready), so a directive consumer sees the connection come up.
    assert.equal(got, ['Hello', 'Current', 'NoDialog']);
    assert.equal(dropped, ['Stale']);
    await client.stop();
  });
});

test.run();
