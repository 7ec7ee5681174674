// Seeded random generators: the same seed gives the same numbers as torch.Generator().manual_seed().
import { native, type NativeGenerator } from './native.js';
import { Tensor, wrap } from './tensor.js';
import type { Device } from './dtype.js';

export class Generator {
  readonly native: NativeGenerator;

  /** A generator on `device` ('cpu' by default) seeded with `seed`. */
  constructor(seed: number, device: Device = 'cpu') {
    this.native = new native.Generator(seed, device);
  }
  manualSeed(seed: number): this {
    this.native.manualSeed(seed);
    return this;
  }
  get initialSeed(): number {
    return this.native.initialSeed();
  }
  get device(): Device {
    return this.native.device();
  }
  /** The full generator state (a uint8 tensor) to save, e.g. for resuming a run. */
  getState(): Tensor {
    return wrap(this.native.getState());
  }
  setState(state: Tensor): this {
    this.native.setState(state.handle);
    return this;
  }
}

/** Seeds libtorch's default generators (used when no Generator is passed). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
