// Tensor: a JavaScript handle to a libtorch tensor. Ops run natively; data crosses into JavaScript
// only through toTypedArray(), toArray() and item(). Method names follow PyTorch in camelCase.
import { BINARY, native, REDUCE, UNARY, type NativeTensor } from './native.js';
import { track, type Trackable } from './scope.js';
import type { AnyTypedArray, DType, Device } from './dtype.js';

export type TensorLike = Tensor | number;

/** Wraps a fresh native handle (internal to the engine). */
export function wrap(h: NativeTensor): Tensor {
  return new Tensor(h);
}

function h(x: TensorLike | boolean): NativeTensor | number | boolean {
  return x instanceof Tensor ? x.handle : x;
}

function dimsOf(dim: number | number[] | undefined): number[] | null {
  return dim === undefined ? null : typeof dim === 'number' ? [dim] : dim;
}

export interface ReduceOptions {
  keepdim?: boolean;
  dtype?: DType;
}

export class Tensor implements Trackable {
  readonly handle: NativeTensor;
  kept = false;
  private info?: [number[], string, string];

  constructor(handle: NativeTensor) {
    this.handle = handle;
    track(this);
  }

  private meta(): [number[], string, string] {
    if (this.info === undefined) this.info = this.handle.info();
    return this.info;
  }

  /** Sizes of each dimension, e.g. [2, 4, 64, 64]. */
  get shape(): number[] {
    return this.meta()[0].slice();
  }
  get dtype(): DType {
    return this.meta()[1] as DType;
  }
  /** 'cpu' or 'cuda:N'. */
  get device(): Device {
    return this.meta()[2];
  }
  get ndim(): number {
    return this.meta()[0].length;
  }
  get numel(): number {
    return this.meta()[0].reduce((a, b) => a * b, 1);
  }
  size(dim: number): number {
    const s = this.meta()[0];
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size(${dim}): tensor has ${s.length} dimensions`);
    return s[d]!;
  }

  // ---- memory ----
  /** Frees the native tensor now. Using it afterwards throws. Safe to call twice. */
  dispose(): void {
    this.handle.dispose();
  }
  get isDisposed(): boolean {
    return this.handle.isDisposed();
  }

  // ---- data out ----
  /** A copy of the values as a typed array (float16/bfloat16 are widened to float32). */
  toTypedArray(): AnyTypedArray {
    const d = this.dtype;
    if (d === 'float16' || d === 'bfloat16') {
      const f = native.to(this.handle, 'float32', null, false);
      try {
        return new Float32Array(native.toBuffer(f));
      } finally {
        f.dispose();
      }
    }
    const buf = native.toBuffer(this.handle);
    switch (d) {
      case 'float64': return new Float64Array(buf);
      case 'int64': return new BigInt64Array(buf);
      case 'int32': return new Int32Array(buf);
      case 'int16': return new Int16Array(buf);
      case 'int8': return new Int8Array(buf);
      case 'uint8':
      case 'bool': return new Uint8Array(buf);
      default: return new Float32Array(buf);
    }
  }
  /** The values as a flat array of numbers (booleans as 0/1). */
  toFlatArray(): number[] {
    return Array.from(this.toTypedArray() as ArrayLike<number | bigint>, (v) => Number(v));
  }
  /** The values as nested arrays shaped like the tensor. */
  toArray(): unknown {
    const flat = this.toFlatArray();
    const shape = this.meta()[0];
    if (shape.length === 0) return flat[0];
    const build = (dim: number, offset: number): unknown => {
      const n = shape[dim]!;
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = dim === shape.length - 1 ? flat[offset + i] : build(dim + 1, offset + i * stride);
      return out;
    };
    return build(0, 0);
  }
  /** The value of a one-element tensor. */
  item(): number {
    return Number(native.item(this.handle));
  }

  // ---- conversion ----
  /** Converts dtype and/or device: to('cuda'), to('bfloat16'), to({dtype, device, copy}). */
  to(target: DType | Device | { dtype?: DType; device?: Device; copy?: boolean }): Tensor {
    if (typeof target === 'string') {
      const isDtype = /^(float|bfloat|int|uint|bool)/.test(target);
      return wrap(native.to(this.handle, isDtype ? target : null, isDtype ? null : target, false));
    }
    return wrap(native.to(this.handle, target.dtype ?? null, target.device ?? null, target.copy ?? false));
  }
  float(): Tensor { return this.to('float32'); }
  half(): Tensor { return this.to('float16'); }
  bfloat16(): Tensor { return this.to('bfloat16'); }
  double(): Tensor { return this.to('float64'); }
  long(): Tensor { return this.to('int64'); }
  cpu(): Tensor { return this.to('cpu'); }
  contiguous(): Tensor { return wrap(native.contiguous(this.handle)); }
  clone(): Tensor { return wrap(native.clone(this.handle)); }
  /** A tensor sharing data but cut from the autograd graph. */
  detach(): Tensor { return wrap(native.detach(this.handle)); }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return this.handle.requiresGrad();
  }
  /** Marks a leaf tensor as needing gradients (in place). */
  requiresGrad_(flag = true): this {
    native.setRequiresGrad(this.handle, flag);
    return this;
  }
  /** The accumulated gradient (a new handle on each read), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : wrap(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g === null ? null : g.handle);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  retainGrad(): this {
    native.retainGrad(this.handle);
    return this;
  }
  /** Accumulates d(this)/d(leaf) into each leaf's .grad. A non-scalar output needs `gradient`. */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward(this.handle, gradient?.handle ?? null, opts.retainGraph ?? false, opts.createGraph ?? false);
  }

  // ---- elementwise ----
  private u(code: number): Tensor { return wrap(native.unary(this.handle, code)); }
  private b(other: TensorLike | boolean, code: number): Tensor { return wrap(native.binary(this.handle, h(other), code)); }

  add(other: TensorLike, alpha?: number): Tensor {
    if (alpha !== undefined && alpha !== 1) {
      if (other instanceof Tensor) return wrap(native.addScaled(this.handle, other.handle, alpha));
      return this.b(other * alpha, BINARY.add);
    }
    return this.b(other, BINARY.add);
  }
  sub(other: TensorLike): Tensor { return this.b(other, BINARY.sub); }
  mul(other: TensorLike): Tensor { return this.b(other, BINARY.mul); }
  div(other: TensorLike): Tensor { return this.b(other, BINARY.div); }
  pow(exponent: TensorLike): Tensor { return this.b(exponent, BINARY.pow); }
  maximum(other: TensorLike): Tensor { return this.b(other, BINARY.maximum); }
  minimum(other: TensorLike): Tensor { return this.b(other, BINARY.minimum); }
  remainder(other: TensorLike): Tensor { return this.b(other, BINARY.remainder); }
  floorDivide(other: TensorLike): Tensor { return this.b(other, BINARY.floorDivide); }
  atan2(other: TensorLike): Tensor { return this.b(other, BINARY.atan2); }
  eq(other: TensorLike | boolean): Tensor { return this.b(other, BINARY.eq); }
  ne(other: TensorLike | boolean): Tensor { return this.b(other, BINARY.ne); }
  lt(other: TensorLike): Tensor { return this.b(other, BINARY.lt); }
  le(other: TensorLike): Tensor { return this.b(other, BINARY.le); }
  gt(other: TensorLike): Tensor { return this.b(other, BINARY.gt); }
  ge(other: TensorLike): Tensor { return this.b(other, BINARY.ge); }
  logicalAnd(other: Tensor | boolean): Tensor { return this.b(other, BINARY.logicalAnd); }
  logicalOr(other: Tensor | boolean): Tensor { return this.b(other, BINARY.logicalOr); }
  logicalNot(): Tensor { return this.u(UNARY.logicalNot); }

  neg(): Tensor { return this.u(UNARY.neg); }
  abs(): Tensor { return this.u(UNARY.abs); }
  exp(): Tensor { return this.u(UNARY.exp); }
  log(): Tensor { return this.u(UNARY.log); }
  log1p(): Tensor { return this.u(UNARY.log1p); }
  expm1(): Tensor { return this.u(UNARY.expm1); }
  sqrt(): Tensor { return this.u(UNARY.sqrt); }
  rsqrt(): Tensor { return this.u(UNARY.rsqrt); }
  sin(): Tensor { return this.u(UNARY.sin); }
  cos(): Tensor { return this.u(UNARY.cos); }
  tanh(): Tensor { return this.u(UNARY.tanh); }
  sigmoid(): Tensor { return this.u(UNARY.sigmoid); }
  silu(): Tensor { return this.u(UNARY.silu); }
  relu(): Tensor { return this.u(UNARY.relu); }
  /** GELU, exact (erf) by default or with the tanh approximation. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor { return this.u(approximate === 'tanh' ? UNARY.geluTanh : UNARY.gelu); }
  /** x * sigmoid(1.702 x), CLIP's activation. */
  quickGelu(): Tensor { return this.u(UNARY.quickGelu); }
  square(): Tensor { return this.u(UNARY.square); }
  reciprocal(): Tensor { return this.u(UNARY.reciprocal); }
  erf(): Tensor { return this.u(UNARY.erf); }
  floor(): Tensor { return this.u(UNARY.floor); }
  ceil(): Tensor { return this.u(UNARY.ceil); }
  round(): Tensor { return this.u(UNARY.round); }
  trunc(): Tensor { return this.u(UNARY.trunc); }
  sign(): Tensor { return this.u(UNARY.sign); }
  isfinite(): Tensor { return this.u(UNARY.isfinite); }
  isnan(): Tensor { return this.u(UNARY.isnan); }

  clamp(min?: number | null, max?: number | null): Tensor {
    return wrap(native.clamp(this.handle, min ?? null, max ?? null));
  }
  /** this + weight * (end - this) */
  lerp(end: Tensor, weight: TensorLike): Tensor {
    return wrap(native.lerp(this.handle, end.handle, weight instanceof Tensor ? weight.handle : weight));
  }
  maskedFill(mask: Tensor, value: number | boolean): Tensor {
    return wrap(native.maskedFill(this.handle, mask.handle, value));
  }

  // ---- in place (return this) ----
  add_(other: TensorLike): this { native.binaryInplace(this.handle, h(other), BINARY.add); return this; }
  sub_(other: TensorLike): this { native.binaryInplace(this.handle, h(other), BINARY.sub); return this; }
  mul_(other: TensorLike): this { native.binaryInplace(this.handle, h(other), BINARY.mul); return this; }
  div_(other: TensorLike): this { native.binaryInplace(this.handle, h(other), BINARY.div); return this; }
  /** Copies src's values into this tensor (broadcasting, converting dtype and device). */
  copy_(src: Tensor): this { native.copy_(this.handle, src.handle); return this; }
  fill_(value: number | boolean): this { native.fill_(this.handle, value); return this; }
  /**
   * Makes this handle refer to src's data (sharing it; any dtype, device or shape), keeping its own
   * requiresGrad. Every reference to this Tensor stays valid (Module.to relies on it).
   */
  assign_(src: Tensor): this {
    native.assign(this.handle, src.handle);
    this.info = undefined;
    return this;
  }
  zero_(): this { native.zero_(this.handle); return this; }

  // ---- reductions ----
  private r(code: number, dim: number | number[] | undefined, opts: ReduceOptions): Tensor {
    return wrap(native.reduce(this.handle, code, dimsOf(dim), opts.keepdim ?? false, opts.dtype ?? null));
  }
  sum(dim?: number | number[], opts: ReduceOptions = {}): Tensor { return this.r(REDUCE.sum, dim, opts); }
  mean(dim?: number | number[], opts: ReduceOptions = {}): Tensor { return this.r(REDUCE.mean, dim, opts); }
  amax(dim?: number | number[], opts: { keepdim?: boolean } = {}): Tensor { return this.r(REDUCE.amax, dim, opts); }
  amin(dim?: number | number[], opts: { keepdim?: boolean } = {}): Tensor { return this.r(REDUCE.amin, dim, opts); }
  all(dim?: number | number[], opts: { keepdim?: boolean } = {}): Tensor { return this.r(REDUCE.all, dim, opts); }
  any(dim?: number | number[], opts: { keepdim?: boolean } = {}): Tensor { return this.r(REDUCE.any, dim, opts); }
  /** Variance with Bessel's correction by default (correction 1), as torch.var. */
  var(dim?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(native.variance(this.handle, dimsOf(dim), opts.correction ?? 1, opts.keepdim ?? false, false));
  }
  std(dim?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(native.variance(this.handle, dimsOf(dim), opts.correction ?? 1, opts.keepdim ?? false, true));
  }
  /** Largest value over everything (no dim), or [values, indices] along `dim`. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return this.amax();
    const [v, i] = native.maxDim(this.handle, dim, keepdim, false);
    return [wrap(v), wrap(i)];
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return this.amin();
    const [v, i] = native.maxDim(this.handle, dim, keepdim, true);
    return [wrap(v), wrap(i)];
  }
  argmax(dim?: number, keepdim = false): Tensor { return wrap(native.argmax(this.handle, dim ?? null, keepdim, false)); }
  argmin(dim?: number, keepdim = false): Tensor { return wrap(native.argmax(this.handle, dim ?? null, keepdim, true)); }
  softmax(dim: number, dtype?: DType): Tensor { return wrap(native.softmax(this.handle, dim, false, dtype ?? null)); }
  logSoftmax(dim: number, dtype?: DType): Tensor { return wrap(native.softmax(this.handle, dim, true, dtype ?? null)); }
  cumsum(dim: number): Tensor { return wrap(native.cumsum(this.handle, dim)); }

  // ---- products ----
  matmul(other: Tensor): Tensor { return wrap(native.matmul(this.handle, other.handle)); }
  bmm(other: Tensor): Tensor { return wrap(native.bmm(this.handle, other.handle)); }

  // ---- shape ----
  reshape(...shape: number[] | [number[]]): Tensor { return wrap(native.reshape(this.handle, flatArgs(shape))); }
  view(...shape: number[] | [number[]]): Tensor { return wrap(native.view(this.handle, flatArgs(shape))); }
  permute(...dims: number[] | [number[]]): Tensor { return wrap(native.permute(this.handle, flatArgs(dims))); }
  transpose(dim0: number, dim1: number): Tensor { return wrap(native.transpose(this.handle, dim0, dim1)); }
  flatten(startDim = 0, endDim = -1): Tensor { return wrap(native.flatten(this.handle, startDim, endDim)); }
  expand(...shape: number[] | [number[]]): Tensor { return wrap(native.expand(this.handle, flatArgs(shape))); }
  repeat(...repeats: number[] | [number[]]): Tensor { return wrap(native.repeat(this.handle, flatArgs(repeats))); }
  squeeze(dim?: number | number[]): Tensor { return wrap(native.squeeze(this.handle, dimsOf(dim))); }
  unsqueeze(dim: number): Tensor { return wrap(native.unsqueeze(this.handle, dim)); }
  chunk(chunks: number, dim = 0): Tensor[] { return native.chunk(this.handle, chunks, dim).map(wrap); }
  /** Pieces of `size` along dim (the last may be smaller), or pieces of the given sizes. */
  split(sizes: number | number[], dim = 0): Tensor[] { return native.split(this.handle, sizes, dim).map(wrap); }
  narrow(dim: number, start: number, length: number): Tensor { return wrap(native.narrow(this.handle, dim, start, length)); }
  /** Python's x[start:end:step] along dim; end may exceed the size. */
  slice(dim: number, start = 0, end = Number.MAX_SAFE_INTEGER, step = 1): Tensor {
    return wrap(native.slice(this.handle, dim, start, end, step));
  }
  /** Python's x[..., index, ...] at dim: removes that dimension. */
  select(dim: number, index: number): Tensor { return wrap(native.select(this.handle, dim, index)); }
  indexSelect(dim: number, index: Tensor): Tensor { return wrap(native.indexSelect(this.handle, dim, index.handle)); }
  gather(dim: number, index: Tensor): Tensor { return wrap(native.gather(this.handle, dim, index.handle)); }
  flip(dims: number | number[]): Tensor { return wrap(native.flip(this.handle, dimsOf(dims)!)); }
  triu(diagonal = 0): Tensor { return wrap(native.triangle(this.handle, diagonal, true)); }
  tril(diagonal = 0): Tensor { return wrap(native.triangle(this.handle, diagonal, false)); }

  toString(): string {
    if (this.isDisposed) return 'Tensor(disposed)';
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

function flatArgs(args: number[] | [number[]]): number[] {
  return Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
}
