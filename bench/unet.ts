// UNet2DConditionModel forward benchmark: the median wall time of one noGrad forward of the
// TypeScript model, timed in the same run, interleaved, against the same forward written in C++ over
// ATen (native/src/unet-reference.cc) on the same weights, inputs and threads: the difference is
// what the TypeScript model code costs. benchUnet() (TypeScript only) is reusable. See bench/README.md.
//
//   npm run bench:unet -- [--device cpu|cuda] [--dtype float32|float16|bfloat16] [--iters N]
//                         [--rounds N] [--warmup N] [--threads N] [--cases tiny,mid] [--json FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  buildInfo, cuda, Generator, getNumThreads, liveTensors, noGrad, randn, setNumThreads, tidy, type DType, type Device, type Tensor,
} from '../src/engine/index.js';
import { native } from '../src/engine/native.js';
import { wrap } from '../src/engine/tensor.js';
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

/** A randomly initialized UNet and its inputs, built once and shared by the timings. */
export interface PreparedUnet {
  unet: UNet2DConditionModel;
  sample: Tensor; // [B, in, h, w]
  ehs: Tensor; // [B, seq, D]
  timestep: number;
  device: Device;
  dispose(): void;
}

export function prepareUnet(config: UNet2DConditionConfig | Record<string, unknown>, opts: BenchUnetOptions = {}): PreparedUnet {
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
  return {
    unet, sample, ehs, timestep: 500, device,
    dispose: () => {
      sample.dispose();
      ehs.dispose();
      unet.dispose();
    },
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** ms of each of `iters` TypeScript forwards after `warmup` untimed ones (noGrad, one tidy each; CUDA synchronized). */
export function timeTsForward(p: PreparedUnet, iters: number, warmup: number): number[] {
  const samples: number[] = [];
  for (let i = 0; i < warmup; i++) timedTsForward(p);
  for (let i = 0; i < iters; i++) samples.push(timedTsForward(p));
  return samples;
}

/** ms of one TypeScript forward (noGrad, one tidy; CUDA synchronized). */
function timedTsForward(p: PreparedUnet): number {
  const t0 = performance.now();
  noGrad(() => tidy(() => { p.unet.forward(p.sample, p.timestep, p.ehs); }));
  if (isCuda(p.device)) cuda.synchronize(Number(p.device.split(':')[1] ?? 0));
  return performance.now() - t0;
}

/** One turn of the event loop: Node-API runs the finalizers of the handles that were freed (see bench/README.md). */
export const eventLoopTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * As timeTsForward, with one event-loop turn after each forward, as a pipeline that awaits per
 * step; the clock stops after the turn, so the deferred finalization of the forward's handles counts.
 */
export async function timeTsForwardYielding(p: PreparedUnet, iters: number, warmup: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    timedTsForward(p);
    await eventLoopTurn();
    if (i >= warmup) samples.push(performance.now() - t0);
  }
  return samples;
}

export interface UnetReferenceResult {
  medianMs: number;
  samples: number[];
  /** at::get_num_threads() inside the C++ run. */
  threads: number;
  /** The last run's output [B, out, h, w] (the caller disposes it). */
  out: Tensor;
}

/**
 * The same forward in C++ (native/src/unet-reference.cc) on `unet`'s own weights: `warmup` untimed
 * and `iters` timed runs under NoGradGuard, clocked inside C++ with no JavaScript in the loop.
 */
export function unetReference(unet: UNet2DConditionModel, sample: Tensor, timestep: number | Tensor, ehs: Tensor | null,
  opts: { iters?: number; warmup?: number } = {}): UnetReferenceResult {
  const weights = Object.fromEntries(Object.entries(unet.stateDict()).map(([k, t]) => [k, t.handle]));
  const r = native.unetReferenceBench(weights, unet.config, sample.handle, typeof timestep === 'number' ? timestep : timestep.handle,
    ehs?.handle ?? null, opts.iters ?? 1, opts.warmup ?? 0);
  return { medianMs: r.msPerIter, samples: r.samplesMs, threads: r.threads, out: wrap(r.out) };
}

/**
 * Times `iters` forwards (after `warmup` untimed ones) of a randomly initialized UNet built from
 * `config`, each in its own tidy scope under noGrad; on CUDA each is synchronized before the clock
 * stops. Returns the median ms (and the spread) and frees the model.
 */
export function benchUnetDetailed(config: UNet2DConditionConfig | Record<string, unknown>, opts: BenchUnetOptions = {}): BenchUnetResult {
  const p = prepareUnet(config, opts);
  try {
    const samples = timeTsForward(p, opts.iters ?? 10, opts.warmup ?? 2);
    const sorted = [...samples].sort((a, b) => a - b);
    return { medianMs: median(samples), minMs: sorted[0]!, maxMs: sorted[sorted.length - 1]!, samples, parameters: p.unet.numParameters(), shape: p.sample.shape };
  } finally {
    p.dispose();
  }
}

/** The median ms of one forward (see benchUnetDetailed). */
export function benchUnet(config: UNet2DConditionConfig | Record<string, unknown>, opts: BenchUnetOptions = {}): number {
  return benchUnetDetailed(config, opts).medianMs;
}

export interface CompareOptions extends BenchUnetOptions {
  /** Rounds of (TypeScript, C++) timings, rotating which goes first. */
  rounds?: number;
}

export interface CompareResult {
  /** Median over every timed forward of all rounds, in ms: TypeScript with an event-loop turn between forwards. */
  tsMs: number;
  /** TypeScript in a synchronous loop (no event-loop turn between forwards). */
  tsSyncMs: number;
  cppMs: number;
  /** (tsMs - cppMs) / cppMs, in percent; the same per round (its spread); and for tsSyncMs. */
  overheadPct: number;
  roundOverheadPct: number[];
  syncOverheadPct: number;
  ts: number[];
  tsSync: number[];
  cpp: number[];
  threads: number;
  parameters: number;
  /** max |TS out - C++ out| (they compute the same thing: 0 expected). */
  maxAbsDiff: number;
}

/**
 * TypeScript vs C++ on one model and input, interleaved: each round runs one untimed and `iters`
 * timed forwards in each of three ways (TS yielding to the event loop between forwards, TS in a
 * synchronous loop, C++), rotating which goes first.
 */
export async function compareUnetWithCpp(config: UNet2DConditionConfig | Record<string, unknown>, opts: CompareOptions = {}): Promise<CompareResult> {
  const p = prepareUnet(config, opts);
  const iters = opts.iters ?? 5, rounds = opts.rounds ?? 5;
  const ts: number[] = [], tsSync: number[] = [], cpp: number[] = [], roundOverheadPct: number[] = [];
  let threads = 0;
  try {
    // Warm-up until the C heap has grown to its steady size (the TypeScript forward needs several
    // forwards for that; timing them would time page faults; see bench/README.md).
    await timeTsForwardYielding(p, 0, opts.warmup ?? 8);
    timeTsForward(p, 0, iters + 1);
    await eventLoopTurn();
    unetReference(p.unet, p.sample, p.timestep, p.ehs, { iters: 1, warmup: 2 }).out.dispose();
    for (let r = 0; r < rounds; r++) {
      let tsRound: number[] = [], cppRound: number[] = [];
      const sides: (() => Promise<void>)[] = [
        async () => { tsRound = await timeTsForwardYielding(p, iters, 1); },
        async () => {
          tsSync.push(...timeTsForward(p, iters, 1));
          await eventLoopTurn();
        },
        async () => {
          const res = unetReference(p.unet, p.sample, p.timestep, p.ehs, { iters, warmup: 1 });
          res.out.dispose();
          threads = res.threads;
          cppRound = res.samples;
          await eventLoopTurn();
        },
      ];
      for (let k = 0; k < sides.length; k++) await sides[(k + r) % sides.length]!();
      ts.push(...tsRound);
      cpp.push(...cppRound);
      roundOverheadPct.push((median(tsRound) / median(cppRound) - 1) * 100);
    }
    const maxAbsDiff = tidy(() => {
      const a = noGrad(() => p.unet.forward(p.sample, p.timestep, p.ehs));
      const b = unetReference(p.unet, p.sample, p.timestep, p.ehs).out;
      return a.sub(b).abs().max().item();
    });
    const tsMs = median(ts), tsSyncMs = median(tsSync), cppMs = median(cpp);
    return {
      tsMs, tsSyncMs, cppMs, overheadPct: (tsMs / cppMs - 1) * 100, roundOverheadPct, syncOverheadPct: (tsSyncMs / cppMs - 1) * 100,
      ts, tsSync, cpp, threads, parameters: p.unet.numParameters(), maxAbsDiff,
    };
  } finally {
    p.dispose();
  }
}

export interface BenchCase { name: string; what: string; config: Record<string, unknown>; opts: CompareOptions }

/** The cases this script times by default. */
export function benchCases(root: string): BenchCase[] {
  const tiny = JSON.parse(readFileSync(path.join(root, 'tests', 'fixtures', 'golden', 'tiny-sd', 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
  return [
    { name: 'tiny', what: 'tiny-sd fixture UNet (32/64/64 ch, 2 heads), 2x4x8x8, cond 2x77x32', config: tiny, opts: { batch: 2, height: 8, width: 8, iters: 10, rounds: 6, warmup: 10 } },
    { name: 'mid', what: 'mid UNet (64/128/256 ch, 4 heads), 2x4x32x32, cond 2x77x128', config: MID_UNET_CONFIG, opts: { batch: 2, height: 32, width: 32, iters: 3, rounds: 8, warmup: 8 } },
  ];
}

/** The mid-size case: SD v1's layout (cross-attention in the outer blocks) at a fifth of its width. */
export const MID_UNET_CONFIG: Record<string, unknown> = {
  block_out_channels: [64, 128, 256], down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'], cross_attention_dim: 128, attention_head_dim: 4,
  norm_num_groups: 32, layers_per_block: 2, sample_size: 32,
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const fmt = (x: number, d = 2) => x.toFixed(d);

async function main(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '..', '..') : path.resolve(here, '..');
  if (arg('threads')) setNumThreads(Number(arg('threads')));
  const device = (arg('device') ?? 'cpu') as Device, dtype = (arg('dtype') ?? 'float32') as DType;
  const only = arg('cases')?.split(',');
  const info = buildInfo();
  const load0 = os.loadavg()[0]!;
  console.log(`UNet forward, TypeScript vs C++: libtorch ${info.torchVersion}, Node ${process.versions.node}, ${device}, ${dtype}, ` +
    `${getNumThreads()} threads, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`);
  const results: Record<string, CompareResult & { what: string }> = {};
  const live = liveTensors();
  const rows: string[][] = [['case', 'TS ms', 'C++ ms', 'overhead %', 'per round %', 'best TS / C++ ms', 'best overhead %', 'TS sync-loop ms', 'sync overhead %', 'max|diff|']];
  for (const c of benchCases(root)) {
    if (only && !only.includes(c.name)) continue;
    const iters = arg('iters') ? Number(arg('iters')) : c.opts.iters;
    const rounds = arg('rounds') ? Number(arg('rounds')) : c.opts.rounds;
    const warmup = arg('warmup') ? Number(arg('warmup')) : c.opts.warmup;
    const r = await compareUnetWithCpp(c.config, { ...c.opts, iters, rounds, warmup, device, dtype });
    results[c.name] = { ...r, what: c.what };
    const spread = `${fmt(Math.min(...r.roundOverheadPct), 1)} .. ${fmt(Math.max(...r.roundOverheadPct), 1)}`;
    const bestTs = Math.min(...r.ts), bestCpp = Math.min(...r.cpp);
    rows.push([c.name, fmt(r.tsMs), fmt(r.cppMs), fmt(r.overheadPct, 1), spread, `${fmt(bestTs)} / ${fmt(bestCpp)}`,
      fmt((bestTs / bestCpp - 1) * 100, 1), fmt(r.tsSyncMs), fmt(r.syncOverheadPct, 1), r.maxAbsDiff.toExponential(1)]);
    console.log(`  ${c.name}: ${c.what}; ${(r.parameters / 1e6).toFixed(2)} M params; ${r.ts.length} timed forwards per way; at::get_num_threads() = ${r.threads}`);
  }
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((row) => row[j]!.length)));
  for (const row of rows) console.log(`| ${row.map((v, j) => v.padStart(widths[j]!)).join(' | ')} |`);
  console.log(`load average (1 min): ${load0.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end`);
  if (liveTensors() !== live) console.warn(`warning: ${liveTensors() - live} tensors leaked`);
  const json = arg('json');
  if (json) writeFileSync(json, JSON.stringify({ device, dtype, threads: getNumThreads(), node: process.versions.node, torch: info.torchVersion, results }, null, 1));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
