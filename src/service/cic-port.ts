// What the supervisor takes from a CicClient: its state, directives, streamed attachments and
// PING round trips, through a handful of callbacks instead of the client's whole emitter.
//
// Attachments: a client that streams announces each one with 'attachment' (IncomingAttachment,
// bytes on `stream`). A directive that still carries its attachments in full (`body` buffers)
// is turned into the same shape here, right after the directive, so a consumer codes against
// one contract. Hazard: an attachment must not reach a consumer twice, nor be left unread (an
// unread stream would hold its HTTP/2 stream's flow-control window and stall the exchange), so
// an announced attachment already produced from a body is drained and dropped.
import { Readable } from 'node:stream';
import type { ClientState, StateChange } from '../cic/state';
import type { IncomingAttachment, ReceivedDirective } from '../cic/types';
import type { ClientStats } from '../cic/client';
import type { OutgoingEvent } from '../cic/types';
import type { SendingEvent } from './port';

/** The parts of CicClient the runtime supervisor uses. */
export interface CicClientLike {
  readonly state: ClientState;
  readonly closeError: { code: string; message: string } | undefined;
  start(): void;
  stop(drainMs?: number): Promise<void>;
  stats(): Pick<ClientStats, 'queued' | 'warning'>;
  sendEvent(event: OutgoingEvent): SendingEvent;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

export interface ClientWatcher {
  state(change: StateChange): void;
  directive(d: ReceivedDirective): void;
  attachment(a: IncomingAttachment): void;
  ping(rttMs: number): void;
}

const RECENT_BODIES = 64; // attachments produced from bodies, remembered to drop a later announcement

/** Subscribes `w` to `client`; returns the function that unsubscribes. */
export function watchClient(client: CicClientLike, w: ClientWatcher): () => void {
  const fromBodies: string[] = [];
  const key = (source: string, eventMessageId: string | undefined, contentId: string) => `${source} ${eventMessageId ?? ''} ${contentId}`;
  const onDirective = (d: ReceivedDirective) => {
    w.directive(d);
    for (const a of d.attachments ?? []) {
      const body = (a as { body?: unknown }).body;
      if (!Buffer.isBuffer(body)) continue;
      fromBodies.push(key(d.source, d.eventMessageId, a.contentId));
      if (fromBodies.length > RECENT_BODIES) fromBodies.shift();
      w.attachment({
        contentId: a.contentId,
        ...(a.contentType !== undefined ? { contentType: a.contentType } : {}),
        source: d.source,
        ...(d.eventMessageId !== undefined ? { eventMessageId: d.eventMessageId } : {}),
        directiveMessageId: d.directive.header.messageId,
        ...(d.directive.header.dialogRequestId !== undefined ? { dialogRequestId: d.directive.header.dialogRequestId } : {}),
        stream: Readable.from([body], { objectMode: false }),
      });
    }
  };
  const onAttachment = (a: IncomingAttachment) => {
    if (fromBodies.includes(key(a.source, a.eventMessageId, a.contentId))) {
      a.stream.resume();
      return;
    }
    w.attachment(a);
  };
  client.on('state', w.state);
  client.on('directive', onDirective);
  client.on('attachment', onAttachment);
  client.on('ping', w.ping);
  return () => {
    client.off('state', w.state);
    client.off('directive', onDirective);
    client.off('attachment', onAttachment);
    client.off('ping', w.ping);
  };
}
