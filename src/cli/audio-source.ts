// The audio of a `run` stdin event: `audioFile` names a regular file or a FIFO.
//
// A regular file is replayable: a function that opens it again, so an event refused with 401 is
// sent once more with a refreshed token. A FIFO is live: read as it fills, once (an event
// refused with 401 then fails with CIC_AUDIO_NOT_REPLAYABLE).
//
// FIFO hazards: opening one for reading blocks until a writer opens it, so the open runs on the
// libuv thread pool (fs.open), and only once the event is sent: an event that never leaves the
// queue never opens it (its writer keeps waiting in open(2)). Once open, the
// descriptor is read as a non-blocking pipe (net.Socket), not with fs reads, which would keep a
// pool thread blocked for as long as the writer is quiet. The writer closing its end ends the audio.
import { createReadStream, open, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { CicError } from '../errors';
import type { AudioSource } from '../cic/types';

/** 6,400 bytes: ~200 ms of 16 kHz 16-bit mono, the pace CIC expects chunks at. */
const CHUNK_BYTES = 6400;

function openForReading(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** A FIFO's bytes as they are written, until the writer closes it. */
export async function* fifoChunks(path: string): AsyncGenerator<Buffer> {
  const fd = await openForReading(path);
  const pipe = new Socket({ fd, readable: true, writable: false });
  try {
    for await (const chunk of pipe) yield chunk as Buffer;
  } finally {
    pipe.destroy();
  }
}

/** The audio source for `path`; throws USAGE when it is neither a readable file nor a FIFO. */
export function audioFileSource(path: string): AudioSource {
  let kind: 'file' | 'fifo' | undefined;
  try {
    const st = statSync(path);
    kind = st.isFile() ? 'file' : st.isFIFO() ? 'fifo' : undefined;
  } catch {
    kind = undefined;
  }
  if (kind === 'file') return () => createReadStream(path, { highWaterMark: CHUNK_BYTES });
  if (kind === 'fifo') return fifoChunks(path);
  throw new CicError('USAGE', `audioFile is not a readable file or FIFO: ${path}`);
}
