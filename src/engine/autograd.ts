// Grad mode scopes and torch.autograd.grad. Grad mode is per thread, as in PyTorch.
import { native } from './native.js';
import { Tensor, wrap } from './tensor.js';

function withGradMode<R>(enabled: boolean, fn: () => R): R {
  const prev = native.setGradEnabled(enabled);
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('noGrad()/enableGrad(): the function must be synchronous');
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn without recording operations for autograd (inference, weight updates). */
export function noGrad<R>(fn: () => R): R {
  return withGradMode(false, fn);
}
/** Runs fn with autograd recording, even inside noGrad. */
export function enableGrad<R>(fn: () => R): R {
  return withGradMode(true, fn);
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface GradOptions {
  gradOutputs?: Tensor[];
  retainGraph?: boolean;
  createGraph?: boolean;
  /** Give null for inputs that the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}
/** d(outputs)/d(inputs) without touching .grad (torch.autograd.grad). */
export function grad(outputs: Tensor[], inputs: Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const gs = native.autogradGrad(outputs.map((t) => t.handle), inputs.map((t) => t.handle),
    opts.gradOutputs?.map((t) => t.handle) ?? null, opts.retainGraph ?? null, opts.createGraph ?? false, opts.allowUnused ?? false);
  return gs.map((g) => (g === null ? null : wrap(g)));
}
