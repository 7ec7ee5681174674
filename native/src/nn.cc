// Neural-network ops: convolution, normalization, attention, resampling, padding, pooling, losses.
#include "common.h"

#include <torch/version.h>

#include <cmath>
#include <limits>

namespace imagic {

static std::optional<std::vector<int64_t>> optInts(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  return toIntList(v);
}

// conv2d(x [N,C,H,W], weight [O,C/g,kh,kw], bias|null, stride[2], padding[2], dilation[2], groups)
IMAGIC_OP(conv2d) {
  return wrap(info.Env(), at::conv2d(toTensor(info[0], "input"), toTensor(info[1], "weight"), toOptTensor(info[2]),
                                     toIntList(info[3]), toIntList(info[4]), toIntList(info[5]),
                                     toInt(info[6], "groups")));
}

// groupNorm(x [N,C,*], numGroups, weight|null, bias|null, eps)
IMAGIC_OP(groupNorm) {
  return wrap(info.Env(), at::group_norm(toTensor(info[0], "input"), toInt(info[1], "numGroups"),
                                         toOptTensor(info[2]), toOptTensor(info[3]), toDouble(info[4], "eps")));
}

// layerNorm(x, normalizedShape, weight|null, bias|null, eps)
IMAGIC_OP(layerNorm) {
  return wrap(info.Env(), at::layer_norm(toTensor(info[0], "input"), toIntList(info[1]), toOptTensor(info[2]),
                                         toOptTensor(info[3]), toDouble(info[4], "eps")));
}

// embedding(weight [V,D], ids int64 [*]) -> [*, D]
IMAGIC_OP(embedding) {
  return wrap(info.Env(), at::embedding(toTensor(info[0], "weight"), toTensor(info[1], "indices")));
}

// scaledDotProductAttention(q [..,L,E], k [..,S,E], v [..,S,Ev], mask|null, dropoutP, isCausal, scale|null)
// libtorch 2.x has a fused op (flash / memory-efficient kernels on CUDA); older ones get the
// equivalent composition softmax(q k^T * scale + mask) v.
IMAGIC_OP(scaledDotProductAttention) {
  auto& q = toTensor(info[0], "query");
  auto& k = toTensor(info[1], "key");
  auto& v = toTensor(info[2], "value");
  auto mask = toOptTensor(info[3]);
  double dropoutP = toDouble(info[4], "dropoutP");
  bool isCausal = toBool(info[5]);
  std::optional<double> scale;
  if (!info[6].IsNull() && !info[6].IsUndefined()) scale = toDouble(info[6], "scale");
#if TORCH_VERSION_MAJOR >= 2
  return wrap(info.Env(), at::scaled_dot_product_attention(q, k, v, mask, dropoutP, isCausal, scale));
#else
  double s = scale ? *scale : 1.0 / std::sqrt(double(q.size(-1)));
  auto scores = at::matmul(q, k.transpose(-2, -1)) * s;
  if (isCausal) {
    auto keep = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask) {
    scores = mask->scalar_type() == at::kBool
                 ? scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity())
                 : scores + *mask;
  }
  auto attn = at::dropout(at::softmax(scores, -1), dropoutP, dropoutP > 0);
  return wrap(info.Env(), at::matmul(attn, v));
#endif
}

// interpolate(x [N,C,H,W], mode, size|null, scaleFactor|null, alignCorners, antialias)
// Follows torch.nn.functional.interpolate with recompute_scale_factor=None: a given scale factor
// both sets the output size (floor(in * scale)) and is passed on to the kernel.
IMAGIC_OP(interpolate) {
  auto& x = toTensor(info[0], "input");
  if (x.dim() != 4) throw ArgError("interpolate expects a 4-D input [N, C, H, W], got " + c10::str(x.sizes()));
  auto mode = info[1].As<Napi::String>().Utf8Value();
  auto size = optInts(info[2]);
  std::optional<std::vector<double>> scales;
  if (!info[3].IsNull() && !info[3].IsUndefined()) {
    if (info[3].IsNumber()) {
      double s = toDouble(info[3]);
      scales = std::vector<double>{s, s};
    } else {
      auto arr = info[3].As<Napi::Array>();
      scales = std::vector<double>{toDouble(arr.Get(0u)), toDouble(arr.Get(1u))};
    }
  }
  if (size && size->size() == 1) size = std::vector<int64_t>{(*size)[0], (*size)[0]};
  if (!size == !scales) throw ArgError("interpolate needs exactly one of size and scaleFactor");
  bool alignCorners = toBool(info[4]);
  bool antialias = toBool(info[5]);
  at::OptionalIntArrayRef os = size ? at::OptionalIntArrayRef(*size) : std::nullopt;
  std::optional<at::ArrayRef<double>> sf = scales ? std::optional<at::ArrayRef<double>>(*scales) : std::nullopt;
  if (antialias && mode != "bilinear" && mode != "bicubic") {
    throw ArgError("antialias is only available for bilinear and bicubic modes, not '" + mode + "'");
  }
  if (alignCorners && mode != "bilinear" && mode != "bicubic") {
    throw ArgError("alignCorners is only available for bilinear and bicubic modes, not '" + mode + "'");
  }
  at::Tensor out;
  if (mode == "nearest") {
    out = at::upsample_nearest2d(x, os, sf);
  } else if (mode == "nearest-exact") {
    out = at::_upsample_nearest_exact2d(x, os, sf);
  } else if (mode == "bilinear") {
    out = antialias ? at::_upsample_bilinear2d_aa(x, os, alignCorners, sf) : at::upsample_bilinear2d(x, os, alignCorners, sf);
  } else if (mode == "bicubic") {
    out = antialias ? at::_upsample_bicubic2d_aa(x, os, alignCorners, sf) : at::upsample_bicubic2d(x, os, alignCorners, sf);
  } else if (mode == "area") {
    std::vector<int64_t> outSize = size ? *size
                                        : std::vector<int64_t>{int64_t(std::floor(x.size(2) * (*scales)[0])),
                                                               int64_t(std::floor(x.size(3) * (*scales)[1]))};
    out = at::adaptive_avg_pool2d(x, outSize);
  } else {
    throw ArgError("unknown interpolation mode '" + mode + "' (nearest, nearest-exact, bilinear, bicubic, area)");
  }
  return wrap(info.Env(), out);
}

// pad(x, pads [left, right, top, bottom, ...], mode, value)
IMAGIC_OP(pad) {
  auto mode = info[2].As<Napi::String>().Utf8Value();
  std::optional<double> value;
  if (mode == "constant") value = toDouble(info[3], "value");
  return wrap(info.Env(), at::pad(toTensor(info[0], "input"), toIntList(info[1]), mode, value));
}

// dropout(x, p, train)
IMAGIC_OP(dropout) {
  return wrap(info.Env(), at::dropout(toTensor(info[0], "input"), toDouble(info[1], "p"), toBool(info[2])));
}

// pool2d(x, kernel[2], stride[2], padding[2], isMax)
IMAGIC_OP(pool2d) {
  auto& x = toTensor(info[0], "input");
  auto k = toIntList(info[1]), s = toIntList(info[2]), p = toIntList(info[3]);
  if (toBool(info[4])) return wrap(info.Env(), at::max_pool2d(x, k, s, p));
  return wrap(info.Env(), at::avg_pool2d(x, k, s, p));
}

static int64_t reduction(const Napi::Value& v) {
  auto s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string("mean");
  if (s == "mean") return at::Reduction::Mean;
  if (s == "sum") return at::Reduction::Sum;
  if (s == "none") return at::Reduction::None;
  throw ArgError("unknown reduction '" + s + "' (mean, sum, none)");
}

// mseLoss(input, target, reduction) / l1Loss(...)
IMAGIC_OP(mseLoss) {
  return wrap(info.Env(), at::mse_loss(toTensor(info[0], "input"), toTensor(info[1], "target"), reduction(info[2])));
}
IMAGIC_OP(l1Loss) {
  return wrap(info.Env(), at::l1_loss(toTensor(info[0], "input"), toTensor(info[1], "target"), reduction(info[2])));
}

// cosineSimilarity(a, b, dim, eps)
IMAGIC_OP(cosineSimilarity) {
  return wrap(info.Env(), at::cosine_similarity(toTensor(info[0], "x1"), toTensor(info[1], "x2"),
                                                toInt(info[2], "dim"), toDouble(info[3], "eps")));
}

void registerNN(Napi::Env env, Napi::Object& exports) {
  IMAGIC_EXPORT(conv2d);
  IMAGIC_EXPORT(groupNorm);
  IMAGIC_EXPORT(layerNorm);
  IMAGIC_EXPORT(embedding);
  IMAGIC_EXPORT(scaledDotProductAttention);
  IMAGIC_EXPORT(interpolate);
  IMAGIC_EXPORT(pad);
  IMAGIC_EXPORT(dropout);
  IMAGIC_EXPORT(pool2d);
  IMAGIC_EXPORT(mseLoss);
  IMAGIC_EXPORT(l1Loss);
  IMAGIC_EXPORT(cosineSimilarity);
}

}  // namespace imagic
