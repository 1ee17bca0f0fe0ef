// The CIC client against the CIC emulator (TLS, frame relay, fault injection); the client's
// timers run on a fake clock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicClient, type CicClientOptions } from '../src/cic/client';
import { readDirectives } from '../src/cic/directive-reader';
import type { IncomingAttachment, ReceivedDirective } from '../src/cic/types';
import type { StateChange } from '../src/cic/state';
import { Connection } from '../src/h2/connection';
import { FakeClock } from './support/fake-clock';
import { testPki } from './support/certs';
import { fakeAudio, startCicEmulator, type CicEmulatorOptions } from './emulator/cic-server';

const pki = testPki();

async function until(pred: () => boolean, what: string, rounds = 2500): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function setup(extra: Partial<CicClientOptions> = {}, emuOpts: CicEmulatorOptions = {}) {
  const emu = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, ...emuOpts });
  const clock = new FakeClock();
  let refreshes = 0;
  const client = new CicClient({
    url: emu.url,
    userAgent: 'Test/Client/1.0.0 (Linux;hw)',
    tokens: {
      getAccessToken: async () => `token-${refreshes}-xxxxxxxx`,
      onUnauthorized: async () => {
        refreshes++;
        emu.restoreTokens();
        return `token-${refreshes}-xxxxxxxx`;
      },
    },
    readDirectives,
    ca: pki.ca,
    caMode: 'only',
    clock,
    pingIntervalMs: 1_000,
    pingTimeoutMs: 500,
    backoff: { random: () => 0.5 },
    ...extra,
  });
  const states: StateChange[] = [];
  const directives: ReceivedDirective[] = [];
  client.on('state', (s) => states.push(s));
  client.on('directive', (d) => directives.push(d));
  const done = async () => {
    await client.stop();
    await emu.stop();
  };
  return { emu, clock, client, states, directives, done, refreshes: () => refreshes };
}

test('Recognize with streamed audio: StopCapture on the downchannel, Speak with its attachment', async () => {
  const t = await setup({}, { stopCaptureAfterBytes: 6_400 });
  try {
    t.client.start();
    await t.client.ready();
    let stop = false;
    t.client.on('directive', (d) => {
      if (d.directive.header.name === 'StopCapture') stop = true;
    });
    const streamed: Array<{ a: IncomingAttachment; chunks: Buffer[]; ended: boolean }> = [];
    t.client.on('attachment', (a) => {
      const s = { a, chunks: [] as Buffer[], ended: false };
      streamed.push(s);
      a.stream.on('data', (c: Buffer) => s.chunks.push(c));
      a.stream.on('end', () => (s.ended = true));
    });
    async function* microphone() {
      for (let i = 0; i < 100 && !stop; i++) {
        yield Buffer.alloc(3_200, i); // 100 ms of 16 kHz 16-bit mono
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    const r = await t.client.sendEvent({ namespace: 'SpeechRecognizer', name: 'Recognize', dialogRequestId: 'dlg-1', payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }, audio: microphone() });
    assert.ok(stop, 'StopCapture arrived on the downchannel');
    const stopDirective = t.directives.find((d) => d.directive.header.name === 'StopCapture')!;
    assert.is(stopDirective.source, 'downchannel');
    assert.is(stopDirective.directive.header.dialogRequestId, 'dlg-1');
    assert.is(r.status, 200);
    const speak = r.directives[0]!;
    assert.is(speak.directive.header.name, 'Speak');
    assert.is(speak.attachments.length, 1);
    assert.is(`cid:${speak.attachments[0]!.contentId}`, (speak.directive.payload as { url: string }).url);
    await until(() => streamed.length === 1 && streamed[0]!.ended, 'the attachment stream to end');
    const att = streamed[0]!;
    assert.equal([att.a.contentId, att.a.source, att.a.eventMessageId, att.a.directiveMessageId], [speak.attachments[0]!.contentId, 'event', r.messageId, speak.directive.header.messageId]);
    assert.is(Buffer.concat(att.chunks).length, fakeAudio().length);
    assert.ok(Buffer.concat(att.chunks).equals(fakeAudio()), 'the attachment arrived whole');
    const ev = t.emu.events[0]!;
    assert.ok(ev.audioBytes >= 6_400 && ev.audioBytes < 100 * 3_200, `audio bytes ${ev.audioBytes}`);
  } finally {
    await t.done();
  }
});

test('withheld PING ACKs: the connection is declared dead at interval + timeout and replaced', async () => {
  const t = await setup();
  try {
    t.client.start();
    await t.client.ready();
    t.emu.withholdPingAcks(true);
    t.clock.advance(1_000);
    await until(() => t.emu.counters.pings === 1, 'the PING to reach the emulator');
    t.clock.advance(499);
    await new Promise((r) => setImmediate(r));
    assert.is(t.client.state, 'ready');
    t.clock.advance(1);
    await until(() => t.client.state === 'reconnecting', 'the dead connection');
    assert.is(t.states.find((s) => s.to === 'reconnecting')!.code, 'H2_PING_TIMEOUT');
    t.emu.withholdPingAcks(false);
    t.clock.advance(t.clock.nextDelay() ?? 0);
    await until(() => t.client.state === 'ready', 'the replacement connection');
    assert.is(t.emu.counters.sessions, 2);
  } finally {
    await t.done();
  }
});

test('412 on an event: the downchannel is re-created and the event goes through once', async () => {
  const t = await setup();
  try {
    t.client.start();
    await t.client.ready();
    t.emu.respondStatus('/v1/events', 412);
    const r = await t.client.sendEvent({ namespace: 'System', name: 'SynchronizeState' });
    assert.is(r.status, 204);
    assert.is(t.emu.counters.downchannelsOpened, 2);
    assert.is(t.emu.events.length, 1);
  } finally {
    await t.done();
  }
});

test('an event on a connection without the downchannel gets 412 from the emulator', async () => {
  const emu = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key });
  const conn = await Connection.connect({ host: '127.0.0.1', port: emu.port, ca: pki.ca, caMode: 'only' });
  try {
    const r = await conn.request({ path: '/v1/events', method: 'POST', headers: { authorization: 'Bearer t-123456', 'user-agent': 'T/C/1.0.0 (L;h)', 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--' }).collect();
    assert.is(r.status, 412);
    assert.is(emu.counters.noDownchannel, 1);
  } finally {
    await conn.close();
    await emu.stop();
  }
});

test('429 on the downchannel: backoff, then the next try succeeds', async () => {
  const t = await setup();
  try {
    t.emu.respondStatus('/v1/directives', 429);
    t.client.start();
    await until(() => t.client.state === 'reconnecting', 'the 429');
    assert.is(t.states.find((s) => s.to === 'reconnecting')!.code, 'CIC_TOO_MANY_REQUESTS');
    t.clock.advance(t.clock.nextDelay()!);
    await t.client.ready();
    assert.is(t.emu.counters.tooManyRequests, 1);
    assert.is(t.emu.counters.downchannelsOpened, 1, 'the scripted 429 is not counted as an opened downchannel');
  } finally {
    await t.done();
  }
});

test('GOAWAY on every connection: bounded attempts with a growing backoff', async () => {
  const t = await setup();
  try {
    t.emu.goawayOnConnect(true);
    t.client.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      await until(() => t.client.state === 'reconnecting' && t.clock.pending > 0, `failure ${i + 1}`);
      const d = t.clock.nextDelay()!;
      delays.push(d);
      t.clock.advance(d);
    }
    assert.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]!), `delays grow: ${delays}`);
    assert.ok(t.emu.counters.sessions <= 6, `${t.emu.counters.sessions} connections for 5 backoff steps`);
    t.emu.goawayOnConnect(false);
    // The attempt already under way may still meet a GOAWAY; step the backoff until ready.
    for (let i = 0; i < 5 && t.client.state !== 'ready'; i++) {
      await until(() => t.client.state === 'ready' || (t.client.state === 'reconnecting' && t.clock.pending > 0), 'the next outcome');
      if (t.client.state === 'reconnecting') t.clock.advance(t.clock.nextDelay()!);
    }
    await t.client.ready();
  } finally {
    await t.done();
  }
});

test('GOAWAY above an in-flight event: it moves to the new connection with the same messageId and is answered there', async () => {
  const t = await setup();
  try {
    t.client.start();
    await t.client.ready();
    t.emu.holdEvents(true);
    const sent = t.client.sendEvent({ namespace: 'System', name: 'SynchronizeState' });
    await until(() => t.emu.counters.eventsHeld === 1, 'the event to be held');
    t.emu.holdEvents(false);
    t.emu.goaway({ code: 0, lastStreamId: 1 }); // the downchannel (stream 1) is processed, the event (stream 3) is not
    const r = await sent;
    assert.is(r.status, 204);
    assert.is(t.emu.counters.sessions, 2);
    const names = t.emu.events.map((e) => e.messageId);
    assert.is(names.filter((id) => id === r.messageId).length, 2, 'seen once refused on the old connection, once answered on the new');
    assert.is(t.emu.counters.eventsHeld, 1);
  } finally {
    await t.done();
  }
});

test('expired tokens: 401, one refresh, ready again', async () => {
  const t = await setup();
  try {
    t.emu.expireTokens('all');
    t.client.start();
    await t.client.ready();
    assert.is(t.refreshes(), 1);
    assert.is(t.emu.counters.unauthorized, 1);
  } finally {
    await t.done();
  }
});

test('a dropped socket and a downchannel reset are both recovered', async () => {
  const t = await setup();
  try {
    t.client.start();
    await t.client.ready();
    t.emu.resetDownchannel();
    await until(() => t.emu.counters.downchannelsOpened === 2 && t.client.state === 'ready', 'a new downchannel');
    t.emu.dropSocket();
    await until(() => t.client.state === 'reconnecting', 'the lost connection');
    t.clock.advance(t.clock.nextDelay() ?? 0);
    await until(() => t.client.state === 'ready' && t.emu.counters.sessions === 2, 'a new connection');
  } finally {
    await t.done();
  }
});

test('a frozen link: nothing moves, the sockets stay open, the client replaces the connection', async () => {
  const t = await setup();
  try {
    t.client.start();
    await t.client.ready();
    t.emu.freeze(true);
    t.clock.advance(1_500);
    await until(() => t.client.state === 'reconnecting', 'the dead link');
    t.emu.freeze(false);
    t.clock.advance(t.clock.nextDelay() ?? 0);
    await until(() => t.client.state === 'ready', 'recovery');
  } finally {
    await t.done();
  }
});

test.run();
