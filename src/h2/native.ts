// Typed loader for the native addon. It takes a path or an already loaded module, so the
// single-file bundle can find the .node beside itself, and tests can pass their own.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CicError } from '../errors';

/** Limits handed to nghttp2 when a session is created (all optional). */
export interface NativeSessionOptions {
  maxHeaderListSize?: number;
  initialWindowSize?: number;
  connectionWindowSize?: number;
  headerTableSize?: number;
  peerMaxConcurrentStreams?: number;
  maxOutboundAck?: number;
  maxContinuations?: number;
  maxSettings?: number;
  maxSendHeaderBlockLength?: number;
  maxDeflateDynamicTableSize?: number;
  maxPendingOutput?: number;
  maxBufferedBody?: number;
}

export const enum BodyMode {
  None = 0,
  Fixed = 1,
  Streamed = 2,
}

/** The addon's Session: a framing engine with no I/O (see native/session.h). */
export interface NativeSession {
  /** Feeds bytes; returns events, four slots each: [kind, streamId, a, b, …]. */
  receive(input: Uint8Array): unknown[];
  /** Drains frames to send (at most about `limit` bytes); null when there is nothing. */
  send(limit?: number): Buffer | null;
  /** Events produced while sending (stream closes, GOAWAY sent); null when none. */
  takeEvents(): unknown[] | null;
  /** Submits a request; returns the stream id or a negative nghttp2 error code. */
  request(headers: string[], mode: BodyMode, body?: Uint8Array): number;
  write(streamId: number, chunk: Uint8Array | null, end: boolean): number;
  /**
   * `bytes` received DATA bytes of the stream were taken by their reader: nghttp2 may reopen
   * the stream and connection windows. Windows never reopen otherwise (no automatic
   * WINDOW_UPDATE). Returns 0 or a negative nghttp2 error code.
   */
  consume(streamId: number, bytes: number): number;
  ping(hi: number, lo: number): number;
  rstStream(streamId: number, errorCode: number): number;
  goaway(errorCode: number, terminate?: boolean): number;
  wantRead(): boolean;
  wantWrite(): boolean;
  /** [liveStreams, bufferedBodyBytes, pendingOutputBytes, outboundQueueFrames] */
  stats(): number[];
  close(): void;
}

export interface EventKinds {
  HEADERS: number;
  DATA: number;
  END_STREAM: number;
  STREAM_CLOSE: number;
  PING_ACK: number;
  GOAWAY: number;
  SETTINGS: number;
  SETTINGS_ACK: number;
  RST_STREAM: number;
  HEADERS_TOO_LARGE: number;
  FRAME_ERROR: number;
  SESSION_ERROR: number;
  DATA_COPY: number;
  NOT_SENT: number;
  GOAWAY_SENT: number;
}

/** One libuv timer (native/alarm.h): arm(ms) replaces any pending expiry; disarm() really stops it. */
export interface NativeAlarm {
  arm(ms: number): void;
  disarm(): void;
  close(): void;
}

export interface NativeBinding {
  Session: new (options?: NativeSessionOptions) => NativeSession;
  Alarm: new (callback: () => void) => NativeAlarm;
  nghttp2Version(): string;
  liveSessions(): number;
  errorString(code: number): string;
  EVENT: EventKinds;
}

/** Event kind numbers, fixed by native/events.h (checked against the addon at load). */
export const EV = {
  HEADERS: 1,
  DATA: 2,
  END_STREAM: 3,
  STREAM_CLOSE: 4,
  PING_ACK: 5,
  GOAWAY: 6,
  SETTINGS: 7,
  SETTINGS_ACK: 8,
  RST_STREAM: 9,
  HEADERS_TOO_LARGE: 10,
  FRAME_ERROR: 11,
  SESSION_ERROR: 12,
  DATA_COPY: 13,
  NOT_SENT: 14,
  GOAWAY_SENT: 15,
} as const satisfies EventKinds;

/** Environment variable naming the addon file explicitly. */
export const ADDON_PATH_ENV = 'CIC_ADDON_PATH';

/** The addon's file name for this target, as shipped beside the bundle. */
export function addonFileName(platform: string = process.platform, arch: string = process.arch): string {
  // process.arch says "arm" for every 32-bit ARM; the addon is built for armv7 hard-float.
  return `cic-runtime.${platform}-${arch === 'arm' ? 'armv7' : arch}.node`;
}

let loaded: NativeBinding | undefined;

function candidatePaths(): string[] {
  const out: string[] = [];
  const fromEnv = process.env[ADDON_PATH_ENV];
  if (fromEnv) return [resolve(fromEnv)];
  // Beside the bundle (dist/cic-runtime.js → dist/cic-runtime.linux-x64.node).
  out.push(join(__dirname, addonFileName()));
  // A development checkout: build/Release of the nearest project root above this file.
  for (let dir = __dirname, i = 0; i < 8; i++, dir = dirname(dir)) {
    out.push(join(dir, 'build', 'Release', 'cic_h2.node'));
    if (dirname(dir) === dir) break;
  }
  return out;
}

function check(binding: NativeBinding, origin: string): NativeBinding {
  if (typeof binding?.Session !== 'function' || typeof binding.nghttp2Version !== 'function') {
    throw new CicError('ADDON_NOT_FOUND', `${origin} is not the cic-runtime addon`);
  }
  for (const [name, value] of Object.entries(EV)) {
    if (binding.EVENT[name as keyof EventKinds] !== value) {
      throw new CicError('ADDON_NOT_FOUND', `${origin} was built from other sources (event ${name} differs)`);
    }
  }
  return binding;
}

const opened = new Map<string, NativeBinding>();

/**
 * process.dlopen() rather than require(): the same load, without the module resolver's
 * realpath walk (about 1 ms of a cold start). Hazard: unlike require() it has no cache, and a
 * second dlopen of the file would initialise the addon again in this environment; the map
 * keeps one module per path.
 */
function dlopenOnce(path: string): NativeBinding {
  let mod = opened.get(path);
  if (!mod) {
    const holder = { exports: {} as NativeBinding };
    process.dlopen(holder, path);
    mod = holder.exports;
    opened.set(path, mod);
  }
  return mod;
}

/**
 * Loads the addon once. `source` may be a path to a .node file or a loaded module object;
 * without it the file is looked for at $CIC_ADDON_PATH, beside this file, then in build/Release.
 */
export function loadBinding(source?: string | NativeBinding): NativeBinding {
  if (source !== undefined && typeof source !== 'string') return (loaded = check(source, 'the given module'));
  if (loaded && source === undefined) return loaded;
  const paths = source !== undefined ? [resolve(source)] : candidatePaths();
  for (const p of paths) {
    if (!existsSync(p)) continue;
    let mod: NativeBinding;
    try {
      mod = dlopenOnce(p);
    } catch (e) {
      throw new CicError('ADDON_NOT_FOUND', `cannot load the native addon ${p}: ${(e as Error).message}`, { cause: e });
    }
    return (loaded = check(mod, p));
  }
  throw new CicError('ADDON_NOT_FOUND', `native addon not found; looked for ${paths.join(', ')} (set ${ADDON_PATH_ENV})`, {
    details: { paths },
  });
}
