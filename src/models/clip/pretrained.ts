// Loading CLIP from a transformers-format folder (config.json + model.safetensors): a Stable Diffusion
// checkpoint's text_encoder/ or a CLIPModel for the CLIP score. Built on 'meta', then filled strictly.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type DType, type Device } from '../../engine/index.js';
import { resolveWeightFiles } from '../../io/diffusers.js';
import { loadWeights } from '../../io/load.js';
import { CLIPConfigError, parseCLIPConfig, parseCLIPTextConfig } from './config.js';
import { CLIPModel, CLIP_MODEL_IGNORE_KEYS } from './clip-model.js';
import { CLIPTextModel, CLIP_TEXT_IGNORE_KEYS, clipTextCheckpointKey } from './text-model.js';
import { CLIPTextModelWithProjection } from './text-model-with-projection.js';

export interface FromPretrainedOptions {
  dtype?: DType; // float32 unless given
  device?: Device; // 'cpu' unless given
  /** Reads model.<variant>.safetensors (e.g. 'fp16'). */
  variant?: string;
}

/** config.json of a folder, parsed as JSON (errors name the file). */
export function readConfigJson(dir: string): unknown {
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) throw new CLIPConfigError(file, 'not found');
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CLIPConfigError(file, `not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Streams a transformers-format folder's safetensors (single, sharded or a variant) into a model built
 * on 'meta' from its config, with io's strict header-first loader: the weights are held once.
 */
function loadInto<M extends CLIPTextModel | CLIPModel | CLIPTextModelWithProjection>(dir: string, model: M, opts: FromPretrainedOptions, extra: { rename?: (k: string) => string | null; ignore: readonly string[] }): M {
  try {
    const { files } = resolveWeightFiles(dir, { variant: opts.variant, library: 'transformers' });
    loadWeights(model, files, { dtype: opts.dtype ?? 'float32', device: opts.device, rename: extra.rename, ignore: [...extra.ignore] });
  } catch (e) {
    model.dispose();
    throw e;
  }
  model.eval();
  return model;
}

/** SDXL's text_encoder_2/ (CLIPTextModelWithProjection): the tower's keys as loadCLIPTextModel reads them, and text_projection. */
export function loadCLIPTextModelWithProjection(dir: string, opts: FromPretrainedOptions = {}): CLIPTextModelWithProjection {
  const config = parseCLIPTextConfig(readConfigJson(dir), path.join(dir, 'config.json'));
  const model = new CLIPTextModelWithProjection(config, { device: 'meta', dtype: opts.dtype ?? 'float32' });
  return loadInto(dir, model, opts, { ignore: CLIP_TEXT_IGNORE_KEYS.map((k) => `text_model.${k}`) });
}

/** A text encoder folder (SD's text_encoder/): keys with or without the 'text_model.' prefix, position_ids ignored. */
export function loadCLIPTextModel(dir: string, opts: FromPretrainedOptions = {}): CLIPTextModel {
  const config = parseCLIPTextConfig(readConfigJson(dir), path.join(dir, 'config.json'));
  const model = new CLIPTextModel(config, { device: 'meta', dtype: opts.dtype ?? 'float32' });
  return loadInto(dir, model, opts, { rename: clipTextCheckpointKey, ignore: CLIP_TEXT_IGNORE_KEYS });
}

/** A CLIPModel folder (both towers and the projections). */
export function loadCLIPModel(dir: string, opts: FromPretrainedOptions = {}): CLIPModel {
  const config = parseCLIPConfig(readConfigJson(dir), path.join(dir, 'config.json'));
  const model = new CLIPModel(config, { device: 'meta', dtype: opts.dtype ?? 'float32' });
  return loadInto(dir, model, opts, { ignore: CLIP_MODEL_IGNORE_KEYS });
}
