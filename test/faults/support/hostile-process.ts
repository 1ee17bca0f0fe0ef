// Parent side of the hostile peer: forks hostile-child.js and talks to it over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { HostileOptions, PeerStats } from './hostile-peer';

export interface HostileProcess {
  port: number;
  url: string;
  pid: number;
  stats(): Promise<PeerStats>;
  stopHostile(): void;
  close(): Promise<void>;
}

export async function spawnHostilePeer(opts: HostileOptions): Promise<HostileProcess> {
  const child: ChildProcess = fork(join(__dirname, 'hostile-child.js'), [JSON.stringify(opts)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env },
  });
  let nextId = 1;
  const pending = new Map<number, (s: PeerStats) => void>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('hostile peer did not start within 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`hostile peer exited (${code}) before listening`)));
    child.on('message', (m: { type: string; port?: number; id?: number; stats?: PeerStats }) => {
      if (m.type === 'listening') {
        clearTimeout(t);
        resolve(m.port!);
      } else if (m.type === 'stats') {
        pending.get(m.id!)?.(m.stats!);
        pending.delete(m.id!);
      }
    });
  });
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    pid: child.pid!,
    stats: () =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const t = setTimeout(() => reject(new Error('hostile peer: no stats within 5 s')), 5_000);
        pending.set(id, (s) => (clearTimeout(t), resolve(s)));
        child.send({ type: 'stats', id });
      }),
    stopHostile: () => void child.send({ type: 'stop-hostile' }),
    close: async () => {
      if (child.exitCode === null && child.connected) child.send({ type: 'close' });
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(t);
    },
  };
}
