// Every error the runtime raises carries a stable string code from this table.
// Codes are a contract: callers, logs and exit codes switch on them; messages may change.

import { redactText } from './util/secrets';

interface CodeInfo {
  /** Whether the same work may succeed if tried again (on a new connection, later). */
  readonly retryable: boolean;
}

export const ERROR_CODES = {
  // --- generic -------------------------------------------------------------------------
  ERR_INVALID_ARGUMENT: { retryable: false }, // an argument has the wrong type or value
  ERR_CLOSED: { retryable: false }, // the object was used after close()
  ERR_TIMEOUT: { retryable: true }, // an operation did not finish within its deadline
  ERR_INTERNAL: { retryable: false }, // an invariant of the runtime was broken

  // --- native addon --------------------------------------------------------------------
  ADDON_NOT_FOUND: { retryable: false }, // the native addon file could not be found or loaded

  // --- HTTP/2 connection (src/h2) --------------------------------------------------------
  H2_CONNECT_FAILED: { retryable: true }, // the TCP connection could not be established
  H2_CONNECT_TIMEOUT: { retryable: true }, // connect, TLS handshake or the peer SETTINGS did not finish in time
  H2_TLS_CERT: { retryable: false }, // the server certificate was refused
  H2_TLS_HOSTNAME: { retryable: false }, // the server certificate does not match the host name
  H2_TLS_CLOCK: { retryable: false }, // the device clock is before the certificate start date (clock not set)
  H2_TLS_EXPIRED: { retryable: false }, // the server certificate has expired
  H2_TLS_FAILED: { retryable: true }, // the TLS handshake failed
  H2_ALPN: { retryable: false }, // the server did not agree to HTTP/2 (ALPN h2)
  H2_PING_TIMEOUT: { retryable: true }, // no PING ACK arrived before the deadline
  H2_GOAWAY: { retryable: true }, // the server sent GOAWAY; the stream was not processed
  H2_GOAWAY_ERROR: { retryable: false }, // the server sent GOAWAY with an error code
  H2_STREAM_RESET: { retryable: false }, // the stream was reset
  H2_REFUSED_STREAM: { retryable: true }, // the server refused the stream before processing it
  H2_SOCKET_CLOSED: { retryable: true }, // the socket closed before the response completed
  H2_CONNECTION_CLOSED: { retryable: true }, // the connection was closed locally
  H2_PROTOCOL: { retryable: true }, // the peer broke the HTTP/2 protocol; the session ended
  H2_FLOOD: { retryable: true }, // the peer flooded the session (control frames or unread output)
  H2_HEADERS_TOO_LARGE: { retryable: false }, // a response header list exceeded the configured limit
  H2_BODY_TOO_LARGE: { retryable: false }, // a response body exceeded the configured limit
  H2_STREAM_LIMIT: { retryable: true }, // no stream id or concurrent-stream slot is available
  H2_BACKPRESSURE: { retryable: true }, // the outbound queue is full
  H2_SESSION: { retryable: false }, // nghttp2 rejected a session operation

  // --- auth (src/auth) ----------------------------------------------------------------
  AUTH_STATE_MISMATCH: { retryable: false }, // the authorize response state does not match the request (possible CSRF)
  AUTH_TERMS_REQUIRED: { retryable: false }, // the user must agree to the terms (HTTP 451)
  AUTH_TERMS_DECLINED: { retryable: false }, // the terms page redirected to clova://agreement-failure (declined or failed)
  AUTH_INVALID_GRANT: { retryable: false }, // the grant is dead; the device must be paired again
  AUTH_INVALID_CLIENT: { retryable: false }, // the client credentials were refused
  AUTH_INVALID_REQUEST: { retryable: false }, // the auth server refused the request
  AUTH_UNAUTHORIZED: { retryable: false }, // the account token was refused (HTTP 401)
  AUTH_SERVER: { retryable: true }, // the auth server failed (5xx)
  AUTH_NETWORK: { retryable: true }, // the auth server could not be reached
  AUTH_TIMEOUT: { retryable: true }, // the auth request timed out
  AUTH_BAD_RESPONSE: { retryable: true }, // the auth server answered with a malformed body
  AUTH_NOT_LOGGED_IN: { retryable: false }, // there is no stored token; log in first

  // --- token store (src/auth/token-store) ---------------------------------------------
  STORE_CORRUPT: { retryable: false }, // the token file is corrupt and no good generation is left
  STORE_FOREIGN: { retryable: false }, // the token file is not a cic-runtime token file
  STORE_WRITE_FAILED: { retryable: true }, // the token file could not be written (disk full, I/O error, read-only)
  STORE_READ_FAILED: { retryable: true }, // the token file could not be read
  STORE_KEY: { retryable: false }, // the device key is missing, unreadable or does not open the sealed record
  STORE_PERMISSIONS: { retryable: false }, // the token file or its directory is readable by others

  // --- configuration / command line --------------------------------------------------
  CONFIG_INVALID: { retryable: false }, // the configuration is invalid
  CONFIG_UNREADABLE: { retryable: false }, // the configuration file could not be read or parsed
  USAGE: { retryable: false }, // the command line is invalid

  // --- CIC (src/cic) ------------------------------------------------------------------
  CIC_UNAUTHORIZED: { retryable: true }, // CIC refused the access token (HTTP 401) after a refresh; the client backs off and keeps trying
  CIC_AUDIO_NOT_REPLAYABLE: { retryable: false }, // CIC refused the token (HTTP 401) for an event whose live audio cannot be sent again; the token was refreshed
  CIC_NO_DOWNCHANNEL: { retryable: true }, // CIC has no downchannel on this connection (HTTP 412)
  CIC_TOO_MANY_REQUESTS: { retryable: true }, // CIC refused a second downchannel (HTTP 429)
  CIC_BAD_REQUEST: { retryable: false }, // CIC refused the request as malformed (HTTP 400)
  CIC_SERVER: { retryable: true }, // CIC failed (5xx)
  CIC_HTTP_STATUS: { retryable: false }, // CIC answered with an unexpected HTTP status
  CIC_EXCEPTION: { retryable: false }, // CIC sent a System.Exception directive
  CIC_MULTIPART: { retryable: false }, // a multipart body is malformed
  CIC_PART_TOO_LARGE: { retryable: false }, // a multipart part or its headers exceed the size limit
  CIC_BAD_DIRECTIVE: { retryable: false }, // a directive is not valid UTF-8 JSON of the expected shape
  CIC_ATTACHMENT_STALLED: { retryable: false }, // an attachment's consumer took no byte for attachmentStallMs; its stream was destroyed and the rest discarded
  CIC_QUEUE_FULL: { retryable: true }, // the event queue is full
  CIC_QUEUE_EXPIRED: { retryable: true }, // an event waited in the queue longer than allowed
  CIC_NOT_READY: { retryable: true }, // the connection is not ready
  CIC_EVENT_FAILED: { retryable: false }, // the event was in flight when its connection died
  CIC_STOPPED: { retryable: false }, // the client was stopped

  // --- device service: the local Unix socket (src/service) -----------------------------
  SOCKET_PATH_IN_USE: { retryable: false }, // the socket path is held by a running process (another runtime?)
  SOCKET_PATH_INVALID: { retryable: false }, // the socket path exists and is not a socket, or its directory is missing
  SOCKET_LISTEN_FAILED: { retryable: false }, // the Unix socket could not be created
  SOCKET_BAD_FRAME: { retryable: false }, // a frame is malformed: header or data not a JSON object, no type, bad lengths, or truncated
  SOCKET_FRAME_TOO_LARGE: { retryable: false }, // a frame exceeds the limit (header line plus data 64 KiB, payload 256 KiB)
  SOCKET_UNKNOWN_TYPE: { retryable: false }, // a message type the runtime does not handle
  SOCKET_BAD_MESSAGE: { retryable: false }, // a message of a known type has missing or invalid fields
  SOCKET_TOO_MANY_CLIENTS: { retryable: true }, // the socket already has the maximum number of clients
  SOCKET_TOO_MANY_EVENTS: { retryable: true }, // the client already has the maximum number of events in flight
  SOCKET_FLOOD: { retryable: false }, // the client sent messages faster than the allowed rate
  SOCKET_SLOW_CLIENT: { retryable: false }, // the client does not read what the runtime sends (queue over its limit or no progress)
  SOCKET_AUDIO_STATE: { retryable: false }, // an audio message without a live-audio event, or a second live-audio event at once
  SOCKET_CLIENT_GONE: { retryable: false }, // the socket client disconnected; its live-audio event was cancelled
  SOCKET_NOT_READY: { retryable: true }, // the runtime is waiting for login or closing and cannot send events
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface CicErrorOptions {
  cause?: unknown;
  /** Overrides the code's default retryability (for example GOAWAY above last-stream-id). */
  retryable?: boolean;
  /** Structured, non-secret facts for logs and callers (status, stream id, path …). */
  details?: Record<string, unknown>;
}

export class CicError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, options: CicErrorOptions = {}) {
    super(redactText(message ?? code), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CicError';
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
    this.details = options.details;
  }

  /**
   * The serialized form (JSON.stringify(err)). Hazard: details may quote a server's text,
   * and a server can echo a token back (a System.Exception description); registered secrets
   * are scrubbed from every string here. `details` itself stays unredacted on purpose: the
   * 451 details carry the authorization code the CLI must print (termsRequired()).
   */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retryable: this.retryable, ...(this.details ? { details: redactDeep(this.details, 0) } : {}) };
  }

  /** What console.log, util.inspect and an uncaught-error report print: details scrubbed as in toJSON. */
  [Symbol.for('nodejs.util.inspect.custom')](_depth: number, options: object, inspect: (value: unknown, options?: object) => string): string {
    const extra: Record<string, unknown> = { code: this.code, retryable: this.retryable };
    if (this.details) extra.details = redactDeep(this.details, 0);
    if (this.cause !== undefined) extra.cause = this.cause;
    return `${this.stack ?? `${this.name}: ${this.message}`} ${inspect(extra, options)}`;
  }
}

/** Redacts registered secrets in the strings of plain objects and arrays (other values as they are). */
function redactDeep(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth + 1);
  return out;
}

export function isCicError(e: unknown, code?: ErrorCode): e is CicError {
  return e instanceof CicError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a CicError with `code`, keeping an existing CicError as it is. */
export function toCicError(e: unknown, code: ErrorCode, message?: string): CicError {
  if (e instanceof CicError) return e;
  const text = message ?? (e instanceof Error ? e.message : String(e));
  return new CicError(code, text, { cause: e });
}
