// The baselines Imagic is compared with, SDEdit and DDIM inversion, and compare(): all three on one
// input, each scored with the same CLIP.
import { dispose, type Tensor } from '../engine/index.js';
import { tensorToImage, type RgbImage } from '../io/image.js';
import { ddimInversionEdit, img2img } from '../pipelines/index.js';
import { defaultPreset, resolveSettings } from '../pipelines/imagic/index.js';
import { edit, type EditOptions, type EditOutput } from './edit.js';
import { loadInputImage, toRgbImage, type ImageSource } from './input.js';
import { throwIfAborted, type Pipeline, type RunOptions } from './pipeline.js';
import { loadScorer, type Scorer } from './scores.js';

/** Options of sdedit() and ddimInversion(). */
export interface BaselineOptions extends RunOptions {
  /** DDIM steps (default 50). */
  steps?: number;
  /** Classifier-free guidance scale (default 7.5). */
  guidanceScale?: number;
  /** Seed of the noise (default 0). */
  seed?: number;
}

/**
 * SDEdit (Meng et al. 2022): noise the image part of the way (`strength`, default 0.8) and denoise it
 * towards the text. Returns the edited image at the model's resolution.
 */
export async function sdedit(pipe: Pipeline, image: ImageSource, text: string, o: BaselineOptions & { strength?: number } = {}): Promise<RgbImage> {
  throwIfAborted(o.signal);
  const sd = pipe.check();
  const strength = o.strength ?? 0.8;
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`strength must be in [0, 1], got ${strength}`);
  const input = await loadInputImage(image, sd, o.onLog ?? (() => {}));
  try {
    const r = img2img(sd, {
      image: input, prompt: text, strength, steps: o.steps ?? 50, guidanceScale: o.guidanceScale ?? 7.5, seed: o.seed ?? 0, onWarning: o.onLog,
      onStep: (step, total) => {
        o.onProgress?.({ phase: 'sdedit', step, total });
        throwIfAborted(o.signal);
      },
    });
    r.latents.dispose();
    return imageOf(r.images);
  } finally {
    input.dispose();
  }
}

/**
 * DDIM inversion: invert the image to noise with `sourceText` (default: the empty prompt), then
 * sample from that noise with the target text.
 */
export async function ddimInversion(pipe: Pipeline, image: ImageSource, text: string, o: BaselineOptions & { sourceText?: string } = {}): Promise<RgbImage> {
  throwIfAborted(o.signal);
  const sd = pipe.check();
  const input = await loadInputImage(image, sd, o.onLog ?? (() => {}));
  try {
    const steps = o.steps ?? 50;
    let step = 0;
    const r = await ddimInversionEdit(sd, {
      image: input, sourcePrompt: o.sourceText ?? '', targetPrompt: text, steps, guidanceScale: o.guidanceScale ?? 7.5, seed: o.seed ?? 0, onWarning: o.onLog,
      onStep: () => {
        o.onProgress?.({ phase: 'ddim-inversion', step: ++step, total: 2 * steps });
        throwIfAborted(o.signal);
      },
    });
    dispose([r.latents, r.invertedLatents]);
    return imageOf(r.images);
  } finally {
    input.dispose();
  }
}

function imageOf(t: Tensor): RgbImage {
  try {
    return tensorToImage(t);
  } finally {
    t.dispose();
  }
}

/** Options of compare(): edit()'s, and the baselines' own. */
export interface CompareOptions extends EditOptions {
  /** SDEdit's strength (default 0.8). */
  strength?: number;
  /** DDIM inversion's source text (default: the empty prompt). */
  sourceText?: string;
}

/** A method's image and, where a CLIP scored it, its scores. */
export interface MethodResult {
  image: RgbImage;
  alignment?: number;
  preservation?: number;
}

/** What compare() returns: the input and each method's result. */
export interface CompareOutput {
  /** The input at the model's resolution. */
  input: RgbImage;
  imagic: EditOutput;
  sdedit: MethodResult;
  ddimInversion: MethodResult;
}

/**
 * Imagic next to its baselines on the same input and text: edit() (eta 'auto' by default), then
 * SDEdit and DDIM inversion on the base model with the first fresh seed and the preset's sampling
 * settings. With eta 'auto' or `scores`, the baselines are scored with the same CLIP as Imagic.
 */
export async function compare(pipe: Pipeline, image: ImageSource, target: string, o: CompareOptions = {}): Promise<CompareOutput> {
  const sd = pipe.check();
  const settings = resolveSettings(o.preset ?? defaultPreset(sd.root), o.settings ?? {});
  const rgb = await toRgbImage(image, 'the input image');
  const imagic = await edit(pipe, rgb, target, o);
  const seed = o.seeds?.find((s): s is number => s !== 'inverted') ?? 0;
  const b = { steps: o.steps ?? settings.steps, guidanceScale: o.guidanceScale ?? settings.guidanceScale, seed, onProgress: o.onProgress, onLog: o.onLog, signal: o.signal };
  const sdeditImage = await sdedit(pipe, rgb, target, { ...b, strength: o.strength });
  const ddimImage = await ddimInversion(pipe, rgb, target, { ...b, sourceText: o.sourceText });
  const t = await loadInputImage(rgb, sd, () => {});
  const input = tensorToImage(t);
  t.dispose();
  let scorer: Scorer | null = null;
  try {
    const scored = o.eta === undefined || o.eta === 'auto' || o.scores;
    if (scored) scorer = await loadScorer(pipe, { clipModel: o.clipModel, preservation: o.preservation, offline: o.offline, onProgress: o.onProgress });
    const result = (img: RgbImage): MethodResult => (scorer ? { image: img, alignment: scorer.alignment(img, target), preservation: scorer.preservation(img, input) } : { image: img });
    return { input, imagic, sdedit: result(sdeditImage), ddimInversion: result(ddimImage) };
  } finally {
    scorer?.dispose();
  }
}
