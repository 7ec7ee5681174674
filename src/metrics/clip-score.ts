// CLIP score (torchmetrics' CLIPScore: 100 * max(cos(E_image, E_text), 0); Hessel et al. 2021 with w = 100)
// and CLIP-I (cosine of two images' embeddings), on transformers' CLIPModel with CLIPImageProcessor's input.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Tensor, cat, noGrad, tensor, tidy, type DType, type Device } from '../engine/index.js';
import { snapshotDownload } from '../io/hub.js';
import { type RgbImage } from '../io/image-types.js';
import { CLIPModel, CLIPTokenizer, loadCLIPModel, normalize, parseCLIPConfig, readConfigJson } from '../models/clip/index.js';
import {
  clipPixelValues, defaultProcessorConfig, readProcessorConfig, type CLIPImageProcessorConfig, type ResizeBackend,
} from './clip-preprocess.js';
import { MetricInputError, MetricLoadError, hubOptions, sourceKind, type MetricHubOptions } from './common.js';

/**
 * Images: uint8 RgbImages, a [B, 3, H, W] tensor in [-1, 1] as the pipelines return, or pixel values
 * [B, 3, S, S] already preprocessed (CLIPImageProcessor's output, used as they are).
 */
export type ImageInput = RgbImage | RgbImage[] | Tensor | { pixelValues: Tensor };

/** Where CLIPScorer runs and how it preprocesses images. */
export interface CLIPScorerOptions {
  /** Where the model runs (default 'cpu'). */
  device?: Device;
  /** Weights' dtype (default float32); embeddings are normalised and returned in float32. */
  dtype?: DType;
  /** Reads model.<variant>.safetensors (e.g. 'fp16'). */
  variant?: string;
  /** 'pil' (default): CLIPImageProcessorPil, bit-exact; 'torchvision': the torchvision backend (see clip-preprocess.ts). */
  resizeBackend?: ResizeBackend;
  /** Images or texts per forward pass (default 32). */
  batchSize?: number;
}

/** What a CLIPModel repo needs here: config, safetensors weights, tokenizer files, preprocessor config. */
export function clipHubPatterns(variant?: string): { allowPatterns: string[]; ignorePatterns: string[] } {
  const allow = ['config.json', 'preprocessor_config.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json',
    'special_tokens_map.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'tokenizer/tokenizer_config.json'];
  if (variant) allow.push(`model.${variant}.safetensors`, `model.safetensors.index.${variant}.json`, `model-*-of-*.${variant}.safetensors`);
  else allow.push('model.safetensors', 'model.safetensors.index.json', 'model-*-of-*.safetensors');
  return { allowPatterns: allow, ignorePatterns: variant ? [] : ['*.fp16.*', '*.bf16.*'] };
}

/** vocab.json + merges.txt (+ tokenizer_config.json) at the folder's root, as transformers saves a CLIPModel, or in tokenizer/. */
export function loadCLIPTokenizer(dir: string): CLIPTokenizer {
  for (const d of [dir, path.join(dir, 'tokenizer')]) {
    if (existsSync(path.join(d, 'vocab.json')) && existsSync(path.join(d, 'merges.txt'))) return CLIPTokenizer.fromDir(d);
  }
  throw new MetricLoadError(dir, 'no CLIP tokenizer: expected vocab.json and merges.txt in this folder or in its tokenizer/ subfolder');
}

/** A CLIP (transformers CLIPModel layout) that scores images: CLIP score to texts, CLIP-I between images, and the CLIP feature distance. */
export class CLIPScorer {
  readonly resizeBackend: ResizeBackend;
  readonly batchSize: number;
  private constructor(
    readonly model: CLIPModel,
    /** null: texts must be given as token ids. */
    readonly tokenizer: CLIPTokenizer | null,
    readonly processor: CLIPImageProcessorConfig,
    opts: CLIPScorerOptions,
  ) {
    this.resizeBackend = opts.resizeBackend ?? 'pil';
    this.batchSize = opts.batchSize ?? 32;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new MetricInputError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  }

  /**
   * A transformers CLIPModel folder (config.json, model.safetensors, vocab.json + merges.txt at the root or
   * in tokenizer/, optional preprocessor_config.json), or a Hub repo id such as 'openai/clip-vit-large-patch14'
   * (only those files are downloaded, into the huggingface_hub cache).
   */
  static async load(source: string, opts: CLIPScorerOptions & MetricHubOptions = {}): Promise<CLIPScorer> {
    const dir = sourceKind(source, 'folder') === 'hub'
      ? await snapshotDownload(source, { ...hubOptions(opts), ...clipHubPatterns(opts.variant) })
      : source;
    // config, tokenizer and preprocessor first: a bad folder fails before any weight is read
    const config = parseCLIPConfig(readConfigJson(dir), path.join(dir, 'config.json'));
    const tokenizer = loadCLIPTokenizer(dir);
    const processor = readProcessorConfig(dir, config.visionConfig.imageSize);
    const model = loadCLIPModel(dir, { device: opts.device, dtype: opts.dtype, variant: opts.variant });
    try {
      return new CLIPScorer(model, tokenizer, processor, opts);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /** Around a model already loaded (the scorer takes it over: dispose() frees it). */
  static fromModel(model: CLIPModel, tokenizer: CLIPTokenizer | null, opts: CLIPScorerOptions & { processor?: CLIPImageProcessorConfig } = {}): CLIPScorer {
    return new CLIPScorer(model.eval(), tokenizer, opts.processor ?? defaultProcessorConfig(model.config.visionConfig.imageSize), opts);
  }

  private get weight(): Tensor {
    return this.model.visual_projection.weight;
  }

  /** CLIPImageProcessor's pixel_values: [B, 3, S, S] float32 on the CPU. */
  pixelValues(images: ImageInput): Tensor {
    if (isPixelValues(images)) return images.pixelValues.to({ dtype: 'float32', device: 'cpu' });
    return clipPixelValues(asBatch(images), this.processor, this.resizeBackend);
  }

  /** Projected, unit-normalised image embeddings: [B, P] float32 on the model's device. */
  imageEmbeds(images: ImageInput): Tensor {
    if (isPixelValues(images)) return this.embedPixels(images.pixelValues);
    const batch = asBatch(images);
    const n = Array.isArray(batch) ? batch.length : batch.size(0);
    if (n === 0) throw new MetricInputError('no images given');
    return tidy(() => noGrad(() => {
      const parts: Tensor[] = [];
      for (let i = 0; i < n; i += this.batchSize) {
        const m = Math.min(this.batchSize, n - i);
        const chunk = Array.isArray(batch) ? batch.slice(i, i + m) : batch.narrow(0, i, m);
        parts.push(this.embedPixels(clipPixelValues(chunk, this.processor, this.resizeBackend))); // [m, P]
      }
      return parts.length === 1 ? parts[0]! : cat(parts);
    }));
  }

  /** Pixel values [B, 3, S, S] -> unit embeddings [B, P] float32, batchSize at a time. */
  private embedPixels(pixelValues: Tensor): Tensor {
    const n = pixelValues.size(0);
    return tidy(() => noGrad(() => {
      const parts: Tensor[] = [];
      for (let i = 0; i < n; i += this.batchSize) {
        const px = pixelValues.narrow(0, i, Math.min(this.batchSize, n - i)).to({ device: this.weight.device, dtype: this.weight.dtype });
        parts.push(normalize(this.model.getImageFeatures(px).float())); // [m, P]
      }
      return parts.length === 1 ? parts[0]! : cat(parts);
    }));
  }

  /**
   * Projected, unit-normalised text embeddings [B, P] float32. Texts are tokenized as transformers'
   * CLIPTokenizer does (padding to the longest with an attention mask, truncated to the context length
   * keeping the end token); or give token ids, rows of equal length, bos ... eos.
   */
  textEmbeds(texts: string[] | number[][]): Tensor {
    if (!Array.isArray(texts) || texts.length === 0) throw new MetricInputError('no texts given');
    return tidy(() => noGrad(() => {
      const parts: Tensor[] = [];
      for (let i = 0; i < texts.length; i += this.batchSize) {
        const chunk = texts.slice(i, i + this.batchSize);
        const { ids, mask } = this.encode(chunk);
        const feats = this.model.getTextFeatures(tensor(ids, { dtype: 'int64', device: this.weight.device }), { attentionMask: mask });
        parts.push(normalize(feats.float())); // [m, P]
      }
      return parts.length === 1 ? parts[0]! : cat(parts);
    }));
  }

  private encode(texts: string[] | number[][]): { ids: number[][]; mask: number[][] | null } {
    if (texts.every((t) => typeof t === 'string')) {
      if (this.tokenizer === null) throw new MetricInputError('this CLIP scorer has no tokenizer: give token ids instead of texts');
      const maxLength = Math.min(this.tokenizer.modelMaxLength, this.model.config.textConfig.maxPositionEmbeddings);
      const enc = this.tokenizer.call(texts as string[], { padding: 'longest', maxLength });
      return { ids: enc.inputIds, mask: enc.attentionMask };
    }
    const rows = texts as number[][];
    if (!rows.every((r) => Array.isArray(r) && r.length > 0 && r.length === rows[0]!.length && r.every(Number.isInteger))) {
      throw new MetricInputError('texts must all be strings, or all be token id rows of one length');
    }
    return { ids: rows, mask: null };
  }

  /** cos(image_i, text_i) per pair, in [-1, 1]. */
  cosine(images: ImageInput, texts: string[] | number[][]): number[] {
    const n = count(images);
    if (n !== texts.length) throw new MetricInputError(`${n} images but ${texts.length} texts: clipScore pairs them one to one`);
    return tidy(() => this.imageEmbeds(images).mul(this.textEmbeds(texts)).sum(-1).toFlatArray());
  }

  /** CLIP score per pair: 100 * max(cos, 0). torchmetrics' CLIPScore reports max(100 * mean(cos), 0) over a batch. */
  clipScore(images: ImageInput, texts: string[] | number[][]): number[] {
    return this.cosine(images, texts).map((c) => 100 * Math.max(c, 0));
  }

  /** CLIP-I: cos(image embedding of a_i, of b_i) per pair, in [-1, 1] (no clamp, no 100). */
  clipI(imagesA: ImageInput, imagesB: ImageInput): number[] {
    const n = count(imagesA), m = count(imagesB);
    if (n !== m) throw new MetricInputError(`clipI pairs images one to one: got ${n} and ${m}`);
    return tidy(() => this.imageEmbeds(imagesA).mul(this.imageEmbeds(imagesB)).sum(-1).toFlatArray());
  }

  /**
   * A perceptual distance on this CLIP's image tower, the way LPIPS measures one on a classifier's
   * (Zhang et al. 2018, its uncalibrated 'baseline' variant: no learned weights): after each encoder
   * layer, every patch token unit-normalised over channels, squared differences summed over channels,
   * averaged over tokens, then over layers. Unlike CLIP-I (one pooled vector), the patch tokens keep
   * where things are, so it sees an object that moved or grew. 0 for identical images.
   */
  featureDistance(imagesA: ImageInput, imagesB: ImageInput): number[] {
    const n = count(imagesA), m = count(imagesB);
    if (n !== m) throw new MetricInputError(`featureDistance pairs images one to one: got ${n} and ${m}`);
    return tidy(() => noGrad(() => {
      const feats = (images: ImageInput) => {
        const px = this.pixelValues(images).to({ device: this.weight.device, dtype: this.weight.dtype });
        return this.model.vision_model.forward(px, { outputHiddenStates: true }).hiddenStates!.slice(1) // L x [B, N + 1, D]
          .map((h) => { const t = h.narrow(1, 1, h.size(1) - 1).float(); return t.div(t.square().sum(-1, { keepdim: true }).sqrt().add(1e-10)); });
      };
      const fa = feats(imagesA), fb = feats(imagesB);
      const per = fa.map((a, i) => a.sub(fb[i]!).square().sum(-1).mean(-1)); // L x [B]
      return per.reduce((acc, d) => acc.add(d)).div(per.length).toFlatArray();
    }));
  }

  dispose(): void {
    this.model.dispose();
  }
}

function isPixelValues(images: ImageInput): images is { pixelValues: Tensor } {
  return typeof images === 'object' && images !== null && 'pixelValues' in images && images.pixelValues instanceof Tensor;
}

function asBatch(images: Exclude<ImageInput, { pixelValues: Tensor }>): RgbImage[] | Tensor {
  if (Array.isArray(images) || images instanceof Tensor) return images;
  return [images];
}

function count(images: ImageInput): number {
  if (isPixelValues(images)) return images.pixelValues.size(0);
  const b = asBatch(images);
  return Array.isArray(b) ? b.length : b.shape[0] ?? 0;
}
