// Limits of the device socket. Each protects the cloud connection and the other clients from
// one misbehaving local program; the reason is next to the number.

/** Header line plus its data block: every control message fits easily; a bigger one is a bug or an attack. */
export const MAX_HEADER_AND_DATA_BYTES = 64 * 1024;
/** One binary payload: Wyoming audio chunks are a few KiB (1024 samples); 256 KiB is ~8 s of 16 kHz 16-bit mono. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** Outbound payloads are cut to this size, so one large attachment chunk cannot hog a client's queue. */
export const MAX_OUT_PAYLOAD_BYTES = 64 * 1024;
/** A device has a handful of programs; 16 leaves room and bounds memory per socket. */
export const MAX_CLIENTS = 16;
/** Events one client may have in flight: a loop that sends without waiting is stopped early. */
export const MAX_EVENTS_PER_CLIENT = 8;
/**
 * Above this many unsent bytes for one client, the attachment streams it receives are paused
 * (back-pressure down to HTTP/2 flow control) and its own socket is not read.
 */
export const OUTBOUND_HIGH_WATER_BYTES = 256 * 1024;
/** Above this, the client is disconnected at once (SOCKET_SLOW_CLIENT): 4 MiB is ~2 min of MP3 speech. */
export const OUTBOUND_HARD_LIMIT_BYTES = 4 * 1024 * 1024;
/** A client above the high-water mark that drains nothing for this long is disconnected (SOCKET_SLOW_CLIENT). */
export const STALL_TIMEOUT_MS = 5_000;
/** An incomplete frame older than this (a client that stopped mid-frame) ends the connection (SOCKET_BAD_FRAME). */
export const PARTIAL_FRAME_TIMEOUT_MS = 10_000;
/** After an error that ends a connection, an unread error frame gets this long before the socket is destroyed. */
export const CLOSE_GRACE_MS = 1_000;
/**
 * Message rate, as a token bucket: a burst of MESSAGE_BURST, refilled at MESSAGE_RATE_PER_S.
 * Live audio at 16 kHz in 10 ms chunks is 100 messages a second; five times that is a flood.
 */
export const MESSAGE_BURST = 1_000;
export const MESSAGE_RATE_PER_S = 500;
/**
 * Live-audio chunks a client may have written that the HTTP/2 stream has not taken yet; above
 * it the client's socket is not read until the upload catches up (16 × 1024 samples ≈ 1 s).
 */
export const AUDIO_QUEUE_CHUNKS = 16;
/** Refused connections are logged at most this often (a connection flood must not flood the log). */
export const REFUSAL_LOG_INTERVAL_MS = 1_000;
/** Recent events and dialogs whose answers are routed back to their sender. */
export const ROUTE_MEMORY = 64;

/** Every limit of one service, overridable in tests (small numbers make slow clients cheap to build). */
export interface ServiceLimits {
  maxHeaderAndDataBytes: number;
  maxPayloadBytes: number;
  maxOutPayloadBytes: number;
  maxClients: number;
  maxEventsPerClient: number;
  outboundHighWaterBytes: number;
  outboundHardLimitBytes: number;
  stallTimeoutMs: number;
  partialFrameTimeoutMs: number;
  closeGraceMs: number;
  messageBurst: number;
  messageRatePerS: number;
  audioQueueChunks: number;
}

export const DEFAULT_LIMITS: Readonly<ServiceLimits> = Object.freeze({
  maxHeaderAndDataBytes: MAX_HEADER_AND_DATA_BYTES,
  maxPayloadBytes: MAX_PAYLOAD_BYTES,
  maxOutPayloadBytes: MAX_OUT_PAYLOAD_BYTES,
  maxClients: MAX_CLIENTS,
  maxEventsPerClient: MAX_EVENTS_PER_CLIENT,
  outboundHighWaterBytes: OUTBOUND_HIGH_WATER_BYTES,
  outboundHardLimitBytes: OUTBOUND_HARD_LIMIT_BYTES,
  stallTimeoutMs: STALL_TIMEOUT_MS,
  partialFrameTimeoutMs: PARTIAL_FRAME_TIMEOUT_MS,
  closeGraceMs: CLOSE_GRACE_MS,
  messageBurst: MESSAGE_BURST,
  messageRatePerS: MESSAGE_RATE_PER_S,
  audioQueueChunks: AUDIO_QUEUE_CHUNKS,
});
