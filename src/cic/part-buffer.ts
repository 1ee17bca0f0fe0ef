// One multipart part collected whole, within a size limit: what a directive's JSON needs (an
// attachment streams instead, see attachment-sink.ts). collectParts() wires a PartBuffer to a
// MultipartParser for readers that want every part whole (tests, tools).
//
// Zero copy: a part that arrived in one piece is delivered as that piece (a view of the pushed
// chunk); a part spread over several pieces is copied once when it completes.
import { CicError } from '../errors';
import type { MultipartParserOptions, MultipartPart, PartHead } from './multipart-parser';

/** 2 MiB: a directive's JSON is a few KB; anything near this is hostile or broken. */
export const DEFAULT_MAX_PART_BYTES = 2 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

export class PartBuffer {
  private readonly maxBytes: number;
  private readonly onError: (err: CicError) => void;
  private head: PartHead | undefined;
  private chunks: Buffer[] = [];
  private length = 0;
  private over = false;

  constructor(maxBytes: number, onError: (err: CicError) => void) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new CicError('ERR_INVALID_ARGUMENT', 'maxPartBytes must be a positive integer');
    this.maxBytes = maxBytes;
    this.onError = onError;
  }

  /** Body bytes held. */
  get bufferedBytes(): number {
    return this.length;
  }

  start(head: PartHead): void {
    this.head = head;
    this.chunks = [];
    this.length = 0;
    this.over = false;
  }

  /** Adds body bytes; past the limit the part is reported once (CIC_PART_TOO_LARGE) and dropped. */
  data(chunk: Buffer): void {
    if (this.over || !this.head) return;
    if (this.length + chunk.length > this.maxBytes) {
      this.over = true;
      this.chunks = [];
      this.length = 0;
      this.onError(new CicError('CIC_PART_TOO_LARGE', `part body exceeds ${this.maxBytes} bytes`, {
        details: { limit: this.maxBytes, what: 'body', contentId: this.head.contentId },
      }));
      return;
    }
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The part is over: the whole part, or undefined when it was dropped or cut short. */
  end(complete = true): MultipartPart | undefined {
    const head = this.head;
    const chunks = this.chunks;
    const dropped = this.over || !complete;
    this.head = undefined;
    this.chunks = [];
    this.over = false;
    const length = this.length;
    this.length = 0;
    if (!head || dropped) return undefined;
    const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
    return { ...head, body };
  }
}

export interface CollectPartsOptions {
  /** Largest part body kept (bytes); larger parts are reported (CIC_PART_TOO_LARGE) and skipped. */
  maxPartBytes?: number;
  /** Every complete part, in order. */
  onPart(part: MultipartPart): void;
  onError(err: CicError): void;
}

export type PartCallbacks = Pick<MultipartParserOptions, 'onPartStart' | 'onPartData' | 'onPartEnd'> & {
  /** Body bytes held for the part being collected. */
  readonly bufferedBytes: number;
};

/** Parser callbacks that hand on every part whole: `new MultipartParser({ boundary, ...collectParts(o), onError })`. */
export function collectParts(opts: CollectPartsOptions): PartCallbacks {
  const buf = new PartBuffer(opts.maxPartBytes ?? DEFAULT_MAX_PART_BYTES, opts.onError);
  return {
    onPartStart: (head) => buf.start(head),
    onPartData: (chunk) => buf.data(chunk),
    onPartEnd: (error) => {
      const part = buf.end(error === undefined);
      if (part) opts.onPart(part);
    },
    get bufferedBytes() {
      return buf.bufferedBytes;
    },
  };
}
