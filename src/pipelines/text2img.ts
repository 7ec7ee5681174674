// Text-to-image with classifier-free guidance (Ho & Salimans 2022) and DDIM sampling, as diffusers'
// StableDiffusionPipeline: the denoising loop is written out here, top to bottom.
import { cat, dispose, Generator, keep, noGrad, randn, tidy, unkeep, type Tensor } from '../engine/index.js';
import { defaultTimeIds, encodeNegativeXL, encodePrompt, encodePromptXL, type StableDiffusion, type XLPromptEmbeds } from './stable-diffusion.js';
import type { AddedConditions } from '../models/unet/index.js';

export interface Text2ImgOptions {
  /** Prompts (need the tokenizer) or token-id rows of 77. */
  prompt: string | string[] | number[][];
  /** The unconditional side of guidance (default: the empty prompt). */
  negativePrompt?: string | string[] | number[][];
  /** Images per prompt. */
  numImagesPerPrompt?: number;
  steps?: number;
  guidanceScale?: number;
  /** Output size in pixels, a multiple of 8 (default: unet.sample_size * 8). */
  width?: number;
  height?: number;
  /** DDIM eta (0: deterministic). */
  eta?: number;
  seed?: number;
  generator?: Generator;
  /** Starting noise [B, 4, h, w] instead of drawing it. */
  latents?: Tensor;
  /** Precomputed text embeddings [B, 77, D] (then prompt is not encoded). */
  promptEmbeds?: Tensor;
  negativePromptEmbeds?: Tensor;
  /**
   * SDXL's added conditioning: the pooled text embeddings of the prompt [B or 1, D] and of the
   * unconditional side, and the size/crop time_ids [1, 6] (the same for every image).
   */
  added?: { textEmbeds: Tensor; negativeTextEmbeds: Tensor; timeIds: Tensor };
  onStep?: (step: number, steps: number, timestep: number) => void;
  onWarning?: (message: string) => void;
}

export interface Text2ImgResult {
  /** [B, 3, H, W] in about [-1, 1]. */
  images: Tensor;
  /** The final latents [B, 4, h, w] (unscaled by the VAE factor: what the UNet sees). */
  latents: Tensor;
}

function asList(p: string | string[] | number[][]): string[] | number[][] {
  return typeof p === 'string' ? [p] : p;
}

function checkPositiveInt(name: string, v: number, multipleOf = 1): void {
  if (!Number.isInteger(v) || v <= 0 || v % multipleOf !== 0) {
    throw new RangeError(`${name} must be a positive integer${multipleOf > 1 ? ` and a multiple of ${multipleOf}` : ''}, got ${v}`);
  }
}

/**
 * Samples images. The loop yields to the event loop after each step, so that progress can be shown,
 * Ctrl-C handled, and Node can release the bookkeeping of the step's disposed tensor handles
 * (which it does only between turns: a long synchronous loop grows the C heap).
 */
export async function text2img(sd: StableDiffusion, opts: Text2ImgOptions): Promise<Text2ImgResult> {
  if (sd.xl && opts.promptEmbeds === undefined) return text2imgXL(sd, opts);
  if (sd.xl && opts.added === undefined) throw new Error('an SDXL model needs its added conditioning with promptEmbeds: give `added` (the pooled embeddings and time_ids)');
  const steps = opts.steps ?? 50;
  const guidance = opts.guidanceScale ?? 7.5;
  const perPrompt = opts.numImagesPerPrompt ?? 1;
  const height = opts.height ?? (sd.unet.config.sample_size ?? 64) * 8;
  const width = opts.width ?? (sd.unet.config.sample_size ?? 64) * 8;
  checkPositiveInt('steps', steps);
  checkPositiveInt('numImagesPerPrompt', perPrompt);
  checkPositiveInt('height', height, 8);
  checkPositiveInt('width', width, 8);
  if (!Number.isFinite(guidance)) throw new RangeError(`guidanceScale must be a number, got ${guidance}`);
  const useGuidance = guidance > 1;
  const generator = opts.generator ?? new Generator(opts.seed ?? 0);
  if (useGuidance && opts.negativePrompt === undefined && opts.negativePromptEmbeds === undefined && sd.tokenizer === null) {
    throw new Error(`the checkpoint at ${sd.root} has no tokenizer to encode the empty negative prompt: give negativePrompt as token ids`);
  }

  // 1. Text embeddings: [uncond; cond], each repeated per image.
  const embeds = noGrad(() => tidy(() => {
    const cond = repeatRows(opts.promptEmbeds ?? encodePrompt(sd, asList(opts.prompt), opts.onWarning), perPrompt);
    if (!useGuidance) return cond.contiguous();
    const batch = cond.shape[0]!;
    let neg = opts.negativePromptEmbeds ?? encodePrompt(sd, asList(opts.negativePrompt ?? ''), opts.onWarning);
    if (neg.shape[0] === 1 && batch > 1) neg = neg.expand(batch, -1, -1);
    else neg = repeatRows(neg, perPrompt);
    if (neg.shape[0] !== batch) throw new RangeError(`negative prompts (${neg.shape[0]}) must be one or as many as the prompts`);
    return cat([neg, cond]); // [2B, 77, D]
  }));
  let latents: Tensor | null = null;
  let added: AddedConditions | undefined;
  try {
    // 2. Starting noise, scaled for the scheduler.
    const batch = embeds.shape[0]! / (useGuidance ? 2 : 1);
    if (opts.added) {
      // [uncond; cond] pooled embeddings as the text embeddings are batched, each repeated per image.
      const a = opts.added;
      const [textEmbeds, timeIds] = noGrad(() => tidy(() => {
        const rows = (x: Tensor) => (x.shape[0] === batch ? x : x.expand(batch, -1));
        const te = useGuidance ? cat([rows(a.negativeTextEmbeds), rows(a.textEmbeds)]) : rows(a.textEmbeds); // [2B or B, D]
        return [te.to({ dtype: sd.dtype, device: sd.device }).contiguous(), a.timeIds.to({ dtype: sd.dtype, device: sd.device, copy: true })];
      }));
      added = { textEmbeds: keep(textEmbeds!), timeIds: keep(timeIds!) };
    }
    const latentShape = [batch, sd.unet.config.in_channels, height / 8, width / 8];
    if (opts.latents && opts.latents.shape.join() !== latentShape.join()) {
      throw new RangeError(`latents must have shape [${latentShape}], got [${opts.latents.shape}]`);
    }
    latents = keep(noGrad(() => tidy(() => {
      const noise = opts.latents ? opts.latents.to({ device: sd.device, dtype: sd.dtype }) : randn(latentShape, { generator, device: sd.device, dtype: sd.dtype });
      return noise.mul(sd.scheduler.initNoiseSigma);
    })));

    // 3. Denoising loop.
    sd.scheduler.setTimesteps(steps);
    const timesteps = sd.scheduler.timesteps;
    for (const [i, t] of timesteps.entries()) {
      const current: Tensor = latents;
      const next = noGrad(() => tidy(() => {
        const input = useGuidance ? cat([current, current]) : current;
        const noisePred = sd.unet.forward(input, t, embeds, added);
        let eps = noisePred;
        if (useGuidance) {
          const [uncond, text] = noisePred.chunk(2);
          eps = uncond!.add(text!.sub(uncond!).mul(guidance));
        }
        return sd.scheduler.step(eps, t, current, { eta: opts.eta ?? 0, generator }).prevSample;
      }));
      current.dispose();
      latents = keep(next);
      opts.onStep?.(i + 1, timesteps.length, t);
      await new Promise((resolve) => setImmediate(resolve));
    }

    // 4. Decode.
    const final: Tensor = latents;
    const images = noGrad(() => tidy(() => sd.vae.decode(final.div(sd.vae.config.scaling_factor))));
    latents = null;
    return { images, latents: unkeep(final) };
  } finally {
    dispose(embeds);
    latents?.dispose();
    if (added) dispose([added.textEmbeds, added.timeIds]);
  }
}

/** [B, ...] -> [B * n, ...], each row repeated n times in place (as diffusers' repeat_interleave). */
function repeatRows(x: Tensor, n: number): Tensor {
  if (n === 1) return x;
  const [b, ...rest] = x.shape;
  return x.unsqueeze(1).expand(b!, n, ...rest).reshape(b! * n, ...rest);
}

/**
 * SDXL from prompts: both text encoders (encodePromptXL), the unconditional side from the negative
 * prompt (zeros for an empty one where the model says so, as diffusers), time_ids for the output size.
 */
async function text2imgXL(sd: StableDiffusion, opts: Text2ImgOptions): Promise<Text2ImgResult> {
  const height = opts.height ?? (sd.unet.config.sample_size ?? 128) * 8;
  const width = opts.width ?? (sd.unet.config.sample_size ?? 128) * 8;
  const cond = encodePromptXL(sd, asList(opts.prompt), undefined, opts.onWarning);
  let uncond: XLPromptEmbeds | null = null;
  const timeIds = defaultTimeIds(height, width, sd.device);
  try {
    uncond = encodeNegativeXL(sd, cond, opts.negativePrompt === undefined ? undefined : asList(opts.negativePrompt), opts.onWarning);
    return await text2img(sd, {
      ...opts, prompt: [], negativePrompt: undefined, promptEmbeds: cond.promptEmbeds, negativePromptEmbeds: uncond.promptEmbeds, width, height,
      added: { textEmbeds: cond.pooled, negativeTextEmbeds: uncond.pooled, timeIds },
    });
  } finally {
    dispose([cond.promptEmbeds, cond.pooled, timeIds, ...(uncond ? [uncond.promptEmbeds, uncond.pooled] : [])]);
  }
}
