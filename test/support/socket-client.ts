// A device-socket client for the tests: writes Wyoming frames (data as a block, as the
// reference client does, or inline), collects every frame the runtime sends, and waits for
// them with a bounded guard (a failure guard, never a delay used as synchronisation).
import { connect, type Socket } from 'node:net';
import { FrameDecoder, type Frame } from '../../src/service/framing';

export interface SendOptions {
  /** Put `data` in the header line instead of a data_length block. */
  inline?: boolean;
}

export function frameBytes(type: string, data?: Record<string, unknown>, payload?: Buffer, options: SendOptions = {}): Buffer {
  const header: Record<string, unknown> = { type };
  let block: Buffer | undefined;
  if (data && options.inline) header.data = data;
  else if (data) {
    block = Buffer.from(JSON.stringify(data));
    header.data_length = block.length;
  }
  if (payload) header.payload_length = payload.length;
  return Buffer.concat([Buffer.from(JSON.stringify(header) + '\n'), block ?? Buffer.alloc(0), payload ?? Buffer.alloc(0)]);
}

export class SocketClient {
  readonly frames: Frame[] = [];
  readonly socket: Socket;
  readonly closed: Promise<void>;
  /** Raw bytes received, for secret checks. */
  received = Buffer.alloc(0);
  private readonly decoder = new FrameDecoder({ maxHeaderAndDataBytes: 16 * 1024 * 1024, maxPayloadBytes: 16 * 1024 * 1024 });
  private waiters: Array<() => void> = [];
  private isClosed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.decoder.push(chunk, (f) => this.frames.push(f));
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(path: string, options: { paused?: boolean } = {}): Promise<SocketClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        const c = new SocketClient(s);
        if (options.paused) s.pause();
        resolve(c);
      });
    });
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  send(type: string, data?: Record<string, unknown>, payload?: Buffer, options?: SendOptions): void {
    this.socket.write(frameBytes(type, data, payload, options));
  }

  raw(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** The first frame after index `from` matching `type` (and `pred`). */
  async next(type: string, pred: (f: Frame) => boolean = () => true, from = 0, ms = 10_000): Promise<Frame> {
    const find = () => this.frames.slice(from).find((f) => f.type === type && pred(f));
    const end = Date.now() + ms;
    for (;;) {
      const hit = find();
      if (hit) return hit;
      if (this.isClosed) throw new Error(`connection closed before a "${type}" frame; got ${JSON.stringify(this.frames.map((f) => f.type))}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no "${type}" frame within ${ms} ms; got ${JSON.stringify(this.frames.slice(-8).map((f) => [f.type, f.data]))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends and waits for the answer of `type` that follows it. */
  async ask(type: string, data: Record<string, unknown> | undefined, answer: string): Promise<Frame> {
    const from = this.frames.length;
    this.send(type, data);
    return this.next(answer, () => true, from);
  }

  /** Resolves when the connection closes (bounded). */
  async waitClosed(ms = 10_000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.closed, new Promise((_, reject) => (t = setTimeout(() => reject(new Error('the connection did not close')), ms)))]);
    clearTimeout(t);
  }

  types(from = 0): string[] {
    return this.frames.slice(from).map((f) => f.type);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Bounded wait for a condition produced by real I/O (a failure guard, not a delay). */
export async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
