// Optimizer updates, one crossing per step for all parameters. The math follows PyTorch's
// torch.optim.Adam / AdamW / SGD (single-tensor path, non-capturable); state tensors are owned by
// the TypeScript optimizer so that they can be saved and loaded.
#include "common.h"

#include <c10/core/GradMode.h>
#include <cmath>

namespace imagic {

// adamStep(params[], expAvgs[], expAvgSqs[], maxExpAvgSqs[]|null, step, lr, beta1, beta2, eps,
//          weightDecay, decoupled, maximize) -> number of parameters updated (those with a grad)
IMAGIC_OP(adamStep) {
  auto params = toTensorList(info[0]);
  auto m = toTensorList(info[1]);
  auto v = toTensorList(info[2]);
  std::vector<at::Tensor> vmax;
  bool amsgrad = !info[3].IsNull() && !info[3].IsUndefined();
  if (amsgrad) vmax = toTensorList(info[3]);
  double step = toDouble(info[4], "step");
  double lr = toDouble(info[5], "lr"), b1 = toDouble(info[6], "beta1"), b2 = toDouble(info[7], "beta2");
  double eps = toDouble(info[8], "eps"), wd = toDouble(info[9], "weightDecay");
  bool decoupled = toBool(info[10]), maximize = toBool(info[11]);
  if (m.size() != params.size() || v.size() != params.size() || (amsgrad && vmax.size() != params.size())) {
    throw ArgError("optimizer state does not match the parameter list");
  }
  c10::NoGradGuard noGrad;
  double bc1 = 1 - std::pow(b1, step);
  double bc2Sqrt = std::sqrt(1 - std::pow(b2, step));
  double stepSize = lr / bc1;
  int updated = 0;
  for (size_t i = 0; i < params.size(); i++) {
    auto& p = params[i];
    at::Tensor g = p.grad();
    if (!g.defined()) continue;
    if (maximize) g = -g;
    if (wd != 0) {
      if (decoupled) p.mul_(1 - lr * wd);
      else g = g.add(p, wd);
    }
    m[i].lerp_(g, 1 - b1);
    v[i].mul_(b2).addcmul_(g, g, 1 - b2);
    at::Tensor denom;
    if (amsgrad) {
      at::maximum_out(vmax[i], vmax[i], v[i]);
      denom = (vmax[i].sqrt() / bc2Sqrt).add_(eps);
    } else {
      denom = (v[i].sqrt() / bc2Sqrt).add_(eps);
    }
    p.addcdiv_(m[i], denom, -stepSize);
    updated++;
  }
  return Napi::Number::New(info.Env(), updated);
}

// sgdStep(params[], buffers[] (tensor|null), lr, momentum, dampening, weightDecay, nesterov, maximize)
// -> array: a new momentum buffer where one was created this step, else null.
IMAGIC_OP(sgdStep) {
  auto params = toTensorList(info[0]);
  auto bufArr = info[1].As<Napi::Array>();
  if (bufArr.Length() != params.size()) throw ArgError("optimizer state does not match the parameter list");
  double lr = toDouble(info[2], "lr"), momentum = toDouble(info[3], "momentum");
  double dampening = toDouble(info[4], "dampening"), wd = toDouble(info[5], "weightDecay");
  bool nesterov = toBool(info[6]), maximize = toBool(info[7]);
  c10::NoGradGuard noGrad;
  std::vector<at::Tensor> created(params.size());
  for (size_t i = 0; i < params.size(); i++) {
    auto& p = params[i];
    at::Tensor d = p.grad();
    if (!d.defined()) continue;
    if (maximize) d = -d;
    if (wd != 0) d = d.add(p, wd);
    if (momentum != 0) {
      auto bufVal = bufArr.Get(uint32_t(i));
      at::Tensor buf;
      if (bufVal.IsNull() || bufVal.IsUndefined()) {
        buf = d.clone().detach();
        created[i] = buf;
      } else {
        buf = toTensor(bufVal, "buffer");
        buf.mul_(momentum).add_(d, 1 - dampening);
      }
      d = nesterov ? d.add(buf, momentum) : buf;
    }
    p.add_(d, -lr);
  }
  return wrapList(info.Env(), created);
}

// clipGradNorm(params[], maxNorm, normType) -> total norm (a 0-dim tensor), grads scaled in place
IMAGIC_OP(clipGradNorm) {
  auto params = toTensorList(info[0]);
  double maxNorm = toDouble(info[1], "maxNorm"), normType = toDouble(info[2], "normType");
  c10::NoGradGuard noGrad;
  std::vector<at::Tensor> norms;
  std::vector<at::Tensor> grads;
  for (auto& p : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    grads.push_back(g);
    norms.push_back(at::linalg_vector_norm(g, normType, {}, false, at::kFloat));
  }
  if (grads.empty()) return wrap(info.Env(), at::zeros({}, at::kFloat));
  auto total = at::linalg_vector_norm(at::stack(norms), normType, {}, false, at::kFloat);
  auto coef = at::clamp_max(maxNorm / (total + 1e-6), 1.0);
  for (auto& g : grads) g.mul_(coef.to(g.device(), g.scalar_type()));
  return wrap(info.Env(), total);
}

// unscaleGrads(params[], invScale) -> true if any gradient holds inf or NaN. Multiplies every
// gradient by invScale in place (loss scaling for float16 training), with one sync at the end.
IMAGIC_OP(unscaleGrads) {
  auto params = toTensorList(info[0]);
  double inv = toDouble(info[1], "invScale");
  c10::NoGradGuard noGrad;
  std::optional<at::Tensor> found;
  for (auto& p : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    g.mul_(inv);
    auto bad = at::logical_not(at::isfinite(g).all()).to(at::kCPU, /*non_blocking=*/false);
    found = found ? at::logical_or(*found, bad) : bad;
  }
  return Napi::Boolean::New(info.Env(), found && found->item<bool>());
}

void registerOptim(Napi::Env env, Napi::Object& exports) {
  IMAGIC_EXPORT(adamStep);
  IMAGIC_EXPORT(sgdStep);
  IMAGIC_EXPORT(clipGradNorm);
  IMAGIC_EXPORT(unscaleGrads);
}

}  // namespace imagic
