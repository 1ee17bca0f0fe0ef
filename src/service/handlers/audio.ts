// audio-start / audio-chunk / audio-stop (Wyoming's audio messages) feed the live-audio event
// the client opened with `cic-event` {audio: true}.
import { CicError } from '../../errors';
import type { Frame } from '../framing';
import type { Handler } from './context';
import { positiveInt } from './fields';

function format(frame: Frame): void {
  for (const k of ['rate', 'width', 'channels']) positiveInt(frame.type, frame.data, k);
}

function noUpload(type: string): CicError {
  return new CicError('SOCKET_AUDIO_STATE', `${type} without a live-audio event: send cic-event with "audio": true first`);
}

/** Optional: announces the format; the event's own payload tells CIC what it is. */
export const audioStart: Handler = (frame, { session }) => {
  if (!session.upload) throw noUpload('audio-start');
  format(frame);
};

export const audioChunk: Handler = (frame, { session }) => {
  const up = session.upload;
  if (!up) throw noUpload('audio-chunk');
  format(frame);
  // Dropped after StopCapture (or once the event has settled) until the client's audio-stop.
  up.push(frame.payload ?? Buffer.alloc(0));
  if (up.full) session.updateReading();
};

export const audioStop: Handler = (_frame, { session }) => {
  const up = session.upload;
  if (!up) throw noUpload('audio-stop');
  session.upload = undefined;
  up.finish();
  if (up.dropped > 0) session.log.info('live audio: chunks dropped after the upload ended', { messageId: up.messageId, dropped: up.dropped });
};
