// CLIPTextModelWithProjection (transformers): the text tower plus text_projection, a bias-free linear
// map of the pooled output. SDXL's second text encoder (OpenCLIP ViT-bigG) is one: its projected pooled
// output is the `text_embeds` of the UNet's added conditioning.
import { tidy, type Tensor } from '../../engine/index.js';
import { Linear, Module } from '../../nn/index.js';
import type { CLIPTextConfig } from './config.js';
import type { CLIPBuildOptions } from './encoder.js';
import { CLIPTextModel, type CLIPTextForwardOptions, type CLIPTextModelOutput } from './text-model.js';

export interface CLIPTextModelWithProjectionOutput extends CLIPTextModelOutput {
  /** text_projection(poolerOutput). [B, projection_dim] */
  textEmbeds: Tensor;
}

/** Keys as transformers writes them: `text_model.*` (the tower) and `text_projection.weight`. */
export class CLIPTextModelWithProjection extends Module {
  readonly text_model: CLIPTextModel;
  readonly text_projection: Linear;
  constructor(readonly config: CLIPTextConfig, o: CLIPBuildOptions = {}) {
    super();
    this.text_model = this.module('text_model', new CLIPTextModel(config, o));
    this.text_projection = this.module('text_projection', new Linear(config.hiddenSize, config.projectionDim, false, o));
  }

  /** input ids [B, L] -> the tower's outputs and textEmbeds [B, projection_dim]. */
  forward(inputIds: Tensor | number[][], opts: CLIPTextForwardOptions = {}): CLIPTextModelWithProjectionOutput {
    const out = this.text_model.forward(inputIds, opts);
    return { ...out, textEmbeds: tidy(() => this.text_projection.forward(out.poolerOutput)) };
  }
}
