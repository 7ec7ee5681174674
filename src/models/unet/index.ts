// The Stable Diffusion v1 UNet (diffusers' UNet2DConditionModel): config, parts and the model.
export {
  UNET_DEFAULTS, UNetConfigError, activation, parseUNetConfig, perBlock, sdV1UNetConfig,
  type ActivationName, type DownBlockType, type UNet2DConditionConfig, type UpBlockType,
} from './config.js';
export { TimestepEmbedding, Timesteps, getTimestepEmbedding, timestepsForBatch, type TimestepEmbeddingOptions } from './embeddings.js';
export { Downsample2D, ResnetBlock2D, Upsample2D, type ResnetBlock2DOptions } from './resnet.js';
export {
  Attention, BasicTransformerBlock, Dropout, FeedForward, GEGLU, Transformer2DModel,
  type AttentionOptions, type TransformerBlockOptions, type Transformer2DOptions,
} from './attention.js';
export {
  CrossAttnDownBlock2D, CrossAttnUpBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D,
  type BlockOptions, type CrossAttnOptions, type DownBlock, type DownBlockOutput, type UpBlock,
} from './unet-blocks.js';
export { UNet2DConditionModel, type AddedConditions } from './unet-2d-condition.js';
