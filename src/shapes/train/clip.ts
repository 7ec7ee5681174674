// A CLIP for the Shapes-64 domain: a transformers-format CLIPModel (ViT over the 64x64 image, text
// tower over the domain tokenizer) trained contrastively on renders and their full and partial
// captions, so that CLIP score, CLIP-I and the automatic choice of eta work offline on the embedded
// model. Partial captions match many images of a batch: the loss is SigLIP's pairwise sigmoid (every
// true match must score high), or the multi-positive form of CLIP's InfoNCE (-log of the softmax
// mass on every caption (image) that truly matches).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { dispose, fromBytes, full, Generator, keep, noGrad, optim, tidy, type Device, type Tensor } from '../../engine/index.js';
import { writeFileAtomic } from '../../io/image.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../../metrics/clip-preprocess.js';
import { CLIPModel, CLIPTokenizer, parseCLIPConfig } from '../../models/clip/index.js';
import { captionOf, type CaptionAttributes } from '../captions.js';
import { ATTRIBUTES, BACKGROUNDS, mulberry32, OBJECT_COLORS, POSITION_INFO, POSITIONS, randomSpec, SHAPES, SIZE_SIDE, SIZES, type AttributeName, type Position, type ShapeSpec, type Size } from '../spec.js';
import { buildShapesVocab, SHAPES_BOS_TOKEN, SHAPES_EOS_TOKEN, shapesTokenizerConfig, writeShapesTokenizer } from '../tokenizer.js';
import { renderBatch, stepSeed } from './data.js';

/** Texts of the domain are at most 14 tokens ("a large purple triangle in the bottom right on a white background" + bos/eos). */
export const SHAPES_CLIP_MAX_LENGTH = 32;

/** transformers' CLIPConfig config.json for the domain CLIP (0.32 M parameters). */
export function shapesClipConfig(): Record<string, unknown> {
  const { vocab } = buildShapesVocab();
  const eos = vocab[SHAPES_EOS_TOKEN]!;
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: 64,
    logit_scale_init_value: 2.6592,
    text_config: {
      model_type: 'clip_text_model', vocab_size: Object.keys(vocab).length, hidden_size: 64, intermediate_size: 256,
      num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: SHAPES_CLIP_MAX_LENGTH, hidden_act: 'quick_gelu',
      layer_norm_eps: 1e-5, projection_dim: 64, bos_token_id: vocab[SHAPES_BOS_TOKEN]!, eos_token_id: eos, pad_token_id: eos,
    },
    vision_config: {
      model_type: 'clip_vision_model', image_size: 64, patch_size: 8, num_channels: 3, hidden_size: 64, intermediate_size: 256,
      num_hidden_layers: 3, num_attention_heads: 4, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, projection_dim: 64,
    },
  };
}

/** CLIPImageProcessor's settings: the 64x64 render is used as it is (no resize or crop), CLIP's normalization. */
export function shapesClipPreprocessorConfig(): Record<string, unknown> {
  return {
    image_processor_type: 'CLIPImageProcessor', do_resize: true, size: { shortest_edge: 64 }, resample: 3,
    do_center_crop: true, crop_size: { height: 64, width: 64 }, do_rescale: true, rescale_factor: 1 / 255,
    do_normalize: true, image_mean: [...OPENAI_CLIP_MEAN], image_std: [...OPENAI_CLIP_STD],
    do_convert_rgb: true,
  };
}

/** [B, 3, 64, 64] in [-1, 1] -> CLIP pixel values (the preprocessor's rescale and normalize; no resize at 64x64). */
export function shapesClipPixels(images: Tensor): Tensor {
  return tidy(() => {
    const mean = fromBytes(new Uint8Array(new Float32Array(OPENAI_CLIP_MEAN).buffer), [1, 3, 1, 1], 'float32', { device: images.device });
    const std = fromBytes(new Uint8Array(new Float32Array(OPENAI_CLIP_STD).buffer), [1, 3, 1, 1], 'float32', { device: images.device });
    return images.float().add(1).div(2).sub(mean).div(std);
  });
}

export interface ClipTrainSettings {
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  /** Share of full captions (the rest name a random non-empty subset of the attributes). */
  full: number;
  /**
   * Images come in groups of this size: a random spec and variants of it that each change one
   * attribute. Random batches almost never hold two images that differ in one attribute only, so
   * without groups the loss barely teaches the fine differences (shape at 16 px, a grid cell).
   */
  groupSize: number;
  /** The attributes a variant changes, drawn uniformly from this list (repeat one to weight it); default all five. */
  variantAttributes?: AttributeName[];
  seed: number;
  /**
   * 'nce': CLIP's softmax loss in its multi-positive form. 'sigmoid': SigLIP's pairwise loss (Zhai et al.
   * 2023): every (image, caption) pair is its own yes/no question, so every image that has what a
   * caption names must score high for it, not only the caption's favourite kind of image. With the
   * softmax loss a partial caption ("a blue square") only has to put its mass on *some* of its matches,
   * and scores the ones with its favourite unnamed attributes far above the others: a biased metric.
   */
  loss?: 'nce' | 'sigmoid';
  /** Start from these weights (a checkpoint.safetensors of another run) instead of a random initialization. */
  initFrom?: string;
}

export const DEFAULT_CLIP_TRAIN_SETTINGS: ClipTrainSettings = { steps: 2500, batchSize: 128, lr: 1e-3, warmup: 150, weightDecay: 0.05, full: 0.4, groupSize: 4, seed: 0, loss: 'sigmoid' };

const VALUES: Record<AttributeName, readonly string[]> = { size: SIZES, color: OBJECT_COLORS, shape: SHAPES, position: POSITIONS, background: BACKGROUNDS };

/** `spec` with one attribute changed to another value; size and position move the geometry by the same jitter. */
export function variantSpec(spec: ShapeSpec, rng: () => number, attributes: readonly AttributeName[] = ATTRIBUTES): ShapeSpec {
  const a = attributes[Math.floor(rng() * attributes.length)]!;
  const others = VALUES[a].filter((v) => v !== spec[a]);
  const v = others[Math.floor(rng() * others.length)]!;
  const out = { ...spec, [a]: v } as ShapeSpec;
  if (a === 'size') out.side = spec.side - SIZE_SIDE[spec.size] + SIZE_SIDE[v as Size];
  if (a === 'position') {
    out.cx = spec.cx - POSITION_INFO[spec.position].x + POSITION_INFO[v as Position].x;
    out.cy = spec.cy - POSITION_INFO[spec.position].y + POSITION_INFO[v as Position].y;
  }
  return out;
}

/** A batch of specs in groups: a random spec, then `groupSize - 1` one-attribute variants of it. */
export function groupedSpecs(rng: () => number, batchSize: number, groupSize: number, attributes: readonly AttributeName[] = ATTRIBUTES): ShapeSpec[] {
  const specs: ShapeSpec[] = [];
  while (specs.length < batchSize) {
    const base = randomSpec(rng);
    specs.push(base);
    for (let i = 1; i < groupSize && specs.length < batchSize; i++) specs.push(variantSpec(base, rng, attributes));
  }
  return specs;
}

/** A caption for `spec` naming all attributes (p = full) or a random non-empty subset; and what it names. */
function clipCaption(spec: ShapeSpec, rng: () => number, full: number): CaptionAttributes {
  if (rng() < full) return { ...spec };
  const mask = 1 + Math.floor(rng() * 31);
  const attrs: Record<string, string> = {};
  ATTRIBUTES.forEach((a, i) => { if ((mask >> i) & 1) attrs[a] = spec[a]; });
  return attrs as CaptionAttributes;
}

/** 1 where caption j's named attributes all hold for image i: [B_img, B_txt]. */
function matchMatrix(specs: ShapeSpec[], named: CaptionAttributes[], device: Device): Tensor {
  const m = new Float32Array(specs.length * named.length);
  specs.forEach((s, i) => named.forEach((n, j) => {
    m[i * named.length + j] = (Object.keys(n) as AttributeName[]).every((a) => s[a] === n[a]) ? 1 : 0;
  }));
  return fromBytes(new Uint8Array(m.buffer), [specs.length, named.length], 'float32', { device });
}

/** SigLIP: -mean_i sum_j log sigmoid(z_ij * (t * cos_ij + b)), z = +1 for a match, -1 otherwise. */
function sigmoidPairLoss(cosines: Tensor, positives: Tensor, scale: Tensor, bias: Tensor): Tensor {
  const z = positives.mul(2).sub(1); // [B, B] in {-1, 1}
  const x = cosines.mul(scale.exp()).add(bias).mul(z);
  // -log sigmoid(x) = softplus(-x) = relu(-x) + log1p(exp(-|x|))
  const nll = x.neg().relu().add(x.abs().neg().exp().log1p());
  return nll.sum().div(cosines.size(0));
}

/** -mean log(sum of softmax over the positives), per row. */
function multiPositiveNce(logits: Tensor, positives: Tensor): Tensor {
  return logits.softmax(1).mul(positives).sum(1).add(1e-8).log().neg().mean();
}

export function shapesClipTokenizer(): CLIPTokenizer {
  const { vocab, merges } = buildShapesVocab();
  return new CLIPTokenizer(new Map(Object.entries(vocab)), merges, { modelMaxLength: SHAPES_CLIP_MAX_LENGTH });
}

function lrAt(s: ClipTrainSettings, step: number): number {
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  const f = (step - s.warmup) / Math.max(1, s.steps - s.warmup);
  return s.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, f))));
}

export interface ClipTrainHooks {
  onStep?: (step: number, total: number, loss: number) => void;
  onLog?: (message: string) => void;
  shouldStop?: () => boolean;
}

/** Per-attribute zero-shot accuracy: the value whose one-attribute caption ("a red shape", "a circle") scores highest. */
export function zeroShotAccuracy(model: CLIPModel, tok: CLIPTokenizer, images: Tensor, specs: ShapeSpec[]): Record<AttributeName, number> {
  return noGrad(() => tidy(() => {
    const img = model.getImageFeatures(shapesClipPixels(images));
    const imgN = img.div(img.square().sum(-1, { keepdim: true }).sqrt());
    const out = {} as Record<AttributeName, number>;
    for (const a of ATTRIBUTES) {
      const texts = VALUES[a].map((v) => captionOf({ [a]: v } as CaptionAttributes));
      const txt = model.getTextFeatures(tok.call(texts).inputIds);
      const txtN = txt.div(txt.square().sum(-1, { keepdim: true }).sqrt());
      const pred = imgN.matmul(txtN.transpose(0, 1)).argmax(1).toArray() as number[];
      out[a] = pred.filter((p, i) => VALUES[a][p] === specs[i]![a]).length / specs.length;
    }
    return out;
  }));
}

/**
 * Trains (or resumes, from `dir`/checkpoint.safetensors) the domain CLIP. Batch k depends only on
 * (seed, k). Returns the model (the caller disposes it).
 */
export async function trainShapesClip(dir: string, s: ClipTrainSettings, hooks: ClipTrainHooks = {}, device: Device = 'cpu'): Promise<{ model: CLIPModel; step: number }> {
  mkdirSync(dir, { recursive: true });
  const config = parseCLIPConfig(shapesClipConfig());
  const model = new CLIPModel(config, { device, generator: new Generator(stepSeed(s.seed, 0, 300)) });
  const tok = shapesClipTokenizer();
  const params = model.train().requiresGrad_(true).namedParameters();
  // SigLIP's learned bias: used by the training loss only (the exported CLIPModel has no slot for it;
  // the metrics use cosines). Saved in the checkpoint with the optimizer.
  const sigBias = s.loss === 'sigmoid' ? keep(full([], -10).requiresGrad_(true)) : null;
  const opt = new optim.AdamW([...params.map(([, p]) => p), ...(sigBias ? [sigBias] : [])], { lr: s.lr, weightDecay: s.weightDecay });
  const ckpt = path.join(dir, 'checkpoint.safetensors');
  const state = path.join(dir, 'state.json');
  let start = 0;
  if (s.initFrom && !existsSync(state)) {
    const t = loadSafetensors(s.initFrom, { device });
    model.loadStateDict(new Map([...t].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v])));
    dispose([...t.values()]);
    hooks.onLog?.(`initialized from ${s.initFrom}`);
  }
  if (existsSync(ckpt) && existsSync(state)) {
    const saved = JSON.parse(readFileSync(state, 'utf8')) as { step: number; settings: ClipTrainSettings };
    if (JSON.stringify({ ...saved.settings, steps: 0 }) !== JSON.stringify({ ...s, steps: 0 })) throw new Error(`${dir} holds a run with other settings: train into a new folder`);
    const t = loadSafetensors(ckpt, { device });
    const m = new Map([...t].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v]));
    model.loadStateDict(m);
    if (sigBias && t.has('sigmoid_bias')) noGrad(() => void sigBias.copy_(t.get('sigmoid_bias')!));
    opt.loadStateDict({ kind: opt.kind, step: saved.step, hyper: {}, tensors: Object.fromEntries([...t].filter(([k]) => k.startsWith('optimizer.')).map(([k, v]) => [k.slice(10), v])) });
    dispose([...t.values()]);
    start = saved.step;
    hooks.onLog?.(`resuming ${dir} at step ${start}/${s.steps}`);
  }
  const save = async (step: number) => {
    const tensors: Record<string, Tensor> = Object.fromEntries(params.map(([k, p]) => [`model.${k}`, p]));
    if (sigBias) tensors.sigmoid_bias = sigBias;
    for (const [k, t] of Object.entries(opt.stateDict().tensors)) tensors[`optimizer.${k}`] = t;
    saveSafetensors(ckpt, tensors);
    await writeFileAtomic(state, Buffer.from(`${JSON.stringify({ step, settings: s }, null, 2)}\n`));
  };
  let step = start;
  try {
    for (; step < s.steps && !hooks.shouldStop?.(); step++) {
      const loss = tidy(() => {
        opt.lr = lrAt(s, step);
        const rng = mulberry32(stepSeed(s.seed, step, 301));
        const specs = groupedSpecs(rng, s.batchSize, s.groupSize, s.variantAttributes);
        const named = specs.map((sp) => clipCaption(sp, rng, s.full));
        const pixels = shapesClipPixels(renderBatch(specs, device));
        const out = model.forward(tok.call(named.map(captionOf)).inputIds, pixels);
        const pos = matchMatrix(specs, named, device); // [B_img, B_txt]
        const l = s.loss === 'sigmoid'
          ? sigmoidPairLoss(out.imageEmbeds.matmul(out.textEmbeds.transpose(0, 1)), pos, model.logit_scale, sigBias!)
          : multiPositiveNce(out.logitsPerImage, pos).add(multiPositiveNce(out.logitsPerText, pos.transpose(0, 1))).div(2);
        l.backward();
        optim.clipGradNorm(opt.params, 1).dispose();
        opt.step();
        opt.zeroGrad();
        noGrad(() => tidy(() => void model.logit_scale.copy_(model.logit_scale.clamp(0, Math.log(100)))));
        return l.item();
      });
      hooks.onStep?.(step + 1, s.steps, loss);
      if ((step + 1) % 500 === 0 && step + 1 < s.steps) await save(step + 1);
      await new Promise((r) => setImmediate(r));
    }
    await save(step);
  } finally {
    opt.disposeState();
    sigBias?.dispose();
  }
  model.eval().requiresGrad_(false);
  return { model, step };
}

/** Writes the trained CLIP as a transformers CLIPModel folder (config, weights, tokenizer, preprocessor), atomically. */
export function exportShapesClip(model: CLIPModel, outDir: string, meta: Record<string, unknown>): void {
  const tmp = `${outDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  saveSafetensors(path.join(tmp, 'model.safetensors'), Object.fromEntries(model.namedParameters().map(([k, p]) => [k, p])), { format: 'pt' });
  writeFileSync(path.join(tmp, 'config.json'), `${JSON.stringify({ ...shapesClipConfig(), _imagic: meta }, null, 2)}\n`);
  writeFileSync(path.join(tmp, 'preprocessor_config.json'), `${JSON.stringify(shapesClipPreprocessorConfig(), null, 2)}\n`);
  writeShapesTokenizer(tmp);
  writeFileSync(path.join(tmp, 'tokenizer_config.json'), `${JSON.stringify({ ...shapesTokenizerConfig(), model_max_length: SHAPES_CLIP_MAX_LENGTH }, null, 2)}\n`);
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
}
