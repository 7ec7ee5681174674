// Stochastic gradient descent with momentum, dampening and Nesterov, as torch.optim.SGD.
import { native } from '../native.js';
import { keep } from '../scope.js';
import { wrap, type Tensor } from '../tensor.js';
import { Optimizer } from './optimizer.js';

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

export class SGD extends Optimizer {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  readonly nesterov: boolean;
  readonly maximize: boolean;

  constructor(params: Tensor[], opts: SGDOptions = {}) {
    super(params, 'sgd');
    this.lr = opts.lr ?? 1e-3;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.maximize = opts.maximize ?? false;
    if (!(this.lr >= 0) || !(this.momentum >= 0) || !(this.weightDecay >= 0)) {
      throw new RangeError(`sgd: invalid lr ${this.lr}, momentum ${this.momentum} or weight decay ${this.weightDecay}`);
    }
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError('sgd: Nesterov momentum requires a momentum and zero dampening');
    }
  }

  step(): void {
    // Momentum buffers start as a copy of the first gradient (created natively), as in PyTorch.
    const bufs = this.slot('momentum_buffer', () => null);
    const created = native.sgdStep(this.params.map((p) => p.handle), bufs.map((b) => b?.handle ?? null), this.lr,
      this.momentum, this.dampening, this.weightDecay, this.nesterov, this.maximize);
    created.forEach((c, i) => {
      if (c !== null) bufs[i] = keep(wrap(c));
    });
    this.stepCount += 1;
  }

  protected hyper(): Record<string, number | boolean | number[]> {
    return { lr: this.lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov, maximize: this.maximize };
  }
}
