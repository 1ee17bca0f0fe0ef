// Shapes the CIC client exchanges with its callers.
import type { CicError } from '../errors';
import type { Clock } from '../util/clock';
import type { Directive } from './message';
import type { AttachmentRef } from './cid-links';

export type { DirectiveHeader } from './message';
export type DirectiveMessage = Directive;

/**
 * An attachment a directive's payload references (`cid:`): metadata only. Its bytes stream
 * separately, as the IncomingAttachment with the same contentId (CicClient's 'attachment').
 */
export type Attachment = AttachmentRef;

/**
 * A directive as delivered to the application, as soon as its JSON part has arrived (its
 * attachments may still be streaming).
 */
export interface ReceivedDirective {
  directive: DirectiveMessage;
  /** The attachments its payload references, each once, in payload order (metadata only). */
  attachments: Attachment[];
  source: 'downchannel' | 'event';
  /** The event whose response stream carried it (source 'event'). */
  eventMessageId?: string;
}

/**
 * An attachment as it streams in (CicClient's 'attachment' event): announced when its part
 * starts, its bytes then follow on `stream` with back-pressure down to HTTP/2 flow control.
 * Memory stays bounded whatever the attachment's size; a consumer that stops reading slows
 * the HTTP/2 stream, one that never reads gets a coded error on `stream`.
 */
export interface IncomingAttachment {
  /** Content-ID without `<>`. */
  contentId: string;
  contentType?: string;
  source: 'downchannel' | 'event';
  /** The event whose response stream carried it (source 'event'). */
  eventMessageId?: string;
  /** The directive whose payload references it (`cid:`), when that directive came first. */
  directiveMessageId?: string;
  dialogRequestId?: string;
  stream: import('node:stream').Readable;
}

export interface OutgoingEvent {
  namespace: string;
  name: string;
  payload?: Record<string, unknown>;
  context?: unknown[];
  dialogRequestId?: string;
  /**
   * Streamed as the `audio` part, chunk by chunk, as the iterable yields them. A function (or an
   * array of chunks) is replayable: it is called once per attempt, so an event refused with 401
   * is sent again with a refreshed token. A one-shot iterable (a live microphone) cannot be
   * replayed: such an event fails with CIC_AUDIO_NOT_REPLAYABLE on a 401.
   */
  audio?: AudioSource;
}

export type AudioChunks = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
export type AudioSource = AudioChunks | (() => AudioChunks);

export interface EventResult {
  messageId: string;
  status: number;
  directives: ReceivedDirective[];
}

/** Where the client gets access tokens (the TokenManager implements it). */
export interface TokenSource {
  getAccessToken(): Promise<string>;
  /** The server said 401 for `rejected`: refresh once (single-flight) and return the new token. */
  onUnauthorized(rejected: string): Promise<string>;
  /**
   * The current token when it is usable at once, else undefined (then getAccessToken() is
   * asked). Optional: without it every new stream awaits getAccessToken().
   */
  peekAccessToken?(): string | undefined;
}

/** What a reader of one multipart response body is told (see directive-reader.ts). */
export interface DirectiveReaderInit {
  /** The response's content-type header. */
  contentType: string;
  source: 'downchannel' | 'event';
  /** The event whose response this is (source 'event'). */
  eventMessageId?: string;
  /**
   * A directive, as soon as its JSON part is complete. Returning false means it was dropped
   * (a stale dialog): the attachments it references are then discarded, not announced.
   */
  onDirective(d: ReceivedDirective): boolean | void;
  /** An attachment part started; its bytes follow on `a.stream`. */
  onAttachment?(a: IncomingAttachment): void;
  /** Whether anybody takes attachments now; when not, their bytes are counted and discarded. */
  wantsAttachments?(): boolean;
  /** A non-fatal coded problem (malformed part, System.Exception, stalled attachment consumer). */
  onProblem(err: CicError): void;
  /**
   * Gives body bytes back to HTTP/2 flow control (ClientStream.consume after holdWindow()).
   * The reader calls it for every byte pushed: at once, or — attachment bytes a consumer has
   * not taken yet — when it takes them, drops them or stalls.
   */
  consume?(bytes: number): void;
  /** Runs the attachment stall deadline (default: the system clock). */
  clock?: Clock;
  /** A consumer that takes nothing for this long loses its attachment stream (CIC_ATTACHMENT_STALLED). */
  attachmentStallMs?: number;
}

/** Reads one multipart response body into directives and attachment streams. */
export interface DirectiveReaderLike {
  push(chunk: Buffer): void;
  /** The body ended. */
  end(): void;
  /** The body failed (stream reset, connection lost): an attachment still streaming ends with `err`. */
  abort(err: CicError): void;
}

export type DirectiveReaderFactory = (init: DirectiveReaderInit) => DirectiveReaderLike;
