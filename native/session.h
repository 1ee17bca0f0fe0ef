// Session: a client nghttp2_session driven entirely from JavaScript.
//
// Pull-based framing engine with no I/O, no timers and no policy. receive() feeds bytes to
// nghttp2_session_mem_recv2 and returns the events produced; send() drains
// nghttp2_session_mem_send2 and returns the bytes. Callbacks only record events in C++;
// nothing calls into JavaScript while nghttp2 is on the stack.
//
// Inbound flow control is JavaScript's: nghttp2 sends no WINDOW_UPDATE on its own
// (no_auto_window_update), only after consume(streamId, n) says the bytes were taken. Hazard:
// a DATA byte that is never consumed keeps its stream's and the connection's window shut for
// good; every stream's bytes must be consumed, by default right on delivery.
#pragma once

#include <napi.h>
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "body.h"
#include "events.h"

namespace cic {

struct StreamState {
  enum BodyMode { kNoBody = 0, kFixedBody = 1, kStreamedBody = 2 };
  int32_t id = 0;
  BodyMode mode = kNoBody;
  BodyQueue body;
  bool body_ended = false;
  bool deferred = false;  // the data provider returned NGHTTP2_ERR_DEFERRED
  size_t header_bytes = 0;
  bool header_limit_hit = false;
};

struct SessionLimits {
  uint32_t max_header_list_size = 64 * 1024;
  uint32_t initial_window_size = 256 * 1024;
  int32_t connection_window_size = 1024 * 1024;
  uint32_t header_table_size = 4096;
  uint32_t peer_max_concurrent_streams = 100;
  size_t max_outbound_ack = 1000;
  size_t max_continuations = 8;
  size_t max_settings = 32;
  size_t max_send_header_block_length = 64 * 1024;
  size_t max_deflate_dynamic_table_size = 4096;
  size_t max_pending_output = 1024 * 1024;
  size_t max_buffered_body = 8 * 1024 * 1024;
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env);
  static int64_t LiveSessions();

  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

  // nghttp2 callbacks (static trampolines live in session.cc).
  int OnBeginHeaders(const nghttp2_frame* frame);
  int OnHeader(const nghttp2_frame* frame, nghttp2_rcbuf* name, nghttp2_rcbuf* value);
  int OnFrameRecv(const nghttp2_frame* frame);
  int OnDataChunk(int32_t stream_id, const uint8_t* data, size_t len);
  int OnStreamClose(int32_t stream_id, uint32_t error_code);
  int OnInvalidFrame(const nghttp2_frame* frame, int lib_error);
  int OnFrameNotSent(const nghttp2_frame* frame, int lib_error);
  int OnFrameSend(const nghttp2_frame* frame);
  nghttp2_ssize ReadBody(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                         StreamState* state);

 private:
  Napi::Value Receive(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value TakeEvents(const Napi::CallbackInfo& info);
  Napi::Value Request(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Ping(const Napi::CallbackInfo& info);
  Napi::Value Consume(const Napi::CallbackInfo& info);
  Napi::Value RstStream(const Napi::CallbackInfo& info);
  Napi::Value Goaway(const Napi::CallbackInfo& info);
  Napi::Value WantRead(const Napi::CallbackInfo& info);
  Napi::Value WantWrite(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void Destroy();
  void DrainInto(std::string& out, size_t limit);
  void ClearPendingHeaders();
  void RemoveStream(int32_t stream_id);
  Napi::Value EventsToJs(Napi::Env env);
  static void CleanupHook(Session* self);

  nghttp2_session* session_ = nullptr;
  SessionLimits limits_;
  std::unordered_map<int32_t, StreamState*> streams_;
  std::vector<Event> events_;
  std::vector<nghttp2_rcbuf*> pending_nv_;  // header block being received
  std::string pending_out_;                 // bytes drained during receive(), not yet sent
  size_t buffered_body_ = 0;
  const uint8_t* input_base_ = nullptr;     // receive() input, for zero-copy DATA offsets
  size_t input_len_ = 0;
  bool dead_ = false;                       // nghttp2 returned a fatal error
  Napi::Env::CleanupHook<void (*)(Session*), Session> cleanup_hook_;
  bool cleanup_registered_ = false;
};

}  // namespace cic
