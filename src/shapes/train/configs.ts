// The Shapes-64 model's architecture, as the config.json files a diffusers folder holds: a VAE
// (64x64x3 -> 8x8x4), a small CLIP text encoder over the domain tokenizer, a small UNet on 8x8
// latents, and Stable Diffusion v1's noise schedule. Written out as is by the exporter and parsed by
// the same code that reads a Hub checkpoint, so the trained folder loads like SD v1.
import { buildShapesVocab, SHAPES_BOS_TOKEN, SHAPES_EOS_TOKEN } from '../tokenizer.js';

/** diffusers' AutoencoderKL config.json (scaling_factor is measured after VAE training). */
export function shapesVaeConfig(scalingFactor = 1): Record<string, unknown> {
  return {
    _class_name: 'AutoencoderKL',
    act_fn: 'silu',
    block_out_channels: [16, 32, 64, 64],
    down_block_types: Array(4).fill('DownEncoderBlock2D'),
    up_block_types: Array(4).fill('UpDecoderBlock2D'),
    in_channels: 3,
    out_channels: 3,
    latent_channels: 4,
    layers_per_block: 1,
    norm_num_groups: 16,
    sample_size: 64,
    scaling_factor: scalingFactor,
    force_upcast: true,
    mid_block_add_attention: true,
    use_quant_conv: true,
    use_post_quant_conv: true,
  };
}

/** transformers' CLIPTextConfig config.json, over the domain vocabulary (613 tokens). */
export function shapesTextEncoderConfig(): Record<string, unknown> {
  const { vocab } = buildShapesVocab();
  const eos = vocab[SHAPES_EOS_TOKEN]!;
  return {
    architectures: ['CLIPTextModel'],
    model_type: 'clip_text_model',
    vocab_size: Object.keys(vocab).length,
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    max_position_embeddings: 77,
    hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
    projection_dim: 64,
    bos_token_id: vocab[SHAPES_BOS_TOKEN]!,
    eos_token_id: eos,
    pad_token_id: eos,
    attention_dropout: 0,
    initializer_factor: 1,
    initializer_range: 0.02,
  };
}

/** diffusers' UNet2DConditionModel config.json: 8x8x4 latents, three levels (8, 4, 2), cross-attention on the text. */
export function shapesUNetConfig(): Record<string, unknown> {
  return {
    _class_name: 'UNet2DConditionModel',
    sample_size: 8,
    in_channels: 4,
    out_channels: 4,
    block_out_channels: [64, 128, 128],
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    mid_block_type: 'UNetMidBlock2DCrossAttn',
    layers_per_block: 1,
    cross_attention_dim: 64,
    attention_head_dim: 4,
    norm_num_groups: 32,
    norm_eps: 1e-5,
    act_fn: 'silu',
    flip_sin_to_cos: true,
    freq_shift: 0,
  };
}

/** Stable Diffusion v1's DDIM scheduler config: the noise schedule the UNet is trained on. */
export function shapesSchedulerConfig(): Record<string, unknown> {
  return {
    _class_name: 'DDIMScheduler',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    num_train_timesteps: 1000,
    clip_sample: false,
    set_alpha_to_one: false,
    steps_offset: 1,
    prediction_type: 'epsilon',
    timestep_spacing: 'leading',
  };
}

export const SHAPES_MODEL_INDEX = {
  _class_name: 'StableDiffusionPipeline',
  unet: ['diffusers', 'UNet2DConditionModel'],
  vae: ['diffusers', 'AutoencoderKL'],
  text_encoder: ['transformers', 'CLIPTextModel'],
  tokenizer: ['transformers', 'CLIPTokenizer'],
  scheduler: ['diffusers', 'DDIMScheduler'],
};
