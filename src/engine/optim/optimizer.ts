// The optimizer base: parameters, zeroGrad, and state that can be saved and loaded as a flat
// record of named tensors (ready for safetensors).
import { keep } from '../scope.js';
import { Tensor } from '../tensor.js';
import { noGrad } from '../autograd.js';

export interface OptimizerState {
  /** 'adam', 'adamw' or 'sgd'. */
  kind: string;
  /** Completed step() calls. */
  step: number;
  /** Hyper-parameters, for reference (loading keeps the current optimizer's). */
  hyper: Record<string, number | boolean | number[]>;
  /** Per-parameter state, named `<slot>.<param index>`, e.g. `exp_avg.3`. */
  tensors: Record<string, Tensor>;
}

export abstract class Optimizer {
  readonly params: Tensor[];
  /** Completed step() calls. */
  stepCount = 0;
  protected slots: Map<string, (Tensor | null)[]> = new Map();

  constructor(params: Tensor[], readonly kind: string) {
    if (params.length === 0) throw new Error(`${kind}: no parameters to optimize`);
    for (const [i, p] of params.entries()) {
      if (!p.requiresGrad) throw new Error(`${kind}: parameter ${i} does not require grad (call requiresGrad_())`);
      if (!p.isLeaf) throw new Error(`${kind}: parameter ${i} is not a leaf tensor`);
    }
    this.params = params;
  }

  abstract step(): void;
  protected abstract hyper(): Record<string, number | boolean | number[]>;

  /** Clears gradients: to null (default, frees memory) or to zeros in place. */
  zeroGrad(setToNone = true): void {
    for (const p of this.params) {
      if (setToNone) {
        p.grad = null;
      } else {
        const g = p.grad;
        if (g !== null) {
          g.zero_();
          g.dispose();
        }
      }
    }
  }

  /** Per-parameter state tensors of a slot, created as zeros on first use. */
  protected slot(name: string, init: (p: Tensor) => Tensor | null): (Tensor | null)[] {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = noGrad(() => this.params.map((p) => {
        const t = init(p);
        return t === null ? null : keep(t);
      }));
      this.slots.set(name, s);
    }
    return s;
  }

  stateDict(): OptimizerState {
    const tensors: Record<string, Tensor> = {};
    for (const [name, list] of this.slots) {
      list.forEach((t, i) => {
        if (t !== null) tensors[`${name}.${i}`] = t;
      });
    }
    return { kind: this.kind, step: this.stepCount, hyper: this.hyper(), tensors };
  }

  /** Restores a saved state (copied; the given tensors stay the caller's). */
  loadStateDict(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`${this.kind}: cannot load the state of a '${state.kind}' optimizer`);
    const slots = new Map<string, (Tensor | null)[]>();
    for (const [key, t] of Object.entries(state.tensors)) {
      const m = /^(.+)\.(\d+)$/.exec(key);
      if (m === null) throw new Error(`${this.kind}: unexpected state key '${key}'`);
      const [, name, idx] = m as unknown as [string, string, string];
      const i = Number(idx);
      const p = this.params[i];
      if (p === undefined) throw new Error(`${this.kind}: state key '${key}' names parameter ${i}, but there are ${this.params.length}`);
      const ps = p.shape.join(','), ts = t.shape.join(',');
      if (ps !== ts) throw new Error(`${this.kind}: state '${key}' has shape [${ts}] but parameter ${i} has [${ps}]`);
      if (!slots.has(name)) slots.set(name, this.params.map(() => null));
      slots.get(name)![i] = keep(noGrad(() => t.to({ device: p.device, copy: true })));
    }
    this.disposeState();
    this.slots = slots;
    this.stepCount = state.step;
  }

  /** Frees the optimizer's state tensors. */
  disposeState(): void {
    for (const list of this.slots.values()) for (const t of list) t?.dispose();
    this.slots.clear();
  }
}
