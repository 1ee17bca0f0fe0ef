// CIC message shapes (events up, directives down) and the builder for event metadata.
//
// dialogRequestId decision: SpeechRecognizer.Recognize and TextRecognizer.Recognize start a
// dialog, and the directives of that dialog are matched against it (DialogTracker). A
// builder that silently invented an id would leave the caller's tracker pointing at the
// previous dialog, and every answer would be dropped as stale. So the builder throws
// ERR_INVALID_ARGUMENT when it is missing for those two events; callers create one with
// newDialogRequestId() and hand the same value to DialogTracker.start().
import { randomUUID } from 'node:crypto';
import { CicError } from '../errors';

/** Header of an event we send: messageId is always present. */
export interface Header {
  namespace: string;
  name: string;
  messageId: string;
  dialogRequestId?: string;
}

/**
 * Header of a directive we receive. messageId is optional because the published CIC
 * versions do not agree on it for every directive; unknown extra fields are kept.
 */
export interface DirectiveHeader {
  namespace: string;
  name: string;
  messageId?: string;
  dialogRequestId?: string;
  [key: string]: unknown;
}

export interface Directive {
  header: DirectiveHeader;
  payload: Record<string, unknown>;
}

/** One entry of an event's `context` (client state: playback, volume, …). */
export interface ContextEntry {
  header: { namespace: string; name: string };
  payload: Record<string, unknown>;
}

/** The JSON of an event's `metadata` part. */
export interface EventMessage {
  context: ContextEntry[];
  event: { header: Header; payload: Record<string, unknown> };
}

export interface EventInput {
  namespace: string;
  name: string;
  payload?: Record<string, unknown>;
  context?: ContextEntry[];
  dialogRequestId?: string;
  /** Defaults to a fresh UUID v4. */
  messageId?: string;
}

/** Events that open a dialog: a dialogRequestId is mandatory (CIC reference). */
export const DIALOG_EVENTS: ReadonlySet<string> = new Set(['SpeechRecognizer.Recognize', 'TextRecognizer.Recognize']);

/** A fresh dialogRequestId (UUID v4). */
export function newDialogRequestId(): string {
  return randomUUID();
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(message: string): never {
  throw new CicError('ERR_INVALID_ARGUMENT', message);
}

function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** Builds `{context, event:{header, payload}}` with a fresh messageId. Throws ERR_INVALID_ARGUMENT. */
export function buildEventMetadata(input: EventInput): EventMessage {
  if (!isPlainObject(input)) bad('an event needs namespace and name');
  const { namespace, name, payload, context, dialogRequestId, messageId } = input;
  if (!nonEmpty(namespace) || !nonEmpty(name)) bad('an event needs a non-empty namespace and name');
  if (payload !== undefined && !isPlainObject(payload)) bad(`event ${namespace}.${name}: payload must be an object`);
  if (context !== undefined) {
    if (!Array.isArray(context)) bad(`event ${namespace}.${name}: context must be an array`);
    for (const c of context) {
      if (!isPlainObject(c) || !isPlainObject(c.header) || !nonEmpty(c.header.namespace) || !nonEmpty(c.header.name)) {
        bad(`event ${namespace}.${name}: each context entry needs header.namespace and header.name`);
      }
      if (c.payload !== undefined && !isPlainObject(c.payload)) bad(`event ${namespace}.${name}: context payload must be an object`);
    }
  }
  if (messageId !== undefined && !nonEmpty(messageId)) bad('messageId must be a non-empty string');
  if (dialogRequestId !== undefined && !nonEmpty(dialogRequestId)) bad('dialogRequestId must be a non-empty string');
  if (dialogRequestId === undefined && DIALOG_EVENTS.has(`${namespace}.${name}`)) {
    bad(`event ${namespace}.${name} needs a dialogRequestId (create one with newDialogRequestId())`);
  }
  const header: Header = { namespace, name, messageId: messageId ?? randomUUID() };
  if (dialogRequestId !== undefined) header.dialogRequestId = dialogRequestId;
  return {
    context: (context ?? []).map((c) => ({ header: { namespace: c.header.namespace, name: c.header.name }, payload: c.payload ?? {} })),
    event: { header, payload: payload ?? {} },
  };
}
