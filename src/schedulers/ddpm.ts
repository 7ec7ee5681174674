// DDPMScheduler: ancestral sampling of denoising diffusion probabilistic models (Ho et al. 2020,
// arXiv:2006.11239, eqs. 6-7), following diffusers' scheduling_ddpm.py (fixed variances only).
import { randn, tidy, type Generator, type Tensor } from '../engine/index.js';
import { DDPM_DEFAULTS, loadDDPMConfig, parseDDPMConfig, validateShared, VARIANCE_TYPES, type DDPMSchedulerConfig } from './config.js';
import {
  addNoiseWith, checkStepInputs, cumprodAlphas, inferenceTimesteps, makeBetas, predictOriginal, SchedulerError,
  timestepValue, velocityWith,
} from './schedule.js';
import type { SchedulerStepOutput } from './ddim.js';

const f32 = Math.fround;

export interface DDPMStepOptions {
  /** Draws the step noise (t > 0) from this generator. */
  generator?: Generator;
  /** The step noise itself (shape of the sample), instead of drawing it. */
  varianceNoise?: Tensor;
}

export class DDPMScheduler {
  readonly config: Readonly<DDPMSchedulerConfig>;
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1;
  numInferenceSteps: number | null = null;
  /** Descending timesteps; all N training steps until setTimesteps is called. */
  timesteps: number[];

  constructor(config: Partial<DDPMSchedulerConfig> = {}) {
    const c: DDPMSchedulerConfig = { ...DDPM_DEFAULTS, ...config };
    validateShared(c, 'DDPMScheduler config');
    if (!(VARIANCE_TYPES as readonly string[]).includes(c.variance_type)) {
      throw new SchedulerError(`DDPMScheduler config: unsupported variance_type '${c.variance_type}' (expected one of ${VARIANCE_TYPES.join(', ')})`);
    }
    this.config = Object.freeze(c);
    this.betas = makeBetas(c);
    this.alphasCumprod = cumprodAlphas(this.betas);
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
  }

  static fromConfig(json: unknown, onWarning: (w: string) => void = () => {}): DDPMScheduler {
    const { config, warnings } = parseDDPMConfig(json);
    warnings.forEach(onWarning);
    return new DDPMScheduler(config);
  }

  static fromPretrained(fileOrDir: string, onWarning: (w: string) => void = () => {}): DDPMScheduler {
    const { config, warnings } = loadDDPMConfig(fileOrDir);
    warnings.forEach(onWarning);
    return new DDPMScheduler(config);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    this.timesteps = inferenceTimesteps(numInferenceSteps, c.num_train_timesteps, c.timestep_spacing, c.steps_offset);
    this.numInferenceSteps = numInferenceSteps;
  }

  scaleModelInput(sample: Tensor, _timestep?: number | Tensor): Tensor {
    return sample;
  }

  /** The next timestep of the grid after t (-1 after the last); t - 1 before setTimesteps. */
  previousTimestep(timestep: number): number {
    if (this.numInferenceSteps === null) return timestep - 1;
    const i = this.timesteps.indexOf(timestep);
    if (i < 0) throw new SchedulerError(`timestep ${timestep} is not one of the ${this.timesteps.length} timesteps set by setTimesteps`);
    return i === this.timesteps.length - 1 ? -1 : this.timesteps[i + 1]!;
  }

  /** The variance added at step t -> prev: fixed_small is the posterior variance beta~_t of eq. 7, fixed_large beta_t. */
  variance(timestep: number): number {
    const prevT = this.previousTimestep(timestep);
    const aT = this.alphasCumprod[timestep]!;
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : 1;
    const currentBeta = f32(1 - f32(aT / aPrev));
    if (this.config.variance_type === 'fixed_large') return currentBeta;
    return Math.max(f32(f32(f32(1 - aPrev) / f32(1 - aT)) * currentBeta), 1e-20);
  }

  /**
   * One ancestral step x_t -> x_{t-1} = c0 x0 + ct x_t + sigma z (eq. 7), with
   * c0 = sqrt(abar_prev) beta_t / (1 - abar_t), ct = sqrt(alpha_t) (1 - abar_prev) / (1 - abar_t).
   */
  step(modelOutput: Tensor, timestep: number | Tensor, sample: Tensor, opts: DDPMStepOptions = {}): SchedulerStepOutput {
    const c = this.config;
    const t = timestepValue(timestep, c.num_train_timesteps);
    const prevT = this.previousTimestep(t);
    checkStepInputs(modelOutput, sample);
    if (opts.varianceNoise !== undefined && opts.generator !== undefined) {
      throw new SchedulerError('give either a generator or varianceNoise, not both');
    }
    if (opts.varianceNoise !== undefined && opts.varianceNoise.shape.join(',') !== sample.shape.join(',')) {
      throw new SchedulerError(`varianceNoise [${opts.varianceNoise.shape.join(', ')}] must have the sample's shape [${sample.shape.join(', ')}]`);
    }
    const aT = this.alphasCumprod[t]!;
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : 1;
    const betaT = f32(1 - aT), betaPrev = f32(1 - aPrev);
    const currentAlpha = f32(aT / aPrev);
    const currentBeta = f32(1 - currentAlpha);
    const c0 = f32(f32(f32(Math.sqrt(aPrev)) * currentBeta) / betaT);
    const ct = f32(f32(f32(Math.sqrt(currentAlpha)) * betaPrev) / betaT);

    return tidy(() => {
      let { predOriginalSample: x0 } = predictOriginal(c.prediction_type, modelOutput, sample, aT);
      if (c.clip_sample) x0 = x0.clamp(-c.clip_sample_range, c.clip_sample_range);
      let prev = x0.mul(c0).add(sample.mul(ct));
      if (t > 0) {
        const z = opts.varianceNoise ?? randn(sample.shape, { generator: opts.generator, dtype: sample.dtype, device: sample.device });
        const v = this.variance(t);
        // fixed_small_log: diffusers goes through the log, exp(0.5 log var)
        const sigma = c.variance_type === 'fixed_small_log' ? f32(Math.exp(f32(0.5 * f32(Math.log(v))))) : f32(Math.sqrt(v));
        prev = prev.add(z.mul(sigma));
      }
      if (x0 === modelOutput) x0 = modelOutput.clone();
      return { prevSample: prev, predOriginalSample: x0 };
    });
  }

  addNoise(originalSamples: Tensor, noise: Tensor, timesteps: number | number[] | Tensor): Tensor {
    return addNoiseWith(this.alphasCumprod, originalSamples, noise, timesteps);
  }

  getVelocity(sample: Tensor, noise: Tensor, timesteps: number | number[] | Tensor): Tensor {
    return velocityWith(this.alphasCumprod, sample, noise, timesteps);
  }
}
