// The device socket's file: created 0660 (access is given by the socket's group), a stale one
// left by a crash replaced, anything else at the path refused untouched, removed on close.
//
// Hazards:
// - "Stale" is decided by connecting: a socket file nobody listens on refuses (ECONNREFUSED) and
//   is replaced; one that accepts belongs to a running process (another runtime) and is a
//   configuration error — two runtimes on one device would both hold a CIC downchannel.
// - Anything that is not a socket (a file, a directory, a symlink, even to a socket) is refused
//   and left as it is: the path may be a typo pointing at something that matters.
// - The socket is bound under a umask that leaves at most 0660, then chmod'ed to 0660: binding
//   first and tightening after would leave a moment where the process umask (0 under some
//   supervisors) lets anyone connect. Node binds a path synchronously inside listen(), so the
//   umask change lasts no longer than that call.
// - On close the file is removed (libuv unlinks a listening path itself; the check after it
//   removes the file only if it is still the socket this process bound, same inode).
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { CicError } from '../errors';
import type { Logger } from '../log';

export const SOCKET_MODE = 0o660;
/** sun_path is 108 bytes on Linux, the terminating NUL included. */
const MAX_PATH_BYTES = 107;
const PROBE_TIMEOUT_MS = 2_000;

export interface UnixListener {
  readonly server: Server;
  readonly path: string;
  /** Stops accepting and removes the socket file (if it is still ours). Idempotent. */
  close(): Promise<void>;
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? 'error';
}

/** Resolves with the connect outcome: 'live', or the errno that refused it. */
function probe(path: string): Promise<'live' | string> {
  return new Promise((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('ETIMEDOUT');
    }, PROBE_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      resolve(errno(e));
    });
  });
}

async function clearPath(path: string, log: Logger): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw new CicError('SOCKET_PATH_INVALID', `socketPath ${path}: cannot check it (${errno(e)})`, { details: { path, errno: errno(e) } });
  }
  if (!st.isSocket()) {
    const kind = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'not a socket';
    throw new CicError('SOCKET_PATH_INVALID', `socketPath ${path} exists and is ${kind}; it was left untouched (remove it or choose another path)`, { details: { path } });
  }
  const outcome = await probe(path);
  if (outcome === 'live') {
    throw new CicError('SOCKET_PATH_IN_USE', `socketPath ${path} is in use by a running process (another cic-runtime?)`, { details: { path } });
  }
  if (outcome !== 'ECONNREFUSED') {
    throw new CicError('SOCKET_PATH_INVALID', `socketPath ${path}: cannot tell whether the socket is in use (${outcome}); it was left untouched`, { details: { path, errno: outcome } });
  }
  unlinkSync(path);
  log.warn('stale device socket replaced', { path });
}

/** Opens the device socket at `path`; throws SOCKET_PATH_IN_USE / SOCKET_PATH_INVALID / SOCKET_LISTEN_FAILED. */
export async function openUnixSocket(path: string, options: { log: Logger }): Promise<UnixListener> {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw new CicError('SOCKET_PATH_INVALID', `socketPath ${path} is longer than ${MAX_PATH_BYTES} bytes (a Unix socket path limit)`, { details: { path } });
  }
  try {
    if (!statSync(dirname(path)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (e) {
    throw new CicError('SOCKET_PATH_INVALID', `socketPath ${path}: its directory ${dirname(path)} is missing or not a directory (${errno(e)}); systemd's RuntimeDirectory= creates it`, { details: { path, errno: errno(e) } });
  }
  await clearPath(path, options.log);

  // allowHalfOpen: a client's EOF must not end our side before its answers are written.
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        e.code === 'EADDRINUSE'
          ? new CicError('SOCKET_PATH_IN_USE', `socketPath ${path} was taken by another process while starting`, { details: { path } })
          : new CicError('SOCKET_LISTEN_FAILED', `socketPath ${path}: cannot listen (${e.code ?? 'error'})`, { cause: e, details: { path, errno: e.code } }),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    const previous = process.umask(0o117);
    try {
      server.listen(path);
    } finally {
      process.umask(previous);
    }
  });
  let ino: number;
  try {
    chmodSync(path, SOCKET_MODE);
    ino = lstatSync(path).ino;
  } catch (e) {
    server.close();
    throw new CicError('SOCKET_LISTEN_FAILED', `socketPath ${path}: cannot set its mode (${errno(e)})`, { cause: e, details: { path } });
  }
  options.log.info('device socket listening', { path, mode: '0660' });

  let closed = false;
  return {
    server,
    path,
    async close() {
      if (closed) return;
      closed = true;
      // Stops accepting at once; live connections are ended by their sessions.
      server.close();
      // libuv unlinks a listening path when it closes the handle; this covers a close that did
      // not get to it, and never removes a socket some other process bound since.
      try {
        const st = lstatSync(path);
        if (st.isSocket() && st.ino === ino) unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}
