// Optimizers and gradient utilities.
import { native } from '../native.js';
import { wrap, type Tensor } from '../tensor.js';

export { Optimizer, type OptimizerState } from './optimizer.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { SGD, type SGDOptions } from './sgd.js';

/** Scales gradients in place so that their global norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): Tensor {
  return wrap(native.clipGradNorm(params.map((p) => p.handle), maxNorm, normType));
}
