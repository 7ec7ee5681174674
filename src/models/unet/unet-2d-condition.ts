// UNet2DConditionModel: the noise predictor of Stable Diffusion (Rombach et al. 2022), a text-
// conditioned UNet, as diffusers' models/unets/unet_2d_condition.py (and candle's unet_2d.rs).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cat, tidy, type DType, type Device, type Tensor } from '../../engine/index.js';
import { resolveWeightFiles } from '../../io/diffusers.js';
import { loadWeights } from '../../io/load.js';
import { type Segment, Conv2d, GroupNorm, Module, ModuleList, type InitOptions } from '../../nn/index.js';
import { activation, initOf, parseUNetConfig, perBlock, type UNet2DConditionConfig } from './config.js';
import { TimestepEmbedding, Timesteps, timestepsForBatch } from './embeddings.js';
import {
  CrossAttnDownBlock2D, CrossAttnUpBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D,
  type BlockOptions, type DownBlock, type UpBlock,
} from './unet-blocks.js';

/** SDXL's added conditioning (addition_embed_type 'text_time'). */
export interface AddedConditions {
  /** The pooled, projected text embedding of the second text encoder. [B (or 1), D] */
  textEmbeds: Tensor;
  /** (original height, width, crop top, left, target height, width) per image. [B (or 1), 6] */
  timeIds: Tensor;
}

export class UNet2DConditionModel extends Module {
  readonly config: UNet2DConditionConfig;
  readonly conv_in: Conv2d;
  readonly time_proj: Timesteps;
  readonly time_embedding: TimestepEmbedding;
  /** SDXL: the sinusoidal embedding of each time_id (no parameters). */
  readonly add_time_proj: Timesteps | null;
  /** SDXL: [text_embeds, embedded time_ids] -> added to the time embedding. */
  readonly add_embedding: TimestepEmbedding | null;
  readonly down_blocks: ModuleList<(DownBlock2D | CrossAttnDownBlock2D) & DownBlock>;
  readonly up_blocks: ModuleList<(UpBlock2D | CrossAttnUpBlock2D) & UpBlock>;
  readonly mid_block: UNetMidBlock2DCrossAttn | null;
  readonly conv_norm_out: GroupNorm;
  readonly conv_out: Conv2d;
  /** How many x2 upsamplers the up path has: latent sizes not divisible by 2^this need upsample sizes. */
  readonly numUpsamplers: number;
  /** The cross-attention width each down block expects (null: the UNet has no cross-attention). */
  readonly crossAttentionDim: number | null;
  private readonly convAct: (x: Tensor) => Tensor;
  private readonly timeEmbedAct: ((x: Tensor) => Tensor) | null;

  /**
   * Builds from a parsed config or a raw config.json object. Use device 'meta' to allocate nothing;
   * with random init, build inside tidy() so that the initializers' temporaries are freed at once.
   */
  constructor(config: UNet2DConditionConfig | Record<string, unknown>, o: InitOptions = {}) {
    super();
    const c = (this.config = parseUNetConfig(config as Record<string, unknown>));
    o = initOf(o);
    const n = c.down_block_types.length;
    const boc = c.block_out_channels;
    const groups = c.norm_num_groups!;
    const layers = perBlock(c.layers_per_block, n, 'layers_per_block');
    const crossDims = perBlock(c.cross_attention_dim, n, 'cross_attention_dim');
    const heads = perBlock(c.attention_head_dim, n, 'attention_head_dim'); // head COUNT (diffusers quirk)
    const tLayers = perBlock(c.transformer_layers_per_block, n, 'transformer_layers_per_block');
    const onlyCross = perBlock(c.only_cross_attention, n, 'only_cross_attention');
    const usesCross = c.down_block_types.includes('CrossAttnDownBlock2D') || c.up_block_types.includes('CrossAttnUpBlock2D') || c.mid_block_type !== null;
    this.crossAttentionDim = usesCross ? crossDims[n - 1]! : null;
    if (usesCross && new Set(crossDims).size > 1) {
      throw new Error(`UNet2DConditionModel: per-block cross_attention_dim values differ (${crossDims.join(', ')}); one text encoder width is supported`);
    }

    const kIn = c.conv_in_kernel, kOut = c.conv_out_kernel;
    this.conv_in = this.module('conv_in', new Conv2d(c.in_channels, boc[0]!, kIn, { ...o, padding: (kIn - 1) / 2 }));
    const timeEmbedDim = c.time_embedding_dim ?? boc[0]! * 4;
    this.time_proj = this.module('time_proj', new Timesteps(boc[0]!, c.flip_sin_to_cos, c.freq_shift));
    this.time_embedding = this.module('time_embedding', new TimestepEmbedding(boc[0]!, timeEmbedDim, c.act_fn, c.timestep_post_act, o));
    this.timeEmbedAct = c.time_embedding_act_fn === null ? null : activation(c.time_embedding_act_fn);
    if (c.addition_embed_type === 'text_time') {
      this.add_time_proj = this.module('add_time_proj', new Timesteps(c.addition_time_embed_dim!, c.flip_sin_to_cos, c.freq_shift));
      this.add_embedding = this.module('add_embedding', new TimestepEmbedding(c.projection_class_embeddings_input_dim!, timeEmbedDim, c.act_fn, null, o));
    } else {
      this.add_time_proj = null;
      this.add_embedding = null;
    }

    const base = (numLayers: number): BlockOptions => ({
      ...o, tembChannels: timeEmbedDim, numLayers, resnetEps: c.norm_eps, resnetGroups: groups, resnetActFn: c.act_fn,
      resnetTimeScaleShift: c.resnet_time_scale_shift, dropout: c.dropout,
    });
    const attn = (i: number) => ({
      crossAttentionDim: crossDims[i]!, numAttentionHeads: heads[i]!, transformerLayersPerBlock: tLayers[i]!,
      useLinearProjection: c.use_linear_projection, onlyCrossAttention: onlyCross[i]!, upcastAttention: c.upcast_attention,
    });

    // registration order as diffusers (down_blocks, up_blocks, mid_block): state-dict order matches
    const down: ((DownBlock2D | CrossAttnDownBlock2D) & DownBlock)[] = [];
    let outCh = boc[0]!;
    c.down_block_types.forEach((type, i) => {
      const inCh = outCh;
      outCh = boc[i]!;
      const d = { ...base(layers[i]!), inChannels: inCh, outChannels: outCh, addDownsample: i < n - 1, downsamplePadding: c.downsample_padding };
      down.push(type === 'CrossAttnDownBlock2D' ? new CrossAttnDownBlock2D({ ...d, ...attn(i) }) : new DownBlock2D(d));
    });
    this.down_blocks = this.module('down_blocks', new ModuleList(down));

    const rev = (i: number) => n - 1 - i; // up block i mirrors down block n-1-i
    const up: ((UpBlock2D | CrossAttnUpBlock2D) & UpBlock)[] = [];
    outCh = boc[n - 1]!;
    c.up_block_types.forEach((type, i) => {
      const prev = outCh;
      outCh = boc[rev(i)]!;
      const inCh = boc[rev(Math.min(i + 1, n - 1))]!;
      const u = { ...base(layers[rev(i)]! + 1), inChannels: inCh, outChannels: outCh, prevOutputChannel: prev, addUpsample: i < n - 1 };
      up.push(type === 'CrossAttnUpBlock2D' ? new CrossAttnUpBlock2D({ ...u, ...attn(rev(i)) }) : new UpBlock2D(u));
    });
    this.numUpsamplers = n - 1;
    this.up_blocks = this.module('up_blocks', new ModuleList(up));

    this.mid_block = c.mid_block_type === null ? null : this.module('mid_block', new UNetMidBlock2DCrossAttn({
      // diffusers gives only_cross_attention to the simple mid block only, never to this one
      ...base(1), ...attn(n - 1), onlyCrossAttention: false, inChannels: boc[n - 1]!, outputScaleFactor: c.mid_block_scale_factor,
    }));

    this.conv_norm_out = this.module('conv_norm_out', new GroupNorm(groups, boc[0]!, c.norm_eps, true, o));
    this.convAct = activation(c.act_fn);
    this.conv_out = this.module('conv_out', new Conv2d(boc[0]!, c.out_channels, kOut, { ...o, padding: (kOut - 1) / 2 }));
  }

  /**
   * Loads a diffusers `unet/` folder (config.json + diffusion_pytorch_model.safetensors): built on
   * 'meta', then filled strictly, so the weights are held once.
   */
  static fromPretrained(folder: string, opts: { dtype?: DType; device?: Device; weightsFile?: string } = {}): UNet2DConditionModel {
    const configFile = path.join(folder, 'config.json');
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`UNet2DConditionModel.fromPretrained: cannot read ${configFile}: ${(e as Error).message}`);
    }
    const model = new UNet2DConditionModel(json, { device: 'meta', dtype: opts.dtype ?? 'float32' });
    const files = opts.weightsFile ? [path.join(folder, opts.weightsFile)] : resolveWeightFiles(folder, { library: 'diffusers' }).files;
    try {
      loadWeights(model, files, { dtype: opts.dtype ?? 'float32', device: opts.device });
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model.eval();
  }

  /**
   * The forward pass as a chain of segments for gradient checkpointing (nn's checkpointedBackward):
   * state = [h, emb, ehs, ...skip connections]; one segment for the input, each down block, the mid
   * block, each up block, and the output. Composing them equals forward().
   */
  segments(sample: Tensor, timestep: number | Tensor, encoderHiddenStates: Tensor, added?: AddedConditions): { inputs: Tensor[]; segments: Segment[] } {
    this.checkInputs(sample, encoderHiddenStates);
    this.checkAdded(added, sample.shape[0]!);
    const b = sample.shape[0]!;
    const factor = 2 ** this.numUpsamplers;
    const forwardUpsampleSize = sample.shape.slice(2).some((d) => d % factor !== 0);
    const segments: Segment[] = [];
    // [sample, ehs(, text_embeds)] -> [h, emb, ehs, h]; SDXL's pooled text_embeds is an input, so
    // that a checkpointed backward hands its gradient on (Imagic stage A optimizes it).
    segments.push(([x, e, te]) => {
      const ehs = e!.shape[0] !== b ? e!.expand([b, -1, -1]) : e!;
      const emb = this.timeEmbedding(timestep, b, x!.device, x!.dtype, added && te ? { ...added, textEmbeds: te } : added);
      const h = this.conv_in.forward(this.config.center_input_sample ? x!.mul(2).sub(1) : x!);
      return [h, emb, ehs, h];
    });
    for (const block of this.down_blocks) {
      segments.push(([h, emb, ehs, ...res]) => {
        const out = block.forward(h!, emb!, ehs!);
        return [out.hiddenStates, emb!, ehs!, ...res, ...out.resSamples];
      });
    }
    if (this.mid_block !== null) {
      const mid = this.mid_block;
      segments.push(([h, emb, ehs, ...res]) => [mid.forward(h!, emb!, ehs!), emb!, ehs!, ...res]);
    }
    this.up_blocks.items.forEach((block, i) => {
      const isFinal = i === this.up_blocks.length - 1;
      segments.push(([h, emb, ehs, ...res]) => {
        const k = block.resnets.length;
        const skips = res.slice(res.length - k);
        const rest = res.slice(0, res.length - k);
        const last = rest[rest.length - 1];
        const upsampleSize = !isFinal && forwardUpsampleSize && last ? (last.shape.slice(2) as [number, number]) : null;
        return [block.forward(h!, skips, emb!, ehs!, upsampleSize), emb!, ehs!, ...rest];
      });
    });
    segments.push(([h]) => [this.conv_out.forward(this.convAct(this.conv_norm_out.forward(h!)))]);
    return { inputs: added ? [sample, encoderHiddenStates, added.textEmbeds] : [sample, encoderHiddenStates], segments };
  }

  /** The checks that turn a libtorch shape error deep inside into a message naming the argument. */
  private checkInputs(sample: Tensor, encoderHiddenStates: Tensor | null): void {
    const c = this.config;
    if (sample.ndim !== 4) throw new Error(`UNet2DConditionModel: sample must be [B, ${c.in_channels}, H, W], got [${sample.shape.join(', ')}]`);
    if (sample.shape[1] !== c.in_channels) {
      throw new Error(`UNet2DConditionModel: sample has ${sample.shape[1]} channels but the model takes in_channels=${c.in_channels} (sample [${sample.shape.join(', ')}])`);
    }
    if (this.crossAttentionDim === null) return;
    if (encoderHiddenStates === null) throw new Error('UNet2DConditionModel: encoder_hidden_states are required (the model has cross-attention)');
    const e = encoderHiddenStates;
    if (e.ndim !== 3) throw new Error(`UNet2DConditionModel: encoder_hidden_states must be [B, seq, ${this.crossAttentionDim}], got [${e.shape.join(', ')}]`);
    if (e.shape[2] !== this.crossAttentionDim) {
      throw new Error(`UNet2DConditionModel: encoder_hidden_states have width ${e.shape[2]} but cross_attention_dim is ${this.crossAttentionDim} (got [${e.shape.join(', ')}])`);
    }
    if (e.shape[0] !== sample.shape[0] && e.shape[0] !== 1) {
      throw new Error(`UNet2DConditionModel: encoder_hidden_states batch ${e.shape[0]} does not match the sample batch ${sample.shape[0]}`);
    }
  }

  /** SDXL's added conditions are given exactly when the model takes them, with a batch of 1 or B. */
  private checkAdded(added: AddedConditions | undefined, batch: number): void {
    if (this.add_embedding === null) {
      if (added) throw new Error('UNet2DConditionModel: added conditions (text_embeds, time_ids) given, but the model has no addition_embed_type');
      return;
    }
    if (!added) throw new Error("UNet2DConditionModel: this model (addition_embed_type 'text_time', SDXL) needs added conditions: text_embeds and time_ids");
    const want = this.config.projection_class_embeddings_input_dim! - 6 * this.config.addition_time_embed_dim!;
    const { textEmbeds: te, timeIds: ti } = added;
    if (te.ndim !== 2 || te.shape[1] !== want || (te.shape[0] !== batch && te.shape[0] !== 1)) {
      throw new Error(`UNet2DConditionModel: text_embeds must be [${batch} or 1, ${want}], got [${te.shape.join(', ')}]`);
    }
    if (ti.ndim !== 2 || ti.shape[1] !== 6 || (ti.shape[0] !== batch && ti.shape[0] !== 1)) {
      throw new Error(`UNet2DConditionModel: time_ids must be [${batch} or 1, 6], got [${ti.shape.join(', ')}]`);
    }
  }

  /**
   * The time embedding for a batch: timestep (number or [], [1], [B]) -> [B, timeEmbedDim]; with
   * SDXL's added conditions, plus add_embedding([text_embeds, sinusoids of each time_id]), before
   * the activation (as diffusers).
   */
  timeEmbedding(timestep: number | Tensor, batch: number, device: Device, dtype: DType, added?: AddedConditions): Tensor {
    return tidy(() => {
      const t = timestepsForBatch(timestep, batch, device); // [B] float32
      const tEmb = this.time_proj.forward(t).to(dtype); // [B, boc0]
      let emb = this.time_embedding.forward(tEmb); // [B, 4*boc0]
      if (this.add_embedding !== null && added) {
        const rows = (x: Tensor) => (x.shape[0] === batch ? x : x.expand(batch, -1));
        const ids = rows(added.timeIds).reshape(-1).float(); // [B*6]
        const timeEmbeds = this.add_time_proj!.forward(ids).reshape(batch, -1).to(dtype); // [B, 6*addDim]
        const addEmbeds = cat([rows(added.textEmbeds).to(dtype), timeEmbeds], -1); // [B, projection_class_embeddings_input_dim]
        emb = emb.add(this.add_embedding.forward(addEmbeds));
      }
      return this.timeEmbedAct ? this.timeEmbedAct(emb) : emb;
    });
  }

  /**
   * Predicts the noise: sample [B, in, h, w], timestep, encoderHiddenStates [B (or 1), 77, D]
   * -> [B, out, h, w]. Any h, w: when they do not divide by 2^numUpsamplers, each upsampler is told
   * the size of the skip map it must meet (diffusers' forward_upsample_size).
   */
  forward(sample: Tensor, timestep: number | Tensor, encoderHiddenStates: Tensor | null, added?: AddedConditions): Tensor {
    this.checkInputs(sample, encoderHiddenStates);
    this.checkAdded(added, sample.shape[0]!);
    return tidy(() => {
      const b = sample.shape[0]!;
      const factor = 2 ** this.numUpsamplers;
      const forwardUpsampleSize = sample.shape.slice(2).some((d) => d % factor !== 0);
      let ehs = encoderHiddenStates;
      if (ehs !== null && ehs.shape[0] !== b) ehs = ehs.expand([b, -1, -1]); // [B, 77, D]

      const emb = this.timeEmbedding(timestep, b, sample.device, sample.dtype, added); // [B, 4*boc0]
      let h = this.config.center_input_sample ? sample.mul(2).sub(1) : sample;
      h = this.conv_in.forward(h); // [B, boc0, h, w]

      const resSamples: Tensor[] = [h];
      for (const block of this.down_blocks) {
        const out = block.forward(h, emb, ehs);
        h = out.hiddenStates;
        resSamples.push(...out.resSamples);
      }
      if (this.mid_block !== null) h = this.mid_block.forward(h, emb, ehs);

      for (let i = 0; i < this.up_blocks.length; i++) {
        const block = this.up_blocks.at(i);
        const k = block.resnets.length;
        const skips = resSamples.splice(resSamples.length - k, k);
        const isFinal = i === this.up_blocks.length - 1;
        const last = resSamples[resSamples.length - 1];
        const upsampleSize = !isFinal && forwardUpsampleSize && last ? (last.shape.slice(2) as [number, number]) : null;
        h = block.forward(h, skips, emb, ehs, upsampleSize);
      }

      h = this.conv_out.forward(this.convAct(this.conv_norm_out.forward(h))); // [B, out, h, w]
      return h;
    });
  }
}
