// The Shapes-64 edit benchmark: a fixed set of single-attribute edits (20 of each kind: color, shape,
// size, position, background) on inputs rendered from random specs, run with Imagic (every eta of a
// sweep from one training), SDEdit and DDIM inversion, each output read back by the evaluator.
import { dispose, Generator, keep, noGrad, type Tensor } from '../engine/index.js';
import { imageToTensor, tensorToImage } from '../io/image-tensor.js';
import { ddimInversionEdit } from '../pipelines/ddim-inversion.js';
import { encodeImage, generatorNoise, renderEdit, stageA, stageB } from '../pipelines/imagic/stages.js';
import type { ImagicSettings } from '../pipelines/imagic/presets.js';
import { img2img } from '../pipelines/img2img.js';
import { encodePrompt, type StableDiffusion } from '../pipelines/stable-diffusion.js';
import { captionOf, type CaptionAttributes } from './captions.js';
import { checkEdit, readAttributes } from './evaluate.js';
import { renderShape } from './render.js';
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

export interface CaseResult {
  id: number;
  kind: EditKind;
  target: string;
  /** Imagic, per eta of the sweep (key: eta with two decimals). */
  imagic: Record<string, EditOutcome>;
  sdedit: EditOutcome;
  ddimInversion: EditOutcome;
  seconds: { imagic: number; sdedit: number; ddimInversion: number };
}

export interface BenchmarkSettings {
  imagic: ImagicSettings;
  etas: number[];
  sdeditStrength: number;
  /** Sampling steps and guidance of every method. */
  steps: number;
  guidanceScale: number;
  seed: number;
}

function outcome(input: ShapeSpec, image: Tensor, target: string): EditOutcome {
  const c = checkEdit(readAttributes(renderShape(input)), readAttributes(tensorToImage(image)), target);
  return { success: c.success, preserved: c.preserved };
}

/**
 * Runs one case with every method. The UNet is fine-tuned by Imagic's stage B and restored from
 * `original` (a copy of its weights) afterwards.
 */
export async function runEditCase(sd: StableDiffusion, c: EditCase, s: BenchmarkSettings, original: Map<string, Tensor>): Promise<CaseResult> {
  const image = imageToTensor(renderShape(c.input), { device: sd.device });
  const seconds = { imagic: 0, sdedit: 0, ddimInversion: 0 };
  const imagic: Record<string, EditOutcome> = {};
  const latent = keep(encodeImage(sd, image));
  const eTgt = keep(encodePrompt(sd, [c.target])), eUncond = keep(encodePrompt(sd, ['']));
  let t0 = Date.now();
  let eOpt: Tensor | null = null;
  try {
    const a = await stageA(sd, latent, eTgt, { steps: s.imagic.stepsA, lr: s.imagic.lrA, noise: generatorNoise(new Generator(s.imagic.seed), latent) });
    eOpt = a.eOpt;
    await stageB(sd, latent, eOpt, { steps: s.imagic.stepsB, lr: s.imagic.lrB, train: s.imagic.train, noise: generatorNoise(new Generator(s.imagic.seed + 1), latent) });
    for (const eta of s.etas) {
      const r = await renderEdit(sd, { eTgt, eOpt, eUncond }, { eta, seed: s.seed, steps: s.steps, guidanceScale: s.guidanceScale });
      imagic[eta.toFixed(2)] = outcome(c.input, r.image, c.target);
      dispose([r.image, r.latent]);
    }
  } finally {
    noGrad(() => {
      for (const [k, p] of sd.unet.namedParameters()) p.copy_(original.get(k)!);
    });
    dispose([latent, eTgt, eUncond, ...(eOpt ? [eOpt] : [])]);
  }
  seconds.imagic = (Date.now() - t0) / 1000;

  t0 = Date.now();
  const sde = img2img(sd, { image, prompt: c.target, strength: s.sdeditStrength, steps: s.steps, guidanceScale: s.guidanceScale, seed: s.seed });
  const sdedit = outcome(c.input, sde.images, c.target);
  dispose([sde.images, sde.latents]);
  seconds.sdedit = (Date.now() - t0) / 1000;

  t0 = Date.now();
  const inv = await ddimInversionEdit(sd, { image, targetPrompt: c.target, steps: s.steps, guidanceScale: s.guidanceScale, seed: s.seed });
  const ddimInversion = outcome(c.input, inv.images, c.target);
  dispose([inv.images, inv.latents, inv.invertedLatents, image]);
  seconds.ddimInversion = (Date.now() - t0) / 1000;
  return { id: c.id, kind: c.kind, target: c.target, imagic, sdedit, ddimInversion, seconds };
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

export interface BenchmarkSummary {
  cases: number;
  defaultEta: number;
  /** The one eta of the sweep with the most edits both successful and preserving (ties: the smaller eta). */
  sweptEta: number;
  methods: Record<string, Rates & { perKind: Record<EditKind, Rates> }>;
  /** Imagic's both-rate at every eta of the sweep. */
  imagicByEta: Record<string, number>;
}

/** Summarizes case results: Imagic at the default eta and at the best single eta of the sweep, SDEdit, DDIM inversion. */
export function summarize(results: CaseResult[], defaultEta: number, etas: number[]): BenchmarkSummary {
  const imagicByEta: Record<string, number> = {};
  for (const eta of etas) imagicByEta[eta.toFixed(2)] = rates(results.map((r) => r.imagic[eta.toFixed(2)]!)).both;
  const sweptEta = etas.reduce((best, e) => (imagicByEta[e.toFixed(2)]! > imagicByEta[best.toFixed(2)]! ? e : best), etas[0]!);
  const method = (pickOutcome: (r: CaseResult) => EditOutcome) => {
    const perKind = Object.fromEntries(EDIT_KINDS.map((k) => [k, rates(results.filter((r) => r.kind === k).map(pickOutcome))])) as Record<EditKind, Rates>;
    return { ...rates(results.map(pickOutcome)), perKind };
  };
  return {
    cases: results.length,
    defaultEta,
    sweptEta,
    methods: {
      [`Imagic (eta ${defaultEta})`]: method((r) => r.imagic[defaultEta.toFixed(2)]!),
      [`Imagic (swept eta ${sweptEta})`]: method((r) => r.imagic[sweptEta.toFixed(2)]!),
      SDEdit: method((r) => r.sdedit),
      'DDIM inversion': method((r) => r.ddimInversion),
    },
    imagicByEta,
  };
}
