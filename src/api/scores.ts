// Scores in the public API: a CLIP's alignment to a text and preservation of an input, as the
// automatic choice of eta uses them.
import { imageToTensor, type RgbImage } from '../io/image.js';
import { CLIPScorer } from '../metrics/index.js';
import { DEFAULT_PRESERVATION, clipCandidateScorer, clipHint, resolveClipSource, type CandidateScorer, type PreservationMetric } from '../pipelines/imagic/index.js';
import type { Tensor } from '../engine/index.js';
import type { Pipeline, RunOptions } from './pipeline.js';

/** Options of loadScorer(). */
export interface ScorerOptions extends Pick<RunOptions, 'onProgress' | 'onLog'> {
  /** A transformers CLIPModel folder or Hub repo id (default: the model's clip/ folder, else openai/clip-vit-large-patch14). */
  clipModel?: string;
  /** 'feature-distance' (default: minus the CLIP feature distance, LPIPS-style on patch tokens) or 'clip-i'. */
  preservation?: PreservationMetric;
  /** Never download: a folder, or a repo id already in the cache. */
  offline?: boolean;
}

/** A CLIP that scores images: alignment to a text and preservation of an input (both: higher is more). */
export interface Scorer {
  /** What each score is, e.g. 'CLIP score (shapes-64/clip)'. */
  readonly names: { alignment: string; preservation: string };
  /** CLIP score to the text: 100 * max(cos(image, text), 0). */
  alignment(image: RgbImage, text: string): number;
  /** How much of `input` the image keeps (same size as the input). */
  preservation(image: RgbImage, input: RgbImage): number;
  /** @internal the scorer the automatic choice uses (tensors [N, 3, H, W] in [-1, 1]) */
  readonly candidateScorer: CandidateScorer;
  dispose(): void;
}

function one<T>(image: RgbImage, fn: (t: Tensor) => T): T {
  const t = imageToTensor(image);
  try {
    return fn(t);
  } finally {
    t.dispose();
  }
}

/** Loads the CLIP that scores a pipeline's images (downloaded once for a repo id). */
export async function loadScorer(pipe: Pipeline, o: ScorerOptions = {}, auto = false): Promise<Scorer> {
  const sd = pipe.check();
  const clip = resolveClipSource(sd.root, o.clipModel, auto);
  let c: CLIPScorer;
  try {
    c = await CLIPScorer.load(clip.source, {
      device: pipe.device, offline: o.offline,
      onDownload: o.onProgress ? (p) => o.onProgress!({ phase: 'download', file: p.file, bytes: p.downloaded, total: p.total }) : undefined,
    });
  } catch (e) {
    const hint = clipHint(auto).replace('--clip-model', 'clipModel').replace('(e.g. --eta 0.7)', "(e.g. eta: 0.7)").replace('leave out --metrics', 'leave out scores');
    throw new Error(`cannot load the CLIP that scores the images, ${clip.source}: ${(e as Error).message.split('\n')[0]}; ${hint}`, { cause: e });
  }
  o.onLog?.(`loaded CLIP ${clip.name} for the scores`);
  const s = clipCandidateScorer(c, clip.name, o.preservation ?? DEFAULT_PRESERVATION);
  return {
    names: s.names,
    candidateScorer: s,
    alignment: (image, text) => one(image, (t) => s.alignment(t, text)[0]!),
    preservation: (image, input) => one(image, (t) => one(input, (u) => s.preservation(t, u)[0]!)),
    dispose: () => c.dispose(),
  };
}
