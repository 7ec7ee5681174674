// Creating tensors: from JavaScript data, constants, ranges and seeded random draws.
import { native } from './native.js';
import { Tensor, wrap } from './tensor.js';
import type { Generator } from './random.js';
import type { AnyTypedArray, DType, Device } from './dtype.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

export interface RandomOptions extends TensorOptions {
  /** Draws from this generator; noise is drawn on its device, then moved (same seed, same noise). */
  generator?: Generator;
}

/** Nested arrays of numbers or booleans, as tensor() takes them. */
export type Nested = number | boolean | Nested[];

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function bufferDtype(data: AnyTypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  throw new TypeError('unsupported typed array');
}

/** A tensor from a typed array (copied once) with the given shape; dtype converts if asked. */
export function fromTypedArray(data: AnyTypedArray, shape: number[], opts: TensorOptions = {}): Tensor {
  const own = bufferDtype(data);
  let handle = native.fromBuffer(data, shape, own);
  const dtype = opts.dtype ?? own;
  if (dtype !== own || (opts.device !== undefined && opts.device !== 'cpu')) {
    const converted = native.to(handle, dtype, opts.device ?? null, false);
    handle.dispose();
    handle = converted;
  }
  return finish(wrap(handle), opts);
}

/** A tensor of `dtype` and `shape` from its raw little-endian bytes (copied once), e.g. from a file. */
export function fromBytes(bytes: Uint8Array, shape: number[], dtype: DType, opts: Omit<TensorOptions, 'dtype'> = {}): Tensor {
  let handle = native.fromBuffer(bytes, shape, dtype);
  if (opts.device !== undefined && opts.device !== 'cpu') {
    const moved = native.to(handle, null, opts.device, false);
    handle.dispose();
    handle = moved;
  }
  return finish(wrap(handle), opts);
}

/** The raw bytes of a tensor (row-major, on the CPU): the inverse of fromBytes. */
export function toBytes(t: Tensor): Uint8Array {
  return new Uint8Array(native.toBuffer(t.handle));
}

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  return shape;
}

function flatten(data: Nested, shape: number[], dim: number, out: number[]): void {
  if (dim === shape.length) {
    if (Array.isArray(data)) throw new Error('tensor(): ragged nested array');
    out.push(Number(data));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new Error(`tensor(): ragged nested array (expected ${shape[dim]} items at depth ${dim})`);
  }
  for (const d of data) flatten(d, shape, dim + 1, out);
}

/**
 * A tensor from a number, a nested array or a typed array. Default dtype: float32 (bool for
 * booleans).   tensor([[1, 2], [3, 4]])   tensor([0, 5], { dtype: 'int64' })
 */
export function tensor(data: Nested | AnyTypedArray, opts: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) return fromTypedArray(data as AnyTypedArray, [(data as AnyTypedArray).length], opts);
  const shape = inferShape(data);
  const flat: number[] = [];
  flatten(data, shape, 0, flat);
  let first: Nested = data;
  while (Array.isArray(first)) first = first[0] as Nested;
  const dtype = opts.dtype ?? (typeof first === 'boolean' ? 'bool' : 'float32');
  const t = fromTypedArray(Float64Array.from(flat), shape, { ...opts, dtype });
  return t;
}

const dev = (o: TensorOptions) => o.device ?? 'cpu';
const dt = (o: TensorOptions, d: DType = 'float32') => o.dtype ?? d;

export function full(shape: number[], value: number | boolean, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.full(shape, value, dt(opts, typeof value === 'boolean' ? 'bool' : 'float32'), dev(opts))), opts);
}
export function zeros(shape: number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}
export function ones(shape: number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}
/** Uninitialized memory: only for outputs that are written before being read. */
export function empty(shape: number[], opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.empty(shape, dt(opts), dev(opts))), opts);
}
/** [start, end) with `step`; arange(n) = 0..n-1. Integer arguments give int64 unless dtype says. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const allInt = [start, end, step].every(Number.isInteger);
  return finish(wrap(native.arange(start, end, step, dt(opts, allInt ? 'int64' : 'float32'), dev(opts))), opts);
}
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.linspace(start, end, steps, dt(opts), dev(opts))), opts);
}
/** Standard normal noise. */
export function randn(shape: number[], opts: RandomOptions = {}): Tensor {
  return finish(wrap(native.randn(shape, dt(opts), dev(opts), opts.generator?.native ?? null)), opts);
}
/** Uniform on [0, 1). */
export function rand(shape: number[], opts: RandomOptions = {}): Tensor {
  return finish(wrap(native.rand(shape, dt(opts), dev(opts), opts.generator?.native ?? null)), opts);
}
/** Uniform integers on [low, high). */
export function randint(low: number, high: number, shape: number[], opts: RandomOptions = {}): Tensor {
  return finish(wrap(native.randint(low, high, shape, dt(opts, 'int64'), dev(opts), opts.generator?.native ?? null)), opts);
}

const like = (t: Tensor, o: TensorOptions): TensorOptions => ({ dtype: t.dtype, device: t.device, ...o });
export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return zeros(t.shape, like(t, opts));
}
export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return ones(t.shape, like(t, opts));
}
export function fullLike(t: Tensor, value: number, opts: TensorOptions = {}): Tensor {
  return full(t.shape, value, like(t, opts));
}
export function randnLike(t: Tensor, opts: RandomOptions = {}): Tensor {
  return randn(t.shape, { ...like(t, opts), generator: opts.generator });
}
