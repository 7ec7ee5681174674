// The public API's Imagic: edit() trains on one image and renders the edit (by default choosing eta
// and the starting noise automatically); render() renders more from a saved session.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dispose, type Tensor } from '../engine/index.js';
import { tensorToImage, type RgbImage } from '../io/image.js';
import {
  embeddingTensors, AUTO_SEEDS, DEFAULT_AUTO_RULE, EditSession, INVERTED_SEED, autoChoose, defaultPreset,
  invertedNoise, openForRender, renderGrid, resolveSettings, runEdit, stageBChangedWeights,
  type CandidateScorer, type Embeddings, type ImagicSettings, type PresetName, type PreservationMetric,
} from '../pipelines/imagic/index.js';
import type { StableDiffusion } from '../pipelines/index.js';
import { captionWarnings, isShapesModel } from '../shapes/domain.js';
import { loadInputImage, loadSessionInput, saveSessionInput, type ImageSource } from './input.js';
import { loadScorer, type Scorer } from './scores.js';
import { abortError, throwIfAborted, withBaseRestored, type Pipeline, type RunOptions } from './pipeline.js';

/** A starting noise: a seed, or 'inverted' (the input's own DDIM-inverted noise; with eta 'auto' only). */
export type Seed = number | 'inverted';

/** Stage C's choices: which etas and noises, and how candidates are scored. */
export interface RenderChoices extends RunOptions {
  /**
   * The interpolation weight of the target text: 'auto' renders the preset's candidate etas from
   * each of `seeds`, scores them with a CLIP and keeps one (the default of edit()); or one value, or
   * several (each rendered from each seed). Values above 1 extrapolate.
   */
  eta?: number | number[] | 'auto';
  /** Default: ['inverted', 0, 1, 2, 3] with 'auto', else [0]. */
  seeds?: Seed[];
  /** DDIM sampling steps (default: the preset's for edit(), which saves it in the session; the session's for render()). */
  steps?: number;
  /** Classifier-free guidance scale (default and saving as for steps). */
  guidanceScale?: number;
  /** Score every image (CLIP score to the text, and preservation), not only with eta 'auto'. */
  scores?: boolean;
  /** The CLIP that scores: a CLIPModel folder or Hub repo id (default: the model's clip/, else CLIP ViT-L/14). */
  clipModel?: string;
  /** How preservation is measured (default 'feature-distance'). */
  preservation?: PreservationMetric;
  /** Never download the CLIP: a folder, or a repo id already in the cache. */
  offline?: boolean;
}

export interface EditOptions extends RenderChoices {
  /** Training and sampling defaults: 'shapes' for the embedded model, else 'default'. */
  preset?: PresetName;
  /** Any of the preset's settings, e.g. { stepsA: 500, stepsB: 250, train: 'lora' }. */
  settings?: Partial<Omit<ImagicSettings, 'eta'>>;
  /**
   * A folder to keep the session in: the trained embeddings and weights, which render() reuses, and
   * what an interrupted edit resumes from. Default: a temporary folder, removed when edit() returns.
   */
  session?: string;
  /** Start the session over even if `session` holds one. */
  restart?: boolean;
}

/** One rendered image with its eta and noise, and its scores when it was scored. */
export interface EditedImage {
  eta: number;
  seed: Seed;
  image: RgbImage;
  /** CLIP score to the target text, 100 * max(cos, 0). */
  alignment?: number;
  /** How much of the input it keeps (higher: more); see RenderChoices.preservation. */
  preservation?: number;
}

/** What edit() and render() return: the image, every image rendered with its scores, and the choice. */
export interface EditOutput {
  /** The chosen image (eta 'auto'), else the first one rendered. */
  image: RgbImage;
  eta: number;
  seed: Seed;
  /** Every image rendered: every candidate with eta 'auto', else each eta for each seed. */
  images: EditedImage[];
  /** eta 'auto': why this candidate won, and the threshold it had to reach. */
  choice: { reason: string; threshold: number; inputAlignment: number } | null;
  /** The session folder, when it is kept (EditOptions.session); null for a temporary one. */
  session: string | null;
  /** The settings the session was trained with. */
  settings: ImagicSettings;
}

const toSeed = (s: number): Seed => (s === INVERTED_SEED ? 'inverted' : s);
const fromSeed = (s: Seed): number => (s === 'inverted' ? INVERTED_SEED : s);

function checkSeeds(seeds: Seed[]): void {
  for (const s of seeds) if (s !== 'inverted' && !(Number.isInteger(s) && s >= 0)) throw new RangeError(`seeds must be non-negative integers or 'inverted', got ${s}`);
}

/** Stage C from trained embeddings: the auto choice, or every eta for every seed. */
async function renderFrom(sd: StableDiffusion, emb: Embeddings, dir: string, input: Tensor | null, target: string, c: {
  etas: number[]; auto: boolean; seeds: Seed[]; steps: number; guidanceScale: number; scorer: CandidateScorer | null;
}, o: RunOptions): Promise<Pick<EditOutput, 'image' | 'eta' | 'seed' | 'images' | 'choice'>> {
  const images: EditedImage[] = [];
  const phase = c.auto ? 'candidates' as const : 'render' as const;
  const onStep = (done: number, total: number) => {
    o.onProgress?.({ phase, step: done, total });
    throwIfAborted(o.signal);
  };
  if (c.auto) {
    let inverted: Tensor | null = null;
    if (c.seeds.includes('inverted')) {
      const e = EditSession.open(dir).loadEmbeddings();
      dispose([...embeddingTensors(e), e.rngAfterA]);
      try {
        inverted = invertedNoise(sd, e.latent, emb.eOpt, c.steps, emb.xl);
      } finally {
        e.latent.dispose();
      }
    }
    try {
      const r = await autoChoose(sd, emb, {
        etas: c.etas, seeds: c.seeds.map(fromSeed), steps: c.steps, guidanceScale: c.guidanceScale, target, input: input!, scorer: c.scorer!,
        rule: DEFAULT_AUTO_RULE, invertedNoise: inverted ?? undefined, onStep,
        onImage: (image, k) => {
          images.push({ eta: k.eta, seed: toSeed(k.seed), image: tensorToImage(image), alignment: k.alignment, preservation: k.preservation });
          image.dispose();
        },
      });
      const chosen = images[r.choice.index]!;
      return { image: chosen.image, eta: chosen.eta, seed: chosen.seed, images, choice: { reason: r.choice.reason, threshold: r.choice.threshold, inputAlignment: r.inputAlignment } };
    } finally {
      inverted?.dispose();
    }
  }
  await renderGrid(sd, emb, {
    etas: c.etas, seeds: c.seeds.map(fromSeed), steps: c.steps, guidanceScale: c.guidanceScale, onStep,
    onImage: (image, eta, seed) => {
      try {
        const scores = c.scorer ? { alignment: c.scorer.alignment(image, target)[0]!, preservation: c.scorer.preservation(image, input!)[0]! } : {};
        images.push({ eta, seed: toSeed(seed), image: tensorToImage(image), ...scores });
      } finally {
        image.dispose();
      }
    },
  });
  const first = images[0]!;
  return { image: first.image, eta: first.eta, seed: first.seed, images, choice: null };
}

function etaList(eta: RenderChoices['eta'], autoEtas: readonly number[]): { etas: number[]; auto: boolean } {
  if (eta === 'auto') return { etas: [...autoEtas], auto: true };
  const etas = typeof eta === 'number' ? [eta] : eta!;
  if (etas.length === 0 || etas.some((e) => !Number.isFinite(e))) throw new RangeError(`eta must be 'auto', a number or a non-empty list of numbers, got ${JSON.stringify(eta)}`);
  return { etas, auto: false };
}

/**
 * Imagic: edits one image towards the target text. Stage A optimizes the text embedding to
 * reconstruct the image, stage B fine-tunes the model on it, and stage C samples from the
 * interpolation of the two embeddings. With eta 'auto' (the default) the candidates are scored with
 * a CLIP and the one that reaches the text while keeping most of the input is returned.
 *
 * The pipeline's weights are restored afterwards, so the same Pipeline serves the next call.
 *
 * @example
 * const pipe = await loadPipeline();
 * const out = await edit(pipe, 'circle.png', 'a red square', { onProgress: (p) => console.log(p) });
 * await writePng('square.png', out.image);
 */
export async function edit(pipe: Pipeline, image: ImageSource, target: string, o: EditOptions = {}): Promise<EditOutput> {
  if (typeof target !== 'string' || target.trim() === '') throw new Error('the target text is empty');
  throwIfAborted(o.signal);
  const sd = pipe.check();
  const log = o.onLog ?? (() => {});
  // Sampling steps and guidance given here are the session's, so that render() samples as the edit did.
  const settings = resolveSettings(o.preset ?? defaultPreset(sd.root), {
    ...o.settings, ...(typeof o.eta === 'number' ? { eta: o.eta } : {}),
    ...(o.steps !== undefined ? { steps: o.steps } : {}), ...(o.guidanceScale !== undefined ? { guidanceScale: o.guidanceScale } : {}),
  });
  const { etas, auto } = etaList(o.eta ?? 'auto', settings.autoEtas);
  const seeds = o.seeds ?? (auto ? AUTO_SEEDS.map(toSeed) : [0]);
  checkSeeds(seeds);
  if (!auto && seeds.includes('inverted')) throw new RangeError("the seed 'inverted' is a candidate of eta 'auto' only");
  if (isShapesModel(sd.root)) for (const w of captionWarnings(target)) log(`warning: ${w}`);

  const dir = o.session ?? mkdtempSync(path.join(os.tmpdir(), 'imagic-session-'));
  let input: Tensor | null = null;
  let emb: Embeddings | null = null;
  let scorer: Scorer | null = null;
  try {
    input = await loadInputImage(image, sd, log);
    // Before any training: a missing or broken CLIP fails here.
    if (auto || o.scores) scorer = await loadScorer(pipe, o, auto);
    return await withBaseRestored(pipe, stageBChangedWeights(sd, settings), async () => {
      let stage: 'stage A' | 'stage B' = 'stage A';
      const r = await runEdit(sd, dir, { image: input!, imageSource: typeof image === 'string' ? path.resolve(image) : '<memory>', target, modelSource: pipe.source, modelLoad: pipe.load }, settings, {
        onLog: log,
        onStage: (s) => (stage = s === 'A' ? 'stage A' : 'stage B'),
        onStep: (_s, step, total, loss) => o.onProgress?.({ phase: stage, step, total, loss }),
        shouldStop: () => o.signal?.aborted ?? false,
      }, { restart: o.restart });
      emb = r.embeddings;
      await saveSessionInput(dir, input!);
      if (r.interrupted) throw abortError(o.signal!);
      const out = await renderFrom(sd, emb!, dir, input, target, { etas, auto, seeds, steps: settings.steps, guidanceScale: settings.guidanceScale, scorer: scorer?.candidateScorer ?? null }, o);
      return { ...out, session: o.session ?? null, settings };
    });
  } finally {
    input?.dispose();
    if (emb) dispose(embeddingTensors(emb as Embeddings));
    scorer?.dispose();
    if (o.session === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Renders more from a session that edit() kept (EditOptions.session), without training again:
 * other etas, other seeds, or the automatic choice among them.
 *
 * @example
 * const sweep = await render(pipe, 'work/circle.imagic', { eta: [0.6, 0.8, 1.0], seeds: [0, 1] });
 */
export async function render(pipe: Pipeline, session: string, o: RenderChoices = {}): Promise<EditOutput> {
  throwIfAborted(o.signal);
  const sd = pipe.check();
  const s = EditSession.open(session);
  const settings = s.json.settings;
  if (!s.json.progress.stageBDone) throw new Error(`session ${session} is not trained to the end: finish it with edit() and the same session first`);
  const { etas, auto } = etaList(o.eta ?? settings.eta, settings.autoEtas);
  const seeds = o.seeds ?? (auto ? AUTO_SEEDS.map(toSeed) : [0]);
  checkSeeds(seeds);
  if (!auto && seeds.includes('inverted')) throw new RangeError("the seed 'inverted' is a candidate of eta 'auto' only");
  const target = s.json.target;
  const scored = auto || o.scores;
  if (scored && typeof target !== 'string') throw new Error(`session ${session}: its target is token ids, not text, so images cannot be scored against it`);
  s.checkModel(sd);
  let input: Tensor | null = null;
  let scorer: Scorer | null = null;
  let emb: Embeddings | null = null;
  try {
    if (scored) {
      input = await loadSessionInput(s);
      scorer = await loadScorer(pipe, o, auto);
    }
    return await withBaseRestored(pipe, s.json.trained, async () => {
      emb = openForRender(sd, session).embeddings;
      const out = await renderFrom(sd, emb, session, input, typeof target === 'string' ? target : '', {
        etas, auto, seeds, steps: o.steps ?? settings.steps, guidanceScale: o.guidanceScale ?? settings.guidanceScale, scorer: scorer?.candidateScorer ?? null,
      }, o);
      return { ...out, session, settings };
    });
  } finally {
    input?.dispose();
    if (emb) dispose(embeddingTensors(emb as Embeddings));
    scorer?.dispose();
  }
}
