// AutoencoderKL: the Stable Diffusion VAE (image <-> latent), as diffusers' autoencoders/autoencoder_kl.py,
// and its loading (legacy attention keys renamed). encode/decode work on unscaled latents: scaling_factor is the pipeline's.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { noGrad, tidy, type DType, type Device, type Generator, type Tensor } from '../../engine/index.js';
import { Conv2d, Module, type InitOptions } from '../../nn/index.js';
import { loadSafetensors } from '../../io/safetensors.js';
import { AUTOENCODER_KL_DEFAULTS, loadAutoencoderKLConfig, validateAutoencoderKLConfig, type AutoencoderKLConfig } from './config.js';
import { Decoder, DiagonalGaussianDistribution, Encoder } from './vae.js';

export interface AutoencoderKLLoadOptions {
  /** Parameter dtype (default float32; SD v1's VAE needs float32 unless config.force_upcast is false). */
  dtype?: DType;
  device?: Device;
  /** Weight-file variant: 'fp16' reads diffusion_pytorch_model.fp16.safetensors. */
  variant?: string;
}

/** Keys: encoder.*, decoder.*, quant_conv.*, post_quant_conv.* (exactly diffusers' state dict). */
export class AutoencoderKL extends Module {
  readonly config: Readonly<AutoencoderKLConfig>;
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  /** 1x1 conv on the moments [B, 2C, h, w]. */
  readonly quant_conv: Conv2d | null;
  /** 1x1 conv on the latent [B, C, h, w] before decoding. */
  readonly post_quant_conv: Conv2d | null;

  /** Build on device 'meta' to allocate nothing (for key/shape lists, or before loadStateDict). */
  constructor(config: Partial<AutoencoderKLConfig> = {}, o: InitOptions = {}) {
    super();
    const c: AutoencoderKLConfig = { ...AUTOENCODER_KL_DEFAULTS, ...config };
    validateAutoencoderKLConfig(c, 'AutoencoderKL config');
    this.config = Object.freeze(c);
    this.encoder = this.module('encoder', new Encoder(c, o));
    this.decoder = this.module('decoder', new Decoder(c, o));
    const z = c.latent_channels;
    this.quant_conv = c.use_quant_conv ? this.module('quant_conv', new Conv2d(2 * z, 2 * z, 1, o)) : null;
    this.post_quant_conv = c.use_post_quant_conv ? this.module('post_quant_conv', new Conv2d(z, z, 1, o)) : null;
  }

  /** How much smaller the latent is than the image in each spatial dimension (8 for SD v1). */
  get downscaleFactor(): number {
    return 2 ** (this.config.block_out_channels.length - 1);
  }

  /** image [B, in, H, W] in [-1, 1] -> the posterior over latents [B, latent, H/8, W/8] (SD v1). */
  encode(image: Tensor): DiagonalGaussianDistribution {
    const c = this.config;
    if (image.ndim !== 4 || image.shape[1] !== c.in_channels) {
      throw new Error(`AutoencoderKL.encode: expected an image [B, ${c.in_channels}, H, W], got [${image.shape.join(', ')}]`);
    }
    const moments = tidy(() => {
      const h = this.encoder.forward(image.to(this.encoder.conv_in.weight.dtype));
      return this.quant_conv ? this.quant_conv.forward(h) : h; // [B, 2C, h, w]
    });
    try {
      return new DiagonalGaussianDistribution(moments);
    } finally {
      moments.dispose();
    }
  }

  /** latent [B, latent, h, w] (unscaled: divide by scaling_factor first) -> image [B, out, 8h, 8w] (SD v1), about [-1, 1]. */
  decode(latent: Tensor): Tensor {
    const c = this.config;
    if (latent.ndim !== 4 || latent.shape[1] !== c.latent_channels) {
      throw new Error(`AutoencoderKL.decode: expected a latent [B, ${c.latent_channels}, h, w], got [${latent.shape.join(', ')}]`);
    }
    return tidy(() => {
      const z = latent.to(this.decoder.conv_in.weight.dtype);
      return this.decoder.forward(this.post_quant_conv ? this.post_quant_conv.forward(z) : z);
    });
  }

  /** encode -> (sample or mean) -> decode: the reconstruction. */
  forward(image: Tensor, opts: { samplePosterior?: boolean; generator?: Generator } = {}): Tensor {
    return tidy(() => {
      const dist = this.encode(image);
      const z = opts.samplePosterior ? dist.sample(opts.generator) : dist.mean;
      return this.decode(z);
    });
  }

  /**
   * Loads a diffusers VAE: a pipeline folder (with vae/ inside) or the vae folder itself, holding
   * config.json and diffusion_pytorch_model.safetensors. Legacy attention keys are renamed; any other
   * missing, unexpected or mis-shaped key is an error listing them all.
   */
  static fromPretrained(dir: string, opts: AutoencoderKLLoadOptions = {}): AutoencoderKL {
    const vaeDir = existsSync(path.join(dir, 'vae', 'config.json')) ? path.join(dir, 'vae') : dir;
    if (!existsSync(vaeDir) || !statSync(vaeDir).isDirectory()) throw new Error(`AutoencoderKL.fromPretrained: '${dir}' is not a folder`);
    const config = loadAutoencoderKLConfig(path.join(vaeDir, 'config.json'));
    const name = `diffusion_pytorch_model${opts.variant ? `.${opts.variant}` : ''}`;
    const file = path.join(vaeDir, `${name}.safetensors`);
    if (!existsSync(file)) {
      const bin = existsSync(path.join(vaeDir, `${name}.bin`)) ? ` (only ${name}.bin is there: PyTorch pickles are not read; convert it to safetensors)` : '';
      throw new Error(`AutoencoderKL.fromPretrained: no ${name}.safetensors in '${vaeDir}'${bin}`);
    }
    const model = new AutoencoderKL(config, { device: 'meta', dtype: opts.dtype ?? 'float32' });
    const loaded = loadSafetensors(file, { dtype: opts.dtype ?? 'float32', device: opts.device });
    const { stateDict } = convertLegacyVaeAttentionKeys(loaded);
    try {
      model.loadStateDict(stateDict, { source: file });
    } finally {
      for (const t of stateDict.values()) t.dispose();
    }
    return model.eval();
  }
}

const LEGACY_ATTENTION = /^(.*\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$/;
const NEW_NAME: Record<string, string> = { query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' };

/** The current name of a legacy VAE attention key (e.g. '...attentions.0.query.weight' -> '...attentions.0.to_q.weight'), else null. */
export function currentVaeAttentionKey(key: string): string | null {
  const m = LEGACY_ATTENTION.exec(key);
  return m === null ? null : `${m[1]}${NEW_NAME[m[2]!]}.${m[3]}`;
}

/**
 * Renames the VAE attention keys of old diffusers checkpoints (query, key, value, proj_attn; weights
 * sometimes stored as 1x1 convs [C, C, 1, 1]) to the current ones (to_q, to_k, to_v, to_out.0; [C, C]),
 * as diffusers' _convert_deprecated_attention_blocks does. Other keys pass through unchanged (the same
 * tensors). A reshaped weight is a view of the old one, whose handle is disposed. Returns a new Map;
 * `renamed` lists the old keys that were converted.
 */
export function convertLegacyVaeAttentionKeys(sd: Map<string, Tensor>): { stateDict: Map<string, Tensor>; renamed: string[] } {
  const out = new Map<string, Tensor>();
  const renamed: string[] = [];
  for (const [key, t] of sd) {
    const newKey = currentVaeAttentionKey(key);
    if (newKey === null) {
      out.set(key, t);
      continue;
    }
    if (sd.has(newKey) || out.has(newKey)) throw new Error(`state dict has both '${key}' and '${newKey}'`);
    let value = t;
    if (key.endsWith('.weight')) {
      const s = t.shape;
      if (s.length === 4 && s[2] === 1 && s[3] === 1) {
        value = noGrad(() => t.reshape([s[0]!, s[1]!]));
        t.dispose();
      } else if (s.length !== 2) {
        throw new Error(`legacy attention weight '${key}' has shape [${s.join(', ')}]; expected [C, C] or [C, C, 1, 1]`);
      }
    }
    out.set(newKey, value);
    renamed.push(key);
  }
  return { stateDict: out, renamed };
}
