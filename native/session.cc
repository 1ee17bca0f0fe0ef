#include "session.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "guards.h"

namespace cic {

namespace {

std::atomic<int64_t> g_live_sessions{0};

// nghttp2 consumes at most this much input per mem_recv2 call. Between slices the output is
// drained, so the outbound-ACK flood counter measures ACKs the peer could not have received,
// not merely PINGs that arrived in one large read. 8 KiB holds at most 481 PING frames
// (17 bytes) or 910 empty SETTINGS frames (9 bytes), both below the default ACK limit.
constexpr size_t kReceiveSlice = 8 * 1024;

// Default cap of one send() call, bytes; JavaScript passes its own.
constexpr size_t kDefaultSendLimit = 64 * 1024;

Session* Self(void* user_data) { return static_cast<Session*>(user_data); }

int OnBeginHeadersCb(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  return Self(ud)->OnBeginHeaders(frame);
}
int OnHeaderCb(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name, nghttp2_rcbuf* value,
               uint8_t, void* ud) {
  return Self(ud)->OnHeader(frame, name, value);
}
int OnFrameRecvCb(nghttp2_session*, const nghttp2_frame* frame, void* ud) { return Self(ud)->OnFrameRecv(frame); }
int OnDataChunkCb(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len, void* ud) {
  return Self(ud)->OnDataChunk(stream_id, data, len);
}
int OnStreamCloseCb(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
  return Self(ud)->OnStreamClose(stream_id, error_code);
}
int OnInvalidFrameCb(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* ud) {
  return Self(ud)->OnInvalidFrame(frame, lib_error);
}
int OnFrameNotSentCb(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* ud) {
  return Self(ud)->OnFrameNotSent(frame, lib_error);
}
int OnFrameSendCb(nghttp2_session*, const nghttp2_frame* frame, void* ud) { return Self(ud)->OnFrameSend(frame); }
nghttp2_ssize ReadBodyCb(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                         nghttp2_data_source* source, void* ud) {
  return Self(ud)->ReadBody(stream_id, buf, length, flags, static_cast<StreamState*>(source->ptr));
}

// The callback table is immutable and shared by every session of the process.
nghttp2_session_callbacks* SharedCallbacks() {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) return static_cast<nghttp2_session_callbacks*>(nullptr);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, OnBeginHeadersCb);
    nghttp2_session_callbacks_set_on_header_callback2(cb, OnHeaderCb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, OnFrameRecvCb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, OnDataChunkCb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, OnStreamCloseCb);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, OnInvalidFrameCb);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, OnFrameNotSentCb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, OnFrameSendCb);
    return cb;
  }();
  return callbacks;
}

uint32_t ReadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void WriteBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Reads an optional non-negative integer option; false (with a pending TypeError) on a bad value.
bool ReadLimit(Napi::Env env, Napi::Object opts, const char* key, uint64_t max, uint64_t* out) {
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsNumber()) {
    Napi::TypeError::New(env, std::string("option ") + key + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    Napi::TypeError::New(env, std::string("option ") + key + " is out of range").ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

}  // namespace

int64_t Session::LiveSessions() { return g_live_sessions.load(); }

Napi::Function Session::Init(Napi::Env env) {
  return DefineClass(env, "Session",
                     {
                         InstanceMethod<&Session::Receive>("receive"),
                         InstanceMethod<&Session::Send>("send"),
                         InstanceMethod<&Session::TakeEvents>("takeEvents"),
                         InstanceMethod<&Session::Request>("request"),
                         InstanceMethod<&Session::Write>("write"),
                         InstanceMethod<&Session::Ping>("ping"),
                         InstanceMethod<&Session::Consume>("consume"),
                         InstanceMethod<&Session::RstStream>("rstStream"),
                         InstanceMethod<&Session::Goaway>("goaway"),
                         InstanceMethod<&Session::WantRead>("wantRead"),
                         InstanceMethod<&Session::WantWrite>("wantWrite"),
                         InstanceMethod<&Session::Stats>("stats"),
                         InstanceMethod<&Session::Close>("close"),
                     });
}

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsObject()) {
      Napi::TypeError::New(env, "options must be an object").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    uint64_t v;
#define CIC_LIMIT(key, field, max)                          \
  v = limits_.field;                                        \
  if (!ReadLimit(env, o, key, max, &v)) return;             \
  limits_.field = static_cast<decltype(limits_.field)>(v);
    CIC_LIMIT("maxHeaderListSize", max_header_list_size, 16u * 1024 * 1024)
    CIC_LIMIT("initialWindowSize", initial_window_size, NGHTTP2_MAX_WINDOW_SIZE)
    CIC_LIMIT("connectionWindowSize", connection_window_size, NGHTTP2_MAX_WINDOW_SIZE)
    CIC_LIMIT("headerTableSize", header_table_size, 1u << 20)
    CIC_LIMIT("peerMaxConcurrentStreams", peer_max_concurrent_streams, 0xffffffffu)
    CIC_LIMIT("maxOutboundAck", max_outbound_ack, 1u << 20)
    CIC_LIMIT("maxContinuations", max_continuations, 1u << 16)
    CIC_LIMIT("maxSettings", max_settings, 1u << 16)
    CIC_LIMIT("maxSendHeaderBlockLength", max_send_header_block_length, 16u * 1024 * 1024)
    CIC_LIMIT("maxDeflateDynamicTableSize", max_deflate_dynamic_table_size, 1u << 20)
    CIC_LIMIT("maxPendingOutput", max_pending_output, 1ull << 32)
    CIC_LIMIT("maxBufferedBody", max_buffered_body, 1ull << 32)
#undef CIC_LIMIT
  }

  nghttp2_session_callbacks* callbacks = SharedCallbacks();
  nghttp2_option* option = nullptr;
  if (callbacks == nullptr || nghttp2_option_new(&option) != 0) {
    ThrowCoded(env, "ERR_NO_MEMORY", "nghttp2 could not allocate its callbacks or options");
    return;
  }
  // Protective limits, all explicit (none through deprecated options).
  nghttp2_option_set_max_outbound_ack(option, limits_.max_outbound_ack);
  nghttp2_option_set_max_continuations(option, limits_.max_continuations);
  nghttp2_option_set_max_settings(option, limits_.max_settings);
  nghttp2_option_set_max_send_header_block_length(option, limits_.max_send_header_block_length);
  nghttp2_option_set_max_deflate_dynamic_table_size(option, limits_.max_deflate_dynamic_table_size);
  nghttp2_option_set_peer_max_concurrent_streams(option, limits_.peer_max_concurrent_streams);
  // Windows reopen only when JavaScript reports bytes as consumed (consume()): a reader that
  // stops taking a stream's bytes stops the peer's sending on that stream.
  nghttp2_option_set_no_auto_window_update(option, 1);
  int rv = nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  if (rv != 0) {
    session_ = nullptr;
    ThrowCoded(env, "ERR_NO_MEMORY", nghttp2_strerror(rv));
    return;
  }

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0},  // the client accepts no server-initiated streams
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_header_list_size},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, limits_.header_table_size},
  };
  rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0]));
  if (rv == 0 && limits_.connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, limits_.connection_window_size);
  }
  if (rv != 0) {
    nghttp2_session_del(session_);
    session_ = nullptr;
    ThrowCoded(env, "ERR_SESSION", nghttp2_strerror(rv));
    return;
  }
  ++g_live_sessions;
  cleanup_hook_ = env.AddCleanupHook(CleanupHook, this);
  cleanup_registered_ = true;
}

Session::~Session() {
  if (cleanup_registered_) {
    cleanup_hook_.Remove(Env());
    cleanup_registered_ = false;
  }
  Destroy();
}

// Runs when the Node environment (main thread or worker) is torn down before GC finalized us.
void Session::CleanupHook(Session* self) {
  self->cleanup_registered_ = false;
  self->Destroy();
}

void Session::Destroy() {
  ClearPendingHeaders();
  events_.clear();
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
    session_ = nullptr;
    --g_live_sessions;
  }
  for (auto& entry : streams_) delete entry.second;
  streams_.clear();
  buffered_body_ = 0;
  // Releases the buffer's capacity. Not shrink_to_fit(): since GCC 11 that calls the
  // argument-less reserve() from GLIBCXX_3.4.29, which the libstdc++ of older device images
  // (and the one the official arm64 Node build targets) does not have.
  std::string().swap(pending_out_);
}

void Session::ClearPendingHeaders() {
  for (nghttp2_rcbuf* rc : pending_nv_) nghttp2_rcbuf_decref(rc);
  pending_nv_.clear();
}

void Session::RemoveStream(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  buffered_body_ -= it->second->body.Buffered();
  delete it->second;
  streams_.erase(it);
}

// ---- nghttp2 callbacks: record only --------------------------------------------------------

int Session::OnBeginHeaders(const nghttp2_frame* frame) {
  ClearPendingHeaders();
  auto it = streams_.find(frame->hd.stream_id);
  if (it != streams_.end()) {
    it->second->header_bytes = 0;
    it->second->header_limit_hit = false;
  }
  return 0;
}

int Session::OnHeader(const nghttp2_frame* frame, nghttp2_rcbuf* name, nghttp2_rcbuf* value) {
  auto it = streams_.find(frame->hd.stream_id);
  if (it != streams_.end()) {
    StreamState* s = it->second;
    // RFC 9113 §6.5.2 size: name + value + 32 octets of overhead per field.
    s->header_bytes += nghttp2_rcbuf_get_buf(name).len + nghttp2_rcbuf_get_buf(value).len + 32;
    if (s->header_bytes > limits_.max_header_list_size) {
      if (!s->header_limit_hit) {
        s->header_limit_hit = true;
        events_.emplace_back(kEventHeadersTooLarge, s->id, static_cast<int64_t>(s->header_bytes),
                             static_cast<int64_t>(limits_.max_header_list_size));
      }
      ClearPendingHeaders();
      // Resets the stream (INTERNAL_ERROR) and skips the rest of the header block.
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  }
  nghttp2_rcbuf_incref(name);
  nghttp2_rcbuf_incref(value);
  pending_nv_.push_back(name);
  pending_nv_.push_back(value);
  return 0;
}

int Session::OnFrameRecv(const nghttp2_frame* frame) {
  const int32_t sid = frame->hd.stream_id;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      Event ev(kEventHeaders, sid, 0, frame->headers.cat);
      ev.nv.swap(pending_nv_);
      events_.push_back(std::move(ev));
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) events_.emplace_back(kEventEndStream, sid);
      break;
    }
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) events_.emplace_back(kEventEndStream, sid);
      break;
    case NGHTTP2_PING:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
        events_.emplace_back(kEventPingAck, 0, ReadBe32(frame->ping.opaque_data),
                             ReadBe32(frame->ping.opaque_data + 4));
      }
      break;
    case NGHTTP2_GOAWAY: {
      Event ev(kEventGoaway, frame->goaway.last_stream_id, frame->goaway.error_code);
      // Debug data is peer-controlled: keep a bounded prefix for diagnostics only.
      size_t n = std::min<size_t>(frame->goaway.opaque_data_len, 256);
      ev.text.assign(reinterpret_cast<const char*>(frame->goaway.opaque_data), n);
      events_.push_back(std::move(ev));
      break;
    }
    case NGHTTP2_SETTINGS:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
        events_.emplace_back(kEventSettingsAck, 0);
      } else {
        Event ev(kEventSettings, 0);
        for (size_t i = 0; i < frame->settings.niv; ++i) {
          ev.ints.push_back(frame->settings.iv[i].settings_id);
          ev.ints.push_back(frame->settings.iv[i].value);
        }
        events_.push_back(std::move(ev));
      }
      break;
    case NGHTTP2_RST_STREAM:
      events_.emplace_back(kEventRstStream, sid, frame->rst_stream.error_code);
      break;
    default:
      break;
  }
  return 0;
}

int Session::OnDataChunk(int32_t stream_id, const uint8_t* data, size_t len) {
  // mem_recv2 hands DATA payload straight out of the caller's input buffer; JavaScript then
  // takes a view of its own Buffer instead of a copy. Anything else is copied.
  if (input_base_ != nullptr && data >= input_base_ && data + len <= input_base_ + input_len_) {
    events_.emplace_back(kEventData, stream_id, static_cast<int64_t>(data - input_base_), static_cast<int64_t>(len));
  } else {
    Event ev(kEventDataCopy, stream_id, 0, static_cast<int64_t>(len));
    ev.text.assign(reinterpret_cast<const char*>(data), len);
    events_.push_back(std::move(ev));
  }
  return 0;
}

int Session::OnStreamClose(int32_t stream_id, uint32_t error_code) {
  events_.emplace_back(kEventStreamClose, stream_id, error_code);
  RemoveStream(stream_id);
  return 0;
}

int Session::OnInvalidFrame(const nghttp2_frame* frame, int lib_error) {
  events_.emplace_back(kEventFrameError, frame->hd.stream_id, frame->hd.type, lib_error);
  return 0;
}

int Session::OnFrameNotSent(const nghttp2_frame* frame, int lib_error) {
  // A request whose HEADERS never left (GOAWAY arrived, session terminating): its stream
  // never opened, so nghttp2 will not report a close for it.
  if (frame->hd.type == NGHTTP2_HEADERS && streams_.count(frame->hd.stream_id) != 0) {
    events_.emplace_back(kEventNotSent, frame->hd.stream_id, lib_error);
    RemoveStream(frame->hd.stream_id);
  }
  return 0;
}

int Session::OnFrameSend(const nghttp2_frame* frame) {
  // Only our own GOAWAY matters to JavaScript: it tells why nghttp2 ended the session.
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    events_.emplace_back(kEventGoawaySent, frame->goaway.last_stream_id, frame->goaway.error_code);
  }
  return 0;
}

nghttp2_ssize Session::ReadBody(int32_t, uint8_t* buf, size_t length, uint32_t* flags, StreamState* s) {
  size_t n = s->body.Read(buf, length);
  buffered_body_ -= n;
  if (s->body.Buffered() == 0) {
    if (s->body_ended) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<nghttp2_ssize>(n);
}

// ---- JavaScript entry points ------------------------------------------------------------

void Session::DrainInto(std::string& out, size_t limit) {
  while (session_ != nullptr && !dead_ && out.size() < limit) {
    const uint8_t* data = nullptr;
    nghttp2_ssize n = nghttp2_session_mem_send2(session_, &data);
    if (n < 0) {
      Event ev(kEventSessionError, 0, n);
      ev.text = nghttp2_strerror(static_cast<int>(n));
      events_.push_back(std::move(ev));
      dead_ = true;
      break;
    }
    if (n == 0) break;
    // `data` is valid only until the next nghttp2 call: copy now.
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

Napi::Value Session::Receive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  CIC_GUARD_ARGC(1);
  CIC_GUARD_BYTES(0);
  Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
  const uint8_t* base = input.Data();
  const size_t len = input.ByteLength();
  input_base_ = base;
  input_len_ = len;
  size_t off = 0;
  while (off < len && !dead_) {
    const size_t n = std::min(kReceiveSlice, len - off);
    nghttp2_ssize rv = nghttp2_session_mem_recv2(session_, base + off, n);
    if (rv < 0) {
      Event ev(kEventSessionError, 0, rv);
      ev.text = nghttp2_strerror(static_cast<int>(rv));
      events_.push_back(std::move(ev));
      dead_ = true;
      break;
    }
    off += n;
    if (off < len && pending_out_.size() < limits_.max_pending_output) {
      DrainInto(pending_out_, limits_.max_pending_output);
    }
  }
  Napi::Value result = EventsToJs(env);
  input_base_ = nullptr;
  input_len_ = 0;
  return result;
}

Napi::Value Session::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  size_t limit = kDefaultSendLimit;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    CIC_GUARD(info[0].IsNumber() && info[0].As<Napi::Number>().DoubleValue() >= 1, "limit must be a positive number");
    limit = static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue());
  }
  std::string out;
  out.swap(pending_out_);
  DrainInto(out, limit);
  if (out.empty()) return env.Null();
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(out.data()), out.size());
}

Napi::Value Session::TakeEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (events_.empty()) return env.Null();
  return EventsToJs(env);
}

Napi::Value Session::EventsToJs(Napi::Env env) {
  // Flat array, four slots per event: [kind, streamId, a, b, kind, …].
  Napi::Array out = Napi::Array::New(env, events_.size() * 4);
  uint32_t i = 0;
  for (Event& ev : events_) {
    out.Set(i++, Napi::Number::New(env, ev.kind));
    out.Set(i++, Napi::Number::New(env, ev.stream_id));
    switch (ev.kind) {
      case kEventHeaders: {
        Napi::Array nv = Napi::Array::New(env, ev.nv.size());
        for (size_t k = 0; k < ev.nv.size(); ++k) {
          nghttp2_vec buf = nghttp2_rcbuf_get_buf(ev.nv[k]);
          napi_value s;
          napi_create_string_latin1(env, reinterpret_cast<const char*>(buf.base), buf.len, &s);
          nv.Set(static_cast<uint32_t>(k), s);
        }
        out.Set(i++, nv);
        out.Set(i++, Napi::Number::New(env, static_cast<double>(ev.b)));
        break;
      }
      case kEventGoaway:
      case kEventSessionError: {
        out.Set(i++, Napi::Number::New(env, static_cast<double>(ev.a)));
        napi_value s;
        napi_create_string_latin1(env, ev.text.data(), ev.text.size(), &s);
        out.Set(i++, s);
        break;
      }
      case kEventSettings: {
        Napi::Array iv = Napi::Array::New(env, ev.ints.size());
        for (size_t k = 0; k < ev.ints.size(); ++k) iv.Set(static_cast<uint32_t>(k), Napi::Number::New(env, ev.ints[k]));
        out.Set(i++, iv);
        out.Set(i++, Napi::Number::New(env, 0));
        break;
      }
      case kEventDataCopy:
        out.Set(i++, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(ev.text.data()), ev.text.size()));
        out.Set(i++, Napi::Number::New(env, static_cast<double>(ev.b)));
        break;
      default:
        out.Set(i++, Napi::Number::New(env, static_cast<double>(ev.a)));
        out.Set(i++, Napi::Number::New(env, static_cast<double>(ev.b)));
        break;
    }
  }
  events_.clear();
  return out;
}

// request(headers: string[] flat name/value, bodyMode: 0 none | 1 fixed | 2 streamed, body?: Uint8Array)
// → stream id (> 0) or a negative nghttp2 error code.
Napi::Value Session::Request(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  CIC_GUARD_ARGC(2);
  CIC_GUARD(info[0].IsArray(), "headers must be an array of strings");
  CIC_GUARD_NUMBER(1);
  Napi::Array headers = info[0].As<Napi::Array>();
  const uint32_t count = headers.Length();
  CIC_GUARD(count % 2 == 0 && count >= 8, "headers must hold name/value pairs including the four pseudo-headers");
  const int mode = info[1].As<Napi::Number>().Int32Value();
  CIC_GUARD(mode >= 0 && mode <= 2, "bodyMode must be 0, 1 or 2");
  if (mode == StreamState::kFixedBody) {
    CIC_GUARD(info.Length() >= 3, "a fixed body needs a Uint8Array");
    CIC_GUARD_BYTES(2);
  }
  if (dead_) return Napi::Number::New(env, NGHTTP2_ERR_SESSION_CLOSING);

  // The strings must outlive submit_request2, which copies them into its own frame.
  std::vector<std::string> storage(count);
  std::vector<nghttp2_nv> nva(count / 2);
  for (uint32_t k = 0; k < count; ++k) {
    Napi::Value v = headers.Get(k);
    CIC_GUARD(v.IsString(), "every header name and value must be a string");
    storage[k] = v.As<Napi::String>().Utf8Value();
  }
  for (uint32_t k = 0; k < count / 2; ++k) {
    const std::string& name = storage[2 * k];
    const std::string& value = storage[2 * k + 1];
    nva[k].name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
    nva[k].namelen = name.size();
    nva[k].value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
    nva[k].valuelen = value.size();
    nva[k].flags = NGHTTP2_NV_FLAG_NONE;
  }

  StreamState* state = new StreamState();
  state->mode = static_cast<StreamState::BodyMode>(mode);
  nghttp2_data_provider2 provider;
  provider.source.ptr = state;
  provider.read_callback = ReadBodyCb;
  if (mode == StreamState::kFixedBody) {
    Napi::Uint8Array body = info[2].As<Napi::Uint8Array>();
    if (body.ByteLength() > limits_.max_buffered_body) {
      delete state;
      return Napi::Number::New(env, NGHTTP2_ERR_BUFFER_ERROR);
    }
    state->body.Append(body.Data(), body.ByteLength());
    state->body_ended = true;
  }
  int32_t sid = nghttp2_submit_request2(session_, nullptr, nva.data(), nva.size(),
                                        mode == StreamState::kNoBody ? nullptr : &provider, nullptr);
  if (sid < 0) {
    delete state;
    return Napi::Number::New(env, sid);
  }
  state->id = sid;
  buffered_body_ += state->body.Buffered();
  streams_[sid] = state;
  return Napi::Number::New(env, sid);
}

// write(streamId, chunk: Uint8Array | null, end: boolean) → 0 or a negative nghttp2 error code.
Napi::Value Session::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  CIC_GUARD_ARGC(3);
  CIC_GUARD_STREAM_ID(0);
  CIC_GUARD(info[1].IsNull() || info[1].IsUndefined() ||
                (info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array),
            "chunk must be a Uint8Array or null");
  CIC_GUARD(info[2].IsBoolean(), "end must be a boolean");
  const int32_t sid = info[0].As<Napi::Number>().Int32Value();
  auto it = streams_.find(sid);
  if (it == streams_.end() || it->second->mode != StreamState::kStreamedBody) {
    return Napi::Number::New(env, NGHTTP2_ERR_STREAM_CLOSED);
  }
  StreamState* s = it->second;
  if (s->body_ended) return Napi::Number::New(env, NGHTTP2_ERR_STREAM_SHUT_WR);
  if (info[1].IsTypedArray()) {
    Napi::Uint8Array chunk = info[1].As<Napi::Uint8Array>();
    if (buffered_body_ + chunk.ByteLength() > limits_.max_buffered_body) {
      return Napi::Number::New(env, NGHTTP2_ERR_BUFFER_ERROR);
    }
    s->body.Append(chunk.Data(), chunk.ByteLength());
    buffered_body_ += chunk.ByteLength();
  }
  if (info[2].As<Napi::Boolean>().Value()) s->body_ended = true;
  if (s->deferred && (s->body.Buffered() > 0 || s->body_ended)) {
    s->deferred = false;
    int rv = nghttp2_session_resume_data(session_, sid);
    // The stream may not be open yet (HEADERS still queued): the provider runs later anyway.
    if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT) return Napi::Number::New(env, rv);
  }
  return Napi::Number::New(env, 0);
}

// ping(hi, lo): the 8-byte payload as two unsigned 32-bit halves.
Napi::Value Session::Ping(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  CIC_GUARD_ARGC(2);
  CIC_GUARD_NUMBER(0);
  CIC_GUARD_NUMBER(1);
  uint8_t payload[8];
  WriteBe32(payload, info[0].As<Napi::Number>().Uint32Value());
  WriteBe32(payload + 4, info[1].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(env, nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, payload));
}

// consume(streamId, bytes): `bytes` DATA bytes of the stream were taken by their reader, so
// nghttp2 may reopen the stream's and the connection's windows (it queues WINDOW_UPDATE once
// half a window is consumed). A stream nghttp2 has already closed still credits the connection.
// → 0 or a negative nghttp2 error code.
Napi::Value Session::Consume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  CIC_GUARD_ARGC(2);
  CIC_GUARD_STREAM_ID(0);
  CIC_GUARD_NUMBER(1);
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  CIC_GUARD(bytes >= 0 && bytes <= static_cast<double>(NGHTTP2_MAX_WINDOW_SIZE) &&
                bytes == static_cast<double>(static_cast<int64_t>(bytes)),
            "argument 1 must be a whole byte count (0 … 2^31-1)");
  if (dead_) return Napi::Number::New(env, NGHTTP2_ERR_SESSION_CLOSING);
  const size_t n = static_cast<size_t>(bytes);
  if (n == 0) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, nghttp2_session_consume(session_, info[0].As<Napi::Number>().Int32Value(), n));
}

Napi::Value Session::RstStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  CIC_GUARD_ARGC(2);
  CIC_GUARD_STREAM_ID(0);
  CIC_GUARD_NUMBER(1);
  return Napi::Number::New(env, nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE,
                                                          info[0].As<Napi::Number>().Int32Value(),
                                                          info[1].As<Napi::Number>().Uint32Value()));
}

// goaway(errorCode, terminate): terminate=true also stops the session after the GOAWAY is sent.
Napi::Value Session::Goaway(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CIC_GUARD_OPEN();
  CIC_GUARD_ARGC(1);
  CIC_GUARD_NUMBER(0);
  const uint32_t code = info[0].As<Napi::Number>().Uint32Value();
  const bool terminate = info.Length() > 1 && info[1].ToBoolean().Value();
  int rv = terminate ? nghttp2_session_terminate_session(session_, code)
                     : nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, code, nullptr, 0);
  return Napi::Number::New(env, rv);
}

Napi::Value Session::WantRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, session_ != nullptr && !dead_ && nghttp2_session_want_read(session_) != 0);
}

Napi::Value Session::WantWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, session_ != nullptr && !dead_ &&
                                     (!pending_out_.empty() || nghttp2_session_want_write(session_) != 0));
}

// stats() → [liveStreams, bufferedBodyBytes, pendingOutputBytes, outboundQueueFrames]
Napi::Value Session::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(streams_.size())));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(buffered_body_)));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(pending_out_.size())));
  out.Set(3u, Napi::Number::New(env, session_ ? static_cast<double>(nghttp2_session_get_outbound_queue_size(session_)) : 0));
  return out;
}

Napi::Value Session::Close(const Napi::CallbackInfo& info) {
  Destroy();
  return info.Env().Undefined();
}

}  // namespace cic
