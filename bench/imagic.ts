// Imagic training-step benchmark: the median wall time of one Stage A step (embedding optimization,
// UNet frozen) and one Stage B step (UNet fine-tuning, Adam; and LoRA), batch 1, on the embedded
// model's UNet config, the tiny golden one and a mid-size one, randomly initialized (speed does not depend on weight values). See bench/README.md.
//
//   node dist/bench/imagic.js [--device cpu|cuda] [--dtype float32|bfloat16] [--steps N] [--threads N] [--json FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildInfo, cuda, Generator, getNumThreads, randn, setNumThreads, tidy, type Device } from '../src/engine/index.js';
import { UNet2DConditionModel } from '../src/models/unet/index.js';
import { DDIMScheduler } from '../src/schedulers/index.js';
import { generatorNoise, stageA, stageB } from '../src/pipelines/imagic/index.js';
import type { StableDiffusion } from '../src/pipelines/index.js';
import { LoRA } from '../src/nn/index.js';
import { fixturePath, repoRoot } from '../tests/fixtures.js';

interface Case {
  name: string;
  config: Record<string, unknown>;
  latent: number;
  textDim: number;
}

const tinyConfig = JSON.parse(readFileSync(fixturePath('golden/tiny-sd/unet/config.json'), 'utf8')) as Record<string, unknown>;
const shapesConfig = JSON.parse(readFileSync(path.join(repoRoot, 'models', 'shapes-64', 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
const CASES: Case[] = [
  { name: 'the embedded Shapes-64 UNet, 8x8 latents', config: shapesConfig, latent: 8, textDim: shapesConfig.cross_attention_dim as number },
  { name: 'tiny (golden fixture), 8x8 latents', config: tinyConfig, latent: 8, textDim: 32 },
  {
    name: 'mid (64/128/256 channels), 32x32 latents',
    config: { ...tinyConfig, block_out_channels: [64, 128, 256], cross_attention_dim: 128, attention_head_dim: 4, norm_num_groups: 32, sample_size: 32 },
    latent: 32, textDim: 128,
  },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeStage(sd: StableDiffusion, c: Case, stage: 'A' | 'B' | 'B-lora', steps: number): Promise<number> {
  const gen = new Generator(0);
  const latent = randn([1, 4, c.latent, c.latent], { generator: gen, device: sd.device });
  const e = randn([1, 77, c.textDim], { generator: gen, device: sd.device });
  const times: number[] = [];
  let last = performance.now();
  const onStep = () => {
    if (sd.device.startsWith('cuda')) cuda.synchronize();
    const now = performance.now();
    times.push(now - last);
    last = now;
  };
  const noise = generatorNoise(gen, latent);
  // lossReadMs 0: each loss is read after its step, so that onStep marks the end of every step.
  if (stage === 'A') {
    const r = await stageA(sd, latent, e, { steps, lr: 1e-3, noise, onStep, lossReadMs: 0 });
    r.eOpt.dispose();
  } else if (stage === 'B') {
    await stageB(sd, latent, e, { steps, lr: 2e-6, noise, onStep, lossReadMs: 0 });
  } else {
    const lora = new LoRA(sd.unet, { rank: 4, targets: 'attention+resnets', generator: gen });
    await stageB(sd, latent, e, { steps, lr: 1e-3, noise, onStep, lossReadMs: 0, lora });
    lora.detach();
    lora.dispose();
  }
  latent.dispose();
  e.dispose();
  return median(times.slice(2)); // the first steps warm up allocators and kernels
}

async function main(): Promise<void> {
  const device: Device = arg('device') ?? 'cpu';
  const steps = Number(arg('steps') ?? 12);
  if (arg('threads')) setNumThreads(Number(arg('threads')));
  const rows: { case: string; stageA_ms: number; stageB_ms: number; stageBLoRA_ms: number; params: number }[] = [];
  for (const c of CASES) {
    const unet = tidy(() => new UNet2DConditionModel(c.config, { device, generator: new Generator(1) }));
    const sd = { unet, scheduler: new DDIMScheduler(), device, dtype: 'float32' } as unknown as StableDiffusion;
    const a = await timeStage(sd, c, 'A', steps);
    const b = await timeStage(sd, c, 'B', steps);
    const bl = await timeStage(sd, c, 'B-lora', steps);
    rows.push({ case: c.name, stageA_ms: a, stageB_ms: b, stageBLoRA_ms: bl, params: unet.numParameters() });
    unet.dispose();
  }
  const info = buildInfo();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Imagic training steps, ${device} (${device === 'cpu' ? `${cpu}, ${getNumThreads()} threads` : 'CUDA'}), libtorch ${info.torchVersion}, median of ${steps - 2} steps`);
  console.log('| case | parameters | Stage A step | Stage B step | Stage B step, LoRA r4 (attention + resnets) |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.case} | ${(r.params / 1e6).toFixed(2)} M | ${r.stageA_ms.toFixed(1)} ms | ${r.stageB_ms.toFixed(1)} ms | ${r.stageBLoRA_ms.toFixed(1)} ms |`);
  const json = arg('json');
  if (json) writeFileSync(json, JSON.stringify({ device, threads: getNumThreads(), torch: info.torchVersion, rows }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
