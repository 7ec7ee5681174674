// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019) with PyTorch's exact update rule:
// torch.optim.Adam / AdamW (bias correction, eps outside the sqrt, L2 or decoupled weight decay).
import { native } from '../native.js';
import { zerosLike } from '../creation.js';
import type { Tensor } from '../tensor.js';
import { Optimizer } from './optimizer.js';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}

export class Adam extends Optimizer {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  readonly amsgrad: boolean;
  readonly maximize: boolean;
  protected readonly decoupled: boolean = false;

  constructor(params: Tensor[], opts: AdamOptions = {}, kind = 'adam', defaultWeightDecay = 0) {
    super(params, kind);
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? defaultWeightDecay;
    this.amsgrad = opts.amsgrad ?? false;
    this.maximize = opts.maximize ?? false;
    const bad = [
      [!(this.lr >= 0), `invalid learning rate ${this.lr}`],
      [!(this.eps >= 0), `invalid eps ${this.eps}`],
      [!(this.betas[0] >= 0 && this.betas[0] < 1), `invalid beta1 ${this.betas[0]}`],
      [!(this.betas[1] >= 0 && this.betas[1] < 1), `invalid beta2 ${this.betas[1]}`],
      [!(this.weightDecay >= 0), `invalid weight decay ${this.weightDecay}`],
    ].find(([b]) => b);
    if (bad) throw new RangeError(`${kind}: ${bad[1]}`);
  }

  /**
   * One update of every parameter that has a gradient. The step count is the optimizer's (PyTorch
   * counts per parameter; the two differ only for parameters that sometimes lack a gradient).
   */
  step(): void {
    const zeros = (p: Tensor) => zerosLike(p);
    const m = this.slot('exp_avg', zeros) as Tensor[];
    const v = this.slot('exp_avg_sq', zeros) as Tensor[];
    const vmax = this.amsgrad ? (this.slot('max_exp_avg_sq', zeros) as Tensor[]) : null;
    this.stepCount += 1;
    native.adamStep(this.params.map((p) => p.handle), m.map((t) => t.handle), v.map((t) => t.handle),
      vmax?.map((t) => t.handle) ?? null, this.stepCount, this.lr, this.betas[0], this.betas[1], this.eps,
      this.weightDecay, this.decoupled, this.maximize);
  }

  protected hyper(): Record<string, number | boolean | number[]> {
    return { lr: this.lr, betas: this.betas, eps: this.eps, weightDecay: this.weightDecay, amsgrad: this.amsgrad, maximize: this.maximize };
  }
}

/** Adam with decoupled weight decay: p -= lr * wd * p before the Adam update (default wd 1e-2). */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts, 'adamw', 1e-2);
  }
}
