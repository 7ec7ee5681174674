// `imagic convert`: a single-file LDM checkpoint written out as a diffusers folder (model_index.json,
// unet/, vae/, text_encoder/, scheduler/, and tokenizer/ when one is given), atomically.
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Module } from '../../nn/index.js';
import { saveSafetensors } from '../safetensors.js';
import { SingleFileError } from './detect.js';
import { loadSingleFile, type SingleFileModels, type SingleFileOptions } from './load.js';

export interface ConvertOptions extends Pick<SingleFileOptions, 'config' | 'textEncoderHeads' | 'dtype' | 'onProgress'> {
  /** A tokenizer folder (vocab.json, merges.txt, ...) copied into tokenizer/. */
  tokenizerDir?: string;
  /** Replace an existing output folder. */
  overwrite?: boolean;
}

export interface ConvertResult {
  outDir: string;
  variant: string;
  warnings: string[];
  skipped: SingleFileModels['skipped'];
}

/**
 * Loads `file` (checked key by key) and writes it as a diffusers folder at `outDir`: first into a
 * temporary sibling folder, renamed into place only once everything is written.
 */
export function convertSingleFile(file: string, outDir: string, opts: ConvertOptions = {}): ConvertResult {
  if (existsSync(outDir) && !opts.overwrite && readdirSync(outDir).length > 0) {
    throw new SingleFileError(outDir, 'the output folder exists and is not empty (overwrite it explicitly)');
  }
  const m = loadSingleFile(file, { config: opts.config, textEncoderHeads: opts.textEncoderHeads, dtype: opts.dtype, onProgress: opts.onProgress });
  const tmp = `${outDir.replace(/[\\/]+$/, '')}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const write = (name: string, configName: string, config: object, weights?: { file: string; module: Module }) => {
      mkdirSync(path.join(tmp, name), { recursive: true });
      writeFileSync(path.join(tmp, name, configName), `${JSON.stringify(config, null, 2)}\n`);
      if (weights) saveSafetensors(path.join(tmp, name, weights.file), new Map(Object.entries(weights.module.stateDict())), { format: 'pt' });
    };
    write('unet', 'config.json', m.arch.unet, { file: 'diffusion_pytorch_model.safetensors', module: m.unet });
    write('vae', 'config.json', m.arch.vae, { file: 'diffusion_pytorch_model.safetensors', module: m.vae });
    write('text_encoder', 'config.json', m.arch.textEncoder, { file: 'model.safetensors', module: m.textEncoder });
    write('scheduler', 'scheduler_config.json', m.arch.scheduler);
    const index: Record<string, unknown> = {
      _class_name: 'StableDiffusionPipeline', _diffusers_version: m.arch.unet._diffusers_version,
      unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
      text_encoder: ['transformers', 'CLIPTextModel'], scheduler: ['diffusers', 'DDIMScheduler'],
    };
    if (opts.tokenizerDir !== undefined) {
      cpSync(opts.tokenizerDir, path.join(tmp, 'tokenizer'), { recursive: true });
      index.tokenizer = ['transformers', 'CLIPTokenizer'];
    }
    writeFileSync(path.join(tmp, 'model_index.json'), `${JSON.stringify(index, null, 2)}\n`);
    if (existsSync(outDir)) rmSync(outDir, { recursive: true, force: true });
    renameSync(tmp, outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    m.unet.dispose();
    m.vae.dispose();
    m.textEncoder.dispose();
  }
  return { outDir, variant: m.arch.variant, warnings: m.arch.warnings, skipped: m.skipped };
}
