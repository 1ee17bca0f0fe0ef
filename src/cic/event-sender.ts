// Sends one event as `POST /v1/events` (multipart/form-data: metadata + optional streamed
// audio) on the downchannel's connection and turns the answer into an EventResult.
//
// In-flight rules: work the server provably did not process (GOAWAY above last-stream-id,
// REFUSED_STREAM, 412) goes back to the queue; anything else that fails after the request
// left is reported as CIC_EVENT_FAILED and never resent (the server may have acted on it).
//
// The answer streams: each directive is passed on the moment its part is complete, while the
// upload may still be going (a StopCapture on the event's own stream must stop the microphone
// before the audio ends), and each attachment as its bytes arrive. EventResult.directives
// lists the exchange's directives once it is over.
import { CicError, isCicError } from '../errors';
import type { Logger } from '../log';
import type { Connection } from '../h2/connection';
import type { ClientStream } from '../h2/stream';
import { sleep, type Clock, type TimerHandle } from '../util/clock';
import { H2_ERROR } from '../h2/constants';
import { EventBodyWriter } from './multipart-writer';
import { buildEventMetadata, type ContextEntry } from './message';
import { exceptionFromBody } from './directive';
import { statusError } from './http-status';
import type { AudioChunks, DirectiveReaderFactory, EventResult, IncomingAttachment, OutgoingEvent, ReceivedDirective } from './types';

const MAX_ERROR_BODY = 64 * 1024;
/**
 * An event whose exchange moved no byte either way for this long is cancelled and failed.
 * Without it, a server that accepts a request and never answers (while still ACKing PINGs)
 * would hold the event forever. An idle measure, not a total one: a long utterance upload or a
 * long streamed answer stays alive as long as bytes move.
 */
export const EVENT_IDLE_TIMEOUT_MS = 60_000;

export interface PendingEvent {
  messageId: string;
  namespace: string;
  name: string;
  metadata: object;
  audio: OutgoingEvent['audio'];
  /** No audio, or audio that can be produced again for a second attempt. */
  replayable: boolean;
  createdAt: number;
  retried401: boolean;
  resolve: (r: EventResult) => void;
  reject: (e: CicError) => void;
}

export interface SendHooks {
  requeue(p: PendingEvent): void;
  /** CIC accepted the request (2xx). */
  accepted(): void;
  /** 401: `token` is the one the request carried. */
  unauthorized(p: PendingEvent, token: string): void;
  noDownchannel(p: PendingEvent): void;
}

export interface EventSenderOptions {
  userAgent: string;
  readDirectives: DirectiveReaderFactory;
  log: Logger;
  /** A directive of an answer, as it arrives; false when it was dropped (stale dialog). */
  onDirective: (d: ReceivedDirective) => boolean;
  /** An attachment of an answer, announced when its part starts. */
  onAttachment?: (a: IncomingAttachment) => void;
  /** Whether anybody takes attachments (else they are counted and discarded). */
  wantsAttachments?: () => boolean;
  /** A consumer that takes nothing of an attachment for this long loses it (CIC_ATTACHMENT_STALLED). */
  attachmentStallMs?: number;
  /** A non-fatal problem in an answer (bad part, stalled consumer); default: logged. */
  onProblem?: (err: CicError, messageId: string) => void;
  now?: () => number;
  /** Runs the idle deadline (an injected clock in tests). */
  clock?: Clock;
  idleTimeoutMs?: number;
}

export class EventSender {
  private readonly opts: EventSenderOptions;
  private readonly inflight = new Set<Promise<void>>();

  constructor(opts: EventSenderOptions) {
    this.opts = opts;
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  /** Validates and stamps an event (fresh messageId); throws ERR_INVALID_ARGUMENT. */
  prepare(event: OutgoingEvent & { messageId?: string }): PendingEvent {
    const metadata = buildEventMetadata({
      namespace: event?.namespace,
      name: event?.name,
      payload: event?.payload,
      context: event?.context as ContextEntry[] | undefined,
      dialogRequestId: event?.dialogRequestId,
      messageId: event?.messageId,
    });
    return {
      messageId: metadata.event.header.messageId,
      namespace: event.namespace,
      name: event.name,
      metadata,
      audio: event.audio,
      replayable: event.audio === undefined || typeof event.audio === 'function' || Array.isArray(event.audio),
      createdAt: (this.opts.now ?? performance.now.bind(performance))(),
      retried401: false,
      resolve: () => {},
      reject: () => {},
    };
  }

  /** Resolves when every in-flight event settled, or after `ms`. */
  async settled(ms: number, clock: Clock): Promise<void> {
    if (this.inflight.size === 0) return;
    await Promise.race([Promise.allSettled([...this.inflight]), sleep(clock, ms)]);
  }

  send(conn: Connection, token: string, p: PendingEvent, hooks: SendHooks): void {
    const job = this.run(conn, token, p, hooks);
    this.inflight.add(job);
    void job.finally(() => this.inflight.delete(job));
  }

  private async run(conn: Connection, token: string, p: PendingEvent, hooks: SendHooks): Promise<void> {
    let source: AudioChunks | undefined;
    try {
      source = typeof p.audio === 'function' ? p.audio() : p.audio;
    } catch (e) {
      return p.reject(new CicError('ERR_INVALID_ARGUMENT', `event ${p.namespace}.${p.name}: the audio source failed to open`, { cause: e, details: { messageId: p.messageId } }));
    }
    const writer = new EventBodyWriter(JSON.stringify(p.metadata), { audio: source !== undefined });
    const headers = { authorization: `Bearer ${token}`, 'user-agent': this.opts.userAgent, 'content-type': writer.contentType };
    let stream: ClientStream;
    try {
      stream = source === undefined
        ? conn.request({ path: '/v1/events', method: 'POST', headers, body: writer.complete() })
        : conn.request({ path: '/v1/events', method: 'POST', headers, body: 'stream' });
    } catch (e) {
      // The connection closed between "ready" and now: nothing left, so it can wait.
      if (isCicError(e, 'H2_CONNECTION_CLOSED')) return hooks.requeue(p);
      return p.reject(e instanceof CicError ? e : new CicError('ERR_INTERNAL', String(e)));
    }

    const directives: ReceivedDirective[] = [];
    const errorBody: Buffer[] = [];
    let errorBytes = 0;
    const idle = this.idleDeadline(stream);
    stream.once('response', (head) => {
      idle.touch();
      if (head.status === 200) {
        const o = this.opts;
        // Bytes go back to flow control as the answer's consumers take them; a consumer that
        // takes bytes is progress too, so the idle deadline does not cut a slow reader off.
        stream.holdWindow();
        const reader = o.readDirectives({
          contentType: head.headers['content-type'] ?? '',
          source: 'event',
          eventMessageId: p.messageId,
          onDirective: (d) => {
            directives.push(d);
            return o.onDirective(d);
          },
          ...(o.onAttachment ? { onAttachment: o.onAttachment } : {}),
          ...(o.wantsAttachments ? { wantsAttachments: o.wantsAttachments } : {}),
          onProblem: (err) => (o.onProblem ? o.onProblem(err, p.messageId) : o.log.warn('event response part rejected', { code: err.code, messageId: p.messageId })),
          consume: (n) => {
            idle.touch();
            stream.consume(n);
          },
          ...(o.clock ? { clock: o.clock } : {}),
          ...(o.attachmentStallMs !== undefined ? { attachmentStallMs: o.attachmentStallMs } : {}),
        });
        stream.on('data', (c) => (idle.touch(), reader.push(c)));
        stream.once('end', () => reader.end());
        stream.once('close', () => {
          if (stream.error) reader.abort(stream.error);
        });
      } else {
        stream.on('data', (c) => {
          idle.touch();
          if (errorBytes < MAX_ERROR_BODY) errorBody.push(c);
          errorBytes += c.length;
        });
      }
    });
    const audio = source !== undefined ? this.pumpAudio(stream, writer, source, idle.touch) : Promise.resolve();
    try {
      await stream.finished();
    } catch (err) {
      const e = err as CicError;
      idle.stop();
      // Unprocessed by the server: sent again later, when the audio can be produced again.
      if (e.retryable && (e.code === 'H2_GOAWAY' || e.code === 'H2_REFUSED_STREAM') && p.replayable) return hooks.requeue(p);
      await audio.catch(() => {});
      const why = idle.expired ? `no byte moved for ${idle.ms} ms` : e.message;
      return p.reject(new CicError('CIC_EVENT_FAILED', `event ${p.namespace}.${p.name} failed in flight: ${why}`, {
        cause: e,
        details: { messageId: p.messageId, cause: idle.expired ? 'ERR_TIMEOUT' : e.code },
      }));
    }
    idle.stop();
    await audio.catch(() => {});
    const status = stream.head!.status;
    if (status === 200 || status === 204) {
      hooks.accepted();
      return p.resolve({ messageId: p.messageId, status, directives });
    }
    if (status === 401) return hooks.unauthorized(p, token);
    if (status === 412 && p.replayable) return hooks.noDownchannel(p);
    const exception = exceptionFromBody(Buffer.concat(errorBody));
    p.reject(statusError(status, `event ${p.namespace}.${p.name}`, { messageId: p.messageId, exception: exception?.details }));
  }

  /** The idle deadline of one exchange: touch() on every byte moved; expiry cancels the stream. */
  private idleDeadline(stream: ClientStream): { touch: () => void; stop: () => void; expired: boolean; ms: number } {
    const clock = this.opts.clock;
    const ms = this.opts.idleTimeoutMs ?? EVENT_IDLE_TIMEOUT_MS;
    let timer: TimerHandle | undefined;
    let stopped = false;
    const state = {
      expired: false,
      ms,
      touch: () => {
        // Attachment consumers keep reading after the exchange is over: no deadline then.
        if (!clock || state.expired || stopped) return;
        clock.clearTimeout(timer);
        timer = clock.setTimeout(() => {
          state.expired = true;
          stream.cancel(H2_ERROR.CANCEL);
        }, ms);
      },
      stop: () => {
        stopped = true;
        clock?.clearTimeout(timer);
      },
    };
    state.touch();
    return state;
  }

  private async pumpAudio(stream: ClientStream, writer: EventBodyWriter, audio: AudioChunks, touch: () => void): Promise<void> {
    const waitDrain = () => new Promise<void>((resolve) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('close', done);
        resolve();
      };
      stream.once('drain', done);
      stream.once('close', done);
    });
    if (!stream.write(writer.head()) && !stream.settled) await waitDrain();
    try {
      for await (const chunk of audio as AsyncIterable<Uint8Array>) {
        if (stream.settled) return;
        touch();
        for (const piece of writer.audioChunk(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
          if (!stream.write(piece) && !stream.settled) await waitDrain();
        }
      }
    } catch (e) {
      // The audio source failed: the request cannot be completed honestly.
      stream.cancel();
      throw e;
    }
    if (!stream.settled) stream.end(writer.tail());
  }
}

