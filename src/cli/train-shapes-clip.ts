// `imagic train-shapes-clip`: trains the Shapes-64 domain CLIP (the metrics of the automatic eta on
// the embedded model), resumable, measures its zero-shot reading of each attribute, and exports it as
// a transformers CLIPModel folder.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { dispose, setNumThreads } from '../engine/index.js';
import { ATTRIBUTES, mulberry32, randomSpec, type AttributeName } from '../shapes/spec.js';
import { DEFAULT_CLIP_TRAIN_SETTINGS, exportShapesClip, shapesClipTokenizer, trainShapesClip, zeroShotAccuracy, type ClipTrainSettings } from '../shapes/train/clip.js';
import { renderBatch } from '../shapes/train/data.js';
import { interruptFlag } from './options.js';
import { stepProgress } from './progress.js';
import { logger } from './model.js';

export interface TrainShapesClipArgs {
  steps?: number;
  lr?: number;
  warmup?: number;
  groupSize?: number;
  variants?: string;
  init?: string;
  seed?: number;
  export?: string;
  force?: boolean;
  device: string;
  threads?: number;
  quiet?: boolean;
}

export async function trainShapesClipCommand(dir: string, a: TrainShapesClipArgs): Promise<{ interrupted: boolean }> {
  const log = logger(a.quiet);
  if (a.threads !== undefined) setNumThreads(a.threads);
  if (a.init && !existsSync(a.init)) throw new Error(`--init: ${a.init} does not exist (give another run's checkpoint.safetensors)`);
  if (a.export && existsSync(a.export) && !a.force) throw new Error(`${a.export} already exists (use --force to replace it)`);
  const variants = a.variants?.split(',').map((v) => v.trim()) as AttributeName[] | undefined;
  const bad = variants?.filter((v) => !(ATTRIBUTES as readonly string[]).includes(v)) ?? [];
  if (bad.length > 0) throw new Error(`--variants: ${bad.join(', ')} ${bad.length === 1 ? 'is not an attribute' : 'are not attributes'} (${ATTRIBUTES.join(', ')})`);
  const settings: ClipTrainSettings = {
    ...DEFAULT_CLIP_TRAIN_SETTINGS,
    ...(a.steps !== undefined ? { steps: a.steps } : {}), ...(a.lr !== undefined ? { lr: a.lr } : {}),
    ...(a.warmup !== undefined ? { warmup: a.warmup } : {}), ...(a.groupSize !== undefined ? { groupSize: a.groupSize } : {}),
    ...(a.seed !== undefined ? { seed: a.seed } : {}), ...(a.init ? { initFrom: path.resolve(a.init) } : {}),
    ...(variants ? { variantAttributes: variants } : {}),
  };
  const stop = interruptFlag(log);
  const bar = stepProgress('clip', settings.steps, a.quiet);
  let recent: number[] = [];
  let trained;
  try {
    trained = await trainShapesClip(dir, settings, {
      onLog: log, shouldStop: stop.stopped,
      onStep: (step, _total, loss) => {
        recent.push(loss);
        if (recent.length > 50) recent = recent.slice(-50);
        bar.update(step, { loss: (recent.reduce((x, y) => x + y, 0) / recent.length).toFixed(4) });
      },
    }, a.device);
  } finally {
    bar.stop();
    stop.dispose();
  }
  const { model, step } = trained;
  try {
    if (step < settings.steps) {
      log(`stopped at step ${step}/${settings.steps}: saved in ${dir}; run the same command to resume`);
      return { interrupted: true };
    }
    const rng = mulberry32(424242);
    const specs = Array.from({ length: 600 }, () => randomSpec(rng));
    const images = renderBatch(specs, a.device);
    const acc = zeroShotAccuracy(model, shapesClipTokenizer(), images, specs);
    dispose(images);
    log(`zero-shot reading of 600 fresh renders: ${Object.entries(acc).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(', ')}`);
    if (a.export) {
      exportShapesClip(model, a.export, { trainedBy: 'imagic train-shapes-clip', steps: step, settings, zeroShot: acc });
      log(`exported ${path.resolve(a.export)}`);
    }
    return { interrupted: false };
  } finally {
    model.dispose();
  }
}
