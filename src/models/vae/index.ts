// The Stable Diffusion VAE (AutoencoderKL) and its parts, named and keyed as in diffusers.
export { AutoencoderKL, convertLegacyVaeAttentionKeys, currentVaeAttentionKey, type AutoencoderKLLoadOptions } from './autoencoder-kl.js';
export { Encoder, Decoder, DiagonalGaussianDistribution } from './vae.js';
export {
  DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D, ResnetBlock2D, Downsample2D, Upsample2D, VaeAttention, activation,
} from './unet-2d-blocks.js';
export {
  AUTOENCODER_KL_DEFAULTS, SD_V1_VAE_CONFIG, VaeConfigError, loadAutoencoderKLConfig, parseAutoencoderKLConfig,
  validateAutoencoderKLConfig, type AutoencoderKLConfig, type VaeActivation,
} from './config.js';
