// One configuration of the SDXL memory benchmark (bench/sdxl-memory.ts), measured in this process:
// builds the SDXL UNet (or VAE) with random weights, runs one Imagic-like step of the project's own code
// (denoisingStep of src/pipelines/imagic/stages.ts; LoRA of src/nn/lora.ts) and prints one JSON line
// with the resident memory it added: the peak (VmHWM, reset after the build through /proc/self/clear_refs)
// and what the forward pass leaves saved for the backward.
//
//   node dist/bench/sdxl-memory-case.js --configs tests/fixtures/golden/sdxl-manifest.json \
//     --case '{"kind":"stageA","size":16,"ckpt":false,"dtype":"bfloat16"}' --steps 2
//
// Run it with MALLOC_MMAP_THRESHOLD_ set (the driver does): a fixed threshold sends every large block to
// mmap and back to the kernel when freed, so that RSS follows the live tensors (glibc's default, a
// threshold that grows with freed blocks, keeps freed pages in the heap and hides reuse).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  enableGrad, Generator, liveTensors, mseLoss, noGrad, randn, scaledDotProductAttention, setNumThreads, tidy, type DType, type Tensor,
} from '../src/engine/index.js';
import { LoRA, type LoRATargets } from '../src/nn/index.js';
import { UNet2DConditionModel } from '../src/models/unet/index.js';
import { AutoencoderKL, parseAutoencoderKLConfig } from '../src/models/vae/index.js';
import { DDIMScheduler } from '../src/schedulers/index.js';
import { denoisingStep } from '../src/pipelines/imagic/stages.js';
import type { StableDiffusion } from '../src/pipelines/stable-diffusion.js';
import { readConfigs, type SdxlConfigs } from './sdxl-accounting.js';

/**
 * - stageA: gradient to the text embedding [1, 77, D] and the pooled one [1, P], UNet frozen, as
 *   stageA() trains them (with checkpointing too: the UNet's segments take the pooled one as an input).
 * - stageB-full: gradient to every UNet weight (train: 'all').
 * - stageB-lora: LoRA rank 4 on `targets`, the UNet frozen.
 * - sample: stage C's guided step, [uncond; cond] (batch 2) through the UNet without a graph.
 * - vae-decode: the VAE decoder without a graph, [1, 4, h, w] -> [1, 3, 8h, 8w].
 * - sdpa: one self-attention, fwd + bwd, [1, heads, N, 64], to see whether the CPU kernel keeps an N x N matrix.
 */
export type CaseKind = 'stageA' | 'stageB-full' | 'stageB-lora' | 'sample' | 'vae-decode' | 'sdpa';

export interface MemoryCase {
  kind: CaseKind;
  /** Latent height = width (sdpa: the token count N). */
  size: number;
  ckpt: boolean;
  dtype: DType;
  targets?: LoRATargets;
  rank?: number;
}

export interface CaseMeasurement {
  case: MemoryCase;
  /** RSS once the model and inputs are built (the baseline), bytes. */
  rss_built: number;
  /** Peak RSS minus the baseline over the measured (last) step, bytes: the step's own memory. */
  step_peak: number;
  /** Each step's peak minus the baseline (the first may include one-time allocations), bytes. */
  step_peaks: number[];
  /** RSS minus the baseline after a forward pass with the graph kept (what autograd saved), bytes; training, no checkpointing only. */
  saved_after_forward?: number;
  /** Peak of that forward pass minus the baseline, bytes. */
  forward_peak?: number;
  /** RSS minus the baseline after the step (the gradients it left), bytes. */
  grads_after_step?: number;
  /** Parameters of the model that was built; of the adapters (LoRA). */
  params: number;
  adapter_params?: number;
  step_ms: number[];
  /** RSS minus the baseline after each step: what it left behind (C-heap pages, caches), bytes. */
  retained: number[];
  live_tensors: number;
  loss?: number;
}

const KB = 1024;

/** VmRSS and VmHWM of this process, bytes. */
export function procMemory(): { rss: number; hwm: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * KB;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** Resets VmHWM to the current RSS (Linux >= 4.0). */
export function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

/**
 * The UNet on 'meta', then every parameter made a view of one shared random buffer (as large as the
 * largest parameter): the layers, shapes and dtypes are the real ones, so are the activations, but the
 * weights take megabytes instead of 10.3 GB (float32), and building takes no time. Not for training the
 * weights (their gradients would be separate, full-size tensors anyway).
 */
export function sharedWeightsUNet(configs: SdxlConfigs, dtype: DType, gen: Generator): UNet2DConditionModel {
  const unet = new UNet2DConditionModel(configs.unet, { device: 'meta', dtype }).eval();
  const tensors = [...unet.namedParameters(), ...unet.namedBuffers()];
  const largest = Math.max(...tensors.map(([, t]) => t.numel));
  const buf = noGrad(() => tidy(() => randn([largest], { generator: gen }).mul(0.02).to(dtype))); // [largest]
  noGrad(() => {
    for (const [, t] of tensors) tidy(() => { t.assign_(buf.narrow(0, 0, t.numel).view(t.shape)); });
  });
  buf.dispose();
  return unet;
}

function pipelineOf(unet: UNet2DConditionModel, configs: SdxlConfigs, dtype: DType): StableDiffusion {
  return { tokenizer: null, root: '(random weights)', dtype, device: 'cpu', unet, scheduler: DDIMScheduler.fromConfig(configs.scheduler) } as unknown as StableDiffusion;
}

/** Measures one configuration in this process (call it in a fresh process: the peak is process-wide). */
export function measureCase(configs: SdxlConfigs, c: MemoryCase, steps: number): CaseMeasurement {
  const gen = new Generator(0);
  const step_peaks: number[] = [];
  const step_ms: number[] = [];
  const retained: number[] = [];
  // each step's peak over the RSS just before it (a step may leave C-heap pages behind: reported as retained)
  const timed = (fn: () => void) => {
    const before = procMemory().rss;
    resetPeak();
    const t0 = performance.now();
    fn();
    step_ms.push(performance.now() - t0);
    const m = procMemory();
    step_peaks.push(m.hwm - before);
    retained.push(m.rss - base);
  };
  let base = 0;

  if (c.kind === 'sdpa') {
    // [1, heads, N, 64] as SDXL's level-1 self-attention (10 heads of 64); an N x N score matrix would be heads * N^2 elements
    const q = randn([1, 10, c.size, 64], { generator: gen, dtype: c.dtype }), k = randn(q.shape, { generator: gen, dtype: c.dtype }), v = randn(q.shape, { generator: gen, dtype: c.dtype });
    for (const t of [q, k, v]) t.requiresGrad_(true);
    base = procMemory().rss;
    for (let i = 0; i < steps; i++) timed(() => tidy(() => { enableGrad(() => scaledDotProductAttention(q, k, v).float().square().sum().backward()); for (const t of [q, k, v]) t.grad = null; }));
    return { case: c, rss_built: base, step_peak: step_peaks.at(-1)!, step_peaks, params: 0, step_ms, retained, live_tensors: liveTensors() };
  }

  if (c.kind === 'vae-decode') {
    const vae = tidy(() => new AutoencoderKL(parseAutoencoderKLConfig(configs.vae), { dtype: c.dtype, generator: gen }).eval());
    vae.requiresGrad_(false);
    const z = randn([1, vae.config.latent_channels, c.size, c.size], { generator: gen, dtype: c.dtype }); // [1, 4, h, w]
    base = procMemory().rss;
    for (let i = 0; i < steps; i++) timed(() => noGrad(() => tidy(() => { vae.decode(z.div(vae.config.scaling_factor)); })));
    return { case: c, rss_built: base, step_peak: step_peaks.at(-1)!, step_peaks, params: vae.numParameters(), step_ms, retained, live_tensors: liveTensors() };
  }

  const unet = c.kind === 'stageB-full' ? tidy(() => new UNet2DConditionModel(configs.unet, { dtype: c.dtype, generator: gen }).eval()) : sharedWeightsUNet(configs, c.dtype, gen);
  unet.requiresGrad_(false);
  const sd = pipelineOf(unet, configs, c.dtype);
  const h = c.size;
  const d = unet.crossAttentionDim!;
  const pooledDim = Number(unet.config.projection_class_embeddings_input_dim) - 6 * Number(unet.config.addition_time_embed_dim);
  const latent = randn([1, unet.config.in_channels, h, h], { generator: gen, dtype: c.dtype }); // [1, 4, h, w]
  const noise = randn(latent.shape, { generator: gen, dtype: c.dtype });
  const timeIds = noGrad(() => tidy(() => randn([1, 6], { generator: gen }).abs().mul(8 * h))); // [1, 6] (values do not matter)
  // stage A keeps float32 leaves (stageA(): emb, pooled) and casts them to the weights' dtype per step
  const emb = randn([1, 77, d], { generator: gen }); // [1, 77, D]
  const pooled = randn([1, pooledDim], { generator: gen }); // [1, P]
  let lora: LoRA | null = null;
  let trainable: Tensor[] = [];
  if (c.kind === 'stageA') {
    emb.requiresGrad_(true);
    pooled.requiresGrad_(true);
    trainable = [emb, pooled];
  } else if (c.kind === 'stageB-full') {
    unet.requiresGrad_(true);
    unet.train();
    trainable = unet.parameters();
  } else if (c.kind === 'stageB-lora') {
    lora = noGrad(() => tidy(() => new LoRA(unet, { rank: c.rank ?? 4, targets: c.targets ?? 'attention', generator: gen })));
    lora.requiresGrad_(true);
    unet.train();
    trainable = lora.parameters();
  }
  const clearGrads = () => { for (const p of trainable) p.grad = null; };
  const condOf = () => emb.to(c.dtype); // [1, 77, D], in the graph when emb requires grad
  const addedOf = () => ({ textEmbeds: pooled.to(c.dtype), timeIds });
  const t = 500;
  base = procMemory().rss;
  const out: Partial<CaseMeasurement> = {};

  if (c.kind === 'sample') {
    const ctx = noGrad(() => tidy(() => randn([2, 77, d], { generator: gen, dtype: c.dtype }))); // [uncond; cond]
    const added = noGrad(() => tidy(() => ({ textEmbeds: randn([2, pooledDim], { generator: gen, dtype: c.dtype }), timeIds: timeIds.expand(2, -1).contiguous() })));
    base = procMemory().rss;
    for (let i = 0; i < steps; i++) {
      timed(() => noGrad(() => tidy(() => {
        const [u, tx] = unet.forward(latent.expand(2, -1, -1, -1), t, ctx, added).chunk(2); // [2, 4, h, w]
        u!.add(tx!.sub(u!).mul(7.5));
      })));
    }
  } else {
    if (!c.ckpt) {
      // what the forward pass leaves for the backward: the graph kept, then dropped without a backward
      resetPeak();
      tidy(() => enableGrad(() => {
        const pred = unet.forward(sd.scheduler.addNoise(latent, noise, [t]), t, condOf(), addedOf());
        const l = mseLoss(pred.float(), noise.float());
        const m = procMemory();
        out.saved_after_forward = m.rss - base;
        out.forward_peak = m.hwm - base;
        void l;
      }));
    }
    for (let i = 0; i < steps; i++) {
      clearGrads(); // zeroGrad(): set to none, as the stages' Adam does
      timed(() => {
        const l = tidy(() => denoisingStep(sd, latent, condOf(), t, noise, { gradientCheckpointing: c.ckpt, added: addedOf() }));
        out.loss = l.item();
        l.dispose();
      });
      out.grads_after_step = procMemory().rss - base;
    }
    clearGrads();
  }
  return {
    case: c, rss_built: base, step_peak: step_peaks.at(-1)!, step_peaks, params: unet.numParameters(),
    ...(lora ? { adapter_params: lora.numParameters() } : {}), step_ms, retained, live_tensors: liveTensors(), ...out,
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  setNumThreads(Number(arg('threads') ?? 1));
  const configs = readConfigs(arg('configs') ?? 'tests/fixtures/golden/sdxl-manifest.json');
  const c = JSON.parse(arg('case')!) as MemoryCase;
  const r = measureCase(configs, c, Number(arg('steps') ?? 2));
  console.log(JSON.stringify(r));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
