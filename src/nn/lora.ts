// LoRA (Hu et al. 2021): a frozen layer W plus a trained low-rank update, y = W x + (alpha / r) B A x,
// with A [r, in] drawn as PyTorch draws a Linear's weight and B [out, r] zero, so that a fresh
// adapter changes nothing. For a convolution, A is a convolution with the layer's kernel, stride and
// padding to r channels and B a 1x1 convolution back (PEFT's layout). Keys follow PEFT and diffusers'
// LoRA files: `<layer>.lora_A.weight`, `<layer>.lora_B.weight`.
import { conv2d, linear, noGrad, tidy, zeros, type Generator, type Tensor } from '../engine/index.js';
import { Conv2d, Linear, uniformInit, type Adapter } from './layers.js';
import { Module } from './module.js';

/** Which layers get adapters: attention projections (diffusers' default), optionally the resnets' convolutions. */
export type LoRATargets = 'attention' | 'attention+resnets';
export const LORA_TARGETS: readonly LoRATargets[] = ['attention', 'attention+resnets'];

const TARGET_PATTERNS: Record<LoRATargets, RegExp> = {
  attention: /\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$/,
  'attention+resnets': /(\.attn[12]\.(to_q|to_k|to_v|to_out\.0)|\.resnets\.\d+\.conv[12])$/,
};

export interface LoRAOptions {
  rank: number;
  /** Scale alpha / rank of the update (default alpha = rank: scale 1). */
  alpha?: number;
  targets?: LoRATargets;
  generator?: Generator;
}

/** The layers that `targets` selects in `model`, by name. */
function targetLayers(model: Module, targets: LoRATargets): [string, Linear | Conv2d][] {
  const pattern = TARGET_PATTERNS[targets];
  if (pattern === undefined) throw new RangeError(`LoRA targets must be one of ${LORA_TARGETS.join(', ')}, got '${targets}'`);
  return model.namedModules().filter((e): e is [string, Linear | Conv2d] => pattern.test(`.${e[0]}`) && (e[1] instanceof Linear || e[1] instanceof Conv2d));
}

/** The model's parameter names that LoRA on `targets` changes when merged (`<layer>.weight`). */
export function loraMergedWeightNames(model: Module, targets: LoRATargets): string[] {
  return targetLayers(model, targets).map(([n]) => `${n}.weight`);
}

/** A weight holder, so that keys read `<layer>.lora_A.weight`. */
class LoRAWeight extends Module {
  readonly weight: Tensor;
  constructor(w: Tensor) {
    super();
    this.weight = this.param('weight', w);
  }
}

/** One layer's adapter: down (A) then up (B), times scale. */
class LoRALayer extends Module implements Adapter {
  readonly lora_A: LoRAWeight;
  readonly lora_B: LoRAWeight;
  constructor(readonly layer: Linear | Conv2d, readonly rank: number, readonly scale: number, generator?: Generator) {
    super();
    const device = layer.weight.device;
    if (layer instanceof Linear) {
      this.lora_A = this.module('lora_A', new LoRAWeight(uniformInit([rank, layer.inFeatures], 1 / Math.sqrt(layer.inFeatures), { device, generator }))); // [r, in]
      this.lora_B = this.module('lora_B', new LoRAWeight(zeros([layer.outFeatures, rank], { device }))); // [out, r]
    } else {
      if (layer.groups !== 1) throw new Error('LoRA: grouped convolutions are not supported');
      const k = layer.kernelSize, fanIn = layer.inChannels * k * k;
      this.lora_A = this.module('lora_A', new LoRAWeight(uniformInit([rank, layer.inChannels, k, k], 1 / Math.sqrt(fanIn), { device, generator }))); // [r, in, k, k]
      this.lora_B = this.module('lora_B', new LoRAWeight(zeros([layer.outChannels, rank, 1, 1], { device }))); // [out, r, 1, 1]
    }
  }

  delta(x: Tensor): Tensor {
    // The adapters stay float32 (master weights); they follow the input's dtype in the forward.
    const cast = (w: Tensor) => (w.dtype === x.dtype ? w : w.to(x.dtype));
    const a = cast(this.lora_A.weight), b = cast(this.lora_B.weight);
    const l = this.layer;
    const h = l instanceof Linear ? linear(linear(x, a), b) : conv2d(conv2d(x, a, null, { stride: l.stride, padding: l.padding }), b);
    return this.scale === 1 ? h : h.mul(this.scale);
  }

  /** scale * B A in the layer's weight shape, float32. */
  update(): Tensor {
    return tidy(() => {
      const a = this.lora_A.weight.float(), b = this.lora_B.weight.float();
      const w = this.layer.weight;
      const ba = b.reshape(b.shape[0]!, this.rank).matmul(a.reshape(this.rank, -1)).reshape(w.shape); // [out, in(, k, k)]
      return this.scale === 1 ? ba : ba.mul(this.scale);
    });
  }
}

/**
 * Adapters on a model's target layers. Attached on creation: the model's forward includes them
 * until detach() or merge(). Its parameters are the only ones to train; its state dict holds only
 * the adapters (megabytes for Stable Diffusion's UNet).
 */
export class LoRA extends Module {
  readonly rank: number;
  readonly alpha: number;
  readonly targets: LoRATargets;
  private readonly layers: [string, LoRALayer][] = [];

  constructor(model: Module, o: LoRAOptions) {
    super();
    if (!Number.isInteger(o.rank) || o.rank < 1) throw new RangeError(`LoRA rank must be an integer >= 1, got ${o.rank}`);
    this.rank = o.rank;
    this.alpha = o.alpha ?? o.rank;
    if (!(this.alpha > 0)) throw new RangeError(`LoRA alpha must be positive, got ${this.alpha}`);
    this.targets = o.targets ?? 'attention';
    for (const [name, m] of targetLayers(model, this.targets)) {
      if (m.adapter !== null) throw new Error(`LoRA: layer ${name} already has an adapter`);
      const layer = noGrad(() => this.module(name, new LoRALayer(m, this.rank, this.alpha / this.rank, o.generator)));
      this.layers.push([name, layer]);
      m.adapter = layer;
    }
    if (this.layers.length === 0) throw new Error(`LoRA: the model has no ${this.targets} layers to adapt`);
  }

  /** Names of the layers that carry adapters. */
  layerNames(): string[] {
    return this.layers.map(([n]) => n);
  }

  /** The model's parameter names that merge() changes (`<layer>.weight`). */
  mergedWeightNames(): string[] {
    return this.layers.map(([n]) => `${n}.weight`);
  }

  /** Removes the adapters from the model's forward (the model is back to its base weights). */
  detach(): void {
    for (const [, l] of this.layers) if (l.layer.adapter === l) l.layer.adapter = null;
  }

  /** W += scale * B A in every target layer (computed in float32), then detaches: the model renders the adapted weights at full speed. */
  merge(): void {
    noGrad(() => {
      for (const [, l] of this.layers) {
        const w = l.layer.weight;
        tidy(() => { w.copy_(w.float().add(l.update())); });
      }
    });
    this.detach();
  }
}
