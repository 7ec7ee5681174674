// Training data for the Shapes-64 model, drawn on the fly: batch k of a run depends only on (seed, k),
// so a resumed run sees exactly the batches an uninterrupted one would.
import { fromBytes, tidy, type Device, type Tensor } from '../../engine/index.js';
import { fullCaption, partialCaption } from '../captions.js';
import { renderShape } from '../render.js';
import { IMAGE_SIZE, mulberry32, randomSpec, type Rng, type ShapeSpec } from '../spec.js';

/** A 32-bit mix of (seed, step, stream) for per-step generators. */
export function stepSeed(seed: number, step: number, stream = 0): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35) ^ Math.imul(stream + 7, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** What share of captions is empty (for classifier-free guidance) and partial (naming a random subset). */
export interface CaptionMix {
  dropout: number;
  partial: number;
}

export const DEFAULT_CAPTION_MIX: CaptionMix = { dropout: 0.1, partial: 0.4 };

/** One caption for `spec`: empty with p = dropout, partial with p = partial, else full. */
export function trainingCaption(spec: ShapeSpec, rng: Rng, mix: CaptionMix = DEFAULT_CAPTION_MIX): string {
  const u = rng();
  if (u < mix.dropout) return '';
  if (u < mix.dropout + mix.partial) return partialCaption(spec, rng);
  return fullCaption(spec);
}

export interface ShapesBatch {
  /** [B, 3, 64, 64] in [-1, 1]. */
  images: Tensor;
  captions: string[];
  specs: ShapeSpec[];
}

/** Renders `specs` into one [B, 3, 64, 64] tensor in [-1, 1]. */
export function renderBatch(specs: ShapeSpec[], device: Device = 'cpu'): Tensor {
  const n = IMAGE_SIZE, px = n * n * 3;
  const bytes = new Uint8Array(specs.length * px);
  specs.forEach((s, i) => bytes.set(renderShape(s).data, i * px));
  return tidy(() => fromBytes(bytes, [specs.length, n, n, 3], 'uint8', { device }).permute(0, 3, 1, 2).float().div(127.5).sub(1).contiguous());
}

/** Batch `step` of the run seeded `seed`: random specs, their renders and training captions. */
export function shapesBatch(seed: number, step: number, batchSize: number, o: { device?: Device; mix?: CaptionMix } = {}): ShapesBatch {
  const rng = mulberry32(stepSeed(seed, step));
  const specs = Array.from({ length: batchSize }, () => randomSpec(rng));
  const captions = specs.map((s) => trainingCaption(s, rng, o.mix));
  return { images: renderBatch(specs, o.device), captions, specs };
}
