// Measured quality of a Shapes-64 text-to-image model: generate from random full captions, read the
// images back with the evaluator, and count matches per attribute and for all five together.
import { dispose } from '../engine/index.js';
import { tensorToImages } from '../io/image-tensor.js';
import { text2img } from '../pipelines/text2img.js';
import type { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { fullCaption } from './captions.js';
import { readAttributes } from './evaluate.js';
import { ATTRIBUTES, mulberry32, randomSpec, type AttributeName, type ShapeAttributes } from './spec.js';

export interface TextToImageQuality {
  samples: number;
  /** Share of images whose read attribute equals the caption's, per attribute. */
  perAttribute: Record<AttributeName, number>;
  /** Share with all five right. */
  all: number;
  /** Share the evaluator could not read at all (no object, or off-palette). */
  unreadable: number;
  /** The first few misses: caption and what was read. */
  misses: { caption: string; read: ShapeAttributes | null; reason?: string }[];
}

export interface QualityOptions {
  samples?: number;
  /** Seed of the captions (and, offset, of the sampling noise). */
  seed?: number;
  steps?: number;
  guidanceScale?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Random full captions -> images -> evaluator; defaults: 300 captions, 25 DDIM steps, guidance 7.5. */
export async function textToImageQuality(sd: StableDiffusion, o: QualityOptions = {}): Promise<TextToImageQuality> {
  const n = o.samples ?? 300, batch = o.batchSize ?? 50, seed = o.seed ?? 1234;
  const rng = mulberry32(seed);
  const specs = Array.from({ length: n }, () => randomSpec(rng));
  const hits = Object.fromEntries(ATTRIBUTES.map((a) => [a, 0])) as Record<AttributeName, number>;
  let all = 0, unreadable = 0;
  const misses: TextToImageQuality['misses'] = [];
  for (let i = 0; i < n; i += batch) {
    const chunk = specs.slice(i, i + batch);
    const captions = chunk.map(fullCaption);
    const r = await text2img(sd, { prompt: captions, steps: o.steps ?? 25, guidanceScale: o.guidanceScale ?? 7.5, seed: seed + 1 + i });
    const images = tensorToImages(r.images);
    dispose([r.images, r.latents]);
    images.forEach((img, j) => {
      const read = readAttributes(img), want = chunk[j]!;
      if (read.attributes === null) unreadable++;
      let ok = true;
      for (const a of ATTRIBUTES) {
        if (read.attributes !== null && read.attributes[a] === want[a]) hits[a]++;
        else ok = false;
      }
      if (ok) all++;
      else if (misses.length < 20) misses.push({ caption: captions[j]!, read: read.attributes, reason: read.reason });
    });
    o.onProgress?.(Math.min(n, i + batch), n);
  }
  const share = (k: number) => k / n;
  return {
    samples: n,
    perAttribute: Object.fromEntries(ATTRIBUTES.map((a) => [a, share(hits[a])])) as Record<AttributeName, number>,
    all: share(all),
    unreadable: share(unreadable),
    misses,
  };
}
