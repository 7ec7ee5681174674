// Entry point of the imagic Node-API addon. Context-aware: every environment (the main thread and
// each worker thread) gets its own constructors; libtorch itself is shared by the process.
#include "common.h"

namespace imagic {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted by node-addon-api when the environment exits
  auto tensorCtor = TensorWrap::Init(env);
  auto generatorCtor = GeneratorWrap::Init(env);
  data->tensorCtor = Napi::Persistent(tensorCtor);
  data->generatorCtor = Napi::Persistent(generatorCtor);
  exports.Set("NativeTensor", tensorCtor);
  exports.Set("Generator", generatorCtor);
  registerCreation(env, exports);
  registerMath(env, exports);
  registerShape(env, exports);
  registerNN(env, exports);
  registerAutograd(env, exports);
  registerOptim(env, exports);
  registerRuntime(env, exports);
  registerUNetReference(env, exports);
  return exports;
}

}  // namespace imagic

static Napi::Object InitImagic(Napi::Env env, Napi::Object exports) { return imagic::Init(env, exports); }

NODE_API_MODULE(imagic, InitImagic)
