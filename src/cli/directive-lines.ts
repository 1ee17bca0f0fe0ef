// The `run` command's directive lines, `{"directive": {...}, "attachments"?: [{"contentId",
// "bytes"}]}`, from a client that streams: a directive arrives before its attachments' bytes,
// so its line waits until every attachment it references has ended, and lines keep the order
// the directives came in. An attachment that ends with an error, or never comes, is left out
// of the line (as a missing attachment always was).
//
// Bounded: once its event's exchange is over (eventSettled), a line stops waiting for
// attachments that never started (one already streaming ends soon: the exchange that carries
// it is over); MAX_WAITING lines queued behind it release it whatever its attachments' state.
// Attachment counts are remembered for the last MAX_REMEMBERED attachments only. Attachments
// are read to their end here (a 'data' listener), never paused, so the stdout contract never
// holds the HTTP/2 stream back.
import type { IncomingAttachment, ReceivedDirective } from '../cic/types';

const MAX_WAITING = 8; // lines held behind one whose attachment has not ended
const MAX_REMEMBERED = 64; // attachment byte counts kept for directives still to come

interface Counted {
  bytes: number;
  /** undefined while streaming; true: ended whole; false: failed or cut short. */
  ok: boolean | undefined;
}

interface Waiting {
  d: ReceivedDirective;
  /** 'settled': its exchange is over (no new attachment will start); 'forced': released as it is. */
  release: 'wait' | 'settled' | 'forced';
}

function key(source: string, eventMessageId: string | undefined, contentId: string): string {
  return `${source} ${eventMessageId ?? ''} ${contentId}`;
}

/** One directive line (counts: bytes per contentId of the attachments that arrived whole). */
export function directiveLine(d: ReceivedDirective, counts?: ReadonlyMap<string, number>): string {
  const out: Record<string, unknown> = { directive: d.directive };
  const attachments = d.attachments.filter((a) => counts?.has(a.contentId)).map((a) => ({ contentId: a.contentId, bytes: counts!.get(a.contentId)! }));
  if (attachments.length) out.attachments = attachments;
  return JSON.stringify(out) + '\n';
}

export class DirectiveLines {
  private readonly write: (line: string) => void;
  private readonly queue: Waiting[] = [];
  private readonly counted = new Map<string, Counted>();
  private readonly settledWaiters: Array<{ messageId: string; resolve: () => void }> = [];

  constructor(write: (line: string) => void) {
    this.write = write;
  }

  directive(d: ReceivedDirective): void {
    this.queue.push({ d, release: 'wait' });
    if (this.queue.length > MAX_WAITING) this.queue[0]!.release = 'forced';
    this.pump();
  }

  attachment(a: IncomingAttachment): void {
    const k = key(a.source, a.eventMessageId, a.contentId);
    const c: Counted = { bytes: 0, ok: undefined };
    this.counted.delete(k);
    this.counted.set(k, c);
    if (this.counted.size > MAX_REMEMBERED) this.counted.delete(this.counted.keys().next().value!);
    const done = (ok: boolean) => {
      if (c.ok !== undefined) return;
      c.ok = ok;
      this.pump();
    };
    a.stream.on('data', (chunk: Buffer) => (c.bytes += chunk.length));
    a.stream.once('end', () => done(true));
    a.stream.once('error', () => done(false));
    a.stream.once('close', () => done(false)); // after 'end' this changes nothing
  }

  /**
   * The exchange of event `messageId` is over: its lines go out once the attachments already
   * streaming have ended. Resolves when they are written (so eventSent can follow them).
   */
  eventSettled(messageId: string): Promise<void> {
    for (const w of this.queue) if (this.ofEvent(w, messageId) && w.release === 'wait') w.release = 'settled';
    const written = new Promise<void>((resolve) => this.settledWaiters.push({ messageId, resolve }));
    this.pump();
    return written;
  }

  /** Writes every waiting line (the runtime is stopping). */
  flush(): void {
    for (const w of this.queue) w.release = 'forced';
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const counts = new Map<string, number>();
      let pending = false;
      for (const a of head.d.attachments) {
        const c = this.counted.get(key(head.d.source, head.d.eventMessageId, a.contentId));
        if (c?.ok === true) counts.set(a.contentId, c.bytes);
        else if (c === undefined ? head.release === 'wait' : c.ok === undefined) pending = true;
      }
      if (pending && head.release !== 'forced') break;
      this.queue.shift();
      this.write(directiveLine(head.d, counts));
    }
    for (let i = this.settledWaiters.length - 1; i >= 0; i--) {
      const w = this.settledWaiters[i]!;
      if (this.queue.some((q) => this.ofEvent(q, w.messageId))) continue;
      this.settledWaiters.splice(i, 1);
      w.resolve();
    }
  }

  private ofEvent(w: Waiting, messageId: string): boolean {
    return w.d.source === 'event' && w.d.eventMessageId === messageId;
  }
}
