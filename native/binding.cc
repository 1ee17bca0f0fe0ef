// Module entry: exports the Session class, the event kinds and process-wide facts.
#include <napi.h>
#include <nghttp2/nghttp2.h>

#include "alarm.h"
#include "events.h"
#include "session.h"

namespace {

Napi::Value Nghttp2Version(const Napi::CallbackInfo& info) {
  const nghttp2_info* v = nghttp2_version(0);
  return Napi::String::New(info.Env(), v != nullptr ? v->version_str : "unknown");
}

Napi::Value LiveSessions(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(cic::Session::LiveSessions()));
}

Napi::Value ErrorString(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "argument 0 must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::String::New(env, nghttp2_strerror(info[0].As<Napi::Number>().Int32Value()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Session", cic::Session::Init(env));
  exports.Set("Alarm", cic::Alarm::Init(env));
  exports.Set("nghttp2Version", Napi::Function::New(env, Nghttp2Version));
  exports.Set("liveSessions", Napi::Function::New(env, LiveSessions));
  exports.Set("errorString", Napi::Function::New(env, ErrorString));
  Napi::Object kinds = Napi::Object::New(env);
  kinds.Set("HEADERS", Napi::Number::New(env, cic::kEventHeaders));
  kinds.Set("DATA", Napi::Number::New(env, cic::kEventData));
  kinds.Set("END_STREAM", Napi::Number::New(env, cic::kEventEndStream));
  kinds.Set("STREAM_CLOSE", Napi::Number::New(env, cic::kEventStreamClose));
  kinds.Set("PING_ACK", Napi::Number::New(env, cic::kEventPingAck));
  kinds.Set("GOAWAY", Napi::Number::New(env, cic::kEventGoaway));
  kinds.Set("SETTINGS", Napi::Number::New(env, cic::kEventSettings));
  kinds.Set("SETTINGS_ACK", Napi::Number::New(env, cic::kEventSettingsAck));
  kinds.Set("RST_STREAM", Napi::Number::New(env, cic::kEventRstStream));
  kinds.Set("HEADERS_TOO_LARGE", Napi::Number::New(env, cic::kEventHeadersTooLarge));
  kinds.Set("FRAME_ERROR", Napi::Number::New(env, cic::kEventFrameError));
  kinds.Set("SESSION_ERROR", Napi::Number::New(env, cic::kEventSessionError));
  kinds.Set("DATA_COPY", Napi::Number::New(env, cic::kEventDataCopy));
  kinds.Set("NOT_SENT", Napi::Number::New(env, cic::kEventNotSent));
  kinds.Set("GOAWAY_SENT", Napi::Number::New(env, cic::kEventGoawaySent));
  exports.Set("EVENT", kinds);
  return exports;
}

}  // namespace

NODE_API_MODULE(cic_h2, Init)
