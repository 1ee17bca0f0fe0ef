import type { Handler } from './context';
import { text } from './fields';

/** `ping` {text?} → `pong` {text?}: the text comes back as it was. */
export const ping: Handler = (frame, { session }) => {
  const t = text('ping', frame.data, 'text', false, 4096);
  session.send('pong', t === undefined ? {} : { text: t });
};
