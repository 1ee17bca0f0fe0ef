// One-line argument guards for the binding's entry points. Each throws a TypeError (or a
// coded Error) into JavaScript and returns; nothing here aborts the process.
#pragma once

#include <napi.h>

namespace cic {

inline void ThrowCoded(Napi::Env env, const char* code, const char* message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  err.ThrowAsJavaScriptException();
}

}  // namespace cic

#define CIC_GUARD(cond, msg)                                   \
  do {                                                         \
    if (!(cond)) {                                             \
      Napi::TypeError::New(env, msg).ThrowAsJavaScriptException(); \
      return env.Undefined();                                  \
    }                                                          \
  } while (0)

#define CIC_GUARD_ARGC(n) CIC_GUARD(info.Length() >= (n), "expected at least " #n " arguments")

#define CIC_GUARD_BYTES(i) \
  CIC_GUARD(info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array, \
            "argument " #i " must be a Uint8Array or Buffer")

#define CIC_GUARD_NUMBER(i) CIC_GUARD(info[i].IsNumber(), "argument " #i " must be a number")

#define CIC_GUARD_STREAM_ID(i)                                                         \
  CIC_GUARD(info[i].IsNumber() && info[i].As<Napi::Number>().Int64Value() > 0 &&       \
                info[i].As<Napi::Number>().Int64Value() <= 0x7fffffff,                 \
            "argument " #i " must be a stream id (1 … 2^31-1)")

#define CIC_GUARD_OPEN()                                             \
  do {                                                               \
    if (session_ == nullptr) {                                       \
      cic::ThrowCoded(env, "ERR_CLOSED", "the session is closed");   \
      return env.Undefined();                                        \
    }                                                                \
  } while (0)
