// One case of the SD-size benchmark (bench/sd.ts), in this process: builds the full-size component it
// needs from the manifest's config with random weights, runs `warmup` untimed and `iters` timed steps
// of our real code (stageA / stageB with optim.Adam, text2img's guided step, the VAE decode), and
// prints one JSON line: the per-step ms, process.resourceUsage().maxRSS, losses, sizes.
//
//   node dist/bench/sd-case.js --manifest FILE --case stageA --size 512 --iters 3 --warmup 1 --threads 2
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  buildInfo, cat, cuda, Generator, getNumThreads, keep, noGrad, randint, randn, setNumThreads, tidy, type Device, type Tensor,
} from '../src/engine/index.js';
import { saveSafetensors } from '../src/io/safetensors.js';
import { LoRA } from '../src/nn/index.js';
import { CLIPTextModel, parseCLIPTextConfig } from '../src/models/clip/index.js';
import { UNet2DConditionModel } from '../src/models/unet/index.js';
import { AutoencoderKL, parseAutoencoderKLConfig } from '../src/models/vae/index.js';
import { DDIMScheduler } from '../src/schedulers/index.js';
import { generatorNoise, stageA, stageB } from '../src/pipelines/imagic/stages.js';
import type { StableDiffusion } from '../src/pipelines/stable-diffusion.js';
import type { Module } from '../src/nn/index.js';

export const CASES = ['stageA', 'stageB-full', 'stageB-lora', 'sample-cfg', 'vae-decode', 'text-encode'] as const;
export type CaseName = (typeof CASES)[number];

/** sd-v1-manifest.json: each component's config and its state dict's key -> shape. */
export interface Manifest {
  configs: { unet: Record<string, unknown>; vae: Record<string, unknown>; text_encoder: Record<string, unknown>; scheduler: Record<string, unknown> };
  state_dict_shapes: Record<'unet' | 'vae' | 'text_encoder', Record<string, number[]>>;
}

export function readManifest(file: string): Manifest {
  return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
}

export type Component = 'unet' | 'vae' | 'text_encoder';

/** A component of the manifest with random weights (PyTorch's default init, seeded), or on 'meta' (nothing allocated). */
export function buildComponent(m: Manifest, name: Component, o: { device: Device; generator?: Generator }): Module {
  // built in a scope: the initializers' temporaries are freed at once, the parameters stay
  return tidy(() => {
    if (name === 'unet') return new UNet2DConditionModel(m.configs.unet, o).eval();
    if (name === 'vae') return new AutoencoderKL(parseAutoencoderKLConfig(m.configs.vae), o).eval();
    return new CLIPTextModel(parseCLIPTextConfig(m.configs.text_encoder), o).eval();
  });
}

/**
 * Differences between a model's state dict and the manifest's (missing, unexpected, mis-shaped keys:
 * empty when they agree), and the key count. Built on 'meta'.
 */
export function manifestDiff(m: Manifest, name: Component): { keys: number; problems: string[] } {
  const model = buildComponent(m, name, { device: 'meta' });
  const have = new Map(Object.entries(model.stateDict()).map(([k, t]) => [k, t.shape]));
  model.dispose();
  const want = m.state_dict_shapes[name];
  const problems: string[] = [];
  for (const k of Object.keys(want)) if (!have.has(k)) problems.push(`missing ${k}`);
  for (const [k, s] of have) {
    if (!(k in want)) problems.push(`unexpected ${k}`);
    else if (s.join(',') !== want[k]!.join(',')) problems.push(`${k}: [${s}] != [${want[k]}]`);
  }
  return { keys: have.size, problems };
}

/** What one process reports (the Python reference prints the same fields). */
export interface CaseResult {
  impl: 'ts' | 'torch';
  case: CaseName;
  size: number;
  samples_ms: number[];
  /** Peak resident set size of the whole process, KB. */
  maxrss_kb: number;
  /** Resident set size once the component and inputs are built, before the first step, KB. */
  rss_built_kb: number;
  /** Parameters of the component the case built. */
  params: number;
  threads: number;
  losses?: number[];
  /** stageB-lora: bytes of the adapters file and of adapters + embeddings (what a LoRA session holds). */
  adapter_bytes?: number;
  session_bytes?: number;
  adapter_tensors?: number;
  /** Python only: manifest keys its models were checked against. */
  keys_total?: number;
  [k: string]: unknown;
}

export interface CaseOptions {
  manifest: Manifest;
  case: CaseName;
  size: number;
  iters: number;
  warmup: number;
  device: Device;
  seed: number;
}

const syncDevice = (device: Device) => {
  if (device.startsWith('cuda')) cuda.synchronize(Number(device.split(':')[1] ?? 0));
};

/** One event-loop turn, as a real loop awaits per step (Node-API finalizes the step's handles then). */
const eventLoopTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** ms of `warmup + iters` calls of an async step, each followed by a turn of the event loop; the warm-up ones dropped. */
async function timeSteps(o: CaseOptions, step: (i: number) => void): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < o.warmup + o.iters; i++) {
    const t0 = performance.now();
    step(i);
    syncDevice(o.device);
    await eventLoopTurn();
    if (i >= o.warmup) samples.push(performance.now() - t0);
  }
  return samples;
}

/** A StableDiffusion with only the parts a case uses (the others are never touched). */
function pipelineOf(parts: Partial<StableDiffusion>, o: CaseOptions): StableDiffusion {
  return { tokenizer: null, root: '(random weights)', dtype: 'float32', device: o.device, scheduler: DDIMScheduler.fromConfig(o.manifest.configs.scheduler), ...parts } as StableDiffusion;
}

/** Runs one case and returns what it measured (the caller prints it). */
export async function runCase(o: CaseOptions): Promise<CaseResult> {
  const gen = new Generator(o.seed);
  const h = o.size / 8;
  const base = { impl: 'ts' as const, case: o.case, size: o.size, threads: getNumThreads() };
  const maxrss = () => process.resourceUsage().maxRSS; // KB
  const rssNow = () => Math.round(process.memoryUsage().rss / 1024); // KB

  if (o.case === 'vae-decode') {
    const vae = buildComponent(o.manifest, 'vae', { device: o.device, generator: gen }) as AutoencoderKL;
    const latent = randn([1, vae.config.latent_channels, h, h], { generator: gen, device: o.device }); // [1, 4, h, w]
    const rss_built_kb = rssNow();
    const samples = await timeSteps(o, () => {
      // as text2img's step 4: the latent unscaled by the scaling factor, decoded to [1, 3, H, W]
      noGrad(() => tidy(() => vae.decode(latent.div(vae.config.scaling_factor)))).dispose();
    });
    return { ...base, samples_ms: samples, maxrss_kb: maxrss(), rss_built_kb, params: vae.numParameters() };
  }

  if (o.case === 'text-encode') {
    const te = buildComponent(o.manifest, 'text_encoder', { device: o.device, generator: gen }) as CLIPTextModel;
    const c = te.config;
    const ids = randint(0, c.vocabSize, [2, c.maxPositionEmbeddings], { generator: gen, device: o.device }); // [2, 77]: uncond, cond
    const rss_built_kb = rssNow();
    const samples = await timeSteps(o, () => {
      noGrad(() => tidy(() => { te.forward(ids); }));
    });
    return { ...base, samples_ms: samples, maxrss_kb: maxrss(), rss_built_kb, params: te.numParameters() };
  }

  const unet = buildComponent(o.manifest, 'unet', { device: o.device, generator: gen }) as UNet2DConditionModel;
  const sd = pipelineOf({ unet }, o);
  const d = unet.crossAttentionDim!;
  const latent = randn([1, unet.config.in_channels, h, h], { generator: gen, device: o.device }); // [1, 4, h, w]
  const eTgt = randn([1, 77, d], { generator: gen, device: o.device }); // [1, 77, D]
  const rss_built_kb = rssNow();

  if (o.case === 'sample-cfg') {
    // text2img's denoising step, written out as there: [uncond; cond] through the UNet, guidance, DDIM step
    const embeds = cat([randn([1, 77, d], { generator: gen, device: o.device }), eTgt]); // [2, 77, D]
    sd.scheduler.setTimesteps(50);
    const timesteps = sd.scheduler.timesteps;
    let latents: Tensor = keep(latent.clone());
    const samples = await timeSteps(o, (i) => {
      const t = timesteps[i % timesteps.length]!;
      const current = latents;
      const next = noGrad(() => tidy(() => {
        const noisePred = sd.unet.forward(cat([current, current]), t, embeds); // [2, 4, h, w]
        const [uncond, text] = noisePred.chunk(2);
        const eps = uncond!.add(text!.sub(uncond!).mul(7.5));
        return sd.scheduler.step(eps, t, current, { eta: 0, generator: gen }).prevSample;
      }));
      current.dispose();
      latents = keep(next);
    });
    return { ...base, samples_ms: samples, maxrss_kb: maxrss(), rss_built_kb, params: unet.numParameters() };
  }

  // Training steps: the stages themselves, timed between the steps' loss reads (lossReadMs 0: each
  // step's loss is read when it ends; the stage awaits one event-loop turn per step).
  const samples: number[] = [];
  let last = 0; // set just before each stage starts
  const onStep = (step: number) => {
    syncDevice(o.device);
    const now = performance.now();
    if (step > o.warmup) samples.push(now - last);
    last = now;
  };
  const steps = o.warmup + o.iters;
  const noise = generatorNoise(gen, latent);
  if (o.case === 'stageA') {
    last = performance.now();
    const r = await stageA(sd, latent, eTgt, { steps, lr: 1e-3, noise, onStep, lossReadMs: 0 });
    r.eOpt.dispose();
    return { ...base, samples_ms: samples, maxrss_kb: maxrss(), rss_built_kb, params: unet.numParameters(), losses: r.losses };
  }
  if (o.case === 'stageB-full') {
    last = performance.now();
    const r = await stageB(sd, latent, eTgt, { steps, lr: 2e-6, noise, onStep, lossReadMs: 0, train: 'all' });
    return { ...base, samples_ms: samples, maxrss_kb: maxrss(), rss_built_kb, params: unet.numParameters(), losses: r.losses };
  }
  if (o.case === 'stageB-lora') {
    const lora = new LoRA(unet, { rank: 4, targets: 'attention', generator: gen });
    last = performance.now();
    const r = await stageB(sd, latent, eTgt, { steps, lr: 1e-4, noise, onStep, lossReadMs: 0, lora });
    const rss = maxrss();
    return { ...base, samples_ms: samples, maxrss_kb: rss, rss_built_kb, params: unet.numParameters(), losses: r.losses, ...sessionBytes(lora, latent, eTgt) };
  }
  throw new Error(`unknown case ${String(o.case)}`);
}

/**
 * Saves what a LoRA session keeps, as src/pipelines/imagic/session.ts writes it: lora.safetensors
 * (the adapters as `unet.<layer>.lora_A.weight`) and embeddings.safetensors (e_tgt, e_opt, e_uncond,
 * the image latent), into a temporary folder; returns their sizes and removes them.
 */
function sessionBytes(lora: LoRA, latent: Tensor, e: Tensor): { adapter_bytes: number; session_bytes: number; adapter_tensors: number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-bench-sd-'));
  try {
    const adapters = Object.fromEntries(lora.namedParameters().map(([n, t]) => [`unet.${n}`, t]));
    const loraFile = path.join(dir, 'lora.safetensors'), embFile = path.join(dir, 'embeddings.safetensors');
    saveSafetensors(loraFile, adapters, { format: 'imagic-lora', rank: String(lora.rank), alpha: String(lora.alpha), targets: lora.targets });
    saveSafetensors(embFile, { e_tgt: e, e_opt: e, e_uncond: e, latent }, { format: 'imagic-session' });
    const a = statSync(loraFile).size;
    return { adapter_bytes: a, session_bytes: a + statSync(embFile).size, adapter_tensors: Object.keys(adapters).length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const threads = Number(arg('threads') ?? 0);
  if (threads > 0) setNumThreads(threads);
  const name = arg('case') as CaseName;
  if (!CASES.includes(name)) throw new Error(`--case must be one of ${CASES.join(', ')}, got ${String(name)}`);
  const r = await runCase({
    manifest: readManifest(arg('manifest')!), case: name, size: Number(arg('size') ?? 512), iters: Number(arg('iters') ?? 3),
    warmup: Number(arg('warmup') ?? 1), device: (arg('device') ?? 'cpu') as Device, seed: Number(arg('seed') ?? 0),
  });
  console.log(JSON.stringify({ ...r, libtorch: buildInfo().torchVersion, node: process.versions.node }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
