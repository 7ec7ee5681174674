// `imagic edit` and `imagic render`: an Imagic edit with its session, and more renders from a session.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { dispose, type Tensor } from '../engine/index.js';
import { tensorToImage, writePng, type RgbImage } from '../io/image.js';
import { contactSheet } from '../io/sheet.js';
import { disposeStableDiffusion, type StableDiffusion } from '../pipelines/index.js';
import { embeddingTensors, modelLoadRecord, AUTO_ETAS, DEFAULT_PRESERVATION, EditSession, defaultPreset, INVERTED_SEED, etaWarning, openForRender, renderGrid, resolveSettings, runEdit, type Candidate, type CandidateScorer, type PreservationMetric, type EditInputs, type EditResult, type Embeddings, type ImagicSettings, type PresetName, type TrainMode } from '../pipelines/imagic/index.js';
import type { LoRATargets } from '../nn/index.js';
import { interruptFlag } from './options.js';
import { loadInputImage } from '../api/input.js';
import { checkPlan, finishReport, gridKey, metricsReport, planRender, renderAuto, saveSessionInput, loadSessionInput, scoreImage, type EtaSpec, type RenderPlan, type ReportContext } from './auto.js';
import { formatEta, loadCandidateScorer, seedText, type ClipSource, type MetricsReport } from './metrics.js';
import { stepProgress, type StepProgress } from './progress.js';
import { loadModel, logger, type ModelArgs } from './model.js';
import { captionWarnings, isShapesModel } from '../shapes/domain.js';

export interface RenderArgs {
  output: string;
  /** Numbers, or 'auto' (edit and compare: the default). */
  etas?: EtaSpec;
  /** Default: [0], or AUTO_SEEDS (the input's inverted noise and seeds 0-3) with --eta auto. */
  seeds?: number[];
  steps?: number;
  guidance?: number;
  force?: boolean;
  /** Score what is rendered (CLIP score, CLIP-I) and write the report; implied by --eta auto. */
  metrics?: boolean;
  /** The CLIP for the scores (default: <model>/clip, else CLIP ViT-L/14 from the Hub). */
  clipModel?: string;
  /** How preservation is measured (default DEFAULT_PRESERVATION, the one the rule was calibrated with). */
  preservation?: PreservationMetric;
}

export interface EditArgs extends ModelArgs, RenderArgs {
  /** Default: 'shapes' for the Shapes-64 model, else 'default'. */
  preset?: PresetName;
  stepsA?: number;
  stepsB?: number;
  lrA?: number;
  lrB?: number;
  train?: TrainMode;
  loraRank?: number;
  loraTargets?: LoRATargets;
  mixedPrecision?: 'no' | 'bf16' | 'fp16';
  seed?: number;
  sampleLatent?: boolean;
  checkpointEvery?: number;
  gradientCheckpointing?: boolean;
  session?: string;
  restart?: boolean;
  /** Each training step as it completes (besides the progress bars). */
  onStep?: (stage: 'A' | 'B', step: number, total: number, loss: number) => void;
}

/** Renders the plan's etas x seeds from trained embeddings; writes the images and, for a sweep, the labelled sheet. With a scorer, scores each image. */
export async function renderAll(sd: StableDiffusion, emb: Embeddings, p: RenderPlan, r: { steps: number; guidance: number }, log: (m: string) => void, quiet?: boolean, score?: { scorer: CandidateScorer; target: string; input: Tensor }): Promise<{ written: string[]; scored: { candidate: Candidate; file: string }[] }> {
  for (const eta of p.etas) {
    const w = etaWarning(eta);
    if (w) log(`warning: ${w}`);
  }
  const grid = new Map<string, RgbImage>();
  const scored: { candidate: Candidate; file: string }[] = [];
  const bar = stepProgress('render', p.etas.length * p.seeds.length * r.steps, quiet);
  try {
    await renderGrid(sd, emb, {
      etas: p.etas, seeds: p.seeds, steps: r.steps, guidanceScale: r.guidance,
      onStep: (d) => bar.update(d),
      onImage: async (image: Tensor, eta, seed) => {
        try {
          const file = p.files.get(gridKey(eta, seed))!;
          if (score) scored.push({ candidate: scoreImage(score.scorer, image, score.target, score.input, eta, seed), file });
          const rgb = tensorToImage(image);
          grid.set(gridKey(eta, seed), rgb);
          await writePng(file, rgb);
        } finally {
          image.dispose();
        }
      },
    });
  } finally {
    bar.stop();
  }
  const written = [...p.files.values()];
  if (p.sheet) {
    const rows = p.seeds.map((seed) => p.etas.map((eta) => grid.get(gridKey(eta, seed))!));
    const sheet = await contactSheet(rows, { rowLabels: p.seeds.map((s) => `seed ${s}`), colLabels: p.etas.map((e) => `eta ${e}`) });
    await writePng(p.sheet, sheet);
    written.push(p.sheet);
  }
  return { written, scored };
}

/**
 * What a finished session renders: the plan's images, or with auto the candidates and the choice;
 * with scores, the report (JSON, CSV, plot), the session's auto-choice.json and the table.
 */
export async function renderPlanned(sd: StableDiffusion, emb: Embeddings, p: RenderPlan, c: Omit<ReportContext, 'scorer'> & { scorer: CandidateScorer | null }, input: Tensor | null, log: (m: string) => void, quiet?: boolean): Promise<{ outputs: string[]; report: MetricsReport | null }> {
  if (p.auto) {
    const { report } = await renderAuto(sd, emb, p, { ...c, scorer: c.scorer! }, input!, quiet);
    const files = await finishReport(p, report, log);
    return { outputs: [p.output, ...files], report };
  }
  const { written, scored } = await renderAll(sd, emb, p, { steps: c.steps, guidance: c.guidanceScale }, log, quiet, c.scorer ? { scorer: c.scorer, target: c.target, input: input! } : undefined);
  if (!c.scorer) return { outputs: written, report: null };
  const report = metricsReport({ ...c, scorer: c.scorer }, scored);
  const files = await finishReport(p, report, log);
  return { outputs: [...written, ...files], report };
}

/** Loads and prepares the input image at the model's resolution ([1, 3, H, W] in [-1, 1]). */
export async function loadInput(file: string, sd: StableDiffusion, log: (m: string) => void): Promise<Tensor> {
  return loadInputImage(file, sd, log);
}

/** Warns about target text the Shapes-64 model cannot know (other models: nothing to check). */
export function checkTargetText(model: string, text: string, log: (m: string) => void): void {
  if (isShapesModel(model)) for (const w of captionWarnings(text)) log(`warning: ${w}`);
}

/** runEdit with a progress bar per stage (step, loss, time left), stopping when `stopped()` says so. */
export async function trainWithProgress(sd: StableDiffusion, dir: string, inputs: EditInputs, settings: ImagicSettings, a: { quiet?: boolean; restart?: boolean; onStep?: EditArgs['onStep'] }, stopped: () => boolean, log: (m: string) => void): Promise<EditResult> {
  let bar: StepProgress | null = null;
  try {
    return await runEdit(sd, dir, inputs, settings, {
      onLog: log,
      shouldStop: stopped,
      onStage: (stage, total, startAt) => {
        bar?.stop();
        bar = stepProgress(`stage ${stage}`, total, a.quiet);
        if (startAt > 0) bar.update(startAt);
      },
      onStep: (stage, step, total, loss) => {
        bar?.update(step, { loss: loss.toFixed(4) });
        a.onStep?.(stage, step, total, loss);
      },
    }, { restart: a.restart });
  } finally {
    (bar as StepProgress | null)?.stop();
  }
}

export function defaultSessionDir(output: string): string {
  const ext = path.extname(output);
  return `${output.slice(0, output.length - ext.length)}.imagic`;
}

/** The CLIP scorer when the plan needs scores (loaded before any training, so that a missing or broken CLIP fails first). */
export async function scorerFor(p: RenderPlan, a: { model: string; clipModel?: string; preservation?: PreservationMetric; device: string; offline?: boolean; quiet?: boolean }, log: (m: string) => void): Promise<{ scorer: (CandidateScorer & { dispose(): void }) | null; clip: ClipSource | null }> {
  if (!p.metrics) return { scorer: null, clip: null };
  return loadCandidateScorer(a, a.preservation ?? DEFAULT_PRESERVATION, p.auto, log);
}

export async function edit(imageFile: string, target: string, a: EditArgs): Promise<{ outputs: string[]; session: string; interrupted: boolean; report: MetricsReport | null }> {
  if (target.trim() === '') throw new Error('the target text is empty');
  const etas = a.etas ?? 'auto';
  const settings = resolveSettings(a.preset ?? defaultPreset(a.model), {
    stepsA: a.stepsA, stepsB: a.stepsB, lrA: a.lrA, lrB: a.lrB, train: a.train, loraRank: a.loraRank, loraTargets: a.loraTargets, mixedPrecision: a.mixedPrecision,
    seed: a.seed, sampleLatent: a.sampleLatent, checkpointEvery: a.checkpointEvery, gradientCheckpointing: a.gradientCheckpointing, steps: a.steps, guidanceScale: a.guidance,
    eta: etas !== 'auto' && etas.length === 1 ? etas[0] : undefined,
  });
  const plan = planRender(a.output, etas, a.seeds, a.metrics ?? false, settings.autoEtas);
  checkPlan(plan, a.force ?? false);
  const log = logger(a.quiet);
  checkTargetText(a.model, target, log);
  const t0 = Date.now();
  let sd: StableDiffusion | null = null;
  let scorer: (CandidateScorer & { dispose(): void }) | null = null;
  let stop: ReturnType<typeof interruptFlag> | null = null;
  let input: Tensor | null = null;
  let emb: Embeddings | null = null;
  try {
    sd = await loadModel(a);
    input = await loadInput(imageFile, sd, log);
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
      return { outputs: [], session: dir, interrupted: true, report: null };
    }
    const { outputs, report } = await renderPlanned(sd, emb!, plan, {
      command: 'edit', target, inputFile: imageFile, session: dir, scorer, clip: clip!, steps: settings.steps, guidanceScale: settings.guidanceScale,
    }, input, log, a.quiet);
    log(`wrote ${outputs.join(', ')}${plan.auto ? ` and ${plan.files.size} candidates in ${plan.candidatesDir}` : ''}`);
    log(`session: ${dir} (render more with: imagic render ${dir} --eta 0.5,0.6,0.7,0.8 --seeds 0,1,2 -o more.png)`);
    log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { outputs, session: dir, interrupted: false, report };
  } finally {
    stop?.dispose();
    if (input) input.dispose();
    if (emb) dispose(embeddingTensors(emb));
    if (sd) disposeStableDiffusion(sd);
    scorer?.dispose();
  }
}

export async function render(sessionDir: string, a: RenderArgs & Partial<ModelArgs>): Promise<string[]> {
  const session = EditSession.open(sessionDir);
  const etas = a.etas ?? [session.json.settings.eta];
  // Sessions made before presets had candidate etas: the default ones.
  const plan = planRender(a.output, etas, a.seeds, a.metrics ?? false, session.json.settings.autoEtas ?? AUTO_ETAS);
  checkPlan(plan, a.force ?? false);
  const log = logger(a.quiet);
  const target = session.json.target;
  if (plan.metrics && typeof target !== 'string') throw new Error(`session ${sessionDir}: its target is token ids, not text, so the candidates cannot be scored against it (--eta auto, --metrics)`);
  const chosenBefore = session.file('auto-choice.json');
  if (a.etas === undefined && existsSync(chosenBefore)) {
    const c = JSON.parse(readFileSync(chosenBefore, 'utf8')) as { eta: number; seed: number };
    log(`note: rendering the session's eta ${formatEta(session.json.settings.eta)}; its automatic choice was eta ${formatEta(c.eta)}, ${seedText(c.seed)}${c.seed === INVERTED_SEED ? ' (render it again with --eta auto --seeds inverted)' : ` (--eta ${c.eta} --seeds ${c.seed})`}`);
  }
  const model = a.model ?? session.json.model.source;
  // The session's own base: loaded as it was (its YAML, tokenizer, heads), unless options say otherwise.
  const recorded = a.model === undefined ? session.json.model.load ?? {} : {};
  const given = Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined));
  const m = { dtype: 'float32' as const, device: 'cpu', ...recorded, ...given, model } as ModelArgs & typeof a;
  let sd: StableDiffusion | null = null;
  let scorer: (CandidateScorer & { dispose(): void }) | null = null;
  let emb: Embeddings | null = null;
  let input: Tensor | null = null;
  try {
    if (plan.metrics) input = await loadSessionInput(session);
    sd = await loadModel(m);
    const loaded = await scorerFor(plan, m, log);
    scorer = loaded.scorer;
    const clip = loaded.clip;
    emb = openForRender(sd, sessionDir).embeddings;
    const s = session.json.settings;
    const { outputs } = await renderPlanned(sd, emb, plan, {
      command: 'render', target: typeof target === 'string' ? target : '', inputFile: session.json.image.source, session: sessionDir, scorer, clip: clip!,
      steps: a.steps ?? s.steps, guidanceScale: a.guidance ?? s.guidanceScale,
    }, input, log, a.quiet);
    log(`wrote ${outputs.join(', ')}${plan.auto ? ` and ${plan.files.size} candidates in ${plan.candidatesDir}` : ''}`);
    return outputs;
  } finally {
    if (emb) dispose(embeddingTensors(emb));
    if (sd) disposeStableDiffusion(sd);
    input?.dispose();
    scorer?.dispose();
  }
}
