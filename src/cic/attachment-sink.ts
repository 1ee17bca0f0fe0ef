// One attachment part on its way from the multipart parser to its consumer: a Readable fed as
// the bytes arrive, with back-pressure down to HTTP/2 flow control, and the stall rule.
//
// Flow control. Bytes the Readable accepts below its high-water mark are given back to HTTP/2
// at once (release). Once push() says the buffer is full, every further byte is held: not
// given back, so the stream window closes and the server stops sending, until the consumer
// reads (the Readable's _read) and the held bytes are released together. Memory per attachment
// stays under highWaterMark + one stream window, whatever the attachment's size.
//
// Stall rule. A consumer that takes nothing for stallMs while bytes are held gets its stream
// destroyed with CIC_ATTACHMENT_STALLED; the held bytes are released and the rest of the part
// is counted and discarded, so the HTTP/2 stream — and on the downchannel every later
// directive — goes on. Hazard: without it one forgotten stream would hold its stream window
// (and a share of the connection window) forever. Progress is measured as bytes the consumer
// took, so a slow but steady reader is never cut off.
//
// Discard mode (nobody listens, the directive was stale, the consumer destroyed the stream,
// or it stalled): bytes are only counted; the reader gives them back at once.
import { Readable } from 'node:stream';
import { CicError } from '../errors';
import type { Clock, TimerHandle } from '../util/clock';

/** The Readable's buffer: four DATA frames' worth of audio is enough to ride out a slow read. */
export const ATTACHMENT_HIGH_WATER_BYTES = 64 * 1024;
/** A consumer that takes nothing for this long while bytes wait loses the stream. */
export const DEFAULT_ATTACHMENT_STALL_MS = 30_000;

export interface AttachmentSinkOptions {
  /** `bytes` more are kept from flow control (the consumer is behind). */
  hold(bytes: number): void;
  /** `bytes` held earlier may go back to flow control. */
  release(bytes: number): void;
  clock: Clock;
  stallMs: number;
  /** The consumer stalled; its stream was destroyed with `err`. */
  onStalled(err: CicError): void;
  /** Facts for error details (content id, source, event): never attachment bytes. */
  details: Record<string, unknown>;
  highWaterMark?: number;
}

export class AttachmentSink {
  /** The consumer's stream; undefined for a sink that discards from the start. */
  readonly readable: Readable | undefined;
  /** Bytes of the part seen so far (streamed or discarded). */
  bytes = 0;
  private readonly opts: AttachmentSinkOptions;
  private held = 0;
  private pushed = 0;
  private blocked = false;
  private discarding: boolean;
  private ended = false;
  private timer: TimerHandle | undefined;
  private takenAtArm = 0;

  /** A sink that streams to a Readable (`stream` true) or only counts (`stream` false). */
  constructor(opts: AttachmentSinkOptions, stream: boolean) {
    this.opts = opts;
    this.discarding = !stream;
    if (!stream) return;
    const readable = new Readable({ highWaterMark: opts.highWaterMark ?? ATTACHMENT_HIGH_WATER_BYTES, read: () => this.onRead() });
    // A consumer that forgot an 'error' listener must not take the process down with it: the
    // stall is also reported on the client's 'problem' event.
    readable.on('error', () => {});
    readable.once('close', () => this.onClose());
    this.readable = readable;
  }

  /** The part's next bytes. */
  write(chunk: Buffer): void {
    this.bytes += chunk.length;
    const r = this.readable;
    if (this.discarding || !r) return;
    if (r.destroyed) {
      this.discard();
      return;
    }
    this.pushed += chunk.length;
    const below = r.push(chunk);
    if (this.blocked || !below) {
      this.held += chunk.length;
      this.opts.hold(chunk.length);
      if (!this.blocked) {
        this.blocked = true;
        this.armStall();
      }
    }
  }

  /** The part is complete. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const r = this.readable;
    if (this.discarding || !r) return;
    // The part is whole in memory now: nothing left for flow control to protect, and held
    // bytes would keep the rest of this HTTP/2 stream (the next directive) from coming.
    this.releaseHeld();
    r.push(null);
  }

  /** The body failed or was cut short: the consumer's stream ends with `err`. */
  abort(err: CicError): void {
    if (this.ended) return;
    this.ended = true;
    this.stopStall();
    this.releaseHeld();
    this.discarding = true;
    if (this.readable && !this.readable.destroyed) this.readable.destroy(err);
  }

  private onRead(): void {
    if (this.discarding) return;
    this.blocked = false;
    this.stopStall();
    this.releaseHeld();
  }

  private onClose(): void {
    // Consumed to the end, or destroyed by the consumer or by us: nothing more is streamed.
    this.stopStall();
    this.discard();
  }

  private discard(): void {
    this.discarding = true;
    this.releaseHeld();
  }

  private releaseHeld(): void {
    const n = this.held;
    if (n === 0) return;
    this.held = 0;
    this.opts.release(n);
  }

  private taken(): number {
    return this.pushed - (this.readable?.readableLength ?? 0);
  }

  private armStall(): void {
    this.stopStall();
    this.takenAtArm = this.taken();
    this.timer = this.opts.clock.setTimeout(() => this.onStallTimer(), this.opts.stallMs);
  }

  private stopStall(): void {
    if (this.timer === undefined) return;
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onStallTimer(): void {
    this.timer = undefined;
    const r = this.readable;
    if (!r || this.discarding || r.destroyed) return;
    if (this.taken() > this.takenAtArm || r.readableLength === 0) {
      // The consumer took bytes since (without draining below the high-water mark): not a stall.
      if (r.readableLength > 0) this.armStall();
      return;
    }
    const err = new CicError('CIC_ATTACHMENT_STALLED', `an attachment's consumer took nothing for ${this.opts.stallMs} ms; the rest of it is discarded`, {
      details: { ...this.opts.details, stallMs: this.opts.stallMs, bytes: this.bytes },
    });
    this.discard();
    r.destroy(err);
    this.opts.onStalled(err);
  }
}
