// A minimal in-process Node-API runtime, for running the addon's own code (native/session.cc
// and node-addon-api's ObjectWrap machinery, unchanged) without Node: fuzz targets link it in
// place of the real engine. Values live in an arena owned by the environment and are freed
// all at once by FakeEnv::Reset(), after the finalizers of wrapped objects have run (what a
// garbage collection at environment teardown would do).
//
// Hazard: this implements only what the addon uses today. A new napi_* call in session.cc
// shows up as an undefined symbol when the fuzz target links; add it here, with the same
// semantics as Node's (argument checks included), or the fuzzer tests something else.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fake_napi {

enum class Kind { kUndefined, kNull, kBoolean, kNumber, kString, kObject, kArray, kFunction, kUint8Array };

struct Value {
  Kind kind = Kind::kUndefined;
  bool boolean = false;
  double number = 0;
  std::string str;                                        // kString (latin1/utf8 bytes)
  std::vector<std::pair<std::string, Value*>> props;      // kObject, kFunction (named properties)
  std::vector<Value*> elems;                              // kArray
  std::vector<uint8_t> bytes;                             // kUint8Array owned by the runtime
  const uint8_t* external = nullptr;                      // kUint8Array viewing caller memory
  size_t external_len = 0;
  napi_callback cb = nullptr;                             // kFunction
  void* cb_data = nullptr;
  std::vector<napi_property_descriptor> instance_props;   // kFunction made by napi_define_class
  Value* prototype_of = nullptr;                          // kObject: the class it was made from
  void* wrapped = nullptr;                                // napi_wrap
  node_api_basic_finalize wrap_finalize = nullptr;
  void* wrap_hint = nullptr;
  struct Finalizer {
    void* data;
    node_api_basic_finalize cb;
    void* hint;
  };
  std::vector<Finalizer> finalizers;                      // napi_add_finalizer

  const uint8_t* Data() const { return external != nullptr ? external : bytes.data(); }
  size_t Length() const { return external != nullptr ? external_len : bytes.size(); }
  Value* Get(const std::string& key) const;
};

}  // namespace fake_napi

struct napi_env__ {
  std::vector<std::unique_ptr<fake_napi::Value>> arena;
  std::vector<std::unique_ptr<struct napi_ref__>> refs;
  std::vector<std::pair<napi_cleanup_hook, void*>> cleanup_hooks;
  fake_napi::Value* pending_exception = nullptr;
  napi_extended_error_info last_error{};
  fake_napi::Value undefined_value;
  fake_napi::Value null_value;
  fake_napi::Value true_value;
  fake_napi::Value false_value;

  napi_env__();
  fake_napi::Value* New(fake_napi::Kind kind);
  /** "Garbage collection" of everything: wrap finalizers, then cleanup hooks, then the arena. */
  void Reset();
};

struct napi_ref__ {
  fake_napi::Value* value;
  uint32_t count;
};

namespace fake_napi {

inline napi_value ToNapi(Value* v) { return reinterpret_cast<napi_value>(v); }
inline Value* FromNapi(napi_value v) { return reinterpret_cast<Value*>(v); }

/** Calls `fn` as `this.fn(args…)` (or `new fn(args…)` when construct is set), like the engine would. */
Value* Call(napi_env env, Value* fn, Value* self, const std::vector<Value*>& args, bool construct = false);

/** `new cls(args…)`: a fresh object carrying cls's instance methods, passed to its constructor. */
Value* Construct(napi_env env, Value* cls, const std::vector<Value*>& args);

/** obj.name(args…), looking the method up on the instance's class. */
Value* CallMethod(napi_env env, Value* obj, const char* name, const std::vector<Value*>& args);

/** A Uint8Array viewing `len` bytes at `data` (not copied; must outlive its use). */
Value* ViewBytes(napi_env env, const uint8_t* data, size_t len);

/** Takes the pending exception (nullptr when none) and describes it. */
Value* TakeException(napi_env env, std::string* message);

}  // namespace fake_napi
