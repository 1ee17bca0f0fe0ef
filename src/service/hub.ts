// The hub: fans directives, attachments and state out to the socket clients, and routes each
// event's answers back to the client that sent it.
//
// Who hears a directive: every subscriber, plus the sender of the event it answers — found by
// the event's messageId for its own response stream (ReceivedDirective.eventMessageId), and by
// the event's dialogRequestId for downchannel directives of that dialog (StopCapture, a later
// Speak). A set of receivers per directive, so no client gets the same directive twice.
// Attachments go to the receivers of the directive that references them, and to the
// subscribers and the owner as above (an attachment may come before its directive).
import type { Logger } from '../log';
import type { IncomingAttachment, ReceivedDirective } from '../cic/types';
import { fanOutAttachment, type AttachmentReceiver } from './attachment-fanout';
import { ROUTE_MEMORY } from './limits';
import type { RuntimePort } from './port';
import type { RuntimeStatus } from './status';

/** What the hub needs of a socket session. */
export interface HubSession extends AttachmentReceiver {
  readonly subscribed: boolean;
  directive(d: ReceivedDirective): void;
}

/** A map that forgets its oldest entries beyond `max` (insertion order, refreshed on set). */
class Recent<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string | undefined): V | undefined {
    return k === undefined ? undefined : this.map.get(k);
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  deleteValue(pred: (v: V) => boolean): void {
    for (const [k, v] of this.map) if (pred(v)) this.map.delete(k);
  }
}

export class Hub {
  private readonly sessions = new Set<HubSession>();
  private readonly events = new Recent<HubSession>(ROUTE_MEMORY);
  private readonly dialogs = new Recent<HubSession>(ROUTE_MEMORY);
  private readonly directiveReceivers = new Recent<HubSession[]>(ROUTE_MEMORY);
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly runtime: RuntimePort,
    private readonly log: Logger,
    private readonly maxOutPayloadBytes: number,
  ) {}

  start(): void {
    this.unlisten ??= this.runtime.listen({
      state: (s) => this.state(s),
      directive: (d) => this.directive(d),
      attachment: (a) => this.attachment(a),
    });
  }

  stop(): void {
    this.unlisten?.();
    this.unlisten = undefined;
  }

  add(s: HubSession): void {
    this.sessions.add(s);
  }

  remove(s: HubSession): void {
    this.sessions.delete(s);
    this.events.deleteValue((v) => v === s);
    this.dialogs.deleteValue((v) => v === s);
  }

  /** `s` sent the event `messageId`: its answers go back to it. */
  registerEvent(s: HubSession, messageId: string, dialogRequestId: string | undefined): void {
    this.events.set(messageId, s);
    if (dialogRequestId !== undefined) this.dialogs.set(dialogRequestId, s);
  }

  private owner(source: 'downchannel' | 'event', eventMessageId: string | undefined, dialogRequestId: string | undefined): HubSession | undefined {
    const byEvent = source === 'event' ? this.events.get(eventMessageId) : undefined;
    return byEvent ?? this.dialogs.get(dialogRequestId);
  }

  private receivers(extra: Array<HubSession | undefined>): HubSession[] {
    const out = new Set<HubSession>();
    for (const s of this.sessions) if (s.subscribed) out.add(s);
    for (const s of extra) if (s && !s.closed) out.add(s);
    return [...out];
  }

  private state(status: RuntimeStatus): void {
    for (const s of this.sessions) if (s.subscribed) s.send('state', { ...status });
  }

  private directive(d: ReceivedDirective): void {
    const h = d.directive.header;
    const to = this.receivers([this.owner(d.source, d.eventMessageId, h.dialogRequestId)]);
    if (h.messageId) this.directiveReceivers.set(h.messageId, to);
    for (const s of to) s.directive(d);
  }

  private attachment(a: IncomingAttachment): void {
    const byDirective = this.directiveReceivers.get(a.directiveMessageId) ?? [];
    const to = this.receivers([...byDirective, this.owner(a.source, a.eventMessageId, a.dialogRequestId)]);
    this.log.debug('attachment', { contentId: a.contentId, receivers: to.length });
    fanOutAttachment(a, to, this.maxOutPayloadBytes, this.log);
  }
}
