// A minimal CIC peer for client state-machine tests: node:http2 over TLS on 127.0.0.1.
// Downchannel with Clova.Hello, events answered 204, per-path status overrides, counters.
// (The full emulator with fault injection lives in test/emulator/.)
import type * as http2 from 'node:http2';
import { readBody, startH2Server, type TestServer } from './h2-server';

export interface MiniCic {
  server: TestServer;
  port: number;
  ca: string;
  downchannels: http2.ServerHttp2Stream[];
  events: Array<{ token: string; metadata: unknown }>;
  counts: { downchannel: number; events: number; ping: number };
  /** While set, events are accepted and never answered (they stay in flight). */
  holdEvents: boolean;
  held: http2.ServerHttp2Stream[];
  /** Next N responses on a path get this status (with a System.Exception body). */
  failNext(path: string, status: number, count?: number): void;
  /** Accept only this bearer token (default: any). */
  validTokens: Set<string> | undefined;
  pushDirective(namespace: string, name: string, payload?: object, dialogRequestId?: string): void;
  close(): Promise<void>;
}

const BOUNDARY = 'mini-cic-boundary';

// As CIC does, every part is followed at once by the next delimiter, so the client can
// dispatch it without waiting for the next directive.
function part(json: object): string {
  return `\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify(json)}\r\n--${BOUNDARY}`;
}

export async function startMiniCic(): Promise<MiniCic> {
  const server = await startH2Server();
  const failures = new Map<string, Array<number>>();
  const cic: MiniCic = {
    server,
    port: server.port,
    ca: server.ca,
    downchannels: [],
    events: [],
    counts: { downchannel: 0, events: 0, ping: 0 },
    validTokens: undefined,
    holdEvents: false,
    held: [],
    failNext: (path, status, count = 1) => failures.set(path, [...(failures.get(path) ?? []), ...Array(count).fill(status)]),
    pushDirective(namespace, name, payload = {}, dialogRequestId) {
      const dc = cic.downchannels[cic.downchannels.length - 1];
      const header: Record<string, string> = { namespace, name, messageId: `m-${Math.random().toString(36).slice(2)}` };
      if (dialogRequestId) header.dialogRequestId = dialogRequestId;
      dc?.write(part({ directive: { header, payload } }));
    },
    close: () => server.close(),
  };
  const refuse = (s: http2.ServerHttp2Stream, path: string, h: http2.IncomingHttpHeaders): boolean => {
    const token = String(h.authorization ?? '').replace(/^Bearer /, '');
    const queued = failures.get(path);
    const status = queued?.length ? queued.shift()! : cic.validTokens && !cic.validTokens.has(token) ? 401 : 0;
    if (!status) return false;
    s.respond({ ':status': status, 'content-type': 'application/json' });
    s.end(JSON.stringify({ directive: { header: { namespace: 'System', name: 'Exception' }, payload: { code: String(status), description: 'refused' } } }));
    return true;
  };
  server.route('/v1/directives', (s, h) => {
    cic.counts.downchannel++;
    if (refuse(s, '/v1/directives', h)) return;
    cic.downchannels.push(s);
    s.respond({ ':status': 200, 'content-type': `multipart/related; boundary=${BOUNDARY}` });
    s.write(`--${BOUNDARY}`);
    s.write(part({ directive: { header: { namespace: 'Clova', name: 'Hello', messageId: 'hello-1' }, payload: {} } }));
  });
  server.route('/v1/events', async (s, h) => {
    if (cic.holdEvents) {
      cic.held.push(s);
      return;
    }
    cic.counts.events++;
    const body = await readBody(s);
    if (refuse(s, '/v1/events', h)) return;
    const text = body.toString('utf8');
    const json = text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1);
    cic.events.push({ token: String(h.authorization ?? '').replace(/^Bearer /, ''), metadata: JSON.parse(json) });
    s.respond({ ':status': 204 });
    s.end();
  });
  server.route('/ping', (s, h) => {
    cic.counts.ping++;
    if (refuse(s, '/ping', h)) return;
    s.respond({ ':status': 204 });
    s.end();
  });
  return cic;
}
