// Key mapping from the original LDM layout (and SDXL's sgm layout) of a single-file Stable Diffusion checkpoint to the
// diffusers/transformers names our modules use (as diffusers' convert_from_ckpt does, written anew).

/** The models a single file holds (text_encoder_2: SDXL's OpenCLIP encoder with projection). */
export type LdmComponent = 'unet' | 'vae' | 'text_encoder' | 'text_encoder_2';

/**
 * How a stored tensor becomes the model's:
 * 'none': as is; 'squeeze': a 1x1-conv weight [C, C, 1, 1] -> a linear weight [C, C] (kept as is when 2-D);
 * chunk: row block `index` of `of` equal blocks along dim 0 (OpenCLIP's fused in_proj [3D, D] -> q, k, v [D, D]);
 * 'transpose': OpenCLIP's text_projection [D, P] (x @ W) -> a linear weight [P, D].
 */
export type LdmTransform = 'none' | 'squeeze' | 'transpose' | { chunk: number; of: number };

/** Where one stored tensor (or one slice of it) goes. */
export interface LdmTarget {
  component: LdmComponent;
  key: string;
  transform: LdmTransform;
}

export const UNET_PREFIX = 'model.diffusion_model.';
export const VAE_PREFIX = 'first_stage_model.';
/** SD v1: transformers' CLIPTextModel, already under transformers names. */
export const CLIP_PREFIX = 'cond_stage_model.transformer.';
/** SD 2.x: OpenCLIP's text tower. */
export const OPENCLIP_PREFIX = 'cond_stage_model.model.';
/** SDXL (sgm): the first text encoder, CLIP ViT-L under transformers names. */
export const XL_CLIP_PREFIX = 'conditioner.embedders.0.transformer.';
/** SDXL (sgm): the second text encoder, OpenCLIP ViT-bigG (its text_projection is used: the pooled embedding). */
export const XL_OPENCLIP_PREFIX = 'conditioner.embedders.1.model.';

/** LDM's noise-schedule buffers (the scheduler config replaces them). */
export const SCHEDULE_BUFFERS: ReadonlySet<string> = new Set([
  'betas', 'alphas_cumprod', 'alphas_cumprod_prev', 'sqrt_alphas_cumprod', 'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod', 'sqrt_recip_alphas_cumprod', 'sqrt_recipm1_alphas_cumprod', 'posterior_variance',
  'posterior_log_variance_clipped', 'posterior_mean_coef1', 'posterior_mean_coef2', 'lvlb_weights', 'logvar',
]);

/** Why a stored key is left out on purpose (null: it is not one of those). */
export function skipReason(key: string): string | null {
  if (SCHEDULE_BUFFERS.has(key)) return 'LDM noise-schedule buffer';
  if (key.startsWith('model_ema.')) return 'EMA bookkeeping / EMA weights';
  if (key === `${OPENCLIP_PREFIX}text_projection` || key === `${OPENCLIP_PREFIX}logit_scale`) return 'OpenCLIP projection (unused by Stable Diffusion)';
  if (key === `${CLIP_PREFIX}text_model.embeddings.position_ids` || key === `${CLIP_PREFIX}embeddings.position_ids`) return 'position_ids buffer';
  if (key === `${XL_CLIP_PREFIX}text_model.embeddings.position_ids` || key === `${XL_CLIP_PREFIX}embeddings.position_ids`) return 'position_ids buffer';
  if (key === `${XL_OPENCLIP_PREFIX}logit_scale`) return 'OpenCLIP logit_scale (unused by Stable Diffusion)';
  if (key === 'denoiser.sigmas' || key === 'denoiser.log_sigmas') return 'sgm noise-schedule buffer';
  if (key === 'v_pred') return "v-prediction marker (read by the architecture detection)";
  return null;
}

const RESNET: [RegExp, string][] = [
  [/^in_layers\.0\./, 'norm1.'], [/^in_layers\.2\./, 'conv1.'], [/^emb_layers\.1\./, 'time_emb_proj.'],
  [/^out_layers\.0\./, 'norm2.'], [/^out_layers\.3\./, 'conv2.'], [/^skip_connection\./, 'conv_shortcut.'],
];

function resnetKey(rest: string): string | null {
  for (const [re, to] of RESNET) if (re.test(rest)) return rest.replace(re, to);
  return null;
}

/**
 * A UNet key without 'model.diffusion_model.' -> the diffusers UNet2DConditionModel key, or null.
 * `layersPerBlock`: resnets per down block (LDM's num_res_blocks).
 *
 *   input_blocks.0.0          -> conv_in            time_embed.0/2 -> time_embedding.linear_1/2
 *   input_blocks.i.0 / .i.1   -> down_blocks.b.resnets.l / attentions.l   (i = 1 + b*(L+1) + l)
 *   input_blocks.i.0.op       -> down_blocks.b.downsamplers.0.conv        (l = L)
 *   middle_block.0/1/2        -> mid_block.resnets.0 / attentions.0 / resnets.1
 *   output_blocks.i.0 / .i.1  -> up_blocks.b.resnets.l / attentions.l     (i = b*(L+1) + l)
 *   output_blocks.i.{1,2}.conv -> up_blocks.b.upsamplers.0.conv          out.0/2 -> conv_norm_out / conv_out
 *   label_emb.0.0/2 (SDXL)     -> add_embedding.linear_1/2
 */
export function unetKey(key: string, layersPerBlock: number): string | null {
  const simple: [string, string][] = [
    ['time_embed.0.', 'time_embedding.linear_1.'], ['time_embed.2.', 'time_embedding.linear_2.'],
    ['input_blocks.0.0.', 'conv_in.'], ['out.0.', 'conv_norm_out.'], ['out.2.', 'conv_out.'],
    ['label_emb.0.0.', 'add_embedding.linear_1.'], ['label_emb.0.2.', 'add_embedding.linear_2.'],
  ];
  for (const [from, to] of simple) if (key.startsWith(from)) return leaf(to + key.slice(from.length));
  const per = layersPerBlock + 1;
  let m = /^input_blocks\.(\d+)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const i = Number(m[1]) - 1;
    const j = Number(m[2]);
    const rest = m[3]!;
    const b = Math.floor(i / per);
    const l = i % per;
    if (l < layersPerBlock) {
      if (j === 0) return prefixed(`down_blocks.${b}.resnets.${l}.`, resnetKey(rest));
      if (j === 1) return leaf(`down_blocks.${b}.attentions.${l}.${rest}`);
      return null;
    }
    if (j === 0 && rest.startsWith('op.')) return leaf(`down_blocks.${b}.downsamplers.0.conv.${rest.slice(3)}`);
    return null;
  }
  m = /^middle_block\.(\d)\.(.+)$/.exec(key);
  if (m) {
    const rest = m[2]!;
    if (m[1] === '0') return prefixed('mid_block.resnets.0.', resnetKey(rest));
    if (m[1] === '1') return leaf(`mid_block.attentions.0.${rest}`);
    if (m[1] === '2') return prefixed('mid_block.resnets.1.', resnetKey(rest));
    return null;
  }
  m = /^output_blocks\.(\d+)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const i = Number(m[1]);
    const j = Number(m[2]);
    const rest = m[3]!;
    const b = Math.floor(i / per);
    const l = i % per;
    if (j === 0) return prefixed(`up_blocks.${b}.resnets.${l}.`, resnetKey(rest));
    if ((j === 1 || j === 2) && rest.startsWith('conv.')) return leaf(`up_blocks.${b}.upsamplers.0.conv.${rest.slice(5)}`);
    if (j === 1) return leaf(`up_blocks.${b}.attentions.${l}.${rest}`);
    return null;
  }
  return null;
}

const VAE_ATTENTION: Record<string, string> = { norm: 'group_norm', q: 'to_q', k: 'to_k', v: 'to_v', proj_out: 'to_out.0' };

/**
 * A VAE key without 'first_stage_model.' -> the diffusers AutoencoderKL key and transform, or null.
 * `numBlocks`: resolution levels; LDM numbers the decoder's `up.i` from the lowest resolution up,
 * diffusers' `up_blocks` from the highest, so up.i -> up_blocks.(numBlocks - 1 - i).
 */
export function vaeKey(key: string, numBlocks: number): { key: string; transform: LdmTransform } | null {
  const plain = (k: string | null) => (k === null ? null : { key: k, transform: 'none' as const });
  if (/^(quant_conv|post_quant_conv)\.(weight|bias)$/.test(key)) return plain(key);
  const m = /^(encoder|decoder)\.(.+)$/.exec(key);
  if (!m) return null;
  const side = m[1]!;
  const rest = m[2]!;
  let r: RegExpExecArray | null;
  if ((r = /^(conv_in|conv_out)\.(weight|bias)$/.exec(rest))) return plain(`${side}.${rest}`);
  if ((r = /^norm_out\.(weight|bias)$/.exec(rest))) return plain(`${side}.conv_norm_out.${r[1]}`);
  if ((r = /^mid\.block_([12])\.(.+)$/.exec(rest))) return plain(vaeResnet(`${side}.mid_block.resnets.${Number(r[1]) - 1}.`, r[2]!));
  if ((r = /^mid\.attn_1\.(norm|q|k|v|proj_out)\.(weight|bias)$/.exec(rest))) {
    return { key: `${side}.mid_block.attentions.0.${VAE_ATTENTION[r[1]!]}.${r[2]}`, transform: r[1] !== 'norm' && r[2] === 'weight' ? 'squeeze' : 'none' };
  }
  if (side === 'encoder') {
    if ((r = /^down\.(\d+)\.block\.(\d+)\.(.+)$/.exec(rest))) return plain(vaeResnet(`encoder.down_blocks.${r[1]}.resnets.${r[2]}.`, r[3]!));
    if ((r = /^down\.(\d+)\.downsample\.conv\.(weight|bias)$/.exec(rest))) return plain(`encoder.down_blocks.${r[1]}.downsamplers.0.conv.${r[2]}`);
  } else {
    const up = (i: string) => numBlocks - 1 - Number(i);
    if ((r = /^up\.(\d+)\.block\.(\d+)\.(.+)$/.exec(rest))) return plain(vaeResnet(`decoder.up_blocks.${up(r[1]!)}.resnets.${r[2]}.`, r[3]!));
    if ((r = /^up\.(\d+)\.upsample\.conv\.(weight|bias)$/.exec(rest))) return plain(`decoder.up_blocks.${up(r[1]!)}.upsamplers.0.conv.${r[2]}`);
  }
  return null;
}

function vaeResnet(prefix: string, rest: string): string | null {
  const m = /^(norm1|conv1|norm2|conv2|nin_shortcut)\.(weight|bias)$/.exec(rest);
  if (!m) return null;
  return `${prefix}${m[1] === 'nin_shortcut' ? 'conv_shortcut' : m[1]}.${m[2]}`;
}

/** An SD v1 text-encoder key without 'cond_stage_model.transformer.' -> our CLIPTextModel key (transformers names). */
export function clipKey(key: string): string {
  return key.startsWith('text_model.') ? key.slice('text_model.'.length) : key;
}

/**
 * An OpenCLIP key (without 'cond_stage_model.model.' / 'conditioner.embedders.1.model.') -> CLIPTextModel
 * targets (three for the fused in_proj), [] for a layer at or beyond `keptLayers` (skipped: SD 2.x's
 * `layer: penultimate`), or null. `withProjection` (SDXL): keys go under CLIPTextModelWithProjection's
 * text_model., and text_projection [D, P] becomes text_projection.weight [P, D].
 *
 *   token_embedding.weight -> embeddings.token_embedding.weight   positional_embedding -> embeddings.position_embedding.weight
 *   transformer.resblocks.N.ln_1/ln_2 -> encoder.layers.N.layer_norm1/layer_norm2
 *   transformer.resblocks.N.attn.in_proj_{weight,bias} [3D(, D)] -> self_attn.{q,k,v}_proj.{weight,bias}
 *   transformer.resblocks.N.attn.out_proj -> self_attn.out_proj   mlp.c_fc / mlp.c_proj -> mlp.fc1 / mlp.fc2
 *   ln_final -> final_layer_norm
 */
export function openClipTargets(key: string, keptLayers: number, withProjection = false): { key: string; transform: LdmTransform }[] | null {
  if (withProjection) {
    if (key === 'text_projection') return [{ key: 'text_projection.weight', transform: 'transpose' }];
    return openClipTargets(key, keptLayers)?.map((t) => ({ ...t, key: `text_model.${t.key}` })) ?? null;
  }
  const one = (k: string) => [{ key: k, transform: 'none' as const }];
  if (key === 'token_embedding.weight') return one('embeddings.token_embedding.weight');
  if (key === 'positional_embedding') return one('embeddings.position_embedding.weight');
  let m = /^ln_final\.(weight|bias)$/.exec(key);
  if (m) return one(`final_layer_norm.${m[1]}`);
  m = /^transformer\.resblocks\.(\d+)\.(.+)$/.exec(key);
  if (!m) return null;
  const n = Number(m[1]);
  const rest = m[2]!;
  const p = `encoder.layers.${n}.`;
  let r: RegExpExecArray | null;
  let out: { key: string; transform: LdmTransform }[] | null = null;
  if ((r = /^ln_([12])\.(weight|bias)$/.exec(rest))) out = one(`${p}layer_norm${r[1]}.${r[2]}`);
  else if ((r = /^attn\.in_proj_(weight|bias)$/.exec(rest))) {
    const kind = r[1]!;
    out = ['q', 'k', 'v'].map((x, i) => ({ key: `${p}self_attn.${x}_proj.${kind}`, transform: { chunk: i, of: 3 } }));
  } else if ((r = /^attn\.out_proj\.(weight|bias)$/.exec(rest))) out = one(`${p}self_attn.out_proj.${r[1]}`);
  else if ((r = /^mlp\.c_(fc|proj)\.(weight|bias)$/.exec(rest))) out = one(`${p}mlp.${r[1] === 'fc' ? 'fc1' : 'fc2'}.${r[2]}`);
  if (out === null) return null;
  return n >= keptLayers ? [] : out;
}

/** A stored shape after a transform ([3D, D] chunk -> [D, D]; [C, C, 1, 1] squeeze -> [C, C]; [D, P] transpose -> [P, D]). */
export function transformedShape(shape: number[], t: LdmTransform): number[] | null {
  if (t === 'none') return shape;
  if (t === 'transpose') return shape.length === 2 ? [shape[1]!, shape[0]!] : null;
  if (t === 'squeeze') {
    if (shape.length === 2) return shape;
    return shape.length === 4 && shape[2] === 1 && shape[3] === 1 ? [shape[0]!, shape[1]!] : null;
  }
  if (shape.length === 0 || shape[0]! % t.of !== 0) return null;
  return [shape[0]! / t.of, ...shape.slice(1)];
}

function leaf(k: string): string {
  return k;
}

function prefixed(prefix: string, k: string | null): string | null {
  return k === null ? null : prefix + k;
}
