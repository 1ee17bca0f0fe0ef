// The bench's CIC server: a dedicated minimal one on node:http2 (TLS, ALPN h2), not the test
// emulator: no frame relay in front of it, so the server's own cost stays small and constant
// for every contender. It speaks the part of PROTOCOL.md §2 the bench exercises:
//   GET  /v1/directives  200 multipart/related, Clova.Hello as the first part, then held open
//   POST /v1/events      the multipart/form-data body is read and its metadata part parsed;
//                        204 when well-formed, 400 otherwise
//   GET  /ping           204; HTTP/2 PING frames are acknowledged by node:http2 itself
//   POST /v1/events with the event Bench.Attachment {bytes, delayMs}: 200 multipart/related,
//                        a SpeechSynthesizer.Speak directive and a `bytes`-long attachment it
//                        links by cid:, whose body starts `delayMs` after the part headers and
//                        is written at the pace the stream's flow control allows (the service
//                        phase, scripts/bench/src/service-phase.ts)
// Every request needs `authorization: Bearer <BENCH_TOKEN>` (else 401) and a User-Agent.
// Unlike real CIC (and the emulator) it does not answer 412 to an event on a connection
// without a downchannel, so h2load, which cannot open one, gets the same 204s.
import { randomUUID } from 'node:crypto';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { BENCH_TOKEN } from './workload';

const BOUNDARY = 'cic-bench-5c1e0d';

export interface BenchServerCounts {
  sessions: number;
  downchannels: number;
  events: number;
  badEvents: number;
  unauthorized: number;
  pingFrames: number;
}

export interface BenchServer {
  port: number;
  counts: BenchServerCounts;
  close(): Promise<void>;
}

function part(json: object): string {
  return `\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify(json)}\r\n--${BOUNDARY}`;
}

/** True when `body` is a multipart/form-data event whose metadata names an event. */
function wellFormedEvent(contentType: string, body: Buffer): boolean {
  const b = /boundary=("?)([^";]+)\1/.exec(contentType)?.[2];
  if (!b || !/^multipart\/form-data/i.test(contentType)) return false;
  const text = body.toString('utf8');
  if (!text.startsWith(`--${b}\r\n`) || !text.endsWith(`\r\n--${b}--\r\n`)) return false;
  const start = text.indexOf('\r\n\r\n');
  const end = text.indexOf(`\r\n--${b}`, start);
  if (start < 0 || end < 0 || !/name="metadata"/.test(text.slice(0, start))) return false;
  try {
    const meta = JSON.parse(text.slice(start + 4, end)) as { event?: { header?: { namespace?: string; name?: string; messageId?: string } } };
    const h = meta.event?.header;
    return !!(h?.namespace && h.name && h.messageId);
  } catch {
    return false;
  }
}

/** Measurement taps of the service phase (the server runs in the measuring process then). */
export interface BenchServerHooks {
  /** Just before the first attachment body bytes are written (performance.now()). */
  attachmentFirstByte?(at: number): void;
  /** After the last attachment body bytes were taken by the stream (performance.now()). */
  attachmentLastByte?(at: number): void;
  /** Every DATA chunk of an event body as it arrives. */
  eventData?(chunk: Buffer, at: number): void;
}

export const ATTACHMENT_EVENT = { namespace: 'Bench', name: 'Attachment' } as const;

function eventMetadata(contentType: string, body: Buffer): { header: { namespace: string; name: string; dialogRequestId?: string }; payload: Record<string, unknown> } | undefined {
  if (!wellFormedEvent(contentType, body)) return undefined;
  const text = body.toString('utf8');
  const start = text.indexOf('\r\n\r\n');
  const end = text.indexOf('\r\n--', start);
  return (JSON.parse(text.slice(start + 4, end)) as { event: { header: { namespace: string; name: string }; payload: Record<string, unknown> } }).event;
}

/** Writes `n` bytes of attachment body, waiting for 'drain' so the server holds ≤ one piece. */
async function writeAttachmentBody(stream: http2.ServerHttp2Stream, n: number, hooks: BenchServerHooks | undefined): Promise<void> {
  const piece = Buffer.alloc(Math.min(n, 64 * 1024), 0x5a);
  for (let sent = 0; sent < n && !stream.destroyed; ) {
    const len = Math.min(piece.length, n - sent);
    if (sent === 0) hooks?.attachmentFirstByte?.(performance.now());
    const more = stream.write(len === piece.length ? piece : piece.subarray(0, len));
    sent += len;
    if (!more) {
      await new Promise<void>((resolve) => {
        // Both listeners go after either fires: one pair per wait would pile up on a long body.
        const done = () => {
          stream.off('drain', done);
          stream.off('close', done);
          resolve();
        };
        stream.on('drain', done);
        stream.on('close', done);
      });
    }
  }
}

function answerAttachment(stream: http2.ServerHttp2Stream, event: { header: { dialogRequestId?: string }; payload: Record<string, unknown> }, hooks: BenchServerHooks | undefined): void {
  const bytes = Number(event.payload.bytes ?? 4096);
  const delayMs = Number(event.payload.delayMs ?? 0);
  const contentId = randomUUID();
  const header = { namespace: 'SpeechSynthesizer', name: 'Speak', messageId: randomUUID(), ...(event.header.dialogRequestId ? { dialogRequestId: event.header.dialogRequestId } : {}) };
  stream.respond({ ':status': 200, 'content-type': `multipart/related; boundary=${BOUNDARY}` });
  // Directive and attachment part headers first: the client has handed the attachment's
  // stream to the service by the time its first byte is written after `delayMs`, so the
  // measured interval is the byte path alone.
  stream.write(`--${BOUNDARY}${part({ directive: { header, payload: { format: 'AUDIO_MPEG', token: randomUUID(), url: `cid:${contentId}` } } })}` +
    `\r\nContent-Type: application/octet-stream\r\nContent-ID: <${contentId}>\r\n\r\n`);
  setTimeout(() => {
    writeAttachmentBody(stream, bytes, hooks).then(
      () => {
        hooks?.attachmentLastByte?.(performance.now());
        if (!stream.destroyed) stream.end(`\r\n--${BOUNDARY}--\r\n`);
      },
      () => stream.destroy(),
    );
  }, delayMs);
}

export function startBenchServer(opts: { key: string; cert: string; host?: string; port?: number; hooks?: BenchServerHooks }): Promise<BenchServer> {
  const counts: BenchServerCounts = { sessions: 0, downchannels: 0, events: 0, badEvents: 0, unauthorized: 0, pingFrames: 0 };
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({ key: opts.key, cert: opts.cert, settings: { maxConcurrentStreams: 1000 } });
  server.on('session', (s) => {
    counts.sessions++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
    s.on('ping', () => counts.pingFrames++);
  });
  server.on('sessionError', () => {});
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (headers.authorization !== `Bearer ${BENCH_TOKEN}` || !headers['user-agent']) {
      counts.unauthorized++;
      stream.respond({ ':status': 401 });
      stream.end();
      return;
    }
    const method = headers[':method'];
    const path = headers[':path'];
    if (method === 'GET' && path === '/v1/directives') {
      counts.downchannels++;
      stream.respond({ ':status': 200, 'content-type': `multipart/related; boundary=${BOUNDARY}` });
      stream.write(`--${BOUNDARY}${part({ directive: { header: { namespace: 'Clova', name: 'Hello', messageId: randomUUID() }, payload: {} } })}`);
      return; // held open: the downchannel never ends on its own
    }
    if (method === 'POST' && path === '/v1/events') {
      const chunks: Buffer[] = [];
      const tap = opts.hooks?.eventData;
      stream.on('data', (c: Buffer) => {
        tap?.(c, performance.now());
        chunks.push(c);
      });
      stream.on('end', () => {
        const contentType = String(headers['content-type'] ?? '');
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const event = opts.hooks ? eventMetadata(contentType, body) : undefined;
        const ok = event !== undefined || wellFormedEvent(contentType, body);
        if (ok) counts.events++;
        else counts.badEvents++;
        if (event && event.header.namespace === ATTACHMENT_EVENT.namespace && event.header.name === ATTACHMENT_EVENT.name) answerAttachment(stream, event, opts.hooks);
        else stream.respond({ ':status': ok ? 204 : 400 }, { endStream: true });
      });
      return;
    }
    if (method === 'GET' && path === '/ping') {
      stream.respond({ ':status': 204 }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 404 }, { endStream: true });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        counts,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sessions) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * `server` subcommand: prints `{"port": N}` once listening; on SIGTERM or SIGINT prints its
 * counters as one JSON line and exits.
 */
export async function serverMain(opts: { key: string; cert: string; host?: string; port?: number }): Promise<void> {
  const srv = await startBenchServer(opts);
  process.stdout.write(`${JSON.stringify({ port: srv.port })}\n`);
  const stop = () => {
    process.stdout.write(`${JSON.stringify({ counts: srv.counts })}\n`, () => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // SIGUSR2: report the counters so far without stopping.
  process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ counts: srv.counts })}\n`));
}
