// Loads the libtorch Node-API addon (native/) and declares its interface. Only the engine imports
// this file; everything above the engine uses Tensor.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A handle to one libtorch tensor, owned by a Tensor. */
export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
  shape(): number[];
  dtype(): string;
  device(): string;
  requiresGrad(): boolean;
  info(): [number[], string, string];
}

export interface NativeGenerator {
  manualSeed(seed: number): void;
  initialSeed(): number;
  getState(): NativeTensor;
  setState(state: NativeTensor): void;
  device(): string;
}

type T = NativeTensor;
type N = T | number | boolean;
type Opt<X> = X | null;

export interface NativeBinding {
  Generator: new (seed: number, device: string) => NativeGenerator;
  // creation and data
  fromBuffer(view: ArrayBufferView, shape: number[], dtype: string): T;
  toBuffer(t: T): ArrayBuffer;
  item(t: T): number | boolean;
  full(shape: number[], value: number | boolean, dtype: string, device: string): T;
  empty(shape: number[], dtype: string, device: string): T;
  arange(start: number, end: number, step: number, dtype: string, device: string): T;
  linspace(start: number, end: number, steps: number, dtype: string, device: string): T;
  randn(shape: number[], dtype: string, device: string, gen: Opt<NativeGenerator>): T;
  rand(shape: number[], dtype: string, device: string, gen: Opt<NativeGenerator>): T;
  randint(low: number, high: number, shape: number[], dtype: string, device: string, gen: Opt<NativeGenerator>): T;
  // math
  unary(x: T, code: number): T;
  binary(a: N, b: N, code: number): T;
  addScaled(a: T, b: T, alpha: number): T;
  binaryInplace(a: T, b: N, code: number): T;
  copy_(dst: T, src: T): T;
  fill_(t: T, value: number | boolean): T;
  zero_(t: T): T;
  clamp(x: T, min: Opt<number>, max: Opt<number>): T;
  lerp(a: T, b: T, weight: T | number): T;
  where(cond: T, a: N, b: N): T;
  maskedFill(x: T, mask: T, value: number | boolean): T;
  reduce(x: T, code: number, dims: Opt<number[]>, keepdim: boolean, dtype: Opt<string>): T;
  variance(x: T, dims: Opt<number[]>, correction: number, keepdim: boolean, std: boolean): T;
  maxDim(x: T, dim: number, keepdim: boolean, isMin: boolean): [T, T];
  argmax(x: T, dim: Opt<number>, keepdim: boolean, isMin: boolean): T;
  softmax(x: T, dim: number, log: boolean, dtype: Opt<string>): T;
  cumsum(x: T, dim: number): T;
  matmul(a: T, b: T): T;
  bmm(a: T, b: T): T;
  linear(x: T, w: T, b: Opt<T>): T;
  baddbmm(input: T, b1: T, b2: T, beta: number, alpha: number): T;
  // shape
  reshape(x: T, shape: number[]): T;
  view(x: T, shape: number[]): T;
  permute(x: T, dims: number[]): T;
  transpose(x: T, d0: number, d1: number): T;
  flatten(x: T, start: number, end: number): T;
  expand(x: T, shape: number[]): T;
  repeat(x: T, repeats: number[]): T;
  squeeze(x: T, dims: Opt<number[]>): T;
  unsqueeze(x: T, dim: number): T;
  contiguous(x: T): T;
  clone(x: T): T;
  detach(x: T): T;
  to(x: T, dtype: Opt<string>, device: Opt<string>, copy: boolean): T;
  cat(xs: T[], dim: number): T;
  stack(xs: T[], dim: number): T;
  chunk(x: T, chunks: number, dim: number): T[];
  split(x: T, sizes: number | number[], dim: number): T[];
  narrow(x: T, dim: number, start: number, length: number): T;
  slice(x: T, dim: number, start: number, end: number, step: number): T;
  select(x: T, dim: number, index: number): T;
  indexSelect(x: T, dim: number, index: T): T;
  gather(x: T, dim: number, index: T): T;
  flip(x: T, dims: number[]): T;
  triangle(x: T, diagonal: number, upper: boolean): T;
  assign(x: T, src: T): T;
  // nn
  conv2d(x: T, w: T, b: Opt<T>, stride: number[], padding: number[], dilation: number[], groups: number): T;
  groupNorm(x: T, groups: number, w: Opt<T>, b: Opt<T>, eps: number): T;
  layerNorm(x: T, shape: number[], w: Opt<T>, b: Opt<T>, eps: number): T;
  embedding(w: T, ids: T): T;
  scaledDotProductAttention(q: T, k: T, v: T, mask: Opt<T>, dropoutP: number, isCausal: boolean, scale: Opt<number>): T;
  interpolate(x: T, mode: string, size: Opt<number[]>, scale: Opt<number | number[]>, alignCorners: boolean, antialias: boolean): T;
  pad(x: T, pads: number[], mode: string, value: number): T;
  dropout(x: T, p: number, train: boolean): T;
  pool2d(x: T, kernel: number[], stride: number[], padding: number[], isMax: boolean): T;
  mseLoss(a: T, b: T, reduction: string): T;
  l1Loss(a: T, b: T, reduction: string): T;
  cosineSimilarity(a: T, b: T, dim: number, eps: number): T;
  // autograd
  setRequiresGrad(x: T, flag: boolean): T;
  backward(y: T, grad: Opt<T>, retainGraph: boolean, createGraph: boolean): void;
  grad(x: T): Opt<T>;
  setGrad(x: T, g: Opt<T>): void;
  isLeaf(x: T): boolean;
  retainGrad(x: T): void;
  autogradGrad(outputs: T[], inputs: T[], gradOutputs: Opt<T[]>, retainGraph: Opt<boolean>, createGraph: boolean, allowUnused: boolean): Opt<T>[];
  isGradEnabled(): boolean;
  setGradEnabled(flag: boolean): boolean;
  // optim
  adamStep(params: T[], m: T[], v: T[], vmax: Opt<T[]>, step: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, maximize: boolean): number;
  sgdStep(params: T[], bufs: Opt<T>[], lr: number, momentum: number, dampening: number, weightDecay: number, nesterov: boolean, maximize: boolean): Opt<T>[];
  clipGradNorm(params: T[], maxNorm: number, normType: number): T;
  unscaleGrads(params: T[], invScale: number): boolean;
  // runtime
  liveTensors(): number;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  synchronize(device: number): void;
  buildInfo(): { torchVersion: string; runtimeTorchVersion: string; cuda: boolean; threads: number; builtWithCuda: boolean };
  autocastEnter(deviceType: string, dtype: string): [boolean, string];
  autocastExit(deviceType: string, wasEnabled: boolean, dtype: string): void;
  // reference (bench): the UNet forward in C++ over ATen, timed with no JavaScript in the loop
  unetReferenceBench(weights: Record<string, T>, config: object, sample: T, timestep: number | T, encoderHiddenStates: Opt<T>,
    iters: number, warmup: number): { msPerIter: number; minMs: number; maxMs: number; samplesMs: number[]; threads: number; out: T };
}

// Op codes shared with native/src/math.cc.
export const UNARY = {
  neg: 0, abs: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, sin: 6, cos: 7, tanh: 8, sigmoid: 9, silu: 10,
  relu: 11, gelu: 12, geluTanh: 13, square: 14, floor: 15, ceil: 16, round: 17, sign: 18, isfinite: 19,
  logicalNot: 20, reciprocal: 21, erf: 22, quickGelu: 23, isnan: 24, log1p: 25, expm1: 26, trunc: 27,
} as const;

export const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, ne: 8, lt: 9, le: 10, gt: 11,
  ge: 12, logicalAnd: 13, logicalOr: 14, remainder: 15, atan2: 16, floorDivide: 17,
} as const;

export const REDUCE = { sum: 0, mean: 1, amax: 2, amin: 3, all: 5, any: 6 } as const;

/** How to build the addon again: in a checkout `npm run setup`; in an installed package `npm rebuild imagic`. */
export const REBUILD_HINT = 'rebuild it with `npm rebuild imagic` (in a clone of the repository: `npm run setup`)';

/** The three ways to provide libtorch (scripts/install.mjs prints the same). */
export const LIBTORCH_WAYS = [
  '1. LIBTORCH=/path/to/libtorch: a libtorch folder with include/ and lib/ (e.g. unzipped from pytorch.org; LIBTORCH_CXX11_ABI=0 for a pre-cxx11 build)',
  '2. the torch of python3 (or of $PYTHON): python3 -m pip install torch==2.13.0',
  '3. a system libtorch under /usr/local or /usr (include/ATen/ATen.h and lib/libtorch_cpu.so)',
].join('\n  ');

function addonPath(): string {
  if (process.env.IMAGIC_ADDON) return process.env.IMAGIC_ADDON;
  // dist/src/engine/native.js or src/engine/native.ts -> <root>/build/Release/imagic.node
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'build', 'Release', 'imagic.node');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(
    'imagic: the native addon (build/Release/imagic.node) is not built. It is built against libtorch when imagic ' +
      `is installed; ${REBUILD_HINT}, or set IMAGIC_ADDON. libtorch comes from, in this order:\n  ${LIBTORCH_WAYS}`,
  );
}

/** What build-native.mjs recorded about the libtorch the addon was compiled against. */
function builtAgainst(addon: string): string {
  try {
    const info = JSON.parse(readFileSync(path.join(path.dirname(addon), 'libtorch.json'), 'utf8')) as { source?: string; libDirs?: string[]; abi?: number };
    return `${info.source ?? 'an unknown libtorch'} in ${(info.libDirs ?? []).join(', ')}, C++ ABI ${info.abi === 0 ? 'pre-cxx11' : 'cxx11'}`;
  } catch {
    return 'an unrecorded libtorch';
  }
}

/** Turns a failed load of the addon into one message that says what went wrong and what to do. */
export function explainLoadError(addon: string, message: string): string {
  const first = message.split('\n')[0]!;
  const built = builtAgainst(addon);
  const missing = /(lib(torch|c10)[\w.-]*\.so[\w.]*): cannot open shared object file/.exec(message);
  if (missing) {
    return `imagic: libtorch is gone: the addon ${addon} was built against ${built}, and ${missing[1]} cannot be found there any more ` +
      `(torch uninstalled, moved, or another Python). Provide libtorch again and ${REBUILD_HINT}:\n  ${LIBTORCH_WAYS}`;
  }
  const symbol = /undefined symbol: (\S+)/.exec(message);
  if (symbol) {
    const abi = /__cxx11|St7__cxx11|B5cxx11/.test(symbol[1]!) ? 'cxx11' : /Ss|Sb|basic_string/.test(symbol[1]!) ? 'pre-cxx11' : null;
    return `imagic: the addon does not match the libtorch it loads (undefined symbol ${symbol[1]}${abi ? `, a ${abi}-ABI name` : ''}). ` +
      `It was built against ${built}; the libtorch found now has another version or C++ ABI (_GLIBCXX_USE_CXX11_ABI). ` +
      `Point imagic at one libtorch and ${REBUILD_HINT}; for a pre-cxx11 libtorch set LIBTORCH_CXX11_ABI=0.`;
  }
  if (/invalid ELF header|wrong ELF class|file too short/.test(message)) {
    return `imagic: ${addon} is not a loadable addon for this machine (${first}). To fix: ${REBUILD_HINT}.`;
  }
  return `imagic: the native addon ${addon} failed to load: ${first}. To fix: ${REBUILD_HINT}.`;
}

/** The addon, loaded, with the libtorch it runs on checked against the one it was compiled with. */
function loadAddon(): NativeBinding {
  const addon = addonPath();
  const require = createRequire(import.meta.url);
  let binding: NativeBinding;
  try {
    binding = require(addon) as NativeBinding;
  } catch (e) {
    throw new Error(explainLoadError(addon, e instanceof Error ? e.message : String(e)));
  }
  const info = binding.buildInfo();
  if (info.runtimeTorchVersion && info.runtimeTorchVersion !== info.torchVersion) {
    throw new Error(`imagic: the addon was compiled against libtorch ${info.torchVersion} (${builtAgainst(addon)}), but libtorch ` +
      `${info.runtimeTorchVersion} is loaded: ${REBUILD_HINT}.`);
  }
  return binding;
}

export const native: NativeBinding = loadAddon();
