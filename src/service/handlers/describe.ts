import type { Handler } from './context';

/** `describe` → `info` {name, version, nghttp2, node, target}. */
export const describe: Handler = (_frame, { session, info }) => {
  session.send('info', { ...info });
};
