// One streamed attachment sent to every socket client that should hear it, as
// `attachment-chunk` {contentId, messageId} + bytes, then `attachment-end` {contentId, messageId, bytes}.
//
// Back-pressure: while any receiving client has more unsent bytes than its high-water mark, the
// attachment's stream is paused (and with it, the HTTP/2 stream's flow-control window); it
// resumes when every such client drained or went away. A client that never reads is cut off by
// its own session after the stall timeout, so one of them cannot hold the others for long.
// The stream is always read to its end, receivers or not: an unread stream would stall the
// exchange it belongs to.
import { isCicError } from '../errors';
import type { Logger } from '../log';
import type { IncomingAttachment } from '../cic/types';

/** What the fan-out needs of a socket session. */
export interface AttachmentReceiver {
  readonly id: number;
  readonly closed: boolean;
  readonly congested: boolean;
  send(type: string, data?: Record<string, unknown>, payload?: Uint8Array): void;
  /** Runs `fn` once the session is no longer congested (or closed). */
  onDrain(fn: () => void): void;
}

export function fanOutAttachment(a: IncomingAttachment, receivers: readonly AttachmentReceiver[], maxPayloadBytes: number, log: Logger): void {
  const stream = a.stream;
  const head = { contentId: a.contentId, messageId: a.directiveMessageId ?? null };
  const live = () => receivers.filter((r) => !r.closed);
  let bytes = 0;
  let paused = false;
  let finished = false;

  const pressure = () => {
    if (finished) return;
    const congested = live().filter((r) => r.congested);
    if (congested.length === 0) {
      if (paused) {
        paused = false;
        stream.resume();
      }
      return;
    }
    if (!paused) {
      paused = true;
      stream.pause();
    }
    for (const r of congested) r.onDrain(pressure);
  };
  const end = (code: string | undefined) => {
    if (finished) return;
    finished = true;
    for (const r of live()) r.send('attachment-end', { ...head, bytes, ...(code ? { code } : {}) });
  };

  stream.on('data', (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    bytes += buf.length;
    const to = live();
    for (let at = 0; at < buf.length; at += maxPayloadBytes) {
      const piece = buf.subarray(at, Math.min(buf.length, at + maxPayloadBytes));
      for (const r of to) r.send('attachment-chunk', head, piece);
    }
    pressure();
  });
  stream.once('end', () => end(undefined));
  stream.once('error', (e) => {
    const code = isCicError(e) ? e.code : 'ERR_INTERNAL';
    log.warn('attachment stream failed', { contentId: a.contentId, code, bytes });
    end(code);
  });
  stream.once('close', () => {
    if (!finished) {
      log.warn('attachment stream closed before its end', { contentId: a.contentId, bytes });
      end('H2_STREAM_RESET');
    }
  });
  stream.resume();
}
