// `imagic compare IMAGE "text"`: Imagic next to the two baselines, SDEdit and DDIM inversion, on the
// same input and text, as one labelled side-by-side sheet (and each image on its own).
import path from 'node:path';
import { dispose, type Tensor } from '../engine/index.js';
import { tensorToImage, writePng, type RgbImage } from '../io/image.js';
import { sideBySide } from '../io/sheet.js';
import { ddimInversionEdit, disposeStableDiffusion, img2img } from '../pipelines/index.js';
import { renderEdit, resolveSettings, type Embeddings } from '../pipelines/imagic/index.js';
import { checkTargetText, defaultPreset, defaultSessionDir, loadInput, trainWithProgress, type EditArgs } from './edit.js';
import { loadModel, logger } from './model.js';
import { checkOutputs, interruptFlag, withSuffix } from './options.js';
import { stepProgress } from './progress.js';

export interface CompareArgs extends EditArgs {
  /** SDEdit's noise strength. */
  strength: number;
  /** DDIM inversion's source caption (default: the empty prompt). */
  sourceText?: string;
}

export async function compare(imageFile: string, target: string, a: CompareArgs): Promise<{ sheet: string; interrupted: boolean }> {
  if (target.trim() === '') throw new Error('the target text is empty');
  if (!(a.strength >= 0 && a.strength <= 1)) throw new RangeError(`strength must be in [0, 1], got ${a.strength}`);
  const settings = resolveSettings(a.preset ?? defaultPreset(a.model), {
    stepsA: a.stepsA, stepsB: a.stepsB, lrA: a.lrA, lrB: a.lrB, train: a.train, mixedPrecision: a.mixedPrecision, seed: a.seed,
    sampleLatent: a.sampleLatent, checkpointEvery: a.checkpointEvery, gradientCheckpointing: a.gradientCheckpointing, steps: a.steps, guidanceScale: a.guidance, eta: a.etas?.[0],
  });
  const names = { imagic: withSuffix(a.output, 'imagic'), sdedit: withSuffix(a.output, 'sdedit'), ddim: withSuffix(a.output, 'ddim-inversion') };
  checkOutputs([a.output, ...Object.values(names)], a.force ?? false);
  const log = logger(a.quiet);
  checkTargetText(a.model, target, log);
  const sd = await loadModel(a);
  const stop = interruptFlag(log);
  const seed = a.seeds[0] ?? 0;
  const tensors: Tensor[] = [];
  let emb: Embeddings | null = null;
  try {
    const input = await loadInput(imageFile, sd, log);
    tensors.push(input);
    const dir = a.session ?? defaultSessionDir(a.output);
    const result = await trainWithProgress(sd, dir, { image: input, imageSource: path.resolve(imageFile), target, modelSource: a.model }, settings, a, stop.stopped, log);
    emb = result.embeddings;
    if (result.interrupted) {
      log(`interrupted: the session ${dir} is saved; run the same command again to resume`);
      return { sheet: a.output, interrupted: true };
    }
    const images: RgbImage[] = [tensorToImage(input)];
    const run = async (label: string, file: string, fn: (onStep: (i: number) => void) => Tensor | Promise<Tensor>) => {
      const b = stepProgress(label, settings.steps, a.quiet);
      let t: Tensor;
      try {
        t = await fn((i) => b.update(Math.min(i, settings.steps)));
      } finally {
        b.stop();
      }
      const rgb = tensorToImage(t);
      t.dispose();
      await writePng(file, rgb);
      images.push(rgb);
    };
    await run('imagic', names.imagic, async (onStep) => {
      const r = await renderEdit(sd, emb!, { eta: settings.eta, seed, steps: settings.steps, guidanceScale: settings.guidanceScale, onStep });
      r.latent.dispose();
      return r.image;
    });
    // The baselines use the base model: Imagic's fine-tuned weights stay in the session.
    disposeStableDiffusion(sd);
    const base = await loadModel({ ...a, quiet: true });
    try {
      await run('sdedit', names.sdedit, (onStep) => {
        const r = img2img(base, { image: input, prompt: target, strength: a.strength, steps: settings.steps, guidanceScale: settings.guidanceScale, seed, onStep, onWarning: log });
        r.latents.dispose();
        return r.images;
      });
      await run('ddim inv.', names.ddim, async (onStep) => {
        let i = 0;
        const r = await ddimInversionEdit(base, {
          image: input, sourcePrompt: a.sourceText ?? '', targetPrompt: target, steps: settings.steps, guidanceScale: settings.guidanceScale, seed,
          onStep: (phase) => onStep(phase === 'generate' ? ++i : 0), onWarning: log,
        });
        dispose([r.latents, r.invertedLatents]);
        return r.images;
      });
    } finally {
      disposeStableDiffusion(base);
    }
    const sheet = await sideBySide(images, ['input', 'Imagic', 'SDEdit', 'DDIM inv.'], { title: `"${target}" (Imagic eta ${settings.eta}, SDEdit strength ${a.strength}, seed ${seed})` });
    await writePng(a.output, sheet);
    log(`wrote ${a.output} (input | Imagic | SDEdit | DDIM inversion) and ${Object.values(names).join(', ')}`);
    return { sheet: a.output, interrupted: false };
  } finally {
    stop.dispose();
    dispose(tensors);
    if (emb) dispose(Object.values(emb));
    disposeStableDiffusion(sd);
  }
}
