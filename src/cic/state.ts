// The CIC client's lifecycle as an explicit state machine. Every transition carries a reason
// and is emitted once.
export type ClientState =
  | 'idle'
  | 'authorizing' // getting a usable access token
  | 'connecting' // TCP + TLS + HTTP/2 SETTINGS
  | 'opening-downchannel' // GET /v1/directives sent, waiting for 200 and Clova.Hello
  | 'ready' // downchannel answered 200 and Clova.Hello arrived
  | 'reconnecting' // waiting out a backoff delay before the next attempt
  | 'closed'; // stopped by the caller, or a terminal error (dead grant)

/** Transitions the client may make; anything else is a bug and throws. */
const ALLOWED: Record<ClientState, readonly ClientState[]> = {
  idle: ['authorizing', 'closed'],
  authorizing: ['connecting', 'opening-downchannel', 'reconnecting', 'closed'],
  connecting: ['opening-downchannel', 'reconnecting', 'authorizing', 'closed'],
  'opening-downchannel': ['ready', 'reconnecting', 'authorizing', 'connecting', 'opening-downchannel', 'closed'],
  ready: ['opening-downchannel', 'reconnecting', 'authorizing', 'connecting', 'closed'],
  reconnecting: ['authorizing', 'connecting', 'closed'],
  closed: [],
};

export function canTransition(from: ClientState, to: ClientState): boolean {
  return ALLOWED[from].includes(to);
}

export interface StateChange {
  from: ClientState;
  to: ClientState;
  reason: string;
  /** Error code behind the change, if any. */
  code?: string;
}
