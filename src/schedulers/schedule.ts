// The noise schedule shared by DDIM and DDPM: betas, alpha products, the inference timestep grid and
// q(x_t | x_0), computed in the same float32 steps as diffusers (scheduling_ddim.py, scheduling_ddpm.py).
import { linspace, tensor, tidy, type Tensor } from '../engine/index.js';
import type { NoiseScheduleConfig, TimestepSpacing } from './config.js';

const f32 = Math.fround;

export class SchedulerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerError';
  }
}

/**
 * beta_t for t = 0..N-1 as float32 values, as diffusers builds them:
 * linear = linspace(start, end, N) in float32; scaled_linear = linspace(sqrt(start), sqrt(end), N)^2
 * in float32; squaredcos_cap_v2 = the cosine schedule of Nichol & Dhariwal 2021 (computed in double,
 * stored as float32, capped at 0.999).
 */
export function makeBetas(c: NoiseScheduleConfig): Float32Array {
  const n = c.num_train_timesteps;
  let betas: Float32Array;
  if (c.trained_betas !== null) {
    betas = Float32Array.from(c.trained_betas);
  } else if (c.beta_schedule === 'linear' || c.beta_schedule === 'scaled_linear') {
    const scaled = c.beta_schedule === 'scaled_linear';
    // libtorch's own float32 linspace, so the grid rounds exactly as torch.linspace does
    const t = linspace(scaled ? Math.sqrt(c.beta_start) : c.beta_start, scaled ? Math.sqrt(c.beta_end) : c.beta_end, n, { dtype: 'float32' });
    try {
      betas = t.toTypedArray() as Float32Array;
    } finally {
      t.dispose();
    }
    if (scaled) for (let i = 0; i < n; i++) betas[i] = f32(betas[i]! * betas[i]!);
  } else if (c.beta_schedule === 'squaredcos_cap_v2') {
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
    betas = new Float32Array(n);
    for (let i = 0; i < n; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  } else {
    throw new SchedulerError(`unknown beta_schedule '${String(c.beta_schedule)}' (expected linear, scaled_linear or squaredcos_cap_v2)`);
  }
  return c.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** prod_{s<=t} (1 - beta_s): float32 values, accumulated in double as torch.cumprod does on the CPU. */
export function cumprodAlphas(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]!);
    out[i] = acc;
  }
  return out;
}

/** Shifts sqrt(alphas_cumprod) so that the last is 0 and the first unchanged (Lin et al. 2023, Alg. 1). */
function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const s = cumprodAlphas(betas).map((a) => f32(Math.sqrt(a)));
  const a0 = s[0]!, aT = s[n - 1]!;
  const factor = f32(a0 / f32(a0 - aT));
  const bar = s.map((v) => {
    const shifted = f32(f32(v - aT) * factor);
    return f32(shifted * shifted);
  });
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f32(1 - (i === 0 ? bar[0]! : f32(bar[i]! / bar[i - 1]!)));
  return out;
}

/** numpy's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const fl = Math.floor(x);
  const d = x - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** Checks that `n` inference steps make sense for a schedule of `numTrain` training steps. */
export function checkNumSteps(n: number, numTrain: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new SchedulerError(`num_inference_steps must be a positive integer, got ${n}`);
  if (n > numTrain) {
    throw new SchedulerError(`num_inference_steps (${n}) cannot be larger than num_train_timesteps (${numTrain}): the model was trained on only ${numTrain} timesteps`);
  }
}

/**
 * The descending inference timesteps, as diffusers' set_timesteps (Lin et al. 2023, Table 2):
 * linspace = round(linspace(0, N-1, n)); leading = k * (N // n) + steps_offset;
 * trailing = round(arange(N, 0, -N/n)) - 1.
 */
export function inferenceTimesteps(n: number, numTrain: number, spacing: TimestepSpacing, stepsOffset: number): number[] {
  checkNumSteps(n, numTrain);
  let ts: number[];
  if (spacing === 'linspace') {
    // numpy.linspace: i * step + start, with the endpoint set exactly
    const step = (numTrain - 1) / (n - 1);
    ts = Array.from({ length: n }, (_, i) => (n === 1 ? 0 : i === n - 1 ? numTrain - 1 : roundHalfEven(i * step))).reverse();
  } else if (spacing === 'leading') {
    const ratio = Math.floor(numTrain / n);
    ts = Array.from({ length: n }, (_, i) => i * ratio + stepsOffset).reverse();
  } else if (spacing === 'trailing') {
    // numpy.arange(N, 0, -r) fills N + i * ((N - r) - N). Its length, ceil(N / r), is n + 1 for some
    // n (N / r = 61.00000000000001 for N = 1000, n = 61), which gives diffusers a final timestep of -1:
    // we keep the first n values, which are numpy's
    const ratio = numTrain / n;
    const delta = numTrain - ratio - numTrain;
    ts = Array.from({ length: n }, (_, i) => roundHalfEven(numTrain + i * delta) - 1);
  } else {
    throw new SchedulerError(`unknown timestep_spacing '${String(spacing)}' (expected leading, trailing or linspace)`);
  }
  const bad = ts.find((t) => t < 0 || t >= numTrain);
  if (bad !== undefined) throw new SchedulerError(`timestep ${bad} falls outside [0, ${numTrain}) (steps_offset ${stepsOffset} is too large for ${n} steps)`);
  return ts;
}

/** A timestep given as a number or a one-element tensor, checked to be an integer in [0, N). */
export function timestepValue(t: number | Tensor, numTrain: number): number {
  let v: number;
  if (typeof t === 'number') v = t;
  else {
    if (t.numel !== 1) throw new SchedulerError(`a single timestep is expected, got a tensor of shape [${t.shape.join(', ')}]`);
    v = t.item();
  }
  if (!Number.isInteger(v) || v < 0 || v >= numTrain) throw new SchedulerError(`timestep ${v} is not an integer in [0, ${numTrain})`);
  return v;
}

/** Timesteps for a batch: a number, a list, or an integer tensor of shape [B] (or [1]). */
export function timestepList(t: number | number[] | Tensor, numTrain: number): number[] {
  const raw = typeof t === 'number' ? [t] : Array.isArray(t) ? t : t.toFlatArray();
  if (raw.length === 0) throw new SchedulerError('no timesteps given');
  return raw.map((v) => timestepValue(v, numTrain));
}

/** Per-sample float32 coefficients as a tensor [B or 1, 1, ..., 1] broadcastable over `like`. */
function perSample(values: number[], like: Tensor): Tensor {
  const shape = [values.length, ...new Array<number>(like.ndim - 1).fill(1)];
  return tidy(() => tensor(Float32Array.from(values), { dtype: like.dtype, device: like.device }).reshape(shape));
}

function checkPair(a: Tensor, b: Tensor, names: [string, string], nTimesteps: number): void {
  if (a.shape.join(',') !== b.shape.join(',')) {
    throw new SchedulerError(`${names[0]} [${a.shape.join(', ')}] and ${names[1]} [${b.shape.join(', ')}] must have the same shape`);
  }
  if (a.ndim === 0) throw new SchedulerError(`${names[0]} needs a batch dimension`);
  if (nTimesteps !== 1 && nTimesteps !== a.shape[0]) {
    throw new SchedulerError(`${nTimesteps} timesteps for a batch of ${a.shape[0]} (give one timestep, or one per sample)`);
  }
}

/** sqrt(abar_t) and sqrt(1 - abar_t) in float32, per timestep. */
function sqrtCoefficients(alphasCumprod: Float32Array, ts: number[]): [number[], number[]] {
  return [ts.map((t) => f32(Math.sqrt(alphasCumprod[t]!))), ts.map((t) => f32(Math.sqrt(f32(1 - alphasCumprod[t]!))))];
}

/** q(x_t | x_0): sqrt(abar_t) * x_0 + sqrt(1 - abar_t) * noise, per sample. */
export function addNoiseWith(alphasCumprod: Float32Array, original: Tensor, noise: Tensor, timesteps: number | number[] | Tensor): Tensor {
  const ts = timestepList(timesteps, alphasCumprod.length);
  checkPair(original, noise, ['original samples', 'noise'], ts.length);
  const [a, b] = sqrtCoefficients(alphasCumprod, ts);
  const ca = perSample(a, original), cb = perSample(b, original);
  const x = ca.mul(original), y = cb.mul(noise);
  const out = x.add(y);
  for (const t of [ca, cb, x, y]) t.dispose();
  return out;
}

/** The v-prediction target (Salimans & Ho 2022): sqrt(abar_t) * noise - sqrt(1 - abar_t) * x_0. */
export function velocityWith(alphasCumprod: Float32Array, sample: Tensor, noise: Tensor, timesteps: number | number[] | Tensor): Tensor {
  const ts = timestepList(timesteps, alphasCumprod.length);
  checkPair(sample, noise, ['sample', 'noise'], ts.length);
  const [a, b] = sqrtCoefficients(alphasCumprod, ts);
  const ca = perSample(a, sample), cb = perSample(b, sample);
  const x = ca.mul(noise), y = cb.mul(sample);
  const out = x.sub(y);
  for (const t of [ca, cb, x, y]) t.dispose();
  return out;
}

export interface PredictedPair {
  /** x_0 as the model output implies it. */
  predOriginalSample: Tensor;
  /** The noise as the model output implies it. */
  predEpsilon: Tensor;
}

/**
 * x_0 and epsilon from the model output, for the three parameterizations (alphaProd = abar_t):
 * epsilon: x0 = (x - sqrt(1-a) eps) / sqrt(a); sample: x0 = out; v: x0 = sqrt(a) x - sqrt(1-a) v,
 * eps = sqrt(a) v + sqrt(1-a) x. Clipping of x0 (clip_sample) is the caller's.
 */
export function predictOriginal(prediction: NoiseScheduleConfig['prediction_type'], modelOutput: Tensor, sample: Tensor, alphaProd: number): PredictedPair {
  const beta = f32(1 - alphaProd);
  const sa = f32(Math.sqrt(alphaProd)), sb = f32(Math.sqrt(beta));
  switch (prediction) {
    case 'epsilon': {
      const scaled = modelOutput.mul(sb);
      const diff = sample.sub(scaled);
      const x0 = diff.div(sa);
      scaled.dispose();
      diff.dispose();
      return { predOriginalSample: x0, predEpsilon: modelOutput };
    }
    case 'sample': {
      const scaled = modelOutput.mul(sa);
      const diff = sample.sub(scaled);
      const eps = diff.div(sb);
      scaled.dispose();
      diff.dispose();
      return { predOriginalSample: modelOutput, predEpsilon: eps };
    }
    case 'v_prediction': {
      const p = sample.mul(sa), q = modelOutput.mul(sb), r = modelOutput.mul(sa), s = sample.mul(sb);
      const x0 = p.sub(q), eps = r.add(s);
      for (const t of [p, q, r, s]) t.dispose();
      return { predOriginalSample: x0, predEpsilon: eps };
    }
    default:
      throw new SchedulerError(`unknown prediction_type '${String(prediction)}' (expected epsilon, sample or v_prediction)`);
  }
}

export function checkStepInputs(modelOutput: Tensor, sample: Tensor): void {
  if (modelOutput.shape.join(',') !== sample.shape.join(',')) {
    throw new SchedulerError(`model output [${modelOutput.shape.join(', ')}] and sample [${sample.shape.join(', ')}] must have the same shape`);
  }
}
