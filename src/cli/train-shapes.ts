// `imagic train-shapes`: trains the embedded Shapes-64 model from scratch (VAE, then text encoder and
// UNet), resumable, and exports it as a diffusers folder.
import path from 'node:path';
import { setNumThreads } from '../engine/index.js';
import { DEFAULT_TRAIN_SETTINGS, exportShapesModel, readRun, trainShapes, type TrainSettings } from '../shapes/train/index.js';
import { interruptFlag } from './options.js';
import { stepProgress, type StepProgress } from './progress.js';
import { logger } from './model.js';

export interface TrainShapesArgs {
  vaeSteps?: number;
  unetSteps?: number;
  seed?: number;
  dataset?: number;
  device: string;
  threads?: number;
  checkpointEvery: number;
  export?: string;
  exportOnly?: boolean;
  force?: boolean;
  quiet?: boolean;
}

export async function trainShapesCommand(dir: string, a: TrainShapesArgs): Promise<{ interrupted: boolean }> {
  const log = logger(a.quiet);
  if (a.threads !== undefined) setNumThreads(a.threads);
  if (!a.exportOnly) {
    const existing = readRun(dir);
    const base: TrainSettings = existing?.settings ?? structuredClone(DEFAULT_TRAIN_SETTINGS);
    const settings: TrainSettings = {
      ...base,
      seed: existing ? base.seed : a.seed ?? base.seed,
      vae: { ...base.vae, steps: a.vaeSteps ?? base.vae.steps },
      unet: { ...base.unet, steps: a.unetSteps ?? base.unet.steps, dataset: existing ? base.unet.dataset : a.dataset ?? base.unet.dataset },
    };
    if (existing && a.seed !== undefined && a.seed !== existing.settings.seed) throw new Error(`the run in '${dir}' was started with seed ${existing.settings.seed}, not ${a.seed}: train into a new folder`);
    log(existing
      ? `resuming the run in ${dir}: VAE ${existing.progress.vae}/${settings.vae.steps}, UNet ${existing.progress.unet}/${settings.unet.steps} steps`
      : `training Shapes-64 from scratch into ${dir} (seed ${settings.seed}): VAE ${settings.vae.steps} steps of ${settings.vae.batchSize}, then text encoder + UNet ${settings.unet.steps} steps of ${settings.unet.batchSize}`);
    const stop = interruptFlag(log);
    const bars = new Map<string, StepProgress>();
    let recent: number[] = [];
    try {
      const run = await trainShapes(dir, settings, {
        shouldStop: stop.stopped,
        onLog: log,
        onStep: (phase, step, total, loss) => {
          let bar = bars.get(phase);
          if (bar === undefined) {
            for (const b of bars.values()) b.stop();
            bar = stepProgress(phase, total, a.quiet);
            bars.set(phase, bar);
            recent = [];
          }
          recent.push(loss);
          if (recent.length > 50) recent.shift();
          bar.update(step, { loss: (recent.reduce((x, y) => x + y, 0) / recent.length).toFixed(4) });
        },
      }, { device: a.device, checkpointEvery: a.checkpointEvery });
      for (const b of bars.values()) b.stop();
      const p = run.progress;
      if (p.vae < run.settings.vae.steps || p.unet < run.settings.unet.steps) return { interrupted: true };
      log(`trained: VAE ${p.vae} steps in ${(p.seconds.vae / 60).toFixed(1)} min, UNet ${p.unet} steps in ${(p.seconds.unet / 60).toFixed(1)} min`);
    } finally {
      for (const b of bars.values()) b.stop();
      stop.dispose();
    }
  }
  if (a.export) {
    const r = exportShapesModel(dir, a.export, { force: a.force });
    for (const n of r.notes) log(`note: ${n}`);
    log(`exported ${path.resolve(r.dir)} (${(r.bytes / 1e6).toFixed(1)} MB of fp16 weights)`);
  }
  return { interrupted: false };
}
