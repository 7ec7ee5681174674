// `imagic compare IMAGE "text"`: Imagic next to the two baselines, SDEdit and DDIM inversion, on the
// same input and text, as one labelled side-by-side sheet (and each image on its own); with --eta auto
// or --metrics, every method's CLIP score and CLIP-I in the report and on its plot.
import path from 'node:path';
import { dispose, type Tensor } from '../engine/index.js';
import { tensorToImage, writePng, type RgbImage } from '../io/image.js';
import { sideBySide } from '../io/sheet.js';
import { ddimInversionEdit, disposeStableDiffusion, img2img, type StableDiffusion } from '../pipelines/index.js';
import { embeddingTensors, modelLoadRecord, INVERTED_SEED, defaultPreset, renderEdit, resolveSettings, type CandidateScorer, type Embeddings } from '../pipelines/imagic/index.js';
import { checkPlan, finishReport, gridKey, metricsReport, planRender, renderAuto, saveSessionInput, scoreImage, type RenderPlan } from './auto.js';
import { checkTargetText, defaultSessionDir, loadInput, scorerFor, trainWithProgress, type EditArgs } from './edit.js';
import { formatEta, seedText, type MetricsReport } from './metrics.js';
import { loadModel, logger } from './model.js';
import { interruptFlag, withSuffix } from './options.js';
import { stepProgress } from './progress.js';

export interface CompareArgs extends EditArgs {
  /** SDEdit's noise strength. */
  strength: number;
  /** DDIM inversion's source caption (default: the empty prompt). */
  sourceText?: string;
}

export async function compare(imageFile: string, target: string, a: CompareArgs): Promise<{ sheet: string; interrupted: boolean; report: MetricsReport | null }> {
  if (target.trim() === '') throw new Error('the target text is empty');
  if (!(a.strength >= 0 && a.strength <= 1)) throw new RangeError(`strength must be in [0, 1], got ${a.strength}`);
  const etas = a.etas ?? 'auto';
  const settings = resolveSettings(a.preset ?? defaultPreset(a.model), {
    stepsA: a.stepsA, stepsB: a.stepsB, lrA: a.lrA, lrB: a.lrB, train: a.train, loraRank: a.loraRank, loraTargets: a.loraTargets, mixedPrecision: a.mixedPrecision, seed: a.seed,
    sampleLatent: a.sampleLatent, checkpointEvery: a.checkpointEvery, gradientCheckpointing: a.gradientCheckpointing, steps: a.steps, guidanceScale: a.guidance,
    eta: etas === 'auto' ? undefined : etas[0],
  });
  const names = { imagic: withSuffix(a.output, 'imagic'), sdedit: withSuffix(a.output, 'sdedit'), ddim: withSuffix(a.output, 'ddim-inversion') };
  // The baselines use the first seed (of fresh noise); Imagic the first eta and seed, or (auto) every candidate, chosen into <output>-imagic.png.
  const seed = a.seeds?.find((s) => s !== INVERTED_SEED) ?? 0;
  const p = planRender(a.output, etas === 'auto' ? 'auto' : [settings.eta], etas === 'auto' ? a.seeds : [seed], a.metrics ?? false, settings.autoEtas);
  const plan: RenderPlan = { ...p, output: names.imagic, sheet: null, files: p.auto ? p.files : new Map([[gridKey(settings.eta, seed), names.imagic]]) };
  checkPlan(plan, a.force ?? false, [a.output, names.sdedit, names.ddim]);
  const log = logger(a.quiet);
  checkTargetText(a.model, target, log);
  let sd: StableDiffusion | null = null;
  let scorer: (CandidateScorer & { dispose(): void }) | null = null;
  let stop: ReturnType<typeof interruptFlag> | null = null;
  const tensors: Tensor[] = [];
  let emb: Embeddings | null = null;
  try {
    sd = await loadModel(a);
    const input = await loadInput(imageFile, sd, log);
    tensors.push(input);
    // Before any training: a missing or broken CLIP fails here.
    const loaded = await scorerFor(plan, a, log);
    scorer = loaded.scorer;
    const clip = loaded.clip;
    stop = interruptFlag(log);
    const dir = a.session ?? defaultSessionDir(a.output);
    const result = await trainWithProgress(sd, dir, { image: input, imageSource: path.resolve(imageFile), target, modelSource: a.model, modelLoad: modelLoadRecord(a) }, settings, a, stop.stopped, log);
    emb = result.embeddings;
    await saveSessionInput(dir, input);
    if (result.interrupted) {
      log(`interrupted: the session ${dir} is saved; run the same command again to resume`);
      return { sheet: a.output, interrupted: true, report: null };
    }
    const ctx = { command: 'compare' as const, target, inputFile: imageFile, session: dir, clip: clip!, steps: settings.steps, guidanceScale: settings.guidanceScale };
    const images: RgbImage[] = [tensorToImage(input)];
    /** Runs one method with a progress bar, writes its image, and returns its scores when there is a scorer. */
    const run = async (label: string, file: string, fn: (onStep: (i: number) => void) => Tensor | Promise<Tensor>) => {
      const b = stepProgress(label, settings.steps, a.quiet);
      let t: Tensor;
      try {
        t = await fn((i) => b.update(Math.min(i, settings.steps)));
      } finally {
        b.stop();
      }
      try {
        const rgb = tensorToImage(t);
        await writePng(file, rgb);
        images.push(rgb);
        return scorer ? scoreImage(scorer, t, target, input, settings.eta, seed) : null;
      } finally {
        t.dispose();
      }
    };
    let report: MetricsReport | null = null;
    let imagicLabel: string;
    if (plan.auto) {
      const r = await renderAuto(sd, emb!, plan, { ...ctx, scorer: scorer! }, input, a.quiet);
      images.push(r.chosen);
      report = r.report;
      imagicLabel = `Imagic eta ${formatEta(report.choice!.eta)} ${seedText(report.choice!.seed)}, chosen of ${plan.files.size}`;
    } else {
      const scores = await run('imagic', names.imagic, async (onStep) => {
        const r = await renderEdit(sd!, emb!, { eta: settings.eta, seed, steps: settings.steps, guidanceScale: settings.guidanceScale, onStep });
        r.latent.dispose();
        return r.image;
      });
      if (scorer) report = metricsReport({ ...ctx, scorer }, [{ candidate: scores!, file: names.imagic }]);
      imagicLabel = `Imagic eta ${settings.eta}`;
    }
    // The baselines use the base model: Imagic's fine-tuned weights stay in the session.
    disposeStableDiffusion(sd);
    sd = null;
    const base = await loadModel({ ...a, quiet: true });
    try {
      const sdedit = await run('sdedit', names.sdedit, (onStep) => {
        const r = img2img(base, { image: input, prompt: target, strength: a.strength, steps: settings.steps, guidanceScale: settings.guidanceScale, seed, onStep, onWarning: log });
        r.latents.dispose();
        return r.images;
      });
      const ddim = await run('ddim inv.', names.ddim, async (onStep) => {
        let i = 0;
        const r = await ddimInversionEdit(base, {
          image: input, sourcePrompt: a.sourceText ?? '', targetPrompt: target, steps: settings.steps, guidanceScale: settings.guidanceScale, seed,
          onStep: (phase) => onStep(phase === 'generate' ? ++i : 0), onWarning: log,
        });
        dispose([r.latents, r.invertedLatents]);
        return r.images;
      });
      if (report) {
        report.baselines = [
          { method: 'SDEdit', seed, alignment: sdedit!.alignment, preservation: sdedit!.preservation, file: names.sdedit },
          { method: 'DDIM inversion', seed, alignment: ddim!.alignment, preservation: ddim!.preservation, file: names.ddim },
        ];
      }
    } finally {
      disposeStableDiffusion(base);
    }
    const sheet = await sideBySide(images, ['input', 'Imagic', 'SDEdit', 'DDIM inv.'], { title: `"${target}" (${imagicLabel}; SDEdit strength ${a.strength}, seed ${seed})` });
    await writePng(a.output, sheet);
    const reportFiles = report ? await finishReport(plan, report, log) : [];
    log(`wrote ${a.output} (input | Imagic | SDEdit | DDIM inversion), ${[...Object.values(names), ...reportFiles].join(', ')}${plan.auto ? ` and ${plan.files.size} candidates in ${plan.candidatesDir}` : ''}`);
    return { sheet: a.output, interrupted: false, report };
  } finally {
    stop?.dispose();
    dispose(tensors);
    if (emb) dispose(embeddingTensors(emb));
    if (sd) disposeStableDiffusion(sd);
    scorer?.dispose();
  }
}
