// One request/response exchange on a Connection: a light typed emitter (not a Node Duplex:
// a Duplex costs several objects and state machines per request on a hot path).
//
// Settlement contract: every stream ends exactly once, with 'end' (response complete) or
// 'error' (a CicError), followed by 'close'. Promises are created only when asked for, so a
// caller that uses events never meets an unhandled rejection.
//
// Inbound flow control: by default every received byte is given back to HTTP/2 flow control
// right after its 'data' event. A reader that hands bytes on to a slower consumer calls
// holdWindow() and then consume(n) as its consumer takes them; the peer stops sending once a
// stream window's worth is held. Hazard: held bytes also count against the connection's
// window, shared by every stream (the downchannel too), so a reader must give them back or
// drop them in bounded time. Bytes still held when the stream fails are given back then.
import { TypedEmitter } from 'tiny-typed-emitter';
import { CicError } from '../errors';

export type Headers = Record<string, string>;

export interface ResponseHead {
  status: number;
  headers: Headers;
}

export interface StreamEvents {
  response: (head: ResponseHead) => void;
  data: (chunk: Buffer) => void;
  end: (trailers: Headers | undefined) => void;
  error: (err: CicError) => void;
  close: () => void;
  /** The outbound body queue has room again after write() returned false. */
  drain: () => void;
}

/** What a stream needs from its connection. */
export interface StreamOwner {
  writeBody(stream: ClientStream, chunk: Uint8Array | null, end: boolean): boolean;
  cancelStream(stream: ClientStream, code: number): void;
  /** `bytes` received DATA bytes of `stream` were taken: reopen the HTTP/2 windows by as much. */
  consumeStream(stream: ClientStream, bytes: number): void;
}

export interface CollectedResponse extends ResponseHead {
  body: Buffer;
  trailers: Headers | undefined;
}

export class ClientStream extends TypedEmitter<StreamEvents> {
  /** HTTP/2 stream id (odd, > 0), or 0 when the request never got one. */
  id = 0;
  head: ResponseHead | undefined;
  trailers: Headers | undefined;
  /** Set once the stream has ended or failed. */
  settled = false;
  error: CicError | undefined;
  /** True once request HEADERS may have reached the peer (it could have acted on them). */
  sent = false;
  /** Bytes of response body received. */
  bytesIn = 0;
  /** The stream ran into the header list limit (set by the connection). */
  headersTooLarge = false;
  /** A write() returned false; 'drain' follows. */
  needDrain = false;
  private readonly owner: StreamOwner;
  private readonly streamed: boolean;
  private ended = false;
  private manual = false;
  private unconsumed = 0;

  constructor(owner: StreamOwner, streamed: boolean) {
    super();
    this.owner = owner;
    this.streamed = streamed;
  }

  /** Appends request body bytes (streamed requests only); false means wait for 'drain'. */
  write(chunk: Uint8Array | string): boolean {
    if (!this.streamed) throw new CicError('ERR_INVALID_ARGUMENT', 'write() needs a request made with body: "stream"');
    if (this.ended) throw new CicError('ERR_INVALID_ARGUMENT', 'write() after end()');
    if (this.settled) return false;
    return this.owner.writeBody(this, typeof chunk === 'string' ? Buffer.from(chunk) : chunk, false);
  }

  /** Ends the request body (streamed requests only). */
  end(chunk?: Uint8Array | string): void {
    if (!this.streamed || this.ended) return;
    this.ended = true;
    if (this.settled) return;
    this.owner.writeBody(this, chunk === undefined ? null : typeof chunk === 'string' ? Buffer.from(chunk) : chunk, true);
  }

  /** Resets the stream (CANCEL); it settles with H2_STREAM_RESET. */
  cancel(code = 0x8): void {
    if (!this.settled) this.owner.cancelStream(this, code);
  }

  /**
   * Manual inbound flow control: from now on received bytes reopen the stream's window only
   * when given back with consume(). Call it before the first 'data' event you handle (in the
   * 'response' listener, for instance).
   */
  holdWindow(): void {
    this.manual = true;
  }

  /** Gives `bytes` received bytes back to flow control (manual mode); more than are held is clamped. */
  consume(bytes: number): void {
    const n = Math.min(bytes, this.unconsumed);
    if (!(n > 0)) return;
    this.unconsumed -= n;
    this.owner.consumeStream(this, n);
  }

  /** Received bytes not yet given back to flow control. */
  get heldBytes(): number {
    return this.unconsumed;
  }

  /** Resolves with status and headers; rejects if the stream fails first. */
  response(): Promise<ResponseHead> {
    if (this.head) return Promise.resolve(this.head);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const onResponse = (head: ResponseHead) => {
        this.off('close', onClose);
        resolve(head);
      };
      const onClose = () => {
        this.off('response', onResponse);
        reject(this.error ?? new CicError('H2_STREAM_RESET', 'stream closed without a response'));
      };
      this.once('response', onResponse);
      this.once('close', onClose);
    });
  }

  /** Resolves when the response is complete; rejects with the stream's error. */
  finished(): Promise<void> {
    if (this.settled) return this.error ? Promise.reject(this.error) : Promise.resolve();
    return new Promise((resolve, reject) => this.once('close', () => (this.error ? reject(this.error) : resolve())));
  }

  /** Buffers the whole response (at most `maxBytes` of body: more resets the stream). */
  collect(maxBytes = 4 * 1024 * 1024): Promise<CollectedResponse> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      this.on('data', (c) => {
        size += c.length;
        if (size > maxBytes) {
          this.fail(new CicError('H2_BODY_TOO_LARGE', `response body exceeds ${maxBytes} bytes`, { details: { streamId: this.id } }));
          this.owner.cancelStream(this, 0x8);
          return;
        }
        chunks.push(c);
      });
      this.once('close', () => {
        if (this.error || !this.head) return reject(this.error ?? new CicError('H2_STREAM_RESET', 'stream closed without a response'));
        resolve({ ...this.head, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), trailers: this.trailers });
      });
    });
  }

  // ---- called by the connection ---------------------------------------------------------

  /** @internal */
  onResponse(head: ResponseHead): void {
    if (this.settled || this.head) return;
    this.head = head;
    this.emit('response', head);
  }

  /** @internal */
  onData(chunk: Buffer): void {
    this.unconsumed += chunk.length;
    if (this.settled) {
      this.consume(chunk.length);
      return;
    }
    this.bytesIn += chunk.length;
    this.emit('data', chunk);
    if (!this.manual) this.consume(chunk.length);
  }

  /** @internal Response complete (END_STREAM from the peer). */
  succeed(): void {
    if (this.settled) return;
    if (!this.head) {
      this.fail(new CicError('H2_PROTOCOL', 'stream ended without response headers', { details: { streamId: this.id } }));
      return;
    }
    this.settled = true;
    this.emit('end', this.trailers);
    this.emit('close');
  }

  /** @internal */
  fail(err: CicError): void {
    if (this.settled) return;
    this.settled = true;
    this.error = err;
    // No reader will take what is still held: give it back, or the connection window stays short.
    this.consume(this.unconsumed);
    // An 'error' emit without a listener would throw: callers may rely on promises instead.
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.emit('close');
  }

  /** @internal */
  onDrain(): void {
    if (!this.needDrain || this.settled) return;
    this.needDrain = false;
    this.emit('drain');
  }
}

/** Flat [name, value, …] from nghttp2 → header record; repeated names are joined with ", ". */
export function headersFromFlat(nv: string[]): Headers {
  const out: Headers = {};
  for (let i = 0; i + 1 < nv.length; i += 2) {
    const name = nv[i]!;
    const prev = out[name];
    out[name] = prev === undefined ? nv[i + 1]! : `${prev}, ${nv[i + 1]}`;
  }
  return out;
}
