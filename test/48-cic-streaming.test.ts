// The CIC client's answers stream end to end (real TLS, the CIC emulator, the client's timers on
// a fake clock): a directive is delivered while its exchange goes on, a StopCapture on the
// event's own stream arrives during the upload, an attachment's bytes reach its consumer as
// they arrive with HTTP/2 flow control holding the server back while the consumer pauses, a
// consumer that never reads loses its stream without freezing the downchannel, nobody
// listening discards, and a FIFO is uploaded as it fills.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CicClient, type CicClientOptions } from '../src/cic/client';
import { readDirectives } from '../src/cic/directive-reader';
import { ATTACHMENT_HIGH_WATER_BYTES } from '../src/cic/attachment-sink';
import type { IncomingAttachment, ReceivedDirective } from '../src/cic/types';
import { CicError } from '../src/errors';
import { Connection, DEFAULT_STREAM_WINDOW } from '../src/h2/connection';
import { audioFileSource } from '../src/cli/audio-source';
import { FakeClock } from './support/fake-clock';
import { testPki } from './support/certs';
import { directive, startCicEmulator, type CicEmulatorOptions } from './emulator/cic-server';
import type { FrameRelay } from './emulator/frame-relay';

const pki = testPki();
const STALL_MS = 30_000;

/** Polls a condition (a bounded failure guard, not a synchronisation delay). */
async function until(pred: () => boolean, what: string, rounds = 5000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function setup(extra: Partial<CicClientOptions> = {}, emuOpts: CicEmulatorOptions = {}) {
  const emu = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, ...emuOpts });
  const clock = new FakeClock();
  let conn: Connection | undefined;
  const client = new CicClient({
    url: emu.url,
    userAgent: 'Test/Client/1.0.0 (Linux;hw)',
    tokens: { getAccessToken: async () => 'token-streaming-1', onUnauthorized: async () => 'token-streaming-2' },
    readDirectives,
    ca: pki.ca,
    caMode: 'only',
    clock,
    // Keepalive out of the way: these tests move the fake clock by whole stall periods.
    pingIntervalMs: 3_600_000,
    attachmentStallMs: STALL_MS,
    connect: async (o) => (conn = await Connection.connect(o)),
    ...extra,
  });
  const directives: ReceivedDirective[] = [];
  const problems: CicError[] = [];
  client.on('directive', (d) => directives.push(d));
  client.on('problem', (e) => problems.push(e));
  client.start();
  await client.ready();
  const relay = (): FrameRelay => [...emu.connections.values()].at(-1)!.relay!;
  const sent = (sid: number) => relay().stats.dataToClient.get(sid) ?? 0;
  const granted = (sid: number) => relay().stats.windowUpdatesFromClient.get(sid) ?? 0;
  const done = async () => {
    await client.stop();
    await emu.stop();
  };
  return { emu, clock, client, directives, problems, conn: () => conn!, relay, sent, granted, done, names: () => directives.map((d) => d.directive.header.name) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test("an event's directive is delivered while its exchange goes on, with the event's messageId; EventResult still lists them all", async () => {
  const t = await setup();
  try {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t.emu.setResponder('Test.Ask', async (ctx) => {
      ctx.answerEarly([directive('Test', 'First')]);
      await gate;
      return { directives: [directive('Test', 'Last')] };
    });
    let settled = false;
    const sending = t.client.sendEvent({ namespace: 'Test', name: 'Ask' });
    void sending.finally(() => (settled = true));
    await until(() => t.names().includes('First'), 'the first directive');
    assert.is(settled, false, 'delivered before the exchange ended');
    const first = t.directives.find((d) => d.directive.header.name === 'First')!;
    assert.equal([first.source, first.eventMessageId], ['event', sending.messageId]);
    release();
    const r = await sending;
    assert.equal(r.directives.map((d) => d.directive.header.name), ['First', 'Last']);
    assert.equal(t.names().filter((n) => n !== 'Hello'), ['First', 'Last'], 'each delivered once');
  } finally {
    await t.done();
  }
});

test("StopCapture on the event's own stream arrives while the upload is still going, before the audio iterable finished", async () => {
  const t = await setup({}, { stopCaptureAfterBytes: 6_400, stopCaptureOn: 'event' });
  try {
    let stop: ReceivedDirective | undefined;
    let audioFinished = false;
    let audioFinishedAtStop: boolean | undefined;
    t.client.on('directive', (d) => {
      if (d.directive.header.name !== 'StopCapture') return;
      stop = d;
      audioFinishedAtStop = audioFinished;
    });
    const MAX_CHUNKS = 200; // 20 s of audio: far more than the 6,400-byte threshold
    let chunks = 0;
    async function* microphone() {
      try {
        for (; chunks < MAX_CHUNKS && !stop; chunks++) {
          yield Buffer.alloc(3_200, chunks); // 100 ms of 16 kHz 16-bit mono
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        audioFinished = true;
      }
    }
    const sending = t.client.sendEvent({ namespace: 'SpeechRecognizer', name: 'Recognize', dialogRequestId: 'dlg-s', payload: {}, audio: microphone() });
    const r = await sending;
    assert.ok(stop, 'StopCapture arrived');
    assert.equal([stop!.source, stop!.eventMessageId, stop!.directive.header.dialogRequestId], ['event', sending.messageId, 'dlg-s']);
    assert.is(audioFinishedAtStop, false, 'delivered while the audio was still being uploaded');
    assert.ok(chunks < MAX_CHUNKS, `the microphone stopped after ${chunks} chunks`);
    const ev = t.emu.events[0]!;
    assert.is(ev.audioBytesAtStopCapture, 6_400);
    assert.is(ev.audioBytes, chunks * 3_200);
    assert.equal(r.directives.map((d) => d.directive.header.name), ['StopCapture', 'Speak']);
  } finally {
    await t.done();
  }
});

test('a 10 MB attachment through a paused, then slow reader: the server cannot send beyond the window while paused; bytes in flight stay bounded; everything arrives', async () => {
  const t = await setup();
  try {
    const TOTAL = 10 * 1024 * 1024;
    const big = randomBytes(TOTAL);
    t.emu.setResponder('Test.BigAnswer', async (ctx) => {
      await ctx.bodyEnded;
      return { directives: [directive('SpeechSynthesizer', 'Speak', { url: 'cid:big' })], attachments: [{ contentId: 'big', data: big }] };
    });
    let att: IncomingAttachment | undefined;
    t.client.on('attachment', (a) => (att = a)); // kept, not read: paused
    const sending = t.client.sendEvent({ namespace: 'Test', name: 'BigAnswer' });
    await until(() => att !== undefined && t.emu.events.length === 1, 'the attachment to start');
    const sid = t.emu.events[0]!.streamId;
    // The server fills exactly the window the client granted, then stops.
    await until(() => t.sent(sid) === DEFAULT_STREAM_WINDOW + t.granted(sid), 'the stream window to fill');
    const [sentAtPause, grantedAtPause] = [t.sent(sid), t.granted(sid)];
    await t.conn().ping(5_000); // everything the client had to send before this PING has been sent
    await t.conn().ping(5_000);
    assert.is(t.granted(sid), grantedAtPause, 'no WINDOW_UPDATE for the stream while its reader pauses');
    assert.is(t.sent(sid), sentAtPause, 'the server cannot send beyond the window');
    assert.ok(sentAtPause < TOTAL, `${sentAtPause} of ${TOTAL} bytes sent while paused`);
    assert.ok(att!.stream.readableLength <= ATTACHMENT_HIGH_WATER_BYTES + DEFAULT_STREAM_WINDOW);
    // One paused stream does not starve the connection: the downchannel goes on.
    t.emu.pushDirective(directive('Test', 'DuringPause'));
    await until(() => t.names().includes('DuringPause'), 'a downchannel directive while the attachment is paused');

    // A slow reader: 16 KiB per turn of the event loop.
    const chunks: Buffer[] = [];
    let read = 0;
    let maxAhead = 0;
    let maxBuffered = 0;
    const s = att!.stream;
    let ended = false;
    s.once('end', () => (ended = true));
    for (let turns = 0; !ended && turns < 200_000; turns++) {
      const c = s.read(Math.min(16 * 1024, s.readableLength || 16 * 1024)) as Buffer | null;
      if (c) {
        chunks.push(c);
        read += c.length;
      }
      maxBuffered = Math.max(maxBuffered, s.readableLength);
      // Bytes the server got out ahead of the consumer: flow control keeps them to one window
      // (plus the stream's buffer and the JSON part before the attachment).
      maxAhead = Math.max(maxAhead, t.sent(sid) - read);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(ended, 'the attachment ended');
    assert.is(read, TOTAL);
    assert.is(sha(Buffer.concat(chunks)), sha(big), 'every byte, in order');
    assert.ok(maxBuffered <= ATTACHMENT_HIGH_WATER_BYTES + DEFAULT_STREAM_WINDOW, `stream buffer peaked at ${maxBuffered}`);
    assert.ok(maxAhead <= DEFAULT_STREAM_WINDOW + ATTACHMENT_HIGH_WATER_BYTES + 4096, `server ran ${maxAhead} bytes ahead of the reader`);
    const r = await sending;
    assert.equal(r.directives.map((d) => d.directive.header.name), ['Speak']);
    assert.equal(r.directives[0]!.attachments, [{ contentId: 'big' }]);
  } finally {
    await t.done();
  }
});

test('a consumer that never reads: CIC_ATTACHMENT_STALLED after attachmentStallMs (fake clock), the rest discarded, later downchannel directives arrive', async () => {
  const t = await setup();
  try {
    const SIZE = 1024 * 1024;
    let att: IncomingAttachment | undefined;
    let streamError: unknown;
    t.client.on('attachment', (a) => {
      att = a;
      a.stream.on('error', (e) => (streamError = e)); // never reads
    });
    const dcSid = t.emu.downchannel!.streamId;
    t.emu.pushDirective(directive('SpeechSynthesizer', 'Speak', { url: 'cid:unread' }), [{ contentId: 'unread', data: Buffer.alloc(SIZE, 9) }]);
    await until(() => att !== undefined && t.sent(dcSid) === DEFAULT_STREAM_WINDOW + t.granted(dcSid), 'the downchannel window to fill');
    assert.ok(t.sent(dcSid) < SIZE, 'the server is held back');
    t.clock.advance(STALL_MS - 1);
    assert.not.ok(att!.stream.destroyed, 'not a millisecond early');
    assert.equal(t.problems, []);
    t.clock.advance(1);
    assert.ok(att!.stream.destroyed);
    assert.equal(t.problems.map((e) => e.code), ['CIC_ATTACHMENT_STALLED']);
    assert.equal([t.problems[0]!.details?.contentId, t.problems[0]!.details?.source], ['unread', 'downchannel']);
    // The rest of the part is consumed and discarded: the server sends it all, then the next directive.
    t.emu.pushDirective(directive('Test', 'After'));
    await until(() => t.names().includes('After'), 'the directive after the stalled attachment');
    assert.ok(t.sent(dcSid) > SIZE);
    await new Promise((r) => setImmediate(r));
    assert.ok(streamError instanceof CicError && streamError.code === 'CIC_ATTACHMENT_STALLED');
    assert.is(t.client.state, 'ready');
  } finally {
    await t.done();
  }
});

test('nobody listens to attachments: the bytes are counted and discarded, the directives around them arrive', async () => {
  const t = await setup();
  try {
    const SIZE = 3 * 1024 * 1024;
    const dcSid = t.emu.downchannel!.streamId;
    t.emu.pushDirective(directive('SpeechSynthesizer', 'Speak', { url: 'cid:nobody' }), [{ contentId: 'nobody', data: Buffer.alloc(SIZE, 1) }]);
    t.emu.pushDirective(directive('Test', 'After'));
    await until(() => t.names().includes('After'), 'the directive after the attachment');
    assert.equal(t.names(), ['Hello', 'Speak', 'After']);
    assert.equal(t.directives[1]!.attachments, [{ contentId: 'nobody' }]);
    assert.ok(t.sent(dcSid) > SIZE, 'every byte was taken off the wire');
    await t.conn().ping(5_000);
    assert.ok(t.granted(dcSid) >= t.sent(dcSid) - DEFAULT_STREAM_WINDOW, 'and given back to flow control');
    assert.equal(t.problems, []);
  } finally {
    await t.done();
  }
});

test('FIFO audio: read as it fills, uploaded chunk by chunk, not replayable; a regular file stays replayable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cic-fifo-'));
  const t = await setup({}, { stopCaptureAfterBytes: 1 << 30 });
  try {
    const fifo = join(dir, 'mic.fifo');
    execFileSync('mkfifo', [fifo]);
    const file = join(dir, 'utterance.raw');
    writeFileSync(file, Buffer.alloc(6_400, 3));
    assert.type(audioFileSource(file), 'function', 'a regular file is replayable');
    const audio = audioFileSource(fifo);
    assert.not.type(audio, 'function', 'a FIFO is live');
    const sending = t.client.sendEvent({ namespace: 'SpeechRecognizer', name: 'Recognize', dialogRequestId: 'dlg-f', payload: {}, audio });
    const writer = createWriteStream(fifo); // opens once the client opened its end for reading
    const CHUNK = 3_200;
    for (let i = 1; i <= 5; i++) {
      writer.write(Buffer.alloc(CHUNK, i));
      // The chunk reaches the server before the next one is even written: read as it fills.
      await until(() => (t.emu.events[0]?.audioBytes ?? 0) === i * CHUNK, `chunk ${i} at the server`);
    }
    writer.end();
    const r = await sending;
    assert.is(r.status, 200);
    assert.is(t.emu.events[0]!.audioBytes, 5 * CHUNK);
    assert.ok(t.emu.events[0]!.bodyComplete);
  } finally {
    await t.done();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('figure: first attachment byte on the wire → first byte out of a.stream, loopback', async () => {
  const t = await setup();
  try {
    const samples: number[] = [];
    for (let i = 0; i < 40; i++) {
      const marker = randomBytes(16);
      let onWire: number | undefined;
      let out: number | undefined;
      t.relay().onToClient = (bytes) => {
        if (onWire === undefined && bytes.includes(marker)) onWire = performance.now();
      };
      const got = new Promise<void>((resolve) => {
        t.client.once('attachment', (a) => {
          a.stream.once('data', () => {
            out = performance.now();
            resolve();
          });
          a.stream.resume();
        });
      });
      t.emu.pushDirective(directive('SpeechSynthesizer', 'Speak', { url: `cid:m${i}` }), [{ contentId: `m${i}`, data: Buffer.concat([marker, Buffer.alloc(4096)]) }]);
      await got;
      if (onWire !== undefined && out !== undefined) samples.push(out - onWire);
    }
    t.relay().onToClient = undefined;
    assert.ok(samples.length >= 30, `${samples.length} samples`);
    assert.ok(samples.every((ms) => ms >= 0), 'the byte leaves the server before it comes out');
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!.toFixed(3);
    console.log(`first attachment byte, wire → a.stream 'data': median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${q(1)} ms (${samples.length} samples, loopback TLS)`);
  } finally {
    await t.done();
  }
});

test.run();
