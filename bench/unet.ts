// UNet2DConditionModel forward benchmark (TypeScript side): the median wall time of one noGrad
// forward after warm-up, for the tiny-sd fixture config and a mid-size config; benchUnet() is reusable.
//
//   node dist/bench/unet.js [--device cpu|cuda] [--dtype float32|float16|bfloat16] [--iters N]
//                           [--warmup N] [--threads N] [--cases tiny,mid] [--json FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  buildInfo, cuda, Generator, getNumThreads, liveTensors, noGrad, randn, setNumThreads, tidy, type DType, type Device,
} from '../src/engine/index.js';
import { UNet2DConditionModel, parseUNetConfig, type UNet2DConditionConfig } from '../src/models/unet/index.js';

export interface BenchUnetOptions {
  batch?: number;
  /** Latent height and width (default: the config's sample_size, else 64). */
  height?: number;
  width?: number;
  /** Text length of the conditioning (77 for CLIP). */
  seqLen?: number;
  device?: Device;
  dtype?: DType;
  warmup?: number;
  iters?: number;
  seed?: number;
}

export interface BenchUnetResult {
  /** Median of the timed forwards, in ms. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  samples: number[];
  parameters: number;
  shape: number[];
}

const isCuda = (d: Device) => d.startsWith('cuda');

/**
 * Times `iters` forwards (after `warmup` untimed ones) of a randomly initialized UNet built from
 * `config`, each in its own tidy scope under noGrad; on CUDA each is synchronized before the clock
 * stops. Returns the median ms (and the spread) and frees the model.
 */
export function benchUnetDetailed(config: UNet2DConditionConfig | Record<string, unknown>, opts: BenchUnetOptions = {}): BenchUnetResult {
  const c = parseUNetConfig(config as Record<string, unknown>);
  const device = opts.device ?? 'cpu', dtype = opts.dtype ?? 'float32';
  const batch = opts.batch ?? 1;
  const h = opts.height ?? c.sample_size ?? 64, w = opts.width ?? h;
  const crossDim = Array.isArray(c.cross_attention_dim) ? c.cross_attention_dim[0]! : c.cross_attention_dim;
  const gen = new Generator(opts.seed ?? 0);
  // built in a scope: the initializers' temporaries are freed now, the (kept) parameters stay
  const unet = tidy(() => new UNet2DConditionModel(c, { generator: gen }).to({ device, dtype }).eval());
  const [sample, ehs] = tidy(() => [
    randn([batch, c.in_channels, h, w], { generator: gen }).to({ device, dtype }), // [B, 4, h, w]
    randn([batch, opts.seqLen ?? 77, crossDim], { generator: gen }).to({ device, dtype }), // [B, 77, D]
  ]);
  const sync = () => { if (isCuda(device)) cuda.synchronize(Number(device.split(':')[1] ?? 0)); };
  const run = () => noGrad(() => tidy(() => { unet.forward(sample, 500, ehs); }));
  try {
    for (let i = 0; i < (opts.warmup ?? 2); i++) run();
    sync();
    const samples: number[] = [];
    for (let i = 0; i < (opts.iters ?? 10); i++) {
      const t0 = performance.now();
      run();
      sync();
      samples.push(performance.now() - t0);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const medianMs = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    return { medianMs, minMs: sorted[0]!, maxMs: sorted[sorted.length - 1]!, samples, parameters: unet.numParameters(), shape: [batch, c.in_channels, h, w] };
  } finally {
    sample.dispose();
    ehs.dispose();
    unet.dispose();
  }
}

/** The median ms of one forward (see benchUnetDetailed). */
export function benchUnet(config: UNet2DConditionConfig | Record<string, unknown>, opts: BenchUnetOptions = {}): number {
  return benchUnetDetailed(config, opts).medianMs;
}

/** The cases this script times by default. */
export function benchCases(root: string): { name: string; what: string; config: Record<string, unknown>; opts: BenchUnetOptions }[] {
  const tiny = JSON.parse(readFileSync(path.join(root, 'tests', 'fixtures', 'golden', 'tiny-sd', 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
  const mid = {
    block_out_channels: [64, 128, 256], down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'], cross_attention_dim: 128, attention_head_dim: 8,
    norm_num_groups: 32, layers_per_block: 2, sample_size: 32,
  };
  return [
    { name: 'tiny', what: 'tiny-sd fixture UNet (32/64/64 ch), 2x4x8x8, cond 2x77x32', config: tiny, opts: { batch: 2, height: 8, width: 8, iters: 20, warmup: 3 } },
    { name: 'mid', what: 'mid UNet (64/128/256 ch, 8 heads), 2x4x32x32, cond 2x77x128', config: mid, opts: { batch: 2, height: 32, width: 32, iters: 10, warmup: 2 } },
  ];
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function main(): void {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '..', '..') : path.resolve(here, '..');
  if (arg('threads')) setNumThreads(Number(arg('threads')));
  const device = (arg('device') ?? 'cpu') as Device, dtype = (arg('dtype') ?? 'float32') as DType;
  const only = arg('cases')?.split(',');
  const info = buildInfo();
  console.log(`UNet forward benchmark: libtorch ${info.torchVersion}, ${device}, ${dtype}, ${getNumThreads()} threads, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`);
  const results: Record<string, BenchUnetResult & { what: string }> = {};
  const live = liveTensors();
  for (const c of benchCases(root)) {
    if (only && !only.includes(c.name)) continue;
    const iters = arg('iters') ? Number(arg('iters')) : c.opts.iters;
    const warmup = arg('warmup') ? Number(arg('warmup')) : c.opts.warmup;
    const r = benchUnetDetailed(c.config, { ...c.opts, iters, warmup, device, dtype });
    results[c.name] = { ...r, what: c.what };
    console.log(`  ${c.name.padEnd(5)} median ${r.medianMs.toFixed(2).padStart(9)} ms  (min ${r.minMs.toFixed(2)}, max ${r.maxMs.toFixed(2)}, n=${r.samples.length}, ${(r.parameters / 1e6).toFixed(2)} M params)  ${c.what}`);
  }
  if (liveTensors() !== live) console.warn(`warning: ${liveTensors() - live} tensors leaked`);
  const json = arg('json');
  if (json) writeFileSync(json, JSON.stringify({ device, dtype, threads: getNumThreads(), results }, null, 1));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
