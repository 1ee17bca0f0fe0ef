// Event records produced by nghttp2 callbacks and handed to JavaScript in one batch.
// The numeric kinds are exported to JavaScript as `EVENT` and must stay in sync with
// src/h2/native.ts.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cic {

enum EventKind : int {
  kEventHeaders = 1,        // stream, a = header strings [name, value, …], b = nghttp2 headers category
  kEventData = 2,           // stream, a = offset into the receive() input, b = length
  kEventEndStream = 3,      // stream: the peer ended its side
  kEventStreamClose = 4,    // stream, a = HTTP/2 error code (0 = clean)
  kEventPingAck = 5,        // a, b = the two big-endian 32-bit halves of the PING payload
  kEventGoaway = 6,         // stream = last-stream-id, a = error code, b = debug data (latin1)
  kEventSettings = 7,       // a = [id, value, …] from the peer
  kEventSettingsAck = 8,    //
  kEventRstStream = 9,      // stream, a = error code (a stream close event follows)
  kEventHeadersTooLarge = 10,  // stream, a = bytes seen, b = limit (the stream is reset)
  kEventFrameError = 11,    // stream, a = frame type, b = nghttp2 library error code
  kEventSessionError = 12,  // a = nghttp2 library error code, b = message; the session is dead
  kEventDataCopy = 13,      // stream, a = Buffer (bytes that did not point into the input)
  kEventNotSent = 14,       // stream, a = nghttp2 library error code (request never left)
  kEventGoawaySent = 15,    // stream = last-stream-id, a = error code: we ended the session
};

struct Event {
  int kind;
  int32_t stream_id;
  int64_t a;
  int64_t b;
  std::string text;                  // GOAWAY debug data, error message, copied DATA
  std::vector<nghttp2_rcbuf*> nv;    // header name/value pairs, each holding a reference
  std::vector<uint32_t> ints;        // SETTINGS id/value pairs

  Event(int k, int32_t sid, int64_t x = 0, int64_t y = 0) : kind(k), stream_id(sid), a(x), b(y) {}
  Event(Event&& o) noexcept = default;
  Event& operator=(Event&& o) noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() {
    for (nghttp2_rcbuf* rc : nv) nghttp2_rcbuf_decref(rc);
  }
};

}  // namespace cic
