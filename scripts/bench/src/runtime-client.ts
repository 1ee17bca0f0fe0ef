// The runtime contender: the library's CicClient (state machine, event sender, multipart
// writer and reader, keepalive) on the runtime's Connection and native nghttp2 addon — the
// code the shipped bundle runs. Nothing here touches node:http2.
import { CicClient, CicError, Connection, readDirectives } from '../../../src/index';
import type { Contender, ContenderOptions } from './contender';
import { BENCH_USER_AGENT, benchEvent } from './workload';

export function createRuntimeContender(o: ContenderOptions): Contender {
  // The client owns its connection; the `connect` hook (a public option) keeps a reference so
  // PING round trips can be measured on the very connection that carries the events.
  let conn: Connection | undefined;
  const client = new CicClient({
    url: o.url,
    userAgent: BENCH_USER_AGENT,
    tokens: {
      getAccessToken: () => Promise.resolve(o.token),
      onUnauthorized: () => Promise.reject(new CicError('AUTH_INVALID_GRANT', 'the bench server refused the bench token')),
    },
    readDirectives,
    ca: o.ca,
    caMode: o.caMode === 'pinned' ? 'only' : 'add',
    pingIntervalMs: o.pingIntervalMs,
    connect: async (options) => (conn = await Connection.connect(options)),
  });
  const event = benchEvent();
  return {
    connect() {
      client.start();
      return client.ready();
    },
    sendEvent: () => client.sendEvent(event).then((r) => r.status),
    ping: () => conn!.ping().then(() => undefined),
    close: () => client.stop(),
  };
}
