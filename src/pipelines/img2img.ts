// SDEdit image-to-image (Meng et al. 2022, arXiv:2108.01073) as diffusers' StableDiffusionImg2ImgPipeline:
// noise the image's latent to `strength` of the DDIM schedule, then denoise it with the target text.
import { cat, dispose, Generator, keep, noGrad, randn, Tensor, tidy, unkeep } from '../engine/index.js';
import { imageToTensor, type RgbImage } from '../io/image.js';
import type { AddedConditions } from '../models/unet/index.js';
import { defaultTimeIds, encodeNegativeXL, encodePrompt, encodePromptXL, type StableDiffusion } from './stable-diffusion.js';

/** How an image becomes a latent: a draw from the VAE posterior (diffusers' default) or its mean. */
export type LatentMode = 'sample' | 'mean';

/** Text, several texts, or token-id rows (for checkpoints without a tokenizer). */
export type Prompt = string | string[] | number[][];

export interface EncodeImageOptions {
  /** 'sample' (default, as diffusers' retrieve_latents) or 'mean' (deterministic). */
  latentMode?: LatentMode;
  /** Draws the posterior sample (latentMode 'sample'). */
  generator?: Generator;
}

/**
 * The latent the UNet sees for an image: scaling_factor * (posterior sample or mean). [B, 4, H/8, W/8]
 * image: an RgbImage (sides multiples of 8), or a [B, 3, H, W] tensor in [-1, 1].
 */
export function encodeImage(sd: StableDiffusion, image: RgbImage | Tensor, opts: EncodeImageOptions = {}): Tensor {
  const mode = opts.latentMode ?? 'sample';
  if (mode !== 'sample' && mode !== 'mean') throw new RangeError(`latentMode must be 'sample' or 'mean', got '${String(mode)}'`);
  return noGrad(() => tidy(() => {
    const x = image instanceof Tensor ? image.to({ device: sd.device, dtype: sd.dtype }) : imageToTensor(image, { device: sd.device, dtype: sd.dtype });
    if (x.ndim !== 4 || x.shape[1] !== 3) throw new RangeError(`image must be [B, 3, H, W], got [${x.shape.join(', ')}]`);
    const f = sd.vae.downscaleFactor;
    if (x.shape[2]! % f !== 0 || x.shape[3]! % f !== 0) {
      throw new RangeError(`image sides must be multiples of ${f}, got ${x.shape[3]}x${x.shape[2]} (see prepareImage)`);
    }
    const dist = sd.vae.encode(x);
    try {
      const z = mode === 'sample' ? dist.sample(opts.generator) : dist.mean;
      return z.mul(sd.vae.config.scaling_factor).to({ dtype: sd.dtype }); // the VAE may run in float32 (force_upcast)
    } finally {
      dist.dispose();
    }
  }));
}

export interface TextEmbedsOptions {
  prompt?: Prompt;
  /** [B, 77, D], instead of encoding `prompt`. */
  promptEmbeds?: Tensor;
  /** The unconditional side of guidance (default: the empty prompt, which needs the tokenizer). */
  negativePrompt?: Prompt;
  negativePromptEmbeds?: Tensor;
  onWarning?: (message: string) => void;
}

/**
 * The embeddings the UNet is called with: [uncond; cond] ([2B, 77, D]) with guidance, else cond
 * ([B, 77, D]). A single negative prompt is shared by all B prompts.
 */
export function textEmbeddings(sd: StableDiffusion, opts: TextEmbedsOptions, useGuidance: boolean): Tensor {
  // Given embeddings are used as they are (an SDXL caller brings the added conditioning itself).
  if (!sd.xl || opts.promptEmbeds !== undefined) return plainEmbeddings(sd, opts, useGuidance);
  const c = textConditioning(sd, opts, useGuidance);
  c.pooled?.dispose();
  return c.embeds;
}

/**
 * textEmbeddings, and for SDXL the pooled embeddings batched the same way ([2B or B, P]): both text
 * encoders from the prompts (encodePromptXL), the unconditional side zeros for the empty negative
 * prompt where the model says so. SDXL needs prompts here, not promptEmbeds (they lack the pooled part).
 */
export function textConditioning(sd: StableDiffusion, opts: TextEmbedsOptions, useGuidance: boolean): { embeds: Tensor; pooled: Tensor | null } {
  if (sd.xl) return textConditioningXL(sd, opts, useGuidance);
  return { embeds: plainEmbeddings(sd, opts, useGuidance), pooled: null };
}

function textConditioningXL(sd: StableDiffusion, opts: TextEmbedsOptions, useGuidance: boolean): { embeds: Tensor; pooled: Tensor } {
  if (opts.prompt === undefined || opts.promptEmbeds !== undefined || opts.negativePromptEmbeds !== undefined) {
    throw new Error('an SDXL model takes prompts (text or token ids) here, not embeddings: its pooled embeddings come from the same encoding');
  }
  const list = (p: Prompt) => (typeof p === 'string' ? [p] : p);
  const [embeds, pooled] = noGrad(() => tidy(() => {
    const cond = encodePromptXL(sd, list(opts.prompt!), undefined, opts.onWarning);
    if (!useGuidance) return [cond.promptEmbeds, cond.pooled];
    const neg = encodeNegativeXL(sd, cond, opts.negativePrompt === undefined ? undefined : list(opts.negativePrompt), opts.onWarning);
    const b = cond.promptEmbeds.shape[0]!;
    const rows = (x: Tensor) => (x.shape[0] === 1 && b > 1 ? x.expand(b, ...x.shape.slice(1)) : x);
    return [cat([rows(neg.promptEmbeds), cond.promptEmbeds]), cat([rows(neg.pooled), cond.pooled])];
  }));
  return { embeds: embeds!, pooled: pooled! };
}

/** SDXL's added conditioning for latents [B', 4, h, w]: the pooled embeddings and time_ids for h*8 x w*8 (null for other models). */
export function addedFor(sd: StableDiffusion, pooled: Tensor | null, latents: Tensor): AddedConditions | undefined {
  if (pooled === null) return undefined;
  const [, , h, w] = latents.shape as [number, number, number, number];
  return { textEmbeds: pooled, timeIds: defaultTimeIds(h * 8, w * 8, sd.device) };
}

function plainEmbeddings(sd: StableDiffusion, opts: TextEmbedsOptions, useGuidance: boolean): Tensor {
  if (opts.prompt === undefined && opts.promptEmbeds === undefined) throw new Error('give a prompt (text or token ids) or promptEmbeds');
  if (useGuidance && opts.negativePrompt === undefined && opts.negativePromptEmbeds === undefined && sd.tokenizer === null) {
    throw new Error(`the checkpoint at ${sd.root} has no tokenizer to encode the empty negative prompt: give negativePrompt as token ids`);
  }
  return noGrad(() => tidy(() => {
    const list = (p: Prompt) => (typeof p === 'string' ? [p] : p);
    const cond = opts.promptEmbeds ?? encodePrompt(sd, list(opts.prompt!), opts.onWarning);
    if (!useGuidance) return cond.to({ device: sd.device, dtype: sd.dtype });
    const batch = cond.shape[0]!;
    let neg = opts.negativePromptEmbeds ?? encodePrompt(sd, list(opts.negativePrompt ?? ''), opts.onWarning);
    if (neg.shape[0] === 1 && batch > 1) neg = neg.expand(batch, -1, -1);
    if (neg.shape[0] !== batch) throw new RangeError(`negative prompts (${neg.shape[0]}) must be one or as many as the prompts (${batch})`);
    return cat([neg, cond]).to({ device: sd.device, dtype: sd.dtype });
  }));
}

/** The classifier-free guided noise prediction (Ho & Salimans 2022) at timestep t. [B, 4, h, w] */
export function guidedNoise(sd: StableDiffusion, latents: Tensor, t: number, embeds: Tensor, guidanceScale: number, added?: AddedConditions): Tensor {
  return tidy(() => {
    const guided = embeds.shape[0] === 2 * latents.shape[0]!;
    const noisePred = sd.unet.forward(guided ? cat([latents, latents]) : latents, t, embeds, added);
    if (!guided) return noisePred;
    const [uncond, text] = noisePred.chunk(2);
    return uncond!.add(text!.sub(uncond!).mul(guidanceScale));
  });
}

export interface Img2ImgOptions extends TextEmbedsOptions {
  /** The image to edit: an RgbImage (sides multiples of 8) or [1 or B, 3, H, W] in [-1, 1]. */
  image?: RgbImage | Tensor;
  /** Or its latent, already scaled by the VAE's scaling_factor [1 or B, 4, h, w] (as diffusers' 4-channel image). */
  imageLatents?: Tensor;
  /** How far into the schedule to noise, in [0, 1] (default 0.8): the last floor(steps * strength) timesteps run. */
  strength?: number;
  /** Steps of the full DDIM schedule (default 50); floor(steps * strength) of them run. */
  steps?: number;
  guidanceScale?: number;
  /** DDIM eta (0: deterministic). */
  eta?: number;
  /** How the image becomes a latent (default 'sample', as diffusers). */
  latentMode?: LatentMode;
  seed?: number;
  /** Draws, in this order (as diffusers): the posterior sample, the noise, any DDIM step noise. */
  generator?: Generator;
  /** The noise added at the first timestep [B, 4, h, w], instead of drawing it. */
  noise?: Tensor;
  onStep?: (step: number, steps: number, timestep: number) => void;
}

export interface Img2ImgResult {
  /** [B, 3, H, W] in about [-1, 1]. */
  images: Tensor;
  /** The final latents [B, 4, h, w] (scaled, as the UNet sees them). */
  latents: Tensor;
  /** The timesteps that ran, descending (the first is the one the image was noised to). */
  timesteps: number[];
}

/** The last floor(steps * strength) timesteps of the DDIM schedule (diffusers' get_timesteps). */
export function img2imgTimesteps(sd: StableDiffusion, steps: number, strength: number): number[] {
  checkStepsStrength(steps, strength);
  sd.scheduler.setTimesteps(steps);
  const init = Math.min(Math.floor(steps * strength), steps);
  return sd.scheduler.timesteps.slice(steps - init);
}

function checkStepsStrength(steps: number, strength: number): void {
  if (!Number.isInteger(steps) || steps <= 0) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  if (typeof strength !== 'number' || !(strength >= 0 && strength <= 1)) throw new RangeError(`strength must be a number in [0, 1], got ${strength}`);
}

/**
 * SDEdit. strength 1 starts from (almost) pure noise; a strength with floor(steps * strength) = 0
 * runs no step and returns the decoded image latent (diffusers refuses it).
 */
export function img2img(sd: StableDiffusion, opts: Img2ImgOptions): Img2ImgResult {
  const steps = opts.steps ?? 50;
  const strength = opts.strength ?? 0.8;
  const guidance = opts.guidanceScale ?? 7.5;
  checkStepsStrength(steps, strength);
  if (!Number.isFinite(guidance)) throw new RangeError(`guidanceScale must be a number, got ${guidance}`);
  if ((opts.image === undefined) === (opts.imageLatents === undefined)) throw new Error('give either image or imageLatents');
  const useGuidance = guidance > 1;
  const generator = opts.generator ?? new Generator(opts.seed ?? 0);
  const timesteps = img2imgTimesteps(sd, steps, strength);

  return noGrad(() => {
    const { embeds, pooled } = textConditioning(sd, opts, useGuidance); // [2B or B, 77, D] (SDXL: and [2B or B, P])
    const batch = useGuidance ? embeds.shape[0]! / 2 : embeds.shape[0]!;

    // 1. The image latent, one per prompt, noised to the first timestep: q(x_t | x_0).
    let latents: Tensor;
    try {
      latents = keep(noisedImageLatents(sd, opts, batch, timesteps[0], generator));
    } catch (e) {
      dispose([embeds, ...(pooled ? [pooled] : [])]);
      throw e;
    }
    const added = addedFor(sd, pooled, latents);

    // 2. Denoising from that timestep on, with guidance.
    try {
      timesteps.forEach((t, i) => {
        const next = tidy(() => {
          const eps = guidedNoise(sd, latents, t, embeds, guidance, added);
          return sd.scheduler.step(eps, t, latents, { eta: opts.eta ?? 0, generator }).prevSample;
        });
        latents.dispose();
        latents = keep(next);
        opts.onStep?.(i + 1, timesteps.length, t);
      });
    } catch (e) {
      dispose([latents, embeds, ...(added ? [added.textEmbeds, added.timeIds] : [])]);
      throw e;
    }
    dispose([embeds, ...(added ? [added.textEmbeds, added.timeIds] : [])]);

    // 3. Decode.
    const images = tidy(() => sd.vae.decode(latents.div(sd.vae.config.scaling_factor)));
    return { images, latents: unkeep(latents), timesteps };
  });
}

/** The image latent z0 (encoded, or given), one per prompt, noised to timestep t: q(x_t | z0). [B, 4, h, w] */
function noisedImageLatents(sd: StableDiffusion, opts: Img2ImgOptions, batch: number, t: number | undefined, generator: Generator): Tensor {
  return tidy(() => {
    let z0 = opts.imageLatents?.to({ device: sd.device, dtype: sd.dtype })
      ?? encodeImage(sd, opts.image!, { latentMode: opts.latentMode, generator });
    if (z0.ndim !== 4 || z0.shape[1] !== sd.unet.config.in_channels) {
      throw new RangeError(`imageLatents must be [B, ${sd.unet.config.in_channels}, h, w], got [${z0.shape.join(', ')}]`);
    }
    if (z0.shape[0] !== batch) {
      if (z0.shape[0] !== 1) throw new RangeError(`${z0.shape[0]} images for ${batch} prompts: give one image, or one per prompt`);
      z0 = z0.expand(batch, -1, -1, -1);
    }
    if (t === undefined) return z0.contiguous();
    if (opts.noise && opts.noise.shape.join() !== z0.shape.join()) {
      throw new RangeError(`noise must have shape [${z0.shape.join(', ')}], got [${opts.noise.shape.join(', ')}]`);
    }
    const noise = opts.noise?.to({ device: sd.device, dtype: sd.dtype }) ?? randn(z0.shape, { generator, device: sd.device, dtype: sd.dtype });
    return sd.scheduler.addNoise(z0, noise, t);
  });
}
