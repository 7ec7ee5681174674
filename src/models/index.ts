/**
 * 'imagic/models': the building blocks under the main API: the Stable Diffusion components and their
 * loading, the schedulers, the lower-level pipelines (text-to-image, img2img, DDIM inversion, Imagic's
 * stages and sessions), modules and LoRA, and safetensors / diffusers-folder I/O.
 *
 * @module imagic/models
 */
export * from './clip/index.js';
export * from './unet/index.js';
export {
  AUTOENCODER_KL_DEFAULTS, AutoencoderKL, Decoder, DiagonalGaussianDistribution, DownEncoderBlock2D, Encoder, SD_V1_VAE_CONFIG, UNetMidBlock2D,
  UpDecoderBlock2D, VaeAttention, VaeConfigError, convertLegacyVaeAttentionKeys, currentVaeAttentionKey, loadAutoencoderKLConfig,
  parseAutoencoderKLConfig, validateAutoencoderKLConfig, type AutoencoderKLConfig, type AutoencoderKLLoadOptions, type VaeActivation,
} from './vae/index.js';
export * from '../schedulers/index.js';
export * from '../pipelines/index.js';
export * from '../nn/index.js';
export * from '../io/safetensors.js';
export * from '../io/diffusers.js';
export * from '../io/load.js';
export type { JsonObject } from '../io/config.js';
export type { PlanItem } from '../io/load.js';
export { VAE_ACTIVATIONS } from './vae/config.js';
export type { VaeBlockOptions } from './vae/unet-2d-blocks.js';
export type { DownBlockOptions, MidBlockOptions, UpBlockOptions } from './unet/unet-blocks.js';
