// One live-audio upload: a socket client's `audio-chunk` messages, handed to the event sender
// as the event's `audio` part while they arrive.
//
// Hazards:
// - Not replayable on purpose: `chunks` is an async iterable, not a function, and it can be
//   iterated once. If CIC refuses the token (401) the event fails with CIC_AUDIO_NOT_REPLAYABLE
//   instead of sending half an utterance twice.
// - Bounded: chunks the HTTP/2 stream has not taken yet are queued up to AUDIO_QUEUE_CHUNKS;
//   above that `full` is true and the session stops reading the client's socket until `onSpace`
//   says the upload caught up. The client's own writes then block: back-pressure end to end.
// - StopCapture ends the part at once: queued chunks are discarded (CIC said "stop sending"),
//   and chunks the client still writes are dropped until its audio-stop.
// - A client that disconnects mid-upload makes the iterator throw a coded error; the event
//   sender then resets the HTTP/2 stream (only that stream: the connection stays up).
import { CicError } from '../errors';
import { AUDIO_QUEUE_CHUNKS } from './limits';

type Phase = 'open' | 'ending' | 'done' | 'failed';

export class AudioUpload {
  /** Set once the event has its messageId. */
  messageId: string | undefined;
  readonly dialogRequestId: string | undefined;
  /** Chunks dropped after StopCapture, or after the event settled. */
  dropped = 0;
  /** Bytes handed to the event sender. */
  sent = 0;
  readonly chunks: AsyncIterable<Uint8Array>;

  private phase: Phase = 'open';
  private accepting = true;
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void } | undefined;
  private error: CicError | undefined;
  private iterated = false;
  private readonly limit: number;
  private readonly onSpace: () => void;

  constructor(options: { dialogRequestId?: string; onSpace: () => void; limit?: number }) {
    this.dialogRequestId = options.dialogRequestId;
    this.onSpace = options.onSpace;
    this.limit = options.limit ?? AUDIO_QUEUE_CHUNKS;
    this.chunks = { [Symbol.asyncIterator]: () => this.iterator() };
  }

  /** More chunks than the limit wait: the session stops reading the client. */
  get full(): boolean {
    return this.accepting && this.queue.length >= this.limit;
  }

  /** Chunks still reach CIC (before audio-stop, StopCapture, the event's end, a cancel). */
  get open(): boolean {
    return this.accepting;
  }

  /** An audio-chunk from the client; false when it was dropped. */
  push(chunk: Buffer): boolean {
    if (!this.accepting) {
      this.dropped++;
      return false;
    }
    if (chunk.length === 0) return true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.sent += chunk.length;
      w.resolve({ value: chunk, done: false });
    } else this.queue.push(chunk);
    return true;
  }

  /** audio-stop: what is queued still goes out, then the part ends. */
  finish(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.phase = 'ending';
    this.settleWaiter();
  }

  /** SpeechRecognizer.StopCapture: the part ends now; queued and later chunks are dropped. */
  stopCapture(): void {
    this.dropped += this.queue.length;
    this.queue.length = 0;
    this.accepting = false;
    if (this.phase === 'open' || this.phase === 'ending') this.phase = 'done';
    this.settleWaiter();
    this.onSpace();
  }

  /** The event settled: nothing will read the rest, so drop it instead of queueing it. */
  discard(): void {
    this.accepting = false;
    this.queue.length = 0;
    if (this.phase === 'open' || this.phase === 'ending') this.phase = 'done';
    this.settleWaiter();
    this.onSpace();
  }

  /** The client went away mid-upload: the iterator throws `err`. */
  cancel(err: CicError): void {
    if (this.phase === 'done' || this.phase === 'failed') return;
    this.accepting = false;
    this.queue.length = 0;
    this.phase = 'failed';
    this.error = err;
    this.settleWaiter();
  }

  private settleWaiter(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.phase === 'failed') {
      this.waiter = undefined;
      w.reject(this.error);
    } else if (this.phase === 'done' || (this.phase === 'ending' && this.queue.length === 0)) {
      this.waiter = undefined;
      this.phase = 'done';
      w.resolve({ value: undefined, done: true });
    }
  }

  private iterator(): AsyncIterator<Uint8Array> {
    if (this.iterated) throw new CicError('CIC_AUDIO_NOT_REPLAYABLE', 'live audio from the device socket can be read once');
    this.iterated = true;
    return {
      next: () => {
        if (this.phase === 'failed') return Promise.reject(this.error);
        const chunk = this.queue.shift();
        if (chunk) {
          this.sent += chunk.length;
          if (this.queue.length === this.limit - 1) this.onSpace();
          return Promise.resolve({ value: chunk, done: false });
        }
        if (this.phase === 'done' || this.phase === 'ending') {
          this.phase = 'done';
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
      },
      return: () => {
        // The sender stopped reading (its stream ended): later chunks have nowhere to go.
        this.discard();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
