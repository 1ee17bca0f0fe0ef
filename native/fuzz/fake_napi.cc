// See fake_napi.h. Semantics follow Node's implementation where the addon can observe them:
// type checks return the same napi_status codes, a pending exception makes later calls
// fail with napi_pending_exception, and wrapped objects are finalized before their memory
// goes away.
#include "fake_napi.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using fake_napi::Kind;
using fake_napi::Value;

struct napi_callback_info__ {
  Value* self;
  std::vector<Value*> args;
  Value* new_target;
  void* data;
};

namespace {

napi_status Fail(napi_env env, napi_status status) {
  env->last_error.error_code = status;
  return status;
}

napi_status Ok(napi_env env) {
  env->last_error.error_code = napi_ok;
  return napi_ok;
}

#define CHECK_ARG(env, x) \
  do {                    \
    if ((x) == nullptr) return Fail(env, napi_invalid_arg); \
  } while (0)

// Calls that may run JavaScript refuse while an exception is pending (Node's NAPI_PREAMBLE).
#define PREAMBLE(env)                                                      \
  do {                                                                     \
    if ((env)->pending_exception != nullptr) return Fail(env, napi_pending_exception); \
  } while (0)

Value* V(napi_value v) { return fake_napi::FromNapi(v); }

bool IsObjectLike(const Value* v) {
  return v->kind == Kind::kObject || v->kind == Kind::kArray || v->kind == Kind::kFunction ||
         v->kind == Kind::kUint8Array;
}

std::string KeyOf(const Value* key) {
  if (key->kind == Kind::kString) return key->str;
  if (key->kind == Kind::kNumber) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", key->number);
    return buf;
  }
  return "";
}

void SetProp(Value* obj, const std::string& key, Value* v) {
  for (auto& p : obj->props) {
    if (p.first == key) {
      p.second = v;
      return;
    }
  }
  obj->props.emplace_back(key, v);
}

Value* MakeError(napi_env env, napi_value code, napi_value msg, const char* name) {
  Value* e = env->New(Kind::kObject);
  SetProp(e, "name", env->New(Kind::kString));
  e->Get("name")->str = name;
  SetProp(e, "message", V(msg));
  if (code != nullptr) SetProp(e, "code", V(code));
  return e;
}

}  // namespace

namespace fake_napi {

Value* Value::Get(const std::string& key) const {
  for (const auto& p : props) {
    if (p.first == key) return p.second;
  }
  return nullptr;
}

}  // namespace fake_napi

napi_env__::napi_env__() {
  undefined_value.kind = Kind::kUndefined;
  null_value.kind = Kind::kNull;
  true_value.kind = Kind::kBoolean;
  true_value.boolean = true;
  false_value.kind = Kind::kBoolean;
}

Value* napi_env__::New(Kind kind) {
  arena.push_back(std::make_unique<Value>());
  arena.back()->kind = kind;
  return arena.back().get();
}

void napi_env__::Reset() {
  // Finalizers may create values (and even wrap new objects): iterate by index.
  for (size_t i = 0; i < arena.size(); ++i) {
    Value* v = arena[i].get();
    if (v->wrap_finalize != nullptr) {
      auto fin = v->wrap_finalize;
      void* data = v->wrapped;
      v->wrap_finalize = nullptr;
      v->wrapped = nullptr;
      fin(this, data, v->wrap_hint);
    }
    auto finalizers = std::move(v->finalizers);
    for (auto& f : finalizers) f.cb(this, f.data, f.hint);
  }
  // Environment teardown: hooks run in reverse order of registration.
  while (!cleanup_hooks.empty()) {
    auto hook = cleanup_hooks.back();
    cleanup_hooks.pop_back();
    hook.first(hook.second);
  }
  pending_exception = nullptr;
  refs.clear();
  arena.clear();
}

namespace fake_napi {

Value* Call(napi_env env, Value* fn, Value* self, const std::vector<Value*>& args, bool construct) {
  if (fn == nullptr || fn->kind != Kind::kFunction || fn->cb == nullptr) {
    fprintf(stderr, "fake_napi: calling something that is not a function\n");
    abort();
  }
  napi_callback_info__ info{self != nullptr ? self : &env->undefined_value, args, construct ? fn : nullptr, fn->cb_data};
  napi_value r = fn->cb(env, &info);
  return r == nullptr ? &env->undefined_value : V(r);
}

Value* Construct(napi_env env, Value* cls, const std::vector<Value*>& args) {
  Value* self = env->New(Kind::kObject);
  self->prototype_of = cls;
  return Call(env, cls, self, args, true);
}

Value* CallMethod(napi_env env, Value* obj, const char* name, const std::vector<Value*>& args) {
  Value* cls = obj->prototype_of;
  if (cls != nullptr) {
    for (const napi_property_descriptor& d : cls->instance_props) {
      if (d.utf8name != nullptr && strcmp(d.utf8name, name) == 0 && d.method != nullptr) {
        napi_callback_info__ info{obj, args, nullptr, d.data};
        napi_value r = d.method(env, &info);
        return r == nullptr ? &env->undefined_value : V(r);
      }
    }
  }
  fprintf(stderr, "fake_napi: no method %s\n", name);
  abort();
}

Value* ViewBytes(napi_env env, const uint8_t* data, size_t len) {
  Value* v = env->New(Kind::kUint8Array);
  v->external = data;
  v->external_len = len;
  return v;
}

Value* TakeException(napi_env env, std::string* message) {
  Value* e = env->pending_exception;
  env->pending_exception = nullptr;
  if (e != nullptr && message != nullptr) {
    Value* m = e->Get("message");
    Value* c = e->Get("code");
    *message = (c != nullptr ? c->str + ": " : std::string()) + (m != nullptr ? m->str : std::string("?"));
  }
  return e;
}

}  // namespace fake_napi

extern "C" {

// ---- values ------------------------------------------------------------------------------

napi_status napi_get_undefined(napi_env env, napi_value* result) {
  CHECK_ARG(env, result);
  *result = fake_napi::ToNapi(&env->undefined_value);
  return Ok(env);
}

napi_status napi_get_null(napi_env env, napi_value* result) {
  CHECK_ARG(env, result);
  *result = fake_napi::ToNapi(&env->null_value);
  return Ok(env);
}

napi_status napi_get_boolean(napi_env env, bool value, napi_value* result) {
  CHECK_ARG(env, result);
  *result = fake_napi::ToNapi(value ? &env->true_value : &env->false_value);
  return Ok(env);
}

napi_status napi_create_double(napi_env env, double value, napi_value* result) {
  CHECK_ARG(env, result);
  Value* v = env->New(Kind::kNumber);
  v->number = value;
  *result = fake_napi::ToNapi(v);
  return Ok(env);
}

napi_status napi_create_object(napi_env env, napi_value* result) {
  CHECK_ARG(env, result);
  *result = fake_napi::ToNapi(env->New(Kind::kObject));
  return Ok(env);
}

napi_status napi_create_array_with_length(napi_env env, size_t length, napi_value* result) {
  CHECK_ARG(env, result);
  Value* v = env->New(Kind::kArray);
  v->elems.assign(length, &env->undefined_value);
  *result = fake_napi::ToNapi(v);
  return Ok(env);
}

static napi_status MakeString(napi_env env, const char* str, size_t length, napi_value* result) {
  CHECK_ARG(env, result);
  if (str == nullptr && length != 0) return Fail(env, napi_invalid_arg);
  if (length == NAPI_AUTO_LENGTH) length = str != nullptr ? strlen(str) : 0;
  if (length > INT32_MAX) return Fail(env, napi_invalid_arg);
  Value* v = env->New(Kind::kString);
  v->str.assign(str != nullptr ? str : "", length);
  *result = fake_napi::ToNapi(v);
  return Ok(env);
}

napi_status napi_create_string_latin1(napi_env env, const char* str, size_t length, napi_value* result) {
  return MakeString(env, str, length, result);
}

napi_status napi_create_string_utf8(napi_env env, const char* str, size_t length, napi_value* result) {
  return MakeString(env, str, length, result);
}

napi_status napi_create_buffer_copy(napi_env env, size_t length, const void* data, void** result_data,
                                    napi_value* result) {
  PREAMBLE(env);
  CHECK_ARG(env, result);
  Value* v = env->New(Kind::kUint8Array);
  v->bytes.resize(length);
  if (length > 0) memcpy(v->bytes.data(), data, length);  // ASan checks `data` covers `length`
  if (result_data != nullptr) *result_data = v->bytes.data();
  *result = fake_napi::ToNapi(v);
  return Ok(env);
}

napi_status napi_create_error(napi_env env, napi_value code, napi_value msg, napi_value* result) {
  CHECK_ARG(env, msg);
  CHECK_ARG(env, result);
  if (V(msg)->kind != Kind::kString) return Fail(env, napi_string_expected);
  *result = fake_napi::ToNapi(MakeError(env, code, msg, "Error"));
  return Ok(env);
}

napi_status napi_create_type_error(napi_env env, napi_value code, napi_value msg, napi_value* result) {
  CHECK_ARG(env, msg);
  CHECK_ARG(env, result);
  if (V(msg)->kind != Kind::kString) return Fail(env, napi_string_expected);
  *result = fake_napi::ToNapi(MakeError(env, code, msg, "TypeError"));
  return Ok(env);
}

napi_status napi_typeof(napi_env env, napi_value value, napi_valuetype* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  switch (V(value)->kind) {
    case Kind::kUndefined: *result = napi_undefined; break;
    case Kind::kNull: *result = napi_null; break;
    case Kind::kBoolean: *result = napi_boolean; break;
    case Kind::kNumber: *result = napi_number; break;
    case Kind::kString: *result = napi_string; break;
    case Kind::kFunction: *result = napi_function; break;
    default: *result = napi_object; break;
  }
  return Ok(env);
}

napi_status napi_is_array(napi_env env, napi_value value, bool* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  *result = V(value)->kind == Kind::kArray;
  return Ok(env);
}

napi_status napi_is_typedarray(napi_env env, napi_value value, bool* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  *result = V(value)->kind == Kind::kUint8Array;
  return Ok(env);
}

napi_status napi_get_typedarray_info(napi_env env, napi_value typedarray, napi_typedarray_type* type, size_t* length,
                                     void** data, napi_value* arraybuffer, size_t* byte_offset) {
  CHECK_ARG(env, typedarray);
  Value* v = V(typedarray);
  if (v->kind != Kind::kUint8Array) return Fail(env, napi_invalid_arg);
  if (type != nullptr) *type = napi_uint8_array;
  if (length != nullptr) *length = v->Length();
  if (data != nullptr) *data = const_cast<uint8_t*>(v->Data());
  if (arraybuffer != nullptr) *arraybuffer = typedarray;  // stands in for its own buffer
  if (byte_offset != nullptr) *byte_offset = 0;
  return Ok(env);
}

napi_status napi_get_value_double(napi_env env, napi_value value, double* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  if (V(value)->kind != Kind::kNumber) return Fail(env, napi_number_expected);
  *result = V(value)->number;
  return Ok(env);
}

// ECMAScript ToInt32 / ToUint32 as V8 does them (modulo 2^32; NaN and ±Infinity → 0).
static uint32_t ToUint32Bits(double d) {
  if (!std::isfinite(d)) return 0;
  double t = std::trunc(d);
  double m = std::fmod(t, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return static_cast<uint32_t>(m);
}

napi_status napi_get_value_int32(napi_env env, napi_value value, int32_t* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  if (V(value)->kind != Kind::kNumber) return Fail(env, napi_number_expected);
  *result = static_cast<int32_t>(ToUint32Bits(V(value)->number));
  return Ok(env);
}

napi_status napi_get_value_uint32(napi_env env, napi_value value, uint32_t* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  if (V(value)->kind != Kind::kNumber) return Fail(env, napi_number_expected);
  *result = ToUint32Bits(V(value)->number);
  return Ok(env);
}

napi_status napi_get_value_int64(napi_env env, napi_value value, int64_t* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  if (V(value)->kind != Kind::kNumber) return Fail(env, napi_number_expected);
  double d = V(value)->number;
  // Node: NaN/Infinity → 0, out of range saturates.
  if (!std::isfinite(d)) *result = 0;
  else if (d >= 9223372036854775807.0) *result = INT64_MAX;
  else if (d <= -9223372036854775808.0) *result = INT64_MIN;
  else *result = static_cast<int64_t>(d);
  return Ok(env);
}

napi_status napi_get_value_bool(napi_env env, napi_value value, bool* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  if (V(value)->kind != Kind::kBoolean) return Fail(env, napi_boolean_expected);
  *result = V(value)->boolean;
  return Ok(env);
}

napi_status napi_coerce_to_bool(napi_env env, napi_value value, napi_value* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  Value* v = V(value);
  bool b;
  switch (v->kind) {
    case Kind::kUndefined:
    case Kind::kNull: b = false; break;
    case Kind::kBoolean: b = v->boolean; break;
    case Kind::kNumber: b = v->number != 0 && !std::isnan(v->number); break;
    case Kind::kString: b = !v->str.empty(); break;
    default: b = true; break;
  }
  return napi_get_boolean(env, b, result);
}

napi_status napi_get_value_string_utf8(napi_env env, napi_value value, char* buf, size_t bufsize, size_t* result) {
  CHECK_ARG(env, value);
  if (V(value)->kind != Kind::kString) return Fail(env, napi_string_expected);
  const std::string& s = V(value)->str;
  if (buf == nullptr) {
    CHECK_ARG(env, result);
    *result = s.size();
    return Ok(env);
  }
  size_t n = 0;
  if (bufsize > 0) {
    n = s.size() < bufsize - 1 ? s.size() : bufsize - 1;
    memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  if (result != nullptr) *result = n;
  return Ok(env);
}

// ---- objects and arrays ------------------------------------------------------------------

napi_status napi_set_named_property(napi_env env, napi_value object, const char* utf8name, napi_value value) {
  PREAMBLE(env);
  CHECK_ARG(env, object);
  CHECK_ARG(env, utf8name);
  CHECK_ARG(env, value);
  if (!IsObjectLike(V(object))) return Fail(env, napi_object_expected);
  SetProp(V(object), utf8name, V(value));
  return Ok(env);
}

napi_status napi_get_named_property(napi_env env, napi_value object, const char* utf8name, napi_value* result) {
  PREAMBLE(env);
  CHECK_ARG(env, object);
  CHECK_ARG(env, utf8name);
  CHECK_ARG(env, result);
  if (!IsObjectLike(V(object))) return Fail(env, napi_object_expected);
  Value* v = V(object)->Get(utf8name);
  *result = fake_napi::ToNapi(v != nullptr ? v : &env->undefined_value);
  return Ok(env);
}

napi_status napi_get_property(napi_env env, napi_value object, napi_value key, napi_value* result) {
  CHECK_ARG(env, key);
  return napi_get_named_property(env, object, KeyOf(V(key)).c_str(), result);
}

napi_status napi_has_property(napi_env env, napi_value object, napi_value key, bool* result) {
  PREAMBLE(env);
  CHECK_ARG(env, object);
  CHECK_ARG(env, key);
  CHECK_ARG(env, result);
  if (!IsObjectLike(V(object))) return Fail(env, napi_object_expected);
  *result = V(object)->Get(KeyOf(V(key))) != nullptr;
  return Ok(env);
}

napi_status napi_set_element(napi_env env, napi_value object, uint32_t index, napi_value value) {
  PREAMBLE(env);
  CHECK_ARG(env, object);
  CHECK_ARG(env, value);
  Value* o = V(object);
  if (o->kind == Kind::kArray) {
    if (index >= o->elems.size()) o->elems.resize(static_cast<size_t>(index) + 1, &env->undefined_value);
    o->elems[index] = V(value);
    return Ok(env);
  }
  if (!IsObjectLike(o)) return Fail(env, napi_object_expected);
  SetProp(o, std::to_string(index), V(value));
  return Ok(env);
}

napi_status napi_get_element(napi_env env, napi_value object, uint32_t index, napi_value* result) {
  PREAMBLE(env);
  CHECK_ARG(env, object);
  CHECK_ARG(env, result);
  Value* o = V(object);
  if (o->kind == Kind::kArray) {
    *result = fake_napi::ToNapi(index < o->elems.size() ? o->elems[index] : &env->undefined_value);
    return Ok(env);
  }
  if (o->kind == Kind::kUint8Array) {
    Value* n = env->New(Kind::kNumber);
    if (index < o->Length()) n->number = o->Data()[index];
    else n->kind = Kind::kUndefined;
    *result = fake_napi::ToNapi(n);
    return Ok(env);
  }
  if (!IsObjectLike(o)) return Fail(env, napi_object_expected);
  Value* v = o->Get(std::to_string(index));
  *result = fake_napi::ToNapi(v != nullptr ? v : &env->undefined_value);
  return Ok(env);
}

napi_status napi_get_array_length(napi_env env, napi_value value, uint32_t* result) {
  PREAMBLE(env);
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  if (V(value)->kind != Kind::kArray) return Fail(env, napi_array_expected);
  *result = static_cast<uint32_t>(V(value)->elems.size());
  return Ok(env);
}

napi_status napi_define_properties(napi_env env, napi_value object, size_t property_count,
                                   const napi_property_descriptor* properties) {
  PREAMBLE(env);
  CHECK_ARG(env, object);
  if (property_count > 0) CHECK_ARG(env, properties);
  for (size_t i = 0; i < property_count; ++i) {
    const napi_property_descriptor& d = properties[i];
    std::string name = d.utf8name != nullptr ? d.utf8name : KeyOf(V(d.name));
    if (d.method != nullptr) {
      Value* f = env->New(Kind::kFunction);
      f->cb = d.method;
      f->cb_data = d.data;
      SetProp(V(object), name, f);
    } else if (d.value != nullptr) {
      SetProp(V(object), name, V(d.value));
    }
  }
  return Ok(env);
}

// ---- functions and classes ---------------------------------------------------------------

napi_status napi_create_function(napi_env env, const char*, size_t, napi_callback cb, void* data, napi_value* result) {
  CHECK_ARG(env, result);
  CHECK_ARG(env, cb);
  Value* f = env->New(Kind::kFunction);
  f->cb = cb;
  f->cb_data = data;
  *result = fake_napi::ToNapi(f);
  return Ok(env);
}

napi_status napi_define_class(napi_env env, const char*, size_t, napi_callback constructor, void* data,
                              size_t property_count, const napi_property_descriptor* properties, napi_value* result) {
  CHECK_ARG(env, result);
  CHECK_ARG(env, constructor);
  if (property_count > 0) CHECK_ARG(env, properties);
  Value* cls = env->New(Kind::kFunction);
  cls->cb = constructor;
  cls->cb_data = data;
  for (size_t i = 0; i < property_count; ++i) {
    if (properties[i].attributes & napi_static) {
      napi_status s = napi_define_properties(env, fake_napi::ToNapi(cls), 1, &properties[i]);
      if (s != napi_ok) return s;
    } else {
      cls->instance_props.push_back(properties[i]);
    }
  }
  *result = fake_napi::ToNapi(cls);
  return Ok(env);
}

napi_status napi_call_function(napi_env env, napi_value recv, napi_value func, size_t argc, const napi_value* argv,
                               napi_value* result) {
  PREAMBLE(env);
  CHECK_ARG(env, recv);
  CHECK_ARG(env, func);
  if (argc > 0) CHECK_ARG(env, argv);
  if (V(func)->kind != Kind::kFunction) return Fail(env, napi_function_expected);
  std::vector<Value*> args;
  for (size_t i = 0; i < argc; ++i) args.push_back(V(argv[i]));
  Value* r = fake_napi::Call(env, V(func), V(recv), args);
  if (env->pending_exception != nullptr) return Fail(env, napi_pending_exception);
  if (result != nullptr) *result = fake_napi::ToNapi(r);
  return Ok(env);
}

napi_status napi_get_cb_info(napi_env env, napi_callback_info cbinfo, size_t* argc, napi_value* argv,
                             napi_value* this_arg, void** data) {
  CHECK_ARG(env, cbinfo);
  if (argv != nullptr) {
    CHECK_ARG(env, argc);
    for (size_t i = 0; i < *argc; ++i) {
      argv[i] = fake_napi::ToNapi(i < cbinfo->args.size() ? cbinfo->args[i] : &env->undefined_value);
    }
  }
  if (argc != nullptr) *argc = cbinfo->args.size();
  if (this_arg != nullptr) *this_arg = fake_napi::ToNapi(cbinfo->self);
  if (data != nullptr) *data = cbinfo->data;
  return Ok(env);
}

napi_status napi_get_new_target(napi_env env, napi_callback_info cbinfo, napi_value* result) {
  CHECK_ARG(env, cbinfo);
  CHECK_ARG(env, result);
  *result = cbinfo->new_target != nullptr ? fake_napi::ToNapi(cbinfo->new_target) : nullptr;
  return Ok(env);
}

// ---- wrapping, references, finalizers ------------------------------------------------------

static napi_status NewRef(napi_env env, Value* v, uint32_t count, napi_ref* result) {
  env->refs.push_back(std::make_unique<napi_ref__>(napi_ref__{v, count}));
  *result = env->refs.back().get();
  return Ok(env);
}

napi_status napi_wrap(napi_env env, napi_value js_object, void* native_object, node_api_basic_finalize finalize_cb,
                      void* finalize_hint, napi_ref* result) {
  CHECK_ARG(env, js_object);
  CHECK_ARG(env, native_object);
  Value* o = V(js_object);
  if (!IsObjectLike(o)) return Fail(env, napi_object_expected);
  if (o->wrapped != nullptr) return Fail(env, napi_invalid_arg);  // already wrapped
  o->wrapped = native_object;
  o->wrap_finalize = finalize_cb;
  o->wrap_hint = finalize_hint;
  if (result != nullptr) return NewRef(env, o, 0, result);
  return Ok(env);
}

napi_status napi_unwrap(napi_env env, napi_value js_object, void** result) {
  CHECK_ARG(env, js_object);
  CHECK_ARG(env, result);
  Value* o = V(js_object);
  if (!IsObjectLike(o)) return Fail(env, napi_object_expected);
  if (o->wrapped == nullptr) return Fail(env, napi_invalid_arg);
  *result = o->wrapped;
  return Ok(env);
}

napi_status napi_remove_wrap(napi_env env, napi_value js_object, void** result) {
  CHECK_ARG(env, js_object);
  Value* o = V(js_object);
  if (o->wrapped == nullptr) return Fail(env, napi_invalid_arg);
  if (result != nullptr) *result = o->wrapped;
  o->wrapped = nullptr;
  o->wrap_finalize = nullptr;
  return Ok(env);
}

napi_status napi_add_finalizer(napi_env env, napi_value js_object, void* finalize_data,
                               node_api_basic_finalize finalize_cb, void* finalize_hint, napi_ref* result) {
  CHECK_ARG(env, js_object);
  CHECK_ARG(env, finalize_cb);
  V(js_object)->finalizers.push_back({finalize_data, finalize_cb, finalize_hint});
  if (result != nullptr) return NewRef(env, V(js_object), 0, result);
  return Ok(env);
}

napi_status napi_create_reference(napi_env env, napi_value value, uint32_t initial_refcount, napi_ref* result) {
  CHECK_ARG(env, value);
  CHECK_ARG(env, result);
  return NewRef(env, V(value), initial_refcount, result);
}

napi_status napi_delete_reference(napi_env env, napi_ref ref) {
  CHECK_ARG(env, ref);
  for (auto it = env->refs.begin(); it != env->refs.end(); ++it) {
    if (it->get() == ref) {
      env->refs.erase(it);
      return Ok(env);
    }
  }
  return Fail(env, napi_invalid_arg);  // a double delete would be a use-after-free in Node
}

napi_status napi_get_reference_value(napi_env env, napi_ref ref, napi_value* result) {
  CHECK_ARG(env, ref);
  CHECK_ARG(env, result);
  *result = fake_napi::ToNapi(ref->value);
  return Ok(env);
}

// ---- exceptions and errors ---------------------------------------------------------------

napi_status napi_throw(napi_env env, napi_value error) {
  CHECK_ARG(env, error);
  PREAMBLE(env);  // Node refuses to throw over a pending exception
  env->pending_exception = V(error);
  return Ok(env);
}

napi_status napi_is_exception_pending(napi_env env, bool* result) {
  CHECK_ARG(env, result);
  *result = env->pending_exception != nullptr;
  return Ok(env);
}

napi_status napi_get_and_clear_last_exception(napi_env env, napi_value* result) {
  CHECK_ARG(env, result);
  if (env->pending_exception == nullptr) return napi_get_undefined(env, result);
  *result = fake_napi::ToNapi(env->pending_exception);
  env->pending_exception = nullptr;
  return Ok(env);
}

napi_status napi_get_last_error_info(node_api_basic_env env, const napi_extended_error_info** result) {
  CHECK_ARG(env, result);
  static const char* const kMessages[] = {nullptr, "Invalid argument", "An object was expected",
                                          "A string was expected", "A string or symbol was expected",
                                          "A function was expected", "A number was expected",
                                          "A boolean was expected", "An array was expected",
                                          "Unknown failure", "An exception is pending"};
  const int code = env->last_error.error_code;
  env->last_error.error_message =
      code >= 0 && code < static_cast<int>(sizeof kMessages / sizeof kMessages[0]) ? kMessages[code] : "Unknown failure";
  *result = &env->last_error;
  return napi_ok;
}

void napi_fatal_error(const char* location, size_t location_len, const char* message, size_t message_len) {
  if (location_len == NAPI_AUTO_LENGTH) location_len = location != nullptr ? strlen(location) : 0;
  if (message_len == NAPI_AUTO_LENGTH) message_len = message != nullptr ? strlen(message) : 0;
  fprintf(stderr, "FATAL ERROR: %.*s %.*s\n", static_cast<int>(location_len), location ? location : "",
          static_cast<int>(message_len), message ? message : "");
  abort();
}

// ---- scopes, hooks -------------------------------------------------------------------------

napi_status napi_open_handle_scope(napi_env env, napi_handle_scope* result) {
  CHECK_ARG(env, result);
  *result = reinterpret_cast<napi_handle_scope>(env);
  return Ok(env);
}

napi_status napi_close_handle_scope(napi_env env, napi_handle_scope scope) {
  CHECK_ARG(env, scope);
  return Ok(env);
}

napi_status napi_open_escapable_handle_scope(napi_env env, napi_escapable_handle_scope* result) {
  CHECK_ARG(env, result);
  *result = reinterpret_cast<napi_escapable_handle_scope>(env);
  return Ok(env);
}

napi_status napi_close_escapable_handle_scope(napi_env env, napi_escapable_handle_scope scope) {
  CHECK_ARG(env, scope);
  return Ok(env);
}

napi_status napi_escape_handle(napi_env env, napi_escapable_handle_scope scope, napi_value escapee,
                               napi_value* result) {
  CHECK_ARG(env, scope);
  CHECK_ARG(env, escapee);
  CHECK_ARG(env, result);
  *result = escapee;
  return Ok(env);
}

napi_status napi_add_env_cleanup_hook(node_api_basic_env env, napi_cleanup_hook fun, void* arg) {
  CHECK_ARG(env, fun);
  for (auto& h : env->cleanup_hooks) {
    if (h.first == fun && h.second == arg) {
      fprintf(stderr, "fake_napi: cleanup hook registered twice (Node aborts here)\n");
      abort();
    }
  }
  env->cleanup_hooks.emplace_back(fun, arg);
  return napi_ok;
}

napi_status napi_remove_env_cleanup_hook(node_api_basic_env env, napi_cleanup_hook fun, void* arg) {
  CHECK_ARG(env, fun);
  for (auto it = env->cleanup_hooks.begin(); it != env->cleanup_hooks.end(); ++it) {
    if (it->first == fun && it->second == arg) {
      env->cleanup_hooks.erase(it);
      return napi_ok;
    }
  }
  fprintf(stderr, "fake_napi: removing a cleanup hook that is not registered (Node aborts here)\n");
  abort();
}

// Referenced by node-addon-api's async helpers, never called by the addon.
napi_status napi_async_destroy(napi_env, napi_async_context) { abort(); }
napi_status napi_close_callback_scope(napi_env, napi_callback_scope) { abort(); }
napi_status napi_delete_async_work(napi_env, napi_async_work) { abort(); }

}  // extern "C"
