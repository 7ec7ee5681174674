// SDXL memory (`npm run bench:sdxl-memory`): what the full-size SDXL base (UNet 2.567 B parameters) needs
// in each Imagic stage and which of the project's savers (bf16 weights, mixed precision, gradient
// checkpointing, LoRA) fit it on a 24 GB GPU. Parameters counted on 'meta'; activations MEASURED on the
// CPU at small latents (one child process per configuration, bench/sdxl-memory-case.ts) and extrapolated
// linearly in latent pixels to 128x128 (1024x1024 images). GPU figures are estimates: no GPU measured them.
//
//   node dist/bench/sdxl-memory.js [--sizes 16,32] [--check-size 24] [--kinds stageA,...] [--json FILE] [--no-measure]
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInfo } from '../src/engine/index.js';
import { countParams, linearFit, readConfigs, refusal, SETTINGS, staticMemory, type ParamCounts, type Setting } from './sdxl-accounting.js';
import type { CaseMeasurement, MemoryCase } from './sdxl-memory-case.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const GB = 1e9;
/** A "24 GB" card (RTX 3090/4090, A5000) has 24 GiB. */
export const GPU_BYTES = 24 * 2 ** 30;
/** CUDA context, cuBLAS/cuDNN workspaces: outside the caching allocator's count. */
export const CUDA_OVERHEAD = 1.0 * GB;
/** Kept free for the caching allocator's fragmentation. */
export const FRAGMENTATION = 0.1;
export const TARGET_LATENT = 128;

/** The measured configurations: training ones with and without checkpointing, float32 (the CPU's fast path). */
export function plannedCases(sizes: number[], checkSize: number | null): MemoryCase[] {
  const out: MemoryCase[] = [];
  const dtype = 'float32' as const;
  const train: Omit<MemoryCase, 'size'>[] = [
    { kind: 'stageA', ckpt: false, dtype }, { kind: 'stageA', ckpt: true, dtype },
    { kind: 'stageB-lora', ckpt: false, dtype, targets: 'attention', rank: 4 }, { kind: 'stageB-lora', ckpt: true, dtype, targets: 'attention', rank: 4 },
    { kind: 'sample', ckpt: false, dtype },
    { kind: 'stageB-lora', ckpt: true, dtype, targets: 'attention+resnets', rank: 4 }, { kind: 'stageB-lora', ckpt: false, dtype, targets: 'attention+resnets', rank: 4 },
    { kind: 'vae-decode', ckpt: false, dtype },
  ];
  // the CPU attention kernel: does fwd + bwd keep an N x N matrix? (10 heads x 4096^2 x 4 B = 671 MB if it does)
  out.push({ kind: 'sdpa', ckpt: false, dtype, size: 1024 }, { kind: 'sdpa', ckpt: false, dtype, size: 4096 });
  // most important first: each configuration at both sizes, then the check size
  for (const t of train) for (const size of sizes) out.push({ ...t, size });
  if (checkSize !== null) out.push({ kind: 'stageA', ckpt: false, dtype, size: checkSize }, { kind: 'stageB-lora', ckpt: true, dtype, targets: 'attention', rank: 4, size: checkSize });
  return out;
}

export const caseKey = (c: MemoryCase): string => `${c.kind}${c.targets ? `(${c.targets})` : ''}${c.ckpt ? ' + ckpt' : ''}`;

function runChild(configsPath: string, c: MemoryCase, steps: number): CaseMeasurement | { error: string } {
  const r = spawnSync(process.execPath, [path.join(here, 'sdxl-memory-case.js'), '--configs', configsPath, '--case', JSON.stringify(c), '--steps', String(steps), '--threads', '1'], {
    encoding: 'utf8', env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' }, maxBuffer: 1 << 24,
  });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !line.startsWith('{')) return { error: `exit ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  return JSON.parse(line) as CaseMeasurement;
}

export interface Extrapolation {
  key: string;
  /** bytes = a + b * latent pixels, through the two measured sizes (float32). */
  a: number;
  b: number;
  /** The fit's prediction at the check size against its measurement (relative error). */
  check?: { size: number; predicted: number; measured: number; error: number };
  /** At 128x128 latents, float32 and bf16 (half: every saved tensor is in the compute dtype). */
  at1024_fp32: number;
  at1024_bf16: number;
}

/** Fits each configuration's step peak through the two sizes and extrapolates to 128x128 latents. */
export function extrapolate(measured: CaseMeasurement[], sizes: [number, number], checkSize: number | null): Extrapolation[] {
  const byKey = new Map<string, Map<number, number>>();
  for (const m of measured) {
    if (m.case.kind === 'sdpa') continue;
    const k = caseKey(m.case);
    if (!byKey.has(k)) byKey.set(k, new Map());
    byKey.get(k)!.set(m.case.size, m.step_peak);
  }
  const out: Extrapolation[] = [];
  for (const [key, bySize] of byKey) {
    const y0 = bySize.get(sizes[0]), y1 = bySize.get(sizes[1]);
    if (y0 === undefined || y1 === undefined) continue;
    const { a, b } = linearFit(sizes[0] ** 2, y0, sizes[1] ** 2, y1);
    const e: Extrapolation = { key, a, b, at1024_fp32: a + b * TARGET_LATENT ** 2, at1024_bf16: (a + b * TARGET_LATENT ** 2) / 2 };
    const yc = checkSize === null ? undefined : bySize.get(checkSize);
    if (yc !== undefined && checkSize !== null) {
      // the check: a line through the smaller size and the check size, predicting the larger one
      const f = linearFit(sizes[0] ** 2, y0, checkSize ** 2, yc);
      const predicted = f.a + f.b * sizes[1] ** 2;
      e.check = { size: sizes[1], predicted, measured: y1, error: predicted / y1 - 1 };
    }
    out.push(e);
  }
  return out;
}

/** Which measured activation stands for a setting (null: not measured, see `why`). */
export function activationKeyOf(s: Setting): string | null {
  if (s.stage === 'C') return 'sample';
  if (s.stage === 'A') return s.ckpt ? 'stageA + ckpt' : 'stageA';
  if (s.train === 'lora') return `stageB-lora(${s.loraTargets})${s.ckpt ? ' + ckpt' : ''}`;
  // full and attention fine-tuning: at least what LoRA on attention + resnets keeps (the inputs of those layers)
  return `stageB-lora(attention+resnets)${s.ckpt ? ' + ckpt' : ''}`;
}

export interface Estimate {
  setting: string;
  refused: string | null;
  static: Record<string, number>;
  activations: number;
  activationsFrom: string;
  total: number;
  fits: 'yes' | 'tight' | 'no' | 'not measured';
}

/** The GPU estimate at 1024x1024 per setting: static terms + activations (bf16 when the compute is bf16, float32 otherwise) + CUDA context. */
export function estimates(p: ParamCounts, ex: Extrapolation[], vae?: Extrapolation): Estimate[] {
  return SETTINGS.map((s) => {
    const st = staticMemory(p, s);
    const key = activationKeyOf(s)!;
    const e = ex.find((x) => x.key === key);
    const bf16Compute = s.weights === 'bfloat16' || s.mixedPrecision;
    let act = e ? (bf16Compute ? e.at1024_bf16 : e.at1024_fp32) : NaN;
    // stage C: the UNet's guided step and the VAE decode run one after the other: the larger counts
    if (s.stage === 'C' && vae) act = Math.max(act, bf16Compute ? vae.at1024_bf16 : vae.at1024_fp32);
    const total = Object.values(st).reduce((a, b) => a + b, 0) + act + CUDA_OVERHEAD;
    const fits = Number.isNaN(total) ? 'not measured' : total <= GPU_BYTES * (1 - FRAGMENTATION) ? 'yes' : total <= GPU_BYTES ? 'tight' : 'no';
    return { setting: s.id, refused: refusal(s), static: st, activations: act, activationsFrom: `${key}${s.stage === 'C' ? ' / vae-decode' : ''} (${bf16Compute ? 'bf16: half the float32 measurement' : 'float32'})`, total, fits };
  });
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Writes JSON through a temporary name, then renames it into place. */
function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

async function main(): Promise<void> {
  const configsPath = arg('configs') ?? 'tests/fixtures/golden/sdxl-manifest.json';
  const sizes = (arg('sizes') ?? '16,32').split(',').map(Number) as [number, number];
  const checkSize = arg('check-size') === 'none' ? null : Number(arg('check-size') ?? 24);
  const steps = Number(arg('steps') ?? 2);
  const json = arg('json') ?? 'bench/results/sdxl-memory.json';
  const kinds = arg('kinds')?.split(',');
  const configs = readConfigs(configsPath);
  const p = countParams(configs);
  console.log(`SDXL parameters: UNet ${p.unet}, text_encoder ${p.text_encoder}, text_encoder_2 ${p.text_encoder_2}, VAE ${p.vae}; total ${p.total}`);
  for (const l of p.lora) console.log(`LoRA rank ${l.rank} on ${l.targets}: ${l.layers} layers, ${l.params} parameters (from shapes ${l.paramsFromShapes}); merges into ${l.mergedWeightParams}`);
  const measured: CaseMeasurement[] = [];
  const failed: { case: MemoryCase; error: string }[] = [];
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, ram_bytes: os.totalmem(), libtorch: buildInfo().torchVersion, node: process.versions.node, threads: 1, date: new Date().toISOString() };
  const write = () => {
    const ex = extrapolate(measured, sizes, checkSize);
    const vae = ex.find((e) => e.key === 'vae-decode');
    writeJsonAtomic(json, {
      machine, params: p, measured, failed, extrapolations: ex, estimates: estimates(p, ex, vae),
      rules: { gpu_bytes: GPU_BYTES, cuda_overhead: CUDA_OVERHEAD, fragmentation: FRAGMENTATION, target_latent: TARGET_LATENT, extrapolation: 'step peak = a + b * latent pixels, through the two sizes; bf16 = float32 / 2' },
    });
    return ex;
  };
  if (process.argv.includes('--no-measure')) {
    write();
    return;
  }
  for (const c of plannedCases(sizes, checkSize).filter((x) => !kinds || kinds.includes(x.kind))) {
    const r = runChild(configsPath, c, steps);
    if ('error' in r) {
      failed.push({ case: c, error: r.error });
      console.log(`${caseKey(c)} @${c.size}: FAILED ${r.error}`);
    } else {
      measured.push(r);
      console.log(`${caseKey(c)} @${c.size}: step peak ${(r.step_peak / GB).toFixed(3)} GB${r.saved_after_forward !== undefined ? `, saved after forward ${(r.saved_after_forward / GB).toFixed(3)} GB` : ''}, ${(r.step_ms.at(-1)! / 1000).toFixed(1)} s/step`);
    }
    write();
  }
  const ex = write();
  for (const e of ex) console.log(`${e.key}: ${(e.a / 1e6).toFixed(1)} MB + ${(e.b / 1e3).toFixed(1)} KB/latent px -> 128x128: fp32 ${(e.at1024_fp32 / GB).toFixed(2)} GB, bf16 ${(e.at1024_bf16 / GB).toFixed(2)} GB${e.check ? `; check at ${e.check.size}: predicted ${(e.check.predicted / GB).toFixed(3)} vs ${(e.check.measured / GB).toFixed(3)} GB (${(100 * e.check.error).toFixed(1)}%)` : ''}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
