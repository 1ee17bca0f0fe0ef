// A scripted HTTP/2 "server" at the frame level over real TLS (ALPN h2) on 127.0.0.1, for
// cases no well-behaved server produces: withheld ACKs, malformed frames, floods.
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { testPki } from './certs';
import { FrameReader, type Frame } from './frames';

export interface RawConnection {
  socket: tls.TLSSocket;
  frames: Frame[];
  write(bytes: Buffer): void;
  /** Resolves when a frame matching `pred` has arrived (bounded by `timeoutMs`). */
  waitFor(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
}

export interface RawPeer {
  port: number;
  connections: RawConnection[];
  /** Resolves with the next accepted connection. */
  nextConnection(timeoutMs?: number): Promise<RawConnection>;
  close(): Promise<void>;
}

export async function startRawPeer(onConnection: (c: RawConnection) => void = () => {}, alpn: string[] = ['h2']): Promise<RawPeer> {
  const pki = testPki();
  const connections: RawConnection[] = [];
  const waiters: Array<(c: RawConnection) => void> = [];
  const server = tls.createServer({ key: pki.server.key, cert: pki.server.cert, ...(alpn.length ? { ALPNProtocols: alpn } : {}) }, (socket) => {
    const reader = new FrameReader();
    const frames: Frame[] = [];
    const frameWaiters: Array<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        frames.push(f);
        for (let i = frameWaiters.length - 1; i >= 0; i--) {
          if (frameWaiters[i]!.pred(f)) frameWaiters.splice(i, 1)[0]!.resolve(f);
        }
      }
    });
    const conn: RawConnection = {
      socket,
      frames,
      write: (b) => {
        if (!socket.destroyed) socket.write(b);
      },
      waitFor: (pred, timeoutMs = 5000) =>
        new Promise((resolve, reject) => {
          const hit = frames.find(pred);
          if (hit) return resolve(hit);
          const t = setTimeout(() => reject(new Error('raw peer: expected frame did not arrive')), timeoutMs);
          frameWaiters.push({ pred, resolve: (f) => (clearTimeout(t), resolve(f)) });
        }),
    };
    connections.push(conn);
    onConnection(conn);
    waiters.shift()?.(conn);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    nextConnection: (timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('raw peer: no connection')), timeoutMs);
        waiters.push((c) => (clearTimeout(t), resolve(c)));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}
