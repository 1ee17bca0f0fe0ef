// The message table: one handler per message kind a client may send.
import type { Handler } from './context';
import { describe } from './describe';
import { ping } from './ping';
import { status } from './status';
import { subscribe } from './subscribe';
import { cicEvent } from './cic-event';
import { audioChunk, audioStart, audioStop } from './audio';
import { login } from './login';

// A Map, not an object: a type named "constructor" or "__proto__" must not find a handler.
export const HANDLERS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['describe', describe],
  ['ping', ping],
  ['status', status],
  ['subscribe', subscribe],
  ['cic-event', cicEvent],
  ['audio-start', audioStart],
  ['audio-chunk', audioChunk],
  ['audio-stop', audioStop],
  ['login', login],
]);

export type { Handler, HandlerContext, RuntimeInfo } from './context';
