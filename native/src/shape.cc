// Shape, layout, indexing, joining and conversion ops. Views share storage with their input, as in
// PyTorch; disposing a view never frees its base.
#include "common.h"

namespace imagic {

IMAGIC_OP(reshape) { return wrap(info.Env(), toTensor(info[0]).reshape(toIntList(info[1]))); }
IMAGIC_OP(view) { return wrap(info.Env(), toTensor(info[0]).view(toIntList(info[1]))); }
IMAGIC_OP(permute) { return wrap(info.Env(), toTensor(info[0]).permute(toIntList(info[1]))); }
IMAGIC_OP(transpose) {
  return wrap(info.Env(), toTensor(info[0]).transpose(toInt(info[1], "dim0"), toInt(info[2], "dim1")));
}
IMAGIC_OP(flatten) {
  return wrap(info.Env(), toTensor(info[0]).flatten(toInt(info[1], "startDim"), toInt(info[2], "endDim")));
}
IMAGIC_OP(expand) { return wrap(info.Env(), toTensor(info[0]).expand(toIntList(info[1]))); }
IMAGIC_OP(repeat) { return wrap(info.Env(), toTensor(info[0]).repeat(toIntList(info[1]))); }
IMAGIC_OP(squeeze) {
  auto& x = toTensor(info[0]);
  if (info[1].IsNull() || info[1].IsUndefined()) return wrap(info.Env(), x.squeeze());
  return wrap(info.Env(), x.squeeze(toIntList(info[1])));
}
IMAGIC_OP(unsqueeze) { return wrap(info.Env(), toTensor(info[0]).unsqueeze(toInt(info[1], "dim"))); }
IMAGIC_OP(contiguous) { return wrap(info.Env(), toTensor(info[0]).contiguous()); }
IMAGIC_OP(clone) { return wrap(info.Env(), toTensor(info[0]).clone()); }
IMAGIC_OP(detach) { return wrap(info.Env(), toTensor(info[0]).detach()); }

// to(x, dtype|null, device|null, copy): a conversion; returns x itself (a new handle) when nothing changes.
IMAGIC_OP(to) {
  auto& x = toTensor(info[0]);
  auto o = x.options();
  if (!info[1].IsNull() && !info[1].IsUndefined()) o = o.dtype(toDtype(info[1]));
  if (!info[2].IsNull() && !info[2].IsUndefined()) o = o.device(toDevice(info[2]));
  bool copy = info.Length() > 3 && toBool(info[3]);
  return wrap(info.Env(), x.to(o, /*non_blocking=*/false, copy));
}

IMAGIC_OP(cat) { return wrap(info.Env(), at::cat(toTensorList(info[0]), toInt(info[1], "dim"))); }
IMAGIC_OP(stack) { return wrap(info.Env(), at::stack(toTensorList(info[0]), toInt(info[1], "dim"))); }
IMAGIC_OP(chunk) {
  return wrapList(info.Env(), at::chunk(toTensor(info[0]), toInt(info[1], "chunks"), toInt(info[2], "dim")));
}
// split(x, sizeOrSizes, dim)
IMAGIC_OP(split) {
  auto& x = toTensor(info[0]);
  auto dim = toInt(info[2], "dim");
  if (info[1].IsNumber()) return wrapList(info.Env(), at::split(x, toInt(info[1], "splitSize"), dim));
  return wrapList(info.Env(), at::split_with_sizes(x, toIntList(info[1]), dim));
}
IMAGIC_OP(narrow) {
  return wrap(info.Env(),
              toTensor(info[0]).narrow(toInt(info[1], "dim"), toInt(info[2], "start"), toInt(info[3], "length")));
}
// slice(x, dim, start, end, step)
IMAGIC_OP(slice) {
  return wrap(info.Env(), toTensor(info[0]).slice(toInt(info[1], "dim"), toInt(info[2], "start"),
                                                  toInt(info[3], "end"), toInt(info[4], "step")));
}
IMAGIC_OP(select) {
  return wrap(info.Env(), toTensor(info[0]).select(toInt(info[1], "dim"), toInt(info[2], "index")));
}
IMAGIC_OP(indexSelect) {
  return wrap(info.Env(), at::index_select(toTensor(info[0]), toInt(info[1], "dim"), toTensor(info[2], "index")));
}
IMAGIC_OP(gather) {
  return wrap(info.Env(), at::gather(toTensor(info[0]), toInt(info[1], "dim"), toTensor(info[2], "index")));
}
IMAGIC_OP(flip) { return wrap(info.Env(), at::flip(toTensor(info[0]), toIntList(info[1]))); }
// triangle(x, diagonal, upper)
IMAGIC_OP(triangle) {
  auto& x = toTensor(info[0]);
  auto d = toInt(info[1], "diagonal");
  return wrap(info.Env(), toBool(info[2]) ? at::triu(x, d) : at::tril(x, d));
}

// assign(x, src): the handle x now refers to src's data (detached; dtype, device and shape may all
// change, the meta device included) and keeps its own requires-grad flag. Every JavaScript
// reference to x stays valid: what Module.to and loading into meta-built models rely on.
IMAGIC_OP(assign) {
  auto* data = info.Env().GetInstanceData<AddonData>();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data->tensorCtor.Value())) {
    throw ArgError("expected a tensor for 'x'");
  }
  auto* w = TensorWrap::Unwrap(info[0].As<Napi::Object>());
  if (!w->live) throw ArgError("'x' is a disposed tensor and cannot be used");
  bool requiresGrad = w->tensor.requires_grad();
  at::Tensor next = toTensor(info[1], "src").detach();
  if (requiresGrad) next.requires_grad_(true);
  w->tensor = std::move(next);
  return info[0];
}

void registerShape(Napi::Env env, Napi::Object& exports) {
  IMAGIC_EXPORT(reshape);
  IMAGIC_EXPORT(view);
  IMAGIC_EXPORT(permute);
  IMAGIC_EXPORT(transpose);
  IMAGIC_EXPORT(flatten);
  IMAGIC_EXPORT(expand);
  IMAGIC_EXPORT(repeat);
  IMAGIC_EXPORT(squeeze);
  IMAGIC_EXPORT(unsqueeze);
  IMAGIC_EXPORT(contiguous);
  IMAGIC_EXPORT(clone);
  IMAGIC_EXPORT(detach);
  IMAGIC_EXPORT(to);
  IMAGIC_EXPORT(cat);
  IMAGIC_EXPORT(stack);
  IMAGIC_EXPORT(chunk);
  IMAGIC_EXPORT(split);
  IMAGIC_EXPORT(narrow);
  IMAGIC_EXPORT(slice);
  IMAGIC_EXPORT(select);
  IMAGIC_EXPORT(indexSelect);
  IMAGIC_EXPORT(gather);
  IMAGIC_EXPORT(flip);
  IMAGIC_EXPORT(triangle);
  IMAGIC_EXPORT(assign);
}

}  // namespace imagic
