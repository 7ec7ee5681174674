// Imagic (Kawar et al., CVPR 2023) on Stable Diffusion: (A) optimize the target text embedding to
// reconstruct the image with the model frozen, (B) fine-tune the UNet at that embedding, (C) sample
// from e = eta * e_tgt + (1 - eta) * e_opt. Each stage is written out top to bottom.
import { performance } from 'node:perf_hooks';
import {
  autocast, cat, dispose, Generator, GradScaler, keep, mseLoss, noGrad, optim, randint, randn, stack, tidy, type Tensor,
} from '../../engine/index.js';
import { checkpointedBackward, LoRA, loraMergedWeightNames, type LoRATargets } from '../../nn/index.js';
import type { TrainMode } from './presets.js';
import type { StableDiffusion } from '../stable-diffusion.js';
import type { AddedConditions } from '../../models/unet/index.js';
import { text2img } from '../text2img.js';
import { encodeImage as encodeImageLatent } from '../img2img.js';
import { invertDDIM } from '../ddim-inversion.js';

/** Lets signal handlers and timers run between steps (Ctrl-C stops at a step boundary). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The (timestep, noise) pair of each training step. */
export interface TrainingNoise {
  next(step: number): { timestep: number; noise: Tensor };
}

/** Draws t ~ U{0..999} then noise ~ N(0, I) from one generator, step after step (reproducible). */
export function generatorNoise(generator: Generator, latent: Tensor, numTrainTimesteps = 1000): TrainingNoise {
  return {
    next() {
      const t = randint(0, numTrainTimesteps, [1], { generator });
      const timestep = t.item();
      t.dispose();
      const noise = randn(latent.shape, { generator, dtype: latent.dtype, device: latent.device });
      return { timestep, noise };
    },
  };
}

/** Given per-step timesteps and noise (e.g. a reference trace). */
export function fixedNoise(timesteps: number[], noise: Tensor): TrainingNoise {
  return {
    next(step) {
      const timestep = timesteps[step];
      if (timestep === undefined) throw new RangeError(`no training noise for step ${step}`);
      return { timestep, noise: noise.select(0, step) };
    },
  };
}

/** The image latent: VAE posterior mean (or a sample) times the scaling factor. image [1, 3, H, W] in [-1, 1]. */
export function encodeImage(sd: StableDiffusion, image: Tensor, opts: { sampleLatent?: boolean; generator?: Generator } = {}): Tensor {
  return encodeImageLatent(sd, image, { latentMode: opts.sampleLatent ? 'sample' : 'mean', generator: opts.generator });
}

export interface StageOptions {
  steps: number;
  lr: number;
  noise: TrainingNoise;
  mixedPrecision?: 'no' | 'bf16' | 'fp16';
  /** Recompute UNet activations block by block in the backward pass: less memory, about a third more compute. */
  gradientCheckpointing?: boolean;
  /**
   * Called with each step number (1-based) and its loss, in order. Losses stay on the device and are
   * read in batches (see LossReader), so on a GPU the host never waits for a step to finish.
   */
  onStep?: (step: number, loss: number) => void;
  /** Read the losses at most this often, in ms (default 250: progress stays live; 0: after every step). */
  lossReadMs?: number;
  /** Checked before each step: true stops early (Ctrl-C); the stage returns what it has. */
  shouldStop?: () => boolean;
}

/**
 * Collects per-step losses as device tensors and reads them to the host in one transfer when
 * `everyMs` has passed since the last read, when `maxPending` are waiting, or on flush(): one
 * synchronization per batch instead of one per step.
 */
export class LossReader {
  readonly losses: number[] = [];
  private pending: Tensor[] = [];
  private first = 0;
  private last = performance.now();
  constructor(private readonly onLoss: ((step: number, loss: number) => void) | undefined, private readonly everyMs = 250, private readonly maxPending = 100) {}

  /** Takes ownership of `loss` (a scalar tensor) for step `step` (1-based, consecutive). */
  push(step: number, loss: Tensor): void {
    if (this.pending.length === 0) this.first = step;
    this.pending.push(keep(loss));
    if (this.pending.length >= this.maxPending || performance.now() - this.last >= this.everyMs) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const all = noGrad(() => tidy(() => stack(this.pending.map((l) => l.float().reshape([]))))); // [n]
    const values = all.toFlatArray();
    all.dispose();
    dispose(this.pending);
    this.pending = [];
    this.last = performance.now();
    values.forEach((v, i) => {
      this.losses.push(v);
      this.onLoss?.(this.first + i, v);
    });
  }

  /** Frees what was not read (on an error). */
  dispose(): void {
    dispose(this.pending);
    this.pending = [];
  }
}

/**
 * What the UNet is trained to predict at `timestep`, as its scheduler's prediction_type says: the
 * noise ('epsilon', SD v1), or the velocity sqrt(a_t) * noise - sqrt(1 - a_t) * z ('v_prediction',
 * SD 2.x 768); diffusers' training scripts do the same. 'sample' models are refused.
 */
export function trainingTarget(sd: StableDiffusion, latent: Tensor, noise: Tensor, timestep: number): Tensor {
  const prediction = sd.scheduler.config.prediction_type;
  if (prediction === 'epsilon') return noise;
  if (prediction === 'v_prediction') return sd.scheduler.getVelocity(latent, noise, [timestep]);
  throw new Error(`Imagic cannot train a model whose scheduler predicts '${prediction}' (prediction_type): only epsilon and v_prediction are supported`);
}

/**
 * One training step's loss, mse(unet(add_noise(z, noise, t), t, cond), target) with the target as
 * trainingTarget() says (the noise, or the velocity for v-prediction models), and its backward
 * (scaled by `scale`, for fp16 loss scaling). With checkpointing, the UNet's activations are
 * recomputed block by block during the backward pass instead of being held. Returns the unscaled
 * loss, detached, on the device: reading it is the caller's choice (LossReader).
 */
export function denoisingStep(sd: StableDiffusion, latent: Tensor, cond: Tensor, timestep: number, noise: Tensor, o: { mixedPrecision?: StageOptions['mixedPrecision']; gradientCheckpointing?: boolean; scale?: number; added?: AddedConditions }): Tensor {
  const noisy = sd.scheduler.addNoise(latent, noise, [timestep]);
  const target = trainingTarget(sd, latent, noise, timestep);
  const mp = o.mixedPrecision;
  const deviceType = sd.device.startsWith('cuda') ? 'cuda' : 'cpu';
  const amp = <R>(fn: () => R): R => autocast({ deviceType, dtype: mp === 'fp16' ? 'float16' : 'bfloat16', enabled: mp !== undefined && mp !== 'no' }, fn);
  const lossOf = (pred: Tensor) => mseLoss(pred.float(), target.float());
  const scale = o.scale ?? 1;
  if (o.gradientCheckpointing) {
    const { inputs, segments } = sd.unet.segments(noisy, timestep, cond, o.added);
    const scaled = checkpointedBackward(segments.map((seg) => (s: Tensor[]) => amp(() => seg(s))), inputs, ([pred]) => {
      const l = lossOf(pred!);
      return scale === 1 ? l : l.mul(scale);
    });
    return scale === 1 ? scaled : scaled.div(scale);
  }
  const loss = lossOf(amp(() => sd.unet.forward(noisy, timestep, cond, o.added)));
  (scale === 1 ? loss : loss.mul(scale)).backward();
  return loss.detach();
}

export interface StageAResult {
  eOpt: Tensor;
  /** SDXL: the optimized pooled embedding (optimized with eOpt by one Adam). */
  pooledOpt?: Tensor;
  losses: number[];
}

/** SDXL's pooled text embedding and time_ids for stage A: the pooled one is optimized with the context. */
export interface PooledTarget {
  /** The target text's pooled embedding (or where to start). [1, D] */
  pooled: Tensor;
  /** [1, 6] */
  timeIds: Tensor;
}

/**
 * Stage A: Adam on the text embedding (initialized at e_tgt) with the UNet and VAE frozen. For SDXL
 * (`xl`), the pooled embedding is optimized together with it, by the same Adam (the golden trace's rule).
 */
export async function stageA(sd: StableDiffusion, latent: Tensor, eTgt: Tensor, o: StageOptions & { start?: Tensor; xl?: PooledTarget }): Promise<StageAResult> {
  sd.unet.requiresGrad_(false);
  const emb = keep(noGrad(() => (o.start ?? eTgt).to({ dtype: 'float32', copy: true })).requiresGrad_(true)); // [1, 77, D]
  const pooled = o.xl ? keep(noGrad(() => o.xl!.pooled.to({ dtype: 'float32', copy: true })).requiresGrad_(true)) : null; // [1, D]
  const opt = new optim.Adam(pooled ? [emb, pooled] : [emb], { lr: o.lr });
  const reader = new LossReader(o.onStep, o.lossReadMs);
  try {
    for (let i = 0; i < o.steps && !o.shouldStop?.(); i++) {
      reader.push(i + 1, tidy(() => {
        const { timestep, noise } = o.noise.next(i);
        opt.zeroGrad();
        const added = pooled ? { textEmbeds: pooled.to(sd.dtype), timeIds: o.xl!.timeIds } : undefined;
        const l = denoisingStep(sd, latent, emb.to(sd.dtype), timestep, noise, { ...o, added });
        opt.step();
        return l;
      }));
      await yieldToEventLoop();
    }
    reader.flush();
  } finally {
    reader.dispose();
    opt.disposeState();
  }
  const eOpt = noGrad(() => emb.detach().clone());
  emb.dispose();
  if (!pooled) return { eOpt, losses: reader.losses };
  const pooledOpt = noGrad(() => pooled.detach().clone());
  pooled.dispose();
  return { eOpt, pooledOpt, losses: reader.losses };
}

/** Names of the UNet parameters Stage B trains in full ('all' or 'attention'). */
export function trainableNames(sd: StableDiffusion, train: Exclude<TrainMode, 'lora'>): string[] {
  const names = sd.unet.namedParameters().map(([n]) => n);
  return train === 'all' ? names : names.filter((n) => /\.attn[12]\./.test(n));
}

/** The UNet weights that stage B changes in sd.unet (trained in place, or merged from LoRA), e.g. to snapshot them. */
export function stageBChangedWeights(sd: StableDiffusion, s: { train: TrainMode; loraTargets: LoRATargets }): string[] {
  return s.train === 'lora' ? loraMergedWeightNames(sd.unet, s.loraTargets) : trainableNames(sd, s.train);
}

/** Fresh adapters for stage B on sd.unet (A drawn from the training seed's own generator, B zero: the UNet is unchanged). */
export function createLoRA(sd: StableDiffusion, s: { loraRank: number; loraTargets: LoRATargets; seed: number }): LoRA {
  return new LoRA(sd.unet, { rank: s.loraRank, targets: s.loraTargets, generator: new Generator(s.seed) });
}

export interface StageBOptions extends StageOptions {
  train?: Exclude<TrainMode, 'lora'>;
  /** Train these adapters (attached to sd.unet) instead of the UNet's weights, which stay frozen. */
  lora?: LoRA;
  /** Resume: the optimizer state saved by a checkpoint, and how many steps were done. */
  resume?: { optimizer: optim.OptimizerState; done: number };
  /** Called every `every` steps with the state to save for resuming. */
  checkpoint?: { every: number; save: (done: number, opt: optim.Optimizer) => void };
  /** SDXL: the added conditioning at e_opt (the optimized pooled embedding and the time_ids). */
  added?: AddedConditions;
}

export interface StageBResult {
  /** The parameter names that were trained: the UNet's (fine-tuned in sd.unet), or the adapters' (in o.lora). */
  trained: string[];
  losses: number[];
  done: number;
}

/** Stage B: Adam on the UNet's weights (all, or attention only), or on LoRA adapters, at the fixed e_opt. Fine-tunes sd.unet (or the adapters) in place. */
export async function stageB(sd: StableDiffusion, latent: Tensor, eOpt: Tensor, o: StageBOptions): Promise<StageBResult> {
  let named: [string, Tensor][];
  if (o.lora) {
    sd.unet.requiresGrad_(false);
    named = o.lora.namedParameters();
    for (const [, p] of named) p.requiresGrad_(true);
  } else {
    const names = new Set(trainableNames(sd, o.train ?? 'all'));
    const params = sd.unet.namedParameters();
    for (const [n, p] of params) p.requiresGrad_(names.has(n));
    named = params.filter(([n]) => names.has(n));
  }
  const trainable = named.map(([, p]) => p);
  if (trainable.some((p) => p.dtype !== 'float32')) {
    throw new Error(`Stage B trains float32 master weights (an update of lr ${o.lr} vanishes in ${trainable[0]!.dtype}): load the model in float32 and use mixed precision for speed`);
  }
  sd.unet.train();
  const opt = new optim.Adam(trainable, { lr: o.lr });
  const scaler = new GradScaler({ enabled: o.mixedPrecision === 'fp16' });
  if (o.resume) opt.loadStateDict(o.resume.optimizer);
  const start = o.resume?.done ?? 0;
  const cond = noGrad(() => eOpt.to({ dtype: sd.dtype, device: sd.device, copy: true }));
  const reader = new LossReader(o.onStep, o.lossReadMs);
  let done = start;
  try {
    for (let i = start; i < o.steps && !o.shouldStop?.(); i++) {
      reader.push(i + 1, tidy(() => {
        const { timestep, noise } = o.noise.next(i);
        opt.zeroGrad();
        const l = denoisingStep(sd, latent, cond, timestep, noise, { ...o, scale: scaler.enabled ? scaler.scale_ : 1, added: o.added });
        scaler.step(opt);
        scaler.update();
        return l;
      }));
      done = i + 1;
      if (o.checkpoint && o.checkpoint.every > 0 && done % o.checkpoint.every === 0 && done < o.steps) {
        reader.flush();
        o.checkpoint.save(done, opt);
      }
      await yieldToEventLoop();
    }
    reader.flush();
    if (done < o.steps && o.checkpoint) o.checkpoint.save(done, opt); // stopped early: keep what was done
  } finally {
    reader.dispose();
    opt.zeroGrad();
    opt.disposeState();
    cond.dispose();
    sd.unet.eval();
    sd.unet.requiresGrad_(false);
    if (o.lora) o.lora.requiresGrad_(false);
  }
  return { trained: named.map(([n]) => n), losses: reader.losses, done };
}

/**
 * Stage B as the settings say, for callers without a session (benchmarks): full or attention
 * fine-tuning in place, or LoRA adapters trained then merged. Either way sd.unet ends up holding
 * the edit (stageBChangedWeights names what changed).
 */
export async function fineTune(sd: StableDiffusion, latent: Tensor, eOpt: Tensor, s: { train: TrainMode; loraRank: number; loraTargets: LoRATargets; seed: number; stepsB: number; lrB: number },
  o: Omit<StageOptions, 'steps' | 'lr'>): Promise<StageBResult> {
  if (s.train !== 'lora') return stageB(sd, latent, eOpt, { ...o, steps: s.stepsB, lr: s.lrB, train: s.train });
  const lora = createLoRA(sd, s);
  try {
    const r = await stageB(sd, latent, eOpt, { ...o, steps: s.stepsB, lr: s.lrB, lora });
    lora.merge();
    return r;
  } finally {
    lora.detach();
    lora.dispose();
  }
}

/** e = eta * e_tgt + (1 - eta) * e_opt (eta may leave [0, 1]: extrapolation). */
export function interpolateEmbedding(eTgt: Tensor, eOpt: Tensor, eta: number): Tensor {
  return noGrad(() => tidy(() => eTgt.mul(eta).add(eOpt.mul(1 - eta))));
}

/** SDXL's pooled embeddings for stage C (interpolated with the same eta as the context) and the time_ids. */
export interface PooledEmbeddings {
  tgt: Tensor;
  opt: Tensor;
  uncond: Tensor;
  timeIds: Tensor;
}

export interface RenderOptions {
  eta: number;
  guidanceScale: number;
  steps: number;
  /** The starting noise comes from this seed (same seed, same noise for every eta). */
  seed?: number;
  latents?: Tensor;
  onStep?: (step: number, steps: number) => void;
}

/** Stage C: sample from the fine-tuned UNet at the interpolated embedding, guided against e_uncond. Returns [1, 3, H, W]. */
export async function renderEdit(sd: StableDiffusion, e: { eTgt: Tensor; eOpt: Tensor; eUncond: Tensor; xl?: PooledEmbeddings }, o: RenderOptions, size?: { width: number; height: number }): Promise<{ image: Tensor; latent: Tensor }> {
  const [cond, uncond, pooled] = noGrad(() => tidy(() => [
    interpolateEmbedding(e.eTgt, e.eOpt, o.eta).to({ dtype: sd.dtype, device: sd.device }),
    e.eUncond.to({ dtype: sd.dtype, device: sd.device }),
    ...(e.xl ? [interpolateEmbedding(e.xl.tgt, e.xl.opt, o.eta)] : []), // [1, D]
  ]));
  try {
    const r = await text2img(sd, {
      prompt: [], promptEmbeds: cond!, negativePromptEmbeds: uncond!, steps: o.steps, guidanceScale: o.guidanceScale,
      generator: new Generator(o.seed ?? 0), latents: o.latents, width: size?.width, height: size?.height, onStep: o.onStep,
      added: e.xl ? { textEmbeds: pooled!, negativeTextEmbeds: e.xl.uncond, timeIds: e.xl.timeIds } : undefined,
    });
    return { image: r.images, latent: r.latents };
  } finally {
    dispose([cond!, uncond!, ...(pooled ? [pooled] : [])]);
  }
}

/**
 * Stage C for several etas at once, in one batch: the same starting noise (drawn as a single render
 * with `seed` draws it, or `noise` [1, 4, h, w] when given) for every eta. Returns images [E, 3, H, W]
 * in the order of `etas`.
 */
export async function renderEtas(sd: StableDiffusion, e: { eTgt: Tensor; eOpt: Tensor; eUncond: Tensor; xl?: PooledEmbeddings }, o: Omit<RenderOptions, 'eta' | 'latents'> & { etas: readonly number[]; noise?: Tensor }, size?: { width: number; height: number }): Promise<Tensor> {
  const height = size?.height ?? (sd.unet.config.sample_size ?? 64) * 8;
  const width = size?.width ?? (sd.unet.config.sample_size ?? 64) * 8;
  const n = o.etas.length;
  const [cond, uncond, latents, pooled] = noGrad(() => tidy(() => {
    const noise = o.noise?.to({ dtype: sd.dtype, device: sd.device }) ?? randn([1, sd.unet.config.in_channels, height / 8, width / 8], { generator: new Generator(o.seed ?? 0), device: sd.device, dtype: sd.dtype });
    return [
      cat(o.etas.map((eta) => interpolateEmbedding(e.eTgt, e.eOpt, eta))).to({ dtype: sd.dtype, device: sd.device }), // [E, 77, D]
      e.eUncond.to({ dtype: sd.dtype, device: sd.device }).expand(n, -1, -1).contiguous(),
      noise.expand(n, -1, -1, -1).contiguous(), // [E, 4, h, w]
      ...(e.xl ? [cat(o.etas.map((eta) => interpolateEmbedding(e.xl!.tgt, e.xl!.opt, eta)))] : []), // SDXL: [E, P]
    ];
  }));
  try {
    const added = e.xl ? { textEmbeds: pooled!, negativeTextEmbeds: e.xl.uncond, timeIds: e.xl.timeIds } : undefined;
    const r = await text2img(sd, { prompt: [], promptEmbeds: cond!, negativePromptEmbeds: uncond!, steps: o.steps, guidanceScale: o.guidanceScale, latents: latents!, width, height, onStep: o.onStep, added });
    r.latents.dispose();
    return r.images;
  } finally {
    dispose([cond!, uncond!, latents!, ...(pooled ? [pooled] : [])]);
  }
}

/**
 * The input's own starting noise: DDIM inversion of the image latent through the fine-tuned UNet at
 * e_opt (no guidance), which that UNet was trained to reconstruct. Sampling from it keeps the
 * input's layout more than fresh noise does. [1, 4, h, w]
 */
export function invertedNoise(sd: StableDiffusion, latent: Tensor, eOpt: Tensor, steps: number, xl?: PooledEmbeddings): Tensor {
  const cond = noGrad(() => eOpt.to({ dtype: sd.dtype, device: sd.device, copy: true }));
  try {
    const added = xl ? { textEmbeds: xl.opt, timeIds: xl.timeIds } : undefined;
    const inv = invertDDIM(sd, { imageLatents: latent, promptEmbeds: cond, steps, guidanceScale: 1, added });
    inv.imageLatents.dispose();
    return inv.latents;
  } finally {
    cond.dispose();
  }
}
