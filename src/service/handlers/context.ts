// What a message handler gets: the frame, the session it came from, and the service's parts.
import type { Frame } from '../framing';
import type { Hub } from '../hub';
import type { RuntimePort } from '../port';
import type { Session } from '../session';
import type { ServiceLimits } from '../limits';

/** `describe` → `info`: what this runtime is. */
export interface RuntimeInfo {
  name: string;
  version: string;
  nghttp2: string;
  node: string;
  target: string;
}

export interface HandlerContext {
  session: Session;
  runtime: RuntimePort;
  hub: Hub;
  info: RuntimeInfo;
  limits: ServiceLimits;
}

/** Handles one message; throws a coded error (SOCKET_BAD_MESSAGE …) to refuse it. */
export type Handler = (frame: Frame, ctx: HandlerContext) => void;
