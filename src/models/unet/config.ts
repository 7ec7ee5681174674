// UNet2DConditionModel configuration: diffusers' config.json keys and defaults
// (diffusers/models/unets/unet_2d_condition.py), validated, with the SD v1.x preset.
import type { Tensor } from '../../engine/index.js';
import type { InitOptions } from '../../nn/index.js';

export type DownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';
export type ActivationName = 'silu' | 'swish' | 'gelu' | 'relu';

/**
 * The options that SD v1.x-style UNets use, under diffusers' config.json names (snake_case, so a
 * config file maps onto it one to one). Per-block options take one value or one per down block.
 */
export interface UNet2DConditionConfig {
  sample_size: number | null;
  in_channels: number;
  out_channels: number;
  center_input_sample: boolean;
  flip_sin_to_cos: boolean;
  freq_shift: number;
  down_block_types: DownBlockType[];
  mid_block_type: 'UNetMidBlock2DCrossAttn' | null;
  up_block_types: UpBlockType[];
  only_cross_attention: boolean | boolean[];
  block_out_channels: number[];
  layers_per_block: number | number[];
  downsample_padding: number;
  mid_block_scale_factor: number;
  dropout: number;
  act_fn: ActivationName;
  norm_num_groups: number | null;
  norm_eps: number;
  cross_attention_dim: number | number[];
  transformer_layers_per_block: number | number[];
  /** In SD v1 configs this is the NUMBER OF HEADS (a diffusers naming quirk), not their width. */
  attention_head_dim: number | number[];
  use_linear_projection: boolean;
  upcast_attention: boolean;
  resnet_time_scale_shift: 'default' | 'scale_shift';
  time_embedding_dim: number | null;
  time_embedding_act_fn: ActivationName | null;
  timestep_post_act: ActivationName | null;
  conv_in_kernel: number;
  conv_out_kernel: number;
  /** 'text_time' (SDXL): a pooled text embedding and six size/crop numbers (time_ids) added to the time embedding. */
  addition_embed_type: 'text_time' | null;
  /** The sinusoidal width of each time_id (SDXL: 256). */
  addition_time_embed_dim: number | null;
  /** The width of [text_embeds, embedded time_ids] (SDXL: 1280 + 6 * 256 = 2816). */
  projection_class_embeddings_input_dim: number | null;
}

/** diffusers' defaults (UNet2DConditionModel.__init__). */
export const UNET_DEFAULTS: UNet2DConditionConfig = {
  sample_size: null,
  in_channels: 4,
  out_channels: 4,
  center_input_sample: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  only_cross_attention: false,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  dropout: 0,
  act_fn: 'silu',
  norm_num_groups: 32,
  norm_eps: 1e-5,
  cross_attention_dim: 1280,
  transformer_layers_per_block: 1,
  attention_head_dim: 8,
  use_linear_projection: false,
  upcast_attention: false,
  resnet_time_scale_shift: 'default',
  time_embedding_dim: null,
  time_embedding_act_fn: null,
  timestep_post_act: null,
  conv_in_kernel: 3,
  conv_out_kernel: 3,
  addition_embed_type: null,
  addition_time_embed_dim: null,
  projection_class_embeddings_input_dim: null,
};

/**
 * Stable Diffusion v1.x (CompVis/stable-diffusion-v1-4, runwayml/stable-diffusion-v1-5):
 * https://huggingface.co/CompVis/stable-diffusion-v1-4/blob/main/unet/config.json
 */
export function sdV1UNetConfig(): UNet2DConditionConfig {
  return parseUNetConfig({
    sample_size: 64, block_out_channels: [320, 640, 1280, 1280], cross_attention_dim: 768, attention_head_dim: 8,
  });
}

/**
 * Options that diffusers accepts but this implementation does not: each must hold its default
 * (null/false/'default'...) or parsing fails, naming it, instead of silently building another model.
 */
const MUST_BE_DEFAULT: Record<string, unknown> = {
  num_attention_heads: null,
  dual_cross_attention: false,
  class_embed_type: null,
  num_class_embeds: null,
  class_embeddings_concat: false,
  encoder_hid_dim: null,
  encoder_hid_dim_type: null,
  time_cond_proj_dim: null,
  cross_attention_norm: null,
  attention_type: 'default',
  time_embedding_type: 'positional',
  reverse_transformer_layers_per_block: null,
  resnet_skip_time_act: false,
};
/** Accepted and ignored: they only affect block types that this implementation does not build. */
const IGNORED = new Set([
  'resnet_out_scale_factor', 'mid_block_only_cross_attention', 'addition_embed_type_num_heads',
]);
const NULLABLE = new Set(['sample_size', 'mid_block_type', 'norm_num_groups', 'time_embedding_dim', 'time_embedding_act_fn', 'timestep_post_act',
  'addition_embed_type', 'addition_time_embed_dim', 'projection_class_embeddings_input_dim']);

export class UNetConfigError extends Error {
  constructor(message: string) {
    super(`UNet2DConditionModel config: ${message}`);
    this.name = 'UNetConfigError';
  }
}

const ACTIVATIONS = new Set<string>(['silu', 'swish', 'gelu', 'relu']);

/** Parses a diffusers UNet config.json object: fills defaults, validates every value it uses. */
export function parseUNetConfig(json: Record<string, unknown>): UNet2DConditionConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UNetConfigError('expected a JSON object');
  const cfg = structuredClone(UNET_DEFAULTS) as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(structuredClone(json))) {
    if (key.startsWith('_')) continue;
    if (key in MUST_BE_DEFAULT) {
      const def = MUST_BE_DEFAULT[key];
      if (value !== def) {
        const why = key === 'num_attention_heads'
          ? ' (as in diffusers, SD v1 configs give the head count as attention_head_dim)' : '';
        throw new UNetConfigError(`${key}=${JSON.stringify(value)} is not supported (only ${JSON.stringify(def)})${why}`);
      }
      continue;
    }
    if (key in UNET_DEFAULTS) {
      // null means "the default" except for the options whose null is meaningful
      if (value !== null || NULLABLE.has(key)) cfg[key] = value;
      continue;
    }
    if (IGNORED.has(key)) continue;
    throw new UNetConfigError(`unknown option '${key}'`);
  }
  const c = cfg as unknown as UNet2DConditionConfig;
  validate(c);
  return c;
}

function validate(c: UNet2DConditionConfig): void {
  const fail = (msg: string): never => {
    throw new UNetConfigError(msg);
  };
  const posInt = (v: unknown, name: string) => {
    if (!Number.isInteger(v) || (v as number) <= 0) fail(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  for (const k of ['down_block_types', 'up_block_types', 'block_out_channels'] as const) {
    if (!Array.isArray(c[k]) || c[k].length === 0) fail(`${k} must be a non-empty list, got ${JSON.stringify(c[k])}`);
  }
  const n = c.down_block_types.length;
  if (c.up_block_types.length !== n) {
    fail(`up_block_types (${c.up_block_types?.length}) must have as many entries as down_block_types (${n})`);
  }
  if (c.block_out_channels.length !== n) fail(`block_out_channels (${c.block_out_channels.length}) must have one entry per down block (${n})`);
  for (const t of c.down_block_types) if (t !== 'CrossAttnDownBlock2D' && t !== 'DownBlock2D') fail(`unsupported down block type '${t}'`);
  for (const t of c.up_block_types) if (t !== 'CrossAttnUpBlock2D' && t !== 'UpBlock2D') fail(`unsupported up block type '${t}'`);
  if (c.mid_block_type !== null && c.mid_block_type !== 'UNetMidBlock2DCrossAttn') fail(`unsupported mid_block_type '${c.mid_block_type}'`);
  c.block_out_channels.forEach((v, i) => posInt(v, `block_out_channels[${i}]`));
  posInt(c.in_channels, 'in_channels');
  posInt(c.out_channels, 'out_channels');
  for (const [name, v] of [['layers_per_block', c.layers_per_block], ['cross_attention_dim', c.cross_attention_dim],
    ['transformer_layers_per_block', c.transformer_layers_per_block], ['attention_head_dim', c.attention_head_dim],
    ['only_cross_attention', c.only_cross_attention]] as const) {
    if (Array.isArray(v)) {
      if (v.length !== n) fail(`${name} has ${v.length} entries; it must be one value or one per down block (${n})`);
      if (name !== 'only_cross_attention') (v as unknown[]).forEach((x, i) => posInt(x, `${name}[${i}]`));
    } else if (name !== 'only_cross_attention') posInt(v, name);
  }
  for (const [name, v] of [['act_fn', c.act_fn], ['time_embedding_act_fn', c.time_embedding_act_fn], ['timestep_post_act', c.timestep_post_act]] as const) {
    if (v !== null && !ACTIVATIONS.has(v)) fail(`${name} '${v}' is not supported (one of ${[...ACTIVATIONS].join(', ')})`);
  }
  if (c.resnet_time_scale_shift !== 'default' && c.resnet_time_scale_shift !== 'scale_shift') {
    fail(`resnet_time_scale_shift '${c.resnet_time_scale_shift}' is not supported`);
  }
  if (c.norm_num_groups === null) fail('norm_num_groups=null is not supported');
  if (c.addition_embed_type !== null) {
    if (c.addition_embed_type !== 'text_time') fail(`addition_embed_type '${c.addition_embed_type}' is not supported (only 'text_time', SDXL's)`);
    posInt(c.addition_time_embed_dim, 'addition_time_embed_dim');
    posInt(c.projection_class_embeddings_input_dim, 'projection_class_embeddings_input_dim');
  }
  if (c.time_embedding_dim !== null) posInt(c.time_embedding_dim, 'time_embedding_dim');
  if (!(c.norm_eps > 0)) fail(`norm_eps must be positive, got ${c.norm_eps}`);
  if (!Number.isInteger(c.downsample_padding) || c.downsample_padding < 0) fail(`downsample_padding must be 0 or more, got ${c.downsample_padding}`);
  for (const k of [c.conv_in_kernel, c.conv_out_kernel]) if (!Number.isInteger(k) || k % 2 !== 1) fail(`conv kernels must be odd, got ${k}`);
  const heads = perBlock(c.attention_head_dim, n, 'attention_head_dim');
  c.down_block_types.forEach((t, i) => {
    const ch = c.block_out_channels[i]!;
    if (ch % c.norm_num_groups! !== 0) fail(`block_out_channels[${i}]=${ch} does not split into norm_num_groups=${c.norm_num_groups}`);
    if (t === 'CrossAttnDownBlock2D' && ch % heads[i]! !== 0) fail(`block_out_channels[${i}]=${ch} does not split into ${heads[i]} attention heads`);
  });
}

/** One value per block: repeats a scalar, checks a list's length. */
export function perBlock<T>(v: T | T[], n: number, name: string): T[] {
  if (Array.isArray(v)) {
    if (v.length !== n) throw new UNetConfigError(`${name} has ${v.length} entries for ${n} blocks`);
    return v.slice();
  }
  return Array.from({ length: n }, () => v);
}

/** The activation a config names, as a function. */
export function activation(name: ActivationName): (x: Tensor) => Tensor {
  switch (name) {
    case 'silu':
    case 'swish': return (x) => x.silu();
    case 'gelu': return (x) => x.gelu();
    case 'relu': return (x) => x.relu();
    default: throw new UNetConfigError(`unknown activation '${String(name)}'`);
  }
}

/** Only the allocation options (device, dtype, generator) of a wider options object: spreading the
 * whole object into a layer would leak fields such as `groups` or `bias` into it. */
export function initOf(o: InitOptions): InitOptions {
  return { device: o.device, dtype: o.dtype, generator: o.generator };
}
