// Automatic choice of eta and seed for an Imagic session (listed as future work by the report this
// project follows): render candidates from the trained session (no retraining), score each with
// metrics any model has (CLIP score to the target text, CLIP-I to the input), and pick by one rule.
import { dispose, type Tensor } from '../../engine/index.js';
import type { StableDiffusion } from '../stable-diffusion.js';
import type { Embeddings } from './edit.js';
import { renderEtas } from './stages.js';

/** The two metrics the choice uses; images are [N, 3, H, W] in [-1, 1]. */
export interface CandidateScorer {
  /** Alignment of each image to the text (CLIP score: 100 * max(cos, 0)). */
  alignment(images: Tensor, text: string): number[];
  /** Preservation: each image's similarity to the input (CLIP-I: cosine of the image embeddings). */
  preservation(images: Tensor, input: Tensor): number[];
  /** What the two numbers are, for tables and plots ("CLIP score (shapes-64 CLIP)", ...). */
  readonly names: { alignment: string; preservation: string };
}

export interface Candidate {
  eta: number;
  /** The sampling seed, or INVERTED_SEED for the input's own DDIM-inverted noise. */
  seed: number;
  alignment: number;
  preservation: number;
}

/**
 * The rule. The input's own alignment to the target text is the floor (what the unedited picture
 * scores) and the best candidate's the ceiling (the most this session's edit achieves); a candidate
 * counts as edited when its alignment reaches `gain` of the way from floor to ceiling. Of the edited
 * candidates, the one most like the input wins; ties go to the smaller eta, then the smaller seed
 * (the inverted noise first). Alignment alone prefers over-edited images (the target's favourite
 * size, color, place); preservation alone prefers the unedited input. Measuring the cut as a share of
 * the session's own range makes it independent of the CLIP's score scale. When no candidate aligns
 * better than the input, the best-aligned candidate is taken (and the reason says the edit failed).
 */
export interface AutoRule {
  gain: number;
}

/** Calibrated once on the Shapes-64 development edits (bench/README.md, "Automatic eta"), not on the benchmark. */
export const DEFAULT_AUTO_RULE: AutoRule = { gain: 0.8 };

/** Which preservation metric the choice uses by default (calibrated with the rule). */
export const DEFAULT_PRESERVATION: PreservationMetric = 'feature-distance';

/** Stands for the input's own starting noise (DDIM inversion through the fine-tuned UNet at e_opt) among the seeds. */
export const INVERTED_SEED = -1;

/** 'inverted' for INVERTED_SEED, else the seed's number. */
export function seedLabel(seed: number): string {
  return seed === INVERTED_SEED ? 'inverted' : String(seed);
}

/** The default candidate seeds: the input's inverted noise and four fresh ones. */
export const AUTO_SEEDS: readonly number[] = Object.freeze([INVERTED_SEED, 0, 1, 2, 3]);

/** The default candidate etas: both sides of 1 (extrapolation is used in practice). */
export const AUTO_ETAS: readonly number[] = Object.freeze([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]);

export interface Choice {
  index: number;
  candidate: Candidate;
  /** Why it won, in words. */
  reason: string;
  /** The candidates that passed the alignment cut. */
  eligible: number[];
  /** The alignment a candidate needed to count as edited. */
  threshold: number;
}

/** Applies the rule (deterministic: the same scores always give the same choice). */
export function chooseCandidate(cands: Candidate[], inputAlignment: number, rule: AutoRule = DEFAULT_AUTO_RULE): Choice {
  if (cands.length === 0) throw new Error('no candidates to choose from');
  if (!(rule.gain >= 0 && rule.gain <= 1)) throw new RangeError(`gain must be in [0, 1], got ${rule.gain}`);
  if (!Number.isFinite(inputAlignment)) throw new RangeError(`inputAlignment must be a number, got ${inputAlignment}`);
  const best = Math.max(...cands.map((c) => c.alignment));
  const edited = best > inputAlignment;
  const threshold = edited ? inputAlignment + rule.gain * (best - inputAlignment) : best;
  const eligible = cands.map((c, i) => [c, i] as const).filter(([c]) => c.alignment >= threshold).map(([, i]) => i);
  const order = (i: number, j: number) => {
    const a = cands[i]!, b = cands[j]!;
    return b.preservation - a.preservation || a.eta - b.eta || a.seed - b.seed;
  };
  const index = [...eligible].sort(order)[0]!;
  const c = cands[index]!;
  const what = `eta ${c.eta} seed ${seedLabel(c.seed)} (alignment ${c.alignment.toFixed(2)}, preservation ${c.preservation.toFixed(4)})`;
  return {
    index, candidate: c, eligible, threshold,
    reason: edited
      ? `the input scores ${inputAlignment.toFixed(2)} and the best candidate ${best.toFixed(2)}; ${eligible.length} of ${cands.length} candidates reach ${threshold.toFixed(2)} (${rule.gain} of the way); of those, ${what} is the most like the input`
      : `no candidate aligns with the text better than the input (${inputAlignment.toFixed(2)}): the edit did not take; taking the best-aligned, ${what}`,
  };
}

export interface AutoOptions {
  etas: readonly number[];
  seeds: readonly number[];
  steps: number;
  guidanceScale: number;
  target: string;
  /** The input [1, 3, H, W] in [-1, 1]. */
  input: Tensor;
  /** The starting noise of INVERTED_SEED in `seeds` ([1, 4, h, w], from invertedNoise()). */
  invertedNoise?: Tensor;
  scorer: CandidateScorer;
  rule?: AutoRule;
  onStep?: (done: number, total: number) => void;
  /** Receives every candidate image ([1, 3, H, W], the caller owns it) as it is scored. */
  onImage?: (image: Tensor, c: Candidate) => Promise<void> | void;
}

/** Renders every eta for every seed (one batch per seed), scores them, and chooses. */
export async function autoChoose(sd: StableDiffusion, emb: Embeddings, o: AutoOptions): Promise<{ candidates: Candidate[]; choice: Choice; inputAlignment: number }> {
  if (o.etas.length === 0 || o.seeds.length === 0) throw new Error('--eta auto needs at least one candidate eta and seed');
  const candidates: Candidate[] = [];
  const total = o.seeds.length * o.steps;
  let done = 0;
  for (const seed of o.seeds) {
    if (seed === INVERTED_SEED && !o.invertedNoise) throw new Error('the inverted-noise candidate needs invertedNoise');
    const noise = seed === INVERTED_SEED ? o.invertedNoise : undefined;
    const images = await renderEtas(sd, emb, { etas: [...o.etas], seed, noise, steps: o.steps, guidanceScale: o.guidanceScale, onStep: () => o.onStep?.(++done, total) });
    try {
      const align = o.scorer.alignment(images, o.target);
      const pres = o.scorer.preservation(images, o.input);
      for (const [i, eta] of o.etas.entries()) {
        const c: Candidate = { eta, seed, alignment: align[i]!, preservation: pres[i]! };
        candidates.push(c);
        if (o.onImage) {
          const one = images.narrow(0, i, 1).contiguous();
          await o.onImage(one, c);
        }
      }
    } finally {
      dispose(images);
    }
  }
  const inputAlignment = o.scorer.alignment(o.input, o.target)[0]!;
  return { candidates, choice: chooseCandidate(candidates, inputAlignment, o.rule), inputAlignment };
}

/** What a CLIP scorer (src/metrics' CLIPScorer) offers: per-pair CLIP score, CLIP-I and the feature distance. */
export interface ClipLike {
  clipScore(images: Tensor, texts: string[]): number[];
  clipI(imagesA: Tensor, imagesB: Tensor): number[];
  featureDistance(imagesA: Tensor, imagesB: Tensor): number[];
}

/** How preservation is measured: CLIP-I (pooled embedding cosine) or minus the CLIP feature distance (patch tokens, LPIPS-style). */
export type PreservationMetric = 'clip-i' | 'feature-distance';

/** The candidate scorer of a CLIP: alignment = CLIP score to the text; preservation as `metric` says (higher = more like the input). */
export function clipCandidateScorer(clip: ClipLike, clipName: string, metric: PreservationMetric = DEFAULT_PRESERVATION): CandidateScorer {
  return {
    names: {
      alignment: `CLIP score (${clipName})`,
      preservation: metric === 'clip-i' ? `CLIP-I to the input (${clipName})` : `minus the CLIP feature distance to the input (${clipName})`,
    },
    alignment: (images, text) => clip.clipScore(images, Array<string>(images.shape[0]!).fill(text)),
    preservation: (images, input) => {
      const n = images.shape[0]!;
      const rep = input.expand(n, -1, -1, -1);
      try {
        return metric === 'clip-i' ? clip.clipI(images, rep) : clip.featureDistance(images, rep).map((d) => -d);
      } finally {
        rep.dispose();
      }
    },
  };
}
