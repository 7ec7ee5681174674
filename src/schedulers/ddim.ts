// DDIMScheduler: denoising diffusion implicit models (Song et al. 2021, arXiv:2010.02502, eq. 12),
// following diffusers' scheduling_ddim.py step by step (float32 coefficients, same timestep grid).
import { randn, tidy, type Generator, type Tensor } from '../engine/index.js';
import { DDIM_DEFAULTS, loadDDIMConfig, parseDDIMConfig, validateShared, type DDIMSchedulerConfig } from './config.js';
import {
  addNoiseWith, checkStepInputs, cumprodAlphas, inferenceTimesteps, makeBetas, predictOriginal, SchedulerError,
  timestepValue, velocityWith,
} from './schedule.js';

const f32 = Math.fround;

export interface DDIMStepOptions {
  /** Weight of the added noise: 0 is deterministic DDIM, 1 is DDPM-like ancestral sampling. */
  eta?: number;
  /** Draws the step noise (eta > 0) from this generator, as diffusers' randn_tensor. */
  generator?: Generator;
  /** The step noise itself (shape of the sample), instead of drawing it. */
  varianceNoise?: Tensor;
  /** Recompute epsilon from the clipped x_0 (diffusers' use_clipped_model_output). */
  useClippedModelOutput?: boolean;
}

export interface SchedulerStepOutput {
  /** x_{t-1}, the input of the next step. [B, C, h, w] */
  prevSample: Tensor;
  /** The model's estimate of x_0 at this step. [B, C, h, w] */
  predOriginalSample: Tensor;
}

export class DDIMScheduler {
  readonly config: Readonly<DDIMSchedulerConfig>;
  /** beta_t, float32 values, t = 0..N-1. */
  readonly betas: Float32Array;
  /** abar_t = prod_{s<=t} (1 - beta_s), float32 values. */
  readonly alphasCumprod: Float32Array;
  /** abar "before" step 0, used by the last step: 1 or abar_0 (set_alpha_to_one). */
  readonly finalAlphaCumprod: number;
  /** Standard deviation of the initial noise (1 for DDIM). */
  readonly initNoiseSigma = 1;
  numInferenceSteps: number | null = null;
  /** Descending timesteps; all N training steps until setTimesteps is called. */
  timesteps: number[];

  constructor(config: Partial<DDIMSchedulerConfig> = {}) {
    const c: DDIMSchedulerConfig = { ...DDIM_DEFAULTS, ...config };
    validateShared(c, 'DDIMScheduler config');
    if (typeof c.set_alpha_to_one !== 'boolean') throw new SchedulerError('DDIMScheduler config: set_alpha_to_one must be true or false');
    this.config = Object.freeze(c);
    this.betas = makeBetas(c);
    this.alphasCumprod = cumprodAlphas(this.betas);
    this.finalAlphaCumprod = c.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
  }

  /** From a parsed scheduler_config.json (a PNDM or unknown class is read as DDIM: see parseDDIMConfig). */
  static fromConfig(json: unknown, onWarning: (w: string) => void = () => {}): DDIMScheduler {
    const { config, warnings } = parseDDIMConfig(json);
    warnings.forEach(onWarning);
    return new DDIMScheduler(config);
  }

  /** From scheduler_config.json, its folder, or a pipeline folder with scheduler/ inside. */
  static fromPretrained(fileOrDir: string, onWarning: (w: string) => void = () => {}): DDIMScheduler {
    const { config, warnings } = loadDDIMConfig(fileOrDir);
    warnings.forEach(onWarning);
    return new DDIMScheduler(config);
  }

  /** Chooses the n inference timesteps (spacing and steps_offset from the config). */
  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    this.timesteps = inferenceTimesteps(numInferenceSteps, c.num_train_timesteps, c.timestep_spacing, c.steps_offset);
    this.numInferenceSteps = numInferenceSteps;
  }

  /** DDIM needs no input scaling; kept so that pipelines can treat schedulers alike. */
  scaleModelInput(sample: Tensor, _timestep?: number | Tensor): Tensor {
    return sample;
  }

  /** The timestep the step from t goes to: t - N // n (may be negative: then the final alpha is used). */
  previousTimestep(timestep: number): number {
    if (this.numInferenceSteps === null) throw new SchedulerError('DDIMScheduler: call setTimesteps(n) before step()');
    return timestep - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
  }

  /** Variance of the DDIM posterior (eq. 16 of the paper): (1 - abar_prev)/(1 - abar_t) * (1 - abar_t/abar_prev). */
  variance(timestep: number, prevTimestep: number): number {
    const aT = this.alphasCumprod[timestep]!;
    const aPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep]! : this.finalAlphaCumprod;
    return f32(f32(f32(1 - aPrev) / f32(1 - aT)) * f32(1 - f32(aT / aPrev)));
  }

  /**
   * One reverse step x_t -> x_{t-1}:
   * x_{t-1} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z, sigma = eta * sqrt(variance).
   * modelOutput and sample are [B, C, h, w] (any shape, the same for both).
   */
  step(modelOutput: Tensor, timestep: number | Tensor, sample: Tensor, opts: DDIMStepOptions = {}): SchedulerStepOutput {
    const c = this.config;
    const t = timestepValue(timestep, c.num_train_timesteps);
    const prevT = this.previousTimestep(t);
    checkStepInputs(modelOutput, sample);
    const eta = opts.eta ?? 0;
    if (!Number.isFinite(eta) || eta < 0) throw new SchedulerError(`eta must be a number >= 0, got ${eta}`);
    if (opts.varianceNoise !== undefined && opts.generator !== undefined) {
      throw new SchedulerError('give either a generator or varianceNoise, not both');
    }
    if (opts.varianceNoise !== undefined && opts.varianceNoise.shape.join(',') !== sample.shape.join(',')) {
      throw new SchedulerError(`varianceNoise [${opts.varianceNoise.shape.join(', ')}] must have the sample's shape [${sample.shape.join(', ')}]`);
    }
    const aT = this.alphasCumprod[t]!;
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : this.finalAlphaCumprod;
    const betaT = f32(1 - aT);

    return tidy(() => {
      let { predOriginalSample: x0, predEpsilon: eps } = predictOriginal(c.prediction_type, modelOutput, sample, aT);
      if (c.clip_sample) x0 = x0.clamp(-c.clip_sample_range, c.clip_sample_range);
      const std = f32(eta * f32(Math.sqrt(this.variance(t, prevT))));
      if (opts.useClippedModelOutput) eps = sample.sub(x0.mul(f32(Math.sqrt(aT)))).div(f32(Math.sqrt(betaT)));
      const dirCoef = f32(Math.sqrt(f32(f32(1 - aPrev) - f32(std * std))));
      let prev = x0.mul(f32(Math.sqrt(aPrev))).add(eps.mul(dirCoef));
      if (eta > 0) {
        const z = opts.varianceNoise ?? randn(sample.shape, { generator: opts.generator, dtype: sample.dtype, device: sample.device });
        prev = prev.add(z.mul(std));
      }
      // never hand back the caller's own tensor (prediction_type 'sample' without clipping)
      if (x0 === modelOutput) x0 = modelOutput.clone();
      return { prevSample: prev, predOriginalSample: x0 };
    });
  }

  /** q(x_t | x_0) = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise; timesteps: one, or one per sample. */
  addNoise(originalSamples: Tensor, noise: Tensor, timesteps: number | number[] | Tensor): Tensor {
    return addNoiseWith(this.alphasCumprod, originalSamples, noise, timesteps);
  }

  /** The v-prediction target sqrt(abar_t) noise - sqrt(1 - abar_t) x_0. */
  getVelocity(sample: Tensor, noise: Tensor, timesteps: number | number[] | Tensor): Tensor {
    return velocityWith(this.alphasCumprod, sample, noise, timesteps);
  }
}
