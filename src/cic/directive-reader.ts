// Reads one multipart response body (the downchannel, or an event's answer) as it streams:
// a directive goes out the moment its JSON part is complete; an attachment is announced when
// its part starts and its bytes follow on a Readable as they arrive (attachment-sink.ts);
// cid-links.ts ties the two together in whichever order they come.
//
// Flow control. Every byte pushed is given back through `consume` exactly once: at the end of
// the push that brought it, except attachment bytes a consumer has not taken yet, which go
// back when it takes them, drops them or stalls. What is given back never runs ahead of what
// was pushed. (The few bytes the parser holds back as a possible delimiter, boundary + 4 at
// most, are given back with their push; should they turn out to be attachment bytes, the
// window is short by that much until the consumer takes them.)
//
// Memory. Held here: the parser's header block and partial delimiter, one directive JSON part
// (maxPartBytes) and the first bytes of an untyped part (SNIFF_BYTES); each attachment stream
// holds at most its high-water mark plus one HTTP/2 stream window.
import { CicError, toCicError } from '../errors';
import { systemClock, type Clock } from '../util/clock';
import { AttachmentSink, DEFAULT_ATTACHMENT_STALL_MS } from './attachment-sink';
import { CidLinker, DEFAULT_MAX_WAIT_PARTS, type AttachmentOwner } from './cid-links';
import { parseMultipartContentType } from './content-type';
import { decodeDirectivePart, partKind, sniffJson, type DirectiveSource } from './directive';
import { MultipartParser, type PartHead } from './multipart-parser';
import { DEFAULT_MAX_PART_BYTES, PartBuffer } from './part-buffer';
import type { DirectiveReaderInit, DirectiveReaderLike, IncomingAttachment, ReceivedDirective } from './types';

export interface DirectiveReaderOptions extends DirectiveReaderInit {
  /** Largest directive JSON part (bytes); larger → CIC_PART_TOO_LARGE, part skipped. Attachments have no limit: they stream. */
  maxPartBytes?: number;
  maxHeaderBytes?: number;
  /** Default: 64 for an event response, unlimited for the downchannel. */
  maxParts?: number;
  /** Further parts a `cid:` id waits for its counterpart: default 8 on the downchannel, the whole body for an event. */
  maxWaitParts?: number;
}

/** Parts an event response may hold before it is refused as malformed. */
export const DEFAULT_EVENT_MAX_PARTS = 64;

type PartMode = 'none' | 'json' | 'binary' | 'sniff' | 'skip';

export class DirectiveReader implements DirectiveReaderLike {
  private readonly opts: DirectiveReaderOptions;
  private readonly source: DirectiveSource;
  private readonly parser: MultipartParser | undefined;
  private readonly json: PartBuffer;
  private readonly linker: CidLinker;
  private readonly clock: Clock;
  private readonly stallMs: number;
  private mode: PartMode = 'none';
  private head: PartHead | undefined;
  private sniffed: Buffer[] = [];
  private sniffedLength = 0;
  private sink: AttachmentSink | undefined;
  private finished = false;
  // Flow-control accounting (see the head of this file).
  private pushed = 0;
  private given = 0;
  private held = 0;
  private inPush = false;

  constructor(opts: DirectiveReaderOptions) {
    if (!opts || (opts.source !== 'event' && opts.source !== 'downchannel') || typeof opts.onDirective !== 'function' || typeof opts.onProblem !== 'function') {
      throw new CicError('ERR_INVALID_ARGUMENT', "DirectiveReader needs source ('event' | 'downchannel'), onDirective and onProblem");
    }
    this.opts = opts;
    this.source = opts.source;
    this.clock = opts.clock ?? systemClock;
    this.stallMs = opts.attachmentStallMs ?? DEFAULT_ATTACHMENT_STALL_MS;
    const event = opts.source === 'event';
    this.json = new PartBuffer(opts.maxPartBytes ?? DEFAULT_MAX_PART_BYTES, (e) => this.problem(e));
    this.linker = new CidLinker({ maxWaitParts: opts.maxWaitParts ?? (event ? Infinity : DEFAULT_MAX_WAIT_PARTS), onError: (e) => this.problem(e) });
    let boundary: string | undefined;
    try {
      boundary = parseMultipartContentType(opts.contentType).boundary;
    } catch (e) {
      this.problem(toCicError(e, 'CIC_MULTIPART'));
    }
    const maxParts = opts.maxParts ?? (event ? DEFAULT_EVENT_MAX_PARTS : undefined);
    this.parser = boundary === undefined ? undefined : new MultipartParser({
      boundary,
      ...(opts.maxHeaderBytes !== undefined ? { maxHeaderBytes: opts.maxHeaderBytes } : {}),
      ...(maxParts !== undefined ? { maxParts } : {}),
      onPartStart: (head) => this.partStart(head),
      onPartData: (chunk) => this.partData(chunk),
      onPartEnd: (error) => this.partEnd(error),
      onError: (e) => this.problem(e),
    });
  }

  /** Bytes held by the reader itself (parser, a directive's JSON, an untyped part's first bytes). */
  get bufferedBytes(): number {
    return (this.parser?.bufferedBytes ?? 0) + this.json.bufferedBytes + this.sniffedLength;
  }

  /** Pushed bytes not yet given back to flow control (attachment bytes a consumer has not taken). */
  get heldBytes(): number {
    return this.pushed - this.given;
  }

  push(chunk: Buffer): void {
    if (this.finished) {
      this.opts.consume?.(chunk.length);
      return;
    }
    this.pushed += chunk.length;
    this.inPush = true;
    try {
      if (this.parser) this.parser.push(chunk);
    } finally {
      this.inPush = false;
    }
    this.settle();
  }

  end(): void {
    if (this.finished) return;
    this.parser?.end(); // a part cut short ends through partEnd(error)
    this.linker.end(); // a body that ended whole: what is still unmatched is reported
    this.finish();
  }

  abort(err: CicError): void {
    if (this.finished) return;
    this.sink?.abort(err);
    this.sink = undefined;
    this.finish(); // a failed body: unmatched ids are the failure's doing, not reported
  }

  private finish(): void {
    this.finished = true;
    this.mode = 'none';
    this.json.end(false);
    this.sniffed = [];
    this.sniffedLength = 0;
    this.settle();
  }

  // ---- parts ------------------------------------------------------------------------------

  private partStart(head: PartHead): void {
    this.linker.tick();
    this.head = head;
    const kind = partKind(head);
    if (kind === 'json') {
      this.mode = 'json';
      this.json.start(head);
    } else if (kind === 'binary') this.startAttachment(head);
    else this.mode = 'sniff';
  }

  private partData(chunk: Buffer): void {
    switch (this.mode) {
      case 'json':
        this.json.data(chunk);
        break;
      case 'binary':
        this.sink!.write(chunk);
        break;
      case 'sniff':
        this.sniffed.push(chunk);
        this.sniffedLength += chunk.length;
        this.decide(false);
        break;
      default:
        break;
    }
  }

  private partEnd(error: CicError | undefined): void {
    if (this.mode === 'sniff') this.decide(true);
    const mode = this.mode;
    this.mode = 'none';
    this.head = undefined;
    if (mode === 'json') {
      const part = this.json.end(error === undefined);
      if (part) this.decoded(part);
    } else if (mode === 'binary') {
      const sink = this.sink!;
      this.sink = undefined;
      if (error) sink.abort(error);
      else sink.end();
    }
  }

  /** An untyped part: its first bytes say JSON (`{`) or binary. */
  private decide(complete: boolean): void {
    const first = this.sniffed.length === 1 ? this.sniffed[0]! : Buffer.concat(this.sniffed, this.sniffedLength);
    const json = sniffJson(first, complete);
    if (json === undefined) return;
    this.sniffed = [];
    this.sniffedLength = 0;
    const head = this.head!;
    if (json) {
      this.mode = 'json';
      this.json.start(head);
      if (first.length) this.json.data(first);
    } else {
      this.startAttachment(head);
      if (first.length && this.sink) this.sink.write(first);
    }
  }

  private decoded(part: Parameters<typeof decodeDirectivePart>[0]): void {
    const d = decodeDirectivePart(part);
    if (d.kind === 'error') return this.problem(d.error);
    if (d.kind !== 'directive') return;
    const { refs, owner } = this.linker.directive(d.directive);
    const out: ReceivedDirective = { directive: d.directive, attachments: refs, source: this.source };
    if (this.opts.eventMessageId !== undefined) out.eventMessageId = this.opts.eventMessageId;
    try {
      if (this.opts.onDirective(out) === false) owner.dropped = true;
    } catch (e) {
      this.problem(toCicError(e, 'ERR_INTERNAL', 'an onDirective callback threw'));
    }
  }

  private startAttachment(head: PartHead): void {
    const contentId = head.contentId;
    if (!contentId) {
      this.mode = 'skip';
      this.problem(new CicError('CIC_BAD_DIRECTIVE', 'a binary part has no Content-ID', {
        details: { reason: 'attachment-without-content-id', contentType: head.contentType },
      }));
      return;
    }
    this.mode = 'binary';
    const owner = this.linker.attachment(contentId, head.contentType);
    const take = this.opts.onAttachment;
    const stream = take !== undefined && !owner?.dropped && (this.opts.wantsAttachments?.() ?? true);
    const details: Record<string, unknown> = { contentId, source: this.source };
    if (this.opts.eventMessageId !== undefined) details.eventMessageId = this.opts.eventMessageId;
    const sink = new AttachmentSink({
      hold: (n) => (this.held += n),
      release: (n) => {
        this.held -= n;
        if (!this.inPush) this.settle();
      },
      clock: this.clock,
      stallMs: this.stallMs,
      onStalled: (err) => this.problem(err),
      details,
    }, stream);
    this.sink = sink;
    if (!stream) return;
    try {
      take!(this.announce(contentId, head, owner, sink));
    } catch (e) {
      this.problem(toCicError(e, 'ERR_INTERNAL', 'an onAttachment callback threw'));
    }
  }

  private announce(contentId: string, head: PartHead, owner: AttachmentOwner | undefined, sink: AttachmentSink): IncomingAttachment {
    const a: IncomingAttachment = { contentId, source: this.source, stream: sink.readable! };
    if (head.contentType !== undefined) a.contentType = head.contentType;
    if (this.opts.eventMessageId !== undefined) a.eventMessageId = this.opts.eventMessageId;
    if (owner?.directiveMessageId !== undefined) a.directiveMessageId = owner.directiveMessageId;
    if (owner?.dialogRequestId !== undefined) a.dialogRequestId = owner.dialogRequestId;
    return a;
  }

  // ---- flow control and problems -----------------------------------------------------------

  private settle(): void {
    const free = this.pushed - this.given - this.held;
    if (free <= 0) return;
    this.given += free;
    this.opts.consume?.(free);
  }

  private problem(err: CicError): void {
    try {
      this.opts.onProblem(err);
    } catch {
      // A throwing problem handler must not break the body it reports on.
    }
  }
}

/** The reader factory the CIC client takes (CicClientOptions.readDirectives). */
export function readDirectives(init: DirectiveReaderInit): DirectiveReader {
  return new DirectiveReader(init);
}
