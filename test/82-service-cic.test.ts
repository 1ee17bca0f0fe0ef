// The device socket in front of the real runtime: token manager and CicClient against the auth
// and CIC emulators, over real TLS and a real Unix socket. Hello and state reach subscribers,
// an event's answers (directive, attachment bytes, event-sent) reach a sender that did not
// subscribe and nobody else, live audio streams into SpeechRecognizer.Recognize until CIC's
// StopCapture, a client that vanishes mid-upload costs only its own HTTP/2 stream, and bad
// clients leave the cloud connection, the token file and the other clients untouched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { AuthEmulator } from './emulator/auth-server';
import { fakeAudio, startCicEmulator, type CicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { startStack, STACK_DEVICE, type Stack } from './support/service-stack';
import { frameBytes, until, type SocketClient } from './support/socket-client';

const pki = testPki();
let auth: AuthEmulator;
let cic: CicEmulator;
let stack: Stack;
let sub: SocketClient;

test.before(async () => {
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  stack = await startStack(auth, cic);
  // Subscribed before the runtime starts: it sees the whole way up.
  sub = await stack.connect();
  sub.send('subscribe');
  await sub.next('state');
  await stack.supervisor.start();
  await stack.waitState('ready');
});

test.after(async () => {
  await stack.stop();
  await cic.stop();
  await auth.stop();
});

const secretsIn = (c: SocketClient) => [...auth.secrets].filter((s) => s.length >= 8 && c.received.includes(Buffer.from(s)));

test('a subscriber sees connecting → ready and Clova.Hello; status and describe answer from the live runtime', async () => {
  await sub.next('state', (f) => f.data.state === 'ready');
  // The snapshot sent on subscribe (before the runtime started), then each change.
  assert.equal(sub.frames.filter((f) => f.type === 'state').map((f) => f.data.state), ['connecting', 'connecting', 'ready']);
  const hello = await sub.next('directive', (f) => (f.data.directive as any).header.name === 'Hello');
  assert.is(hello.data.source, 'downchannel');
  const c = await stack.connect();
  const st = (await c.ask('status', undefined, 'status')).data;
  assert.is(st.state, 'ready');
  assert.is(st.loggedIn, true);
  assert.is(st.deviceId, STACK_DEVICE);
  assert.match(String(st.tokenExpiresAt), /^\d{4}-\d\d-\d\dT/);
  assert.match(String(st.connectedSince), /^\d{4}-\d\d-\d\dT/);
  assert.equal([st.reconnects, st.queuedEvents, st.version], [0, 0, '0.0.0-test']);
  assert.is((await c.ask('describe', undefined, 'info')).data.name, 'cic-runtime');
  assert.equal(secretsIn(c), []);
});

test('a text event: Speak and its audio bytes to the sender (not subscribed) and to subscribers, nobody else', async () => {
  const sender = await stack.connect();
  const bystander = await stack.connect();
  const subMark = sub.frames.length;
  sender.send('cic-event', { namespace: 'TextRecognizer', name: 'Recognize', payload: { text: 'weather' }, dialogRequestId: 'dlg-text-1', id: 'q1' });
  const sent = await sender.next('event-sent');
  assert.equal(sent.data, { id: 'q1', messageId: cic.events.at(-1)!.messageId, status: 200 });
  await sender.next('attachment-end');
  // The directive before its bytes; event-sent may come before an attachment's last chunk
  // (an attachment streams at the pace of its slowest reader).
  const types = sender.types();
  assert.ok(types.indexOf('directive') < types.indexOf('attachment-chunk'), types.join(','));
  const speak = sender.frames.find((f) => f.type === 'directive')!;
  const header = (speak.data.directive as any).header;
  assert.equal([header.namespace, header.name, header.dialogRequestId], ['SpeechSynthesizer', 'Speak', 'dlg-text-1']);
  const contentId = String((speak.data.directive as any).payload.url).slice(4);
  const end = sender.frames.find((f) => f.type === 'attachment-end')!;
  assert.equal(end.data, { contentId, messageId: header.messageId, bytes: 4096 });
  const bytes = Buffer.concat(sender.frames.filter((f) => f.type === 'attachment-chunk').map((f) => f.payload!));
  assert.ok(bytes.equals(fakeAudio()), 'the attachment arrives byte for byte');
  // The subscriber got the same directive and bytes, once.
  await sub.next('attachment-end', (f) => f.data.contentId === contentId, subMark);
  assert.is(sub.frames.slice(subMark).filter((f) => f.type === 'directive').length, 1);
  assert.equal(bystander.types(), []);
  assert.equal(secretsIn(sender), []);
});

test('live audio: chunks stream into SpeechRecognizer.Recognize; StopCapture ends the upload, later chunks dropped', async () => {
  const mic = await stack.connect();
  const before = cic.counters.sessions;
  mic.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }, dialogRequestId: 'dlg-voice-1', audio: true, id: 'v1' });
  mic.send('audio-start', { rate: 16000, width: 2, channels: 1 });
  // 6,400 bytes: the emulator sends StopCapture on the downchannel once it has them.
  for (let i = 0; i < 10; i++) mic.send('audio-chunk', { rate: 16000, width: 2, channels: 1 }, Buffer.alloc(640, i));
  const stop = await mic.next('directive', (f) => (f.data.directive as any).header.name === 'StopCapture');
  assert.is((stop.data.directive as any).header.dialogRequestId, 'dlg-voice-1');
  // The microphone had not heard yet: what it sends now is dropped, then it stops.
  for (let i = 0; i < 5; i++) mic.send('audio-chunk', { rate: 16000, width: 2, channels: 1 }, Buffer.alloc(640, 99));
  mic.send('audio-stop');
  const sent = await mic.next('event-sent');
  assert.is(sent.data.status, 200);
  const ev = cic.events.find((e) => e.messageId === sent.data.messageId)!;
  assert.is(ev.audioBytes, 6400, 'nothing after StopCapture reached CIC');
  assert.ok(ev.stopCaptureSent && ev.bodyComplete);
  await mic.next('attachment-end');
  assert.ok(stack.logs.some((l) => l.msg === 'live audio: chunks dropped after the upload ended' && l.dropped === 5));
  assert.is(cic.counters.sessions, before, 'same connection');
});

test('a client that disconnects mid-upload: its event is cancelled (stream reset), the connection and the others carry on', async () => {
  const mic = await stack.connect();
  const other = await stack.connect();
  const sessions = cic.counters.sessions;
  const n = cic.events.length;
  mic.send('cic-event', { namespace: 'SpeechRecognizer', name: 'Recognize', payload: {}, dialogRequestId: 'dlg-gone', audio: true });
  mic.send('audio-chunk', {}, Buffer.alloc(640, 1));
  await until(() => cic.events.length > n && cic.events.at(-1)!.audioBytes >= 640, 'the upload under way');
  mic.destroy();
  await until(() => stack.logs.some((l) => l.msg === 'live audio cancelled' && l.code === 'SOCKET_CLIENT_GONE'), 'the cancel logged');
  await until(() => stack.service.stats().sessions.every((s) => s.eventsInFlight === 0), 'the event settled');
  assert.not.ok(cic.events.at(-1)!.bodyComplete, 'the request body never completed');
  assert.is(stack.supervisor.status().state, 'ready');
  assert.is(cic.counters.sessions, sessions, 'no reconnect');
  const ok = await other.ask('cic-event', { namespace: 'System', name: 'SynchronizeState', payload: {}, id: 'after' }, 'event-sent');
  assert.is(ok.data.status, 204);
});

test('bad clients (malformed, oversized, flood, unknown type) leave the runtime, the token file and the others untouched', async () => {
  const tokenBytes = readFileSync(stack.tokenFile);
  const sessions = cic.counters.sessions;
  const good = await stack.connect();
  const results: string[] = [];
  for (const bytes of [
    Buffer.from('{"type": oops}\n'),
    Buffer.from('{"data":{}}\n'),
    Buffer.from(`{"type":"audio-chunk","payload_length":${1024 * 1024}}\n`),
    Buffer.concat(Array.from({ length: 1100 }, () => frameBytes('ping'))),
  ]) {
    const bad = await stack.connect();
    bad.raw(bytes);
    results.push(String((await bad.next('error')).data.code));
    await bad.waitClosed();
  }
  const unknown = await stack.connect();
  results.push(String((await unknown.ask('make-coffee', {}, 'error')).data.code));
  assert.equal(results, ['SOCKET_BAD_FRAME', 'SOCKET_BAD_FRAME', 'SOCKET_FRAME_TOO_LARGE', 'SOCKET_FLOOD', 'SOCKET_UNKNOWN_TYPE']);
  for (const code of results) assert.ok(stack.logs.some((l) => l.code === code), `${code} logged`);
  assert.is(stack.supervisor.status().state, 'ready');
  assert.is(cic.counters.sessions, sessions, 'same CIC session');
  assert.ok(readFileSync(stack.tokenFile).equals(tokenBytes), 'token file bytes unchanged');
  assert.is((await good.ask('ping', { text: 'ok' }, 'pong')).data.text, 'ok');
  assert.is((await unknown.ask('status', undefined, 'status')).data.state, 'ready', 'the unknown-type client went on');
  assert.equal(secretsIn(sub), []);
});

test.run();
