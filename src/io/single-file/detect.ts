// The architecture of a single-file SD v1 / SD 2.x / SDXL checkpoint, from its keys and shapes, settled
// by the LDM (or sgm) YAML where the weights leave it open (head counts, v-prediction, image size): diffusers configs.
import { CLIP_PREFIX, OPENCLIP_PREFIX, UNET_PREFIX, VAE_PREFIX, XL_CLIP_PREFIX, XL_OPENCLIP_PREFIX } from './keys.js';
import type { LdmYaml } from './yaml-config.js';

/** A file the loader cannot take as SD v1 / SD 2.x / SDXL, or a YAML that contradicts the weights. */
export class SingleFileError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SingleFileError';
  }
}

/** Only the shapes matter here. */
export type ShapeMap = ReadonlyMap<string, { shape: number[] }>;

type Json = Record<string, unknown>;

/** Everything needed to build the models and write a diffusers folder. */
export interface LdmArchitecture {
  /** 'sd1': CLIP ViT-L text encoder (transformers names); 'sd2': OpenCLIP text encoder; 'sdxl': both (sgm layout). */
  family: 'sd1' | 'sd2' | 'sdxl';
  /** A readable name: 'SD 1.x', 'SD 2.x 768 v-prediction', 'SD 2.x 512', 'SDXL base', or 'custom SD 1.x-style'. */
  variant: string;
  unet: Json;
  vae: Json;
  /** transformers CLIPTextModel config.json. */
  textEncoder: Json;
  /** SDXL: the second encoder's CLIPTextModelWithProjection config.json (all its layers are loaded). */
  textEncoder2?: Json;
  /** diffusers DDIMScheduler scheduler_config.json. */
  scheduler: Json;
  /** Text-encoder layers loaded; for OpenCLIP the stored ones beyond this are skipped. */
  textLayers: number;
  /** Stored text-encoder layers. */
  storedTextLayers: number;
  /** Decisions the caller should hear about (a default taken where the file is ambiguous). */
  warnings: string[];
}

export interface DetectOptions {
  yaml?: LdmYaml;
  /**
   * Text-encoder attention heads. Not stored in the weights: real CLIP text towers use 64-wide heads
   * (hidden / 64); a model whose width is not a multiple of 64 needs this.
   */
  textEncoderHeads?: number;
}

const DIFFUSERS_VERSION = '0.40.0.dev0';

/** Reads the architecture from the stored shapes (and the YAML); throws SingleFileError naming what does not fit. */
export function detectLdmArchitecture(file: string, shapes: ShapeMap, opts: DetectOptions = {}): LdmArchitecture {
  const fail = (m: string): never => {
    throw new SingleFileError(file, m);
  };
  const y = opts.yaml;
  const keys = [...shapes.keys()];
  const shape = (k: string) => shapes.get(k)?.shape;
  if (keys.some((k) => k.startsWith('conditioner.embedders.0.model.'))) {
    fail('this is an SDXL refiner (its first embedder is OpenCLIP, with aesthetic-score conditioning): only SDXL base-style files are supported');
  }
  if (shapes.has('edm_mean') || shapes.has('edm_vpred.sigma_max')) fail('this is an EDM-parameterized SDXL model (edm_* keys, e.g. Playground v2.5): not supported (DDPM epsilon or v-prediction only)');
  if (!shapes.has(`${UNET_PREFIX}input_blocks.0.0.weight`)) {
    const prefixes = [...new Set(keys.map((k) => k.split('.')[0]))].slice(0, 10);
    fail(`not an LDM Stable Diffusion checkpoint: no UNet under '${UNET_PREFIX}*' (top-level names: ${prefixes.join(', ') || 'none'})`);
  }
  const hasClip = keys.some((k) => k.startsWith(CLIP_PREFIX));
  const hasOpenClip = keys.some((k) => k.startsWith(OPENCLIP_PREFIX));
  const hasXl = keys.some((k) => k.startsWith('conditioner.embedders.'));
  if ([hasClip, hasOpenClip, hasXl].filter(Boolean).length !== 1) {
    fail(hasClip || hasOpenClip || hasXl
      ? `more than one kind of text encoder: ${[hasClip && 'CLIP (cond_stage_model.transformer.*)', hasOpenClip && 'OpenCLIP (cond_stage_model.model.*)', hasXl && 'SDXL (conditioner.embedders.*)'].filter(Boolean).join(' and ')}`
      : 'no text encoder (cond_stage_model.transformer.* for SD v1, cond_stage_model.model.* for SD 2.x, conditioner.embedders.* for SDXL)');
  }
  if (hasXl && !(keys.some((k) => k.startsWith(XL_CLIP_PREFIX)) && keys.some((k) => k.startsWith(XL_OPENCLIP_PREFIX)))) {
    fail(`an SDXL file needs both text encoders: ${XL_CLIP_PREFIX}* (CLIP ViT-L) and ${XL_OPENCLIP_PREFIX}* (OpenCLIP ViT-bigG)`);
  }
  const hasLabelEmb = shapes.has(`${UNET_PREFIX}label_emb.0.0.weight`);
  if (hasXl !== hasLabelEmb) fail(hasXl ? `an SDXL file without the UNet's added conditioning (${UNET_PREFIX}label_emb.*)` : `a class-conditioned UNet (label_emb) with an SD v1 / 2.x text encoder is not supported`);
  if (!keys.some((k) => k.startsWith(VAE_PREFIX))) fail(`no VAE (${VAE_PREFIX}*)`);
  const family = hasXl ? 'sdxl' : hasClip ? 'sd1' : 'sd2';
  if (y !== undefined && (family === 'sdxl') !== (y.sgm !== undefined)) {
    fail(family === 'sdxl' ? `the YAML (${y.file}) is an LDM (SD v1 / 2.x) config but the file is SDXL: give the sgm config (sd_xl_base.yaml)`
      : `the YAML (${y.file}) is an SDXL (sgm) config but the file is ${family === 'sd1' ? 'SD v1' : 'SD 2.x'}`);
  }
  const contradict = (what: string, yamlValue: unknown, weights: unknown) => {
    if (yamlValue !== undefined && JSON.stringify(yamlValue) !== JSON.stringify(weights)) {
      fail(`the YAML (${y!.file}) contradicts the weights: ${what} is ${JSON.stringify(yamlValue)} in the YAML but ${JSON.stringify(weights)} in the weights`);
    }
  };
  const warnings: string[] = [];

  // --- text encoder(s)
  const ct = y?.condStageTarget ?? '';
  if (family === 'sd1' && /OpenCLIP/.test(ct)) fail(`the YAML (${y!.file}) names ${ct} but the file holds a CLIP (SD v1) text encoder`);
  if (family === 'sd2' && /FrozenCLIPEmbedder$/.test(ct)) fail(`the YAML (${y!.file}) names ${ct} but the file holds an OpenCLIP (SD 2.x) text encoder`);
  const te = family === 'sd2' ? openClipText(shapes, OPENCLIP_PREFIX, fail) : clipText(shapes, family === 'sdxl' ? XL_CLIP_PREFIX : CLIP_PREFIX, fail);
  let textLayers = te.layers;
  if (family === 'sd2') {
    if (y?.layer === 'last') textLayers = te.layers;
    else textLayers = te.layers - 1; // 'penultimate', SD 2.x's setting (and what diffusers does without a YAML)
    if (textLayers < 1) fail(`the OpenCLIP text encoder has ${te.layers} layer(s): nothing is left after skipping the last ('penultimate')`);
  } else if (y?.layer === 'penultimate') {
    fail(`the YAML (${y.file}) asks for layer: penultimate with a CLIP (SD v1) text encoder, which is not supported`);
  }
  const headsOf = (t: TextShapes, which: string) => {
    const h = opts.textEncoderHeads ?? (t.hidden % 64 === 0 ? t.hidden / 64 : fail(
      `the ${which}'s head count is not stored in the weights and its width ${t.hidden} is not a multiple of 64 (the head width of real models): give it (--text-encoder-heads; API: textEncoderHeads)`));
    if (t.hidden % h !== 0) fail(`${which} width ${t.hidden} does not split into ${h} heads`);
    return h;
  };
  const textConfig = (t: TextShapes, layers: number, arch: string, act: string, projection: number, pad: number, which: string): Json => ({
    architectures: [arch], model_type: 'clip_text_model',
    vocab_size: t.vocab, hidden_size: t.hidden, intermediate_size: t.intermediate, num_hidden_layers: layers,
    num_attention_heads: headsOf(t, which), max_position_embeddings: t.positions, hidden_act: act, layer_norm_eps: 1e-5,
    projection_dim: projection, pad_token_id: pad, bos_token_id: t.vocab - 2, eos_token_id: t.vocab - 1,
    attention_dropout: 0, initializer_factor: 1, initializer_range: 0.02, dtype: 'float32',
  });
  const textEncoder = family === 'sd2'
    ? textConfig(te, textLayers, 'CLIPTextModel', 'gelu', te.hidden === 1024 ? 512 : (shape(`${OPENCLIP_PREFIX}text_projection`)?.[1] ?? te.hidden), 0, 'text encoder')
    : textConfig(te, textLayers, 'CLIPTextModel', 'quick_gelu', te.hidden, te.vocab - 1, 'text encoder');
  let textEncoder2: Json | undefined;
  let pooledDim = 0;
  if (family === 'sdxl') {
    // SDXL conditions on the penultimate states of both encoders; diffusers keeps all of encoder 2's
    // layers (its final layer and norm make the pooled embedding through text_projection).
    const te2 = openClipText(shapes, XL_OPENCLIP_PREFIX, fail);
    const proj = shape(`${XL_OPENCLIP_PREFIX}text_projection`) ?? fail(`SDXL's second text encoder has no ${XL_OPENCLIP_PREFIX}text_projection (its pooled embedding)`);
    if (proj.length !== 2 || proj[0] !== te2.hidden) fail(`${XL_OPENCLIP_PREFIX}text_projection has shape [${proj.join(', ')}], expected [${te2.hidden}, projection]`);
    pooledDim = proj[1]!;
    textEncoder2 = textConfig(te2, te2.layers, 'CLIPTextModelWithProjection', 'gelu', pooledDim, 0, 'second text encoder');
    const [e1, e2] = y?.sgm?.textEmbedders ?? [];
    if (y?.sgm && y.sgm.textEmbedders.length !== 2) fail(`the YAML (${y.file}) lists ${y.sgm.textEmbedders.length} text embedder(s); SDXL base has 2 (FrozenCLIPEmbedder, FrozenOpenCLIPEmbedder2)`);
    if (e1 && !(e1.layer === 'hidden' && e1.layerIdx === te.layers - 1)) {
      fail(`the YAML (${y!.file}) takes the first text encoder's layer ${e1.layer}${e1.layerIdx !== undefined ? ` ${e1.layerIdx}` : ''}; only the penultimate (layer: hidden, layer_idx: ${te.layers - 1}) is supported, as SDXL base`);
    }
    if (e2 && e2.layer !== 'penultimate') fail(`the YAML (${y!.file}) takes the second text encoder's layer '${e2.layer}'; only 'penultimate' is supported, as SDXL base`);
  }

  // --- UNet
  const U = UNET_PREFIX;
  const inputs = indices(keys, new RegExp(`^${esc(U)}input_blocks\\.(\\d+)\\.`));
  const outputs = indices(keys, new RegExp(`^${esc(U)}output_blocks\\.(\\d+)\\.`));
  const nIn = inputs.length ? Math.max(...inputs) + 1 : 0;
  const downs = inputs.filter((i) => shapes.has(`${U}input_blocks.${i}.0.op.weight`));
  const lpb = downs.length ? downs[0]! - 1 : nIn - 1;
  const nBlocks = downs.length + 1;
  if (lpb < 1 || nIn !== nBlocks * (lpb + 1) || downs.some((d, k) => d !== (k + 1) * (lpb + 1))) {
    fail(`unknown UNet layout: ${nIn} input blocks with downsamplers at ${downs.join(', ') || 'none'} do not make equal levels`);
  }
  const nOut = outputs.length ? Math.max(...outputs) + 1 : 0;
  if (nOut !== nBlocks * (lpb + 1)) fail(`unknown UNet layout: ${nOut} output blocks for ${nBlocks} levels of ${lpb} resnets (expected ${nBlocks * (lpb + 1)})`);
  const need = (k: string): number[] => shape(k) ?? fail(`unknown UNet layout: '${k}' is missing`);
  const blockOut = Array.from({ length: nBlocks }, (_, b) => need(`${U}input_blocks.${1 + b * (lpb + 1)}.0.out_layers.3.weight`)[0]!);
  const downAttn = Array.from({ length: nBlocks }, (_, b) => shapes.has(`${U}input_blocks.${1 + b * (lpb + 1)}.1.norm.weight`));
  const upAttn = Array.from({ length: nBlocks }, (_, u) => shapes.has(`${U}output_blocks.${u * (lpb + 1)}.1.norm.weight`));
  if (!shapes.has(`${U}middle_block.1.norm.weight`)) fail('unknown UNet layout: the middle block has no attention (only UNetMidBlock2DCrossAttn is supported)');
  const depthOf = (prefix: string) => indices(keys, new RegExp(`^${esc(prefix)}transformer_blocks\\.(\\d+)\\.`)).length;
  const depths = downAttn.map((a, b) => (a ? depthOf(`${U}input_blocks.${1 + b * (lpb + 1)}.1.`) : 1));
  const depth = depths.every((d) => d === depths[0]) ? depths[0]! : depths;
  const toK = keys.find((k) => k.startsWith(U) && k.endsWith('attn2.to_k.weight'));
  const crossDim = toK ? shape(toK)![1]! : fail('unknown UNet layout: no cross-attention (attn2.to_k) found');
  const projIn = shape(`${U}middle_block.1.proj_in.weight`)!;
  const linear = projIn.length === 2;
  const inCh = need(`${U}input_blocks.0.0.weight`)[1]!;
  const outCh = need(`${U}out.2.weight`)[0]!;
  const timeDim = need(`${U}time_embed.0.weight`)[0]!;
  const u = y?.unet ?? {};
  contradict('model_channels', u.modelChannels, blockOut[0]);
  if (u.modelChannels !== undefined && u.channelMult !== undefined) contradict('model_channels x channel_mult', u.channelMult.map((m) => m * u.modelChannels!), blockOut);
  contradict('num_res_blocks', u.numResBlocks, lpb);
  contradict('context_dim', u.contextDim, crossDim);
  contradict('use_linear_in_transformer', u.useLinearInTransformer, linear ? true : (u.useLinearInTransformer === undefined ? undefined : false));
  contradict('in_channels', u.inChannels, inCh);
  contradict('out_channels', u.outChannels, outCh);
  if (Array.isArray(u.transformerDepth)) {
    if (u.transformerDepth.length !== nBlocks || depths.some((d, b) => downAttn[b] && d !== (u.transformerDepth as number[])[b])) {
      fail(`the YAML (${y!.file}) contradicts the weights: transformer_depth is ${JSON.stringify(u.transformerDepth)} in the YAML but ${JSON.stringify(depths.map((d, b) => (downAttn[b] ? d : '-')))} in the weights (levels with attention)`);
    }
  } else contradict('transformer_depth', u.transformerDepth, depth);
  const midDepth = depthOf(`${U}middle_block.1.`);
  const lastDepth = depths[depths.length - 1]!;
  if (midDepth !== lastDepth) fail(`unknown UNet layout: the middle block has ${midDepth} transformer block(s) and the last level ${lastDepth}; diffusers' UNet2DConditionModel gives both the same depth`);
  const sd1Full = family === 'sd1' && crossDim === 768 && sameList(blockOut, [320, 640, 1280, 1280]);
  const sd2Full = family === 'sd2' && crossDim === 1024 && sameList(blockOut, [320, 640, 1280, 1280]);
  const xlFull = family === 'sdxl' && crossDim === 2048 && sameList(blockOut, [320, 640, 1280]);
  let headDim: number | number[];
  if (u.numHeads !== undefined && u.numHeadChannels !== undefined) fail(`the YAML (${y!.file}) sets both num_heads and num_head_channels`);
  if (u.numHeads !== undefined) headDim = u.numHeads;
  else if (u.numHeadChannels !== undefined) {
    headDim = blockOut.map((c) => {
      if (c % u.numHeadChannels! !== 0) fail(`the YAML's num_head_channels ${u.numHeadChannels} does not divide the UNet's ${c} channels`);
      return c / u.numHeadChannels!;
    });
  } else if (sd1Full) headDim = 8;
  else if (sd2Full || xlFull) headDim = blockOut.map((c) => c / 64);
  else {
    return fail('the UNet\'s attention head count is not stored in the weights and this is not a known full-size SD v1 / SD 2.x / SDXL model: '
      + 'give the LDM YAML (--config) with num_heads or num_head_channels');
  }
  // --- SDXL's added conditioning: label_emb.0.0 takes [pooled text embedding, 6 sinusoidal size/crop embeddings]
  let added: Json = {};
  if (family === 'sdxl') {
    const admIn = need(`${U}label_emb.0.0.weight`)[1]!;
    contradict('adm_in_channels', y?.sgm?.admInChannels, admIn);
    const timeEmbed = (admIn - pooledDim) / 6;
    if (!Number.isInteger(timeEmbed) || timeEmbed <= 0) fail(`the UNet's added conditioning takes ${admIn} channels, which is not the pooled ${pooledDim} plus 6 equal size/crop embeddings`);
    contradict('the size/crop embedders\' outdim', y?.sgm?.timeEmbedDim, timeEmbed);
    added = { addition_embed_type: 'text_time', addition_time_embed_dim: timeEmbed, projection_class_embeddings_input_dim: admIn };
  }
  // --- prediction type and size
  let prediction: string;
  let v2Size: 'v768' | 'base512' | null = null;
  if (y !== undefined) {
    prediction = { eps: 'epsilon', v: 'v_prediction', x0: 'sample' }[y.parameterization];
  } else if (family === 'sd2') {
    prediction = 'v_prediction';
    if (sd2Full) {
      warnings.push('SD 2.x single file without a YAML: the 768 v-prediction model and the 512 epsilon (base) model have the same weights\' shapes; '
        + 'taking the 768 v-prediction model, as diffusers does. For SD 2.x base give --config v2-inference.yaml');
    } else warnings.push('SD 2.x-style single file without a YAML: taking v-prediction, as diffusers does for SD 2.x');
  } else if (family === 'sdxl' && shapes.has('v_pred')) {
    prediction = 'v_prediction'; // the marker key some SDXL v-prediction fine-tunes carry
    warnings.push("the file carries the 'v_pred' marker: reading it as a v-prediction model");
  } else prediction = 'epsilon';
  if (family === 'sd2') v2Size = prediction === 'v_prediction' ? 'v768' : 'base512';
  const sampleSize = y?.imageSize ?? (family === 'sdxl' ? 128 : v2Size === 'v768' ? 96 : 64);
  const unet: Json = {
    _class_name: 'UNet2DConditionModel', _diffusers_version: DIFFUSERS_VERSION,
    sample_size: sampleSize, in_channels: inCh, out_channels: outCh,
    down_block_types: downAttn.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    mid_block_type: 'UNetMidBlock2DCrossAttn',
    up_block_types: upAttn.map((a) => (a ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    block_out_channels: blockOut, layers_per_block: lpb, cross_attention_dim: crossDim, attention_head_dim: headDim,
    transformer_layers_per_block: depth, use_linear_projection: linear,
    upcast_attention: family === 'sd2' && prediction === 'v_prediction',
    act_fn: 'silu', norm_num_groups: 32, norm_eps: 1e-5, flip_sin_to_cos: true, freq_shift: 0,
    downsample_padding: 1, mid_block_scale_factor: 1, center_input_sample: false,
    ...(timeDim !== blockOut[0]! * 4 ? { time_embedding_dim: timeDim } : {}),
    ...added,
  };

  // --- VAE
  const V = `${VAE_PREFIX}encoder.down.`;
  const vLevels = indices(keys, new RegExp(`^${esc(V)}(\\d+)\\.`)).length;
  if (vLevels === 0) fail('unknown VAE layout: no first_stage_model.encoder.down.* blocks');
  const vNeed = (k: string): number[] => shape(`${VAE_PREFIX}${k}`) ?? fail(`unknown VAE layout: '${VAE_PREFIX}${k}' is missing`);
  const vBlocks = Array.from({ length: vLevels }, (_, i) => vNeed(`encoder.down.${i}.block.0.conv2.weight`)[0]!);
  const vLayers = indices(keys, new RegExp(`^${esc(V)}0\\.block\\.(\\d+)\\.`)).length;
  const latent = shape(`${VAE_PREFIX}post_quant_conv.weight`)?.[0] ?? vNeed('decoder.conv_in.weight')[1]!;
  const vy = y?.vae ?? {};
  contradict('first_stage ch', vy.ch, vBlocks[0]);
  if (vy.ch !== undefined && vy.chMult !== undefined) contradict('first_stage ch x ch_mult', vy.chMult.map((m) => m * vy.ch!), vBlocks);
  contradict('first_stage num_res_blocks', vy.numResBlocks, vLayers);
  contradict('first_stage z_channels', vy.zChannels, vNeed('decoder.conv_in.weight')[1]);
  contradict('first_stage embed_dim', vy.embedDim, latent);
  const vae: Json = {
    _class_name: 'AutoencoderKL', _diffusers_version: DIFFUSERS_VERSION,
    in_channels: vNeed('encoder.conv_in.weight')[1], out_channels: vNeed('decoder.conv_out.weight')[0],
    down_block_types: vBlocks.map(() => 'DownEncoderBlock2D'), up_block_types: vBlocks.map(() => 'UpDecoderBlock2D'),
    block_out_channels: vBlocks, layers_per_block: vLayers, act_fn: 'silu', latent_channels: latent, norm_num_groups: 32,
    sample_size: sampleSize * 2 ** (vLevels - 1), scaling_factor: y?.scaleFactor ?? (family === 'sdxl' ? 0.13025 : 0.18215), force_upcast: true,
    use_quant_conv: shapes.has(`${VAE_PREFIX}quant_conv.weight`), use_post_quant_conv: shapes.has(`${VAE_PREFIX}post_quant_conv.weight`),
    mid_block_add_attention: shapes.has(`${VAE_PREFIX}encoder.mid.attn_1.q.weight`),
  };

  // --- scheduler: LDM's schedule as DDIM
  const steps = y?.timesteps ?? 1000;
  const betas = shape('betas');
  if (betas !== undefined && betas[0] !== steps) fail(`the file's betas have ${betas[0]} steps but ${y ? 'the YAML says' : 'LDM defaults to'} ${steps}`);
  const scheduler: Json = {
    _class_name: 'DDIMScheduler', _diffusers_version: DIFFUSERS_VERSION,
    num_train_timesteps: steps, beta_start: y?.linearStart ?? 0.00085, beta_end: y?.linearEnd ?? 0.012,
    beta_schedule: 'scaled_linear', clip_sample: false, set_alpha_to_one: false, steps_offset: 1,
    prediction_type: prediction, timestep_spacing: 'leading', rescale_betas_zero_snr: false, thresholding: false,
  };
  const familyName = { sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL' }[family];
  const variant = sd1Full ? 'SD 1.x' : sd2Full ? `SD 2.x ${v2Size === 'v768' ? '768 v-prediction' : '512'}`
    : xlFull ? `SDXL base${prediction === 'v_prediction' ? ' v-prediction' : ''}` : `custom ${familyName}-style`;
  return { family, variant, unet, vae, textEncoder, ...(textEncoder2 ? { textEncoder2 } : {}), scheduler, textLayers, storedTextLayers: te.layers, warnings };
}

interface TextShapes { vocab: number; hidden: number; intermediate: number; positions: number; layers: number }

function clipText(shapes: ShapeMap, prefix: string, fail: (m: string) => never): TextShapes {
  const keys = [...shapes.keys()];
  const p = keys.some((k) => k.startsWith(`${prefix}text_model.`)) ? `${prefix}text_model.` : prefix;
  const need = (k: string) => shapes.get(p + k)?.shape ?? fail(`unknown CLIP text encoder layout: '${p}${k}' is missing`);
  const tok = need('embeddings.token_embedding.weight');
  return {
    vocab: tok[0]!, hidden: tok[1]!, intermediate: need('encoder.layers.0.mlp.fc1.weight')[0]!,
    positions: need('embeddings.position_embedding.weight')[0]!,
    layers: indices(keys, new RegExp(`^${esc(p)}encoder\\.layers\\.(\\d+)\\.`)).length,
  };
}

function openClipText(shapes: ShapeMap, p: string, fail: (m: string) => never): TextShapes {
  const need = (k: string) => shapes.get(p + k)?.shape ?? fail(`unknown OpenCLIP text encoder layout: '${p}${k}' is missing`);
  const tok = need('token_embedding.weight');
  return {
    vocab: tok[0]!, hidden: tok[1]!, intermediate: need('transformer.resblocks.0.mlp.c_fc.weight')[0]!,
    positions: need('positional_embedding')[0]!,
    layers: indices([...shapes.keys()], new RegExp(`^${esc(p)}transformer\\.resblocks\\.(\\d+)\\.`)).length,
  };
}

/** The distinct numbers a pattern's first group takes, sorted. */
function indices(keys: string[], re: RegExp): number[] {
  const s = new Set<number>();
  for (const k of keys) {
    const m = re.exec(k);
    if (m) s.add(Number(m[1]));
  }
  return [...s].sort((a, b) => a - b);
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function sameList(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
