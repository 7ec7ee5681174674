// Shared declarations of the imagic Node-API addon: tensor handles over libtorch, argument
// conversion, and the error boundary that turns every C++ exception into a JavaScript one.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

namespace imagic {

// Per-environment state: one per main thread or worker thread that loads the addon.
struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference generatorCtor;
};

// A JavaScript handle to one at::Tensor. The tensor is released by dispose() or, as a safety
// net, by the garbage collector's finalizer.
class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  at::Tensor tensor;
  bool live = false;

  static std::atomic<int64_t> liveCount;

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  void release();
};

// A seeded random generator (CPU or CUDA) for reproducible noise.
class GeneratorWrap : public Napi::ObjectWrap<GeneratorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit GeneratorWrap(const Napi::CallbackInfo& info);
  at::Generator gen;

 private:
  Napi::Value ManualSeed(const Napi::CallbackInfo& info);
  Napi::Value InitialSeed(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
};

// ---- conversion helpers (throw ArgError on bad input; the op boundary adds the op name) ----
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

at::Tensor& toTensor(const Napi::Value& v, const char* what = "tensor");
std::optional<at::Tensor> toOptTensor(const Napi::Value& v);
std::vector<at::Tensor> toTensorList(const Napi::Value& v);
std::vector<int64_t> toIntList(const Napi::Value& v);
int64_t toInt(const Napi::Value& v, const char* what = "integer");
double toDouble(const Napi::Value& v, const char* what = "number");
bool toBool(const Napi::Value& v);
at::ScalarType toDtype(const Napi::Value& v);
const char* dtypeName(at::ScalarType t);
c10::Device toDevice(const Napi::Value& v);
at::Scalar toScalar(const Napi::Value& v);
std::optional<at::Generator> toOptGenerator(const Napi::Value& v);

Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
Napi::Value wrapOpt(Napi::Env env, const at::Tensor& t);  // undefined tensor -> null

// ---- the op boundary ----
[[noreturn]] void rethrow(Napi::Env env, const char* op);

#define IMAGIC_OP(fn)                                        \
  static Napi::Value fn##_impl(const Napi::CallbackInfo& info); \
  Napi::Value fn(const Napi::CallbackInfo& info) {           \
    try {                                                    \
      return fn##_impl(info);                                \
    } catch (...) {                                          \
      rethrow(info.Env(), #fn);                              \
    }                                                        \
  }                                                          \
  static Napi::Value fn##_impl(const Napi::CallbackInfo& info)

using Registrar = void (*)(Napi::Env, Napi::Object&);
void registerCreation(Napi::Env env, Napi::Object& exports);
void registerMath(Napi::Env env, Napi::Object& exports);
void registerShape(Napi::Env env, Napi::Object& exports);
void registerNN(Napi::Env env, Napi::Object& exports);
void registerAutograd(Napi::Env env, Napi::Object& exports);
void registerOptim(Napi::Env env, Napi::Object& exports);
void registerRuntime(Napi::Env env, Napi::Object& exports);
void registerUNetReference(Napi::Env env, Napi::Object& exports);

}  // namespace imagic

#define IMAGIC_EXPORT(name) exports.Set(#name, Napi::Function::New(env, name, #name))
