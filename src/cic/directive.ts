// Directives out of multipart parts: decoding (strict UTF-8 JSON, shape checks,
// System.Exception), linking `cid:` payload URLs to attachment parts, assembling one
// response's parts into deliverable directives, and dropping stale dialog directives.
import { CicError, toCicError } from '../errors';
import { parseMultipartContentType } from './content-type';
import type { Directive, DirectiveHeader } from './message';
import { newDialogRequestId } from './message';
import { MultipartParser, type MultipartPart } from './multipart-parser';

export interface Attachment {
  /** Content-ID without `<>`. */
  contentId: string;
  contentType?: string;
  body: Buffer;
}

export type DecodedPart =
  | { kind: 'directive'; directive: Directive }
  | ({ kind: 'attachment' } & Attachment)
  | { kind: 'error'; error: CicError };

export type DirectiveSource = 'downchannel' | 'event';

/** A directive ready for the application, with the attachments its payload references. */
export interface AssembledDirective {
  directive: Directive;
  attachments: Attachment[];
  source: DirectiveSource;
}

// Fatal: a directive with a broken byte sequence is refused, never "repaired" with U+FFFD.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stripAngles(v: string): string {
  const t = v.trim();
  return t.length >= 2 && t[0] === '<' && t[t.length - 1] === '>' ? t.slice(1, -1).trim() : t;
}

function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

function isJsonType(type: string): boolean {
  return type === 'application/json' || type === 'text/json' || type.endsWith('+json');
}

/** First byte that is not JSON whitespace is `{`. */
function looksLikeJson(body: Buffer): boolean {
  for (let i = 0; i < body.length && i < 64; i++) {
    const b = body[i]!;
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x7b || (b === 0xef && body[i + 1] === 0xbb && body[i + 2] === 0xbf && body[i + 3] === 0x7b); // `{`, or BOM + `{`
  }
  return false;
}

function badDirective(reason: string, message: string, details: Record<string, unknown> = {}): CicError {
  // Never the body itself: directives can carry user speech, tokens or personal data.
  return new CicError('CIC_BAD_DIRECTIVE', message, { details: { reason, ...details } });
}

/**
 * Parses strict UTF-8 JSON. Errors carry no body content: not even the SyntaxError, whose
 * message quotes the input in recent V8 versions.
 */
function parseJson(body: Buffer, details: Record<string, unknown>): { ok: true; value: unknown } | { ok: false; error: CicError } {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return { ok: false, error: badDirective('invalid-utf8', 'directive part is not valid UTF-8', { bytes: body.length, ...details }) };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, error: badDirective('invalid-json', 'directive part is not valid JSON', { bytes: body.length, ...details }) };
  }
}

/**
 * The System.Exception inside a parsed body, as CicError CIC_EXCEPTION, or undefined.
 * Accepted forms: `{directive:{header:{namespace:'System',name:'Exception'},payload}}`,
 * the same without the `directive` wrapper, and a bare `{payload:{code, description}}`.
 * `code` may be a number or a string; it is reported as a string.
 */
export function exceptionFrom(value: unknown): CicError | undefined {
  if (!isObject(value)) return undefined;
  const d = isObject(value.directive) ? value.directive : value;
  const header = d.header;
  const payload = d.payload;
  const named = isObject(header) && header.namespace === 'System' && header.name === 'Exception';
  const bare = header === undefined && isObject(payload) && 'code' in payload;
  if (!named && !bare) return undefined;
  const p = isObject(payload) ? payload : {};
  const code = typeof p.code === 'string' ? p.code : typeof p.code === 'number' && Number.isFinite(p.code) ? String(p.code) : undefined;
  let description = typeof p.description === 'string' ? p.description : undefined;
  if (description !== undefined && description.length > 500) description = `${description.slice(0, 500)}…`;
  const text = `CIC System.Exception${code !== undefined ? ` ${code}` : ''}${description ? `: ${description}` : ''}`;
  return new CicError('CIC_EXCEPTION', text, { details: { code, description } });
}

/** The System.Exception in an error response body (any status), or undefined. */
export function exceptionFromBody(body: Buffer): CicError | undefined {
  if (body.length === 0 || !looksLikeJson(body)) return undefined;
  const parsed = parseJson(body, {});
  return parsed.ok ? exceptionFrom(parsed.value) : undefined;
}

/** Validates and normalises `{directive:{header,payload}}` or a bare `{header,payload}`. */
export function toDirective(value: unknown, details: Record<string, unknown> = {}): Directive | CicError {
  const exception = exceptionFrom(value);
  if (exception) return exception;
  if (!isObject(value)) return badDirective('shape', 'directive JSON is not an object', details);
  const d = value.directive !== undefined ? value.directive : value;
  if (!isObject(d)) return badDirective('shape', 'directive is not an object', details);
  const h = d.header;
  if (!isObject(h)) return badDirective('shape', 'directive has no header object', details);
  if (typeof h.namespace !== 'string' || h.namespace === '' || typeof h.name !== 'string' || h.name === '') {
    return badDirective('shape', 'directive header needs namespace and name strings', details);
  }
  for (const key of ['messageId', 'dialogRequestId'] as const) {
    const v = h[key];
    if (v !== undefined && v !== null && typeof v !== 'string') {
      return badDirective('shape', `directive header ${key} is not a string`, { ...details, namespace: h.namespace, name: h.name });
    }
  }
  const payload = d.payload;
  if (payload !== undefined && payload !== null && !isObject(payload)) {
    return badDirective('shape', 'directive payload is not an object', { ...details, namespace: h.namespace, name: h.name });
  }
  const header: DirectiveHeader = { ...h, namespace: h.namespace, name: h.name };
  if (header.messageId === null) delete header.messageId;
  if (header.dialogRequestId === null || header.dialogRequestId === '') delete header.dialogRequestId;
  return { header, payload: (payload ?? {}) as Record<string, unknown> };
}

/**
 * One multipart part → a directive, an attachment, or an error (CIC_BAD_DIRECTIVE,
 * CIC_EXCEPTION). JSON parts are recognised by content type (application/json with or
 * without charset, text/json, *+json) or, when the part has no content type, by a body
 * that starts with `{`. Everything else is an attachment and needs a Content-ID.
 */
export function decodeDirectivePart(part: MultipartPart): DecodedPart {
  const type = mediaType(part.contentType ?? part.headers?.['content-type']);
  const cidHeader = part.contentId ?? part.headers?.['content-id'];
  const contentId = cidHeader === undefined ? undefined : stripAngles(cidHeader);
  const details: Record<string, unknown> = contentId ? { contentId } : {};
  const json = type === undefined ? looksLikeJson(part.body) : isJsonType(type);
  if (!json) {
    if (!contentId) return { kind: 'error', error: badDirective('attachment-without-content-id', 'a binary part has no Content-ID', { contentType: type }) };
    const a: DecodedPart = { kind: 'attachment', contentId, body: part.body };
    if (part.contentType !== undefined) a.contentType = part.contentType;
    return a;
  }
  const parsed = parseJson(part.body, details);
  if (!parsed.ok) return { kind: 'error', error: parsed.error };
  const d = toDirective(parsed.value, details);
  return d instanceof CicError ? { kind: 'error', error: d } : { kind: 'directive', directive: d };
}

// ---- cid: links ---------------------------------------------------------------------------

export interface CidReference {
  /** Content-ID as written after `cid:` (without `<>`). */
  contentId: string;
  /** Where in the directive the URL sits, e.g. ['payload', 'audioItem', 'stream', 'url']. */
  path: Array<string | number>;
}

/** Nesting deeper than this is not searched (a hostile payload cannot exhaust the stack or CPU). */
const MAX_WALK_DEPTH = 32;
const MAX_WALK_NODES = 10_000;

/** Every payload string of the form `cid:<id>` (prefix case-insensitive), at any depth. */
export function cidReferences(directive: Directive): CidReference[] {
  const out: CidReference[] = [];
  const stack: Array<{ v: unknown; path: Array<string | number> }> = [{ v: directive.payload, path: ['payload'] }];
  let nodes = 0;
  while (stack.length > 0 && nodes++ < MAX_WALK_NODES) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > 4 && v.slice(0, 4).toLowerCase() === 'cid:') {
        const id = stripAngles(v.slice(4));
        if (id) out.push({ contentId: id, path });
      }
    } else if (typeof v === 'object' && v !== null && path.length <= MAX_WALK_DEPTH) {
      const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ v: entries[i]![1], path: [...path, entries[i]![0]] });
    }
  }
  return out;
}

/**
 * Finds the attachment for a `cid:` id. Content-IDs compare case-sensitively (RFC 2392);
 * a URL may percent-encode the id (`cid:a%40b` ↔ `<a@b>`), so the decoded form is tried too.
 */
function findAttachment(id: string, byId: ReadonlyMap<string, Attachment>): Attachment | undefined {
  const exact = byId.get(id);
  if (exact || !id.includes('%')) return exact;
  try {
    return byId.get(decodeURIComponent(id));
  } catch {
    return undefined;
  }
}

function byContentId(attachments: Iterable<Attachment> | ReadonlyMap<string, Attachment>): ReadonlyMap<string, Attachment> {
  if (attachments instanceof Map) return attachments;
  const m = new Map<string, Attachment>();
  for (const a of attachments as Iterable<Attachment>) m.set(stripAngles(a.contentId), a);
  return m;
}

export interface AttachmentLink extends CidReference {
  directive: Directive;
  attachment: Attachment;
}

/** Resolves `cid:` URLs in the directives' payloads; `unmatched` lists ids with no attachment. */
export function linkAttachments(
  directives: readonly Directive[],
  attachments: Iterable<Attachment> | ReadonlyMap<string, Attachment>,
): { links: AttachmentLink[]; unmatched: string[] } {
  const byId = byContentId(attachments);
  const links: AttachmentLink[] = [];
  const unmatched = new Set<string>();
  for (const directive of directives) {
    for (const ref of cidReferences(directive)) {
      const attachment = findAttachment(ref.contentId, byId);
      if (attachment) links.push({ ...ref, directive, attachment });
      else unmatched.add(ref.contentId);
    }
  }
  return { links, unmatched: [...unmatched] };
}

// ---- assembling one response --------------------------------------------------------------

export interface AssemblerLimits {
  /** Bytes of attachments and directive JSON held at once (default 8 MiB). */
  maxPendingBytes?: number;
  /** Directives and attachments held at once (default 64). */
  maxPendingParts?: number;
  /**
   * Downchannel only: how many further parts a directive waits for its attachments (and an
   * attachment for its directive) before it is delivered without them / dropped (default 8).
   */
  maxWaitParts?: number;
}

export const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_PENDING_PARTS = 64;
/** CIC sends a directive and its attachment back to back; 8 parts is a generous window. */
export const DEFAULT_MAX_WAIT_PARTS = 8;

export interface DirectiveAssemblerOptions extends AssemblerLimits {
  /** 'event': a finite response, delivered at end(). 'downchannel': never ends, delivered as parts complete. */
  source: DirectiveSource;
  onDirective(d: AssembledDirective): void;
  onError(err: CicError): void;
}

interface Waiting {
  directive: Directive;
  refs: string[];
  at: number;
  bytes: number;
}

/**
 * Turns the parts of one response into directives with their attachments.
 *
 * Event response (finite): everything is held (within maxPendingBytes/Parts; parts beyond
 * are refused with CIC_PART_TOO_LARGE) and delivered in order at end(), because an
 * attachment may come after the directive that references it.
 *
 * Downchannel (infinite): a directive that references no `cid:` — or whose attachments are
 * already here — is delivered at once. One that waits holds back the directives after it
 * (order is kept), for at most maxWaitParts further parts; then it is delivered without
 * the missing attachments (each reported as CIC_BAD_DIRECTIVE reason missing-attachment).
 * Attachments nobody referenced within maxWaitParts parts are dropped (reported as
 * unreferenced-attachment). The wait is measured in parts, not time: no timer, and a quiet
 * downchannel holds at most one incomplete directive (released at end()). When a limit is
 * hit the oldest waiting directive is released first, then the oldest attachment dropped.
 */
export class DirectiveAssembler {
  private readonly source: DirectiveSource;
  private readonly stream: boolean;
  private readonly onDirective: (d: AssembledDirective) => void;
  private readonly onError: (err: CicError) => void;
  private readonly maxBytes: number;
  private readonly maxParts: number;
  private readonly maxWait: number;
  private readonly queue: Waiting[] = [];
  private readonly attachments = new Map<string, { a: Attachment; at: number }>();
  private readonly used = new Set<string>();
  private bytes = 0;
  private seq = 0;
  private ended = false;

  constructor(opts: DirectiveAssemblerOptions) {
    if (!opts || (opts.source !== 'event' && opts.source !== 'downchannel') || typeof opts.onDirective !== 'function' || typeof opts.onError !== 'function') {
      throw new CicError('ERR_INVALID_ARGUMENT', "DirectiveAssembler needs source ('event' | 'downchannel'), onDirective and onError");
    }
    this.source = opts.source;
    this.stream = opts.source === 'downchannel';
    this.onDirective = opts.onDirective;
    this.onError = opts.onError;
    this.maxBytes = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.maxParts = opts.maxPendingParts ?? DEFAULT_MAX_PENDING_PARTS;
    this.maxWait = opts.maxWaitParts ?? DEFAULT_MAX_WAIT_PARTS;
  }

  /** Bytes held (attachment bodies + JSON of waiting directives). */
  get pendingBytes(): number {
    return this.bytes;
  }

  /** Directives and attachments held. */
  get pendingParts(): number {
    return this.queue.length + this.attachments.size;
  }

  push(part: MultipartPart): void {
    if (this.ended) return;
    this.seq++;
    const d = decodeDirectivePart(part);
    if (d.kind === 'error') this.onError(d.error);
    else if (d.kind === 'attachment') this.addAttachment({ contentId: d.contentId, body: d.body, ...(d.contentType !== undefined ? { contentType: d.contentType } : {}) });
    else this.addDirective(d.directive, part.body.length);
    if (this.stream) this.drain(false);
  }

  /** The response ended (or the downchannel closed): deliver what is held. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.drain(true);
    for (const id of [...this.attachments.keys()]) this.dropAttachment(id);
  }

  private addDirective(directive: Directive, size: number): void {
    if (!this.makeRoom(size)) {
      this.onError(new CicError('CIC_PART_TOO_LARGE', `directive ${directive.header.namespace}.${directive.header.name} dropped: the response holds too much`, {
        details: { namespace: directive.header.namespace, name: directive.header.name, limitBytes: this.maxBytes, limitParts: this.maxParts },
      }));
      return;
    }
    const refs = [...new Set(cidReferences(directive).map((r) => r.contentId))];
    this.queue.push({ directive, refs, at: this.seq, bytes: size });
    this.bytes += size;
  }

  private addAttachment(a: Attachment): void {
    const old = this.attachments.get(a.contentId);
    if (old) {
      // A repeated Content-ID: the later part wins.
      this.attachments.delete(a.contentId);
      this.bytes -= old.a.body.length;
    }
    if (!this.makeRoom(a.body.length)) {
      this.onError(new CicError('CIC_PART_TOO_LARGE', 'attachment dropped: the response holds too much', {
        details: { contentId: a.contentId, bytes: a.body.length, limitBytes: this.maxBytes, limitParts: this.maxParts },
      }));
      return;
    }
    this.attachments.set(a.contentId, { a, at: this.seq });
    this.bytes += a.body.length;
  }

  private makeRoom(size: number): boolean {
    const over = () => this.bytes + size > this.maxBytes || this.queue.length + this.attachments.size + 1 > this.maxParts;
    if (size > this.maxBytes) return false;
    while (over()) {
      if (!this.stream) return false;
      if (this.queue.length > 0) {
        this.release();
        continue;
      }
      const oldest = this.attachments.keys().next();
      if (oldest.done) return false;
      this.dropAttachment(oldest.value);
    }
    return true;
  }

  private lookup(id: string): Attachment | undefined {
    const exact = this.attachments.get(id);
    if (exact || !id.includes('%')) return exact?.a;
    try {
      return this.attachments.get(decodeURIComponent(id))?.a;
    } catch {
      return undefined;
    }
  }

  private drain(force: boolean): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (force || this.seq - head.at >= this.maxWait || head.refs.every((id) => this.lookup(id) !== undefined)) this.release();
      else break;
    }
    if (!this.stream || force) return;
    for (const [id, e] of this.attachments) {
      if (this.seq - e.at >= this.maxWait && !this.queue.some((q) => q.refs.includes(id))) this.dropAttachment(id);
    }
  }

  /** Delivers the oldest waiting directive with whatever attachments are here. */
  private release(): void {
    const w = this.queue.shift()!;
    this.bytes -= w.bytes;
    const found: Attachment[] = [];
    for (const id of w.refs) {
      const a = this.lookup(id);
      if (a) {
        found.push(a);
        if (!this.stream) this.used.add(a.contentId); // (downchannel: deleted below instead)
      } else {
        const h = w.directive.header;
        this.onError(badDirective('missing-attachment', `directive ${h.namespace}.${h.name} references cid:${id}, which did not arrive`, {
          contentId: id, namespace: h.namespace, name: h.name,
        }));
      }
    }
    if (this.stream) {
      // The downchannel never ends: an attachment leaves memory with its directive.
      for (const a of found) {
        if (this.attachments.delete(a.contentId)) this.bytes -= a.body.length;
      }
    }
    try {
      this.onDirective({ directive: w.directive, attachments: found, source: this.source });
    } catch (e) {
      this.onError(toCicError(e, 'ERR_INTERNAL', 'an onDirective callback threw'));
    }
  }

  private dropAttachment(id: string): void {
    const e = this.attachments.get(id);
    if (!e) return;
    this.attachments.delete(id);
    this.bytes -= e.a.body.length;
    if (!this.used.has(id)) {
      this.onError(badDirective('unreferenced-attachment', 'an attachment was not referenced by any directive', { contentId: id, bytes: e.a.body.length }));
    }
  }
}

// ---- reading a whole response -------------------------------------------------------------

export interface DirectiveReaderOptions extends AssemblerLimits {
  /** The response's content-type header. */
  contentType: string | undefined;
  source: DirectiveSource;
  onDirective(d: AssembledDirective): void;
  onError(err: CicError): void;
  maxPartBytes?: number;
  maxHeaderBytes?: number;
  /** Default: 64 for an event response, unlimited for the downchannel. */
  maxParts?: number;
}

/** Parts an event response may hold before it is refused as malformed. */
export const DEFAULT_EVENT_MAX_PARTS = 64;

/**
 * Response body bytes → directives: content type, streaming parser and assembler in one.
 * A bad content type is reported (CIC_MULTIPART) from the constructor and the body ignored.
 */
export class DirectiveReader {
  private readonly parser: MultipartParser | undefined;
  private readonly assembler: DirectiveAssembler;

  constructor(opts: DirectiveReaderOptions) {
    this.assembler = new DirectiveAssembler(opts);
    let boundary: string | undefined;
    try {
      boundary = parseMultipartContentType(opts.contentType).boundary;
    } catch (e) {
      opts.onError(toCicError(e, 'CIC_MULTIPART'));
    }
    const maxParts = opts.maxParts ?? (opts.source === 'event' ? DEFAULT_EVENT_MAX_PARTS : undefined);
    this.parser = boundary === undefined ? undefined : new MultipartParser({
      boundary,
      ...(opts.maxPartBytes !== undefined ? { maxPartBytes: opts.maxPartBytes } : {}),
      ...(opts.maxHeaderBytes !== undefined ? { maxHeaderBytes: opts.maxHeaderBytes } : {}),
      ...(maxParts !== undefined ? { maxParts } : {}),
      onPart: (part) => this.assembler.push(part),
      onError: opts.onError,
    });
  }

  /** Bytes held by the parser and the assembler together. */
  get bufferedBytes(): number {
    return (this.parser?.bufferedBytes ?? 0) + this.assembler.pendingBytes;
  }

  push(chunk: Buffer): void {
    this.parser?.push(chunk);
  }

  end(): void {
    this.parser?.end();
    this.assembler.end();
  }
}

/** Factory in the shape the CIC client takes (types.ts DirectiveReaderFactory). */
export function createDirectiveReader(
  contentType: string,
  source: DirectiveSource,
  onDirective: (d: AssembledDirective) => void,
  onProblem: (err: CicError) => void,
  limits: Omit<DirectiveReaderOptions, 'contentType' | 'source' | 'onDirective' | 'onError'> = {},
): DirectiveReader {
  return new DirectiveReader({ ...limits, contentType, source, onDirective, onError: onProblem });
}

// ---- dialogs ------------------------------------------------------------------------------

/**
 * The current dialog. Directives carrying a dialogRequestId of any other dialog are stale
 * (the user barged in, or the dialog was cancelled) and are dropped; directives without a
 * dialogRequestId (Clova.Hello, cloud-initiated ones) always pass.
 */
export class DialogTracker {
  private id: string | undefined;

  get current(): string | undefined {
    return this.id;
  }

  /** Starts a dialog (with `id`, or a fresh one) and returns its id. */
  start(id: string = newDialogRequestId()): string {
    if (typeof id !== 'string' || id === '') throw new CicError('ERR_INVALID_ARGUMENT', 'dialogRequestId must be a non-empty string');
    this.id = id;
    return id;
  }

  /** Ends the current dialog (only if it is `id`, when given). */
  end(id?: string): void {
    if (id === undefined || id === this.id) this.id = undefined;
  }

  isCurrent(d: { header: { dialogRequestId?: unknown } }): boolean {
    const id = d?.header?.dialogRequestId;
    if (id === undefined || id === null || id === '') return true;
    return id === this.id;
  }
}
