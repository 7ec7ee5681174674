// Gradient checkpointing (Chen et al. 2016, "Training deep nets with sublinear memory cost") for a
// chain of segments: the forward pass keeps only each segment's input state; the backward pass
// recomputes one segment at a time with autograd on and pushes the gradient back through it.
// Done in JavaScript rather than inside libtorch's autograd (whose backward may run on device
// threads that cannot call JavaScript); the chain's state is a list of tensors, so skip connections
// ride along as extra entries.
import { enableGrad, noGrad, tidy, keep, unkeep, dispose, type Tensor } from '../engine/index.js';

/** One segment: state in -> state out (any number of tensors; pass-through entries are allowed). */
export type Segment = (state: Tensor[]) => Tensor[];

/**
 * Runs the chain, computes loss(finalState), and accumulates d(loss)/d(parameter) into every
 * parameter's .grad (and into the inputs, where they require grad), holding the activations of
 * one segment at a time. Returns the loss, detached, where it was computed (no host sync; the caller
 * disposes it). Gradients equal those of an ordinary backward.
 */
export function checkpointedBackward(segments: Segment[], inputs: Tensor[], loss: (state: Tensor[]) => Tensor): Tensor {
  if (segments.length === 0) throw new Error('checkpointedBackward: no segments');
  // Forward without a graph: keep each segment's input state.
  const states: Tensor[][] = [inputs];
  // Segments may pass tensors through unchanged: the caller's inputs are never kept or freed here.
  const own = (t: Tensor) => !inputs.includes(t);
  noGrad(() => {
    for (let k = 0; k < segments.length - 1; k++) states.push(tidy(() => segments[k]!(states[k]!)).map((t) => (own(t) ? keep(t) : t)));
  });
  let lossValue: Tensor | null = null;
  let gradOut: (Tensor | null)[] = [];
  try {
    for (let k = segments.length - 1; k >= 0; k--) {
      const grads = tidy(() => enableGrad(() => {
        const leaves = states[k]!.map((t, i) => {
          const needs = k > 0 ? t.dtype.startsWith('float') || t.dtype === 'bfloat16' : inputs[i]!.requiresGrad;
          return needs ? t.detach().requiresGrad_(true) : t.detach();
        });
        const out = segments[k]!(leaves);
        let objective: Tensor;
        if (k === segments.length - 1) {
          objective = loss(out);
          lossValue = keep(objective.detach());
        } else {
          // sum(out_i * g_i): its gradient is g_i at out_i, so one backward continues the chain.
          const terms = out.flatMap((o, i) => (gradOut[i] && o.requiresGrad ? [o.mul(gradOut[i]!).sum()] : []));
          if (terms.length === 0) return leaves.map(() => null);
          objective = terms.reduce((a, b) => a.add(b));
        }
        objective.backward();
        return leaves.map((l) => (l.requiresGrad ? l.grad : null));
      }));
      dispose(gradOut);
      gradOut = grads.map((g) => (g ? keep(g) : null));
    }
    // Hand the gradient of the chain's inputs on to whatever they were computed from.
    inputs.forEach((x, i) => {
      const g = gradOut[i];
      if (g && x.requiresGrad) x.backward(g);
    });
    // Back into the caller's scope, as any tensor it creates: its tidy frees or returns it.
    const out = unkeep(lossValue!);
    lossValue = null;
    return out;
  } finally {
    (lossValue as Tensor | null)?.dispose();
    dispose(gradOut);
    for (const s of states.slice(1)) dispose(s.filter(own));
  }
}
