import type { Handler } from './context';

/**
 * `subscribe`: from now on every directive, state change and attachment. The current state
 * comes at once, so a subscriber never has to ask `status` to know where it starts.
 */
export const subscribe: Handler = (_frame, { session, runtime }) => {
  if (session.subscribed) return;
  session.subscribed = true;
  session.send('state', { ...runtime.status() });
};
