// A reference UNet2DConditionModel forward (Stable Diffusion v1) written directly against ATen, with
// no JavaScript in the loop: the same ops in the same order as src/models/unet/*.ts, so that timing it
// beside the TypeScript model measures what the TypeScript model code costs (bench/unet.ts).
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

namespace imagic {
namespace {

// ---- config: the parsed UNet2DConditionConfig object that src/models/unet/config.ts produces ----
Napi::Value field(const Napi::Object& cfg, const std::string& key) {
  if (!cfg.Has(key)) throw ArgError("config: missing '" + key + "' (pass the parsed config, unet.config)");
  return cfg.Get(key);
}

int64_t cfgInt(const Napi::Object& cfg, const std::string& key) { return toInt(field(cfg, key), key.c_str()); }
double cfgNum(const Napi::Object& cfg, const std::string& key) { return toDouble(field(cfg, key), key.c_str()); }

bool cfgBool(const Napi::Object& cfg, const std::string& key) {
  auto v = field(cfg, key);
  if (!v.IsBoolean()) throw ArgError("config: '" + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// A string, or "" for null.
std::string cfgStr(const Napi::Object& cfg, const std::string& key) {
  auto v = field(cfg, key);
  if (v.IsNull()) return "";
  if (!v.IsString()) throw ArgError("config: '" + key + "' must be a string or null");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<std::string> cfgStrs(const Napi::Object& cfg, const std::string& key) {
  auto v = field(cfg, key);
  if (!v.IsArray()) throw ArgError("config: '" + key + "' must be a list of strings");
  auto arr = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    if (!arr.Get(i).IsString()) throw ArgError("config: '" + key + "' must be a list of strings");
    out.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  }
  return out;
}

// One integer per block: a number repeated, or a list of exactly n (as perBlock() in config.ts).
std::vector<int64_t> cfgPerBlock(const Napi::Object& cfg, const std::string& key, size_t n) {
  auto v = field(cfg, key);
  if (v.IsArray()) {
    auto list = toIntList(v);
    if (list.size() != n) {
      throw ArgError("config: '" + key + "' has " + std::to_string(list.size()) + " entries for " + std::to_string(n) + " blocks");
    }
    return list;
  }
  return std::vector<int64_t>(n, toInt(v, key.c_str()));
}

enum class Act { None, Silu, Gelu, Relu };

Act toAct(const std::string& name, const std::string& key) {
  if (name.empty()) return Act::None;
  if (name == "silu" || name == "swish") return Act::Silu;
  if (name == "gelu") return Act::Gelu;
  if (name == "relu") return Act::Relu;
  throw ArgError("config: " + key + " '" + name + "' is not supported (silu, swish, gelu, relu)");
}

at::Tensor act(Act a, const at::Tensor& x) {
  switch (a) {
    case Act::Silu: return at::silu(x);
    case Act::Gelu: return at::gelu(x, "none");
    case Act::Relu: return at::relu(x);
    default: return x;
  }
}

// A JavaScript number as the engine passes it (toScalar): integral values as int64, others as double.
at::Scalar jsNumber(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.007199254740992e15) return at::Scalar(int64_t(d));
  return at::Scalar(d);
}

struct Config {
  std::vector<std::string> downTypes, upTypes;
  std::string midType;  // "" when there is no mid block
  std::vector<int64_t> boc, layers, heads, tLayers, crossDims;
  int64_t groups = 32, downsamplePadding = 1, kIn = 3, kOut = 3;
  double eps = 1e-5, freqShift = 0, midScale = 1;
  bool flipSinToCos = true, centerInput = false;
  Act act = Act::Silu, timeEmbedAct = Act::None, timestepPostAct = Act::None;
};

Config parseConfig(const Napi::Value& v) {
  if (!v.IsObject() || v.IsArray()) throw ArgError("config must be the parsed UNet config object");
  auto o = v.As<Napi::Object>();
  Config c;
  c.downTypes = cfgStrs(o, "down_block_types");
  c.upTypes = cfgStrs(o, "up_block_types");
  c.midType = cfgStr(o, "mid_block_type");
  size_t n = c.downTypes.size();
  if (n == 0 || c.upTypes.size() != n) throw ArgError("config: down_block_types and up_block_types must be non-empty and of one length");
  for (auto& t : c.downTypes) {
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D") {
      throw ArgError("config: down block type '" + t + "' is not supported (CrossAttnDownBlock2D, DownBlock2D)");
    }
  }
  for (auto& t : c.upTypes) {
    if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D") {
      throw ArgError("config: up block type '" + t + "' is not supported (CrossAttnUpBlock2D, UpBlock2D)");
    }
  }
  if (!c.midType.empty() && c.midType != "UNetMidBlock2DCrossAttn") {
    throw ArgError("config: mid_block_type '" + c.midType + "' is not supported (UNetMidBlock2DCrossAttn or null)");
  }
  c.boc = toIntList(field(o, "block_out_channels"));
  if (c.boc.size() != n) throw ArgError("config: block_out_channels must have one entry per down block");
  c.layers = cfgPerBlock(o, "layers_per_block", n);
  c.heads = cfgPerBlock(o, "attention_head_dim", n);  // the head COUNT in SD v1 configs
  c.tLayers = cfgPerBlock(o, "transformer_layers_per_block", n);
  c.crossDims = cfgPerBlock(o, "cross_attention_dim", n);
  c.groups = cfgInt(o, "norm_num_groups");
  c.eps = cfgNum(o, "norm_eps");
  c.downsamplePadding = cfgInt(o, "downsample_padding");
  c.kIn = cfgInt(o, "conv_in_kernel");
  c.kOut = cfgInt(o, "conv_out_kernel");
  c.freqShift = cfgNum(o, "freq_shift");
  c.midScale = cfgNum(o, "mid_block_scale_factor");
  c.flipSinToCos = cfgBool(o, "flip_sin_to_cos");
  c.centerInput = cfgBool(o, "center_input_sample");
  c.act = toAct(cfgStr(o, "act_fn"), "act_fn");
  if (c.act == Act::None) throw ArgError("config: act_fn must be set");
  c.timeEmbedAct = toAct(cfgStr(o, "time_embedding_act_fn"), "time_embedding_act_fn");
  c.timestepPostAct = toAct(cfgStr(o, "timestep_post_act"), "timestep_post_act");
  // What the SD v1 UNet never uses: refuse it rather than compute another model.
  if (cfgBool(o, "use_linear_projection")) throw ArgError("config: use_linear_projection=true (SD 2) is not supported");
  if (cfgStr(o, "resnet_time_scale_shift") != "default") throw ArgError("config: only resnet_time_scale_shift 'default' is supported");
  auto oca = field(o, "only_cross_attention");
  bool anyOnlyCross = oca.IsBoolean() ? oca.As<Napi::Boolean>().Value() : false;
  if (oca.IsArray()) {
    auto arr = oca.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) anyOnlyCross = anyOnlyCross || arr.Get(i).ToBoolean().Value();
  }
  if (anyOnlyCross) throw ArgError("config: only_cross_attention is not supported");
  if (cfgBool(o, "upcast_attention")) throw ArgError("config: upcast_attention is not supported");
  if (!field(o, "time_embedding_dim").IsNull()) throw ArgError("config: time_embedding_dim must be null (4 * block_out_channels[0])");
  return c;
}

// ---- weights: checkpoint key -> tensor, with every key that the forward reads recorded ----
class Weights {
 public:
  explicit Weights(const Napi::Value& v) {
    if (!v.IsObject() || v.IsArray()) throw ArgError("weights must be an object { key: NativeTensor }");
    auto o = v.As<Napi::Object>();
    auto keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      auto key = keys.Get(i).As<Napi::String>().Utf8Value();
      map_.emplace(key, toTensor(o.Get(key), key.c_str()));
    }
  }
  const at::Tensor& operator()(const std::string& key) {
    auto it = map_.find(key);
    if (it == map_.end()) throw ArgError("weights: missing '" + key + "'");
    used_.insert(key);
    return it->second;
  }
  // Keys the forward never read: a weight map for another model.
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (auto& kv : map_) if (!used_.count(kv.first)) out.push_back(kv.first);
    return out;
  }

 private:
  std::map<std::string, at::Tensor> map_;
  std::set<std::string> used_;
};

// ---- the model ----
class UNetReference {
 public:
  UNetReference(Weights& w, Config c) : w_(w), c_(std::move(c)) {}

  // sample [B, in, h, w], timestep [1] or [B] float32, ehs [B or 1, seq, D] -> [B, out, h, w]
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoderHiddenStates) {
    const int64_t n = int64_t(c_.downTypes.size());
    const int64_t b = sample.size(0);
    const int64_t factor = int64_t(1) << (n - 1);
    const bool forwardUpsampleSize = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;
    at::Tensor ehs = encoderHiddenStates;
    if (ehs.defined() && ehs.size(0) != b) ehs = ehs.expand({b, -1, -1});  // [B, 77, D]

    at::Tensor emb = timeEmbedding(timestep, b, sample.scalar_type());  // [B, 4*boc0]
    at::Tensor h = c_.centerInput ? at::sub(at::mul(sample, jsNumber(2)), jsNumber(1)) : sample;
    h = conv("conv_in", h, 1, (c_.kIn - 1) / 2);  // [B, boc0, h, w]

    std::vector<at::Tensor> resSamples{h};
    for (int64_t i = 0; i < n; i++) {
      const std::string p = "down_blocks." + std::to_string(i);
      const bool attn = c_.downTypes[i] == "CrossAttnDownBlock2D";
      for (int64_t j = 0; j < c_.layers[i]; j++) {
        h = resnet(p + ".resnets." + std::to_string(j), h, emb, 1);
        if (attn) h = transformer(p + ".attentions." + std::to_string(j), h, ehs, c_.heads[i], c_.tLayers[i]);
        resSamples.push_back(h);
      }
      if (i < n - 1) {
        h = downsample(p + ".downsamplers.0", h);
        resSamples.push_back(h);
      }
    }

    if (!c_.midType.empty()) {
      h = resnet("mid_block.resnets.0", h, emb, c_.midScale);
      h = transformer("mid_block.attentions.0", h, ehs, c_.heads[n - 1], c_.tLayers[n - 1]);
      h = resnet("mid_block.resnets.1", h, emb, c_.midScale);
    }

    for (int64_t i = 0; i < n; i++) {
      const int64_t r = n - 1 - i;  // up block i mirrors down block r
      const std::string p = "up_blocks." + std::to_string(i);
      const bool attn = c_.upTypes[i] == "CrossAttnUpBlock2D";
      const int64_t k = c_.layers[r] + 1;
      if (int64_t(resSamples.size()) < k) throw ArgError(p + ": ran out of skip connections");
      std::vector<at::Tensor> skips(resSamples.end() - k, resSamples.end());
      resSamples.resize(resSamples.size() - k);
      const bool isFinal = i == n - 1;
      std::optional<std::vector<int64_t>> upsampleSize;
      if (!isFinal && forwardUpsampleSize && !resSamples.empty()) {
        upsampleSize = std::vector<int64_t>{resSamples.back().size(2), resSamples.back().size(3)};
      }
      for (int64_t j = 0; j < k; j++) {
        at::Tensor skip = skips.back();
        skips.pop_back();
        h = resnet(p + ".resnets." + std::to_string(j), at::cat({h, skip}, 1), emb, 1);  // [B, C + Cskip, H, W] in
        if (attn) h = transformer(p + ".attentions." + std::to_string(j), h, ehs, c_.heads[r], c_.tLayers[r]);
      }
      if (!isFinal) h = upsample(p + ".upsamplers.0", h, upsampleSize);
    }

    h = at::group_norm(h, c_.groups, w_("conv_norm_out.weight"), w_("conv_norm_out.bias"), c_.eps);
    return conv("conv_out", act(c_.act, h), 1, (c_.kOut - 1) / 2);  // [B, out, h, w]
  }

 private:
  Weights& w_;
  Config c_;

  at::Tensor linear(const std::string& p, const at::Tensor& x, bool bias = true) {
    return at::linear(x, w_(p + ".weight"), bias ? std::optional<at::Tensor>(w_(p + ".bias")) : std::nullopt);
  }

  at::Tensor conv(const std::string& p, const at::Tensor& x, int64_t stride, int64_t padding) {
    const std::vector<int64_t> s{stride, stride}, pad{padding, padding}, dil{1, 1};
    return at::conv2d(x, w_(p + ".weight"), w_(p + ".bias"), s, pad, dil, 1);
  }

  // timesteps [1] or [B] -> sinusoidal [B, boc0] (cos first for SD) -> MLP -> [B, 4*boc0]
  at::Tensor timeEmbedding(const at::Tensor& timestep, int64_t batch, at::ScalarType dtype) {
    at::Tensor t = timestep.size(0) == batch ? timestep : timestep.expand({batch});
    const int64_t dim = c_.boc[0], half = dim / 2;
    auto exponent = at::arange(jsNumber(0), jsNumber(double(half)), jsNumber(1), t.options().dtype(at::kFloat));
    exponent = at::div(at::mul(exponent, jsNumber(-std::log(10000.0))), jsNumber(double(half) - c_.freqShift));
    auto freqs = at::exp(exponent);  // [half]
    auto args = at::mul(t.to(t.options().dtype(at::kFloat), false, false).unsqueeze(1), freqs.unsqueeze(0));  // [B, half]
    auto emb = c_.flipSinToCos ? at::cat({at::cos(args), at::sin(args)}, -1) : at::cat({at::sin(args), at::cos(args)}, -1);
    if (dim % 2 == 1) emb = at::pad(emb, {0, 1}, "constant", 0.0);
    emb = emb.to(emb.options().dtype(dtype), false, false);
    emb = linear("time_embedding.linear_2", act(c_.act, linear("time_embedding.linear_1", emb)));
    emb = act(c_.timestepPostAct, emb);
    return act(c_.timeEmbedAct, emb);
  }

  // x [B, Cin, H, W], temb [B, T] -> [B, Cout, H, W]
  at::Tensor resnet(const std::string& p, const at::Tensor& x, const at::Tensor& temb, double outScale) {
    at::Tensor h = at::group_norm(x, c_.groups, w_(p + ".norm1.weight"), w_(p + ".norm1.bias"), c_.eps);
    h = conv(p + ".conv1", act(c_.act, h), 1, 1);
    at::Tensor t = linear(p + ".time_emb_proj", act(c_.act, temb)).unsqueeze(-1).unsqueeze(-1);  // [B, Cout, 1, 1]
    h = at::add(h, t);
    h = at::group_norm(h, c_.groups, w_(p + ".norm2.weight"), w_(p + ".norm2.bias"), c_.eps);
    h = conv(p + ".conv2", act(c_.act, h), 1, 1);
    at::Tensor shortcut = x.size(1) == h.size(1) ? x : conv(p + ".conv_shortcut", x, 1, 0);
    at::Tensor out = at::add(shortcut, h);
    return outScale == 1 ? out : at::div(out, jsNumber(outScale));
  }

  at::Tensor downsample(const std::string& p, const at::Tensor& x) {
    // padding 0: pad right and bottom by one, as diffusers
    if (c_.downsamplePadding == 0) return conv(p + ".conv", at::pad(x, {0, 1, 0, 1}, "constant", 0.0), 2, 0);
    return conv(p + ".conv", x, 2, c_.downsamplePadding);
  }

  at::Tensor upsample(const std::string& p, const at::Tensor& x, const std::optional<std::vector<int64_t>>& size) {
    const bool bf16 = x.scalar_type() == at::kBFloat16;
    at::Tensor src = bf16 ? x.to(x.options().dtype(at::kFloat), false, false) : x;
    std::vector<double> scale{2.0, 2.0};
    at::Tensor h = size ? at::upsample_nearest2d(src, at::OptionalIntArrayRef(*size), std::nullopt)
                        : at::upsample_nearest2d(src, std::nullopt, std::optional<at::ArrayRef<double>>(scale));
    if (bf16) h = h.to(h.options().dtype(at::kBFloat16), false, false);
    return conv(p + ".conv", h, 1, 1);
  }

  // x [B, N, inner], context [B, M, D] (undefined: self-attention) -> [B, N, inner]
  at::Tensor attention(const std::string& p, const at::Tensor& x, const at::Tensor& context, int64_t heads) {
    const at::Tensor& src = context.defined() ? context : x;
    const int64_t b = x.size(0);
    at::Tensor q = linear(p + ".to_q", x, false);
    const int64_t inner = q.size(-1), dimHead = inner / heads;
    auto split = [&](const at::Tensor& t) { return t.view({b, -1, heads, dimHead}).transpose(1, 2); };  // [B, heads, N, d]
    q = split(q);
    at::Tensor k = split(linear(p + ".to_k", src, false));
    at::Tensor v = split(linear(p + ".to_v", src, false));
    at::Tensor h = at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, false, std::nullopt);
    h = h.transpose(1, 2).reshape({b, -1, inner});  // [B, N, inner]
    return linear(p + ".to_out.0", h);
  }

  // x [B, N, dim], context [B, M, D] -> [B, N, dim]
  at::Tensor transformerBlock(const std::string& p, const at::Tensor& x, const at::Tensor& context, int64_t heads) {
    const int64_t dim = x.size(-1);
    auto norm = [&](const char* name, const at::Tensor& t) {
      return at::layer_norm(t, {dim}, w_(p + "." + name + ".weight"), w_(p + "." + name + ".bias"), 1e-5);
    };
    at::Tensor h = at::add(x, attention(p + ".attn1", norm("norm1", x), at::Tensor(), heads));
    if (context.defined()) h = at::add(h, attention(p + ".attn2", norm("norm2", h), context, heads));
    // GEGLU (proj -> value * gelu(gate)), dropout, Linear
    auto parts = at::chunk(linear(p + ".ff.net.0.proj", norm("norm3", h)), 2, -1);
    at::Tensor ff = linear(p + ".ff.net.2", at::mul(parts[0], at::gelu(parts[1], "none")));
    return at::add(h, ff);
  }

  // x [B, C, H, W], context [B, M, D] -> [B, C, H, W]
  at::Tensor transformer(const std::string& p, const at::Tensor& x, const at::Tensor& context, int64_t heads, int64_t layers) {
    const int64_t b = x.size(0), hgt = x.size(2), wid = x.size(3);
    at::Tensor h = at::group_norm(x, c_.groups, w_(p + ".norm.weight"), w_(p + ".norm.bias"), 1e-6);
    h = conv(p + ".proj_in", h, 1, 0).permute({0, 2, 3, 1}).reshape({b, hgt * wid, -1});  // [B, HW, inner]
    for (int64_t i = 0; i < layers; i++) h = transformerBlock(p + ".transformer_blocks." + std::to_string(i), h, context, heads);
    h = h.reshape({b, hgt, wid, -1}).permute({0, 3, 1, 2}).contiguous();  // [B, inner, H, W]
    return at::add(conv(p + ".proj_out", h, 1, 0), x);
  }
};

// A timestep argument as float32 [1] or [B]: a number, or a tensor of shape [], [1] or [B].
at::Tensor toTimesteps(const Napi::Value& v, const at::Tensor& sample) {
  if (v.IsNumber()) {
    double t = toDouble(v, "timestep");
    if (!std::isfinite(t)) throw ArgError("timestep must be finite");
    return at::full(std::vector<int64_t>{1}, float(t), sample.options().dtype(at::kFloat));
  }
  at::Tensor t = toTensor(v, "timestep");
  if (t.dim() > 1) throw ArgError("timestep must be a number or a tensor of shape [], [1] or [B]");
  if (t.dim() == 0) t = t.reshape({1});
  t = t.to(sample.options().dtype(at::kFloat), false, false);
  if (t.size(0) != 1 && t.size(0) != sample.size(0)) throw ArgError("timestep: give one, or one per sample");
  return t;
}

}  // namespace

// unetReferenceBench(weights {key: tensor}, config, sample [B, in, h, w], timestep (number or tensor),
//                    encoderHiddenStates [B or 1, seq, D] | null, iters, warmup)
//   -> { msPerIter (median), minMs, maxMs, samplesMs, threads, out (the last run's output) }
// Runs the forward warmup + iters times under NoGradGuard; CUDA work is synchronized before each
// clock reading.
IMAGIC_OP(unetReferenceBench) {
  auto env = info.Env();
  Weights weights(info[0]);
  Config cfg = parseConfig(info[1]);
  const at::Tensor sample = toTensor(info[2], "sample");
  if (sample.dim() != 4) throw ArgError("sample must be [B, C, H, W], got " + c10::str(sample.sizes()));
  const at::Tensor timestep = toTimesteps(info[3], sample);
  at::Tensor ehs;
  if (!info[4].IsNull() && !info[4].IsUndefined()) ehs = toTensor(info[4], "encoderHiddenStates");
  const bool needsContext = std::count(cfg.downTypes.begin(), cfg.downTypes.end(), "CrossAttnDownBlock2D") > 0 ||
                            std::count(cfg.upTypes.begin(), cfg.upTypes.end(), "CrossAttnUpBlock2D") > 0 ||
                            !cfg.midType.empty();
  if (needsContext && !ehs.defined()) throw ArgError("encoderHiddenStates are required (the model has cross-attention)");
  if (needsContext && (ehs.dim() != 3 || ehs.size(2) != cfg.crossDims.back())) {
    throw ArgError("encoderHiddenStates must be [B, seq, " + std::to_string(cfg.crossDims.back()) + "], got " +
                   c10::str(ehs.sizes()));
  }
  const int64_t iters = toInt(info[5], "iters"), warmup = toInt(info[6], "warmup");
  if (iters < 1 || warmup < 0) throw ArgError("iters must be at least 1 and warmup at least 0");

  at::NoGradGuard noGrad;
  UNetReference net(weights, std::move(cfg));
  const bool cuda = sample.is_cuda();
  auto sync = [&] {
    if (cuda) at::detail::getCUDAHooks().deviceSynchronize(sample.device().index());
  };
  at::Tensor out;
  std::vector<double> ms;
  for (int64_t i = 0; i < warmup + iters; i++) {
    out = at::Tensor();  // as the TypeScript loop, which frees each output before the next run
    auto t0 = std::chrono::steady_clock::now();
    out = net.forward(sample, timestep, ehs);
    sync();
    auto t1 = std::chrono::steady_clock::now();
    if (i == 0) {
      auto unused = weights.unused();
      if (!unused.empty()) {
        std::string list;
        for (size_t j = 0; j < unused.size() && j < 10; j++) list += (j ? ", " : "") + unused[j];
        throw ArgError("weights: " + std::to_string(unused.size()) + " key(s) the forward never read: " + list +
                       (unused.size() > 10 ? ", ..." : ""));
      }
    }
    if (i >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  auto sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t mid = sorted.size() / 2;
  const double median = sorted.size() % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;

  auto result = Napi::Object::New(env);
  result.Set("msPerIter", Napi::Number::New(env, median));
  result.Set("minMs", Napi::Number::New(env, sorted.front()));
  result.Set("maxMs", Napi::Number::New(env, sorted.back()));
  auto samples = Napi::Array::New(env, ms.size());
  for (size_t i = 0; i < ms.size(); i++) samples.Set(uint32_t(i), Napi::Number::New(env, ms[i]));
  result.Set("samplesMs", samples);
  result.Set("threads", Napi::Number::New(env, at::get_num_threads()));
  result.Set("out", wrap(env, out));
  return result;
}

void registerUNetReference(Napi::Env env, Napi::Object& exports) { IMAGIC_EXPORT(unetReferenceBench); }

}  // namespace imagic
