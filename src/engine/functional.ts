// Functional ops over several tensors: joining, selection, products and the neural-network ops of
// torch.nn.functional (argument names and defaults as PyTorch's).
import { BINARY, native } from './native.js';
import { Tensor, wrap, type TensorLike } from './tensor.js';

const pair = (v: number | [number, number]): number[] => (typeof v === 'number' ? [v, v] : v);
const hOpt = (t: Tensor | null | undefined) => t?.handle ?? null;
const hv = (x: TensorLike | boolean) => (x instanceof Tensor ? x.handle : x);

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return wrap(native.cat(tensors.map((t) => t.handle), dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return wrap(native.stack(tensors.map((t) => t.handle), dim));
}
/** Elementwise cond ? a : b (a and b may be numbers). */
export function where(condition: Tensor, a: TensorLike | boolean, b: TensorLike | boolean): Tensor {
  return wrap(native.where(condition.handle, hv(a), hv(b)));
}
export function lerp(start: Tensor, end: Tensor, weight: TensorLike): Tensor {
  return start.lerp(end, weight);
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
export function bmm(a: Tensor, b: Tensor): Tensor {
  return a.bmm(b);
}
/** beta * input + alpha * (batch1 @ batch2) */
export function baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, beta = 1, alpha = 1): Tensor {
  return wrap(native.baddbmm(input.handle, batch1.handle, batch2.handle, beta, alpha));
}
/** x @ weight^T + bias; weight is [out, in]. */
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return wrap(native.linear(input.handle, weight.handle, hOpt(bias)));
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}
/** input [N, C, H, W], weight [O, C/groups, kh, kw] -> [N, O, H', W'] */
export function conv2d(input: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  return wrap(native.conv2d(input.handle, weight.handle, hOpt(bias), pair(opts.stride ?? 1), pair(opts.padding ?? 0),
    pair(opts.dilation ?? 1), opts.groups ?? 1));
}
/** input [N, C, *]: normalizes over each group of C/numGroups channels. */
export function groupNorm(input: Tensor, numGroups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return wrap(native.groupNorm(input.handle, numGroups, hOpt(weight), hOpt(bias), eps));
}
/** Normalizes over the trailing `normalizedShape` dimensions. */
export function layerNorm(input: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return wrap(native.layerNorm(input.handle, normalizedShape, hOpt(weight), hOpt(bias), eps));
}
/** weight [V, D], ids (int64) [*] -> [*, D] */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  return wrap(native.embedding(weight.handle, ids.handle));
}

export interface AttentionOptions {
  /** Boolean (true = attend) or additive float mask, broadcastable to [..., L, S]. */
  attnMask?: Tensor | null;
  dropoutP?: number;
  isCausal?: boolean;
  /** Defaults to 1/sqrt(E). */
  scale?: number;
}
/**
 * softmax(q k^T * scale + mask) v with q [..., L, E], k [..., S, E], v [..., S, Ev]. libtorch picks
 * the fastest kernel (flash / memory-efficient on CUDA).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  return wrap(native.scaledDotProductAttention(q.handle, k.handle, v.handle, hOpt(opts.attnMask), opts.dropoutP ?? 0,
    opts.isCausal ?? false, opts.scale ?? null));
}

export type InterpolateMode = 'nearest' | 'nearest-exact' | 'bilinear' | 'bicubic' | 'area';
export interface InterpolateOptions {
  size?: number | [number, number];
  scaleFactor?: number | [number, number];
  mode?: InterpolateMode;
  alignCorners?: boolean;
  /** Anti-aliasing when downsampling (bilinear and bicubic only), as PIL does. */
  antialias?: boolean;
}
/** Resamples [N, C, H, W] as torch.nn.functional.interpolate (recompute_scale_factor=None). */
export function interpolate(input: Tensor, opts: InterpolateOptions): Tensor {
  const size = opts.size === undefined ? null : pair(opts.size);
  const scale = opts.scaleFactor === undefined ? null : opts.scaleFactor;
  return wrap(native.interpolate(input.handle, opts.mode ?? 'nearest', size, scale, opts.alignCorners ?? false, opts.antialias ?? false));
}
/** Pads the last dimensions: pads = [left, right, top, bottom, ...] as torch.nn.functional.pad. */
export function pad(input: Tensor, pads: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value = 0): Tensor {
  return wrap(native.pad(input.handle, pads, mode, value));
}
export function dropout(input: Tensor, p = 0.5, training = true): Tensor {
  return wrap(native.dropout(input.handle, p, training));
}
export function maxPool2d(input: Tensor, kernelSize: number | [number, number], stride?: number | [number, number], padding: number | [number, number] = 0): Tensor {
  return wrap(native.pool2d(input.handle, pair(kernelSize), pair(stride ?? kernelSize), pair(padding), true));
}
export function avgPool2d(input: Tensor, kernelSize: number | [number, number], stride?: number | [number, number], padding: number | [number, number] = 0): Tensor {
  return wrap(native.pool2d(input.handle, pair(kernelSize), pair(stride ?? kernelSize), pair(padding), false));
}

export type Reduction = 'mean' | 'sum' | 'none';
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return wrap(native.mseLoss(input.handle, target.handle, reduction));
}
export function l1Loss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return wrap(native.l1Loss(input.handle, target.handle, reduction));
}
export function cosineSimilarity(x1: Tensor, x2: Tensor, dim = 1, eps = 1e-8): Tensor {
  return wrap(native.cosineSimilarity(x1.handle, x2.handle, dim, eps));
}
export function softmax(input: Tensor, dim: number): Tensor {
  return input.softmax(dim);
}
export function silu(input: Tensor): Tensor {
  return input.silu();
}
export function gelu(input: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return input.gelu(approximate);
}

// Arithmetic with a number on either side (number - tensor, 1 / tensor), as Python's operators.
const bin = (code: number) => (a: TensorLike, b: TensorLike): Tensor => {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) throw new TypeError('at least one operand must be a tensor');
  return wrap(native.binary(hv(a), hv(b), code));
};
export const add = bin(BINARY.add);
export const sub = bin(BINARY.sub);
export const mul = bin(BINARY.mul);
export const div = bin(BINARY.div);
export const pow = bin(BINARY.pow);
