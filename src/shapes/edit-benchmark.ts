// The Shapes-64 edit benchmark: a fixed set of single-attribute edits (20 of each kind: color, shape,
// size, position, background) on inputs rendered from random specs, run with Imagic (one training,
// every eta x seed candidate, and the automatic choice among them as `imagic edit` makes it), SDEdit
// at several strengths and DDIM inversion with and without the input's caption; every output is read
// back by the domain evaluator (the stand-in for a human judge) and scored with the metrics.
import { dispose, Generator, keep, noGrad, type Tensor } from '../engine/index.js';
import { imageToTensor, tensorToImage, tensorToImages } from '../io/image-tensor.js';
import { ddimInversionEdit } from '../pipelines/ddim-inversion.js';
import { autoChoose, INVERTED_SEED, type AutoRule, type CandidateScorer } from '../pipelines/imagic/auto.js';
import { encodeImage, fineTune, generatorNoise, invertedNoise, stageA } from '../pipelines/imagic/stages.js';
import type { ImagicSettings } from '../pipelines/imagic/presets.js';
import { img2img } from '../pipelines/img2img.js';
import { encodePrompt, type StableDiffusion } from '../pipelines/stable-diffusion.js';
import { captionOf, fullCaption, type CaptionAttributes } from './captions.js';
import { checkEdit, readAttributes, type ReadResult } from './evaluate.js';
import { renderShape } from './render.js';
import type { RgbImage } from '../io/image-types.js';
import {
  BACKGROUNDS, mulberry32, OBJECT_COLORS, pick, POSITIONS, randomSpec, SHAPES, SIZES,
  type ShapeSpec,
} from './spec.js';

export const EDIT_KINDS = ['color', 'shape', 'size', 'position', 'background'] as const;
export type EditKind = (typeof EDIT_KINDS)[number];

export interface EditCase {
  id: number;
  kind: EditKind;
  input: ShapeSpec;
  /** The target caption: the new value of the edited attribute, and the shape (the color, for a shape edit), as a user would write it. */
  target: string;
}

const VALUES = { color: OBJECT_COLORS, shape: SHAPES, size: SIZES, position: POSITIONS, background: BACKGROUNDS } as const;

/** The fixed benchmark: `perKind` edits of each kind (default 20, so 100), from `seed`. */
export function editBenchmarkCases(perKind = 20, seed = 2026): EditCase[] {
  const rng = mulberry32(seed);
  const cases: EditCase[] = [];
  for (const kind of EDIT_KINDS) {
    for (let i = 0; i < perKind; i++) {
      const input = randomSpec(rng);
      const others = (VALUES[kind] as readonly string[]).filter((v) => v !== input[kind]);
      const value = pick(rng, others);
      const named: CaptionAttributes = { [kind]: value };
      if (kind === 'shape') named.color = input.color;
      else named.shape = input.shape;
      cases.push({ id: cases.length, kind, input, target: captionOf(named) });
    }
  }
  return cases;
}

export interface EditOutcome {
  success: boolean;
  preserved: boolean;
}

/** An outcome with its metrics: alignment to the target text and preservation of the input. */
export interface ScoredOutcome extends EditOutcome {
  alignment: number;
  preservation: number;
}

export interface CaseResult {
  id: number;
  kind: EditKind;
  target: string;
  /** Imagic, every candidate (key: `eta/seed`, eta with two decimals). */
  imagic: Record<string, ScoredOutcome>;
  /** The input's own alignment to the target (the rule's floor). */
  inputAlignment: number;
  /** The automatic choice among the candidates (the rule sees only the metrics). */
  auto: { eta: number; seed: number };
  /** SDEdit per strength (key: strength with two decimals). */
  sdedit: Record<string, ScoredOutcome>;
  /** DDIM inversion from the empty prompt and from the input's full caption. */
  ddimInversion: { empty: ScoredOutcome; caption: ScoredOutcome };
  seconds: { imagicTrain: number; imagicRender: number; sdedit: number; ddimInversion: number };
}

export interface BenchmarkSettings {
  imagic: ImagicSettings;
  etas: number[];
  seeds: number[];
  rule: AutoRule;
  sdeditStrengths: number[];
  /** Sampling steps and guidance of every method. */
  steps: number;
  guidanceScale: number;
  /** The baselines' sampling seed. */
  seed: number;
}

const noiseName = (seed: number) => (seed === INVERTED_SEED ? 'inverted noise' : `seed ${seed}`);

export const candidateKey = (eta: number, seed: number) => `${eta.toFixed(2)}/${seed}`;

function outcome(input: ReadResult, image: RgbImage, target: string): EditOutcome {
  const c = checkEdit(input, readAttributes(image), target);
  return { success: c.success, preserved: c.preserved };
}

/**
 * Runs one case with every method. Imagic's candidates and choice come from autoChoose, as
 * `imagic edit` makes them. The UNet is fine-tuned by Imagic's stage B and restored from `original`
 * (a copy of its weights) afterwards.
 */
export async function runEditCase(sd: StableDiffusion, c: EditCase, s: BenchmarkSettings, original: Map<string, Tensor>, scorer: CandidateScorer): Promise<CaseResult> {
  const rendered = renderShape(c.input);
  const image = imageToTensor(rendered, { device: sd.device });
  const inputRead = readAttributes(rendered);
  const seconds = { imagicTrain: 0, imagicRender: 0, sdedit: 0, ddimInversion: 0 };
  const imagic: Record<string, ScoredOutcome> = {};
  const scored = (images: Tensor): ScoredOutcome[] => {
    const al = scorer.alignment(images, c.target), pr = scorer.preservation(images, image);
    return tensorToImages(images).map((im, i) => ({ ...outcome(inputRead, im, c.target), alignment: al[i]!, preservation: pr[i]! }));
  };
  const latent = keep(encodeImage(sd, image));
  const eTgt = keep(encodePrompt(sd, [c.target])), eUncond = keep(encodePrompt(sd, ['']));
  let t0 = Date.now();
  let eOpt: Tensor | null = null;
  let inverted: Tensor | null = null;
  let auto: Awaited<ReturnType<typeof autoChoose>>;
  try {
    const a = await stageA(sd, latent, eTgt, { steps: s.imagic.stepsA, lr: s.imagic.lrA, noise: generatorNoise(new Generator(s.imagic.seed), latent) });
    eOpt = a.eOpt;
    await fineTune(sd, latent, eOpt, s.imagic, { noise: generatorNoise(new Generator(s.imagic.seed + 1), latent) });
    seconds.imagicTrain = (Date.now() - t0) / 1000;
    t0 = Date.now();
    inverted = s.seeds.includes(INVERTED_SEED) ? invertedNoise(sd, latent, eOpt, s.steps) : null;
    auto = await autoChoose(sd, { eTgt, eOpt, eUncond }, {
      etas: s.etas, seeds: s.seeds, steps: s.steps, guidanceScale: s.guidanceScale, target: c.target, input: image,
      invertedNoise: inverted ?? undefined, scorer, rule: s.rule,
      onImage: (one, cand) => {
        imagic[candidateKey(cand.eta, cand.seed)] = { ...outcome(inputRead, tensorToImage(one), c.target), alignment: cand.alignment, preservation: cand.preservation };
        one.dispose();
      },
    });
    seconds.imagicRender = (Date.now() - t0) / 1000;
  } finally {
    noGrad(() => {
      for (const [k, p] of sd.unet.namedParameters()) p.copy_(original.get(k)!);
    });
    dispose([latent, eTgt, eUncond, ...(eOpt ? [eOpt] : []), ...(inverted ? [inverted] : [])]);
  }
  const { inputAlignment } = auto;
  const chosen = auto.choice.candidate;

  t0 = Date.now();
  const sdedit: Record<string, ScoredOutcome> = {};
  for (const strength of s.sdeditStrengths) {
    const r = img2img(sd, { image, prompt: c.target, strength, steps: s.steps, guidanceScale: s.guidanceScale, seed: s.seed });
    sdedit[strength.toFixed(2)] = scored(r.images)[0]!;
    dispose([r.images, r.latents]);
  }
  seconds.sdedit = (Date.now() - t0) / 1000;

  t0 = Date.now();
  const inversion = async (sourcePrompt: string) => {
    const inv = await ddimInversionEdit(sd, { image, sourcePrompt, targetPrompt: c.target, steps: s.steps, guidanceScale: s.guidanceScale, seed: s.seed });
    const o = scored(inv.images)[0]!;
    dispose([inv.images, inv.latents, inv.invertedLatents]);
    return o;
  };
  const ddimInversion = { empty: await inversion(''), caption: await inversion(fullCaption(c.input)) };
  image.dispose();
  seconds.ddimInversion = (Date.now() - t0) / 1000;
  return { id: c.id, kind: c.kind, target: c.target, inputAlignment, imagic, auto: { eta: chosen.eta, seed: chosen.seed }, sdedit, ddimInversion, seconds };
}

export interface Rates {
  success: number;
  preserved: number;
  both: number;
}

/** Shares of success, preservation and both over `outcomes`. */
export function rates(outcomes: EditOutcome[]): Rates {
  const n = Math.max(1, outcomes.length);
  return {
    success: outcomes.filter((o) => o.success).length / n,
    preserved: outcomes.filter((o) => o.preserved).length / n,
    both: outcomes.filter((o) => o.success && o.preserved).length / n,
  };
}

const good = (o: EditOutcome) => o.success && o.preserved;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export interface MethodSummary extends Rates {
  perKind: Record<EditKind, Rates>;
  /** Mean alignment and preservation over the edits (where the method has them). */
  alignment?: number;
  preservation?: number;
}

export interface BenchmarkSummary {
  cases: number;
  /** The headline rows: the automatic choice, Imagic's best fixed eta, each baseline at its best single setting, and the upper bounds. */
  methods: Record<string, MethodSummary>;
  /** Imagic at every fixed eta (seed `seeds[0]`): both-rate and mean metrics (over every seed): the trade-off curve. */
  imagicByEta: Record<string, { both: number; alignment: number; preservation: number }>;
  sdeditByStrength: Record<string, { both: number; alignment: number; preservation: number }>;
  ddimInversion: Record<'empty' | 'caption', { both: number; alignment: number; preservation: number }>;
  bestFixedEta: number;
  bestStrength: number;
  bestInversion: 'empty' | 'caption';
  /** Of the edits where some candidate is right, the share where the rule chose a right one. */
  ruleHitRate: number;
}

/** Summarizes case results (ties in "best single setting" go to the first in order). */
export function summarize(results: CaseResult[], s: Pick<BenchmarkSettings, 'etas' | 'seeds' | 'sdeditStrengths'>): BenchmarkSummary {
  const method = (pickOutcome: (r: CaseResult) => EditOutcome | ScoredOutcome): MethodSummary => {
    const perKind = Object.fromEntries(EDIT_KINDS.map((k) => [k, rates(results.filter((r) => r.kind === k).map(pickOutcome))])) as Record<EditKind, Rates>;
    const outs = results.map(pickOutcome);
    const withMetrics = outs.every((o) => 'alignment' in o);
    return {
      ...rates(outs), perKind,
      ...(withMetrics ? { alignment: mean(outs.map((o) => (o as ScoredOutcome).alignment)), preservation: mean(outs.map((o) => (o as ScoredOutcome).preservation)) } : {}),
    };
  };
  const seed0 = s.seeds[0]!;
  const curve = (outs: ScoredOutcome[], firstSeed: EditOutcome[]) => ({ both: rates(firstSeed).both, alignment: mean(outs.map((o) => o.alignment)), preservation: mean(outs.map((o) => o.preservation)) });
  const imagicByEta = Object.fromEntries(s.etas.map((eta) => [eta.toFixed(2), curve(
    results.flatMap((r) => s.seeds.map((seed) => r.imagic[candidateKey(eta, seed)]!)),
    results.map((r) => r.imagic[candidateKey(eta, seed0)]!),
  )]));
  const sdeditByStrength = Object.fromEntries(s.sdeditStrengths.map((st) => {
    const outs = results.map((r) => r.sdedit[st.toFixed(2)]!);
    return [st.toFixed(2), curve(outs, outs)];
  }));
  const ddimInversion = {
    empty: curve(results.map((r) => r.ddimInversion.empty), results.map((r) => r.ddimInversion.empty)),
    caption: curve(results.map((r) => r.ddimInversion.caption), results.map((r) => r.ddimInversion.caption)),
  };
  const argBest = <K extends string>(m: Record<K, { both: number }>) => (Object.keys(m) as K[]).reduce((b, k) => (m[k].both > m[b].both ? k : b));
  const bestEta = argBest(imagicByEta), bestStrength = argBest(sdeditByStrength), bestInversion = argBest(ddimInversion);
  const anyRight = results.filter((r) => Object.values(r.imagic).some(good));
  const autoOf = (r: CaseResult) => r.imagic[candidateKey(r.auto.eta, r.auto.seed)]!;
  const oracle = (r: CaseResult, keys: string[]): EditOutcome => {
    const o = keys.map((k) => r.imagic[k]!);
    return o.find(good) ?? { success: o.some((x) => x.success), preserved: false };
  };
  return {
    cases: results.length,
    methods: {
      'Imagic, automatic eta and seed (default)': method(autoOf),
      [`Imagic, best fixed eta (${bestEta}, ${noiseName(seed0)})`]: method((r) => r.imagic[`${bestEta}/${seed0}`]!),
      [`SDEdit, best strength (${bestStrength})`]: method((r) => r.sdedit[bestStrength]!),
      [`DDIM inversion, best source (${bestInversion === 'empty' ? 'empty prompt' : "input's caption"})`]: method((r) => r.ddimInversion[bestInversion]),
      [`Imagic, per-edit best eta (${noiseName(seed0)}; upper bound)`]: method((r) => oracle(r, s.etas.map((e) => candidateKey(e, seed0)))),
      'Imagic, any candidate (upper bound)': method((r) => oracle(r, Object.keys(r.imagic))),
    },
    imagicByEta, sdeditByStrength, ddimInversion,
    bestFixedEta: Number(bestEta), bestStrength: Number(bestStrength), bestInversion,
    ruleHitRate: anyRight.filter((r) => good(autoOf(r))).length / Math.max(1, anyRight.length),
  };
}
