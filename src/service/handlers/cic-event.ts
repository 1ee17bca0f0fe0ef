// `cic-event` {namespace, name, payload, context?, dialogRequestId?, id?, audio?}: sends an event.
// The sender gets `event-sent` {id, messageId, status} or `event-failed` {id, messageId, code},
// and the directives answering it whether or not it subscribed (the hub routes them).
// With `audio: true` the client's following audio-chunk messages are the event's audio part.
import { isCicError } from '../../errors';
import type { OutgoingEvent, ReceivedDirective } from '../../cic/types';
import { AudioUpload } from '../audio-upload';
import type { Session } from '../session';
import type { Handler } from './context';
import { bad, onlyFields, text } from './fields';

const FIELDS = ['namespace', 'name', 'payload', 'context', 'dialogRequestId', 'id', 'audio'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export const cicEvent: Handler = (frame, { session, runtime, hub, limits }) => {
  const d = frame.data;
  onlyFields('cic-event', d, FIELDS);
  const namespace = text('cic-event', d, 'namespace', true, 128);
  const name = text('cic-event', d, 'name', true, 128);
  const payload = d.payload ?? {};
  if (!isObject(payload)) throw bad('cic-event', '"payload" must be an object');
  if (d.context !== undefined && d.context !== null && !Array.isArray(d.context)) throw bad('cic-event', '"context" must be an array');
  const dialogRequestId = text('cic-event', d, 'dialogRequestId', false, 128);
  if (d.id !== undefined && d.id !== null && typeof d.id !== 'string' && typeof d.id !== 'number') throw bad('cic-event', '"id" must be a string or a number');
  if (d.audio !== undefined && d.audio !== null && typeof d.audio !== 'boolean') throw bad('cic-event', '"audio" must be true or false');
  const id = (d.id as string | number | undefined | null) ?? null;

  const failed = (code: string, why: string) => {
    session.log.warn('socket event refused', { code, text: why });
    session.send('event-failed', { id, messageId: null, code, text: why });
  };
  if (session.eventsInFlight >= limits.maxEventsPerClient) {
    return failed('SOCKET_TOO_MANY_EVENTS', `already ${limits.maxEventsPerClient} events in flight`);
  }
  let upload: AudioUpload | undefined;
  if (d.audio === true) {
    if (session.upload?.open) return failed('SOCKET_AUDIO_STATE', 'a live-audio event is still open: send audio-stop first');
    upload = new AudioUpload({ dialogRequestId, onSpace: () => session.updateReading(), limit: limits.audioQueueChunks });
  }
  const event: OutgoingEvent = { namespace, name, payload, ...(Array.isArray(d.context) ? { context: d.context } : {}), ...(dialogRequestId ? { dialogRequestId } : {}) };
  if (upload) event.audio = upload.chunks;

  let sending: ReturnType<typeof runtime.sendEvent>;
  try {
    sending = runtime.sendEvent(event);
  } catch (e) {
    return failed(isCicError(e) ? e.code : 'ERR_INTERNAL', e instanceof Error ? e.message : 'the event was refused');
  }
  const messageId = sending.messageId;
  if (upload) {
    upload.messageId = messageId;
    session.upload = upload;
  }
  hub.registerEvent(session, messageId, dialogRequestId);
  session.eventStarted();
  sending.then(
    (r) => {
      deliverMissed(session, r.directives);
      session.send('event-sent', { id, messageId, status: r.status });
    },
    (e: unknown) => {
      const code = isCicError(e) ? e.code : 'ERR_INTERNAL';
      session.log.warn('socket event failed', { messageId, code });
      session.send('event-failed', { id, messageId, code });
    },
  ).finally(() => {
    upload?.discard();
    session.eventEnded();
  });
};

/**
 * The event's own directives that did not reach the sender while they streamed (no
 * eventMessageId or dialogRequestId to route them by), with any attachment they carry in full.
 */
function deliverMissed(session: Session, directives: readonly ReceivedDirective[]): void {
  for (const d of directives) {
    if (session.hasDirective(d)) continue;
    session.directive(d);
    for (const a of d.attachments ?? []) {
      const body = (a as { body?: unknown }).body;
      if (!Buffer.isBuffer(body)) continue;
      const head = { contentId: a.contentId, messageId: d.directive.header.messageId ?? null };
      for (let at = 0; at < body.length; at += 64 * 1024) session.send('attachment-chunk', head, body.subarray(at, at + 64 * 1024));
      session.send('attachment-end', { ...head, bytes: body.length });
    }
  }
}
