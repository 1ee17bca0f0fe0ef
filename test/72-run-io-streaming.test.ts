// The `run` line protocol over a streaming client: a directive line still carries each
// attachment's byte count (printed once the attachment has streamed in, in directive order,
// before the event's eventSent line), and stdin's audioFile may name a FIFO, read as it fills.
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attachRunIo } from '../src/cli/run-io';
import { DirectiveLines } from '../src/cli/directive-lines';
import type { IncomingAttachment, ReceivedDirective } from '../src/cic/types';
import { silentLogger } from '../src/log';
import { FakeRuntime } from './support/fake-runtime';

const tick = () => new Promise<void>((r) => setImmediate(r));

function received(name: string, refs: string[] = [], extra: Partial<ReceivedDirective> = {}): ReceivedDirective {
  return {
    directive: { header: { namespace: 'Test', name, messageId: `m-${name}` }, payload: refs.length ? { url: `cid:${refs[0]}` } : {} },
    attachments: refs.map((contentId) => ({ contentId })),
    source: 'downchannel',
    ...extra,
  };
}

function incoming(contentId: string, extra: Partial<IncomingAttachment> = {}): { a: IncomingAttachment; stream: Readable } {
  const stream = new Readable({ read() {} });
  return { a: { contentId, source: 'downchannel', stream, ...extra }, stream };
}

function collect() {
  const out: Array<Record<string, any>> = [];
  return { out, lines: new DirectiveLines((l) => out.push(JSON.parse(l))), names: () => out.map((o) => o.directive.header.name) };
}

test('a directive line waits for its attachment to stream in and carries its byte count; order is kept', async () => {
  const t = collect();
  t.lines.directive(received('Speak', ['a1']));
  t.lines.directive(received('StopCapture'));
  assert.equal(t.out, [], 'Speak waits for its audio; StopCapture waits behind it');
  const { a, stream } = incoming('a1');
  t.lines.attachment(a);
  stream.push(Buffer.alloc(1000));
  stream.push(Buffer.alloc(234));
  await tick();
  assert.equal(t.out, []);
  stream.push(null);
  await tick();
  assert.equal(t.names(), ['Speak', 'StopCapture']);
  assert.equal(t.out[0]!.attachments, [{ contentId: 'a1', bytes: 1234 }]);
  assert.is(t.out[1]!.attachments, undefined, 'no attachments key without attachments');
});

test('attachment before its directive; a failed attachment is left out; an event exchange that ends releases its lines', async () => {
  const t = collect();
  const first = incoming('early');
  t.lines.attachment(first.a);
  first.stream.push(Buffer.alloc(10));
  first.stream.push(null);
  await tick();
  t.lines.directive(received('Play', ['early']));
  assert.equal(t.out.map((o) => o.attachments), [[{ contentId: 'early', bytes: 10 }]]);

  const broken = incoming('broken');
  t.lines.directive(received('Speak', ['broken']));
  t.lines.attachment(broken.a);
  broken.stream.push(Buffer.alloc(5));
  broken.stream.destroy(new Error('cut'));
  await tick();
  assert.equal(t.names(), ['Play', 'Speak']);
  assert.is(t.out[1]!.attachments, undefined, 'an attachment that did not arrive whole is not listed');

  t.lines.directive(received('Answer', ['never'], { source: 'event', eventMessageId: 'ev-9' }));
  assert.equal(t.names(), ['Play', 'Speak']);
  t.lines.eventSettled('ev-9');
  assert.equal(t.names(), ['Play', 'Speak', 'Answer'], 'an attachment that never started is not waited for');

  // One already streaming when the exchange ends is still counted: its end is near.
  const late = incoming('late', { source: 'event', eventMessageId: 'ev-10' });
  t.lines.directive(received('Speak2', ['late'], { source: 'event', eventMessageId: 'ev-10' }));
  t.lines.attachment(late.a);
  late.stream.push(Buffer.alloc(7));
  t.lines.eventSettled('ev-10');
  assert.equal(t.names().length, 3);
  late.stream.push(null);
  await tick();
  assert.equal(t.out.at(-1)!.attachments, [{ contentId: 'late', bytes: 7 }]);
});

test('bounded: a line whose attachment never comes is released once 8 lines queue behind it; flush() writes the rest', () => {
  const t = collect();
  t.lines.directive(received('Lost', ['missing']));
  for (let i = 0; i < 7; i++) t.lines.directive(received(`N${i}`));
  assert.equal(t.out, []);
  t.lines.directive(received('N7'));
  assert.equal(t.names(), ['Lost', 'N0', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7']);
  t.lines.directive(received('Waits', ['x']));
  t.lines.flush();
  assert.equal(t.names().at(-1), 'Waits');
});

test('attachRunIo: streamed attachment bytes on the directive line, before eventSent; a FIFO audioFile is read as it fills', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cic-runio-'));
  const rt = new FakeRuntime();
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Array<Record<string, any>> = [];
  let buf = '';
  stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      out.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  const io = attachRunIo({ runtime: rt, stdin, stdout, stderr, log: silentLogger });
  try {
    const fifo = join(dir, 'mic.fifo');
    execFileSync('mkfifo', [fifo]);
    const file = join(dir, 'a.raw');
    writeFileSync(file, Buffer.alloc(100, 1));
    stdin.write(`${JSON.stringify({ namespace: 'SpeechRecognizer', name: 'Recognize', dialogRequestId: 'd-1', payload: {}, audioFile: fifo })}\n`);
    stdin.write(`${JSON.stringify({ namespace: 'SpeechRecognizer', name: 'Recognize', dialogRequestId: 'd-2', payload: {}, audioFile: file })}\n`);
    stdin.write(`${JSON.stringify({ namespace: 'SpeechRecognizer', name: 'Recognize', dialogRequestId: 'd-3', payload: {}, audioFile: dir })}\n`);
    for (let i = 0; i < 100 && rt.events.length < 2; i++) await tick();
    assert.is(rt.events.length, 2, 'the directory is refused');
    assert.not.type(rt.events[0]!.event.audio, 'function', 'a FIFO is live audio');
    assert.type(rt.events[1]!.event.audio, 'function', 'a regular file stays replayable');

    // Read the FIFO as the writer fills it.
    const it = (rt.events[0]!.event.audio as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const writer = createWriteStream(fifo);
    writer.write(Buffer.alloc(3200, 7));
    const c1 = await it.next();
    assert.is((c1.value as Buffer).length, 3200, 'the first chunk before the writer wrote more');
    writer.end(Buffer.alloc(800, 8));
    let rest = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) rest += (r.value as Buffer).length;
    assert.is(rest, 800, 'then the rest, and the end when the writer closes');

    // The answer: a directive with its attachment streaming in, then the event settles.
    const ev = rt.events[0]!;
    const speak = received('Speak', ['tts'], { source: 'event', eventMessageId: ev.messageId });
    for (const l of rt.listeners) l.directive?.(speak);
    const stream = new Readable({ read() {} });
    for (const l of rt.listeners) l.attachment?.({ contentId: 'tts', source: 'event', eventMessageId: ev.messageId, directiveMessageId: 'm-Speak', stream });
    stream.push(Buffer.alloc(4096));
    stream.push(null);
    ev.resolve({ directives: [speak] });
    for (let i = 0; i < 100 && !out.some((o) => o.eventSent); i++) await tick();
    const lineAt = out.findIndex((o) => o.directive?.header.name === 'Speak');
    const sentAt = out.findIndex((o) => o.eventSent?.messageId === ev.messageId);
    assert.ok(lineAt >= 0 && sentAt > lineAt, 'the directive line comes before eventSent');
    assert.equal(out[lineAt]!.attachments, [{ contentId: 'tts', bytes: 4096 }]);
    const err = stderr.read()?.toString() ?? '';
    assert.match(err, /audioFile is not a readable file or FIFO/);
  } finally {
    io.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
