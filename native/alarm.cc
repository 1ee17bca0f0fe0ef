#include "alarm.h"

namespace cic {

Napi::Function Alarm::Init(Napi::Env env) {
  return DefineClass(env, "Alarm",
                     {InstanceMethod<&Alarm::Arm>("arm"), InstanceMethod<&Alarm::Disarm>("disarm"),
                      InstanceMethod<&Alarm::Close>("close")});
}

Alarm::Alarm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Alarm>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(env, "Alarm(callback): callback must be a function").ThrowAsJavaScriptException();
    return;
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "Alarm: no event loop").ThrowAsJavaScriptException();
    return;
  }
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  napi_value name = Napi::String::New(env, "cic:alarm");
  if (napi_async_init(env, nullptr, name, &async_context_) != napi_ok) async_context_ = nullptr;
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  // Like the runtime's other timers: a pending alarm alone never keeps the process alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  cleanup_hook_ = napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok;
}

Alarm::~Alarm() {
  Shutdown();
  if (cleanup_hook_) napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
  // Hazard: no napi_async_destroy here. A finalizer may run inside garbage collection, where
  // async-hooks bookkeeping must not be touched; close() releases the context instead (the
  // clock keeps one alarm for the process's life, so this path is the exception).
}

void Alarm::ReleaseAsyncContext() {
  if (async_context_ == nullptr) return;
  napi_async_destroy(Env(), async_context_);
  async_context_ = nullptr;
}

void Alarm::Shutdown() {
  if (timer_ == nullptr) return;
  uv_timer_stop(timer_);
  timer_->data = nullptr;
  // Hazard: uv_close is asynchronous; the handle memory must outlive it, so it is freed in
  // the close callback, never here.
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_ = nullptr;
}

void Alarm::OnEnvCleanup(void* arg) {
  auto* self = static_cast<Alarm*>(arg);
  self->cleanup_hook_ = false;
  self->Shutdown();
  self->ReleaseAsyncContext();
}

Napi::Value Alarm::Arm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "arm(ms): ms must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (timer_ == nullptr) {
    Napi::Error::New(env, "arm() after close()").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double ms = info[0].As<Napi::Number>().DoubleValue();
  if (!(ms >= 0)) ms = 0;  // also NaN
  if (ms > 4294967295.0) ms = 4294967295.0;
  // uv_timer_start on an active timer re-arms it: exactly one expiry is pending at a time.
  uv_timer_start(timer_, OnTimer, static_cast<uint64_t>(ms), 0);
  return env.Undefined();
}

Napi::Value Alarm::Disarm(const Napi::CallbackInfo& info) {
  if (timer_ != nullptr) uv_timer_stop(timer_);
  return info.Env().Undefined();
}

Napi::Value Alarm::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  ReleaseAsyncContext();
  return info.Env().Undefined();
}

void Alarm::OnTimer(uv_timer_t* handle) {
  auto* self = static_cast<Alarm*>(handle->data);
  if (self == nullptr || self->callback_.IsEmpty()) return;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  // MakeCallback (not Call): runs the callback as a top-level task, so promise reactions
  // queued by it run right after, as they would after a Node timer.
  napi_value result = nullptr;
  napi_status status = napi_make_callback(env, self->async_context_, env.Global(), self->callback_.Value(), 0, nullptr, &result);
  if (status != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value error = nullptr;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);  // the process's uncaughtException, as for a timer
    }
  }
}

}  // namespace cic
