// SDXL memory accounting (bench/sdxl-memory.ts): parameters of each component counted on 'meta', what LoRA
// adds, and the memory each Imagic stage holds in this project's code (src/pipelines/imagic/stages.ts).
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { noGrad } from '../src/engine/index.js';
import { LoRA, loraMergedWeightNames, type LoRATargets, type Module } from '../src/nn/index.js';
import { CLIPTextModel, CLIPTextModelWithProjection, parseCLIPTextConfig } from '../src/models/clip/index.js';
import { UNet2DConditionModel } from '../src/models/unet/index.js';
import { AutoencoderKL, parseAutoencoderKLConfig } from '../src/models/vae/index.js';

export type ComponentName = 'unet' | 'text_encoder' | 'text_encoder_2' | 'vae';
export const COMPONENTS: readonly ComponentName[] = ['unet', 'text_encoder', 'text_encoder_2', 'vae'];

export interface SdxlConfigs {
  unet: Record<string, unknown>;
  vae: Record<string, unknown>;
  text_encoder: Record<string, unknown>;
  text_encoder_2: Record<string, unknown>;
  scheduler: Record<string, unknown>;
}

/** The configs of sdxl-manifest.json (`configs`), or of a diffusers SDXL folder (`<component>/config.json`). */
export function readConfigs(from: string): SdxlConfigs {
  if (statSync(from).isDirectory()) {
    const read = (c: string) => {
      const dir = path.join(from, c);
      const f = existsSync(path.join(dir, 'config.json')) ? path.join(dir, 'config.json') : path.join(dir, 'scheduler_config.json');
      return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
    };
    return { unet: read('unet'), vae: read('vae'), text_encoder: read('text_encoder'), text_encoder_2: read('text_encoder_2'), scheduler: read('scheduler') };
  }
  return (JSON.parse(readFileSync(from, 'utf8')) as { configs: SdxlConfigs }).configs;
}

/** A component with no storage (device 'meta'). */
export function buildMeta(configs: SdxlConfigs, name: ComponentName): Module {
  const init = { device: 'meta' as const };
  if (name === 'unet') return new UNet2DConditionModel(configs.unet, init);
  if (name === 'vae') return new AutoencoderKL(parseAutoencoderKLConfig(configs.vae), init);
  if (name === 'text_encoder') return new CLIPTextModel(parseCLIPTextConfig(configs.text_encoder), init);
  return new CLIPTextModelWithProjection(parseCLIPTextConfig(configs.text_encoder_2), init);
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export interface LoRACount {
  targets: LoRATargets;
  rank: number;
  /** Adapted layers. */
  layers: number;
  /** Adapter parameters, from the LoRA module built on the meta UNet. */
  params: number;
  /** The same from the layers' shapes: r * (in + out) per Linear, r * (in * k * k) + out * r per Conv2d. */
  paramsFromShapes: number;
  /** Parameters of the weights the adapters merge into (what `imagic serve` snapshots to restore the base). */
  mergedWeightParams: number;
}

export interface ParamCounts {
  unet: number;
  text_encoder: number;
  text_encoder_2: number;
  vae: number;
  total: number;
  /** UNet parameters stage B trains with train: 'attention' (names matching `.attn1.` / `.attn2.`). */
  unetAttention: number;
  /** UNet parameters per top-level block (down_blocks.i, mid_block, up_blocks.i, the rest): the checkpointed segments. */
  unetBlocks: Record<string, number>;
  /** UNet parameters whose layers stage A's gradient passes through (all but conv_in, the time embedding and down_blocks.0, which precede the first cross-attention). */
  unetOnGradPathA: number;
  lora: LoRACount[];
}

/** Counts every component's parameters on 'meta' and what LoRA of each rank/targets adds. */
export function countParams(configs: SdxlConfigs, lora: { rank: number; targets: LoRATargets }[] = [{ rank: 4, targets: 'attention' }, { rank: 4, targets: 'attention+resnets' }]): ParamCounts {
  const counts: Partial<Record<ComponentName, number>> = {};
  for (const name of COMPONENTS) {
    const m = buildMeta(configs, name);
    counts[name] = m.numParameters();
    m.dispose();
  }
  const unet = buildMeta(configs, 'unet') as UNet2DConditionModel;
  try {
    const named = unet.namedParameters();
    const shapes = new Map(named.map(([n, t]) => [n, t.shape]));
    const unetBlocks: Record<string, number> = {};
    let unetAttention = 0, unetOnGradPathA = 0;
    for (const [n, t] of named) {
      const k = /^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\./.exec(n)?.[1] ?? 'other';
      unetBlocks[k] = (unetBlocks[k] ?? 0) + t.numel;
      if (/\.attn[12]\./.test(n)) unetAttention += t.numel;
      if (!/^(conv_in|time_embedding|down_blocks\.0)\./.test(n)) unetOnGradPathA += t.numel;
    }
    const loraCounts = lora.map(({ rank, targets }): LoRACount => {
      const weights = loraMergedWeightNames(unet, targets);
      let fromShapes = 0, merged = 0;
      for (const w of weights) {
        const s = shapes.get(w)!;
        merged += numel(s);
        fromShapes += s.length === 2 ? rank * (s[1]! + s[0]!) : rank * s[1]! * s[2]! * s[3]! + s[0]! * rank;
      }
      const l = noGrad(() => new LoRA(unet, { rank, targets }));
      const params = l.numParameters();
      l.detach();
      l.dispose();
      return { targets, rank, layers: weights.length, params, paramsFromShapes: fromShapes, mergedWeightParams: merged };
    });
    const c = counts as Record<ComponentName, number>;
    return { ...c, total: c.unet + c.text_encoder + c.text_encoder_2 + c.vae, unetAttention, unetBlocks, unetOnGradPathA, lora: loraCounts };
  } finally {
    unet.dispose();
  }
}

export const BYTES: Record<'float32' | 'bfloat16', number> = { float32: 4, bfloat16: 2 };

/** One way of running a stage: the weights' dtype and which savers are on. */
export interface Setting {
  id: string;
  stage: 'A' | 'B' | 'C';
  weights: 'float32' | 'bfloat16';
  /** autocast bf16 (`mixedPrecision: 'bf16'`); with float32 weights. */
  mixedPrecision: boolean;
  ckpt: boolean;
  train?: 'all' | 'attention' | 'lora';
  loraTargets?: LoRATargets;
  /** Why the project's code refuses this setting as it stands (null: it runs). */
  refused: string | null;
}

export const SETTINGS: Setting[] = [
  { id: 'C fp32', stage: 'C', weights: 'float32', mixedPrecision: false, ckpt: false, refused: null },
  { id: 'C bf16', stage: 'C', weights: 'bfloat16', mixedPrecision: false, ckpt: false, refused: null },
  { id: 'A fp32', stage: 'A', weights: 'float32', mixedPrecision: false, ckpt: false, refused: null },
  { id: 'A fp32 + mp', stage: 'A', weights: 'float32', mixedPrecision: true, ckpt: false, refused: null },
  { id: 'A bf16', stage: 'A', weights: 'bfloat16', mixedPrecision: false, ckpt: false, refused: null },
  { id: 'A bf16 + ckpt', stage: 'A', weights: 'bfloat16', mixedPrecision: false, ckpt: true, refused: null },
  { id: 'B all fp32', stage: 'B', weights: 'float32', mixedPrecision: false, ckpt: false, train: 'all', refused: null },
  { id: 'B all fp32 + mp + ckpt', stage: 'B', weights: 'float32', mixedPrecision: true, ckpt: true, train: 'all', refused: null },
  { id: 'B attention fp32 + mp + ckpt', stage: 'B', weights: 'float32', mixedPrecision: true, ckpt: true, train: 'attention', refused: null },
  { id: 'B LoRA fp32 + mp', stage: 'B', weights: 'float32', mixedPrecision: true, ckpt: false, train: 'lora', loraTargets: 'attention', refused: null },
  { id: 'B LoRA bf16', stage: 'B', weights: 'bfloat16', mixedPrecision: false, ckpt: false, train: 'lora', loraTargets: 'attention', refused: null },
  { id: 'B LoRA bf16 + ckpt', stage: 'B', weights: 'bfloat16', mixedPrecision: false, ckpt: true, train: 'lora', loraTargets: 'attention', refused: null },
  { id: 'B LoRA(attn+resnets) bf16 + ckpt', stage: 'B', weights: 'bfloat16', mixedPrecision: false, ckpt: true, train: 'lora', loraTargets: 'attention+resnets', refused: null },
];

/** Stage B in full or on the attention weights refuses weights that are not float32 (stages.ts). */
export function refusal(s: Setting): string | null {
  if (s.stage === 'B' && s.train !== 'lora' && s.weights !== 'float32') return 'stageB refuses trainable weights that are not float32';
  return s.refused;
}

/** What a setting holds besides activations, bytes, term by term. */
export function staticMemory(p: ParamCounts, s: Setting, o: { embeddingElems: number; loraRank?: number } = { embeddingElems: 77 * 2048 + 1280 }): Record<string, number> {
  const wb = BYTES[s.weights];
  const terms: Record<string, number> = {
    // loadStableDiffusion loads every component in one dtype and the pipeline object keeps them all
    'weights (UNet, both text encoders, VAE)': p.total * wb,
  };
  if (s.stage === 'A') {
    // stageA(): float32 leaves e [1, 77, 2048] and pooled [1, 1280], their grads and Adam's two moments
    terms['embeddings, grads, Adam'] = o.embeddingElems * 16;
  }
  if (s.stage === 'B') {
    let trained: number;
    if (s.train === 'lora') {
      const l = p.lora.find((x) => x.targets === (s.loraTargets ?? 'attention') && x.rank === (o.loraRank ?? 4));
      if (!l) throw new Error(`no LoRA count for ${s.loraTargets}`);
      trained = l.params;
      terms['adapters (float32), grads, Adam'] = trained * 16;
    } else {
      trained = s.train === 'attention' ? p.unetAttention : p.unet;
      // the trained weights are already in 'weights' (float32); gradients float32; Adam exp_avg + exp_avg_sq float32
      terms['gradients (float32)'] = trained * 4;
      terms['Adam moments (2 x float32)'] = trained * 8;
    }
  }
  if (s.mixedPrecision && s.weights === 'float32' && s.stage !== 'C') {
    // autocast casts each float32 weight to bf16 per op; the matmul/conv backward needs the cast weight
    // for the input's gradient, so autograd keeps the casts of every layer the gradient passes through
    // until the backward (checkpointing: one segment's at a time)
    const onPath = s.stage === 'A' || (s.train === 'lora' && s.loraTargets !== 'attention+resnets') ? p.unetOnGradPathA : p.unet;
    const held = s.ckpt ? Math.max(...Object.entries(p.unetBlocks).filter(([k]) => k !== 'other').map(([, v]) => v)) : onPath;
    terms['bf16 casts of the weights kept for the backward'] = held * 2;
  }
  return terms;
}

/** y = a + b * x through two points. */
export function linearFit(x0: number, y0: number, x1: number, y1: number): { a: number; b: number } {
  const b = (y1 - y0) / (x1 - x0);
  return { a: y0 - b * x0, b };
}

/** Parameters of the tensors in a safetensors file (from its header). */
export function safetensorsParams(file: string): number {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape?: number[] }>;
  return Object.entries(header).filter(([k]) => k !== '__metadata__').reduce((acc, [, v]) => acc + numel(v.shape!), 0);
}

