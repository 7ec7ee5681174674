// The VAE's building blocks: ResnetBlock2D without time embedding, Downsample2D / Upsample2D, the
// mid-block self-attention, and DownEncoderBlock2D / UpDecoderBlock2D / UNetMidBlock2D, as diffusers'
// resnet.py, attention_processor.py (AttnProcessor2_0) and unet_2d_blocks.py build them for AutoencoderKL.
import { interpolate, pad, release, scaledDotProductAttention, tidy, type Tensor } from '../../engine/index.js';
import { Conv2d, GroupNorm, Linear, Module, ModuleList, type InitOptions } from '../../nn/index.js';
import type { VaeActivation } from './config.js';

/** The nonlinearity named by act_fn (diffusers' get_activation). */
export function activation(name: VaeActivation): (x: Tensor) => Tensor {
  switch (name) {
    case 'silu':
    case 'swish':
      return (x) => x.silu();
    case 'gelu':
      return (x) => x.gelu();
    case 'relu':
      return (x) => x.relu();
    case 'mish':
      // x * tanh(softplus(x)), softplus(x) = max(x, 0) + log1p(exp(-|x|)) without overflow
      return (x) => tidy(() => x.mul(x.relu().add(x.abs().neg().exp().log1p()).tanh()));
    default:
      throw new Error(`unsupported activation '${String(name)}'`);
  }
}

/** GroupNorm eps in every VAE block (diffusers passes resnet_eps=1e-6). */
export const VAE_NORM_EPS = 1e-6;

/**
 * norm1 -> act -> conv1 -> norm2 -> act -> conv2, plus the input (through a 1x1 conv_shortcut when the
 * channel count changes). Keys: norm1, conv1, norm2, conv2, conv_shortcut.
 */
export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly conv_shortcut: Conv2d | null;
  private readonly act: (x: Tensor) => Tensor;

  constructor(readonly inChannels: number, readonly outChannels: number, groups: number, act: VaeActivation, o: InitOptions = {}) {
    super();
    this.norm1 = this.module('norm1', new GroupNorm(groups, inChannels, VAE_NORM_EPS, true, o));
    this.conv1 = this.module('conv1', new Conv2d(inChannels, outChannels, 3, { ...o, padding: 1 }));
    this.norm2 = this.module('norm2', new GroupNorm(groups, outChannels, VAE_NORM_EPS, true, o));
    this.conv2 = this.module('conv2', new Conv2d(outChannels, outChannels, 3, { ...o, padding: 1 }));
    this.conv_shortcut = inChannels !== outChannels ? this.module('conv_shortcut', new Conv2d(inChannels, outChannels, 1, o)) : null;
    this.act = activation(act);
  }

  /** [B, Cin, H, W] -> [B, Cout, H, W] */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      // Each intermediate is freed as soon as the next exists (release): two maps alive, not seven.
      let h = this.norm1.forward(x);
      h = release(h, this.act(h));
      h = release(h, this.conv1.forward(h));
      h = release(h, this.norm2.forward(h));
      h = release(h, this.act(h));
      h = release(h, this.conv2.forward(h)); // dropout is 0 in the SD VAE
      const skip = this.conv_shortcut ? this.conv_shortcut.forward(x) : x;
      const out = release(h, skip.add(h));
      if (skip !== x) skip.dispose();
      return out;
    });
  }
}

/** Halves H and W: pad (0, 1, 0, 1) with zeros, then a 3x3 conv with stride 2 and no padding. Key: conv. */
export class Downsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, o: InitOptions = {}) {
    super();
    this.conv = this.module('conv', new Conv2d(channels, channels, 3, { ...o, stride: 2, padding: 0 }));
  }
  /** [B, C, H, W] -> [B, C, ceil(H/2), ceil(W/2)] */
  forward(x: Tensor): Tensor {
    return tidy(() => this.conv.forward(pad(x, [0, 1, 0, 1])));
  }
}

/** Doubles H and W: nearest-neighbour x2, then a 3x3 conv. Key: conv. */
export class Upsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, o: InitOptions = {}) {
    super();
    this.conv = this.module('conv', new Conv2d(channels, channels, 3, { ...o, padding: 1 }));
  }
  /** [B, C, H, W] -> [B, C, 2H, 2W] */
  forward(x: Tensor): Tensor {
    return tidy(() => this.conv.forward(interpolate(x, { scaleFactor: 2, mode: 'nearest' })));
  }
}

/**
 * Single-head spatial self-attention over the H*W positions. Keys: group_norm, to_q, to_k, to_v, to_out.0.
 * out = x + to_out(softmax(q k^T / sqrt(C)) v), q = to_q(group_norm(x)) etc.
 */
export class VaeAttention extends Module {
  readonly group_norm: GroupNorm;
  readonly to_q: Linear;
  readonly to_k: Linear;
  readonly to_v: Linear;
  /** [Linear] (diffusers' [Linear, Dropout]), so the keys read to_out.0.* */
  readonly to_out: ModuleList<Linear>;

  constructor(readonly channels: number, groups: number, o: InitOptions = {}) {
    super();
    this.group_norm = this.module('group_norm', new GroupNorm(groups, channels, VAE_NORM_EPS, true, o));
    this.to_q = this.module('to_q', new Linear(channels, channels, true, o));
    this.to_k = this.module('to_k', new Linear(channels, channels, true, o));
    this.to_v = this.module('to_v', new Linear(channels, channels, true, o));
    this.to_out = this.module('to_out', new ModuleList([new Linear(channels, channels, true, o)]));
  }

  /** [B, C, H, W] -> [B, C, H, W] */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b, c, hh, ww] = x.shape as [number, number, number, number];
      const h = this.group_norm.forward(x).view([b, c, hh * ww]).transpose(1, 2); // [B, HW, C]
      const q = this.to_q.forward(h), k = this.to_k.forward(h), v = this.to_v.forward(h); // [B, HW, C]
      const a = scaledDotProductAttention(q, k, v); // one head, scale 1/sqrt(C): [B, HW, C]
      const o = this.to_out.at(0).forward(a).transpose(1, 2).reshape([b, c, hh, ww]);
      return o.add(x); // rescale_output_factor is 1
    });
  }
}

export interface VaeBlockOptions {
  groups: number;
  act: VaeActivation;
}

/** numLayers resnets (the first changes the channels), then an optional downsampler. Keys: resnets.N, downsamplers.0. */
export class DownEncoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;

  constructor(inChannels: number, outChannels: number, numLayers: number, addDownsample: boolean, b: VaeBlockOptions, o: InitOptions = {}) {
    super();
    const resnets = Array.from({ length: numLayers }, (_, i) => new ResnetBlock2D(i === 0 ? inChannels : outChannels, outChannels, b.groups, b.act, o));
    this.resnets = this.module('resnets', new ModuleList(resnets));
    this.downsamplers = addDownsample ? this.module('downsamplers', new ModuleList([new Downsample2D(outChannels, o)])) : null;
  }

  /** [B, Cin, H, W] -> [B, Cout, H/2, W/2] (or H, W for the last block) */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = x;
      for (const r of this.resnets) h = r.forward(h);
      for (const d of this.downsamplers ?? []) h = d.forward(h);
      return h;
    });
  }
}

/** numLayers resnets (the first changes the channels), then an optional upsampler. Keys: resnets.N, upsamplers.0. */
export class UpDecoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;

  constructor(inChannels: number, outChannels: number, numLayers: number, addUpsample: boolean, b: VaeBlockOptions, o: InitOptions = {}) {
    super();
    const resnets = Array.from({ length: numLayers }, (_, i) => new ResnetBlock2D(i === 0 ? inChannels : outChannels, outChannels, b.groups, b.act, o));
    this.resnets = this.module('resnets', new ModuleList(resnets));
    this.upsamplers = addUpsample ? this.module('upsamplers', new ModuleList([new Upsample2D(outChannels, o)])) : null;
  }

  /** [B, Cin, H, W] -> [B, Cout, 2H, 2W] (or H, W for the last block) */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = x;
      for (const r of this.resnets) h = r.forward(h);
      for (const u of this.upsamplers ?? []) h = u.forward(h);
      return h;
    });
  }
}

/**
 * resnet -> (attention -> resnet) at the lowest resolution (one layer: 2 resnets, 1 attention).
 * Keys: attentions.0 (registered first, as diffusers does), resnets.0, resnets.1.
 */
export class UNetMidBlock2D extends Module {
  readonly attentions: ModuleList<VaeAttention> | null;
  readonly resnets: ModuleList<ResnetBlock2D>;

  constructor(channels: number, addAttention: boolean, b: VaeBlockOptions, o: InitOptions = {}) {
    super();
    this.attentions = addAttention ? this.module('attentions', new ModuleList([new VaeAttention(channels, b.groups, o)])) : null;
    this.resnets = this.module('resnets', new ModuleList([0, 1].map(() => new ResnetBlock2D(channels, channels, b.groups, b.act, o))));
  }

  /** [B, C, h, w] -> [B, C, h, w] */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.resnets.at(0).forward(x);
      if (this.attentions) h = this.attentions.at(0).forward(h);
      return this.resnets.at(1).forward(h);
    });
  }
}
