// The device service over a real Unix socket, with the runtime behind a fake port and every
// timer of the service on a fake clock: each message kind, routing of answers, attachment
// streaming with back-pressure, live audio and StopCapture, and every kind of bad input —
// each asserting the coded error, the log line, and that the other clients carry on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CicError } from '../src/errors';
import { createLogger } from '../src/log';
import { DeviceService } from '../src/service/server';
import type { ServiceLimits } from '../src/service/limits';
import { FakeClock, flushMicrotasks } from './support/fake-clock';
import { FakeRuntime } from './support/fake-runtime';
import { SocketClient, frameBytes, until } from './support/socket-client';

const INFO = { name: 'cic-runtime', version: '9.9.9', nghttp2: '1.64.0', node: process.version, target: 'linux-x64' };
const dir = mkdtempSync(join(tmpdir(), 'cic-svc-'));
let seq = 0;

async function setup(limits: Partial<ServiceLimits> = {}) {
  const rt = new FakeRuntime();
  const clock = new FakeClock();
  const logs: Array<Record<string, any>> = [];
  const log = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l)) });
  const svc = new DeviceService({ runtime: rt, info: INFO, clock, log, limits });
  const path = join(dir, `s${++seq}.sock`);
  await svc.listen(path);
  const clients: SocketClient[] = [];
  const connect = async (o?: { paused?: boolean }) => {
    const c = await SocketClient.connect(path, o);
    clients.push(c);
    await until(() => svc.stats().accepted + svc.stats().refusedConnections >= clients.length, 'the service to accept');
    return c;
  };
  const close = async () => {
    for (const c of clients) c.destroy();
    await svc.close();
  };
  const logged = (code: string) => logs.some((l) => l.code === code);
  return { rt, clock, logs: () => logs, logged, svc, path, connect, close };
}

test('describe, ping, status; data inline and as a block; one byte at a time; three frames in one write', async () => {
  const { connect, close, path } = await setup();
  try {
    assert.is(statSync(path).mode & 0o777, 0o660, 'socket mode 0660');
    const c = await connect();
    const info = await c.ask('describe', undefined, 'info');
    assert.equal(info.data, INFO);
    assert.equal((await c.ask('ping', { text: 'hi' }, 'pong')).data, { text: 'hi' });
    const from = c.frames.length;
    c.send('ping', { text: 'inline' }, undefined, { inline: true });
    assert.equal((await c.next('pong', () => true, from)).data, { text: 'inline' });
    const st = await c.ask('status', undefined, 'status');
    assert.equal(Object.keys(st.data), ['state', 'loggedIn', 'deviceId', 'tokenExpiresAt', 'connectedSince', 'lastPingRttMs', 'reconnects', 'queuedEvents', 'version']);
    assert.is(st.data.state, 'ready');

    // One byte per write: the frame still decodes.
    const bytes = frameBytes('ping', { text: 'slow' });
    const before = c.frames.length;
    for (const b of bytes) {
      c.raw(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal((await c.next('pong', () => true, before)).data, { text: 'slow' });
    // Three frames in one write: three answers, in order.
    const mark = c.frames.length;
    c.raw(Buffer.concat([frameBytes('ping', { text: '1' }), frameBytes('describe'), frameBytes('ping', { text: '3' }, undefined, { inline: true })]));
    await c.next('pong', (f) => f.data.text === '3', mark);
    assert.equal(c.types(mark), ['pong', 'info', 'pong']);
    // Every header the runtime wrote carries the version.
    assert.ok(c.frames.every((f) => f.version === '1.6.2'));
  } finally {
    await close();
  }
});

test('subscribe: the current state at once, then state changes, directives and streamed attachments', async () => {
  const { rt, connect, close } = await setup();
  try {
    const sub = await connect();
    const other = await connect();
    sub.send('subscribe');
    assert.is((await sub.next('state')).data.state, 'ready');
    rt.setState({ state: 'reconnecting', code: 'H2_PING_TIMEOUT' });
    const st = await sub.next('state', (f) => f.data.state === 'reconnecting');
    assert.is(st.data.code, 'H2_PING_TIMEOUT');
    const d = rt.directive('SpeechSynthesizer', 'Speak', { payload: { url: 'cid:a1' } });
    const got = await sub.next('directive');
    assert.equal(got.data, { directive: d.directive, source: 'downchannel' });
    const stream = rt.attachment({ contentId: 'a1', source: 'downchannel', directiveMessageId: d.directive.header.messageId });
    const parts = [Buffer.alloc(1000, 1), Buffer.alloc(70_000, 2), Buffer.alloc(5, 3)];
    for (const p of parts) stream.push(p);
    stream.push(null);
    const end = await sub.next('attachment-end');
    assert.equal(end.data, { contentId: 'a1', messageId: d.directive.header.messageId, bytes: 71_005 });
    const chunks = sub.frames.filter((f) => f.type === 'attachment-chunk');
    assert.ok(chunks.every((f) => f.data.contentId === 'a1' && f.data.messageId === d.directive.header.messageId));
    assert.ok(Buffer.concat(chunks.map((f) => f.payload!)).equals(Buffer.concat(parts)), 'the bytes arrive whole and in order');
    assert.ok(chunks.every((f) => f.payload!.length <= 64 * 1024), 'outbound payloads are cut to 64 KiB');
    // The client that did not subscribe heard nothing of it.
    assert.equal((await other.ask('ping', {}, 'pong')).type, 'pong');
    assert.equal(other.types(), ['pong']);
  } finally {
    await close();
  }
});

test('cic-event: event-sent / event-failed to the sender; its answers routed to it (by event and by dialog), never twice', async () => {
  const { rt, connect, close } = await setup();
  try {
    const sender = await connect();
    const bystander = await connect();
    const sub = await connect();
    sub.send('subscribe');
    await sub.next('state');

    sender.send('cic-event', { namespace: 'TextRecognizer', name: 'Recognize', payload: { text: 'hi' }, dialogRequestId: 'dlg-1', id: 'e1' });
    await until(() => rt.events.length === 1, 'the event');
    const ev = rt.events[0]!;
    assert.equal(ev.event, { namespace: 'TextRecognizer', name: 'Recognize', payload: { text: 'hi' }, dialogRequestId: 'dlg-1' });
    // Its own response stream (by eventMessageId), a downchannel directive of its dialog, and one of another dialog.
    rt.directive('SpeechSynthesizer', 'Speak', { eventMessageId: ev.messageId, dialogRequestId: 'dlg-1' });
    rt.directive('Alerts', 'SetAlert', { dialogRequestId: 'dlg-1' });
    rt.directive('Other', 'Thing', { dialogRequestId: 'dlg-other' });
    ev.resolve({ status: 200 });
    const sent = await sender.next('event-sent');
    assert.equal(sent.data, { id: 'e1', messageId: ev.messageId, status: 200 });
    assert.equal(sender.frames.filter((f) => f.type === 'directive').map((f) => (f.data.directive as any).header.name), ['Speak', 'SetAlert']);
    assert.equal(sender.frames.find((f) => f.type === 'directive')!.data.source, 'event');
    await sub.next('directive', (f) => (f.data.directive as any).header.name === 'Thing');
    assert.equal(bystander.types(), [], 'a client that neither sent nor subscribed hears nothing');

    // A subscribed sender gets each of its answers once.
    const mark = sub.frames.length;
    sub.send('cic-event', { namespace: 'TextRecognizer', name: 'Recognize', payload: {}, dialogRequestId: 'dlg-2', id: 7 });
    await until(() => rt.events.length === 2, 'the second event');
    const ev2 = rt.events[1]!;
    const answer = rt.directive('SpeechSynthesizer', 'Speak', { eventMessageId: ev2.messageId, dialogRequestId: 'dlg-2' });
    ev2.resolve({ status: 200, directives: [answer] });
    await sub.next('event-sent', () => true, mark);
    assert.is(sub.frames.slice(mark).filter((f) => f.type === 'directive').length, 1, 'delivered once, not once per route');

    // A directive the event returned that no route reached (no eventMessageId, no dialog) still reaches its sender.
    const m2 = sender.frames.length;
    sender.send('cic-event', { namespace: 'System', name: 'SynchronizeState', id: 'sync' });
    await until(() => rt.events.length === 3, 'the third event');
    const quiet = rt.directive('System', 'Report', { source: 'event' });
    rt.events[2]!.resolve({ status: 200, directives: [quiet] });
    await sender.next('event-sent', () => true, m2);
    assert.equal(sender.types(m2), ['directive', 'event-sent']);

    // Failures: a rejected event, and one refused before it left (no messageId).
    const m3 = sender.frames.length;
    sender.send('cic-event', { namespace: 'Test', name: 'Fails', id: 'f' });
    await until(() => rt.events.length === 4, 'the fourth event');
    rt.events[3]!.reject(new CicError('CIC_EVENT_FAILED', 'in flight'));
    assert.equal((await sender.next('event-failed', () => true, m3)).data, { id: 'f', messageId: rt.events[3]!.messageId, code: 'CIC_EVENT_FAILED' });
    rt.refuse = new CicError('SOCKET_NOT_READY', 'the runtime is waiting for login');
    const refused = await sender.ask('cic-event', { namespace: 'Test', name: 'Early', id: 'r' }, 'event-failed');
    assert.equal(refused.data, { id: 'r', messageId: null, code: 'SOCKET_NOT_READY', text: 'the runtime is waiting for login' });
  } finally {
    await close();
  }
});

test('live audio: chunks stream into the event as they arrive, audio-stop ends the part; the source is not replayable', async () => {
  const { rt, connect, close } = await setup();
  try {
    const mic = await connect();
    mic.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: { profile: 'CLOSE_TALK' }, dialogRequestId: 'd-a', audio: true, id: 'u' });
    await until(() => rt.events.length === 1, 'the event');
    const ev = rt.events[0]!;
    assert.is(typeof ev.event.audio, 'object', 'an iterable, not a function: a 401 cannot resend live audio');
    const reading = ev.readAudio();
    mic.send('audio-start', { rate: 16000, width: 2, channels: 1 });
    const sent: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const pcm = Buffer.alloc(640, i + 1);
      sent.push(pcm);
      mic.send('audio-chunk', { rate: 16000, width: 2, channels: 1 }, pcm);
    }
    mic.send('audio-stop');
    const got = await reading;
    assert.not.ok(got.error);
    assert.ok(Buffer.concat(got.chunks).equals(Buffer.concat(sent)));
    ev.resolve({ status: 200 });
    await mic.next('event-sent');
    // After audio-stop there is no upload: a chunk is an error, and the client goes on.
    const err = await mic.ask('audio-chunk', { rate: 16000, width: 2, channels: 1 }, 'error');
    assert.is(err.data.code, 'SOCKET_AUDIO_STATE');
    assert.is((await mic.ask('ping', {}, 'pong')).type, 'pong');
  } finally {
    await close();
  }
});

test('live audio: StopCapture ends the upload at once, reaches the client, later chunks dropped until audio-stop', async () => {
  const { rt, connect, close } = await setup();
  try {
    const mic = await connect();
    mic.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: {}, dialogRequestId: 'd-s', audio: true });
    await until(() => rt.events.length === 1, 'the event');
    const ev = rt.events[0]!;
    const reading = ev.readAudio();
    mic.send('audio-chunk', {}, Buffer.alloc(100, 1));
    await until(() => ev.event.audio !== undefined && mic.frames.length === 0 && true, 'first chunk sent');
    // StopCapture on the downchannel, for this dialog.
    rt.directive('SpeechRecognizer', 'StopCapture', { dialogRequestId: 'd-s' });
    const stop = await mic.next('directive');
    assert.is((stop.data.directive as any).header.name, 'StopCapture');
    const got = await reading;
    assert.not.ok(got.error, 'the part ended cleanly');
    // Chunks after StopCapture are dropped (no error: the client could not know yet).
    const mark = mic.frames.length;
    for (let i = 0; i < 3; i++) mic.send('audio-chunk', {}, Buffer.alloc(100, 9));
    mic.send('audio-stop');
    assert.is((await mic.ask('ping', {}, 'pong')).type, 'pong');
    assert.equal(mic.types(mark), ['pong'], 'no error for the dropped chunks');
    assert.ok(got.chunks.every((c) => c[0] === 1), 'nothing after StopCapture reached the event');
    ev.resolve({ status: 200 });
    await mic.next('event-sent');
  } finally {
    await close();
  }
});

test('live audio: StopCapture on the event\'s own stream (by eventMessageId) ends it too', async () => {
  const { rt, connect, close } = await setup();
  try {
    const mic = await connect();
    mic.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: {}, dialogRequestId: 'd-e', audio: true });
    await until(() => rt.events.length === 1, 'the event');
    const ev = rt.events[0]!;
    const reading = ev.readAudio();
    rt.directive('SpeechRecognizer', 'StopCapture', { eventMessageId: ev.messageId });
    assert.not.ok((await reading).error);
    await mic.next('directive');
  } finally {
    await close();
  }
});

test('live audio is bounded: a full queue stops reading the client until the upload takes more', async () => {
  const { rt, svc, connect, close } = await setup({ audioQueueChunks: 4 });
  try {
    const mic = await connect();
    mic.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: {}, dialogRequestId: 'd-b', audio: true });
    await until(() => rt.events.length === 1, 'the event');
    for (let i = 0; i < 12; i++) mic.send('audio-chunk', {}, Buffer.alloc(320, i + 1));
    mic.send('audio-stop');
    await until(() => svc.stats().sessions[0]!.readingPaused, 'reading paused on a full upload queue');
    const got = await rt.events[0]!.readAudio();
    assert.is(got.chunks.length, 12, 'every chunk arrived once reading resumed');
    assert.equal(got.chunks.map((c) => c[0]), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.not.ok(svc.stats().sessions[0]!.readingPaused);
  } finally {
    await close();
  }
});

test('a client that disconnects mid-upload cancels its event with SOCKET_CLIENT_GONE (logged)', async () => {
  const { rt, connect, close, logged, svc } = await setup();
  try {
    const mic = await connect();
    const other = await connect();
    mic.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: {}, dialogRequestId: 'd-x', audio: true });
    await until(() => rt.events.length === 1, 'the event');
    const reading = rt.events[0]!.readAudio();
    mic.send('audio-chunk', {}, Buffer.alloc(320, 1));
    await until(() => svc.stats().sessions.length === 2, 'both sessions');
    mic.destroy();
    const got = await reading;
    assert.is(got.error?.code, 'SOCKET_CLIENT_GONE');
    assert.ok(logged('SOCKET_CLIENT_GONE'));
    // What the event sender does with an audio source that throws: the event fails.
    rt.events[0]!.reject(new CicError('CIC_EVENT_FAILED', 'the audio source failed'));
    await until(() => svc.stats().clients === 1, 'the session to go');
    assert.is((await other.ask('ping', {}, 'pong')).type, 'pong');
  } finally {
    await close();
  }
});

test('login: logged-in, terms, or a coded error; the secret is never sent back', async () => {
  const { rt, connect, close } = await setup();
  try {
    const c = await connect();
    const seen: unknown[] = [];
    rt.onLogin = async (r) => {
      seen.push(r);
      if ('code' in r) return { kind: 'logged-in', deviceId: 'dev-9', expiresAt: '2027-01-01T00:00:00.000Z' };
      if (r.accountToken === 'acct-needs-terms-0001') return { kind: 'terms', uri: 'https://terms.example/agree', code: 'terms-code-1' };
      throw new CicError('AUTH_UNAUTHORIZED', 'the account token was refused (HTTP 401)');
    };
    assert.equal((await c.ask('login', { code: 'code-secret-0001' }, 'logged-in')).data, { deviceId: 'dev-9', expiresAt: '2027-01-01T00:00:00.000Z' });
    assert.equal((await c.ask('login', { accountToken: 'acct-needs-terms-0001' }, 'terms')).data, { uri: 'https://terms.example/agree', code: 'terms-code-1' });
    assert.equal((await c.ask('login', { accountToken: 'acct-refused-0001' }, 'error')).data.code, 'AUTH_UNAUTHORIZED');
    assert.equal(seen, [{ code: 'code-secret-0001' }, { accountToken: 'acct-needs-terms-0001' }, { accountToken: 'acct-refused-0001' }]);
    for (const bad of [{}, { code: 'a', accountToken: 'b' }, { code: 5 }, { code: 'with space' }, { code: 'x', extra: 1 }]) {
      assert.is((await c.ask('login', bad, 'error')).data.code, 'SOCKET_BAD_MESSAGE', JSON.stringify(bad));
    }
    const text = c.received.toString('latin1');
    for (const s of ['code-secret-0001', 'acct-refused-0001']) assert.not.ok(text.includes(s), 'no secret echoed');
  } finally {
    await close();
  }
});

test('unknown type and bad fields: error {code, text}, and the client may go on', async () => {
  const { connect, close, logged } = await setup();
  try {
    const c = await connect();
    assert.equal((await c.ask('transcribe', {}, 'error')).data, { code: 'SOCKET_UNKNOWN_TYPE', text: 'unknown message type "transcribe"' });
    assert.is((await c.ask('constructor', {}, 'error')).data.code, 'SOCKET_UNKNOWN_TYPE');
    assert.is((await c.ask('cic-event', { namespace: 'A' }, 'error')).data.code, 'SOCKET_BAD_MESSAGE');
    assert.is((await c.ask('cic-event', { namespace: 'A', name: 'B', payload: [] }, 'error')).data.code, 'SOCKET_BAD_MESSAGE');
    assert.is((await c.ask('cic-event', { namespace: 'A', name: 'B', bogus: 1 }, 'error')).data.code, 'SOCKET_BAD_MESSAGE');
    assert.is((await c.ask('audio-chunk', {}, 'error')).data.code, 'SOCKET_AUDIO_STATE');
    assert.is((await c.ask('ping', {}, 'pong')).type, 'pong');
    assert.ok(logged('SOCKET_UNKNOWN_TYPE') && logged('SOCKET_BAD_MESSAGE'));
  } finally {
    await close();
  }
});

for (const [what, bytes, code] of [
  ['malformed JSON', Buffer.from('{"type": "ping", oops}\n'), 'SOCKET_BAD_FRAME'],
  ['a missing type', Buffer.from('{"data": {"text": "x"}}\n'), 'SOCKET_BAD_FRAME'],
  ['an oversized data block', Buffer.from(`{"type":"ping","data_length":${70 * 1024}}\n`), 'SOCKET_FRAME_TOO_LARGE'],
  ['an oversized payload', Buffer.from(`{"type":"audio-chunk","payload_length":${300 * 1024}}\n`), 'SOCKET_FRAME_TOO_LARGE'],
] as const) {
  test(`${what}: ${code}, that client disconnected and logged, the others untouched`, async () => {
    const { connect, close, logged, svc } = await setup();
    try {
      const bad = await connect();
      const good = await connect();
      bad.raw(Buffer.concat([frameBytes('ping', { text: 'before' }), bytes]));
      const err = await bad.next('error');
      assert.is(err.data.code, code);
      assert.is(typeof err.data.text, 'string');
      assert.equal(bad.types(), ['pong', 'error'], 'the frame before the bad one was answered');
      await bad.waitClosed();
      assert.ok(logged(code));
      assert.is((await good.ask('ping', { text: 'still' }, 'pong')).data.text, 'still');
      await until(() => svc.stats().clients === 1, 'the bad session gone');
    } finally {
      await close();
    }
  });
}

test('a truncated frame: at the client\'s EOF, and when it stalls mid-frame (partial-frame timeout, fake clock)', async () => {
  const { connect, close, clock, logged } = await setup({ partialFrameTimeoutMs: 10_000 });
  try {
    const eof = await connect();
    eof.raw('{"type":"ping","data_length":20}\n{"text"');
    eof.socket.end();
    assert.is((await eof.next('error')).data.code, 'SOCKET_BAD_FRAME');
    await eof.waitClosed();

    const stall = await connect();
    const good = await connect();
    stall.raw('{"type":"audio-chunk","payload_length":100}\n' + 'x'.repeat(10));
    await until(() => clock.pending > 0, 'the partial-frame timer');
    clock.advance(9_999);
    await flushMicrotasks();
    assert.is(stall.frames.length, 0, 'not before the deadline');
    clock.advance(1);
    const err = await stall.next('error');
    assert.is(err.data.code, 'SOCKET_BAD_FRAME');
    assert.match(String(err.data.text), /incomplete/);
    await stall.waitClosed();
    assert.ok(logged('SOCKET_BAD_FRAME'));
    assert.is((await good.ask('ping', {}, 'pong')).type, 'pong');
  } finally {
    await close();
  }
});

test('a flood of connections: the 17th gets SOCKET_TOO_MANY_CLIENTS and is closed; the 16 carry on', async () => {
  const { connect, close, logged, svc } = await setup();
  try {
    const ok: SocketClient[] = [];
    for (let i = 0; i < 16; i++) ok.push(await connect());
    const extra = await connect();
    assert.is((await extra.next('error')).data.code, 'SOCKET_TOO_MANY_CLIENTS');
    await extra.waitClosed();
    assert.ok(logged('SOCKET_TOO_MANY_CLIENTS'));
    assert.is(svc.stats().refusedConnections, 1);
    const answers = await Promise.all(ok.map((c) => c.ask('ping', {}, 'pong')));
    assert.is(answers.length, 16);
    // A slot freed is a slot taken.
    ok[0]!.destroy();
    await until(() => svc.stats().clients === 15, 'a slot freed');
    const next = await connect();
    assert.is((await next.ask('ping', {}, 'pong')).type, 'pong');
  } finally {
    await close();
  }
});

test('a flood of messages: SOCKET_FLOOD past the burst, disconnected; the rate refills on the clock', async () => {
  const { connect, close, logged, clock } = await setup({ messageBurst: 50, messageRatePerS: 10 });
  try {
    const calm = await connect();
    // 50 at once is the burst; one second later 10 more are fine.
    calm.raw(Buffer.concat(Array.from({ length: 50 }, () => frameBytes('ping'))));
    await until(() => calm.frames.length === 50, '50 pongs');
    clock.advance(1000);
    calm.raw(Buffer.concat(Array.from({ length: 10 }, () => frameBytes('ping'))));
    await until(() => calm.frames.length === 60, '10 more pongs');

    const flood = await connect();
    flood.raw(Buffer.concat(Array.from({ length: 80 }, () => frameBytes('ping'))));
    const err = await flood.next('error');
    assert.is(err.data.code, 'SOCKET_FLOOD');
    assert.is(flood.types().filter((t) => t === 'pong').length, 50);
    await flood.waitClosed();
    assert.ok(logged('SOCKET_FLOOD'));
    clock.advance(1000);
    assert.is((await calm.ask('ping', {}, 'pong')).type, 'pong');
  } finally {
    await close();
  }
});

test('a slow-but-reading subscriber pauses the attachment stream; it resumes as the client reads', async () => {
  const { rt, svc, connect, close } = await setup({ outboundHighWaterBytes: 64 * 1024 });
  try {
    const slow = await connect();
    slow.send('subscribe');
    await slow.next('state');
    slow.socket.pause();
    const stream = rt.attachment({ contentId: 'big', source: 'downchannel' });
    const total = 4 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 5);
    let pushed = 0;
    // Push as a producer with back-pressure would: only while the stream wants more.
    const produce = () => {
      while (pushed < total) {
        pushed += piece.length;
        if (!stream.push(piece)) return;
      }
      stream.push(null);
    };
    stream._read = produce;
    produce();
    await until(() => svc.stats().sessions[0]!.congested, 'the subscriber congested');
    await until(() => stream.isPaused(), 'the attachment stream paused');
    assert.ok(pushed < total, 'the producer was held back');
    slow.socket.resume();
    const end = await slow.next('attachment-end', () => true, 0, 30_000);
    assert.is(end.data.bytes, total);
    const got = slow.frames.filter((f) => f.type === 'attachment-chunk').reduce((n, f) => n + f.payload!.length, 0);
    assert.is(got, total, 'every byte reached the slow reader');
  } finally {
    await close();
  }
});

test('a subscriber that never reads: SOCKET_SLOW_CLIENT after the stall timeout (fake clock); the others get the attachment whole', async () => {
  const { rt, svc, connect, close, clock, logged } = await setup({ outboundHighWaterBytes: 64 * 1024, stallTimeoutMs: 5_000 });
  try {
    const stuck = await connect();
    stuck.send('subscribe');
    await stuck.next('state');
    stuck.socket.pause();
    const fast = await connect();
    fast.send('subscribe');
    await fast.next('state');
    const stream = rt.attachment({ contentId: 'big', source: 'downchannel' });
    const total = 2 * 1024 * 1024;
    for (let n = 0; n < total; n += 64 * 1024) stream.push(Buffer.alloc(64 * 1024, 7));
    stream.push(null);
    await until(() => svc.stats().sessions.some((s) => s.congested), 'the stuck subscriber congested');
    await until(() => stream.isPaused(), 'the attachment paused for it');
    clock.advance(4_999);
    await flushMicrotasks();
    assert.ok(stuck.isOpen, 'not before the stall timeout');
    clock.advance(1);
    await until(() => svc.stats().clients === 1, 'the stuck subscriber disconnected');
    // It notices only when it reads again (a paused socket does not see the close).
    stuck.socket.resume();
    await stuck.waitClosed();
    assert.ok(stuck.frames.filter((f) => f.type === 'attachment-chunk').length > 0);
    assert.not.ok(stuck.frames.some((f) => f.type === 'attachment-end'), 'it was cut off mid-attachment');
    assert.ok(logged('SOCKET_SLOW_CLIENT'));
    const end = await fast.next('attachment-end', () => true, 0, 30_000);
    assert.is(end.data.bytes, total);
    assert.is(fast.frames.filter((f) => f.type === 'attachment-chunk').reduce((n, f) => n + f.payload!.length, 0), total);
    assert.is((await fast.ask('ping', {}, 'pong')).type, 'pong');
  } finally {
    await close();
  }
});

test('a client that never reads: reading it pauses at the high-water mark, then SOCKET_SLOW_CLIENT (stall timeout, and hard limit)', async () => {
  const { rt, svc, connect, close, logged, clock, logs } = await setup({ outboundHighWaterBytes: 16 * 1024, outboundHardLimitBytes: 256 * 1024, stallTimeoutMs: 5_000, messageBurst: 1_000_000 });
  try {
    const deaf = await connect({ paused: true });
    const good = await connect();
    // Pings whose pongs it never reads: reading it stops at the high-water mark, so its flood
    // cannot grow our queue; its own writes then block in the kernel.
    const ping = frameBytes('ping', { text: 'x'.repeat(1000) });
    const deafSession = () => svc.stats().sessions.find((s) => s.id === 1);
    for (let i = 0; i < 2000 && !deafSession()?.readingPaused; i++) {
      if (!deaf.socket.write(ping)) await new Promise((r) => setImmediate(r));
    }
    await until(() => deafSession()?.readingPaused === true, 'reading of the deaf client paused');
    assert.ok(deafSession()!.queuedBytes < 256 * 1024, 'its queue stays below the hard limit while paused');
    assert.is((await good.ask('ping', {}, 'pong')).type, 'pong');
    clock.advance(5_000);
    await until(() => deafSession() === undefined, 'the deaf client disconnected');
    assert.ok(logged('SOCKET_SLOW_CLIENT'));

    // A subscriber that never reads while directives keep coming: past the hard limit at once.
    const sink = await connect({ paused: true });
    sink.send('subscribe');
    await until(() => svc.stats().sessions.some((s) => s.subscribed), 'subscribed');
    const mark = logs().length;
    for (let i = 0; i < 400 && svc.stats().sessions.some((s) => s.subscribed); i++) rt.directive('Test', 'Big', { payload: { blob: 'y'.repeat(4096) } });
    await until(() => !svc.stats().sessions.some((s) => s.subscribed), 'the sink disconnected');
    assert.ok(logs().slice(mark).some((l) => l.code === 'SOCKET_SLOW_CLIENT' && /more than/.test(l.text)), 'the hard limit, not the timer');
    assert.is((await good.ask('ping', {}, 'pong')).type, 'pong');
  } finally {
    await close();
  }
});

test.run();
