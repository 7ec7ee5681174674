// AutoencoderKL config (vae/config.json as diffusers writes it), with the defaults of diffusers'
// AutoencoderKL.__init__ (autoencoders/autoencoder_kl.py). Keys keep their snake_case JSON names.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const VAE_ACTIVATIONS = ['silu', 'swish', 'gelu', 'relu', 'mish'] as const;
export type VaeActivation = (typeof VAE_ACTIVATIONS)[number];

export interface AutoencoderKLConfig {
  in_channels: number;
  out_channels: number;
  /** Only 'DownEncoderBlock2D' (the SD VAE). */
  down_block_types: string[];
  /** Only 'UpDecoderBlock2D'. */
  up_block_types: string[];
  block_out_channels: number[];
  layers_per_block: number;
  act_fn: VaeActivation;
  latent_channels: number;
  norm_num_groups: number;
  sample_size: number;
  /** Latents for the UNet are encode(x).sample() * scaling_factor (0.18215 for SD v1); the pipeline applies it. */
  scaling_factor: number;
  shift_factor: number | null;
  /** Run this VAE in float32 even when the rest runs in half precision (SD v1's VAE overflows in fp16). */
  force_upcast: boolean;
  use_quant_conv: boolean;
  use_post_quant_conv: boolean;
  mid_block_add_attention: boolean;
}

export const AUTOENCODER_KL_DEFAULTS: Readonly<AutoencoderKLConfig> = Object.freeze({
  in_channels: 3,
  out_channels: 3,
  down_block_types: ['DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D'],
  block_out_channels: [64],
  layers_per_block: 1,
  act_fn: 'silu' as const,
  latent_channels: 4,
  norm_num_groups: 32,
  sample_size: 32,
  scaling_factor: 0.18215,
  shift_factor: null,
  force_upcast: true,
  use_quant_conv: true,
  use_post_quant_conv: true,
  mid_block_add_attention: true,
});

/** The VAE of Stable Diffusion v1.x (CompVis/stable-diffusion-v1-4 vae/config.json). */
export const SD_V1_VAE_CONFIG: Readonly<AutoencoderKLConfig> = Object.freeze({
  ...AUTOENCODER_KL_DEFAULTS,
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
  block_out_channels: [128, 256, 512, 512],
  layers_per_block: 2,
  sample_size: 512,
});

export class VaeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaeConfigError';
  }
}

const isPosInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isBool = (v: unknown) => typeof v === 'boolean';
const isStrList = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string');
const isIntList = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every(isPosInt);

/**
 * Parses vae/config.json: unknown keys (latents_mean, _diffusers_version, ...) are ignored,
 * missing keys take diffusers' defaults, wrong types and unsupported values throw.
 */
export function parseAutoencoderKLConfig(raw: unknown, where = 'vae config'): AutoencoderKLConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new VaeConfigError(`${where}: must be a JSON object`);
  const r = raw as Record<string, unknown>;
  if (typeof r._class_name === 'string' && r._class_name !== 'AutoencoderKL') {
    throw new VaeConfigError(`${where}: _class_name is '${r._class_name}', but only AutoencoderKL is supported`);
  }
  const d = AUTOENCODER_KL_DEFAULTS;
  const pick = <T>(key: keyof AutoencoderKLConfig, check: (v: unknown) => boolean, what: string): T => {
    const v = r[key];
    if (v === undefined || v === null) return d[key] as T;
    if (!check(v)) throw new VaeConfigError(`${where}: ${key} must be ${what}, got ${JSON.stringify(v)}`);
    return v as T;
  };
  const config: AutoencoderKLConfig = {
    in_channels: pick('in_channels', isPosInt, 'a positive integer'),
    out_channels: pick('out_channels', isPosInt, 'a positive integer'),
    down_block_types: [...pick<string[]>('down_block_types', isStrList, 'a list of block names')],
    up_block_types: [...pick<string[]>('up_block_types', isStrList, 'a list of block names')],
    block_out_channels: [...pick<number[]>('block_out_channels', isIntList, 'a list of positive integers')],
    layers_per_block: pick('layers_per_block', isPosInt, 'a positive integer'),
    act_fn: pick('act_fn', (v) => typeof v === 'string', 'a string'),
    latent_channels: pick('latent_channels', isPosInt, 'a positive integer'),
    norm_num_groups: pick('norm_num_groups', isPosInt, 'a positive integer'),
    sample_size: typeof r.sample_size === 'number' || r.sample_size === undefined || r.sample_size === null
      ? pick('sample_size', isPosInt, 'a positive integer')
      : d.sample_size, // some configs give [h, w]: only informative here
    scaling_factor: pick('scaling_factor', isNum, 'a number'),
    shift_factor: pick('shift_factor', isNum, 'a number or null'),
    force_upcast: pick('force_upcast', isBool, 'true or false'),
    use_quant_conv: pick('use_quant_conv', isBool, 'true or false'),
    use_post_quant_conv: pick('use_post_quant_conv', isBool, 'true or false'),
    mid_block_add_attention: pick('mid_block_add_attention', isBool, 'true or false'),
  };
  validateAutoencoderKLConfig(config, where);
  return config;
}

/** Checks a config (also one built in code) before a model is built from it. */
export function validateAutoencoderKLConfig(c: AutoencoderKLConfig, where = 'vae config'): void {
  const fail = (m: string): never => {
    throw new VaeConfigError(`${where}: ${m}`);
  };
  const n = c.block_out_channels.length;
  if (n === 0) fail('block_out_channels is empty');
  if (c.down_block_types.length !== n) fail(`down_block_types has ${c.down_block_types.length} entries but block_out_channels has ${n}`);
  if (c.up_block_types.length !== n) fail(`up_block_types has ${c.up_block_types.length} entries but block_out_channels has ${n}`);
  const badDown = c.down_block_types.find((t) => t !== 'DownEncoderBlock2D');
  if (badDown !== undefined) fail(`down block type '${badDown}' is not supported (only DownEncoderBlock2D)`);
  const badUp = c.up_block_types.find((t) => t !== 'UpDecoderBlock2D');
  if (badUp !== undefined) fail(`up block type '${badUp}' is not supported (only UpDecoderBlock2D)`);
  if (!(VAE_ACTIVATIONS as readonly string[]).includes(c.act_fn)) fail(`act_fn '${c.act_fn}' is not supported (expected one of ${VAE_ACTIVATIONS.join(', ')})`);
  for (const ch of c.block_out_channels) {
    if (ch % c.norm_num_groups !== 0) fail(`block_out_channels ${ch} does not split into norm_num_groups ${c.norm_num_groups}`);
  }
  for (const k of ['in_channels', 'out_channels', 'latent_channels', 'layers_per_block', 'norm_num_groups'] as const) {
    if (!isPosInt(c[k])) fail(`${k} must be a positive integer, got ${c[k]}`);
  }
}

/** Reads config.json from a file, the vae folder, or a pipeline folder with vae/ inside. */
export function loadAutoencoderKLConfig(fileOrDir: string): AutoencoderKLConfig {
  let file = fileOrDir;
  let text: string;
  try {
    if (statSync(file).isDirectory()) {
      const nested = path.join(file, 'vae', 'config.json');
      file = isFile(nested) ? nested : path.join(file, 'config.json');
    }
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new VaeConfigError(`cannot read vae config '${file}': ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new VaeConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseAutoencoderKLConfig(json, file);
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
