// Loading CLIP from a transformers-format folder (config.json + model.safetensors): a Stable Diffusion
// checkpoint's text_encoder/ or a CLIPModel for the CLIP score. Built on 'meta', then filled strictly.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { dispose, type DType, type Device } from '../../engine/index.js';
import { loadSafetensors } from '../../io/safetensors.js';
import { CLIPConfigError, parseCLIPConfig, parseCLIPTextConfig } from './config.js';
import { CLIPModel } from './clip-model.js';
import { CLIPTextModel } from './text-model.js';

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

function weightsFile(dir: string, variant?: string): string {
  const file = path.join(dir, variant ? `model.${variant}.safetensors` : 'model.safetensors');
  if (!existsSync(file)) throw new CLIPConfigError(dir, `no ${path.basename(file)} (only safetensors weights are read)`);
  return file;
}

/** A text encoder folder (SD's text_encoder/): keys with or without the 'text_model.' prefix, position_ids ignored. */
export function loadCLIPTextModel(dir: string, opts: FromPretrainedOptions = {}): CLIPTextModel {
  const config = parseCLIPTextConfig(readConfigJson(dir), path.join(dir, 'config.json'));
  const model = new CLIPTextModel(config, { device: 'meta', dtype: opts.dtype ?? 'float32' });
  const file = weightsFile(dir, opts.variant);
  const sd = loadSafetensors(file, { dtype: opts.dtype ?? 'float32', device: opts.device });
  try {
    model.loadStateDict(sd, { source: file });
  } finally {
    dispose([...sd.values()]);
  }
  return model.eval();
}

/** A CLIPModel folder (both towers and the projections). */
export function loadCLIPModel(dir: string, opts: FromPretrainedOptions = {}): CLIPModel {
  const config = parseCLIPConfig(readConfigJson(dir), path.join(dir, 'config.json'));
  const model = new CLIPModel(config, { device: 'meta', dtype: opts.dtype ?? 'float32' });
  const file = weightsFile(dir, opts.variant);
  const sd = loadSafetensors(file, { dtype: opts.dtype ?? 'float32', device: opts.device });
  try {
    model.loadStateDict(sd, { source: file });
  } finally {
    dispose([...sd.values()]);
  }
  return model.eval();
}
