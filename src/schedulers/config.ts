// Scheduler configs as diffusers writes them (scheduler/scheduler_config.json), with diffusers' defaults.
// Keys keep their snake_case JSON names; a PNDM config (what SD v1 checkpoints ship) is read as DDIM.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const BETA_SCHEDULES = ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const;
export const TIMESTEP_SPACINGS = ['leading', 'trailing', 'linspace'] as const;
export const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample'] as const;
// learned variances need a UNet with twice the channels (not SD v1); diffusers' fixed_large_log is unusable
export const VARIANCE_TYPES = ['fixed_small', 'fixed_small_log', 'fixed_large'] as const;

export type BetaSchedule = (typeof BETA_SCHEDULES)[number];
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];
export type PredictionType = (typeof PREDICTION_TYPES)[number];
export type VarianceType = (typeof VARIANCE_TYPES)[number];

/** What every noise schedule shares (the training-time forward process and the inference grid). */
export interface NoiseScheduleConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  /** Explicit betas (one per training step); overrides beta_schedule. */
  trained_betas: number[] | null;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules ... are Flawed"). */
  rescale_betas_zero_snr: boolean;
  steps_offset: number;
  timestep_spacing: TimestepSpacing;
  prediction_type: PredictionType;
  clip_sample: boolean;
  clip_sample_range: number;
  /** Dynamic thresholding (Imagen) is not implemented: true is refused. */
  thresholding: boolean;
}

export interface DDIMSchedulerConfig extends NoiseScheduleConfig {
  /** The alpha product "before" step 0: 1 (true) or alphas_cumprod[0] (false, SD v1). */
  set_alpha_to_one: boolean;
}

export interface DDPMSchedulerConfig extends NoiseScheduleConfig {
  variance_type: VarianceType;
}

const SHARED_DEFAULTS: NoiseScheduleConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  rescale_betas_zero_snr: false,
  steps_offset: 0,
  timestep_spacing: 'leading',
  prediction_type: 'epsilon',
  clip_sample: true,
  clip_sample_range: 1.0,
  thresholding: false,
};

/** DDIMScheduler.__init__ defaults in diffusers. */
export const DDIM_DEFAULTS: Readonly<DDIMSchedulerConfig> = Object.freeze({ ...SHARED_DEFAULTS, set_alpha_to_one: true });
/** DDPMScheduler.__init__ defaults in diffusers. */
export const DDPM_DEFAULTS: Readonly<DDPMSchedulerConfig> = Object.freeze({ ...SHARED_DEFAULTS, variance_type: 'fixed_small' as const });

/** The scheduler of Stable Diffusion v1.x (CompVis/stable-diffusion-v1-4 scheduler_config.json, read as DDIM). */
export const SD_V1_DDIM_CONFIG: Readonly<DDIMSchedulerConfig> = Object.freeze({
  ...DDIM_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear' as const,
  clip_sample: false,
  set_alpha_to_one: false,
  steps_offset: 1,
});

export class SchedulerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerConfigError';
  }
}

export interface ParsedConfig<C> {
  config: C;
  /** The `_class_name` the file declared (null if none). */
  className: string | null;
  /** Things the reader changed or ignored, for the caller to show. */
  warnings: string[];
}

type Raw = Record<string, unknown>;

function asObject(raw: unknown, where: string): Raw {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SchedulerConfigError(`${where}: a scheduler config must be a JSON object`);
  return raw as Raw;
}

function pick<T>(raw: Raw, key: string, fallback: T, check: (v: unknown) => boolean, what: string, where: string): T {
  const v = raw[key];
  if (v === undefined || v === null) return fallback; // JSON null is Python's None: the default
  if (!check(v)) throw new SchedulerConfigError(`${where}: ${key} must be ${what}, got ${JSON.stringify(v)}`);
  return v as T;
}

const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isBool = (v: unknown) => typeof v === 'boolean';
const isPosInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const isNonNegInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
function oneOf<T extends string>(list: readonly T[]) {
  return (v: unknown) => typeof v === 'string' && (list as readonly string[]).includes(v);
}

function parseShared(raw: Raw, d: NoiseScheduleConfig, where: string): NoiseScheduleConfig {
  const c: NoiseScheduleConfig = {
    num_train_timesteps: pick(raw, 'num_train_timesteps', d.num_train_timesteps, isPosInt, 'a positive integer', where),
    beta_start: pick(raw, 'beta_start', d.beta_start, isNum, 'a number', where),
    beta_end: pick(raw, 'beta_end', d.beta_end, isNum, 'a number', where),
    beta_schedule: pick(raw, 'beta_schedule', d.beta_schedule, oneOf(BETA_SCHEDULES), `one of ${BETA_SCHEDULES.join(', ')}`, where),
    trained_betas: pick<number[] | null>(raw, 'trained_betas', null,
      (v) => Array.isArray(v) && v.length > 0 && v.every((b) => isNum(b) && b > 0 && b < 1), 'a list of betas in (0, 1)', where),
    rescale_betas_zero_snr: pick(raw, 'rescale_betas_zero_snr', d.rescale_betas_zero_snr, isBool, 'true or false', where),
    steps_offset: pick(raw, 'steps_offset', d.steps_offset, isNonNegInt, 'a non-negative integer', where),
    timestep_spacing: pick(raw, 'timestep_spacing', d.timestep_spacing, oneOf(TIMESTEP_SPACINGS), `one of ${TIMESTEP_SPACINGS.join(', ')}`, where),
    prediction_type: pick(raw, 'prediction_type', d.prediction_type, oneOf(PREDICTION_TYPES), `one of ${PREDICTION_TYPES.join(', ')}`, where),
    clip_sample: pick(raw, 'clip_sample', d.clip_sample, isBool, 'true or false', where),
    clip_sample_range: pick(raw, 'clip_sample_range', d.clip_sample_range, (v) => isNum(v) && (v as number) > 0, 'a positive number', where),
    thresholding: pick(raw, 'thresholding', d.thresholding, isBool, 'true or false', where),
  };
  validateShared(c, where);
  return c;
}

/** Checks a config built in code (the parsers call it too). */
export function validateShared(c: NoiseScheduleConfig, where = 'scheduler config'): void {
  const fail = (m: string): never => {
    throw new SchedulerConfigError(`${where}: ${m}`);
  };
  if (!isPosInt(c.num_train_timesteps)) fail(`num_train_timesteps must be a positive integer, got ${c.num_train_timesteps}`);
  if (!oneOf(BETA_SCHEDULES)(c.beta_schedule)) fail(`unknown beta_schedule '${c.beta_schedule}' (expected one of ${BETA_SCHEDULES.join(', ')})`);
  if (!oneOf(TIMESTEP_SPACINGS)(c.timestep_spacing)) fail(`unknown timestep_spacing '${c.timestep_spacing}' (expected one of ${TIMESTEP_SPACINGS.join(', ')})`);
  if (!oneOf(PREDICTION_TYPES)(c.prediction_type)) fail(`unknown prediction_type '${c.prediction_type}' (expected one of ${PREDICTION_TYPES.join(', ')})`);
  if (c.trained_betas !== null && c.trained_betas.length !== c.num_train_timesteps) {
    fail(`trained_betas has ${c.trained_betas.length} values but num_train_timesteps is ${c.num_train_timesteps}`);
  }
  if (c.trained_betas === null && c.beta_schedule !== 'squaredcos_cap_v2') {
    if (!(c.beta_start > 0 && c.beta_end < 1 && c.beta_start <= c.beta_end)) fail(`need 0 < beta_start <= beta_end < 1, got ${c.beta_start}, ${c.beta_end}`);
  }
  if (c.thresholding) fail('thresholding (dynamic thresholding) is not supported; set it to false');
}

function className(raw: Raw): string | null {
  return typeof raw._class_name === 'string' ? raw._class_name : null;
}

/**
 * A DDIM config from parsed JSON. Missing keys take DDIMScheduler's defaults. Another class
 * (PNDMScheduler in SD v1 checkpoints, or any unknown one) is read as DDIM with a warning, and its
 * missing clip_sample becomes false: PNDM never clips, and the SD pipelines turn clipping off.
 */
export function parseDDIMConfig(raw: unknown, where = 'scheduler config'): ParsedConfig<DDIMSchedulerConfig> {
  const r = asObject(raw, where);
  const cls = className(r);
  const warnings: string[] = [];
  const d: DDIMSchedulerConfig = { ...DDIM_DEFAULTS };
  if (cls !== null && cls !== 'DDIMScheduler') {
    warnings.push(`${where}: ${cls} config read as a DDIMScheduler config (shared keys kept, the rest ignored)`);
    if (r.clip_sample === undefined) d.clip_sample = false;
  }
  const config: DDIMSchedulerConfig = {
    ...parseShared(r, d, where),
    set_alpha_to_one: pick(r, 'set_alpha_to_one', d.set_alpha_to_one, isBool, 'true or false', where),
  };
  return { config, className: cls, warnings };
}

/** A DDPM config from parsed JSON (missing keys take DDPMScheduler's defaults; another class warns). */
export function parseDDPMConfig(raw: unknown, where = 'scheduler config'): ParsedConfig<DDPMSchedulerConfig> {
  const r = asObject(raw, where);
  const cls = className(r);
  const warnings: string[] = [];
  const d: DDPMSchedulerConfig = { ...DDPM_DEFAULTS };
  if (cls !== null && cls !== 'DDPMScheduler') {
    warnings.push(`${where}: ${cls} config read as a DDPMScheduler config (shared keys kept, the rest ignored)`);
    if (r.clip_sample === undefined) d.clip_sample = false;
  }
  const config: DDPMSchedulerConfig = {
    ...parseShared(r, d, where),
    variance_type: pick(r, 'variance_type', d.variance_type, oneOf(VARIANCE_TYPES), `one of ${VARIANCE_TYPES.join(', ')}`, where),
  };
  return { config, className: cls, warnings };
}

/** Reads scheduler_config.json (a file, or a pipeline folder with scheduler/ inside, or the scheduler folder). */
export function readSchedulerJson(fileOrDir: string): { json: unknown; file: string } {
  let file = fileOrDir;
  try {
    if (statSync(file).isDirectory()) {
      const nested = path.join(file, 'scheduler', 'scheduler_config.json');
      file = safeIsFile(nested) ? nested : path.join(file, 'scheduler_config.json');
    }
  } catch (e) {
    throw new SchedulerConfigError(`cannot read scheduler config '${fileOrDir}': ${(e as Error).message}`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SchedulerConfigError(`cannot read scheduler config '${file}': ${(e as Error).message}`);
  }
  try {
    return { json: JSON.parse(text), file };
  } catch (e) {
    throw new SchedulerConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

function safeIsFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Reads a scheduler config file as a DDIM config (PNDM and unknown classes with a warning). */
export function loadDDIMConfig(fileOrDir: string): ParsedConfig<DDIMSchedulerConfig> {
  const { json, file } = readSchedulerJson(fileOrDir);
  return parseDDIMConfig(json, file);
}

/** Reads a scheduler config file as a DDPM config. */
export function loadDDPMConfig(fileOrDir: string): ParsedConfig<DDPMSchedulerConfig> {
  const { json, file } = readSchedulerJson(fileOrDir);
  return parseDDPMConfig(json, file);
}
