// Links the directives of one multipart body to its attachment parts by `cid:` while both
// stream: neither waits for the other.
//
// A directive is delivered as soon as its JSON is complete. Its `cid:` ids are remembered, so
// an attachment part that starts later is announced with that directive's messageId and
// dialogRequestId (and dropped with it when the directive was stale). An attachment that comes
// first is announced without them, and remembered so its directive finds it (the directive's
// attachment metadata then carries the part's content type).
//
// Both memories are bounded: an entry lives for at most maxWaitParts further parts (CIC sends a
// directive and its attachment back to back) and at most maxPending entries are kept; an id
// that expires unmatched is reported (CIC_BAD_DIRECTIVE, reason missing-attachment or
// unreferenced-attachment), as is everything left at end(). No timer: a quiet downchannel holds
// at most maxPending ids.
import { CicError } from '../errors';
import type { Directive } from './message';
import { cidReferences } from './directive';

/** What a directive's payload references; the bytes arrive as an IncomingAttachment with the same contentId. */
export interface AttachmentRef {
  /** Content-ID without `<>`, as referenced by the payload's `cid:` URL. */
  contentId: string;
  /** The part's content type, when the part came before its directive. */
  contentType?: string;
}

/** Who an attachment part belongs to, when its directive came first. */
export interface AttachmentOwner {
  directiveMessageId?: string;
  dialogRequestId?: string;
  /** The directive was dropped (stale dialog): drop its attachment too. */
  dropped: boolean;
}

export interface CidLinkerOptions {
  /** Further parts an id waits for its counterpart (default 8; Infinity for a finite body). */
  maxWaitParts?: number;
  /** Ids remembered at once, each way (default 64). */
  maxPending?: number;
  onError(err: CicError): void;
}

/** CIC sends a directive and its attachment back to back; 8 parts is a generous window. */
export const DEFAULT_MAX_WAIT_PARTS = 8;
export const DEFAULT_MAX_PENDING_IDS = 64;

interface Expected {
  owner: AttachmentOwner;
  keys: string[];
  at: number;
  what: Record<string, unknown>;
}

interface Arrived {
  contentType: string | undefined;
  at: number;
  referenced: boolean;
}

function badDirective(reason: string, message: string, details: Record<string, unknown>): CicError {
  return new CicError('CIC_BAD_DIRECTIVE', message, { details: { reason, ...details } });
}

/** The id as written, and its percent-decoded form (RFC 2392: `cid:a%40b` names `<a@b>`). */
function idForms(id: string): string[] {
  if (!id.includes('%')) return [id];
  try {
    const decoded = decodeURIComponent(id);
    return decoded === id ? [id] : [id, decoded];
  } catch {
    return [id];
  }
}

export class CidLinker {
  private readonly maxWait: number;
  private readonly maxPending: number;
  private readonly onError: (err: CicError) => void;
  private readonly expected = new Map<string, Expected>();
  private readonly arrived = new Map<string, Arrived>();
  private seq = 0;

  constructor(opts: CidLinkerOptions) {
    this.maxWait = opts.maxWaitParts ?? DEFAULT_MAX_WAIT_PARTS;
    this.maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING_IDS;
    this.onError = opts.onError;
  }

  /** Ids remembered (both ways). */
  get pending(): number {
    return new Set(this.expected.values()).size + this.arrived.size;
  }

  /** A part started: ages what is remembered. */
  tick(): void {
    this.seq++;
    if (this.maxWait === Infinity) return;
    for (const e of new Set(this.expected.values())) if (this.seq - e.at > this.maxWait) this.expire(e);
    for (const [id, a] of this.arrived) if (this.seq - a.at > this.maxWait) this.forget(id, a);
  }

  /**
   * A directive arrived: the attachments it references (metadata only), and the owner its
   * later attachment parts will be announced with (set `owner.dropped` if it was dropped).
   */
  directive(d: Directive): { refs: AttachmentRef[]; owner: AttachmentOwner } {
    const refs: AttachmentRef[] = [];
    const h = d.header;
    const owner: AttachmentOwner = { dropped: false };
    if (h.messageId !== undefined) owner.directiveMessageId = h.messageId;
    if (h.dialogRequestId !== undefined) owner.dialogRequestId = h.dialogRequestId;
    const seen = new Set<string>();
    for (const { contentId } of cidReferences(d)) {
      if (seen.has(contentId)) continue;
      seen.add(contentId);
      const keys = idForms(contentId);
      const hit = keys.find((k) => this.arrived.has(k));
      if (hit !== undefined) {
        const a = this.arrived.get(hit)!;
        a.referenced = true;
        refs.push(a.contentType !== undefined ? { contentId, contentType: a.contentType } : { contentId });
        continue;
      }
      refs.push({ contentId });
      const e: Expected = { owner, keys, at: this.seq, what: { contentId, namespace: h.namespace, name: h.name } };
      this.makeRoom(this.distinctExpected(), () => this.expire(this.expected.values().next().value!));
      for (const k of keys) if (!this.expected.has(k)) this.expected.set(k, e);
    }
    return { refs, owner };
  }

  /** An attachment part started; returns its owner when its directive came first. */
  attachment(contentId: string, contentType: string | undefined): AttachmentOwner | undefined {
    const e = this.expected.get(contentId);
    if (e) {
      for (const k of e.keys) if (this.expected.get(k) === e) this.expected.delete(k);
      return e.owner;
    }
    const old = this.arrived.get(contentId);
    if (old) this.forget(contentId, old);
    this.makeRoom(this.arrived.size, () => {
      const [id, a] = this.arrived.entries().next().value!;
      this.forget(id, a);
    });
    this.arrived.set(contentId, { contentType, at: this.seq, referenced: false });
    return undefined;
  }

  /** The body ended: whatever is still unmatched is reported. */
  end(): void {
    for (const e of new Set(this.expected.values())) this.expire(e);
    for (const [id, a] of this.arrived) this.forget(id, a);
  }

  private distinctExpected(): number {
    return new Set(this.expected.values()).size;
  }

  private makeRoom(size: number, evictOldest: () => void): void {
    for (let n = size; n >= this.maxPending && n > 0; n--) evictOldest();
  }

  private expire(e: Expected): void {
    for (const k of e.keys) if (this.expected.get(k) === e) this.expected.delete(k);
    if (e.owner.dropped) return;
    const { namespace, name, contentId } = e.what as { namespace: string; name: string; contentId: string };
    this.onError(badDirective('missing-attachment', `directive ${namespace}.${name} references cid:${contentId}, which did not arrive`, e.what));
  }

  private forget(id: string, a: Arrived): void {
    this.arrived.delete(id);
    if (!a.referenced) this.onError(badDirective('unreferenced-attachment', 'an attachment was not referenced by any directive', { contentId: id }));
  }
}
