// CLIP configurations (text, vision, both) parsed from a transformers config.json, with its defaults
// and the Stable Diffusion v1 preset; follows transformers' CLIPTextConfig / CLIPVisionConfig / CLIPConfig.

/** A config.json that does not describe a usable CLIP model (says which field and why). */
export class CLIPConfigError extends Error {
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = 'CLIPConfigError';
  }
}

/** Activations transformers' ACT2FN offers that CLIP checkpoints use. */
export const CLIP_ACTIVATIONS = ['quick_gelu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'] as const;
export type CLIPActivation = (typeof CLIP_ACTIVATIONS)[number];

/** The fields both towers share (the encoder stack). */
export interface CLIPEncoderConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  hiddenAct: CLIPActivation;
  layerNormEps: number;
}

export interface CLIPTextConfig extends CLIPEncoderConfig {
  vocabSize: number;
  maxPositionEmbeddings: number;
  projectionDim: number;
  padTokenId: number;
  bosTokenId: number;
  /** Where the pooled output is read: the first position holding it (argmax of ids when it is 2, legacy). */
  eosTokenId: number;
}

export interface CLIPVisionConfig extends CLIPEncoderConfig {
  numChannels: number;
  imageSize: number;
  patchSize: number;
  projectionDim: number;
}

export interface CLIPConfig {
  textConfig: CLIPTextConfig;
  visionConfig: CLIPVisionConfig;
  projectionDim: number;
  logitScaleInitValue: number;
}

/** transformers' CLIPTextConfig defaults (clip-vit-base-patch32's text tower). */
export const CLIP_TEXT_DEFAULTS: Readonly<CLIPTextConfig> = Object.freeze({
  vocabSize: 49408, hiddenSize: 512, intermediateSize: 2048, projectionDim: 512, numHiddenLayers: 12,
  numAttentionHeads: 8, maxPositionEmbeddings: 77, hiddenAct: 'quick_gelu', layerNormEps: 1e-5,
  padTokenId: 1, bosTokenId: 49406, eosTokenId: 49407,
});

/** transformers' CLIPVisionConfig defaults (clip-vit-base-patch32's image tower). */
export const CLIP_VISION_DEFAULTS: Readonly<CLIPVisionConfig> = Object.freeze({
  hiddenSize: 768, intermediateSize: 3072, projectionDim: 512, numHiddenLayers: 12, numAttentionHeads: 12,
  numChannels: 3, imageSize: 224, patchSize: 32, hiddenAct: 'quick_gelu', layerNormEps: 1e-5,
});

/**
 * The text encoder of Stable Diffusion v1.x: CLIP ViT-L/14's text tower
 * (CompVis/stable-diffusion-v1-4 text_encoder/config.json, as in ../shared/golden/sd-v1-manifest.json).
 */
export function sdV1TextConfig(): CLIPTextConfig {
  return {
    vocabSize: 49408, hiddenSize: 768, intermediateSize: 3072, projectionDim: 768, numHiddenLayers: 12,
    numAttentionHeads: 12, maxPositionEmbeddings: 77, hiddenAct: 'quick_gelu', layerNormEps: 1e-5,
    padTokenId: 49407, bosTokenId: 49406, eosTokenId: 49407,
  };
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads one field: absent or null takes the default; present must pass the check. */
function field<T>(json: Json, key: string, fallback: T, where: string, check: (v: unknown) => string | null): T {
  const v = json[key];
  if (v === undefined || v === null) return fallback;
  const bad = check(v);
  if (bad !== null) throw new CLIPConfigError(where, `'${key}' ${bad} (got ${JSON.stringify(v)})`);
  return v as T;
}

const positiveInt = (v: unknown) => (Number.isInteger(v) && (v as number) > 0 ? null : 'must be a positive integer');
const tokenId = (v: unknown) => (Number.isInteger(v) && (v as number) >= 0 ? null : 'must be a non-negative integer');
const positiveNumber = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'must be a positive number');
const finiteNumber = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? null : 'must be a finite number');
const activation = (v: unknown) =>
  (CLIP_ACTIVATIONS as readonly unknown[]).includes(v) ? null : `must be one of ${CLIP_ACTIVATIONS.join(', ')}`;

function encoderFields(json: Json, d: CLIPEncoderConfig, where: string): CLIPEncoderConfig {
  const c: CLIPEncoderConfig = {
    hiddenSize: field(json, 'hidden_size', d.hiddenSize, where, positiveInt),
    intermediateSize: field(json, 'intermediate_size', d.intermediateSize, where, positiveInt),
    numHiddenLayers: field(json, 'num_hidden_layers', d.numHiddenLayers, where, positiveInt),
    numAttentionHeads: field(json, 'num_attention_heads', d.numAttentionHeads, where, positiveInt),
    hiddenAct: field(json, 'hidden_act', d.hiddenAct, where, activation),
    layerNormEps: field(json, 'layer_norm_eps', d.layerNormEps, where, positiveNumber),
  };
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    throw new CLIPConfigError(where, `hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numAttentionHeads}`);
  }
  return c;
}

function expectModelType(json: Json, allowed: string[], where: string): void {
  const t = json.model_type;
  if (t !== undefined && t !== null && !allowed.includes(t as string)) {
    throw new CLIPConfigError(where, `model_type is ${JSON.stringify(t)}, expected ${allowed.map((a) => `'${a}'`).join(' or ')}`);
  }
}

/**
 * A CLIPTextConfig from a text encoder's config.json (unknown keys such as id2label are ignored).
 * A whole CLIPConfig (model_type 'clip') is accepted too: its text_config is read.
 */
export function parseCLIPTextConfig(json: unknown, where = 'text encoder config'): CLIPTextConfig {
  if (!isObject(json)) throw new CLIPConfigError(where, 'expected a JSON object');
  if (json.model_type === 'clip') return parseCLIPTextConfig(json.text_config ?? {}, `${where} (text_config)`);
  expectModelType(json, ['clip_text_model'], where);
  const d = CLIP_TEXT_DEFAULTS;
  const c: CLIPTextConfig = {
    ...encoderFields(json, d, where),
    vocabSize: field(json, 'vocab_size', d.vocabSize, where, positiveInt),
    maxPositionEmbeddings: field(json, 'max_position_embeddings', d.maxPositionEmbeddings, where, positiveInt),
    projectionDim: field(json, 'projection_dim', d.projectionDim, where, positiveInt),
    padTokenId: field(json, 'pad_token_id', d.padTokenId, where, tokenId),
    bosTokenId: field(json, 'bos_token_id', d.bosTokenId, where, tokenId),
    eosTokenId: field(json, 'eos_token_id', d.eosTokenId, where, tokenId),
  };
  // eos 2 selects the legacy pooling rule (argmax of ids) and need not be a real token id
  if (c.eosTokenId !== 2 && c.eosTokenId >= c.vocabSize) {
    throw new CLIPConfigError(where, `eos_token_id ${c.eosTokenId} is outside the vocabulary (vocab_size ${c.vocabSize})`);
  }
  return c;
}

/** A CLIPVisionConfig from config.json (or a CLIPConfig's vision_config). */
export function parseCLIPVisionConfig(json: unknown, where = 'vision config'): CLIPVisionConfig {
  if (!isObject(json)) throw new CLIPConfigError(where, 'expected a JSON object');
  if (json.model_type === 'clip') return parseCLIPVisionConfig(json.vision_config ?? {}, `${where} (vision_config)`);
  expectModelType(json, ['clip_vision_model'], where);
  const d = CLIP_VISION_DEFAULTS;
  const c: CLIPVisionConfig = {
    ...encoderFields(json, d, where),
    numChannels: field(json, 'num_channels', d.numChannels, where, positiveInt),
    imageSize: field(json, 'image_size', d.imageSize, where, positiveInt),
    patchSize: field(json, 'patch_size', d.patchSize, where, positiveInt),
    projectionDim: field(json, 'projection_dim', d.projectionDim, where, positiveInt),
  };
  if (c.imageSize % c.patchSize !== 0) {
    throw new CLIPConfigError(where, `image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`);
  }
  return c;
}

/** A CLIPConfig (both towers and the projections) from a CLIPModel's config.json. */
export function parseCLIPConfig(json: unknown, where = 'CLIP config'): CLIPConfig {
  if (!isObject(json)) throw new CLIPConfigError(where, 'expected a JSON object');
  expectModelType(json, ['clip'], where);
  for (const k of ['text_config', 'vision_config']) {
    if (json[k] !== undefined && json[k] !== null && !isObject(json[k])) throw new CLIPConfigError(where, `'${k}' must be an object`);
  }
  return {
    textConfig: parseCLIPTextConfig(json.text_config ?? {}, `${where} (text_config)`),
    visionConfig: parseCLIPVisionConfig(json.vision_config ?? {}, `${where} (vision_config)`),
    projectionDim: field(json, 'projection_dim', 512, where, positiveInt),
    logitScaleInitValue: field(json, 'logit_scale_init_value', 2.6592, where, finiteNumber),
  };
}
