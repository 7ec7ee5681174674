// The VAE's Encoder and Decoder and the diagonal Gaussian posterior, as diffusers' autoencoders/vae.py
// (Rombach et al. 2022, arXiv:2112.10752: the KL-regularized autoencoder of latent diffusion).
import { randn, tidy, type Generator, type Tensor } from '../../engine/index.js';
import { Conv2d, GroupNorm, Module, ModuleList, type InitOptions } from '../../nn/index.js';
import type { AutoencoderKLConfig } from './config.js';
import { activation, DownEncoderBlock2D, UNetMidBlock2D, UpDecoderBlock2D, VAE_NORM_EPS } from './unet-2d-blocks.js';

/**
 * image [B, in, H, W] -> moments [B, 2*latent, H/2^(n-1), W/2^(n-1)] (mean and log-variance).
 * Keys: conv_in, down_blocks.N, mid_block, conv_norm_out, conv_out.
 */
export class Encoder extends Module {
  readonly conv_in: Conv2d;
  readonly down_blocks: ModuleList<DownEncoderBlock2D>;
  readonly mid_block: UNetMidBlock2D;
  readonly conv_norm_out: GroupNorm;
  readonly conv_out: Conv2d;
  private readonly act: (x: Tensor) => Tensor;

  constructor(c: AutoencoderKLConfig, o: InitOptions = {}) {
    super();
    const ch = c.block_out_channels;
    const b = { groups: c.norm_num_groups, act: c.act_fn };
    this.conv_in = this.module('conv_in', new Conv2d(c.in_channels, ch[0]!, 3, { ...o, padding: 1 }));
    this.down_blocks = this.module('down_blocks', new ModuleList(ch.map((out, i) =>
      new DownEncoderBlock2D(i === 0 ? ch[0]! : ch[i - 1]!, out, c.layers_per_block, i < ch.length - 1, b, o))));
    const top = ch[ch.length - 1]!;
    this.mid_block = this.module('mid_block', new UNetMidBlock2D(top, c.mid_block_add_attention, b, o));
    this.conv_norm_out = this.module('conv_norm_out', new GroupNorm(c.norm_num_groups, top, VAE_NORM_EPS, true, o));
    this.conv_out = this.module('conv_out', new Conv2d(top, 2 * c.latent_channels, 3, { ...o, padding: 1 })); // double_z
    this.act = activation(c.act_fn);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.conv_in.forward(x);
      for (const blk of this.down_blocks) h = blk.forward(h);
      h = this.mid_block.forward(h);
      return this.conv_out.forward(this.act(this.conv_norm_out.forward(h)));
    });
  }
}

/**
 * latent [B, latent, h, w] -> image [B, out, h*2^(n-1), w*2^(n-1)]. Each up block has
 * layers_per_block + 1 resnets. Keys: conv_in, up_blocks.N, mid_block, conv_norm_out, conv_out.
 */
export class Decoder extends Module {
  readonly conv_in: Conv2d;
  readonly up_blocks: ModuleList<UpDecoderBlock2D>;
  readonly mid_block: UNetMidBlock2D;
  readonly conv_norm_out: GroupNorm;
  readonly conv_out: Conv2d;
  private readonly act: (x: Tensor) => Tensor;

  constructor(c: AutoencoderKLConfig, o: InitOptions = {}) {
    super();
    const rev = [...c.block_out_channels].reverse();
    const b = { groups: c.norm_num_groups, act: c.act_fn };
    this.conv_in = this.module('conv_in', new Conv2d(c.latent_channels, rev[0]!, 3, { ...o, padding: 1 }));
    // diffusers registers up_blocks before mid_block: the state-dict order follows
    this.up_blocks = this.module('up_blocks', new ModuleList(rev.map((out, i) =>
      new UpDecoderBlock2D(i === 0 ? rev[0]! : rev[i - 1]!, out, c.layers_per_block + 1, i < rev.length - 1, b, o))));
    this.mid_block = this.module('mid_block', new UNetMidBlock2D(rev[0]!, c.mid_block_add_attention, b, o));
    const bottom = rev[rev.length - 1]!;
    this.conv_norm_out = this.module('conv_norm_out', new GroupNorm(c.norm_num_groups, bottom, VAE_NORM_EPS, true, o));
    this.conv_out = this.module('conv_out', new Conv2d(bottom, c.out_channels, 3, { ...o, padding: 1 }));
    this.act = activation(c.act_fn);
  }

  forward(z: Tensor): Tensor {
    return tidy(() => {
      let h = this.mid_block.forward(this.conv_in.forward(z));
      for (const blk of this.up_blocks) h = blk.forward(h);
      return this.conv_out.forward(this.act(this.conv_norm_out.forward(h)));
    });
  }
}

/**
 * N(mean, diag(exp(logvar))) over the latents, from moments [B, 2C, h, w] split along channels
 * (logvar clamped to [-30, 20]). Its tensors are ordinary tracked tensors: a tidy() that should keep
 * them must return them (e.g. `dist.mean`), not this object, which tidy does not look inside.
 */
export class DiagonalGaussianDistribution {
  /** [B, C, h, w] */
  readonly mean: Tensor;
  /** log sigma^2, clamped to [-30, 20]. [B, C, h, w] */
  readonly logvar: Tensor;
  /** exp(logvar / 2). [B, C, h, w] */
  readonly std: Tensor;

  constructor(moments: Tensor) {
    if (moments.ndim < 2 || moments.shape[1]! % 2 !== 0) {
      throw new Error(`DiagonalGaussianDistribution: moments need an even channel count (mean and logvar), got [${moments.shape.join(', ')}]`);
    }
    const [mean, logvar] = tidy(() => {
      const [m, lv] = moments.chunk(2, 1);
      return [m!.contiguous(), lv!.clamp(-30, 20)];
    });
    this.mean = mean!;
    this.logvar = logvar!;
    this.std = tidy(() => this.logvar.mul(0.5).exp());
  }

  /** exp(logvar). */
  variance(): Tensor {
    return this.logvar.exp();
  }

  /** mean + std * noise, noise ~ N(0, 1) from the generator (drawn on its device, as diffusers' randn_tensor). */
  sample(generator?: Generator): Tensor {
    return tidy(() => {
      const noise = randn(this.mean.shape, { generator, dtype: this.mean.dtype, device: this.mean.device });
      return this.mean.add(this.std.mul(noise));
    });
  }

  /** The most likely latent: the mean (a copy). */
  mode(): Tensor {
    return this.mean.clone();
  }

  /** KL(N(mean, var) || N(0, 1)) summed over all but the batch dimension: [B]. */
  kl(): Tensor {
    const dims = Array.from({ length: this.mean.ndim - 1 }, (_, i) => i + 1);
    return tidy(() => this.mean.square().add(this.logvar.exp()).sub(1).sub(this.logvar).sum(dims).mul(0.5));
  }

  dispose(): void {
    for (const t of [this.mean, this.logvar, this.std]) t.dispose();
  }
}
