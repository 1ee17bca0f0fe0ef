// Alarm: one libuv timer for a JavaScript clock (src/h2/precise-clock.ts).
//
// Why not Node's setTimeout: clearTimeout() removes the JavaScript timer but leaves libuv's
// timer armed for the old expiry, so a PING deadline that was cleared by its ACK still wakes
// the process 10 s later, every minute, for nothing. uv_timer_stop() really disarms. The
// JavaScript side keeps its timers sorted and arms this one alarm for the earliest.
#ifndef CIC_ALARM_H_
#define CIC_ALARM_H_

#include <napi.h>
#include <uv.h>

namespace cic {

class Alarm : public Napi::ObjectWrap<Alarm> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Alarm(const Napi::CallbackInfo& info);
  ~Alarm() override;

 private:
  Napi::Value Arm(const Napi::CallbackInfo& info);
  Napi::Value Disarm(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnTimer(uv_timer_t* handle);
  static void OnEnvCleanup(void* arg);
  /** Stops and closes the handle (idempotent); the handle frees itself once libuv is done. */
  void Shutdown();
  void ReleaseAsyncContext();

  uv_timer_t* timer_ = nullptr;  // heap: libuv owns it until its close callback runs
  Napi::FunctionReference callback_;
  napi_async_context async_context_ = nullptr;
  bool cleanup_hook_ = false;
};

}  // namespace cic

#endif  // CIC_ALARM_H_
