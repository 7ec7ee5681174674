// Timestep embeddings: the sinusoidal projection of DDPM (Ho et al. 2020) and the MLP after it, as
// diffusers' get_timestep_embedding / Timesteps / TimestepEmbedding (models/embeddings.py).
import { arange, cat, pad, tensor, tidy, type Device, type Tensor } from '../../engine/index.js';
import { Linear, Module, type InitOptions } from '../../nn/index.js';
import { activation, type ActivationName } from './config.js';

export interface TimestepEmbeddingOptions {
  /** Put cos first, then sin (diffusers' flip_sin_to_cos; true for SD). */
  flipSinToCos?: boolean;
  /** Frequencies are exp(-ln(maxPeriod) * i / (half - shift)), i < half (freq_shift; 0 for SD). */
  downscaleFreqShift?: number;
  scale?: number;
  maxPeriod?: number;
}

/**
 * timesteps [N] (any dtype; may be fractional) -> [N, dim] float32. Computed with the same float32
 * ops in the same order as diffusers, so large timesteps (t * freq ~ 1000) round identically.
 */
export function getTimestepEmbedding(timesteps: Tensor, dim: number, o: TimestepEmbeddingOptions = {}): Tensor {
  if (timesteps.ndim !== 1) throw new Error(`getTimestepEmbedding: timesteps must be 1-D [N], got [${timesteps.shape.join(', ')}]`);
  if (!Number.isInteger(dim) || dim < 2) throw new Error(`getTimestepEmbedding: dim must be an integer >= 2, got ${dim}`);
  const half = Math.floor(dim / 2);
  const shift = o.downscaleFreqShift ?? 1;
  if (half - shift === 0) throw new Error(`getTimestepEmbedding: dim ${dim} with downscaleFreqShift ${shift} divides by zero`);
  return tidy(() => {
    const exponent = arange(0, half, 1, { dtype: 'float32', device: timesteps.device })
      .mul(-Math.log(o.maxPeriod ?? 10000)).div(half - shift);
    const freqs = exponent.exp(); // [half]
    let args = timesteps.to('float32').unsqueeze(1).mul(freqs.unsqueeze(0)); // [N, half]
    if ((o.scale ?? 1) !== 1) args = args.mul(o.scale!);
    const [a, b] = o.flipSinToCos ? [args.cos(), args.sin()] : [args.sin(), args.cos()];
    const emb = cat([a, b], -1); // [N, 2*half]
    return dim % 2 === 1 ? pad(emb, [0, 1]) : emb;
  });
}

/** The parameter-free projection (diffusers' Timesteps): [N] -> [N, numChannels]. */
export class Timesteps extends Module {
  constructor(readonly numChannels: number, readonly flipSinToCos: boolean, readonly downscaleFreqShift: number) {
    super();
  }
  forward(timesteps: Tensor): Tensor {
    return getTimestepEmbedding(timesteps, this.numChannels, { flipSinToCos: this.flipSinToCos, downscaleFreqShift: this.downscaleFreqShift });
  }
}

/** linear_1 -> act -> linear_2 (-> post act): [N, in] -> [N, timeEmbedDim]. */
export class TimestepEmbedding extends Module {
  readonly linear_1: Linear;
  readonly linear_2: Linear;
  private readonly act: (x: Tensor) => Tensor;
  private readonly postAct: ((x: Tensor) => Tensor) | null;
  constructor(inChannels: number, timeEmbedDim: number, actFn: ActivationName = 'silu', postActFn: ActivationName | null = null, o: InitOptions = {}) {
    super();
    this.linear_1 = this.module('linear_1', new Linear(inChannels, timeEmbedDim, true, o));
    this.act = activation(actFn);
    this.linear_2 = this.module('linear_2', new Linear(timeEmbedDim, timeEmbedDim, true, o));
    this.postAct = postActFn === null ? null : activation(postActFn);
  }
  forward(sample: Tensor): Tensor {
    return tidy(() => {
      const h = this.linear_2.forward(this.act(this.linear_1.forward(sample)));
      return this.postAct ? this.postAct(h) : h;
    });
  }
}

/**
 * A timestep argument as a float32 [batch] tensor on `device`: a number, or a tensor of shape [],
 * [1] or [batch] (int or float), broadcast to the batch as diffusers does.
 */
export function timestepsForBatch(timestep: number | Tensor, batch: number, device: Device): Tensor {
  return tidy(() => {
    let t: Tensor;
    if (typeof timestep === 'number') {
      if (!Number.isFinite(timestep)) throw new Error(`UNet2DConditionModel: timestep must be finite, got ${timestep}`);
      t = tensor([timestep], { dtype: 'float32', device });
    } else {
      if (timestep.ndim > 1) throw new Error(`UNet2DConditionModel: timestep must be a number or a tensor of shape [], [1] or [B], got [${timestep.shape.join(', ')}]`);
      t = timestep.ndim === 0 ? timestep.reshape([1]) : timestep;
      if (t.dtype === 'bool') throw new Error('UNet2DConditionModel: timestep tensor must be numeric, got bool');
      t = t.to({ dtype: 'float32', device });
    }
    const n = t.shape[0]!;
    if (n === batch) return t;
    if (n !== 1) throw new Error(`UNet2DConditionModel: ${n} timesteps for a batch of ${batch} (give one, or one per sample)`);
    return t.expand([batch]);
  });
}
