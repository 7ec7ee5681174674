// Autograd: requires-grad flags, backward, gradients, grad mode.
#include "common.h"

#include <torch/csrc/autograd/autograd.h>
#include <c10/core/GradMode.h>

namespace imagic {

// setRequiresGrad(x, flag): in place on a leaf; returns x.
IMAGIC_OP(setRequiresGrad) {
  toTensor(info[0]).requires_grad_(toBool(info[1]));
  return info[0];
}

// backward(y, grad|null, retainGraph, createGraph)
IMAGIC_OP(backward) {
  auto& y = toTensor(info[0], "output");
  auto g = toOptTensor(info[1]);
  if (!g && y.numel() != 1) {
    throw ArgError("backward() without a gradient needs a scalar output, this one has shape " + c10::str(y.sizes()));
  }
  y.backward(g ? *g : at::Tensor(), toBool(info[2]), toBool(info[3]));
  return info.Env().Undefined();
}

IMAGIC_OP(grad) { return wrapOpt(info.Env(), toTensor(info[0]).grad()); }

// setGrad(x, g|null)
IMAGIC_OP(setGrad) {
  auto& x = toTensor(info[0]);
  auto g = toOptTensor(info[1]);
  x.mutable_grad() = g ? *g : at::Tensor();
  return info.Env().Undefined();
}

IMAGIC_OP(isLeaf) { return Napi::Boolean::New(info.Env(), toTensor(info[0]).is_leaf()); }
IMAGIC_OP(retainGrad) {
  toTensor(info[0]).retain_grad();
  return info.Env().Undefined();
}

// autogradGrad(outputs[], inputs[], gradOutputs[]|null, retainGraph, createGraph, allowUnused):
// torch.autograd.grad; unused inputs give null. Lets callers recompute (gradient checkpointing).
IMAGIC_OP(autogradGrad) {
  auto outputs = toTensorList(info[0]);
  auto inputs = toTensorList(info[1]);
  std::vector<at::Tensor> gradOutputs;
  if (!info[2].IsNull() && !info[2].IsUndefined()) gradOutputs = toTensorList(info[2]);
  std::optional<bool> retain;
  if (!info[3].IsNull() && !info[3].IsUndefined()) retain = toBool(info[3]);
  auto grads = torch::autograd::grad(outputs, inputs, gradOutputs, retain, toBool(info[4]), toBool(info[5]));
  return wrapList(info.Env(), grads);
}

IMAGIC_OP(isGradEnabled) { return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled()); }

// setGradEnabled(flag) -> previous flag (grad mode is thread-local, as in PyTorch)
IMAGIC_OP(setGradEnabled) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(toBool(info[0]));
  return Napi::Boolean::New(info.Env(), prev);
}

void registerAutograd(Napi::Env env, Napi::Object& exports) {
  IMAGIC_EXPORT(setRequiresGrad);
  IMAGIC_EXPORT(backward);
  IMAGIC_EXPORT(grad);
  IMAGIC_EXPORT(setGrad);
  IMAGIC_EXPORT(isLeaf);
  IMAGIC_EXPORT(retainGrad);
  IMAGIC_EXPORT(autogradGrad);
  IMAGIC_EXPORT(isGradEnabled);
  IMAGIC_EXPORT(setGradEnabled);
}

}  // namespace imagic
