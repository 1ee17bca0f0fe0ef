// A real HTTP/2 peer for tests: node:http2 over TLS on 127.0.0.1 (or ::1) with the test PKI.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { testPki } from './certs';

export type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, session: http2.ServerHttp2Session) => void;

export interface TestServer {
  server: http2.Http2SecureServer;
  port: number;
  ca: string;
  sessions: Set<http2.ServerHttp2Session>;
  /** The TLS socket under a session (node:http2 forbids touching session.socket directly). */
  rawSocket(session: http2.ServerHttp2Session): TLSSocket | undefined;
  route(path: string, handler: Handler): void;
  close(): Promise<void>;
}

export async function startH2Server(options: http2.SecureServerOptions = {}, cert = testPki().server, listenHost = '127.0.0.1'): Promise<TestServer> {
  const pki = testPki();
  const routes = new Map<string, Handler>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({ key: cert.key, cert: cert.cert, allowHTTP1: false, ...options });
  const raw = new Set<TLSSocket>();
  server.on('secureConnection', (sock: TLSSocket) => {
    raw.add(sock);
    sock.on('close', () => raw.delete(sock));
  });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const path = String(headers[':path']).split('?')[0]!;
    const handler = routes.get(path);
    if (!handler) {
      stream.respond({ ':status': 404 });
      stream.end();
      return;
    }
    handler(stream, headers, stream.session as http2.ServerHttp2Session);
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    ca: pki.ca,
    sessions,
    rawSocket: (session) => [...raw].find((r) => r.remotePort === session.socket.remotePort),
    route: (path, handler) => routes.set(path, handler),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads a request body fully. */
export function readBody(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
