// A RuntimePort for service tests: statuses, directives, attachments and event results are
// whatever the test says, and every event handed to it is kept with its controls.
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { CicError } from '../../src/errors';
import type { EventResult, IncomingAttachment, OutgoingEvent, ReceivedDirective } from '../../src/cic/types';
import type { LoginOutcome, LoginRequest, RuntimeListener, RuntimePort, SendingEvent } from '../../src/service/port';
import type { RuntimeStatus } from '../../src/service/status';

export interface FakeEvent {
  event: OutgoingEvent;
  messageId: string;
  resolve(r: Partial<EventResult>): void;
  reject(e: CicError): void;
  /** Reads the audio iterable to its end (or its error); the chunks read. */
  readAudio(): Promise<{ chunks: Buffer[]; error?: CicError }>;
}

export class FakeRuntime implements RuntimePort {
  readonly events: FakeEvent[] = [];
  readonly listeners = new Set<RuntimeListener>();
  current: RuntimeStatus = {
    state: 'ready',
    loggedIn: true,
    deviceId: 'dev-1',
    tokenExpiresAt: '2026-01-01T01:00:00.000Z',
    connectedSince: '2026-01-01T00:00:00.000Z',
    lastPingRttMs: 3,
    reconnects: 0,
    queuedEvents: 0,
    version: '9.9.9',
  };
  refuse: CicError | undefined;
  onLogin: (r: LoginRequest) => Promise<LoginOutcome> = async () => ({ kind: 'logged-in', deviceId: 'dev-1', expiresAt: null });

  status(): RuntimeStatus {
    return { ...this.current };
  }

  sendEvent(event: OutgoingEvent): SendingEvent {
    if (this.refuse) throw this.refuse;
    const messageId = randomUUID();
    let resolve!: (r: EventResult) => void;
    let reject!: (e: CicError) => void;
    const p = new Promise<EventResult>((res, rej) => {
      resolve = res;
      reject = rej;
    }) as SendingEvent;
    p.messageId = messageId;
    this.events.push({
      event,
      messageId,
      resolve: (r) => resolve({ messageId, status: 200, directives: [], ...r }),
      reject,
      readAudio: async () => {
        const chunks: Buffer[] = [];
        try {
          for await (const c of event.audio as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
          return { chunks };
        } catch (e) {
          return { chunks, error: e as CicError };
        }
      },
    });
    return p;
  }

  login(r: LoginRequest): Promise<LoginOutcome> {
    return this.onLogin(r);
  }

  listen(l: RuntimeListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  setState(patch: Partial<RuntimeStatus>): void {
    this.current = { ...this.current, ...patch };
    for (const l of this.listeners) l.state?.(this.status());
  }

  directive(namespace: string, name: string, extra: { dialogRequestId?: string; eventMessageId?: string; source?: 'downchannel' | 'event'; payload?: object } = {}): ReceivedDirective {
    const d: ReceivedDirective = {
      directive: {
        header: { namespace, name, messageId: randomUUID(), ...(extra.dialogRequestId ? { dialogRequestId: extra.dialogRequestId } : {}) },
        payload: (extra.payload ?? {}) as Record<string, unknown>,
      },
      attachments: [],
      source: extra.source ?? (extra.eventMessageId ? 'event' : 'downchannel'),
      ...(extra.eventMessageId ? { eventMessageId: extra.eventMessageId } : {}),
    };
    for (const l of this.listeners) l.directive?.(d);
    return d;
  }

  /** Announces an attachment whose bytes the test pushes (push(null) ends it). */
  attachment(a: Omit<IncomingAttachment, 'stream'>, stream = new Readable({ read() {} })): Readable {
    for (const l of this.listeners) l.attachment?.({ ...a, stream });
    return stream;
  }
}
