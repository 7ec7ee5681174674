// Elementwise math, reductions and matrix products. Unary and binary ops are selected by a small
// integer code (see src/engine/native.ts) so that one crossing serves a whole family.
#include "common.h"

#include <ATen/ScalarOps.h>

namespace imagic {

static bool isNumberLike(const Napi::Value& v) { return v.IsNumber() || v.IsBoolean() || v.IsBigInt(); }

static at::Tensor unaryOp(const at::Tensor& x, int code) {
  switch (code) {
    case 0: return at::neg(x);
    case 1: return at::abs(x);
    case 2: return at::exp(x);
    case 3: return at::log(x);
    case 4: return at::sqrt(x);
    case 5: return at::rsqrt(x);
    case 6: return at::sin(x);
    case 7: return at::cos(x);
    case 8: return at::tanh(x);
    case 9: return at::sigmoid(x);
    case 10: return at::silu(x);
    case 11: return at::relu(x);
    case 12: return at::gelu(x, "none");
    case 13: return at::gelu(x, "tanh");
    case 14: return at::square(x);
    case 15: return at::floor(x);
    case 16: return at::ceil(x);
    case 17: return at::round(x);
    case 18: return at::sign(x);
    case 19: return at::isfinite(x);
    case 20: return at::logical_not(x);
    case 21: return at::reciprocal(x);
    case 22: return at::erf(x);
    case 23: return x * at::sigmoid(x * 1.702);  // quick_gelu, as CLIP uses it
    case 24: return at::isnan(x);
    case 25: return at::log1p(x);
    case 26: return at::expm1(x);
    case 27: return at::trunc(x);
    default: throw ArgError("unknown unary op code " + std::to_string(code));
  }
}

static at::Tensor binaryOp(const at::Tensor& a, const at::Tensor& b, int code) {
  switch (code) {
    case 0: return at::add(a, b);
    case 1: return at::sub(a, b);
    case 2: return at::mul(a, b);
    case 3: return at::div(a, b);
    case 4: return at::pow(a, b);
    case 5: return at::maximum(a, b);
    case 6: return at::minimum(a, b);
    case 7: return at::eq(a, b);
    case 8: return at::ne(a, b);
    case 9: return at::lt(a, b);
    case 10: return at::le(a, b);
    case 11: return at::gt(a, b);
    case 12: return at::ge(a, b);
    case 13: return at::logical_and(a, b);
    case 14: return at::logical_or(a, b);
    case 15: return at::remainder(a, b);
    case 16: return at::atan2(a, b);
    case 17: return at::floor_divide(a, b);
    default: throw ArgError("unknown binary op code " + std::to_string(code));
  }
}

static at::Tensor binaryScalar(const at::Tensor& a, const at::Scalar& b, int code) {
  switch (code) {
    case 0: return at::add(a, b);
    case 1: return at::sub(a, b);
    case 2: return at::mul(a, b);
    case 3: return at::div(a, b);
    case 4: return at::pow(a, b);
    case 5: return at::clamp_min(a, b);
    case 6: return at::clamp_max(a, b);
    case 7: return at::eq(a, b);
    case 8: return at::ne(a, b);
    case 9: return at::lt(a, b);
    case 10: return at::le(a, b);
    case 11: return at::gt(a, b);
    case 12: return at::ge(a, b);
    case 15: return at::remainder(a, b);
    case 17: return at::floor_divide(a, b);
    default: {
      // Ops without a scalar overload: promote the scalar as PyTorch does for a wrapped number.
      return binaryOp(a, at::native::wrapped_scalar_tensor(b), code);
    }
  }
}

// unary(x, code)
IMAGIC_OP(unary) { return wrap(info.Env(), unaryOp(toTensor(info[0]), int(toInt(info[1], "code")))); }

// binary(a, b, code): either side may be a number (a Python-style wrapped scalar).
IMAGIC_OP(binary) {
  int code = int(toInt(info[2], "code"));
  if (isNumberLike(info[1])) return wrap(info.Env(), binaryScalar(toTensor(info[0], "a"), toScalar(info[1]), code));
  if (isNumberLike(info[0])) {
    auto& b = toTensor(info[1], "b");
    auto s = toScalar(info[0]);
    if (code == 4) return wrap(info.Env(), at::pow(s, b));
    // A wrapped-number tensor takes part in type promotion exactly as a Python number does.
    return wrap(info.Env(), binaryOp(at::native::wrapped_scalar_tensor(s), b, code));
  }
  return wrap(info.Env(), binaryOp(toTensor(info[0], "a"), toTensor(info[1], "b"), code));
}

// add(a, b, alpha): a + alpha * b
IMAGIC_OP(addScaled) {
  return wrap(info.Env(), at::add(toTensor(info[0], "a"), toTensor(info[1], "b"), toScalar(info[2])));
}

// binaryInplace(a, b, code): a op= b for add/sub/mul/div; returns a.
IMAGIC_OP(binaryInplace) {
  auto& a = toTensor(info[0], "a");
  int code = int(toInt(info[2], "code"));
  bool scalar = isNumberLike(info[1]);
  switch (code) {
    case 0: scalar ? a.add_(toScalar(info[1])) : a.add_(toTensor(info[1], "b")); break;
    case 1: scalar ? a.sub_(toScalar(info[1])) : a.sub_(toTensor(info[1], "b")); break;
    case 2: scalar ? a.mul_(toScalar(info[1])) : a.mul_(toTensor(info[1], "b")); break;
    case 3: scalar ? a.div_(toScalar(info[1])) : a.div_(toTensor(info[1], "b")); break;
    default: throw ArgError("unknown in-place op code " + std::to_string(code));
  }
  return info[0];
}

// copy_(dst, src): copies values (with broadcasting, dtype and device conversion) into dst.
IMAGIC_OP(copy_) {
  toTensor(info[0], "dst").copy_(toTensor(info[1], "src"));
  return info[0];
}

IMAGIC_OP(fill_) {
  toTensor(info[0]).fill_(toScalar(info[1]));
  return info[0];
}

IMAGIC_OP(zero_) {
  toTensor(info[0]).zero_();
  return info[0];
}

// clamp(x, min|null, max|null)
IMAGIC_OP(clamp) {
  std::optional<at::Scalar> lo, hi;
  if (!info[1].IsNull() && !info[1].IsUndefined()) lo = toScalar(info[1]);
  if (!info[2].IsNull() && !info[2].IsUndefined()) hi = toScalar(info[2]);
  if (!lo && !hi) throw ArgError("clamp needs a min or a max");
  return wrap(info.Env(), at::clamp(toTensor(info[0]), lo, hi));
}

// lerp(a, b, weight): a + weight * (b - a); weight a number or a tensor.
IMAGIC_OP(lerp) {
  auto& a = toTensor(info[0], "a");
  auto& b = toTensor(info[1], "b");
  if (isNumberLike(info[2])) return wrap(info.Env(), at::lerp(a, b, toScalar(info[2])));
  return wrap(info.Env(), at::lerp(a, b, toTensor(info[2], "weight")));
}

// where(cond, a, b): a and b may be numbers.
IMAGIC_OP(where) {
  auto& c = toTensor(info[0], "condition");
  bool sa = isNumberLike(info[1]), sb = isNumberLike(info[2]);
  if (sa && sb) return wrap(info.Env(), at::where(c, toScalar(info[1]), toScalar(info[2])));
  if (sa) return wrap(info.Env(), at::where(c, toScalar(info[1]), toTensor(info[2], "b")));
  if (sb) return wrap(info.Env(), at::where(c, toTensor(info[1], "a"), toScalar(info[2])));
  return wrap(info.Env(), at::where(c, toTensor(info[1], "a"), toTensor(info[2], "b")));
}

// maskedFill(x, mask, value)
IMAGIC_OP(maskedFill) {
  return wrap(info.Env(), at::masked_fill(toTensor(info[0]), toTensor(info[1], "mask"), toScalar(info[2])));
}

// ---- reductions ------------------------------------------------------------------------------
static std::optional<std::vector<int64_t>> optDims(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  return toIntList(v);
}

static std::optional<at::ScalarType> optDtype(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  return toDtype(v);
}

// reduce(x, code, dims|null, keepdim, dtype|null): 0 sum, 1 mean, 2 amax, 3 amin, 4 prod(all), 5 all, 6 any
IMAGIC_OP(reduce) {
  auto& x = toTensor(info[0]);
  int code = int(toInt(info[1], "code"));
  auto dims = optDims(info[2]);
  bool keep = toBool(info[3]);
  auto dtype = optDtype(info[4]);
  std::vector<int64_t> all;
  at::IntArrayRef d = dims ? at::IntArrayRef(*dims) : at::IntArrayRef(all);
  switch (code) {
    case 0: return wrap(info.Env(), at::sum(x, d, keep, dtype));
    case 1: return wrap(info.Env(), at::mean(x, d, keep, dtype));
    case 2: return wrap(info.Env(), at::amax(x, d, keep));
    case 3: return wrap(info.Env(), at::amin(x, d, keep));
    case 5: return wrap(info.Env(), dims ? at::all(x, at::OptionalIntArrayRef(d), keep) : at::all(x));
    case 6: return wrap(info.Env(), dims ? at::any(x, at::OptionalIntArrayRef(d), keep) : at::any(x));
    default: throw ArgError("unknown reduction code " + std::to_string(code));
  }
}

// variance(x, dims|null, correction, keepdim, std?)
IMAGIC_OP(variance) {
  auto& x = toTensor(info[0]);
  auto dims = optDims(info[1]);
  at::Scalar corr(toDouble(info[2], "correction"));
  bool keep = toBool(info[3]);
  bool sd = toBool(info[4]);
  at::OptionalIntArrayRef d = dims ? at::OptionalIntArrayRef(*dims) : std::nullopt;
  return wrap(info.Env(), sd ? at::std(x, d, corr, keep) : at::var(x, d, corr, keep));
}

// maxDim(x, dim, keepdim, isMin): [values, indices]
IMAGIC_OP(maxDim) {
  auto& x = toTensor(info[0]);
  auto dim = toInt(info[1], "dim");
  bool keep = toBool(info[2]);
  auto r = toBool(info[3]) ? at::min(x, dim, keep) : at::max(x, dim, keep);
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}

// argmax(x, dim|null, keepdim, isMin)
IMAGIC_OP(argmax) {
  auto& x = toTensor(info[0]);
  std::optional<int64_t> dim;
  if (!info[1].IsNull() && !info[1].IsUndefined()) dim = toInt(info[1], "dim");
  bool keep = toBool(info[2]);
  return wrap(info.Env(), toBool(info[3]) ? at::argmin(x, dim, keep) : at::argmax(x, dim, keep));
}

// softmax(x, dim, log?, dtype|null)
IMAGIC_OP(softmax) {
  auto& x = toTensor(info[0]);
  auto dim = toInt(info[1], "dim");
  auto dtype = optDtype(info[3]);
  return wrap(info.Env(), toBool(info[2]) ? at::log_softmax(x, dim, dtype) : at::softmax(x, dim, dtype));
}

IMAGIC_OP(cumsum) { return wrap(info.Env(), at::cumsum(toTensor(info[0]), toInt(info[1], "dim"))); }

// ---- products ----------------------------------------------------------------------------------
IMAGIC_OP(matmul) { return wrap(info.Env(), at::matmul(toTensor(info[0], "a"), toTensor(info[1], "b"))); }
IMAGIC_OP(bmm) { return wrap(info.Env(), at::bmm(toTensor(info[0], "a"), toTensor(info[1], "b"))); }

// linear(x, weight [out, in], bias|null): x @ weight^T + bias
IMAGIC_OP(linear) {
  return wrap(info.Env(), at::linear(toTensor(info[0], "input"), toTensor(info[1], "weight"), toOptTensor(info[2])));
}

// baddbmm(input, b1, b2, beta, alpha): beta * input + alpha * (b1 @ b2)
IMAGIC_OP(baddbmm) {
  return wrap(info.Env(), at::baddbmm(toTensor(info[0], "input"), toTensor(info[1], "batch1"),
                                      toTensor(info[2], "batch2"), toScalar(info[3]), toScalar(info[4])));
}

void registerMath(Napi::Env env, Napi::Object& exports) {
  IMAGIC_EXPORT(unary);
  IMAGIC_EXPORT(binary);
  IMAGIC_EXPORT(addScaled);
  IMAGIC_EXPORT(binaryInplace);
  IMAGIC_EXPORT(copy_);
  IMAGIC_EXPORT(fill_);
  IMAGIC_EXPORT(zero_);
  IMAGIC_EXPORT(clamp);
  IMAGIC_EXPORT(lerp);
  IMAGIC_EXPORT(where);
  IMAGIC_EXPORT(maskedFill);
  IMAGIC_EXPORT(reduce);
  IMAGIC_EXPORT(variance);
  IMAGIC_EXPORT(maxDim);
  IMAGIC_EXPORT(argmax);
  IMAGIC_EXPORT(softmax);
  IMAGIC_EXPORT(cumsum);
  IMAGIC_EXPORT(matmul);
  IMAGIC_EXPORT(bmm);
  IMAGIC_EXPORT(linear);
  IMAGIC_EXPORT(baddbmm);
}

}  // namespace imagic
