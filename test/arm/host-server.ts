// Host side of the emulated HTTP/2 exchange (test/arm/h2-smoke.ts): node:http2 over TLS on
// 127.0.0.1 with the test PKI, run natively by scripts/test-arm.mjs, never by the emulated
// process (without binfmt an emulated program cannot start another one).
import { createHash } from 'node:crypto';
import type { ServerHttp2Session } from 'node:http2';
import { testPki } from '../support/certs';
import { readBody, startH2Server } from '../support/h2-server';

export interface SmokeServer {
  port: number;
  caPath: string;
  /** Distinct HTTP/2 sessions that made a request. */
  sessionsSeen(): number;
  /** Sockets destroyed by /drop. */
  drops(): number;
  close(): Promise<void>;
}

export async function startSmokeServer(): Promise<SmokeServer> {
  const pki = testPki();
  const srv = await startH2Server();
  const ids = new WeakMap<ServerHttp2Session, number>();
  let sessions = 0;
  let drops = 0;
  const sessionId = (s: ServerHttp2Session): number => {
    let id = ids.get(s);
    if (id === undefined) ids.set(s, (id = ++sessions));
    return id;
  };

  srv.route('/hello', (stream, headers, session) => {
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ session: sessionId(session), arch: headers['x-arch'] ?? null }));
  });
  srv.route('/echo-hash', (stream, _headers, session) => {
    sessionId(session);
    readBody(stream).then(
      (body) => {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ length: body.length, sha256: createHash('sha256').update(body).digest('hex') }));
      },
      () => stream.close(),
    );
  });
  srv.route('/drop', (_stream, _headers, session) => {
    sessionId(session);
    drops++;
    // The raw TLS socket, not the session: the client must see the transport die mid-request.
    srv.rawSocket(session)?.destroy();
  });

  return {
    port: srv.port,
    caPath: pki.caPath,
    sessionsSeen: () => sessions,
    drops: () => drops,
    close: () => srv.close(),
  };
}
