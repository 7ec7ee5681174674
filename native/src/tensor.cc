// Tensor and generator handles, argument conversion, and the error boundary.
#include "common.h"

#include <c10/util/Exception.h>

namespace imagic {

std::atomic<int64_t> TensorWrap::liveCount{0};
static thread_local at::Tensor* pendingTensor = nullptr;

Napi::Function TensorWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeTensor",
                     {
                         InstanceMethod<&TensorWrap::Dispose>("dispose"),
                         InstanceMethod<&TensorWrap::IsDisposed>("isDisposed"),
                         InstanceMethod<&TensorWrap::Shape>("shape"),
                         InstanceMethod<&TensorWrap::Dtype>("dtype"),
                         InstanceMethod<&TensorWrap::Device>("device"),
                         InstanceMethod<&TensorWrap::RequiresGrad>("requiresGrad"),
                         InstanceMethod<&TensorWrap::Info>("info"),
                     });
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  if (pendingTensor == nullptr) {
    throw Napi::TypeError::New(info.Env(), "NativeTensor cannot be constructed from JavaScript");
  }
  tensor = std::move(*pendingTensor);
  pendingTensor = nullptr;
  live = true;
  liveCount.fetch_add(1, std::memory_order_relaxed);
}

void TensorWrap::release() {
  if (live) {
    tensor.reset();
    live = false;
    liveCount.fetch_sub(1, std::memory_order_relaxed);
  }
}

TensorWrap::~TensorWrap() { release(); }

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value TensorWrap::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !live);
}

static void checkLive(const TensorWrap* w, Napi::Env env) {
  if (!w->live) throw Napi::Error::New(env, "tensor: this tensor was disposed and cannot be used");
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  checkLive(this, info.Env());
  auto sizes = tensor.sizes();
  auto arr = Napi::Array::New(info.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) arr.Set(i, Napi::Number::New(info.Env(), double(sizes[i])));
  return arr;
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  checkLive(this, info.Env());
  return Napi::String::New(info.Env(), dtypeName(tensor.scalar_type()));
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  checkLive(this, info.Env());
  return Napi::String::New(info.Env(), tensor.device().str());
}

Napi::Value TensorWrap::RequiresGrad(const Napi::CallbackInfo& info) {
  checkLive(this, info.Env());
  return Napi::Boolean::New(info.Env(), tensor.requires_grad());
}

// [shape, dtype, device] in one crossing: what the TypeScript wrapper caches.
Napi::Value TensorWrap::Info(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  checkLive(this, env);
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, Shape(info));
  out.Set(1u, Napi::String::New(env, dtypeName(tensor.scalar_type())));
  out.Set(2u, Napi::String::New(env, tensor.device().str()));
  return out;
}

// ---------------------------------------------------------------------------------------------
Napi::Function GeneratorWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeGenerator",
                     {
                         InstanceMethod<&GeneratorWrap::ManualSeed>("manualSeed"),
                         InstanceMethod<&GeneratorWrap::InitialSeed>("initialSeed"),
                         InstanceMethod<&GeneratorWrap::GetState>("getState"),
                         InstanceMethod<&GeneratorWrap::SetState>("setState"),
                         InstanceMethod<&GeneratorWrap::Device>("device"),
                     });
}

// new NativeGenerator(seed: number, device: string)
GeneratorWrap::GeneratorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorWrap>(info) {
  try {
    auto seed = uint64_t(toInt(info[0], "seed"));
    auto device = info.Length() > 1 && info[1].IsString() ? toDevice(info[1]) : c10::Device(c10::kCPU);
    gen = at::globalContext().defaultGenerator(device).clone();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  } catch (...) {
    rethrow(info.Env(), "Generator");
  }
}

Napi::Value GeneratorWrap::ManualSeed(const Napi::CallbackInfo& info) {
  try {
    auto seed = uint64_t(toInt(info[0], "seed"));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
    return info.Env().Undefined();
  } catch (...) {
    rethrow(info.Env(), "Generator.manualSeed");
  }
}

Napi::Value GeneratorWrap::InitialSeed(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(gen.current_seed()));
}

Napi::Value GeneratorWrap::GetState(const Napi::CallbackInfo& info) {
  try {
    std::lock_guard<std::mutex> lock(gen.mutex());
    return wrap(info.Env(), gen.get_state());
  } catch (...) {
    rethrow(info.Env(), "Generator.getState");
  }
}

Napi::Value GeneratorWrap::SetState(const Napi::CallbackInfo& info) {
  try {
    auto& state = toTensor(info[0], "state");
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return info.Env().Undefined();
  } catch (...) {
    rethrow(info.Env(), "Generator.setState");
  }
}

Napi::Value GeneratorWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), gen.device().str());
}

// ---------------------------------------------------------------------------------------------
at::Tensor& toTensor(const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw ArgError(std::string("expected a tensor for '") + what + "'");
  auto obj = v.As<Napi::Object>();
  auto* data = v.Env().GetInstanceData<AddonData>();
  if (!obj.InstanceOf(data->tensorCtor.Value())) {
    throw ArgError(std::string("expected a tensor for '") + what + "'");
  }
  auto* w = TensorWrap::Unwrap(obj);
  if (!w->live) throw ArgError(std::string("'") + what + "' is a disposed tensor and cannot be used");
  return w->tensor;
}

std::optional<at::Tensor> toOptTensor(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  return toTensor(v);
}

std::vector<at::Tensor> toTensorList(const Napi::Value& v) {
  if (!v.IsArray()) throw ArgError("expected an array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(toTensor(arr.Get(i), "tensors[i]"));
  return out;
}

int64_t toInt(const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (!v.IsNumber()) throw ArgError(std::string("expected an integer for '") + what + "'");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) {
    throw ArgError(std::string("expected an integer for '") + what + "', got " + std::to_string(d));
  }
  return int64_t(d);
}

std::vector<int64_t> toIntList(const Napi::Value& v) {
  if (v.IsNumber()) return {toInt(v)};
  if (!v.IsArray()) throw ArgError("expected an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out[i] = toInt(arr.Get(i), "list item");
  return out;
}

double toDouble(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw ArgError(std::string("expected a number for '") + what + "'");
  return v.As<Napi::Number>().DoubleValue();
}

bool toBool(const Napi::Value& v) { return v.ToBoolean().Value(); }

at::ScalarType toDtype(const Napi::Value& v) {
  if (!v.IsString()) throw ArgError("expected a dtype name");
  auto s = v.As<Napi::String>().Utf8Value();
  if (s == "float32") return at::kFloat;
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float64") return at::kDouble;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  if (s == "int16") return at::kShort;
  if (s == "int8") return at::kChar;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  throw ArgError("unknown dtype '" + s +
                 "' (expected float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8 or bool)");
}

const char* dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

c10::Device toDevice(const Napi::Value& v) {
  if (!v.IsString()) throw ArgError("expected a device name such as 'cpu' or 'cuda:0'");
  auto s = v.As<Napi::String>().Utf8Value();
  std::optional<c10::Device> parsed;
  try {
    parsed.emplace(s);
  } catch (const c10::Error& e) {
    throw ArgError("unknown device '" + s + "': " + e.what_without_backtrace());
  }
  c10::Device d = *parsed;
  if (d.is_cuda() && !at::hasCUDA()) {
    throw ArgError("device '" + s + "' was asked for, but CUDA is not available in this build of libtorch " +
                   "or on this machine");
  }
  return d;
}

at::Scalar toScalar(const Napi::Value& v) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) {
    bool lossless;
    return at::Scalar(int64_t(v.As<Napi::BigInt>().Int64Value(&lossless)));
  }
  if (!v.IsNumber()) throw ArgError("expected a number or a tensor");
  double d = v.As<Napi::Number>().DoubleValue();
  // Integer-valued numbers act as Python ints (int tensors stay int), others as Python floats.
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.007199254740992e15) return at::Scalar(int64_t(d));
  return at::Scalar(d);
}

std::optional<at::Generator> toOptGenerator(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  auto* data = v.Env().GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->generatorCtor.Value())) {
    throw ArgError("expected a Generator");
  }
  return GeneratorWrap::Unwrap(v.As<Napi::Object>())->gen;
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  auto* data = env.GetInstanceData<AddonData>();
  pendingTensor = &t;
  auto obj = data->tensorCtor.New({});
  pendingTensor = nullptr;
  return obj;
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) arr.Set(uint32_t(i), wrapOpt(env, ts[i]));
  return arr;
}

Napi::Value wrapOpt(Napi::Env env, const at::Tensor& t) {
  if (!t.defined()) return env.Null();
  return wrap(env, t);
}

static Napi::Error makeError(Napi::Env env, const std::string& msg, const char* code) {
  auto err = Napi::Error::New(env, msg);
  err.Value().Set("code", Napi::String::New(env, code));
  return err;
}

void rethrow(Napi::Env env, const char* op) {
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    throw makeError(env, std::string(op) + ": out of memory: " + e.what_without_backtrace(), "ERR_IMAGIC_OOM");
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    const char* code = "ERR_IMAGIC_TORCH";
    // CPU allocations that fail surface as plain c10::Error; give them the same code as CUDA OOM.
    if (msg.find("can't allocate memory") != std::string::npos ||
        msg.find("out of memory") != std::string::npos) {
      code = "ERR_IMAGIC_OOM";
    }
    throw makeError(env, std::string(op) + ": " + msg, code);
  } catch (const ArgError& e) {
    throw makeError(env, std::string(op) + ": " + e.what(), "ERR_IMAGIC_ARG");
  } catch (const std::bad_alloc&) {
    throw makeError(env, std::string(op) + ": out of memory (std::bad_alloc)", "ERR_IMAGIC_OOM");
  } catch (const std::exception& e) {
    throw makeError(env, std::string(op) + ": " + e.what(), "ERR_IMAGIC_TORCH");
  } catch (...) {
    throw makeError(env, std::string(op) + ": unknown native error", "ERR_IMAGIC_TORCH");
  }
}

}  // namespace imagic
