// Mixed precision: autocast runs eligible ops (matmul, conv, linear, attention) in bfloat16 or
// float16 while parameters stay float32 (the master weights the optimizer updates), as torch.autocast.
import { native } from './native.js';
import type { Tensor } from './tensor.js';
import type { Optimizer } from './optim/optimizer.js';

export interface AutocastOptions {
  /** 'cuda' (default) or 'cpu'. */
  deviceType?: 'cuda' | 'cpu';
  /** 'bfloat16' (default) or 'float16'. */
  dtype?: 'bfloat16' | 'float16';
  /** false runs fn as is, for code paths that make autocast optional. */
  enabled?: boolean;
}

/** Runs fn (synchronous) under autocast. Backward may run outside: it reuses the recorded dtypes. */
export function autocast<R>(opts: AutocastOptions, fn: () => R): R {
  if (opts.enabled === false) return fn();
  const deviceType = opts.deviceType ?? 'cuda';
  const [wasEnabled, prevDtype] = native.autocastEnter(deviceType, opts.dtype ?? 'bfloat16');
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('autocast(): the function must be synchronous');
    return r;
  } finally {
    native.autocastExit(deviceType, wasEnabled, prevDtype);
  }
}

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  enabled?: boolean;
}

/**
 * Dynamic loss scaling for float16 training (torch.amp.GradScaler): scale the loss so small
 * gradients survive fp16, unscale before the step, skip steps whose gradients overflowed and
 * lower the scale; raise it again after `growthInterval` clean steps. bfloat16 does not need it.
 *
 *   scaler.scale(loss).backward();  scaler.step(opt);  scaler.update();
 */
export class GradScaler {
  scale_: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  private growthTracker = 0;
  private foundInf: boolean | null = null;

  constructor(opts: GradScalerOptions = {}) {
    this.scale_ = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    this.enabled = opts.enabled ?? true;
  }

  /** The loss multiplied by the current scale. */
  scale(loss: Tensor): Tensor {
    return this.enabled ? loss.mul(this.scale_) : loss;
  }

  /** Divides the gradients by the scale (once per step; call before clipping). */
  unscale_(optimizer: Optimizer): void {
    if (!this.enabled || this.foundInf !== null) return;
    this.foundInf = native.unscaleGrads(optimizer.params.map((p) => p.handle), 1 / this.scale_);
  }

  /** Unscales if needed, then steps unless a gradient is inf/NaN. Returns whether it stepped. */
  step(optimizer: Optimizer): boolean {
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    this.unscale_(optimizer);
    if (this.foundInf) return false;
    optimizer.step();
    return true;
  }

  /** Adjusts the scale for the next step. */
  update(): void {
    if (!this.enabled) return;
    if (this.foundInf) {
      this.scale_ *= this.backoffFactor;
      this.growthTracker = 0;
    } else if (this.foundInf === false && ++this.growthTracker === this.growthInterval) {
      this.scale_ *= this.growthFactor;
      this.growthTracker = 0;
    }
    this.foundInf = null;
  }

  stateDict(): { scale: number; growthTracker: number } {
    return { scale: this.scale_, growthTracker: this.growthTracker };
  }
  loadStateDict(s: { scale: number; growthTracker: number }): void {
    this.scale_ = s.scale;
    this.growthTracker = s.growthTracker;
  }
}
