// The `run` command's line protocol (a contract):
//   stdout: {"directive": {...}, "attachments"?: [{"contentId", "bytes"}]} per directive received,
//           once its attachments have streamed in (directive-lines.ts), in arrival order,
//           Clova.Hello included (so a reader knows the connection is up),
//           {"state": {"state", "loggedIn", …}} on every change of state (the device socket's
//           `state` fields: connecting, ready, reconnecting, waiting-for-login, closing),
//           {"eventSent": {"messageId","namespace","name","status"}} or
//           {"eventFailed": {"messageId","namespace","name","code"}} per event.
//   stdin:  {"namespace","name","payload","context"?,"dialogRequestId"?,"audioFile"?} per event;
//           audioFile: a regular file (replayable) or a FIFO (live, read as it fills).
// A malformed stdin line gets a JSON error line on stderr and the runtime keeps going.
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { CicError, isCicError } from '../errors';
import { jsonErrorOffset } from '../util/json-position';
import type { Logger } from '../log';
import type { OutgoingEvent } from '../cic/types';
import { audioFileSource } from './audio-source';
import { DirectiveLines } from './directive-lines';
import type { RuntimePort } from '../service/port';
import type { RuntimeStatus } from '../service/status';

export { directiveLine } from './directive-lines';

const MAX_LINE_BYTES = 256 * 1024; // a longer stdin line is refused, not buffered forever

export interface EventLine {
  namespace: string;
  name: string;
  payload: Record<string, unknown>;
  context?: unknown[];
  dialogRequestId?: string;
  audioFile?: string;
}

/** Validates one stdin line; throws CicError USAGE naming the problem. */
export function parseEventLine(line: string): EventLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    // Not V8's message: it quotes the line, which may carry user data.
    throw new CicError('USAGE', `stdin line is not JSON (error at column ${jsonErrorOffset(line) + 1})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CicError('USAGE', 'stdin line must be a JSON object');
  const o = v as Record<string, unknown>;
  const str = (k: string, required: boolean) => {
    if (o[k] === undefined && !required) return undefined;
    if (typeof o[k] !== 'string' || (o[k] as string).length === 0) throw new CicError('USAGE', `stdin event: "${k}" must be a non-empty string`);
    return o[k] as string;
  };
  const namespace = str('namespace', true)!;
  const name = str('name', true)!;
  const payload = o.payload ?? {};
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new CicError('USAGE', 'stdin event: "payload" must be an object');
  if (o.context !== undefined && !Array.isArray(o.context)) throw new CicError('USAGE', 'stdin event: "context" must be an array');
  const known = new Set(['namespace', 'name', 'payload', 'context', 'dialogRequestId', 'audioFile']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new CicError('USAGE', `stdin event: unknown field "${k}"`);
  return {
    namespace,
    name,
    payload: payload as Record<string, unknown>,
    context: o.context as unknown[] | undefined,
    dialogRequestId: str('dialogRequestId', false),
    audioFile: str('audioFile', false),
  };
}

export function stateLine(status: RuntimeStatus): string {
  return JSON.stringify({ state: status }) + '\n';
}

export interface RunIoOptions {
  /** The runtime (the supervisor): directives and state changes out, events in. */
  runtime: Pick<RuntimePort, 'listen' | 'sendEvent'>;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  log: Logger;
}

/** Wires stdin/stdout to the client; returns a function that stops reading stdin. */
export function attachRunIo({ runtime, stdin, stdout, stderr, log }: RunIoOptions): { close(): void; pending(): number } {
  let inFlight = 0;
  const lines = new DirectiveLines((line) => stdout.write(line));
  const unlisten = runtime.listen({
    directive: (d) => lines.directive(d),
    attachment: (a) => lines.attachment(a),
    state: (status) => stdout.write(stateLine(status)),
  });
  const rl = createInterface({ input: stdin, crlfDelay: Infinity });
  rl.on('line', (raw) => {
    const line = raw.trim();
    if (line === '') return;
    let ev: EventLine;
    try {
      if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw new CicError('USAGE', `stdin line longer than ${MAX_LINE_BYTES} bytes`);
      ev = parseEventLine(line);
    } catch (e) {
      const err = isCicError(e) ? e : new CicError('USAGE', String(e));
      stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'error', msg: 'malformed stdin line ignored', code: err.code, error: err.message }) + '\n');
      return;
    }
    const outgoing: OutgoingEvent = { namespace: ev.namespace, name: ev.name, payload: ev.payload, context: ev.context, dialogRequestId: ev.dialogRequestId };
    if (ev.audioFile) {
      try {
        outgoing.audio = audioFileSource(ev.audioFile);
      } catch (e) {
        const err = isCicError(e) ? e : new CicError('USAGE', String(e));
        stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'error', msg: 'event refused', code: err.code, error: err.message }) + '\n');
        return;
      }
    }
    let sending: ReturnType<RuntimePort['sendEvent']>;
    try {
      sending = runtime.sendEvent(outgoing);
    } catch (e) {
      const err = isCicError(e) ? e : new CicError('USAGE', String(e));
      stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'error', msg: 'event refused', code: err.code, error: err.message }) + '\n');
      return;
    }
    inFlight++;
    const base = { messageId: sending.messageId, namespace: ev.namespace, name: ev.name };
    // The event's directive lines (their attachments still streaming in) go out before its result line.
    sending.then(
      async (r) => {
        await lines.eventSettled(base.messageId);
        stdout.write(JSON.stringify({ eventSent: { ...base, status: r.status } }) + '\n');
      },
      async (e: unknown) => {
        await lines.eventSettled(base.messageId);
        const code = isCicError(e) ? e.code : 'ERR_INTERNAL';
        log.warn('event failed', { ...base, code, error: e });
        stdout.write(JSON.stringify({ eventFailed: { ...base, code } }) + '\n');
      },
    ).finally(() => inFlight--);
  });
  return {
    close: () => {
      rl.close();
      unlisten();
      lines.flush();
    },
    pending: () => inFlight,
  };
}
