// Child processes of the orchestrator: JSON lines from stdout, bounded waits, no orphans.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Resolves with the first stdout JSON line that has `key` (and when it arrived). */
  line<T = Record<string, unknown>>(key: string, timeoutMs: number): Promise<{ value: T; at: number }>;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<ChildProcess>();

/** Kills every child still running (on an error or a signal in the orchestrator). */
export function killAll(): void {
  for (const p of live) p.kill('SIGKILL');
}

export function start(cmd: string[], env: NodeJS.ProcessEnv, onSpawnAt?: (t: number) => void): Child {
  onSpawnAt?.(performance.now());
  const proc = spawn(cmd[0]!, cmd.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let err = '';
  let buf = '';
  const seen: Array<{ value: Record<string, unknown>; at: number }> = [];
  const waiters: Array<{ key: string; resolve: (v: { value: never; at: number }) => void }> = [];
  proc.stdout!.on('data', (d: Buffer) => {
    const at = performance.now();
    buf += d.toString('utf8');
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const text = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!text.startsWith('{')) continue;
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      seen.push({ value, at });
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.key in value) waiters.splice(i, 1)[0]!.resolve({ value: value as never, at });
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString('utf8')).slice(-8000);
  });
  const exited = new Promise<number | string>((resolve) => {
    proc.once('error', (e) => {
      err += `\n${e.message}`;
      live.delete(proc);
      resolve('spawn-error');
    });
    // 'close', not 'exit': 'exit' may come before the last stdout data has been read.
    proc.once('close', (code, signal) => {
      live.delete(proc);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    exited,
    stderr: () => err,
    kill: (signal = 'SIGTERM') => void proc.kill(signal),
    line<T>(key: string, timeoutMs: number) {
      const hit = seen.find((s) => key in s.value);
      if (hit) return Promise.resolve(hit as unknown as { value: T; at: number });
      return new Promise<{ value: T; at: number }>((resolve, reject) => {
        const timer = setTimeout(() => {
          proc.kill('SIGKILL');
          reject(new Error(`${cmd.join(' ')}: no "${key}" line within ${timeoutMs} ms; stderr: ${err.trim().slice(-1500)}`));
        }, timeoutMs);
        const w = {
          key,
          resolve: (v: { value: never; at: number }) => {
            clearTimeout(timer);
            resolve(v as { value: T; at: number });
          },
        };
        waiters.push(w);
        void exited.then((code) => {
          if (!waiters.includes(w)) return;
          waiters.splice(waiters.indexOf(w), 1);
          clearTimeout(timer);
          reject(new Error(`${cmd.join(' ')} exited (${code}) before a "${key}" line; stderr: ${err.trim().slice(-1500)}`));
        });
      });
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
