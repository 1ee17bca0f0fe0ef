// Starts Debian's nghttpd (package nghttp2-server) on loopback with the test certificate:
// an HTTP/2 server written independently of node:http2 and of our client.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPki } from './certs';

export interface Nghttpd {
  port: number;
  htdocs: string;
  ca: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function nghttpdAvailable(): boolean {
  return spawnSync('nghttpd', ['--version'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

export async function startNghttpd(prepare: (htdocs: string) => void, extraArgs: string[] = []): Promise<Nghttpd> {
  if (!nghttpdAvailable()) throw new Error('nghttpd is not installed (Debian package nghttp2-server; .ci/run installs it)');
  const pki = testPki();
  const htdocs = mkdtempSync(join(tmpdir(), 'cic-nghttpd-'));
  prepare(htdocs);
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn('nghttpd', ['-a', '127.0.0.1', '-d', htdocs, ...extraArgs, String(port), pki.server.keyPath, pki.server.certPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let exited = false;
    child.once('exit', () => (exited = true));
    // Bounded readiness poll: at most 100 tries, 20 ms apart.
    for (let i = 0; i < 100 && !exited; i++) {
      if (await canConnect(port)) {
        return {
          port,
          htdocs,
          ca: pki.ca,
          process: child,
          stop: () =>
            new Promise<void>((resolve) => {
              if (exited) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }).then(() => rmSync(htdocs, { recursive: true, force: true })),
        };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
  }
  rmSync(htdocs, { recursive: true, force: true });
  throw new Error('nghttpd did not start');
}
