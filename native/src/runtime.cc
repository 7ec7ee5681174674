// Process-level runtime: live-tensor count, threads, seeds, devices, autocast (mixed precision).
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

namespace imagic {

IMAGIC_OP(liveTensors) { return Napi::Number::New(info.Env(), double(TensorWrap::liveCount.load())); }

IMAGIC_OP(setNumThreads) {
  at::set_num_threads(int(toInt(info[0], "threads")));
  return info.Env().Undefined();
}
IMAGIC_OP(getNumThreads) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

// manualSeed(seed): seeds libtorch's default generators (CPU and every CUDA device).
IMAGIC_OP(manualSeed) {
  auto seed = uint64_t(toInt(info[0], "seed"));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  if (at::hasCUDA()) {
    for (int i = 0; i < int(at::getNumGPUs()); i++) {
      auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, c10::DeviceIndex(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
  }
  return info.Env().Undefined();
}

IMAGIC_OP(cudaAvailable) { return Napi::Boolean::New(info.Env(), at::hasCUDA()); }
IMAGIC_OP(cudaDeviceCount) {
  return Napi::Number::New(info.Env(), at::hasCUDA() ? double(at::getNumGPUs()) : 0.0);
}

// synchronize(deviceIndex): waits for all work on a CUDA device; a no-op without CUDA.
IMAGIC_OP(synchronize) {
  if (at::hasCUDA()) at::detail::getCUDAHooks().deviceSynchronize(c10::DeviceIndex(toInt(info[0], "device")));
  return info.Env().Undefined();
}

// The version of the libtorch loaded now (at::show_config() lives in libtorch_cpu, so it reports the
// library found at load time, which may differ from the headers the addon was compiled with).
static std::string runtimeTorchVersion() {
  auto config = at::show_config();
  auto at = config.find("TORCH_VERSION=");
  if (at == std::string::npos) return "";
  auto start = at + std::string("TORCH_VERSION=").size();
  auto end = config.find_first_of(", \n", start);
  return config.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

IMAGIC_OP(buildInfo) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  // The libtorch actually loaded: its own build settings name its version (TORCH_VERSION=x.y.z).
  o.Set("runtimeTorchVersion", Napi::String::New(env, runtimeTorchVersion()));
  o.Set("cuda", Napi::Boolean::New(env, at::hasCUDA()));
  o.Set("threads", Napi::Number::New(env, at::get_num_threads()));
#ifdef IMAGIC_CUDA
  o.Set("builtWithCuda", Napi::Boolean::New(env, true));
#else
  o.Set("builtWithCuda", Napi::Boolean::New(env, false));
#endif
  return o;
}

static c10::DeviceType deviceType(const Napi::Value& v) {
  auto s = v.As<Napi::String>().Utf8Value();
  if (s == "cpu") return c10::DeviceType::CPU;
  if (s == "cuda") return c10::DeviceType::CUDA;
  throw ArgError("autocast device type must be 'cpu' or 'cuda', got '" + s + "'");
}

// autocastEnter(deviceType, dtype) -> [wasEnabled, previousDtype]; as torch.autocast.__enter__
IMAGIC_OP(autocastEnter) {
  auto dt = deviceType(info[0]);
  auto dtype = toDtype(info[1]);
  if (dtype != at::kHalf && dtype != at::kBFloat16) throw ArgError("autocast dtype must be float16 or bfloat16");
  if (dt == c10::DeviceType::CUDA && !at::hasCUDA()) throw ArgError("autocast on 'cuda' asked for, but CUDA is not available");
  auto env = info.Env();
  auto prev = Napi::Array::New(env, 2);
  prev.Set(0u, Napi::Boolean::New(env, at::autocast::is_autocast_enabled(dt)));
  prev.Set(1u, Napi::String::New(env, dtypeName(at::autocast::get_autocast_dtype(dt))));
  at::autocast::set_autocast_enabled(dt, true);
  at::autocast::set_autocast_dtype(dt, dtype);
  at::autocast::increment_nesting();
  return prev;
}

// autocastExit(deviceType, wasEnabled, previousDtype); as torch.autocast.__exit__
IMAGIC_OP(autocastExit) {
  auto dt = deviceType(info[0]);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(dt, toBool(info[1]));
  at::autocast::set_autocast_dtype(dt, toDtype(info[2]));
  return info.Env().Undefined();
}

void registerRuntime(Napi::Env env, Napi::Object& exports) {
  IMAGIC_EXPORT(liveTensors);
  IMAGIC_EXPORT(setNumThreads);
  IMAGIC_EXPORT(getNumThreads);
  IMAGIC_EXPORT(manualSeed);
  IMAGIC_EXPORT(cudaAvailable);
  IMAGIC_EXPORT(cudaDeviceCount);
  IMAGIC_EXPORT(synchronize);
  IMAGIC_EXPORT(buildInfo);
  IMAGIC_EXPORT(autocastEnter);
  IMAGIC_EXPORT(autocastExit);
}

}  // namespace imagic
