// The UNet's convolutional parts: ResnetBlock2D with a timestep-embedding injection, Downsample2D
// and Upsample2D, as diffusers' models/resnet.py, models/downsampling.py, models/upsampling.py.
import { dropout, interpolate, pad, release, tidy, type Tensor } from '../../engine/index.js';
import { Conv2d, GroupNorm, Linear, Module, type InitOptions } from '../../nn/index.js';
import { activation, initOf, type ActivationName } from './config.js';

export interface ResnetBlock2DOptions extends InitOptions {
  inChannels: number;
  /** Defaults to inChannels. */
  outChannels?: number;
  /** Width of the timestep embedding; null: no time_emb_proj. */
  tembChannels: number | null;
  groups?: number;
  eps?: number;
  dropout?: number;
  nonLinearity?: ActivationName;
  /** 'default': h + temb before norm2; 'scale_shift': norm2(h) * (1 + scale) + shift. */
  timeEmbeddingNorm?: 'default' | 'scale_shift';
  /** The output is (shortcut + h) / outputScaleFactor. */
  outputScaleFactor?: number;
}

/**
 * x [B, Cin, H, W], temb [B, T] -> [B, Cout, H, W]:
 * conv2(drop(act(norm2(conv1(act(norm1(x))) + proj(act(temb)))))) + shortcut(x).
 */
export class ResnetBlock2D extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly time_emb_proj: Linear | null;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly conv_shortcut: Conv2d | null;
  readonly dropoutP: number;
  readonly timeEmbeddingNorm: 'default' | 'scale_shift';
  readonly outputScaleFactor: number;
  private readonly act: (x: Tensor) => Tensor;

  constructor(o: ResnetBlock2DOptions) {
    super();
    const init = initOf(o);
    this.inChannels = o.inChannels;
    this.outChannels = o.outChannels ?? o.inChannels;
    const groups = o.groups ?? 32, eps = o.eps ?? 1e-6;
    this.timeEmbeddingNorm = o.timeEmbeddingNorm ?? 'default';
    this.outputScaleFactor = o.outputScaleFactor ?? 1;
    this.dropoutP = o.dropout ?? 0;
    this.act = activation(o.nonLinearity ?? 'silu');
    this.norm1 = this.module('norm1', new GroupNorm(groups, this.inChannels, eps, true, init));
    this.conv1 = this.module('conv1', new Conv2d(this.inChannels, this.outChannels, 3, { ...init, padding: 1 }));
    const projOut = this.timeEmbeddingNorm === 'scale_shift' ? 2 * this.outChannels : this.outChannels;
    this.time_emb_proj = o.tembChannels === null ? null : this.module('time_emb_proj', new Linear(o.tembChannels, projOut, true, init));
    this.norm2 = this.module('norm2', new GroupNorm(groups, this.outChannels, eps, true, init));
    this.conv2 = this.module('conv2', new Conv2d(this.outChannels, this.outChannels, 3, { ...init, padding: 1 }));
    this.conv_shortcut = this.inChannels === this.outChannels ? null
      : this.module('conv_shortcut', new Conv2d(this.inChannels, this.outChannels, 1, { ...init, padding: 0 }));
  }

  forward(x: Tensor, temb: Tensor | null): Tensor {
    return tidy(() => {
      if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
        throw new Error(`ResnetBlock2D: expected input [B, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
      }
      // Each intermediate is freed as soon as the next exists (release): the block's peak memory is two maps, not eight.
      let h = this.norm1.forward(x);
      h = release(h, this.act(h));
      h = release(h, this.conv1.forward(h)); // [B, Cout, H, W]
      let t: Tensor | null = null;
      if (this.time_emb_proj !== null && temb !== null) {
        t = this.time_emb_proj.forward(this.act(temb)).unsqueeze(-1).unsqueeze(-1); // [B, Cout or 2*Cout, 1, 1]
      }
      if (this.timeEmbeddingNorm === 'default') {
        if (t !== null) h = release(h, h.add(t));
        h = release(h, this.norm2.forward(h));
      } else {
        h = release(h, this.norm2.forward(h));
        if (t !== null) {
          const [scale, shift] = t.chunk(2, 1);
          h = release(h, h.mul(scale!.add(1)));
          h = release(h, h.add(shift!));
        }
      }
      h = release(h, this.act(h));
      if (this.dropoutP > 0 && this.training) h = release(h, dropout(h, this.dropoutP, true));
      h = release(h, this.conv2.forward(h));
      const shortcut = this.conv_shortcut === null ? x : this.conv_shortcut.forward(x);
      const out = release(h, shortcut.add(h));
      if (shortcut !== x) shortcut.dispose();
      return this.outputScaleFactor === 1 ? out : out.div(this.outputScaleFactor);
    });
  }
}

/** A stride-2 3x3 conv: [B, C, H, W] -> [B, Cout, ceil(H/2), ceil(W/2)] (padding 1, as SD). */
export class Downsample2D extends Module {
  readonly conv: Conv2d;
  constructor(readonly channels: number, readonly outChannels = channels, readonly padding = 1, o: InitOptions = {}) {
    super();
    this.conv = this.module('conv', new Conv2d(channels, outChannels, 3, { ...initOf(o), stride: 2, padding }));
  }
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.channels) {
      throw new Error(`Downsample2D: expected input [B, ${this.channels}, H, W], got [${x.shape.join(', ')}]`);
    }
    // padding 0 means: pad right and bottom by one (asymmetric), as diffusers does
    if (this.padding === 0) return tidy(() => this.conv.forward(pad(x, [0, 1, 0, 1])));
    return this.conv.forward(x);
  }
}

/** Nearest-neighbour x2 (or to `outputSize`), then a 3x3 conv: [B, C, H, W] -> [B, Cout, 2H, 2W]. */
export class Upsample2D extends Module {
  readonly conv: Conv2d;
  constructor(readonly channels: number, readonly outChannels = channels, o: InitOptions = {}) {
    super();
    this.conv = this.module('conv', new Conv2d(channels, outChannels, 3, { ...initOf(o), padding: 1 }));
  }
  forward(x: Tensor, outputSize?: [number, number] | null): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.channels) {
      throw new Error(`Upsample2D: expected input [B, ${this.channels}, H, W], got [${x.shape.join(', ')}]`);
    }
    return tidy(() => {
      // upsample_nearest2d has no bfloat16 kernel in some libtorch builds: go through float32
      const bf16 = x.dtype === 'bfloat16';
      const src = bf16 ? x.to('float32') : x;
      let h = outputSize ? interpolate(src, { size: outputSize, mode: 'nearest' }) : interpolate(src, { scaleFactor: 2, mode: 'nearest' });
      if (bf16) h = h.to('bfloat16');
      return this.conv.forward(h);
    });
  }
}
