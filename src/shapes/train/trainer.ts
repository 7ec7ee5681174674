// Training the Shapes-64 model from scratch on the project's engine, in two phases:
//   1. the VAE (64x64x3 <-> 8x8x4): L1 + MSE reconstruction of a posterior sample, weighted toward
//      the object and the image's frame, plus a small KL;
//   2. the text encoder and the UNet together, on the frozen VAE's latents of a fixed set of renders
//      (encoded once): SD's epsilon-prediction
//      loss at uniform timesteps, with caption dropout (for classifier-free guidance), partial
//      captions, and an exponential moving average of the weights (what gets exported).
// A run lives in one folder: run.json (settings and progress), one resumable checkpoint per phase
// (weights, optimizer state) and log.jsonl. Batch k and its noise depend only on (seed, k), so a run
// stopped and resumed gives the same weights as an uninterrupted one.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  cat, dispose, Generator, keep, mseLoss, noGrad, optim, randint, randn, tensor, tidy, type Device, type Tensor,
} from '../../engine/index.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { CLIPTextModel, CLIPTokenizer, parseCLIPTextConfig } from '../../models/clip/index.js';
import { parseUNetConfig, UNet2DConditionModel } from '../../models/unet/index.js';
import { AutoencoderKL, parseAutoencoderKLConfig } from '../../models/vae/index.js';
import { yieldToEventLoop } from '../../pipelines/imagic/stages.js';
import { DDIMScheduler } from '../../schedulers/index.js';
import { buildShapesVocab } from '../tokenizer.js';
import { shapesSchedulerConfig, shapesTextEncoderConfig, shapesUNetConfig, shapesVaeConfig } from './configs.js';
import { renderBatch, shapesBatch, stepSeed, trainingCaption, type CaptionMix, DEFAULT_CAPTION_MIX } from './data.js';
import { BACKGROUND_RGB, mulberry32, randomSpec, type ShapeSpec } from '../spec.js';
import { appendLog, readRun, writeRun, type RunJson, type TrainPhase } from './run.js';

export interface PhaseSettings {
  steps: number;
  batchSize: number;
  /** Peak learning rate (AdamW), reached after `warmup` steps, then cosine decay to 10% of it. */
  lr: number;
  warmup: number;
}

export interface TrainSettings {
  seed: number;
  /**
   * klWeight: of the KL term, relative to the per-pixel reconstruction loss summed over an image (SD's
   * 1e-6). objectWeight: how much more a pixel of the object counts than one of the background (the
   * object covers 6-20% of an image; without it the VAE learns colors and corners slowly).
   * borderWeight: the same for the 2-px frame of the image, where convolution padding leaves
   * artifacts that the evaluator would count as object pixels.
   */
  vae: PhaseSettings & { klWeight: number; objectWeight: number; borderWeight: number };
  /** dataset: how many renders are encoded once by the trained VAE and drawn from (with fresh captions). */
  unet: PhaseSettings & { emaDecay: number; captions: CaptionMix; dataset: number };
  /** Gradient-norm clip for both phases. */
  maxGradNorm: number;
}

/** The settings the shipped model was trained with (see models/shapes-64/README.md). */
export const DEFAULT_TRAIN_SETTINGS: TrainSettings = {
  seed: 0,
  vae: { steps: 4000, batchSize: 16, lr: 1e-3, warmup: 100, klWeight: 1e-6, objectWeight: 10, borderWeight: 10 },
  unet: { steps: 7000, batchSize: 64, lr: 1e-3, warmup: 500, emaDecay: 0.999, captions: DEFAULT_CAPTION_MIX, dataset: 40000 },
  maxGradNorm: 1,
};

export interface TrainHooks {
  /** After each step: phase, step (1-based), its total, and the step's loss. */
  onStep?: (phase: TrainPhase, step: number, total: number, loss: number) => void;
  /** After a checkpoint is written. */
  onCheckpoint?: (phase: TrainPhase, step: number, file: string) => void;
  onLog?: (line: string) => void;
  /** Checked before each step: true saves a checkpoint and returns (resume by training again). */
  shouldStop?: () => boolean;
}

export interface TrainOptions {
  device?: Device;
  /** Save a resumable checkpoint every this many steps (and always at a stop and at the end). */
  checkpointEvery?: number;
  /** Append the mean loss to log.jsonl every this many steps. */
  logEvery?: number;
}

/** Learning rate at `step` (0-based): linear warmup, then cosine from lr down to lr / 10. */
export function learningRate(p: PhaseSettings, step: number): number {
  if (step < p.warmup) return (p.lr * (step + 1)) / p.warmup;
  const f = (step - p.warmup) / Math.max(1, p.steps - p.warmup);
  return p.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, f))));
}

export function buildVae(scalingFactor = 1, o: { device?: Device; generator?: Generator } = {}): AutoencoderKL {
  return new AutoencoderKL(parseAutoencoderKLConfig(shapesVaeConfig(scalingFactor)), o);
}
export function buildTextEncoder(o: { device?: Device; generator?: Generator } = {}): CLIPTextModel {
  return new CLIPTextModel(parseCLIPTextConfig(shapesTextEncoderConfig()), o);
}
export function buildUNet(o: { device?: Device; generator?: Generator } = {}): UNet2DConditionModel {
  return new UNet2DConditionModel(parseUNetConfig(shapesUNetConfig()), o);
}
export function shapesTokenizer(): CLIPTokenizer {
  const { vocab, merges } = buildShapesVocab();
  return new CLIPTokenizer(new Map(Object.entries(vocab)), merges);
}

/** Stale temporary files of an interrupted write are never valid data. */
function removeTemporaries(dir: string): void {
  for (const f of readdirSync(dir)) if (/\.tmp-\d+/.test(f)) rmSync(path.join(dir, f), { force: true });
}

/**
 * Trains (or resumes) the run in `dir`. A new folder starts a run with `settings`; an existing run
 * continues with its own settings (given ones that differ in anything but the step counts are an
 * error: a run is one experiment). Returns the run's state when it stops or finishes.
 */
export async function trainShapes(dir: string, settings: TrainSettings, hooks: TrainHooks = {}, o: TrainOptions = {}): Promise<RunJson> {
  mkdirSync(dir, { recursive: true });
  removeTemporaries(dir);
  let run = readRun(dir);
  if (run === null) {
    run = { version: 1, settings, progress: { vae: 0, unet: 0, scalingFactor: null, seconds: { vae: 0, unet: 0 } }, created: new Date().toISOString(), updated: '' };
    writeRun(dir, run);
  } else {
    const differs = settingsDifferences(run.settings, settings);
    if (differs.length > 0) throw new Error(`the run in '${dir}' was started with other settings (${differs.join('; ')}): continue it with its own settings, or train into a new folder`);
    // Step counts may grow (train longer), never shrink below what was done.
    run.settings.vae.steps = settings.vae.steps;
    run.settings.unet.steps = settings.unet.steps;
  }
  const device = o.device ?? 'cpu';
  if (run.progress.vae < run.settings.vae.steps) {
    if (run.progress.unet > 0) throw new Error(`the run in '${dir}' has already trained its UNet on this VAE: the VAE can no longer be trained further`);
    const stopped = await trainVae(dir, run, hooks, device, o);
    if (stopped) return run;
  }
  if (run.progress.scalingFactor === null) {
    run.progress.scalingFactor = measureScalingFactor(dir, run, device);
    hooks.onLog?.(`latent scaling factor: ${run.progress.scalingFactor.toFixed(5)} (1 / std of 1024 latents)`);
    writeRun(dir, run);
  }
  if (run.progress.unet < run.settings.unet.steps) await trainUNet(dir, run, hooks, device, o);
  return run;
}

/** Which training settings differ (step counts may change between sessions of a run). */
export function settingsDifferences(a: TrainSettings, b: TrainSettings): string[] {
  const strip = (s: TrainSettings) => ({ ...s, vae: { ...s.vae, steps: 0 }, unet: { ...s.unet, steps: 0 } });
  const fa = flatten(strip(a)), fb = flatten(strip(b));
  return [...new Set([...Object.keys(fa), ...Object.keys(fb)])].filter((k) => fa[k] !== fb[k]).map((k) => `${k}: ${fa[k]} in the run, ${fb[k]} now`);
}

function flatten(v: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  else out[prefix] = String(v);
  return out;
}

const checkpointFile = (dir: string, phase: TrainPhase) => path.join(dir, `${phase}-checkpoint.safetensors`);

/** Loads a phase checkpoint's groups (prefix -> name -> tensor). */
function loadGroups(file: string, device: Device): Map<string, Map<string, Tensor>> {
  const groups = new Map<string, Map<string, Tensor>>();
  for (const [k, t] of loadSafetensors(file, { device })) {
    const i = k.indexOf('.');
    const g = k.slice(0, i), name = k.slice(i + 1);
    if (!groups.has(g)) groups.set(g, new Map());
    groups.get(g)!.set(name, t);
  }
  return groups;
}

function optimizerTensors(opt: optim.Optimizer): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(opt.stateDict().tensors).map(([k, t]) => [`optimizer.${k}`, t]));
}

function restoreOptimizer(opt: optim.Optimizer, group: Map<string, Tensor> | undefined, step: number): void {
  if (group === undefined) return;
  opt.loadStateDict({ kind: opt.kind, step, hyper: {}, tensors: Object.fromEntries(group) });
}

function prefixed(prefix: string, m: { namedParameters(): [string, Tensor][] } | [string, Tensor][]): Record<string, Tensor> {
  const entries = Array.isArray(m) ? m : m.namedParameters();
  return Object.fromEntries(entries.map(([k, t]) => [`${prefix}.${k}`, t]));
}

// ---------------------------------------------------------------- phase 1: the VAE

async function trainVae(dir: string, run: RunJson, hooks: TrainHooks, device: Device, o: TrainOptions): Promise<boolean> {
  const s = run.settings, p = s.vae;
  const vae = buildVae(1, { device, generator: new Generator(stepSeed(s.seed, 0, 100)) });
  const opt = new optim.AdamW(vae.train().requiresGrad_(true).parameters(), { lr: p.lr, weightDecay: 0 });
  const file = checkpointFile(dir, 'vae');
  if (run.progress.vae > 0) {
    const g = loadGroups(file, device);
    vae.loadStateDict(g.get('vae')!, { source: file });
    restoreOptimizer(opt, g.get('optimizer'), run.progress.vae);
    for (const m of g.values()) dispose([...m.values()]);
  }
  const save = (step: number) => {
    saveSafetensors(file, { ...prefixed('vae', vae), ...optimizerTensors(opt) }, { phase: 'vae', step: String(step) });
    run.progress.vae = step;
    writeRun(dir, run);
    hooks.onCheckpoint?.('vae', step, file);
  };
  try {
    return await loop(dir, 'vae', run, hooks, o, save, (step) => tidy(() => {
      opt.lr = learningRate(p, step);
      const { images, specs } = shapesBatch(s.seed, step, p.batchSize, { device });
      const dist = vae.encode(images);
      const z = dist.sample(new Generator(stepSeed(s.seed, step, 1), device));
      const rec = vae.decode(z);
      const pixels = images.numel / p.batchSize;
      const d = rec.sub(images);
      const loss = d.abs().add(d.square()).mul(pixelWeights(images, specs, p.objectWeight, p.borderWeight)).mean().add(dist.kl().mean().mul(p.klWeight / pixels));
      dist.dispose();
      loss.backward();
      optim.clipGradNorm(opt.params, s.maxGradNorm).dispose();
      opt.step();
      opt.zeroGrad();
      return loss.item();
    }));
  } finally {
    opt.disposeState();
    vae.dispose();
  }
}

/**
 * Per-pixel loss weights [B, 1, 64, 64]: objectWeight where a pixel differs from its image's
 * background, borderWeight on the 2-px frame, 1 elsewhere (the larger where both apply).
 */
export function pixelWeights(images: Tensor, specs: ShapeSpec[], objectWeight: number, borderWeight: number): Tensor {
  return tidy(() => {
    const [b, , h, w] = images.shape as [number, number, number, number];
    const bg = tensor(specs.map((sp) => BACKGROUND_RGB[sp.background].map((v) => v / 127.5 - 1)), { device: images.device }).view(b, 3, 1, 1);
    const object = images.sub(bg).abs().amax(1, { keepdim: true }).gt(0.05).float().mul(objectWeight - 1).add(1); // [B, 1, H, W]
    const frame = tensor(Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => (x < 2 || y < 2 || x >= w - 2 || y >= h - 2 ? borderWeight : 1))), { device: images.device }).view(1, 1, h, w);
    return object.maximum(frame);
  });
}

/** 1 / std of the posterior means of 1024 fixed renders: latents * this have about unit variance, as SD's 0.18215. */
function measureScalingFactor(dir: string, run: RunJson, device: Device): number {
  const vae = loadTrainedVae(dir, 1, device);
  try {
    return noGrad(() => {
      const chunks: Tensor[] = [];
      for (let i = 0; i < 16; i++) {
        const { images } = shapesBatch(run.settings.seed, -1 - i, 64, { device });
        const d = vae.encode(images);
        chunks.push(d.mean.clone());
        d.dispose();
        images.dispose();
      }
      const flat = tidy(() => cat(chunks.map((c) => c.reshape(-1))));
      const std = flat.std().item();
      dispose([...chunks, flat]);
      return 1 / std;
    });
  } finally {
    vae.dispose();
  }
}

/** The trained VAE of a run (its phase-1 checkpoint), frozen. */
export function loadTrainedVae(dir: string, scalingFactor: number, device: Device): AutoencoderKL {
  const file = checkpointFile(dir, 'vae');
  if (!existsSync(file)) throw new Error(`no VAE checkpoint in '${dir}': train its VAE first`);
  const vae = buildVae(scalingFactor, { device: 'meta' });
  const g = loadGroups(file, device);
  vae.loadStateDict(g.get('vae')!, { source: file });
  for (const m of g.values()) dispose([...m.values()]);
  return vae.eval().requiresGrad_(false);
}

// ---------------------------------------------------------------- phase 2: text encoder + UNet

/** The renders phase 2 draws from: `dataset` random specs (fixed by the seed). */
export function datasetSpecs(seed: number, n: number): ShapeSpec[] {
  const rng = mulberry32(stepSeed(seed, 0, 400));
  return Array.from({ length: n }, () => randomSpec(rng));
}

/**
 * The dataset's VAE posteriors (mean and std, [N, 4, 8, 8], unscaled), encoded once and kept in
 * latents.safetensors: encoding is most of a step's cost otherwise.
 */
function latentDataset(dir: string, run: RunJson, device: Device, hooks: TrainHooks): { specs: ShapeSpec[]; mean: Tensor; std: Tensor } {
  const n = run.settings.unet.dataset;
  const specs = datasetSpecs(run.settings.seed, n);
  const file = path.join(dir, 'latents.safetensors');
  if (existsSync(file)) {
    const m = loadSafetensors(file, { device });
    const mean = m.get('mean'), std = m.get('std');
    if (mean !== undefined && std !== undefined && mean.shape[0] === n && std.shape[0] === n) return { specs, mean, std };
    dispose([...m.values()]);
  }
  const vae = loadTrainedVae(dir, 1, device);
  const means: Tensor[] = [], stds: Tensor[] = [];
  const t0 = Date.now();
  try {
    noGrad(() => {
      for (let i = 0; i < n; i += 250) {
        const images = renderBatch(specs.slice(i, i + 250), device);
        const d = vae.encode(images);
        means.push(d.mean.clone());
        stds.push(d.std.clone());
        d.dispose();
        images.dispose();
      }
    });
  } finally {
    vae.dispose();
  }
  const mean = cat(means), std = cat(stds);
  dispose([...means, ...stds]);
  saveSafetensors(file, { mean, std }, { dataset: String(n), seed: String(run.settings.seed) });
  hooks.onLog?.(`encoded the ${n} training renders in ${((Date.now() - t0) / 1000).toFixed(1)} s (${file})`);
  return { specs, mean, std };
}

async function trainUNet(dir: string, run: RunJson, hooks: TrainHooks, device: Device, o: TrainOptions): Promise<boolean> {
  const s = run.settings, p = s.unet;
  const scaling = run.progress.scalingFactor!;
  const data = latentDataset(dir, run, device, hooks);
  const textEncoder = buildTextEncoder({ device, generator: new Generator(stepSeed(s.seed, 0, 200)) });
  const unet = buildUNet({ device, generator: new Generator(stepSeed(s.seed, 0, 300)) });
  const scheduler = DDIMScheduler.fromConfig(shapesSchedulerConfig());
  const tokenizer = shapesTokenizer();
  textEncoder.train().requiresGrad_(true);
  unet.train().requiresGrad_(true);
  const named: [string, Tensor][] = [...Object.entries(prefixed('text_encoder', textEncoder)), ...Object.entries(prefixed('unet', unet))];
  const params = named.map(([, t]) => t);
  const opt = new optim.AdamW(params, { lr: p.lr, weightDecay: 0.01 });
  const ema = new Map<string, Tensor>(noGrad(() => named.map(([k, t]) => [k, keep(t.detach().clone())] as [string, Tensor])));
  const file = checkpointFile(dir, 'unet');
  if (run.progress.unet > 0) {
    const g = loadGroups(file, device);
    const model = g.get('model')!, saved = g.get('ema')!;
    noGrad(() => {
      for (const [k, t] of named) {
        const w = model.get(k), e = saved.get(k);
        if (w === undefined || e === undefined) throw new Error(`${file} lacks '${k}': a checkpoint of another model`);
        t.copy_(w);
        ema.get(k)!.copy_(e);
      }
    });
    restoreOptimizer(opt, g.get('optimizer'), run.progress.unet);
    for (const m of g.values()) dispose([...m.values()]);
  }
  const save = (step: number) => {
    const tensors: Record<string, Tensor> = { ...optimizerTensors(opt) };
    for (const [k, t] of named) tensors[`model.${k}`] = t;
    for (const [k, t] of ema) tensors[`ema.${k}`] = t;
    saveSafetensors(file, tensors, { phase: 'unet', step: String(step) });
    run.progress.unet = step;
    writeRun(dir, run);
    hooks.onCheckpoint?.('unet', step, file);
  };
  try {
    return await loop(dir, 'unet', run, hooks, o, save, (step) => tidy(() => {
      opt.lr = learningRate(p, step);
      const rng = mulberry32(stepSeed(s.seed, step));
      const rows = Array.from({ length: p.batchSize }, () => Math.floor(rng() * data.specs.length));
      const captions = rows.map((i) => trainingCaption(data.specs[i]!, rng, p.captions));
      const index = tensor(rows, { dtype: 'int64', device });
      const g = new Generator(stepSeed(s.seed, step, 2), device);
      // A posterior sample, scaled: [B, 4, 8, 8]
      const latents = data.mean.indexSelect(0, index).add(data.std.indexSelect(0, index).mul(randn([p.batchSize, ...data.mean.shape.slice(1)], { generator: g, device }))).mul(scaling);
      const ids = tensor(tokenizer.call(captions, { maxLength: 77, padding: 'max_length' }).inputIds, { dtype: 'int64', device });
      const { lastHiddenState } = textEncoder.forward(ids); // [B, 77, 64]
      const t = randint(0, 1000, [p.batchSize], { generator: g, device });
      const noise = randn(latents.shape, { generator: g, device });
      const noisy = scheduler.addNoise(latents, noise, t);
      const pred = unet.forward(noisy, t, lastHiddenState);
      const loss = mseLoss(pred, noise);
      loss.backward();
      optim.clipGradNorm(params, s.maxGradNorm).dispose();
      opt.step();
      opt.zeroGrad();
      // EMA with the usual warmup: decay min(emaDecay, (1 + n) / (10 + n)).
      const decay = Math.min(p.emaDecay, (1 + step) / (10 + step));
      noGrad(() => {
        for (const [k, w] of named) {
          const e = ema.get(k)!;
          const next = e.lerp(w, 1 - decay);
          e.assign_(next);
          next.dispose();
        }
      });
      return loss.item();
    }));
  } finally {
    opt.disposeState();
    dispose([...ema.values(), data.mean, data.std]);
    textEncoder.dispose();
    unet.dispose();
  }
}

// ---------------------------------------------------------------- the loop both phases share

async function loop(dir: string, phase: TrainPhase, run: RunJson, hooks: TrainHooks, o: TrainOptions, save: (step: number) => void, step: (i: number) => number): Promise<boolean> {
  const total = run.settings[phase].steps;
  const every = o.checkpointEvery ?? 500, logEvery = o.logEvery ?? 50;
  let done = run.progress[phase];
  let sum = 0, count = 0;
  let t0 = Date.now();
  const tick = () => {
    const now = Date.now();
    run.progress.seconds[phase] += (now - t0) / 1000;
    t0 = now;
  };
  while (done < total) {
    if (hooks.shouldStop?.()) {
      tick();
      save(done);
      hooks.onLog?.(`stopped at ${phase} step ${done}/${total}; run the same command again to resume`);
      return true;
    }
    const loss = step(done);
    if (!Number.isFinite(loss)) {
      tick();
      throw new Error(`${phase} training diverged at step ${done + 1} (loss ${loss}); the last checkpoint (step ${run.progress[phase]}) is intact: lower the learning rate and train into a new folder`);
    }
    done++;
    sum += loss;
    count++;
    hooks.onStep?.(phase, done, total, loss);
    if (done % logEvery === 0 || done === total) {
      tick();
      appendLog(dir, phase, done, sum / count, learningRate(run.settings[phase], done - 1));
      sum = 0;
      count = 0;
    }
    if (done % every === 0 || done === total) {
      tick();
      save(done);
    }
    await yieldToEventLoop();
  }
  return false;
}
