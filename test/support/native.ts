// Helpers for driving a native Session directly, without a socket.
import { EV, loadBinding, type NativeSession } from '../../src/h2/native';
import { FRAME, parseFrames, type Frame } from './frames';

export const binding = loadBinding();

/** Drains everything the session wants to send. */
export function drain(session: NativeSession): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 100_000; i++) {
    const out = session.send(1 << 20);
    if (!out) break;
    parts.push(out);
  }
  return Buffer.concat(parts);
}

/** Frames the client sent, without the connection preface. */
export function clientFrames(bytes: Buffer): Frame[] {
  const preface = 24;
  return parseFrames(bytes.subarray(bytes.subarray(0, 3).toString() === 'PRI' ? preface : 0));
}

export interface NormalEvent {
  kind: number;
  stream: number;
  a: unknown;
  b: unknown;
}

/**
 * Turns raw event slots into comparable records: DATA offsets become the bytes, and
 * consecutive DATA of one stream merge (how reads are split must not matter).
 */
export function normalize(raw: Array<{ events: unknown[]; input: Buffer }>): NormalEvent[] {
  const out: NormalEvent[] = [];
  for (const { events, input } of raw) {
    for (let i = 0; i < events.length; i += 4) {
      const kind = events[i] as number;
      const stream = events[i + 1] as number;
      let a = events[i + 2];
      let b = events[i + 3];
      if (kind === EV.DATA || kind === EV.DATA_COPY) {
        const bytes = kind === EV.DATA ? input.subarray(a as number, (a as number) + (b as number)) : (a as Buffer);
        const last = out[out.length - 1];
        if (last && last.kind === EV.DATA && last.stream === stream) {
          last.a = Buffer.concat([last.a as Buffer, bytes]);
          continue;
        }
        out.push({ kind: EV.DATA, stream, a: Buffer.from(bytes), b: 0 });
        continue;
      }
      out.push({ kind, stream, a, b });
    }
  }
  return out.map((e) => (e.kind === EV.DATA ? { ...e, a: (e.a as Buffer).toString('hex') } : e));
}

export function countFrames(frames: Frame[], type: number, flags?: number): number {
  return frames.filter((f) => f.type === type && (flags === undefined || (f.flags & flags) === flags)).length;
}

export { FRAME };
