// Directives out of multipart parts: decoding (strict UTF-8 JSON, shape checks,
// System.Exception), telling JSON parts from attachments, `cid:` payload URLs, and dropping
// stale dialog directives. Reading a whole body as it streams is directive-reader.ts's job.
import { CicError } from '../errors';
import type { Directive, DirectiveHeader } from './message';
import { newDialogRequestId } from './message';
import type { MultipartPart, PartHead } from './multipart-parser';

/** A whole binary part, as decodeDirectivePart() returns it. */
export interface AttachmentPart {
  /** Content-ID without `<>`. */
  contentId: string;
  contentType?: string;
  body: Buffer;
}

export type DecodedPart =
  | { kind: 'directive'; directive: Directive }
  | ({ kind: 'attachment' } & AttachmentPart)
  | { kind: 'error'; error: CicError };

export type DirectiveSource = 'downchannel' | 'event';

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

/** Bytes of an untyped part looked at to tell JSON from binary. */
export const SNIFF_BYTES = 64;

/**
 * First byte that is not JSON whitespace is `{` (or a UTF-8 BOM and `{`). `undefined` when the
 * bytes so far cannot tell yet (all whitespace, or a BOM cut short) and more may follow.
 */
export function sniffJson(body: Buffer, complete = true): boolean | undefined {
  for (let i = 0; i < body.length && i < SNIFF_BYTES; i++) {
    const b = body[i]!;
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    if (b === 0x7b) return true;
    if (b !== 0xef) return false;
    if (body.length < i + 4 && !complete) return undefined;
    return body[i + 1] === 0xbb && body[i + 2] === 0xbf && body[i + 3] === 0x7b; // BOM + `{`
  }
  return complete || body.length >= SNIFF_BYTES ? false : undefined;
}

function looksLikeJson(body: Buffer): boolean {
  return sniffJson(body) === true;
}

/**
 * How a part is read: 'json' (a directive, collected whole), 'binary' (an attachment, streamed)
 * or 'sniff' (no content type: its first bytes decide, see sniffJson).
 */
export function partKind(head: PartHead): 'json' | 'binary' | 'sniff' {
  const type = mediaType(head.contentType ?? head.headers?.['content-type']);
  if (type === undefined) return 'sniff';
  return isJsonType(type) ? 'json' : 'binary';
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

/** Finds the part for a `cid:` id: exact first (RFC 2392 ids are case-sensitive), then percent-decoded (`cid:a%40b` ↔ `<a@b>`). */
function findByContentId<A>(id: string, byId: ReadonlyMap<string, A>): A | undefined {
  const exact = byId.get(id);
  if (exact || !id.includes('%')) return exact;
  try {
    return byId.get(decodeURIComponent(id));
  } catch {
    return undefined;
  }
}

export interface AttachmentLink<A extends { contentId: string } = AttachmentPart> extends CidReference {
  directive: Directive;
  attachment: A;
}

/** Resolves `cid:` URLs in the directives' payloads against whole parts; `unmatched` lists ids with no part. */
export function linkAttachments<A extends { contentId: string }>(directives: readonly Directive[], attachments: ReadonlyMap<string, A>): { links: AttachmentLink<A>[]; unmatched: string[] };
export function linkAttachments<A extends { contentId: string }>(directives: readonly Directive[], attachments: Iterable<A>): { links: AttachmentLink<A>[]; unmatched: string[] };
export function linkAttachments<A extends { contentId: string }>(
  directives: readonly Directive[],
  attachments: Iterable<A> | ReadonlyMap<string, A>,
): { links: AttachmentLink<A>[]; unmatched: string[] } {
  let byId: ReadonlyMap<string, A>;
  if (attachments instanceof Map) byId = attachments;
  else {
    const m = new Map<string, A>();
    for (const a of attachments as Iterable<A>) m.set(stripAngles(a.contentId), a);
    byId = m;
  }
  const links: AttachmentLink<A>[] = [];
  const unmatched = new Set<string>();
  for (const directive of directives) {
    for (const ref of cidReferences(directive)) {
      const attachment = findByContentId(ref.contentId, byId);
      if (attachment) links.push({ ...ref, directive, attachment });
      else unmatched.add(ref.contentId);
    }
  }
  return { links, unmatched: [...unmatched] };
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
