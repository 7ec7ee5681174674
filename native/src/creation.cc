// Tensor creation and the only two ways data crosses into JavaScript: toBuffer() and item().
#include "common.h"

namespace imagic {

static at::TensorOptions opts(const Napi::CallbackInfo& info, size_t dtypeArg, size_t deviceArg) {
  auto o = at::TensorOptions().dtype(toDtype(info[dtypeArg]));
  if (info.Length() > deviceArg && info[deviceArg].IsString()) o = o.device(toDevice(info[deviceArg]));
  return o;
}

// fromBuffer(view: ArrayBufferView, shape, dtype): copies the bytes once into a new CPU tensor.
IMAGIC_OP(fromBuffer) {
  if (!info[0].IsTypedArray() && !info[0].IsDataView()) throw ArgError("expected a typed array");
  auto shape = toIntList(info[1]);
  auto dtype = toDtype(info[2]);
  size_t byteLength, byteOffset;
  napi_value arrayBuffer;
  if (info[0].IsTypedArray()) {
    auto ta = info[0].As<Napi::TypedArray>();
    byteLength = ta.ByteLength();
    byteOffset = ta.ByteOffset();
    arrayBuffer = ta.ArrayBuffer();
  } else {
    auto dv = info[0].As<Napi::DataView>();
    byteLength = dv.ByteLength();
    byteOffset = dv.ByteOffset();
    arrayBuffer = dv.ArrayBuffer();
  }
  auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
  size_t need = size_t(t.numel()) * t.element_size();
  if (need != byteLength) {
    throw ArgError("data has " + std::to_string(byteLength) + " bytes but shape " + c10::str(t.sizes()) +
                   " of " + dtypeName(dtype) + " needs " + std::to_string(need));
  }
  auto* base = static_cast<uint8_t*>(Napi::ArrayBuffer(info.Env(), arrayBuffer).Data());
  if (need > 0) std::memcpy(t.data_ptr(), base + byteOffset, need);
  return wrap(info.Env(), t);
}

// toBuffer(t): an ArrayBuffer with a copy of the tensor's bytes (row-major, CPU).
IMAGIC_OP(toBuffer) {
  auto t = toTensor(info[0]).detach().to(at::kCPU).contiguous();
  size_t n = size_t(t.numel()) * t.element_size();
  auto ab = Napi::ArrayBuffer::New(info.Env(), n);
  if (n > 0) std::memcpy(ab.Data(), t.data_ptr(), n);
  return ab;
}

IMAGIC_OP(item) {
  auto& t = toTensor(info[0]);
  if (t.numel() != 1) {
    throw ArgError("item() needs a tensor with exactly one element, this one has " + std::to_string(t.numel()));
  }
  auto s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  return Napi::Number::New(info.Env(), s.toDouble());
}

// full(shape, value, dtype, device)
IMAGIC_OP(full) {
  return wrap(info.Env(), at::full(toIntList(info[0]), toScalar(info[1]), opts(info, 2, 3)));
}

IMAGIC_OP(empty) { return wrap(info.Env(), at::empty(toIntList(info[0]), opts(info, 1, 2))); }

// arange(start, end, step, dtype, device)
IMAGIC_OP(arange) {
  return wrap(info.Env(), at::arange(toScalar(info[0]), toScalar(info[1]), toScalar(info[2]), opts(info, 3, 4)));
}

// linspace(start, end, steps, dtype, device)
IMAGIC_OP(linspace) {
  return wrap(info.Env(),
              at::linspace(toScalar(info[0]), toScalar(info[1]), toInt(info[2], "steps"), opts(info, 3, 4)));
}

// Random tensors are drawn on the generator's device and then moved, so that a seed gives the same
// numbers whatever device the result lives on (what diffusers does with CPU generators).
template <typename F>
static at::Tensor drawRandom(const Napi::CallbackInfo& info, size_t dtypeArg, size_t genArg, F draw) {
  auto o = opts(info, dtypeArg, dtypeArg + 1);
  auto gen = toOptGenerator(info[genArg]);
  if (gen && gen->device() != o.device()) {
    auto t = draw(o.device(gen->device()), gen);
    return t.to(o.device());
  }
  return draw(o, gen);
}

// randn(shape, dtype, device, generator|null)
IMAGIC_OP(randn) {
  auto shape = toIntList(info[0]);
  return wrap(info.Env(), drawRandom(info, 1, 3, [&](at::TensorOptions o, std::optional<at::Generator> g) {
                return at::randn(shape, g, o);
              }));
}

// rand(shape, dtype, device, generator|null): uniform on [0, 1)
IMAGIC_OP(rand) {
  auto shape = toIntList(info[0]);
  return wrap(info.Env(), drawRandom(info, 1, 3, [&](at::TensorOptions o, std::optional<at::Generator> g) {
                return at::rand(shape, g, o);
              }));
}

// randint(low, high, shape, dtype, device, generator|null): uniform integers on [low, high)
IMAGIC_OP(randint) {
  auto low = toInt(info[0], "low");
  auto high = toInt(info[1], "high");
  auto shape = toIntList(info[2]);
  return wrap(info.Env(), drawRandom(info, 3, 5, [&](at::TensorOptions o, std::optional<at::Generator> g) {
                return at::randint(low, high, shape, g, o);
              }));
}

void registerCreation(Napi::Env env, Napi::Object& exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, fromBuffer, "fromBuffer"));
  exports.Set("toBuffer", Napi::Function::New(env, toBuffer, "toBuffer"));
  exports.Set("item", Napi::Function::New(env, item, "item"));
  exports.Set("full", Napi::Function::New(env, full, "full"));
  exports.Set("empty", Napi::Function::New(env, empty, "empty"));
  exports.Set("arange", Napi::Function::New(env, arange, "arange"));
  exports.Set("linspace", Napi::Function::New(env, linspace, "linspace"));
  exports.Set("randn", Napi::Function::New(env, randn, "randn"));
  exports.Set("rand", Napi::Function::New(env, rand, "rand"));
  exports.Set("randint", Napi::Function::New(env, randint, "randint"));
}

}  // namespace imagic
