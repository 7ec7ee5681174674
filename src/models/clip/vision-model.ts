// CLIPVisionModel: CLIP's ViT image tower (class token, patch embedding, pre-norm encoder, pooled CLS);
// follows transformers' CLIPVisionEmbeddings / CLIPVisionTransformer / CLIPVisionModel (modeling_clip.py).
import { cat, empty, noGrad, randn, tidy, type Tensor } from '../../engine/index.js';
import { Conv2d, Embedding, LayerNorm, Module, type LoadOptions } from '../../nn/index.js';
import { type CLIPVisionConfig } from './config.js';
import { CLIPEncoder, CLIPInputError, type CLIPBuildOptions } from './encoder.js';

/** Buffers older checkpoints carry that hold no weights. */
export const CLIP_VISION_IGNORE_KEYS: readonly string[] = Object.freeze([
  'vision_model.embeddings.position_ids',
  'embeddings.position_ids',
]);

/** [CLS, patch_1 .. patch_N] + position_embedding; patches from a stride-p conv without bias. */
export class CLIPVisionEmbeddings extends Module {
  readonly class_embedding: Tensor;
  readonly patch_embedding: Conv2d;
  readonly position_embedding: Embedding;
  readonly numPatches: number;
  constructor(readonly config: CLIPVisionConfig, o: CLIPBuildOptions = {}) {
    super();
    const d = config.hiddenSize;
    this.class_embedding = this.param('class_embedding', o.device === 'meta'
      ? empty([d], { device: 'meta', dtype: o.dtype })
      : noGrad(() => randn([d], { device: o.device, dtype: o.dtype, generator: o.generator })));
    this.patch_embedding = this.module('patch_embedding', new Conv2d(config.numChannels, d, config.patchSize,
      { stride: config.patchSize, bias: false, device: o.device, dtype: o.dtype, generator: o.generator }));
    this.numPatches = (config.imageSize / config.patchSize) ** 2;
    this.position_embedding = this.module('position_embedding', new Embedding(this.numPatches + 1, d, o));
  }
  forward(pixelValues: Tensor): Tensor {
    const b = pixelValues.size(0);
    const d = this.config.hiddenSize;
    const patches = this.patch_embedding.forward(pixelValues.to(this.patch_embedding.weight.dtype)); // [B, D, g, g]
    const tokens = patches.flatten(2).transpose(1, 2); // [B, N, D]
    const cls = this.class_embedding.view(1, 1, d).expand(b, 1, d); // [B, 1, D]
    return cat([cls, tokens], 1).add(this.position_embedding.weight); // [B, N + 1, D]
  }
}

export interface CLIPVisionModelOutput {
  lastHiddenState: Tensor; // [B, N + 1, D] (not normalized: post_layernorm applies to the pooled CLS only)
  poolerOutput: Tensor; // [B, D] = post_layernorm(CLS)
  hiddenStates?: Tensor[];
}

/**
 * The image tower. Parameter names are transformers' CLIPVisionModel state-dict keys
 * (`embeddings.*`, `pre_layrnorm.*` (sic), `encoder.layers.N.*`, `post_layernorm.*`); inside a
 * CLIPModel they carry the `vision_model.` prefix.
 */
export class CLIPVisionModel extends Module {
  readonly embeddings: CLIPVisionEmbeddings;
  readonly pre_layrnorm: LayerNorm;
  readonly encoder: CLIPEncoder;
  readonly post_layernorm: LayerNorm;
  constructor(readonly config: CLIPVisionConfig, o: CLIPBuildOptions = {}) {
    super();
    this.embeddings = this.module('embeddings', new CLIPVisionEmbeddings(config, o));
    this.pre_layrnorm = this.module('pre_layrnorm', new LayerNorm(config.hiddenSize, config.layerNormEps, o));
    this.encoder = this.module('encoder', new CLIPEncoder(config, o));
    this.post_layernorm = this.module('post_layernorm', new LayerNorm(config.hiddenSize, config.layerNormEps, o));
  }

  /** pixel values [B, C, S, S], already resized and normalised (CLIP's mean/std) -> hidden states and pooled CLS. */
  forward(pixelValues: Tensor, opts: { outputHiddenStates?: boolean } = {}): CLIPVisionModelOutput {
    return tidy(() => {
      const px = this.checkPixels(pixelValues);
      const x = this.pre_layrnorm.forward(this.embeddings.forward(px)); // [B, N + 1, D]
      const enc = this.encoder.forward(x, {}, opts.outputHiddenStates ?? false);
      const lastHiddenState = enc.lastHiddenState;
      const poolerOutput = this.post_layernorm.forward(lastHiddenState.select(1, 0)); // [B, D]
      return enc.hiddenStates ? { lastHiddenState, poolerOutput, hiddenStates: enc.hiddenStates } : { lastHiddenState, poolerOutput };
    });
  }

  /** Strict loading that ignores the position_ids buffer of older checkpoints. */
  override loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, opts: LoadOptions = {}): void {
    super.loadStateDict(sd, { ...opts, ignore: [...CLIP_VISION_IGNORE_KEYS, ...(opts.ignore ?? [])] });
  }

  private checkPixels(px: Tensor): Tensor {
    const c = this.config;
    const want = `[B, ${c.numChannels}, ${c.imageSize}, ${c.imageSize}]`;
    if (px.ndim !== 4 || px.size(1) !== c.numChannels || px.size(2) !== c.imageSize || px.size(3) !== c.imageSize) {
      throw new CLIPInputError(`CLIPVisionModel: pixel values must be ${want} (resize and center-crop first), got [${px.shape.join(', ')}]`);
    }
    if (px.size(0) === 0) throw new CLIPInputError('CLIPVisionModel: pixel values hold an empty batch');
    if (!['float32', 'float16', 'bfloat16', 'float64'].includes(px.dtype)) {
      throw new CLIPInputError(`CLIPVisionModel: pixel values must be floating point, got ${px.dtype}`);
    }
    const dev = this.embeddings.patch_embedding.weight.device;
    return px.device === dev ? px : px.to(dev);
  }
}
