// CLIPModel: both towers, their linear projections into the shared embedding space and the logit scale
// (for the CLIP score); follows transformers' CLIPModel (get_text_features, get_image_features, forward).
import { empty, full, tidy, type Tensor } from '../../engine/index.js';
import { Linear, Module, type LoadOptions } from '../../nn/index.js';
import { type CLIPConfig } from './config.js';
import { type CLIPBuildOptions } from './encoder.js';
import { CLIPTextModel, type CLIPTextForwardOptions } from './text-model.js';
import { CLIPVisionModel } from './vision-model.js';

/** position_ids buffers of older CLIPModel checkpoints. */
export const CLIP_MODEL_IGNORE_KEYS: readonly string[] = Object.freeze([
  'text_model.embeddings.position_ids',
  'vision_model.embeddings.position_ids',
]);

export interface CLIPModelOutput {
  /** Projected and unit-normalised: [B_img, P] and [B_txt, P]. */
  imageEmbeds: Tensor;
  textEmbeds: Tensor;
  /** exp(logit_scale) * cosine: [B_img, B_txt] and its transpose. */
  logitsPerImage: Tensor;
  logitsPerText: Tensor;
}

/** Keys as transformers' CLIPModel: `text_model.*`, `vision_model.*`, `visual_projection.weight`, `text_projection.weight`, `logit_scale`. */
export class CLIPModel extends Module {
  readonly text_model: CLIPTextModel;
  readonly vision_model: CLIPVisionModel;
  readonly visual_projection: Linear;
  readonly text_projection: Linear;
  readonly logit_scale: Tensor; // [] (log of the softmax temperature's inverse)
  constructor(readonly config: CLIPConfig, o: CLIPBuildOptions = {}) {
    super();
    const p = config.projectionDim;
    this.text_model = this.module('text_model', new CLIPTextModel(config.textConfig, o));
    this.vision_model = this.module('vision_model', new CLIPVisionModel(config.visionConfig, o));
    this.visual_projection = this.module('visual_projection', new Linear(config.visionConfig.hiddenSize, p, false, o));
    this.text_projection = this.module('text_projection', new Linear(config.textConfig.hiddenSize, p, false, o));
    this.logit_scale = this.param('logit_scale', o.device === 'meta'
      ? empty([], { device: 'meta', dtype: o.dtype })
      : full([], config.logitScaleInitValue, { device: o.device, dtype: o.dtype }));
  }

  /** Projected, NOT normalised text features (transformers' get_text_features): [B, P]. */
  getTextFeatures(inputIds: Tensor | number[][], opts: CLIPTextForwardOptions = {}): Tensor {
    return tidy(() => this.text_projection.forward(this.text_model.forward(inputIds, opts).poolerOutput));
  }

  /** Projected, NOT normalised image features (transformers' get_image_features): [B, P]. */
  getImageFeatures(pixelValues: Tensor): Tensor {
    return tidy(() => this.visual_projection.forward(this.vision_model.forward(pixelValues).poolerOutput));
  }

  /** Normalised embeddings of both and their scaled cosine similarities, as transformers' CLIPModel.forward. */
  forward(inputIds: Tensor | number[][], pixelValues: Tensor, opts: CLIPTextForwardOptions = {}): CLIPModelOutput {
    return tidy(() => {
      const imageEmbeds = normalize(this.getImageFeatures(pixelValues)); // [Bi, P]
      const textEmbeds = normalize(this.getTextFeatures(inputIds, opts)); // [Bt, P]
      const logitsPerText = textEmbeds.matmul(imageEmbeds.transpose(0, 1)).mul(this.logit_scale.exp()); // [Bt, Bi]
      return { imageEmbeds, textEmbeds, logitsPerImage: logitsPerText.transpose(0, 1), logitsPerText };
    });
  }

  /** Strict loading that ignores the position_ids buffers of older checkpoints. */
  override loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, opts: LoadOptions = {}): void {
    super.loadStateDict(sd, { ...opts, ignore: [...CLIP_MODEL_IGNORE_KEYS, ...(opts.ignore ?? [])] });
  }
}

/** x / ||x|| along the last dimension. */
export function normalize(x: Tensor): Tensor {
  return x.div(x.square().sum(-1, { keepdim: true }).sqrt());
}
