// libFuzzer target for the addon's receive() path: native/session.cc and node-addon-api's
// ObjectWrap glue, compiled unchanged and driven through the same method table JavaScript
// uses (fake_napi stands in for the engine). Built with AddressSanitizer and
// UndefinedBehaviorSanitizer by scripts/fuzz.mjs.
//
// One input = the bytes a server sent on one connection (the seeds are recorded sessions,
// test/fuzz/corpus/receive/). Per input: a fresh Session with the client's usual streams
// open (downchannel GET = 1, streamed event POST = 3, fixed POST = 5, GET = 7) and a PING in
// flight, then the bytes fed in slices whose sizes are derived from the input (sometimes all
// at once, like one large socket read), draining send() and takeEvents() in between as
// Connection does, and giving DATA bytes back with consume() — all of them, or (chosen by the
// input) only some, so windows also close and reopen late, as with a paused attachment reader.
// Besides memory errors, every call's result is checked against the contract JavaScript relies
// on; a violation aborts (a crash to libFuzzer):
//   - no call throws while the session is open; after close() receive() throws ERR_CLOSED;
//   - events come in slots of four with a known kind;
//   - a DATA event's [offset, offset + length) lies inside that receive() call's input;
//   - header lists are flat name/value string pairs;
//   - stats() never shows an underflowed counter, and pending output stays bounded;
//   - consume() of received bytes, of a closed or unknown stream, or of 0 bytes never throws.
#include <napi.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../events.h"
#include "../session.h"
#include "fake_napi.h"

using fake_napi::Kind;
using fake_napi::Value;

namespace {

// Slightly tighter than the defaults, so the limit paths are reachable with small inputs.
constexpr double kMaxHeaderListSize = 16 * 1024;
constexpr double kMaxPendingOutput = 64 * 1024;
constexpr size_t kSendLimit = 16 * 1024;

[[noreturn]] void Violation(const char* what, long long a = 0, long long b = 0) {
  fprintf(stderr, "contract violation: %s (%lld, %lld)\n", what, a, b);
  abort();
}

struct Harness {
  napi_env env;
  Value* session = nullptr;

  Value* Num(double d) {
    Value* v = env->New(Kind::kNumber);
    v->number = d;
    return v;
  }
  Value* Str(const char* s) {
    Value* v = env->New(Kind::kString);
    v->str = s;
    return v;
  }
  Value* Bool(bool b) { return b ? &env->true_value : &env->false_value; }
  Value* Headers(const char* method, const char* path) {
    const char* kv[] = {":method", method, ":scheme", "https", ":authority", "cic.example", ":path", path,
                        "authorization", "Bearer fuzz", "user-agent", "Fuzz/Target/1.0.0 (Linux;x)"};
    Value* arr = env->New(Kind::kArray);
    for (const char* s : kv) arr->elems.push_back(Str(s));
    return arr;
  }

  Value* Call(const char* method, const std::vector<Value*>& args) {
    Value* r = fake_napi::CallMethod(env, session, method, args);
    std::string msg;
    if (fake_napi::TakeException(env, &msg) != nullptr) {
      fprintf(stderr, "%s() threw: %s\n", method, msg.c_str());
      Violation("a call threw on an open session");
    }
    return r;
  }

  void CheckEvents(Value* events, size_t input_len) {
    if (events->kind == Kind::kNull) return;
    if (events->kind != Kind::kArray) Violation("events is not an array", static_cast<int>(events->kind));
    const auto& e = events->elems;
    if (e.size() % 4 != 0) Violation("events not in slots of four", static_cast<long long>(e.size()));
    for (size_t i = 0; i < e.size(); i += 4) {
      if (e[i]->kind != Kind::kNumber || e[i + 1]->kind != Kind::kNumber) Violation("kind/stream not numbers");
      const int kind = static_cast<int>(e[i]->number);
      const double sid = e[i + 1]->number;
      if (kind < cic::kEventHeaders || kind > cic::kEventGoawaySent) Violation("unknown event kind", kind);
      if (!(sid >= 0 && sid <= 0x7fffffff)) Violation("stream id out of range", static_cast<long long>(sid));
      Value* a = e[i + 2];
      Value* b = e[i + 3];
      switch (kind) {
        case cic::kEventData: {
          if (a->kind != Kind::kNumber || b->kind != Kind::kNumber) Violation("DATA slots not numbers");
          const double off = a->number, len = b->number;
          if (!(off >= 0 && len >= 0 && off + len <= static_cast<double>(input_len))) {
            Violation("DATA view outside the input", static_cast<long long>(off), static_cast<long long>(len));
          }
          break;
        }
        case cic::kEventDataCopy:
          if (a->kind != Kind::kUint8Array || b->kind != Kind::kNumber || b->number != static_cast<double>(a->Length())) {
            Violation("DATA_COPY slots malformed");
          }
          break;
        case cic::kEventHeaders:
          if (a->kind != Kind::kArray || a->elems.size() % 2 != 0) Violation("header list malformed");
          for (Value* s : a->elems) {
            if (s->kind != Kind::kString) Violation("header name/value not a string");
          }
          break;
        case cic::kEventGoaway:
        case cic::kEventSessionError:
          if (b->kind != Kind::kString) Violation("GOAWAY/error text not a string");
          if (kind == cic::kEventGoaway && b->str.size() > 256) Violation("GOAWAY debug data not bounded", static_cast<long long>(b->str.size()));
          break;
        case cic::kEventSettings:
          if (a->kind != Kind::kArray || a->elems.size() % 2 != 0) Violation("SETTINGS list malformed");
          break;
        default:
          if (a->kind != Kind::kNumber || b->kind != Kind::kNumber) Violation("event slots not numbers", kind);
          break;
      }
    }
  }

  void CheckStats() {
    Value* s = Call("stats", {});
    if (s->kind != Kind::kArray || s->elems.size() != 4) Violation("stats shape");
    for (Value* v : s->elems) {
      // A size_t counter that went below zero shows up as ~1.8e19.
      if (v->kind != Kind::kNumber || !(v->number >= 0 && v->number < 1e15)) Violation("stats counter out of range", static_cast<long long>(v->number));
    }
    if (s->elems[2]->number > kMaxPendingOutput + 64 * 1024) Violation("pending output unbounded", static_cast<long long>(s->elems[2]->number));
  }

  // Gives received DATA back (consume), all at once or — `hold` — the downchannel's (stream 1)
  // only every other call, the rest later: windows then close and reopen out of step.
  void ConsumeData(Value* events, bool hold) {
    if (events->kind != Kind::kArray) return;
    const auto& e = events->elems;
    for (size_t i = 0; i + 3 < e.size(); i += 4) {
      const int kind = static_cast<int>(e[i]->number);
      if (kind != cic::kEventData && kind != cic::kEventDataCopy) continue;
      const double sid = e[i + 1]->number;
      const double len = kind == cic::kEventData ? e[i + 3]->number : static_cast<double>(e[i + 2]->Length());
      if (hold && sid == 1) {
        held_ += len;
        continue;
      }
      Value* rv = Call("consume", {Num(sid), Num(len)});
      if (rv->kind != Kind::kNumber) Violation("consume() did not return a number");
    }
    if (!hold && held_ > 0) {
      Call("consume", {Num(1), Num(held_)});
      held_ = 0;
    }
  }

  double held_ = 0;

  void Drain() {
    for (int i = 0; i < 64; ++i) {
      Value* out = Call("send", {Num(kSendLimit)});
      if (out->kind == Kind::kNull) break;
      if (out->kind != Kind::kUint8Array || out->Length() == 0) Violation("send() returned neither bytes nor null");
    }
    CheckEvents(Call("takeEvents", {}), 0);
  }
};

// xorshift over a seed taken from the input, so a mutation also changes how it is sliced.
uint64_t SeedOf(const uint8_t* data, size_t size) {
  uint64_t h = 1469598103934665603ull ^ size;
  for (size_t i = 0; i < size; i += 1 + size / 64) h = (h ^ data[i]) * 1099511628211ull;
  return h | 1;
}

uint64_t Next(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static napi_env__ env_storage;
  Harness h{&env_storage};
  napi_env env = h.env;

  Napi::Function cls = cic::Session::Init(Napi::Env(env));
  Value* opts = env->New(Kind::kObject);
  opts->props.emplace_back("maxHeaderListSize", h.Num(kMaxHeaderListSize));
  opts->props.emplace_back("maxPendingOutput", h.Num(kMaxPendingOutput));
  h.session = fake_napi::Construct(env, fake_napi::FromNapi(cls), {opts});
  if (fake_napi::TakeException(env, nullptr) != nullptr) Violation("constructor threw");

  // The client's usual streams: downchannel, a streamed event (body still open), a fixed POST, a GET.
  static const uint8_t kBody[] = "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--\r\n";
  Value* body = env->New(Kind::kUint8Array);
  body->bytes.assign(kBody, kBody + sizeof kBody - 1);
  const double ids[] = {
      h.Call("request", {h.Headers("GET", "/v1/directives"), h.Num(0)})->number,
      h.Call("request", {h.Headers("POST", "/v1/events"), h.Num(2)})->number,
      h.Call("request", {h.Headers("POST", "/v1/events"), h.Num(1), body})->number,
      h.Call("request", {h.Headers("GET", "/ping"), h.Num(0)})->number,
  };
  for (int i = 0; i < 4; ++i) {
    if (ids[i] != 1 + 2 * i) Violation("unexpected stream id", i, static_cast<long long>(ids[i]));
  }
  h.Call("write", {h.Num(3), body, h.Bool(false)});
  h.Call("ping", {h.Num(0x01020304), h.Num(0x05060708)});
  h.Drain();

  uint64_t rng = SeedOf(data, size);
  const bool whole = Next(&rng) % 4 == 0;
  size_t off = 0;
  int step = 0;
  while (off < size) {
    size_t n = size - off;
    if (!whole) {
      const uint64_t r = Next(&rng);
      // Mostly small reads (TLS records split anywhere), sometimes a large one.
      const size_t cap = r % 8 == 0 ? 20000 : (r % 3 == 0 ? 16 : 1500);
      n = std::min(n, 1 + static_cast<size_t>(Next(&rng) % cap));
    }
    // Each slice in its own exactly-sized allocation: reading past it is an ASan error.
    std::vector<uint8_t> chunk(data + off, data + off + n);
    Value* events = h.Call("receive", {fake_napi::ViewBytes(env, chunk.data(), chunk.size())});
    h.CheckEvents(events, chunk.size());
    h.ConsumeData(events, Next(&rng) % 2 == 0);
    off += n;
    if (++step % 3 == 0) {
      // The event body goes on in between, and ends once: exercises resume_data.
      if (step == 3) h.Call("write", {h.Num(3), body, h.Bool(true)});
      h.CheckStats();
    }
    h.Drain();
    Value* want = h.Call("wantRead", {});
    if (want->kind != Kind::kBoolean) Violation("wantRead() not a boolean");
  }
  // A stream that is gone, an id never used, nothing at all: still no throw.
  h.Call("consume", {h.Num(3), h.Num(1)});
  h.Call("consume", {h.Num(0x7fffffff), h.Num(16)});
  h.Call("consume", {h.Num(1), h.Num(0)});
  h.CheckStats();
  h.Call("close", {});
  // After close() every entry point that needs the session throws ERR_CLOSED.
  static const uint8_t kOne[1] = {0};
  fake_napi::CallMethod(env, h.session, "receive", {fake_napi::ViewBytes(env, kOne, 1)});
  std::string msg;
  if (fake_napi::TakeException(env, &msg) == nullptr || msg.rfind("ERR_CLOSED", 0) != 0) Violation("receive() after close() did not throw ERR_CLOSED");
  env->Reset();
  return 0;
}
