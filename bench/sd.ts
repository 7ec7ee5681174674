// Stable Diffusion v1 at full size, on random weights: one Stage A step, one Stage B step (full
// fine-tuning and LoRA), one guided sampling step, a VAE decode and a prompt encoding, timed in our
// code (bench/sd-case.ts) and in plain PyTorch (bench/sd_reference.py) on the same machine in the same
// run, with each process's peak memory. Each (implementation, case) runs in its own process, so that
// peak RSS is the case's own. See bench/README.md, "Stable Diffusion at full size".
//
//   npm run bench:sd -- [--cases stageA,stageB-full,...] [--size 512] [--iters N] [--warmup N]
//                       [--threads N] [--device cpu|cuda] [--full-size 512|256] [--no-torch]
//                       [--reduced] [--manifest FILE] [--json FILE]
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInfo, type Device } from '../src/engine/index.js';
import { fixturePath, repoRoot } from '../tests/fixtures.js';
import { CASES, manifestDiff, readManifest, type CaseName, type CaseResult, type Component, type Manifest } from './sd-case.js';

/**
 * Bytes autograd saves in one training forward of the SD v1 UNet (batch 1, float32, every weight
 * trainable), measured with `sd_reference.py --case activations` (PyTorch 2.13, CPU): 37.2 MB at
 * 64x64, 124.5 MB at 128x128, 473.9 MB at 256x256 pixels, linear in the latent's h*w (SDPA keeps no
 * attention matrix), so about 1.87 GB at 512x512.
 */
export const ACTIVATIONS = { fixedBytes: 8.07e6, bytesPerLatentPixel: 454_867 };
/** The process itself (Node or Python, libtorch, allocator slack), a rough allowance. */
export const RUNTIME_BYTES = 0.5e9;
/** Full fine-tuning runs at a size only when the estimate stays under this share of the machine's memory. */
export const MEMORY_SHARE = 0.8;

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Parameters of a component, from the manifest's shapes. */
export function manifestParams(m: Manifest, name: Component): number {
  return Object.values(m.state_dict_shapes[name]).reduce((a, s) => a + numel(s), 0);
}

export interface MemoryEstimate {
  size: number;
  /** float32 weights, their gradients, Adam's two moments: 4 bytes each per parameter. */
  weights: number;
  grads: number;
  adam: number;
  activations: number;
  runtime: number;
  total: number;
}

/** Peak bytes of one full fine-tuning step of the UNet at `size` pixels (an upper bound: grads and activations all held at once). */
export function fullFineTuneEstimate(m: Manifest, size: number): MemoryEstimate {
  const p = manifestParams(m, 'unet') * 4;
  const activations = ACTIVATIONS.fixedBytes + ACTIVATIONS.bytesPerLatentPixel * (size / 8) ** 2;
  return { size, weights: p, grads: p, adam: 2 * p, activations, runtime: RUNTIME_BYTES, total: 4 * p + activations + RUNTIME_BYTES };
}

/** The size stageB-full runs at: `wanted` when its estimate fits, else 256 (or `forced`, as given). */
export function chooseFullSize(m: Manifest, wanted: number, totalMem: number, forced?: number): { size: number; why: string; estimates: MemoryEstimate[] } {
  const estimates = [...new Set([wanted, 256])].map((s) => fullFineTuneEstimate(m, s));
  const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;
  const budget = MEMORY_SHARE * totalMem;
  if (forced !== undefined) return { size: forced, why: `--full-size ${forced}`, estimates };
  const fit = estimates.find((e) => e.total <= budget);
  const at = (e: MemoryEstimate) => `${e.size}x${e.size}: ${gb(e.total)}`;
  if (fit === undefined) return { size: 256, why: `no size fits ${gb(budget)} (${estimates.map(at).join(', ')}); running 256 anyway`, estimates };
  const why = fit.size === wanted
    ? `estimate ${at(fit)} <= ${MEMORY_SHARE * 100}% of ${gb(totalMem)}`
    : `estimate ${at(estimates[0]!)} > ${MEMORY_SHARE * 100}% of ${gb(totalMem)}; ${at(fit)} fits`;
  return { size: fit.size, why, estimates };
}

export interface PlannedCase {
  case: CaseName;
  size: number;
}

/** The (case, size) list: stageB-full at the size that fits; stageB-lora also at that size, for a like-for-like memory comparison. */
export function planCases(cases: readonly CaseName[], size: number, fullSize: number): PlannedCase[] {
  const plan: PlannedCase[] = [];
  for (const c of cases) {
    if (c === 'stageB-full') plan.push({ case: c, size: fullSize });
    else plan.push({ case: c, size });
    if (c === 'stageB-lora' && cases.includes('stageB-full') && fullSize !== size) plan.push({ case: c, size: fullSize });
  }
  return plan;
}

export interface ChildFailure {
  impl: 'ts' | 'torch';
  case: CaseName;
  size: number;
  error: string;
}

/** Runs one child and returns the JSON object it printed last on stdout (its stderr passes through). */
function runChild(impl: 'ts' | 'torch', cmd: string, args: string[], c: PlannedCase): Promise<CaseResult | ChildFailure> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', (e) => resolve({ impl, case: c.case, size: c.size, error: `${cmd}: ${e.message}` }));
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code === 0 && line !== undefined) {
        resolve(JSON.parse(line) as CaseResult);
        return;
      }
      const how = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exit code ${code}`;
      resolve({ impl, case: c.case, size: c.size, error: how });
    });
  });
}

/** Whether python3 (or $PYTHON) imports torch: its version, or why not. */
export function findTorch(python = process.env.PYTHON || 'python3'): { python: string; version: string } | { python: string; skip: string } {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.error) return { python, skip: `${python} not found (${r.error.message})` };
  if (r.status !== 0) return { python, skip: `${python} cannot import torch (${(r.stderr || '').trim().split('\n').pop() || `exit code ${r.status}`})` };
  return { python, version: r.stdout.trim() };
}

export interface SdBenchOptions {
  manifestFile: string;
  cases: readonly CaseName[];
  size: number;
  fullSize?: number;
  iters: number;
  warmup: number;
  threads: number;
  device: Device;
  torch: boolean;
  /** Where the children's scripts are: dist/bench (sd-case.js) and bench/ (sd_reference.py). */
  tsScript: string;
  pyScript: string;
  log?: (line: string) => void;
}

export interface CaseRow {
  case: CaseName;
  size: number;
  iters: number;
  warmup: number;
  /** Median ms of each side (null: failed or skipped). */
  tsMs: number | null;
  torchMs: number | null;
  /** tsMs / torchMs. */
  ratio: number | null;
  ts: CaseResult | ChildFailure;
  torch: CaseResult | ChildFailure | null;
}

export interface SdBenchResult {
  machine: { cpu: string; cores: number; memBytes: number; platform: string; release: string };
  versions: { node: string; libtorch: string; torch: string | null; python: string | null };
  device: Device;
  threads: number;
  torchSkipped: string | null;
  keys: Record<Component, { keys: number; manifest: number }>;
  fullFineTune: { size: number; why: string; estimates: MemoryEstimate[] };
  rows: CaseRow[];
  /** bytes of the full UNet's tensors (what a session keeps after full fine-tuning), for contrast with the adapters. */
  unetBytes: number;
  goals: { name: string; met: boolean | null; detail: string }[];
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const ok = (r: CaseResult | ChildFailure | null): r is CaseResult => r !== null && !('error' in r);

/** Runs every planned case in both implementations (the order alternating from case to case). */
export async function runSdBench(o: SdBenchOptions): Promise<SdBenchResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const m = readManifest(o.manifestFile);
  const keys = {} as SdBenchResult['keys'];
  for (const name of ['unet', 'vae', 'text_encoder'] as const) {
    const d = manifestDiff(m, name);
    if (d.problems.length > 0) throw new Error(`${name}: our model's state dict differs from ${o.manifestFile}:\n  ${d.problems.join('\n  ')}`);
    keys[name] = { keys: d.keys, manifest: Object.keys(m.state_dict_shapes[name]).length };
  }
  const torch = o.torch ? findTorch() : { python: '', skip: '--no-torch' };
  const full = chooseFullSize(m, o.size, os.totalmem(), o.fullSize);
  const plan = planCases(o.cases, o.size, full.size);
  const common = ['--manifest', o.manifestFile, '--iters', String(o.iters), '--warmup', String(o.warmup), '--threads', String(o.threads), '--device', o.device];
  const rows: CaseRow[] = [];
  for (const [k, c] of plan.entries()) {
    const args = [...common, '--case', c.case, '--size', String(c.size)];
    const runTs = () => runChild('ts', process.execPath, [o.tsScript, ...args], c);
    const runPy = () => ('version' in torch ? runChild('torch', torch.python, [o.pyScript, ...args], c) : Promise.resolve(null));
    log(`${c.case} at ${c.size}x${c.size} ...`);
    let ts: CaseResult | ChildFailure, py: CaseResult | ChildFailure | null;
    if (k % 2 === 0) {
      ts = await runTs();
      py = await runPy();
    } else {
      py = await runPy();
      ts = await runTs();
    }
    const tsMs = ok(ts) ? median(ts.samples_ms) : null, torchMs = ok(py) ? median(py.samples_ms) : null;
    const ratio = tsMs !== null && torchMs !== null ? tsMs / torchMs : null;
    rows.push({ case: c.case, size: c.size, iters: o.iters, warmup: o.warmup, tsMs, torchMs, ratio, ts, torch: py });
  }
  const firstTs = rows.map((r) => r.ts).find(ok);
  const firstPy = rows.map((r) => r.torch).find(ok);
  return {
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memBytes: os.totalmem(), platform: os.platform(), release: os.release() },
    versions: { node: process.versions.node, libtorch: buildInfo().torchVersion, torch: 'version' in torch ? torch.version : null, python: (firstPy?.python as string | undefined) ?? null },
    device: o.device,
    threads: firstTs?.threads ?? o.threads,
    torchSkipped: 'skip' in torch ? torch.skip : null,
    keys,
    fullFineTune: full,
    rows,
    unetBytes: manifestParams(m, 'unet') * 4,
    goals: goals(rows),
  };
}

/** The issue's goals on the CPU: each step within 5% of PyTorch; LoRA under half of full fine-tuning's peak; a LoRA session under 50 MB. */
function goals(rows: CaseRow[]): SdBenchResult['goals'] {
  const out: SdBenchResult['goals'] = [];
  for (const r of rows) {
    if (r.ratio === null) continue;
    out.push({ name: `${r.case} ${r.size}: within 5% of PyTorch`, met: r.ratio <= 1.05, detail: `ratio ${r.ratio.toFixed(3)}` });
  }
  for (const f of rows.filter((r) => r.case === 'stageB-full')) {
    const l = rows.find((r) => r.case === 'stageB-lora' && r.size === f.size);
    for (const impl of ['ts', 'torch'] as const) {
      const a = l?.[impl], b = f[impl];
      if (!ok(a ?? null) || !ok(b)) continue;
      const share = (a as CaseResult).maxrss_kb / b.maxrss_kb;
      out.push({ name: `stageB-lora peak < half of stageB-full's at ${f.size} (${impl})`, met: share < 0.5, detail: `${(share * 100).toFixed(0)}%` });
    }
  }
  const lora = rows.map((r) => r.ts).find((t): t is CaseResult => ok(t) && t.session_bytes !== undefined);
  if (lora) out.push({ name: 'LoRA session under 50 MB', met: lora.session_bytes! < 50e6, detail: `${(lora.session_bytes! / 1e6).toFixed(2)} MB` });
  return out;
}

const gb = (kb: number) => `${(kb / 1e6).toFixed(2)} GB`; // maxRSS is in KB (1024 bytes): shown in GB of 1e6 KB
const msOf = (r: CaseResult | ChildFailure | null) => (r === null ? 'skipped' : ok(r) ? median(r.samples_ms).toFixed(0) : `failed: ${r.error}`);
const rssOf = (r: CaseResult | ChildFailure | null) => (ok(r) ? `${gb(r.maxrss_kb)} (${r.rss_built_kb ? gb(r.rss_built_kb) : '-'})` : '-');

/** The markdown table and the notes below it. */
export function formatReport(r: SdBenchResult): string {
  const lines: string[] = [];
  lines.push(`SD v1 at full size, random weights: ${r.machine.cpu} x${r.machine.cores}, ${(r.machine.memBytes / 2 ** 30).toFixed(1)} GiB, ` +
    `${r.device}, ${r.threads} threads; libtorch ${r.versions.libtorch} (Node ${r.versions.node}) vs PyTorch ${r.versions.torch ?? '-'} (Python ${r.versions.python ?? '-'})`);
  lines.push(`keys: ours and the manifest agree (${Object.entries(r.keys).map(([k, v]) => `${k} ${v.keys}`).join(', ')})`);
  if (r.rows.some((c) => c.case === 'stageB-full')) lines.push(`stageB-full at ${r.fullFineTune.size}x${r.fullFineTune.size}: ${r.fullFineTune.why}`);
  if (r.torchSkipped) lines.push(`PyTorch side skipped: ${r.torchSkipped}`);
  const rows = [['case', 'size', 'TS ms', 'PyTorch ms', 'ratio', 'TS peak RSS (built)', 'PyTorch peak RSS (built)', 'iters (warm-up)']];
  for (const c of r.rows) {
    rows.push([c.case, `${c.size}`, msOf(c.ts), msOf(c.torch), c.ratio === null ? '-' : c.ratio.toFixed(3), rssOf(c.ts), rssOf(c.torch), `${c.iters} (${c.warmup})`]);
  }
  const w = rows[0]!.map((_, j) => Math.max(...rows.map((row) => row[j]!.length)));
  for (const row of rows) lines.push(`| ${row.map((v, j) => v.padStart(w[j]!)).join(' | ')} |`);
  for (const c of r.rows) {
    if (ok(c.ts) && c.ts.adapter_bytes !== undefined) {
      lines.push(`LoRA (rank 4, attention) at ${c.size}: adapters ${(c.ts.adapter_bytes / 1e6).toFixed(2)} MB (${c.ts.adapter_tensors} tensors), ` +
        `session (adapters + embeddings) ${(c.ts.session_bytes! / 1e6).toFixed(2)} MB; full fine-tuned UNet ${(r.unetBytes / 1e9).toFixed(2)} GB`);
      break;
    }
  }
  for (const c of r.rows) {
    for (const side of [c.ts, c.torch]) {
      if (ok(side) && side.losses && side.losses.length > 0) lines.push(`${side.impl} ${c.case} ${c.size} losses: ${side.losses.map((l) => l.toFixed(4)).join(', ')}`);
    }
  }
  for (const g of r.goals) lines.push(`goal: ${g.name}: ${g.met ? 'met' : 'NOT met'} (${g.detail})`);
  if (r.device.startsWith('cuda')) lines.push('CUDA: peak RSS is host memory; PyTorch also reports torch.cuda.max_memory_allocated (cuda_peak_bytes in the JSON); the engine exposes no allocator peak, so ours is absent');
  return lines.join('\n');
}

const USAGE = `npm run bench:sd -- [options]   (node dist/bench/sd.js)
  --cases LIST       ${CASES.join(',')} (default: all; --reduced: stageA,stageB-lora)
  --size PX          image size (default 512; --reduced: 256)
  --full-size PX     size of the full fine-tuning case (default: 512 if the memory estimate fits, else 256)
  --iters N          timed steps per case (default 3; --reduced: 1)
  --warmup N         untimed steps first (default 1; --reduced: 0)
  --threads N        CPU threads on both sides (default: all cores)
  --device DEV       cpu or cuda (default cpu)
  --no-torch         our side only
  --reduced          the CI form: one stage A and one LoRA stage B step at 256x256
  --manifest FILE    the configs and key shapes (default: the SD v1 manifest of the golden fixtures)
  --json FILE        results (default bench/results/sd-<device>.json; --reduced: none)`;

async function main(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const { values: a } = parseArgs({ options: {
    cases: { type: 'string' }, size: { type: 'string' }, 'full-size': { type: 'string' }, iters: { type: 'string' }, warmup: { type: 'string' },
    threads: { type: 'string' }, device: { type: 'string' }, 'no-torch': { type: 'boolean' }, reduced: { type: 'boolean' },
    manifest: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } });
  if (a.help) {
    console.log(USAGE);
    return;
  }
  const reduced = a.reduced ?? false;
  const cases = (a.cases?.split(',') ?? (reduced ? ['stageA', 'stageB-lora'] : [...CASES])) as CaseName[];
  for (const c of cases) if (!CASES.includes(c)) throw new Error(`unknown case '${c}' (cases: ${CASES.join(', ')})`);
  const size = Number(a.size ?? (reduced ? 256 : 512));
  if (!Number.isInteger(size) || size <= 0 || size % 64 !== 0) throw new Error(`--size must be a positive multiple of 64, got ${a.size}`);
  // the reduced (CI) form writes JSON only when asked; the full run keeps bench/results/sd-<device>.json
  const json = a.json ?? (reduced ? null : path.join(repoRoot, 'bench', 'results', `sd-${(a.device ?? 'cpu').replace(':', '')}.json`));
  const r = await runSdBench({
    manifestFile: a.manifest ?? fixturePath('golden/sd-v1-manifest.json'),
    cases, size, fullSize: a['full-size'] ? Number(a['full-size']) : undefined,
    iters: Number(a.iters ?? (reduced ? 1 : 3)), warmup: Number(a.warmup ?? (reduced ? 0 : 1)),
    threads: Number(a.threads ?? os.cpus().length), device: (a.device ?? 'cpu') as Device,
    torch: !(a['no-torch'] ?? false),
    tsScript: path.join(here, 'sd-case.js'), pyScript: path.join(repoRoot, 'bench', 'sd_reference.py'),
  });
  console.log(formatReport(r));
  if (json !== null) {
    mkdirSync(path.dirname(json), { recursive: true });
    writeFileSync(json, JSON.stringify(r, null, 1));
    console.log(`results: ${json}`);
  }
  if (r.rows.some((row) => 'error' in row.ts || (row.torch !== null && 'error' in row.torch))) process.exitCode = 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
