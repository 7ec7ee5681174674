// Text-to-image in the public API.
import { dispose, Generator } from '../engine/index.js';
import { tensorToImages, type RgbImage } from '../io/image.js';
import { text2img } from '../pipelines/index.js';
import { throwIfAborted, type Pipeline, type RunOptions } from './pipeline.js';

/** Options of generate(). */
export interface GenerateOptions extends RunOptions {
  /** What to steer away from (default: the empty prompt). */
  negativePrompt?: string;
  /** DDIM steps (default 50). */
  steps?: number;
  /** Classifier-free guidance scale (default 7.5; 1 disables guidance). */
  guidanceScale?: number;
  /** Images to make (default 1). */
  count?: number;
  /** The same seed gives the same images on the same machine (default 0). */
  seed?: number;
  /** Size in pixels, multiples of 8 (default: the model's). */
  width?: number;
  height?: number;
}

/**
 * Generates images from a text prompt (classifier-free guidance, DDIM).
 *
 * @example
 * const [image] = await generate(pipe, 'a red circle on the left');
 */
export async function generate(pipe: Pipeline, prompt: string, o: GenerateOptions = {}): Promise<RgbImage[]> {
  if (typeof prompt !== 'string' || prompt.trim() === '') throw new Error('the prompt is empty');
  throwIfAborted(o.signal);
  const sd = pipe.check();
  const r = await text2img(sd, {
    prompt, negativePrompt: o.negativePrompt, steps: o.steps ?? 50, guidanceScale: o.guidanceScale ?? 7.5, width: o.width, height: o.height,
    numImagesPerPrompt: o.count ?? 1, generator: new Generator(o.seed ?? 0), onWarning: o.onLog,
    onStep: (step, total) => {
      o.onProgress?.({ phase: 'sampling', step, total });
      throwIfAborted(o.signal);
    },
  });
  try {
    return tensorToImages(r.images);
  } finally {
    dispose([r.images, r.latents]);
  }
}
