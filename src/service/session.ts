// One socket client: reads Wyoming frames, hands each to the handler for its type, and writes
// the answers through a bounded outbound queue.
//
// Hazards and the rules that answer them:
// - A framing error (bad JSON header, bad lengths, oversized or truncated frame) leaves the byte
//   stream out of step: the client gets one `error` frame and the connection ends. A bad message
//   of a known type, or an unknown type, gets an `error` frame and the client may go on.
// - Outbound is bounded. Above the high-water mark the client is "congested": its socket is not
//   read (it cannot make us produce more answers it does not take) and attachment streams to it
//   pause. Above the hard limit, or congested with no progress for the stall timeout (on the
//   injected clock), it is disconnected with SOCKET_SLOW_CLIENT: one client that never reads
//   cannot hold the others' attachments for long.
// - Messages are rate limited (a token bucket on the injected clock); a flood ends the connection.
// - An incomplete frame older than the partial-frame timeout ends the connection, so a client
//   that stops mid-frame cannot hold a slot and its buffer forever. The timer does not run while
//   the runtime itself stopped reading the client.
// - A client that goes away mid-upload cancels its live-audio event (the iterator throws
//   SOCKET_CLIENT_GONE, the event sender resets that HTTP/2 stream; the connection stays up).
// - The peer's half-close (EOF) is not a disconnect: events in flight still get their answers,
//   then the runtime ends its side (so `socat` with a here-document gets its `event-sent`).
// - Nothing sent here carries a token or secret: answers are built from fields, error texts
//   come from coded errors whose messages are redacted at construction.
import type { Socket } from 'node:net';
import { CicError, isCicError } from '../errors';
import type { Logger } from '../log';
import type { Clock, TimerHandle } from '../util/clock';
import type { ReceivedDirective } from '../cic/types';
import { encodeFrame, FrameDecoder, type Frame } from './framing';
import type { ServiceLimits } from './limits';
import type { HubSession } from './hub';
import type { AudioUpload } from './audio-upload';

export interface SessionHost {
  clock: Clock;
  log: Logger;
  limits: ServiceLimits;
  /** Runs the handler for a frame's type; throws SOCKET_UNKNOWN_TYPE / SOCKET_BAD_MESSAGE. */
  dispatch(frame: Frame, session: Session): void;
  closed(session: Session): void;
}

export class Session implements HubSession {
  readonly id: number;
  subscribed = false;
  /** The live-audio upload `audio-chunk` messages go to (kept until audio-stop, to drop late chunks). */
  upload: AudioUpload | undefined;
  readonly log: Logger;

  private readonly socket: Socket;
  private readonly host: SessionHost;
  private readonly decoder: FrameDecoder;
  private readonly delivered = new WeakSet<ReceivedDirective>();
  private readonly drainWaiters: Array<() => void> = [];
  private inFlight = 0;
  private isCongested = false;
  private ending = false;
  private isClosed = false;
  private readEnded = false;
  private paused = false;
  private stallTimer: TimerHandle | undefined;
  private partialTimer: TimerHandle | undefined;
  private graceTimer: TimerHandle | undefined;
  private tokens: number;
  private refilledAt: number;

  constructor(id: number, socket: Socket, host: SessionHost) {
    this.id = id;
    this.socket = socket;
    this.host = host;
    this.log = host.log.child({ client: id });
    this.decoder = new FrameDecoder({ maxHeaderAndDataBytes: host.limits.maxHeaderAndDataBytes, maxPayloadBytes: host.limits.maxPayloadBytes });
    this.tokens = host.limits.messageBurst;
    this.refilledAt = host.clock.now();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => this.drained());
    socket.on('error', (e: NodeJS.ErrnoException) => this.log.debug('socket client error', { errno: e.code }));
    socket.once('close', () => this.onClose());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get congested(): boolean {
    return this.isCongested;
  }

  /** Bytes written to the socket that the client has not taken yet. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  get readingPaused(): boolean {
    return this.paused;
  }

  get eventsInFlight(): number {
    return this.inFlight;
  }

  send(type: string, data?: Record<string, unknown>, payload?: Uint8Array): void {
    if (this.isClosed || this.socket.destroyed || this.socket.writableEnded) return;
    for (const b of encodeFrame(type, data, payload)) this.socket.write(b);
    const queued = this.socket.writableLength;
    const { outboundHighWaterBytes, outboundHardLimitBytes, stallTimeoutMs } = this.host.limits;
    if (queued > outboundHardLimitBytes) {
      this.slow(`more than ${outboundHardLimitBytes} bytes unread`);
      return;
    }
    if (queued > outboundHighWaterBytes && !this.isCongested) {
      this.isCongested = true;
      this.updateReading();
      this.stallTimer = this.host.clock.setTimeout(() => this.slow(`no progress for ${stallTimeoutMs} ms above ${outboundHighWaterBytes} bytes unread`), stallTimeoutMs);
    }
  }

  /** A non-fatal refusal: `error` {code, text}; the client may go on. */
  refuse(err: CicError): void {
    this.log.warn('socket message refused', { code: err.code, text: err.message });
    this.send('error', { code: err.code, text: err.message });
  }

  /** A directive for this client, at most once (by identity), StopCapture applied to its upload first. */
  directive(d: ReceivedDirective): void {
    if (this.delivered.has(d)) return;
    this.delivered.add(d);
    const h = d.directive.header;
    const up = this.upload;
    if (h.namespace === 'SpeechRecognizer' && h.name === 'StopCapture' && up?.open) {
      const mine = (d.eventMessageId !== undefined && d.eventMessageId === up.messageId) || (h.dialogRequestId !== undefined && h.dialogRequestId === up.dialogRequestId);
      if (mine) {
        up.stopCapture();
        this.log.info('StopCapture: live audio ended', { messageId: up.messageId, bytes: up.sent });
      }
    }
    this.send('directive', { directive: d.directive, source: d.source });
  }

  /** Whether `d` already reached this client. */
  hasDirective(d: ReceivedDirective): boolean {
    return this.delivered.has(d);
  }

  onDrain(fn: () => void): void {
    if (!this.isCongested || this.isClosed) {
      fn();
      return;
    }
    if (!this.drainWaiters.includes(fn)) this.drainWaiters.push(fn);
  }

  eventStarted(): void {
    this.inFlight++;
  }

  eventEnded(): void {
    this.inFlight--;
    this.maybeEnd();
  }

  /** Pauses or resumes reading: congested, upload queue full, or closing. */
  updateReading(): void {
    if (this.isClosed) return;
    const pause = this.isCongested || this.ending || (this.upload?.full ?? false);
    if (pause && !this.paused) {
      this.paused = true;
      this.socket.pause();
      this.host.clock.clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
    } else if (!pause && this.paused) {
      this.paused = false;
      this.socket.resume();
      this.armPartialTimer();
    }
  }

  /** Ends the connection after an `error` frame; the client gets a grace period to read it. */
  fail(err: CicError): void {
    if (this.ending || this.isClosed) return;
    this.log.warn('socket client disconnected', { code: err.code, text: err.message });
    this.send('error', { code: err.code, text: err.message });
    this.ending = true;
    this.cancelUpload(err);
    this.updateReading();
    this.socket.end();
    this.graceTimer = this.host.clock.setTimeout(() => this.socket.destroy(), this.host.limits.closeGraceMs);
  }

  /** The service is closing: end the connection (no error: it is not the client's fault). */
  close(): void {
    if (this.isClosed) return;
    this.ending = true;
    this.cancelUpload(new CicError('SOCKET_CLIENT_GONE', 'the runtime is closing'));
    this.socket.end();
    this.graceTimer = this.host.clock.setTimeout(() => this.socket.destroy(), this.host.limits.closeGraceMs);
  }

  // ---- internals -------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.ending || this.isClosed) return;
    try {
      this.decoder.push(chunk, (frame) => this.onFrame(frame));
    } catch (e) {
      this.fail(isCicError(e) ? e : new CicError('SOCKET_BAD_FRAME', 'the frame could not be read'));
      return;
    }
    this.armPartialTimer();
  }

  private onFrame(frame: Frame): void {
    if (this.ending || this.isClosed) return;
    if (!this.takeToken()) {
      this.fail(new CicError('SOCKET_FLOOD', `more than ${this.host.limits.messageBurst} messages at once or ${this.host.limits.messageRatePerS} a second`));
      return;
    }
    try {
      this.host.dispatch(frame, this);
    } catch (e) {
      if (isCicError(e)) this.refuse(e);
      else {
        this.log.error('socket handler failed', { type: frame.type, error: e });
        this.refuse(new CicError('ERR_INTERNAL', `the runtime failed to handle "${frame.type}"`));
      }
    }
  }

  private takeToken(): boolean {
    const { messageBurst, messageRatePerS } = this.host.limits;
    const now = this.host.clock.now();
    this.tokens = Math.min(messageBurst, this.tokens + ((now - this.refilledAt) * messageRatePerS) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private armPartialTimer(): void {
    if (this.decoder.pending === 0 || this.paused || this.ending || this.isClosed) {
      this.host.clock.clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
      return;
    }
    if (this.partialTimer) return;
    const ms = this.host.limits.partialFrameTimeoutMs;
    this.partialTimer = this.host.clock.setTimeout(() => {
      this.partialTimer = undefined;
      this.fail(new CicError('SOCKET_BAD_FRAME', `a frame stayed incomplete for ${ms} ms (truncated)`));
    }, ms);
  }

  private onEnd(): void {
    if (this.isClosed) return;
    try {
      this.decoder.end();
    } catch (e) {
      this.fail(e as CicError);
      return;
    }
    this.readEnded = true;
    this.cancelUpload(new CicError('SOCKET_CLIENT_GONE', 'the client ended its side of the connection mid-upload'));
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (!this.readEnded || this.inFlight > 0 || this.ending || this.isClosed) return;
    this.ending = true;
    this.socket.end();
  }

  private drained(): void {
    if (!this.isCongested) return;
    this.isCongested = false;
    this.host.clock.clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.updateReading();
    for (const fn of this.drainWaiters.splice(0)) fn();
  }

  private slow(why: string): void {
    if (this.isClosed) return;
    this.log.warn('socket client disconnected', { code: 'SOCKET_SLOW_CLIENT', text: `the client does not read: ${why}`, queuedBytes: this.socket.writableLength });
    this.cancelUpload(new CicError('SOCKET_SLOW_CLIENT', 'the client was disconnected for not reading'));
    this.socket.destroy();
  }

  private cancelUpload(err: CicError): void {
    const up = this.upload;
    if (!up?.open) return;
    this.log.warn('live audio cancelled', { code: err.code, messageId: up.messageId, bytes: up.sent });
    up.cancel(err);
  }

  private onClose(): void {
    this.isClosed = true;
    for (const t of [this.stallTimer, this.partialTimer, this.graceTimer]) this.host.clock.clearTimeout(t);
    this.cancelUpload(new CicError('SOCKET_CLIENT_GONE', 'the client disconnected mid-upload'));
    this.host.closed(this);
    for (const fn of this.drainWaiters.splice(0)) fn();
  }
}
