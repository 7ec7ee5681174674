// `imagic convert`: a single-file LDM / sgm checkpoint written out as a diffusers folder (model_index.json,
// unet/, vae/, text_encoder/, SDXL's text_encoder_2/, scheduler/, and tokenizer/ when one is given), atomically.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Module } from '../../nn/index.js';
import { saveSafetensors } from '../safetensors.js';
import { SingleFileError } from './detect.js';
import { loadSingleFile, type SingleFileModels, type SingleFileOptions } from './load.js';

export interface ConvertOptions extends Pick<SingleFileOptions, 'config' | 'textEncoderHeads' | 'dtype' | 'onProgress' | 'unknownGlobals'> {
  /**
   * A tokenizer folder (vocab.json, merges.txt, ...) copied into tokenizer/; or a model folder with
   * tokenizer/ (and, for SDXL, tokenizer_2/) whose tokenizers are copied. For SDXL without a
   * tokenizer_2/, tokenizer_2/ is the same files with SDXL's pad token '!' (reported in warnings).
   */
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
  const m = loadSingleFile(file, { config: opts.config, textEncoderHeads: opts.textEncoderHeads, dtype: opts.dtype, onProgress: opts.onProgress, unknownGlobals: opts.unknownGlobals });
  const tmp = `${outDir.replace(/[\\/]+$/, '')}.tmp-${process.pid}`;
  const warnings = [...m.arch.warnings];
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
    if (m.textEncoder2 && m.arch.textEncoder2) write('text_encoder_2', 'config.json', m.arch.textEncoder2, { file: 'model.safetensors', module: m.textEncoder2 });
    write('scheduler', 'scheduler_config.json', m.arch.scheduler);
    const xl = m.textEncoder2 !== undefined;
    const index: Record<string, unknown> = {
      _class_name: xl ? 'StableDiffusionXLPipeline' : 'StableDiffusionPipeline', _diffusers_version: m.arch.unet._diffusers_version,
      unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
      text_encoder: ['transformers', 'CLIPTextModel'],
      ...(xl ? { text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'], force_zeros_for_empty_prompt: true } : {}),
      scheduler: ['diffusers', 'DDIMScheduler'],
    };
    if (opts.tokenizerDir !== undefined) {
      const dir = opts.tokenizerDir;
      const tok = existsSync(path.join(dir, 'vocab.json')) ? dir : path.join(dir, 'tokenizer');
      if (!existsSync(path.join(tok, 'vocab.json'))) throw new SingleFileError(dir, 'no vocab.json (nor tokenizer/vocab.json): not a tokenizer folder');
      copyTokenizer(tok, path.join(tmp, 'tokenizer'));
      index.tokenizer = ['transformers', 'CLIPTokenizer'];
      if (xl) {
        const tok2 = path.join(dir, 'tokenizer_2');
        if (existsSync(path.join(tok2, 'vocab.json'))) copyTokenizer(tok2, path.join(tmp, 'tokenizer_2'));
        else {
          copyTokenizer(tok, path.join(tmp, 'tokenizer_2'), '!');
          warnings.push(`${dir} has no tokenizer_2/: tokenizer_2/ is its vocabulary with SDXL's pad token '!', as SDXL base's tokenizer_2`);
        }
        index.tokenizer_2 = ['transformers', 'CLIPTokenizer'];
      }
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
    m.textEncoder2?.dispose();
  }
  return { outDir, variant: m.arch.variant, warnings, skipped: m.skipped };
}

/** Copies a tokenizer folder; `padToken` rewrites tokenizer_config.json's pad_token (SDXL's tokenizer_2 pads with '!'). */
function copyTokenizer(from: string, to: string, padToken?: string): void {
  cpSync(from, to, { recursive: true });
  if (padToken === undefined) return;
  const cfgPath = path.join(to, 'tokenizer_config.json');
  const cfg = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown> : {};
  cfg.pad_token = padToken;
  writeFileSync(cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
}
