import type { Handler } from './context';

/** `status` → `status` {state, loggedIn, deviceId, tokenExpiresAt, connectedSince, lastPingRttMs, reconnects, queuedEvents, version, warning?}. */
export const status: Handler = (_frame, { session, runtime }) => {
  session.send('status', { ...runtime.status() });
};
