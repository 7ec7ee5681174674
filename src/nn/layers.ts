// The basic layers, with PyTorch's parameter names and default initialization. On the 'meta'
// device nothing is allocated: a model can be built for its key/shape list, or built and then
// filled by loadStateDict without holding two copies of the weights.
import {
  conv2d, embedding, empty, groupNorm, layerNorm, linear, noGrad, ones, rand, randn, tidy, zeros,
  type DType, type Device, type Generator, type Tensor,
} from '../engine/index.js';
import { Module } from './module.js';

export interface InitOptions {
  device?: Device;
  dtype?: DType;
  /** Generator for the random initialization (reproducible training from scratch). */
  generator?: Generator;
}

/** uniform(-bound, bound): PyTorch's default for Linear and Conv (kaiming_uniform with a = sqrt(5)). */
export function uniformInit(shape: number[], bound: number, o: InitOptions = {}): Tensor {
  if (o.device === 'meta') return empty(shape, { device: 'meta', dtype: o.dtype });
  return tidy(() => noGrad(() => rand(shape, { generator: o.generator, device: o.device }).mul(2 * bound).sub(bound).to(o.dtype ?? 'float32')));
}

function constInit(shape: number[], value: 0 | 1, o: InitOptions): Tensor {
  if (o.device === 'meta') return empty(shape, { device: 'meta', dtype: o.dtype });
  return (value === 0 ? zeros : ones)(shape, { device: o.device, dtype: o.dtype });
}

/**
 * A trainable side path added to a layer's output (LoRA, src/nn/lora.ts). It is not a child module:
 * the layer's own keys and state dict stay those of the checkpoint.
 */
export interface Adapter {
  /** The term added to the layer's output for input x. */
  delta(x: Tensor): Tensor;
}

/** y = x W^T + b; weight [out, in]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  adapter: Adapter | null = null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true, o: InitOptions = {}) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', uniformInit([outFeatures, inFeatures], bound, o));
    this.bias = bias ? this.param('bias', uniformInit([outFeatures], bound, o)) : null;
  }
  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias);
    return this.adapter === null ? y : y.add(this.adapter.delta(x));
  }
}

export interface Conv2dOptions extends InitOptions {
  stride?: number;
  padding?: number;
  groups?: number;
  bias?: boolean;
}

/** weight [out, in/groups, k, k]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;
  adapter: Adapter | null = null;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, o: Conv2dOptions = {}) {
    super();
    this.stride = o.stride ?? 1;
    this.padding = o.padding ?? 0;
    this.groups = o.groups ?? 1;
    const fanIn = (inChannels / this.groups) * kernelSize * kernelSize;
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.param('weight', uniformInit([outChannels, inChannels / this.groups, kernelSize, kernelSize], bound, o));
    this.bias = o.bias ?? true ? this.param('bias', uniformInit([outChannels], bound, o)) : null;
  }
  forward(x: Tensor): Tensor {
    const y = conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, groups: this.groups });
    return this.adapter === null ? y : y.add(this.adapter.delta(x));
  }
}

export class GroupNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(readonly numGroups: number, readonly numChannels: number, readonly eps = 1e-5, affine = true, o: InitOptions = {}) {
    super();
    if (numChannels % numGroups !== 0) throw new Error(`GroupNorm: ${numChannels} channels do not split into ${numGroups} groups`);
    this.weight = affine ? this.param('weight', constInit([numChannels], 1, o)) : null;
    this.bias = affine ? this.param('bias', constInit([numChannels], 0, o)) : null;
  }
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5, o: InitOptions = {}) {
    super();
    this.weight = this.param('weight', constInit([dim], 1, o));
    this.bias = this.param('bias', constInit([dim], 0, o));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }
}

/** weight [num, dim], initialized N(0, 1) as PyTorch. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, o: InitOptions = {}) {
    super();
    const shape = [numEmbeddings, embeddingDim];
    this.weight = this.param('weight', o.device === 'meta'
      ? empty(shape, { device: 'meta', dtype: o.dtype })
      : noGrad(() => randnInit(shape, o)));
  }
  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}

function randnInit(shape: number[], o: InitOptions): Tensor {
  return randn(shape, { generator: o.generator, device: o.device, dtype: o.dtype });
}
