// DDIM inversion (Song et al. 2021, eq. 12 run backwards; Dhariwal & Nichol 2021, eq. 55): image latent -> x_T,
// as diffusers' DDIMInverseScheduler in StableDiffusionDiffEditPipeline.invert; then regeneration from x_T.
import { dispose, Generator, keep, noGrad, stack, tidy, unkeep, type Tensor } from '../engine/index.js';
import type { RgbImage } from '../io/image.js';
import type { DDIMScheduler } from '../schedulers/index.js';
import { predictOriginal, SchedulerError } from '../schedulers/schedule.js';
import type { AddedConditions } from '../models/unet/index.js';
import { addedFor, encodeImage, guidedNoise, textConditioning, textEmbeddings, type LatentMode, type TextEmbedsOptions } from './img2img.js';
import type { StableDiffusion } from './stable-diffusion.js';
import { text2img } from './text2img.js';

const f32 = Math.fround;

/**
 * The ascending timesteps of an n-step inversion: the DDIM sampling grid reversed (diffusers'
 * DDIMInverseScheduler.set_timesteps, 'leading' or 'trailing' spacing; 'linspace' is refused as there).
 * SD v1 with 10 steps: [1, 101, ..., 901].
 */
export function inverseTimesteps(scheduler: DDIMScheduler, steps: number): number[] {
  const spacing = scheduler.config.timestep_spacing;
  if (spacing !== 'leading' && spacing !== 'trailing') {
    throw new SchedulerError(`DDIM inversion supports 'leading' and 'trailing' timestep spacing, not '${spacing}' (as diffusers' DDIMInverseScheduler)`);
  }
  scheduler.setTimesteps(steps);
  return [...scheduler.timesteps].reverse();
}

export interface DDIMInverseStepOutput {
  /** The sample at `timestep`. [B, C, h, w] */
  nextSample: Tensor;
  /** x_0 as this step's model output implies it. [B, C, h, w] */
  predOriginalSample: Tensor;
}

/**
 * One inverse step, exactly diffusers' DDIMInverseScheduler.step: the sample is at level
 * s = min(t - N // n, N - 1) (abar_s = the scheduler's finalAlphaCumprod when s < 0: abar_0, or 1 with
 * set_alpha_to_one), the model output was computed at the TARGET timestep t, and
 *   x0 = (x_s - sqrt(1 - abar_s) eps) / sqrt(abar_s),   x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.
 * Using eps(x_s, t) for eps(x_t, t) is the inversion's one approximation (exact as n -> infinity);
 * it is also what Null-text inversion's next_step does. Coefficients are float32, as diffusers'.
 * `steps` (n) defaults to the scheduler's, as set by inverseTimesteps.
 */
export function ddimInverseStep(
  scheduler: DDIMScheduler, modelOutput: Tensor, timestep: number, sample: Tensor, steps = scheduler.numInferenceSteps,
): DDIMInverseStepOutput {
  const c = scheduler.config;
  const N = c.num_train_timesteps;
  if (steps === null || !Number.isInteger(steps) || steps <= 0) throw new SchedulerError('ddimInverseStep: give the number of steps (or call inverseTimesteps first)');
  if (!Number.isInteger(timestep) || timestep < 0 || timestep >= N) throw new SchedulerError(`timestep ${timestep} is not an integer in [0, ${N})`);
  if (modelOutput.shape.join() !== sample.shape.join()) {
    throw new SchedulerError(`model output [${modelOutput.shape.join(', ')}] and sample [${sample.shape.join(', ')}] must have the same shape`);
  }
  const s = Math.min(timestep - Math.floor(N / steps), N - 1);
  const aS = s >= 0 ? scheduler.alphasCumprod[s]! : scheduler.finalAlphaCumprod;
  const aT = scheduler.alphasCumprod[timestep]!;
  return tidy(() => {
    let { predOriginalSample: x0, predEpsilon: eps } = predictOriginal(c.prediction_type, modelOutput, sample, aS);
    if (c.clip_sample) x0 = x0.clamp(-c.clip_sample_range, c.clip_sample_range);
    const next = x0.mul(f32(Math.sqrt(aT))).add(eps.mul(f32(Math.sqrt(f32(1 - aT)))));
    if (x0 === modelOutput) x0 = modelOutput.clone(); // prediction_type 'sample': never hand back the caller's tensor
    return { nextSample: next, predOriginalSample: x0 };
  });
}

export interface DDIMInversionOptions extends TextEmbedsOptions {
  /** The image: an RgbImage (sides multiples of 8) or [B, 3, H, W] in [-1, 1]. */
  image?: RgbImage | Tensor;
  /** Or its latent, scaled by the VAE's scaling_factor. [B, 4, h, w] */
  imageLatents?: Tensor;
  /** Inversion steps (default 50). */
  steps?: number;
  /** Guidance of the inversion itself (default 1: none, the source prompt alone). */
  guidanceScale?: number;
  /** Default 'mean' (deterministic, as Null-text inversion); diffusers' DiffEdit draws a 'sample'. */
  latentMode?: LatentMode;
  seed?: number;
  generator?: Generator;
  /** Also return every intermediate latent. */
  returnTrajectory?: boolean;
  /** SDXL's added conditioning for the prompt embeddings (guidance 1: the conditional side only). */
  added?: AddedConditions;
  onStep?: (step: number, steps: number, timestep: number) => void;
}

export interface DDIMInversionResult {
  /** x_T at the last inverse timestep. [B, 4, h, w] */
  latents: Tensor;
  /** The latent that was inverted (scaled). [B, 4, h, w] */
  imageLatents: Tensor;
  /** The inverse timesteps that ran, ascending. */
  timesteps: number[];
  /** With returnTrajectory: the latent after each step, most noisy first (as DiffEdit's invert). [steps, B, 4, h, w] */
  trajectory?: Tensor;
}

/** Runs the DDIM schedule backwards from the image latent to x_T, conditioned on the source prompt. */
export function invertDDIM(sd: StableDiffusion, opts: DDIMInversionOptions): DDIMInversionResult {
  const steps = opts.steps ?? 50;
  const guidance = opts.guidanceScale ?? 1;
  if (!Number.isInteger(steps) || steps <= 0) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  if (!Number.isFinite(guidance)) throw new RangeError(`guidanceScale must be a number, got ${guidance}`);
  if ((opts.image === undefined) === (opts.imageLatents === undefined)) throw new Error('give either image or imageLatents');
  const timesteps = inverseTimesteps(sd.scheduler, steps);
  const generator = opts.generator ?? new Generator(opts.seed ?? 0);

  return noGrad(() => {
    const z0 = keep(tidy(() => opts.imageLatents?.to({ device: sd.device, dtype: sd.dtype }).contiguous()
      ?? encodeImage(sd, opts.image!, { latentMode: opts.latentMode ?? 'mean', generator })));
    const trajectory: Tensor[] = [];
    let embeds: Tensor | null = null;
    let added: AddedConditions | undefined;
    let own: Tensor[] = []; // the SDXL conditioning made here
    let latents = z0;
    try {
      if (z0.ndim !== 4 || z0.shape[1] !== sd.unet.config.in_channels) {
        throw new RangeError(`imageLatents must be [B, ${sd.unet.config.in_channels}, h, w], got [${z0.shape.join(', ')}]`);
      }
      if (sd.xl && opts.added === undefined) {
        // SDXL from prompts: the pooled embeddings and time_ids come with the context
        const c = textConditioning(sd, opts, guidance > 1);
        embeds = c.embeds;
        added = addedFor(sd, c.pooled, z0);
        own = added ? [added.textEmbeds, added.timeIds] : [];
      } else {
        embeds = textEmbeddings(sd, opts, guidance > 1);
        added = opts.added;
      }
      const batch = guidance > 1 ? embeds.shape[0]! / 2 : embeds.shape[0]!;
      if (batch !== z0.shape[0]) throw new RangeError(`${batch} prompts for ${z0.shape[0]} images: give one per image`);
      timesteps.forEach((t, i) => {
        const next = tidy(() => ddimInverseStep(sd.scheduler, guidedNoise(sd, latents, t, embeds!, guidance, added), t, latents, steps).nextSample);
        if (latents !== z0 && !opts.returnTrajectory) latents.dispose();
        latents = keep(next);
        if (opts.returnTrajectory) trajectory.push(latents);
        opts.onStep?.(i + 1, timesteps.length, t);
      });
    } catch (e) {
      for (const t of new Set([z0, latents, ...trajectory])) t.dispose();
      embeds?.dispose();
      dispose(own);
      throw e;
    }
    embeds.dispose();
    dispose(own);
    const result: DDIMInversionResult = { latents: unkeep(latents), imageLatents: unkeep(z0), timesteps };
    if (opts.returnTrajectory) {
      result.trajectory = tidy(() => stack([...trajectory].reverse()));
      for (const t of trajectory) if (t !== latents) t.dispose();
    }
    return result;
  });
}

export interface DDIMInversionEditOptions {
  image?: RgbImage | Tensor;
  imageLatents?: Tensor;
  /** What the image shows (default: the empty prompt, which needs the tokenizer). */
  sourcePrompt?: string | string[] | number[][];
  sourcePromptEmbeds?: Tensor;
  /** The edit: what the regenerated image should show. */
  targetPrompt?: string | string[] | number[][];
  targetPromptEmbeds?: Tensor;
  negativePrompt?: string | string[] | number[][];
  negativePromptEmbeds?: Tensor;
  /** Steps of both the inversion and the regeneration (default 50). */
  steps?: number;
  /** Guidance of the inversion (default 1). */
  inversionGuidanceScale?: number;
  /** Guidance of the regeneration (default 7.5). */
  guidanceScale?: number;
  latentMode?: LatentMode;
  seed?: number;
  generator?: Generator;
  onStep?: (phase: 'invert' | 'generate', step: number, steps: number, timestep: number) => void;
  onWarning?: (message: string) => void;
}

export interface DDIMInversionEditResult {
  /** [B, 3, H, W] in about [-1, 1]. */
  images: Tensor;
  /** The regenerated latents. [B, 4, h, w] */
  latents: Tensor;
  /** x_T, where the regeneration started. [B, 4, h, w] */
  invertedLatents: Tensor;
}

/** The inversion baseline: invert with the source prompt, then sample from x_T with the target prompt (DDIM, eta 0). */
export async function ddimInversionEdit(sd: StableDiffusion, opts: DDIMInversionEditOptions): Promise<DDIMInversionEditResult> {
  const steps = opts.steps ?? 50;
  if (opts.targetPrompt === undefined && opts.targetPromptEmbeds === undefined) throw new Error('give a target prompt (text or token ids) or targetPromptEmbeds');
  const neg = { negativePrompt: opts.negativePrompt, negativePromptEmbeds: opts.negativePromptEmbeds };
  const inv = invertDDIM(sd, {
    image: opts.image, imageLatents: opts.imageLatents, steps, guidanceScale: opts.inversionGuidanceScale ?? 1,
    prompt: opts.sourcePrompt ?? (opts.sourcePromptEmbeds ? undefined : ''), promptEmbeds: opts.sourcePromptEmbeds, ...neg,
    latentMode: opts.latentMode, seed: opts.seed, generator: opts.generator, onWarning: opts.onWarning,
    onStep: (i, n, t) => opts.onStep?.('invert', i, n, t),
  });
  inv.imageLatents.dispose();
  try {
    const [, , h, w] = inv.latents.shape as [number, number, number, number];
    const f = sd.vae.downscaleFactor;
    const out = await text2img(sd, {
      prompt: opts.targetPrompt ?? [], promptEmbeds: opts.targetPromptEmbeds, ...neg, steps, guidanceScale: opts.guidanceScale ?? 7.5,
      latents: inv.latents, height: h * f, width: w * f, eta: 0, onWarning: opts.onWarning,
      onStep: (i, n, t) => opts.onStep?.('generate', i, n, t),
    });
    return { images: out.images, latents: out.latents, invertedLatents: inv.latents };
  } catch (e) {
    inv.latents.dispose();
    throw e;
  }
}
