// The narrow port between the device service and the rest of the runtime: what a socket
// session may ask (status, send an event, log in) and what it hears (state, directives,
// attachments). The supervisor implements it over the token manager and whichever CicClient is
// current; tests implement it with a few lines.
import type { EventResult, IncomingAttachment, OutgoingEvent, ReceivedDirective } from '../cic/types';
import type { RuntimeStatus } from './status';

export type SendingEvent = Promise<EventResult> & { messageId: string };

export type LoginRequest = { code: string } | { accountToken: string };

export type LoginOutcome =
  | { kind: 'logged-in'; deviceId: string | null; expiresAt: string | null }
  /** The user must agree to the terms at `uri`; then log in with `code`. */
  | { kind: 'terms'; uri: string; code: string };

export interface RuntimeListener {
  state?(status: RuntimeStatus): void;
  directive?(d: ReceivedDirective): void;
  attachment?(a: IncomingAttachment): void;
}

export interface RuntimePort {
  status(): RuntimeStatus;
  /**
   * Sends an event through the current client (queued while it reconnects). Throws
   * ERR_INVALID_ARGUMENT synchronously for a malformed event; rejects SOCKET_NOT_READY while
   * waiting for login or closing.
   */
  sendEvent(event: OutgoingEvent): SendingEvent;
  login(request: LoginRequest): Promise<LoginOutcome>;
  /** Adds a listener; returns the function that removes it. */
  listen(listener: RuntimeListener): () => void;
}
