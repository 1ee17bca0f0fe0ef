// HTTP/2 protocol numbers (RFC 9113) and the nghttp2 library error codes the layer acts on.

export const H2_ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const H2_ERROR_NAMES = Object.fromEntries(Object.entries(H2_ERROR).map(([k, v]) => [v, k])) as Record<number, string>;

export function h2ErrorName(code: number): string {
  return H2_ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

export const SETTINGS_ID = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** nghttp2 library error codes (nghttp2.h), negative. */
export const NGHTTP2_ERR = {
  INVALID_ARGUMENT: -501,
  BUFFER_ERROR: -502,
  STREAM_ID_NOT_AVAILABLE: -509,
  STREAM_CLOSED: -510,
  STREAM_SHUT_WR: -512,
  START_STREAM_NOT_ALLOWED: -516,
  SESSION_CLOSING: -530,
  FLOODED: -904,
  TOO_MANY_CONTINUATIONS: -905,
} as const;
