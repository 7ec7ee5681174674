/**
 * The tensor engine: libtorch behind a Node-API addon, with a typed API modelled on PyTorch's.
 *
 * @module imagic/engine
 */
export { Tensor, type TensorLike, type ReduceOptions } from './tensor.js';
export type { DType, Device, AnyTypedArray } from './dtype.js';
export { DTYPES, DTYPE_BYTES, isFloating } from './dtype.js';
export * from './creation.js';
export * from './functional.js';
export { tidy, keep, unkeep, dispose, release, scopeDepth } from './scope.js';
export { noGrad, enableGrad, isGradEnabled, grad, type GradOptions } from './autograd.js';
export { autocast, GradScaler, type AutocastOptions, type GradScalerOptions } from './amp.js';
export { Generator, manualSeed } from './random.js';
export { liveTensors, setNumThreads, getNumThreads, buildInfo, cuda } from './runtime.js';
export * as optim from './optim/index.js';
export type { Trackable } from './scope.js';
export type { Nested } from './creation.js';
export type { NativeTensor, NativeGenerator } from './native.js';
