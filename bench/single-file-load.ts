// Single-file vs diffusers-folder loading: the full-size SD v1 model with random weights (seeded) is
// written once as a diffusers folder and once as an LDM single file holding the same tensors, and
// loadStableDiffusion() of each is timed, interleaved. See bench/README.md, "Single-file loading".
//
//   npm run bench:single-file -- [--dtype float16|float32|bfloat16] [--load-dtype float32] [--rounds 5]
//                                [--threads N] [--seed 0] [--dir DIR] [--keep] [--reuse] [--json FILE] [--manifest FILE]
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  arange, buildInfo, DTYPE_BYTES, Generator, getNumThreads, liveTensors, noGrad, randn, setNumThreads, tensor, tidy, type DType, type Tensor,
} from '../src/engine/index.js';
import { SCHEDULE_BUFFERS } from '../src/io/single-file/keys.js';
import { ldmLayout, ldmTensors, type ComponentTensor, type Sd1Component } from '../src/io/single-file/to-ldm.js';
import { writeSafetensorsStreamed, type StreamedTensor } from '../src/io/safetensors.js';
import { disposeStableDiffusion, loadStableDiffusion, type LoadStableDiffusionOptions, type StableDiffusion } from '../src/pipelines/stable-diffusion.js';
import { fixturePath, repoRoot } from '../tests/fixtures.js';
import { readManifest, type Manifest } from './sd-case.js';

const COMPONENTS: Sd1Component[] = ['text_encoder', 'unet', 'vae'];
const WEIGHTS: Record<Sd1Component, string> = { unet: 'diffusion_pytorch_model.safetensors', vae: 'diffusion_pytorch_model.safetensors', text_encoder: 'model.safetensors' };
const CLASS: Record<Sd1Component | 'scheduler', [string, string]> = {
  unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'], text_encoder: ['transformers', 'CLIPTextModel'], scheduler: ['diffusers', 'DDIMScheduler'],
};
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export interface WrittenPair {
  folder: string;
  file: string;
  /** Bytes of the model's tensors as stored (what either load reads). */
  weightBytes: number;
  /** Sizes on disk: the folder's three weight files together, and the single file. */
  folderBytes: number;
  fileBytes: number;
  tensors: number;
  seconds: number;
}

/**
 * Every weight of the manifest as a diffusers-side tensor: N(0, 1) in `dtype`, each from its own seed
 * (seed, index), so the folder and the single file get the same values without holding them.
 */
function modelTensors(m: Manifest, dtype: DType, seed: number): ComponentTensor[] {
  const gen = new Generator(seed);
  let index = 0;
  return COMPONENTS.flatMap((component) => Object.entries(m.state_dict_shapes[component]).map(([key, shape]) => {
    const s = seed * 1_000_003 + index++;
    return { component, key, dtype, shape, data: () => randn(shape, { dtype, generator: gen.manualSeed(s) }) };
  }));
}

/** The non-weight tensors real SD v1 files carry: the DDPM schedule buffers [1000] and CLIP's position_ids [1, 77]. */
function ldmExtras(scheduler: Record<string, unknown>, dtype: DType): StreamedTensor[] {
  const n = scheduler.num_train_timesteps as number;
  const [b0, b1] = [Math.sqrt(scheduler.beta_start as number), Math.sqrt(scheduler.beta_end as number)];
  const betas = Array.from({ length: n }, (_, i) => (b0 + ((b1 - b0) * i) / (n - 1)) ** 2); // scaled_linear
  const ac: number[] = [];
  betas.forEach((b, i) => ac.push((i ? ac[i - 1]! : 1) * (1 - b)));
  const prev = [1, ...ac.slice(0, -1)];
  const post = betas.map((b, i) => (b * (1 - prev[i]!)) / (1 - ac[i]!));
  const values: Record<string, number[]> = {
    betas, alphas_cumprod: ac, alphas_cumprod_prev: prev, sqrt_alphas_cumprod: ac.map(Math.sqrt),
    sqrt_one_minus_alphas_cumprod: ac.map((a) => Math.sqrt(1 - a)), log_one_minus_alphas_cumprod: ac.map((a) => Math.log(1 - a)),
    sqrt_recip_alphas_cumprod: ac.map((a) => Math.sqrt(1 / a)), sqrt_recipm1_alphas_cumprod: ac.map((a) => Math.sqrt(1 / a - 1)),
    posterior_variance: post, posterior_log_variance_clipped: post.map((p, i) => Math.log(i === 0 ? post[1]! : p)),
    posterior_mean_coef1: betas.map((b, i) => (b * Math.sqrt(prev[i]!)) / (1 - ac[i]!)),
    posterior_mean_coef2: ac.map((a, i) => ((1 - prev[i]!) * Math.sqrt(1 - betas[i]!)) / (1 - a)),
  };
  for (const k of Object.keys(values)) if (!SCHEDULE_BUFFERS.has(k)) throw new Error(`${k} is not one of the loader's schedule buffers`);
  const out: StreamedTensor[] = Object.entries(values).map(([name, v]) => ({ name, dtype, shape: [n], data: () => tensor(v, { dtype }) }));
  out.push({ name: 'cond_stage_model.transformer.text_model.embeddings.position_ids', dtype: 'int64', shape: [1, 77], data: () => tidy(() => arange(77).reshape([1, 77])) });
  return out;
}

/** Writes the manifest's model with random weights as a diffusers folder and as an LDM single file under `dir`. */
export function writeModelPair(m: Manifest, dir: string, o: { dtype: DType; seed: number }): WrittenPair {
  const start = performance.now();
  const folder = path.join(dir, 'sd-v1-diffusers');
  const file = path.join(dir, 'sd-v1-ldm.safetensors');
  mkdirSync(folder, { recursive: true });
  const json = (p: string, v: unknown) => writeFileSync(p, JSON.stringify(v, null, 2));
  json(path.join(folder, 'model_index.json'), { _class_name: 'StableDiffusionPipeline', ...Object.fromEntries(Object.entries(CLASS)) });
  mkdirSync(path.join(folder, 'scheduler'), { recursive: true });
  json(path.join(folder, 'scheduler', 'scheduler_config.json'), { _class_name: 'DDIMScheduler', ...m.configs.scheduler });
  const tensors = modelTensors(m, o.dtype, o.seed);
  const meta = { format: 'pt' };
  let folderBytes = 0;
  for (const c of COMPONENTS) {
    mkdirSync(path.join(folder, c), { recursive: true });
    json(path.join(folder, c, 'config.json'), c === 'text_encoder' ? m.configs[c] : { _class_name: CLASS[c][1], ...m.configs[c] });
    // the text encoder under transformers 4.x names (text_model.*), as SD v1 folders on the Hub store it
    const specs = tensors.filter((t) => t.component === c).map((t) => ({ ...t, name: c === 'text_encoder' ? `text_model.${t.key}` : t.key })).sort(byName);
    const f = path.join(folder, c, WEIGHTS[c]);
    writeSafetensorsStreamed(f, specs, meta);
    folderBytes += statSync(f).size;
  }
  const layout = ldmLayout(m.configs.unet, m.configs.vae);
  writeSafetensorsStreamed(file, [...ldmTensors(tensors, layout), ...ldmExtras(m.configs.scheduler, o.dtype)].sort(byName));
  const weightBytes = tensors.reduce((n, t) => n + numel(t.shape) * DTYPE_BYTES[t.dtype], 0);
  return {
    folder, file, weightBytes, folderBytes, fileBytes: statSync(file).size, tensors: tensors.length,
    seconds: (performance.now() - start) / 1000,
  };
}

/** A float64 sum per weight: equal for two loads exactly when they hold the same numbers (same dtype, same order). */
function checksums(sd: StableDiffusion): Map<string, number> {
  const out = new Map<string, number>();
  const parts: [string, { stateDict(): Record<string, Tensor> }][] = [['unet', sd.unet], ['vae', sd.vae], ['text_encoder', sd.textEncoder]];
  for (const [name, module] of parts) {
    for (const [k, t] of Object.entries(module.stateDict())) out.set(`${name}.${k}`, noGrad(() => tidy(() => t.sum(undefined, { dtype: 'float64' }).item())));
  }
  return out;
}

export interface LoadSample {
  round: number;
  which: 'folder' | 'single';
  seconds: number;
  /** loadStableDiffusion's own log lines (per component / the single file's summary). */
  log: string[];
}

export interface TimingOptions {
  rounds: number;
  /** The load dtype (the CLI's default: float32). */
  loadDtype: DType;
  /** Options a single file needs beyond the full-size defaults (tiny test models: the YAML, text heads). */
  singleFile?: Pick<LoadStableDiffusionOptions, 'config' | 'textEncoderHeads'>;
}

export interface Stats {
  best: number;
  median: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * One untimed load of each (page cache warm; their weights compared: the same numbers), then `rounds`
 * rounds of both, the first of a round alternating. Each model is disposed before the next load and
 * liveTensors() must be back at its start value.
 */
export async function timeLoads(pair: Pick<WrittenPair, 'folder' | 'file'>, o: TimingOptions): Promise<{ samples: LoadSample[]; folder: Stats; single: Stats; checked: number }> {
  const start = liveTensors();
  const load = async (which: 'folder' | 'single', round: number, check?: (sd: StableDiffusion) => void): Promise<LoadSample> => {
    const log: string[] = [];
    const opts: LoadStableDiffusionOptions = { dtype: o.loadDtype, onLog: (l) => log.push(l), ...(which === 'single' ? o.singleFile : {}) };
    const t0 = performance.now();
    const sd = await loadStableDiffusion(which === 'folder' ? pair.folder : pair.file, opts);
    const seconds = (performance.now() - t0) / 1000;
    try {
      check?.(sd);
    } finally {
      disposeStableDiffusion(sd);
    }
    if (liveTensors() !== start) throw new Error(`${which} load, round ${round}: ${liveTensors() - start} tensors left after dispose`);
    return { round, which, seconds, log };
  };
  let reference = new Map<string, number>();
  await load('folder', -1, (sd) => {
    reference = checksums(sd);
  });
  await load('single', -1, (sd) => {
    const mine = checksums(sd);
    const bad = [...reference].filter(([k, v]) => mine.get(k) !== v).map(([k]) => k);
    if (mine.size !== reference.size || bad.length) throw new Error(`the single file does not load to the folder's weights: ${bad.slice(0, 10).join(', ')} (${mine.size} vs ${reference.size} tensors)`);
  });
  const samples: LoadSample[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const order: ('folder' | 'single')[] = r % 2 === 0 ? ['folder', 'single'] : ['single', 'folder'];
    for (const which of order) samples.push(await load(which, r));
  }
  const stats = (w: string) => {
    const xs = samples.filter((s) => s.which === w).map((s) => s.seconds);
    return xs.length ? { best: Math.min(...xs), median: median(xs) } : { best: NaN, median: NaN };
  };
  return { samples, folder: stats('folder'), single: stats('single'), checked: reference.size };
}

export interface SingleFileBenchResult {
  date: string;
  machine: { cpu: string; cores: number; ramGB: number; node: string; libtorch: string; threads: number };
  dtype: DType;
  loadDtype: DType;
  rounds: number;
  seed: number;
  sizes: Omit<WrittenPair, 'folder' | 'file' | 'seconds'> & { writeSeconds: number };
  folder: Stats & { gbPerSecond: number };
  single: Stats & { gbPerSecond: number };
  /** single / folder: of the best rounds, of the medians, and the median of the per-round ratios (paired: the same machine load). */
  ratio: Stats & { pairedMedian: number };
  checkedTensors: number;
  samples: LoadSample[];
}

/** The median over rounds of single / folder within the round. */
function pairedMedian(samples: LoadSample[]): number {
  const rounds = [...new Set(samples.map((s) => s.round))];
  const at = (r: number, w: string) => samples.find((s) => s.round === r && s.which === w)!.seconds;
  return rounds.length ? median(rounds.map((r) => at(r, 'single') / at(r, 'folder'))) : NaN;
}

export interface SingleFileBenchOptions extends TimingOptions {
  manifest: Manifest;
  dir: string;
  dtype: DType;
  seed: number;
  /** Use files already under `dir` (written by an earlier run with --keep, same dtype and seed). */
  reuse?: boolean;
  onLine?: (line: string) => void;
}

/** Writes (or reuses) the pair under `dir` and times both loads. */
export async function runSingleFileBench(o: SingleFileBenchOptions): Promise<SingleFileBenchResult> {
  const say = o.onLine ?? (() => {});
  const stamp = path.join(o.dir, 'written.json');
  let pair: WrittenPair;
  if (o.reuse && existsSync(stamp) && JSON.parse(readFileSync(stamp, 'utf8')).dtype === o.dtype && JSON.parse(readFileSync(stamp, 'utf8')).seed === o.seed) {
    pair = JSON.parse(readFileSync(stamp, 'utf8')).pair as WrittenPair;
    say(`reusing ${pair.folder} and ${pair.file}`);
  } else {
    say(`writing the model (${o.dtype}) as a folder and as a single file under ${o.dir} ...`);
    pair = writeModelPair(o.manifest, o.dir, { dtype: o.dtype, seed: o.seed });
    writeFileSync(stamp, JSON.stringify({ dtype: o.dtype, seed: o.seed, pair }));
  }
  say(`${pair.tensors} tensors, ${(pair.weightBytes / 1e9).toFixed(3)} GB of weights; folder ${(pair.folderBytes / 1e9).toFixed(3)} GB, `
    + `single file ${(pair.fileBytes / 1e9).toFixed(3)} GB; written in ${pair.seconds.toFixed(1)} s`);
  const t = await timeLoads(pair, o);
  const gbs = (s: number) => pair.weightBytes / 1e9 / s;
  return {
    date: new Date().toISOString(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, ramGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      node: process.version, libtorch: buildInfo().runtimeTorchVersion, threads: getNumThreads(),
    },
    dtype: o.dtype, loadDtype: o.loadDtype, rounds: o.rounds, seed: o.seed,
    sizes: { weightBytes: pair.weightBytes, folderBytes: pair.folderBytes, fileBytes: pair.fileBytes, tensors: pair.tensors, writeSeconds: pair.seconds },
    folder: { ...t.folder, gbPerSecond: gbs(t.folder.best) },
    single: { ...t.single, gbPerSecond: gbs(t.single.best) },
    ratio: { best: t.single.best / t.folder.best, median: t.single.median / t.folder.median, pairedMedian: pairedMedian(t.samples) },
    checkedTensors: t.checked,
    samples: t.samples,
  };
}

export function formatReport(r: SingleFileBenchResult): string {
  const row = (name: string, s: Stats & { gbPerSecond: number }) => `| ${name.padEnd(11)} | ${s.best.toFixed(2).padStart(6)} | ${s.median.toFixed(2).padStart(6)} | ${s.gbPerSecond.toFixed(2).padStart(9)} |`;
  const goal = r.ratio.best <= 1 ? 'met' : r.ratio.best <= 1.05 ? 'within 5% (noise?)' : 'NOT met';
  return [
    `${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.ramGB} GiB, libtorch ${r.machine.libtorch}, ${r.machine.threads} thread(s)`,
    `stored ${r.dtype}, loaded as ${r.loadDtype}; ${r.sizes.tensors} tensors, ${(r.sizes.weightBytes / 1e9).toFixed(2)} GB; ${r.rounds} rounds; `
      + `${r.checkedTensors} weights equal in both`,
    '| load        | best s | median s | GB/s (best) |',
    '|-------------|-------:|---------:|------------:|',
    row('folder', r.folder),
    row('single file', r.single),
    `single / folder: best ${r.ratio.best.toFixed(3)}, median ${r.ratio.median.toFixed(3)}, per-round median ${r.ratio.pairedMedian.toFixed(3)}; `
      + `goal (no more than the folder, best rounds): ${goal}`,
  ].join('\n');
}

const USAGE = `node dist/bench/single-file-load.js [options]
  --dtype D          stored dtype: float16 (default), float32, bfloat16
  --load-dtype D     dtype the models are loaded into (default float32, as the CLI)
  --rounds N         timed rounds, each one load of both (default 5)
  --threads N        libtorch intra-op threads (default: libtorch's own)
  --seed N           random weights' seed (default 0)
  --dir DIR          where to write the folder and the file (default: a new folder under the OS temp dir)
  --keep             keep DIR at the end (default: removed)
  --reuse            use the files an earlier --keep run left in DIR (same dtype and seed)
  --manifest FILE    configs and key shapes (default: the SD v1 manifest of the golden fixtures)
  --json FILE        results (default bench/results/single-file-load[-<dtype>].json)`;

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: {
    dtype: { type: 'string' }, 'load-dtype': { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' }, seed: { type: 'string' },
    dir: { type: 'string' }, keep: { type: 'boolean' }, reuse: { type: 'boolean' }, manifest: { type: 'string' }, json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } });
  if (a.help) {
    console.log(USAGE);
    return;
  }
  const dtype = (a.dtype ?? 'float16') as DType;
  if (!['float16', 'float32', 'bfloat16'].includes(dtype)) throw new Error(`--dtype must be float16, float32 or bfloat16, got ${dtype}`);
  if (a.threads) setNumThreads(Number(a.threads));
  const dir = a.dir ?? mkdtempSync(path.join(os.tmpdir(), 'imagic-single-file-bench-'));
  mkdirSync(dir, { recursive: true });
  const json = a.json ?? path.join(repoRoot, 'bench', 'results', `single-file-load${dtype === 'float16' ? '' : `-${dtype}`}.json`);
  try {
    const r = await runSingleFileBench({
      manifest: readManifest(a.manifest ?? fixturePath('golden/sd-v1-manifest.json')), dir, dtype, seed: Number(a.seed ?? 0),
      rounds: Number(a.rounds ?? 5), loadDtype: (a['load-dtype'] ?? 'float32') as DType, reuse: a.reuse ?? false, onLine: (l) => console.log(l),
    });
    console.log(formatReport(r));
    mkdirSync(path.dirname(json), { recursive: true });
    writeFileSync(`${json}.tmp-${process.pid}`, JSON.stringify(r, null, 1));
    renameSync(`${json}.tmp-${process.pid}`, json);
    console.log(`results: ${json}`);
  } finally {
    if (!a.keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
