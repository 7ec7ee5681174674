// The reverse of keys.ts for SD v1: a diffusers UNet / AutoencoderKL or transformers CLIPTextModel key
// -> the key and stored shape of the original LDM single-file layout (CompVis/stable-diffusion's
// ldm/models/diffusion/ddpm.py names), and the tensors to write such a file (safetensors.ts writeSafetensorsStreamed), for tests and benchmarks.
import type { DType, Tensor } from '../../engine/index.js';
import type { StreamedTensor } from '../safetensors.js';
import { CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX } from './keys.js';

/** The three models of an SD v1 single file. */
export type Sd1Component = 'unet' | 'vae' | 'text_encoder';

/** What the reverse mapping needs from the diffusers configs. */
export interface LdmLayout {
  /** UNet resnets per down block (LDM's num_res_blocks); up blocks hold one more. */
  layersPerBlock: number;
  /** Per UNet up block (diffusers order): it has attentions, so its upsampler sits at LDM index 2, not 1. */
  upBlockHasAttention: boolean[];
  /** VAE resolution levels (len(block_out_channels)). */
  vaeLevels: number;
}

/** The layout of a diffusers UNet2DConditionModel config.json and AutoencoderKL config.json. */
export function ldmLayout(unet: Record<string, unknown>, vae: Record<string, unknown>): LdmLayout {
  return {
    layersPerBlock: unet.layers_per_block as number,
    upBlockHasAttention: (unet.up_block_types as string[]).map((t) => t.startsWith('CrossAttn')),
    vaeLevels: (vae.block_out_channels as number[]).length,
  };
}

const RESNET: Record<string, string> = {
  norm1: 'in_layers.0', conv1: 'in_layers.2', time_emb_proj: 'emb_layers.1', norm2: 'out_layers.0', conv2: 'out_layers.3', conv_shortcut: 'skip_connection',
};

function resnet(prefix: string, rest: string): string | null {
  const m = /^(norm1|conv1|time_emb_proj|norm2|conv2|conv_shortcut)\.(weight|bias)$/.exec(rest);
  return m ? `${prefix}${RESNET[m[1]!]}.${m[2]}` : null;
}

/**
 * A diffusers UNet key -> the LDM key without 'model.diffusion_model.', or null. With L = layersPerBlock:
 *
 *   conv_in -> input_blocks.0.0     time_embedding.linear_1/2 -> time_embed.0/2    conv_norm_out / conv_out -> out.0 / out.2
 *   down_blocks.b.resnets.l / attentions.l -> input_blocks.(1 + b(L+1) + l).0 / .1
 *   down_blocks.b.downsamplers.0.conv      -> input_blocks.(1 + b(L+1) + L).0.op
 *   mid_block.resnets.0 / attentions.0 / resnets.1 -> middle_block.0 / 1 / 2
 *   up_blocks.b.resnets.l / attentions.l   -> output_blocks.(b(L+1) + l).0 / .1   (l = 0..L)
 *   up_blocks.b.upsamplers.0.conv          -> output_blocks.(b(L+1) + L).1.conv, or .2.conv after an attention
 */
export function ldmUnetKey(key: string, layout: LdmLayout): string | null {
  const L = layout.layersPerBlock;
  const simple: [string, string][] = [
    ['conv_in.', 'input_blocks.0.0.'], ['time_embedding.linear_1.', 'time_embed.0.'], ['time_embedding.linear_2.', 'time_embed.2.'],
    ['conv_norm_out.', 'out.0.'], ['conv_out.', 'out.2.'],
  ];
  for (const [from, to] of simple) if (key.startsWith(from)) return to + key.slice(from.length);
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const i = 1 + Number(m[1]) * (L + 1) + Number(m[3]);
    return m[2] === 'resnets' ? resnet(`input_blocks.${i}.0.`, m[4]!) : `input_blocks.${i}.1.${m[4]}`;
  }
  if ((m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(key))) return `input_blocks.${1 + Number(m[1]) * (L + 1) + L}.0.op.${m[2]}`;
  if ((m = /^mid_block\.resnets\.([01])\.(.+)$/.exec(key))) return resnet(`middle_block.${m[1] === '0' ? 0 : 2}.`, m[2]!);
  if ((m = /^mid_block\.attentions\.0\.(.+)$/.exec(key))) return `middle_block.1.${m[1]}`;
  if ((m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key))) {
    const i = Number(m[1]) * (L + 1) + Number(m[3]);
    return m[2] === 'resnets' ? resnet(`output_blocks.${i}.0.`, m[4]!) : `output_blocks.${i}.1.${m[4]}`;
  }
  if ((m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(key))) {
    const b = Number(m[1]);
    return `output_blocks.${b * (L + 1) + L}.${layout.upBlockHasAttention[b] ? 2 : 1}.conv.${m[2]}`;
  }
  return null;
}

const VAE_ATTENTION: Record<string, string> = { group_norm: 'norm', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out' };

/**
 * A diffusers AutoencoderKL key -> the LDM key without 'first_stage_model.', and whether LDM stores it
 * as a 1x1 conv ([C, C] -> [C, C, 1, 1]: the mid-block attention's q, k, v, proj_out weights), or null.
 * LDM numbers the decoder's `up.i` from the lowest resolution: up_blocks.j -> up.(vaeLevels - 1 - j).
 */
export function ldmVaeKey(key: string, vaeLevels: number): { key: string; unsqueeze: boolean } | null {
  const plain = (k: string | null) => (k === null ? null : { key: k, unsqueeze: false });
  if (/^(quant_conv|post_quant_conv)\.(weight|bias)$/.test(key)) return plain(key);
  const m = /^(encoder|decoder)\.(.+)$/.exec(key);
  if (!m) return null;
  const side = m[1]!;
  const rest = m[2]!;
  const resnetOf = (prefix: string, r: string) => {
    const x = /^(norm1|conv1|norm2|conv2|conv_shortcut)\.(weight|bias)$/.exec(r);
    return x ? `${prefix}${x[1] === 'conv_shortcut' ? 'nin_shortcut' : x[1]}.${x[2]}` : null;
  };
  let r: RegExpExecArray | null;
  if (/^(conv_in|conv_out)\.(weight|bias)$/.test(rest)) return plain(key);
  if ((r = /^conv_norm_out\.(weight|bias)$/.exec(rest))) return plain(`${side}.norm_out.${r[1]}`);
  if ((r = /^mid_block\.resnets\.([01])\.(.+)$/.exec(rest))) return plain(resnetOf(`${side}.mid.block_${Number(r[1]) + 1}.`, r[2]!));
  if ((r = /^mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(rest))) {
    return { key: `${side}.mid.attn_1.${VAE_ATTENTION[r[1]!]}.${r[2]}`, unsqueeze: r[1] !== 'group_norm' && r[2] === 'weight' };
  }
  if (side === 'encoder') {
    if ((r = /^down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(rest))) return plain(resnetOf(`encoder.down.${r[1]}.block.${r[2]}.`, r[3]!));
    if ((r = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(rest))) return plain(`encoder.down.${r[1]}.downsample.conv.${r[2]}`);
  } else {
    const up = (j: string) => vaeLevels - 1 - Number(j);
    if ((r = /^up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(rest))) return plain(resnetOf(`decoder.up.${up(r[1]!)}.block.${r[2]}.`, r[3]!));
    if ((r = /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(rest))) return plain(`decoder.up.${up(r[1]!)}.upsample.conv.${r[2]}`);
  }
  return null;
}

/** A CLIPTextModel key, with or without transformers 4.x's 'text_model.' prefix -> the key after 'cond_stage_model.transformer.'. */
export function ldmClipKey(key: string): string {
  return key.startsWith('text_model.') ? key : `text_model.${key}`;
}

/**
 * One diffusers/transformers tensor -> its full LDM key and stored shape, or null for a key SD v1's
 * LDM layout has no place for. Shapes change only for the VAE attention: to_q.weight [C, C] -> q.weight [C, C, 1, 1].
 *
 *   ldmStateDict('vae', 'decoder.mid_block.attentions.0.to_q.weight', [512, 512], layout)
 *     -> { key: 'first_stage_model.decoder.mid.attn_1.q.weight', shape: [512, 512, 1, 1] }
 */
export function ldmStateDict(component: Sd1Component, key: string, shape: number[], layout: LdmLayout): { key: string; shape: number[] } | null {
  if (component === 'unet') {
    const k = ldmUnetKey(key, layout);
    return k === null ? null : { key: UNET_PREFIX + k, shape };
  }
  if (component === 'vae') {
    const t = ldmVaeKey(key, layout.vaeLevels);
    if (t === null) return null;
    return { key: VAE_PREFIX + t.key, shape: t.unsqueeze && shape.length === 2 ? [...shape, 1, 1] : shape };
  }
  return { key: CLIP_PREFIX + ldmClipKey(key), shape };
}

/** A diffusers-side tensor of one component, named as the folder stores it. */
export interface ComponentTensor {
  component: Sd1Component;
  key: string;
  dtype: DType;
  shape: number[];
  data: () => Tensor;
}

/**
 * The tensors of an LDM single file for these diffusers tensors: renamed, the VAE attention weights
 * reshaped to [C, C, 1, 1], sorted by name (as safetensors writes a state dict). Throws naming every
 * key without an LDM place.
 */
export function ldmTensors(tensors: ComponentTensor[], layout: LdmLayout): StreamedTensor[] {
  const out: StreamedTensor[] = [];
  const unplaced: string[] = [];
  for (const t of tensors) {
    const to = ldmStateDict(t.component, t.key, t.shape, layout);
    if (to === null) {
      unplaced.push(`${t.component}.${t.key}`);
      continue;
    }
    const reshape = to.shape.length !== t.shape.length;
    const data = reshape ? () => {
      const x = t.data();
      const y = x.reshape(to.shape);
      x.dispose();
      return y;
    } : t.data;
    out.push({ name: to.key, dtype: t.dtype, shape: to.shape, data });
  }
  if (unplaced.length) throw new Error(`no LDM key for ${unplaced.length} tensor(s): ${unplaced.slice(0, 20).join(', ')}`);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
