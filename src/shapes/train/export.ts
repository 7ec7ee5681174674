// Exports a training run as a diffusers-format Stable Diffusion folder (model_index.json, scheduler,
// tokenizer, text_encoder, unet, vae; fp16 safetensors of the EMA weights), loadable by the same code
// as a Hub checkpoint. Written to a temporary folder and renamed into place; an existing model card
// (README.md) in the destination is kept.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dispose, noGrad, type Tensor } from '../../engine/index.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { DOMAIN_KEY, SHAPES_DOMAIN } from '../domain.js';
import { writeShapesTokenizer } from '../tokenizer.js';
import { SHAPES_MODEL_INDEX, shapesSchedulerConfig, shapesTextEncoderConfig, shapesUNetConfig, shapesVaeConfig } from './configs.js';
import { readRun } from './run.js';

export interface ExportResult {
  dir: string;
  /** Bytes of weights written. */
  bytes: number;
  notes: string[];
}

function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** name -> fp16 copy, for the keys under `prefix.` (prefix removed). */
function group(all: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, t] of all) if (k.startsWith(`${prefix}.`)) out.set(k.slice(prefix.length + 1), noGrad(() => t.to('float16')));
  return out;
}

/** Writes the run in `runDir` as a diffusers folder at `outDir` (replaced only with `force`). */
export function exportShapesModel(runDir: string, outDir: string, o: { force?: boolean } = {}): ExportResult {
  const run = readRun(runDir);
  if (run === null) throw new Error(`'${runDir}' is not a training run (no run.json)`);
  const notes: string[] = [];
  const { settings, progress } = run;
  if (progress.scalingFactor === null || progress.unet === 0) throw new Error(`the run in '${runDir}' has no trained UNet yet (VAE ${progress.vae}/${settings.vae.steps}, UNet ${progress.unet}/${settings.unet.steps} steps): train it first`);
  if (progress.unet < settings.unet.steps) notes.push(`the UNet has ${progress.unet} of its ${settings.unet.steps} steps: exporting a partly trained model`);
  if (existsSync(outDir) && !o.force) throw new Error(`'${outDir}' exists: pass --force to replace it`);

  const tmp = `${outDir.replace(/[\\/]+$/, '')}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  let bytes = 0;
  const save = (file: string, tensors: Map<string, Tensor>) => {
    mkdirSync(path.dirname(file), { recursive: true });
    saveSafetensors(file, tensors, { format: 'pt' });
    for (const t of tensors.values()) bytes += t.numel * 2;
    dispose([...tensors.values()]);
  };
  try {
    writeJson(path.join(tmp, 'model_index.json'), { ...SHAPES_MODEL_INDEX, [DOMAIN_KEY]: SHAPES_DOMAIN });
    writeJson(path.join(tmp, 'scheduler', 'scheduler_config.json'), shapesSchedulerConfig());
    writeShapesTokenizer(path.join(tmp, 'tokenizer'));
    writeJson(path.join(tmp, 'text_encoder', 'config.json'), { ...shapesTextEncoderConfig(), dtype: 'float16' });
    writeJson(path.join(tmp, 'unet', 'config.json'), shapesUNetConfig());
    writeJson(path.join(tmp, 'vae', 'config.json'), shapesVaeConfig(Number(progress.scalingFactor.toPrecision(6))));

    const vaeCk = loadSafetensors(path.join(runDir, 'vae-checkpoint.safetensors'));
    save(path.join(tmp, 'vae', 'diffusion_pytorch_model.safetensors'), group(vaeCk, 'vae'));
    dispose([...vaeCk.values()]);
    const unetCk = loadSafetensors(path.join(runDir, 'unet-checkpoint.safetensors'));
    save(path.join(tmp, 'text_encoder', 'model.safetensors'), group(unetCk, 'ema.text_encoder'));
    save(path.join(tmp, 'unet', 'diffusion_pytorch_model.safetensors'), group(unetCk, 'ema.unet'));
    dispose([...unetCk.values()]);

    writeJson(path.join(tmp, 'training.json'), {
      settings,
      steps: { vae: progress.vae, unet: progress.unet },
      seconds: progress.seconds,
      latentScalingFactor: progress.scalingFactor,
      exported: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', platform: `${os.platform()} ${os.arch()}` },
    });
    const card = path.join(outDir, 'README.md');
    if (existsSync(card)) copyFileSync(card, path.join(tmp, 'README.md'));
    // Swap in: the old folder moves aside first, so a failure leaves one complete model in place.
    const old = `${outDir.replace(/[\\/]+$/, '')}.old-${process.pid}`;
    if (existsSync(outDir)) renameSync(outDir, old);
    renameSync(tmp, outDir);
    rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { dir: outDir, bytes, notes };
}
