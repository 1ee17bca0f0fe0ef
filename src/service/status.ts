// The runtime's state as the device socket and `run`'s stdout report it: a few words a local
// program can act on, not the CIC client's internal steps.
import type { ClientState } from '../cic/state';

export type ServiceState = 'connecting' | 'ready' | 'reconnecting' | 'waiting-for-login' | 'closing';

/** `status` answers and `state` messages (socket), `{"state": …}` lines (stdout): the same fields. */
export interface RuntimeStatus {
  state: ServiceState;
  /** Tokens are stored and the grant is not known to be dead. */
  loggedIn: boolean;
  deviceId: string | null;
  /** ISO time the access token expires, as stored. */
  tokenExpiresAt: string | null;
  /** ISO time the current connection became ready; null while not ready. */
  connectedSince: string | null;
  lastPingRttMs: number | null;
  /** Times the connection was lost and re-established (since the process started). */
  reconnects: number;
  /** Events waiting for a connection. */
  queuedEvents: number;
  version: string;
  /** Present while CIC keeps refusing fresh tokens (CIC_UNAUTHORIZED); the runtime keeps trying. */
  warning?: { code: string; message: string };
  /** The error code behind the last change of state, when there was one. */
  code?: string;
}

/** authorizing / connecting / opening-downchannel are one step for a local program: not yet ready. */
export function serviceState(client: ClientState): ServiceState {
  switch (client) {
    case 'ready':
      return 'ready';
    case 'reconnecting':
      return 'reconnecting';
    case 'closed':
      return 'closing';
    default:
      return 'connecting';
  }
}
