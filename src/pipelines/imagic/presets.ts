// Imagic's settings and presets, each with where its numbers come from.
import { LORA_TARGETS, type LoRATargets } from '../../nn/index.js';
import { isShapesModel } from '../../shapes/domain.js';

/** What stage B trains: every UNet weight, the attention layers' weights, or LoRA adapters on a frozen UNet. */
export type TrainMode = 'all' | 'attention' | 'lora';
/** What stage B can train: every UNet weight ('all'), the attention weights, or LoRA adapters. */
export const TRAIN_MODES: readonly TrainMode[] = ['all', 'attention', 'lora'];

/** Everything an Imagic edit is trained and sampled with (a preset's values, overridable one by one). */
export interface ImagicSettings {
  /** Stage A: text-embedding optimization steps and learning rate (Adam). */
  stepsA: number;
  lrA: number;
  /** Stage B: UNet fine-tuning steps and learning rate (Adam). */
  stepsB: number;
  lrB: number;
  /**
   * What Stage B trains: every UNet weight, the attention layers' weights, or LoRA adapters on a
   * frozen UNet (a session stores megabytes instead of the UNet; far less memory to train).
   */
  train: TrainMode;
  /** LoRA's rank and the layers that get adapters (with train 'lora'). */
  loraRank: number;
  loraTargets: LoRATargets;
  /** Stage C: DDIM steps, guidance scale, and the default interpolation weight of the target text. */
  steps: number;
  guidanceScale: number;
  eta: number;
  /** The candidate etas of the automatic choice (`--eta auto`): rendered from one training, scored, one chosen. */
  autoEtas: readonly number[];
  /** Seed of the training noise and timesteps (sampling seeds are chosen per render). */
  seed: number;
  /** Use a sample of the VAE posterior instead of its mean as the image latent (diffusers does). */
  sampleLatent: boolean;
  /** Mixed precision for stages A and B (autocast; fp32 master weights): 'no', 'bf16' or 'fp16'. */
  mixedPrecision: 'no' | 'bf16' | 'fp16';
  /** Save a resumable Stage B checkpoint every this many steps (0: only at the end). */
  checkpointEvery: number;
  /** Recompute UNet activations in the backward pass (less memory for stage B; same results). */
  gradientCheckpointing: boolean;
}

export type PresetName = 'default' | 'thorough' | 'fast' | 'shapes';

const base = { guidanceScale: 7.5, steps: 50, eta: 0.7, autoEtas: [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4], seed: 0, sampleLatent: false, mixedPrecision: 'no', train: 'all', loraRank: 4, loraTargets: 'attention', lrA: 1e-3, lrB: 2e-6, checkpointEvery: 100, gradientCheckpointing: false } as const;

/**
 * - default: 500 A + 1000 B steps, lr 1e-3 / 2e-6, guidance 7.5, 50 DDIM steps, eta 0.7: the settings
 *   of the public Stable Diffusion ports of Imagic (diffusers' community pipeline, the imagic-editing
 *   notebooks); the paper reports its best etas in 0.6-0.8.
 * - thorough: 1500 + 1500 steps: the setting of the report this project follows.
 * - fast: 100 + 200 steps with a 10x learning rate for Stage B, for a quick look (lower fidelity).
 * - shapes: for the embedded Shapes-64 model (6 M parameters, 8x8 latents): 200 + 150 steps, lr
 *   3e-3 / 5e-5 (a Stage B drift per weight comparable to SD's 1000 x 2e-6 relative to the weights'
 *   scale), 25 DDIM steps, candidate etas 0.4-1.4 for the automatic choice, eta 0.8 when one is
 *   rendered without it. On the development edits (bench/README.md, "Recipe sweep"; not the
 *   benchmark) a stronger training (400 + 300 steps, stage B lr 1e-4, etas up to 2.4) kept the input
 *   better at low etas but left far fewer right candidates (e.g. 7, 3, 1 of 45 where this one had
 *   26, 5, 8 of 27), and costs twice the time; eta 0.8 was this recipe's best single eta there.
 */
export const PRESETS: Record<PresetName, ImagicSettings> = {
  default: { ...base, stepsA: 500, stepsB: 1000 },
  thorough: { ...base, stepsA: 1500, stepsB: 1500 },
  fast: { ...base, stepsA: 100, stepsB: 200, lrB: 2e-5, steps: 25 },
  shapes: { ...base, stepsA: 200, lrA: 3e-3, stepsB: 150, lrB: 5e-5, steps: 25, eta: 0.8, autoEtas: [0.4, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4] },
};

/**
 * Stage B's learning rate per preset and what it trains, used where --lr-b is not given: LoRA's
 * adapters start at zero and need a far larger step than a full fine-tuning of the same weights.
 */
export const LR_B: Record<PresetName, Record<ImagicSettings['train'], number>> = {
  default: { all: 2e-6, attention: 2e-6, lora: 1e-4 },
  thorough: { all: 2e-6, attention: 2e-6, lora: 1e-4 },
  fast: { all: 2e-5, attention: 2e-5, lora: 1e-3 },
  shapes: { all: 5e-5, attention: 5e-5, lora: 1e-3 },
};

/** The preset when none is given: 'shapes' for the embedded Shapes-64 model, else SD's 'default'. */
export function defaultPreset(model: string): PresetName {
  return isShapesModel(model) ? 'shapes' : 'default';
}

/** A preset with overrides, every number checked. Stage B's learning rate follows what it trains (LR_B) unless given. */
export function resolveSettings(preset: PresetName = 'default', overrides: Partial<ImagicSettings> = {}): ImagicSettings {
  const p = PRESETS[preset];
  if (p === undefined) throw new Error(`unknown preset '${preset}' (default, thorough, fast, shapes)`);
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const s: ImagicSettings = { ...p, ...defined };
  if (overrides.lrB === undefined && LR_B[preset][s.train] !== undefined) s.lrB = LR_B[preset][s.train];
  const intAtLeast = (name: keyof ImagicSettings, min: number) => {
    const v = s[name] as number;
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  };
  intAtLeast('stepsA', 0);
  intAtLeast('stepsB', 0);
  intAtLeast('steps', 1);
  intAtLeast('seed', 0);
  intAtLeast('checkpointEvery', 0);
  for (const k of ['lrA', 'lrB'] as const) {
    if (!Number.isFinite(s[k]) || s[k] <= 0) throw new RangeError(`${k} must be a positive number, got ${s[k]}`);
  }
  if (!Number.isFinite(s.guidanceScale)) throw new RangeError(`guidanceScale must be a number, got ${s.guidanceScale}`);
  if (!Number.isFinite(s.eta)) throw new RangeError(`eta must be a number, got ${s.eta}`);
  if (!Array.isArray(s.autoEtas) || s.autoEtas.length === 0 || !s.autoEtas.every(Number.isFinite)) throw new RangeError(`autoEtas must be a non-empty list of numbers, got ${JSON.stringify(s.autoEtas)}`);
  if (!TRAIN_MODES.includes(s.train)) throw new RangeError(`train must be 'all', 'attention' or 'lora', got '${s.train}'`);
  intAtLeast('loraRank', 1);
  if (!LORA_TARGETS.includes(s.loraTargets)) throw new RangeError(`loraTargets must be one of ${LORA_TARGETS.join(', ')}, got '${s.loraTargets}'`);
  if (!['no', 'bf16', 'fp16'].includes(s.mixedPrecision)) throw new RangeError(`mixedPrecision must be no, bf16 or fp16, got '${s.mixedPrecision}'`);
  return s;
}

/** A warning for etas outside [0, 1] (extrapolation: allowed, and used in practice). */
export function etaWarning(eta: number): string | null {
  return eta < 0 || eta > 1 ? `eta ${eta} is outside [0, 1]: the embedding is extrapolated beyond the ${eta > 1 ? 'target text' : 'optimized embedding'}` : null;
}
