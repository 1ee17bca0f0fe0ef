// Shapes the CIC client exchanges with its callers.
import type { CicError } from '../errors';
import type { Directive } from './message';
import type { Attachment } from './directive';

export type { DirectiveHeader } from './message';
export type { Attachment } from './directive';
export type DirectiveMessage = Directive;

/** A directive as delivered to the application, with the attachments its payload references. */
export interface ReceivedDirective {
  directive: DirectiveMessage;
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

/** Reads one multipart response body into directives (see directive-reader.ts). */
export interface DirectiveReaderLike {
  push(chunk: Buffer): void;
  end(): void;
}

export type DirectiveReaderFactory = (
  contentType: string,
  source: 'downchannel' | 'event',
  onDirective: (d: ReceivedDirective) => void,
  onProblem: (err: CicError) => void,
) => DirectiveReaderLike;
