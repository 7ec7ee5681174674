// The UNet's spatial transformer: Attention (scaled dot-product, multi-head), GEGLU FeedForward,
// BasicTransformerBlock and Transformer2DModel, as diffusers' attention_processor.py (AttnProcessor2_0),
// attention.py and transformers/transformer_2d.py (continuous input) for SD v1.
import { dropout, scaledDotProductAttention, tidy, type Tensor } from '../../engine/index.js';
import { Conv2d, GroupNorm, LayerNorm, Linear, Module, ModuleList, type InitOptions } from '../../nn/index.js';
import { initOf } from './config.js';

/** Drops its input in training (p > 0), so that `to_out.1` / `net.1` keep diffusers' indices. */
export class Dropout extends Module {
  constructor(readonly p = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.p > 0 && this.training ? dropout(x, this.p, true) : x;
  }
}

export interface AttentionOptions extends InitOptions {
  queryDim: number;
  /** Width of the keys/values' source; null for self-attention. */
  crossAttentionDim?: number | null;
  heads?: number;
  dimHead?: number;
  dropout?: number;
  /** Bias on to_q/to_k/to_v (false in SD). */
  bias?: boolean;
  /** Compute the attention in float32 when the model runs in half precision. */
  upcastAttention?: boolean;
}

/**
 * Multi-head attention: x [B, N, queryDim], context [B, M, crossDim] (or x) -> [B, N, queryDim];
 * heads of width dimHead, scale dimHead^-1/2.
 */
export class Attention extends Module {
  readonly heads: number;
  readonly dimHead: number;
  readonly innerDim: number;
  readonly queryDim: number;
  readonly crossAttentionDim: number;
  readonly isCrossAttention: boolean;
  readonly upcastAttention: boolean;
  readonly to_q: Linear;
  readonly to_k: Linear;
  readonly to_v: Linear;
  readonly to_out: ModuleList<Linear | Dropout>;

  constructor(o: AttentionOptions) {
    super();
    this.heads = o.heads ?? 8;
    this.dimHead = o.dimHead ?? 64;
    this.innerDim = this.heads * this.dimHead;
    this.queryDim = o.queryDim;
    this.isCrossAttention = o.crossAttentionDim != null;
    this.crossAttentionDim = o.crossAttentionDim ?? o.queryDim;
    this.upcastAttention = o.upcastAttention ?? false;
    const bias = o.bias ?? false;
    const init = initOf(o);
    this.to_q = this.module('to_q', new Linear(this.queryDim, this.innerDim, bias, init));
    this.to_k = this.module('to_k', new Linear(this.crossAttentionDim, this.innerDim, bias, init));
    this.to_v = this.module('to_v', new Linear(this.crossAttentionDim, this.innerDim, bias, init));
    this.to_out = this.module('to_out', new ModuleList<Linear | Dropout>([
      new Linear(this.innerDim, this.queryDim, true, init), new Dropout(o.dropout ?? 0),
    ]));
  }

  forward(x: Tensor, context?: Tensor | null): Tensor {
    return tidy(() => {
      const src = context ?? x;
      if (x.ndim !== 3 || x.shape[2] !== this.queryDim) {
        throw new Error(`Attention: expected hidden states [B, N, ${this.queryDim}], got [${x.shape.join(', ')}]`);
      }
      if (src.ndim !== 3 || src.shape[2] !== this.crossAttentionDim) {
        throw new Error(`Attention: expected encoder_hidden_states [B, M, ${this.crossAttentionDim}] (cross_attention_dim ${this.crossAttentionDim}), got [${src.shape.join(', ')}]`);
      }
      if (src.shape[0] !== x.shape[0]) {
        throw new Error(`Attention: batch of encoder_hidden_states (${src.shape[0]}) differs from the hidden states' (${x.shape[0]})`);
      }
      const b = x.shape[0]!;
      const split = (t: Tensor) => t.view([b, -1, this.heads, this.dimHead]).transpose(1, 2); // [B, heads, N, d]
      let q = split(this.to_q.forward(x));
      let k = split(this.to_k.forward(src));
      let v = split(this.to_v.forward(src));
      const dtype = q.dtype;
      const upcast = this.upcastAttention && dtype !== 'float32' && dtype !== 'float64';
      if (upcast) [q, k, v] = [q.to('float32'), k.to('float32'), v.to('float32')];
      let h = scaledDotProductAttention(q, k, v); // [B, heads, N, d]
      if (upcast) h = h.to(dtype);
      h = h.transpose(1, 2).reshape([b, -1, this.innerDim]); // [B, N, inner]
      for (const m of this.to_out) h = m.forward(h);
      return h;
    });
  }
}

/** proj [dimIn -> 2*dimOut] split into value and gate: value * gelu(gate) (Shazeer 2020). */
export class GEGLU extends Module {
  readonly proj: Linear;
  constructor(dimIn: number, readonly dimOut: number, o: InitOptions = {}) {
    super();
    this.proj = this.module('proj', new Linear(dimIn, 2 * dimOut, true, initOf(o)));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [h, gate] = this.proj.forward(x).chunk(2, -1);
      return h!.mul(gate!.gelu());
    });
  }
}

/** net.0 = GEGLU(dim -> mult*dim), net.1 = dropout, net.2 = Linear(mult*dim -> dim). */
export class FeedForward extends Module {
  readonly net: ModuleList<GEGLU | Dropout | Linear>;
  constructor(dim: number, mult = 4, dropoutP = 0, o: InitOptions = {}) {
    super();
    const inner = Math.trunc(dim * mult);
    this.net = this.module('net', new ModuleList<GEGLU | Dropout | Linear>([
      new GEGLU(dim, inner, o), new Dropout(dropoutP), new Linear(inner, dim, true, initOf(o)),
    ]));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = x;
      for (const m of this.net) h = m.forward(h);
      return h;
    });
  }
}

export interface TransformerBlockOptions extends InitOptions {
  dim: number;
  heads: number;
  dimHead: number;
  crossAttentionDim: number | null;
  dropout?: number;
  /** attn1 attends to the context too (no self-attention). */
  onlyCrossAttention?: boolean;
  upcastAttention?: boolean;
}

/** Pre-LayerNorm transformer block: x + attn1(norm1 x), + attn2(norm2 x, context), + ff(norm3 x). */
export class BasicTransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn1: Attention;
  readonly norm2: LayerNorm | null;
  readonly attn2: Attention | null;
  readonly norm3: LayerNorm;
  readonly ff: FeedForward;
  readonly onlyCrossAttention: boolean;

  constructor(o: TransformerBlockOptions) {
    super();
    this.onlyCrossAttention = o.onlyCrossAttention ?? false;
    const init = initOf(o);
    const attn = { ...init, queryDim: o.dim, heads: o.heads, dimHead: o.dimHead, dropout: o.dropout, upcastAttention: o.upcastAttention };
    this.norm1 = this.module('norm1', new LayerNorm(o.dim, 1e-5, init));
    this.attn1 = this.module('attn1', new Attention({ ...attn, crossAttentionDim: this.onlyCrossAttention ? o.crossAttentionDim : null }));
    if (o.crossAttentionDim !== null) {
      this.norm2 = this.module('norm2', new LayerNorm(o.dim, 1e-5, init));
      this.attn2 = this.module('attn2', new Attention({ ...attn, crossAttentionDim: o.crossAttentionDim }));
    } else {
      this.norm2 = null;
      this.attn2 = null;
    }
    this.norm3 = this.module('norm3', new LayerNorm(o.dim, 1e-5, init));
    this.ff = this.module('ff', new FeedForward(o.dim, 4, o.dropout ?? 0, init));
  }

  /** x [B, N, dim], context [B, 77, crossDim] -> [B, N, dim] */
  forward(x: Tensor, context: Tensor | null): Tensor {
    return tidy(() => {
      let h = x.add(this.attn1.forward(this.norm1.forward(x), this.onlyCrossAttention ? context : null));
      if (this.attn2 !== null && this.norm2 !== null) h = h.add(this.attn2.forward(this.norm2.forward(h), context));
      return h.add(this.ff.forward(this.norm3.forward(h)));
    });
  }
}

export interface Transformer2DOptions extends InitOptions {
  numAttentionHeads: number;
  attentionHeadDim: number;
  inChannels: number;
  numLayers?: number;
  dropout?: number;
  normNumGroups?: number;
  crossAttentionDim: number | null;
  /** proj_in/proj_out as Linear on tokens (SD 2) instead of 1x1 convs (SD v1). */
  useLinearProjection?: boolean;
  onlyCrossAttention?: boolean;
  upcastAttention?: boolean;
}

/**
 * A spatial transformer over a feature map: x [B, C, H, W] -> tokens [B, H*W, inner] -> blocks ->
 * back to [B, C, H, W], plus the residual x.
 */
export class Transformer2DModel extends Module {
  readonly inChannels: number;
  readonly innerDim: number;
  readonly useLinearProjection: boolean;
  readonly norm: GroupNorm;
  readonly proj_in: Conv2d | Linear;
  readonly transformer_blocks: ModuleList<BasicTransformerBlock>;
  readonly proj_out: Conv2d | Linear;

  constructor(o: Transformer2DOptions) {
    super();
    this.inChannels = o.inChannels;
    this.innerDim = o.numAttentionHeads * o.attentionHeadDim;
    this.useLinearProjection = o.useLinearProjection ?? false;
    const linear = this.useLinearProjection;
    const init = initOf(o);
    this.norm = this.module('norm', new GroupNorm(o.normNumGroups ?? 32, o.inChannels, 1e-6, true, init));
    this.proj_in = this.module('proj_in', linear ? new Linear(o.inChannels, this.innerDim, true, init) : new Conv2d(o.inChannels, this.innerDim, 1, init));
    const blocks: BasicTransformerBlock[] = [];
    for (let i = 0; i < (o.numLayers ?? 1); i++) {
      blocks.push(new BasicTransformerBlock({
        ...init, dim: this.innerDim, heads: o.numAttentionHeads, dimHead: o.attentionHeadDim, crossAttentionDim: o.crossAttentionDim,
        dropout: o.dropout, onlyCrossAttention: o.onlyCrossAttention, upcastAttention: o.upcastAttention,
      }));
    }
    this.transformer_blocks = this.module('transformer_blocks', new ModuleList(blocks));
    this.proj_out = this.module('proj_out', linear ? new Linear(this.innerDim, o.inChannels, true, init) : new Conv2d(this.innerDim, o.inChannels, 1, init));
  }

  /** x [B, C, H, W], context [B, 77, crossDim] -> [B, C, H, W] */
  forward(x: Tensor, context: Tensor | null): Tensor {
    return tidy(() => {
      if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
        throw new Error(`Transformer2DModel: expected input [B, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
      }
      const [b, , hgt, wid] = x.shape as [number, number, number, number];
      const toTokens = (t: Tensor) => t.permute([0, 2, 3, 1]).reshape([b, hgt * wid, -1]); // [B, HW, C]
      const toMap = (t: Tensor) => t.reshape([b, hgt, wid, -1]).permute([0, 3, 1, 2]).contiguous(); // [B, C, H, W]
      let h = this.norm.forward(x);
      h = this.useLinearProjection ? this.proj_in.forward(toTokens(h)) : toTokens(this.proj_in.forward(h)); // [B, HW, inner]
      for (const block of this.transformer_blocks) h = block.forward(h, context);
      h = this.useLinearProjection ? toMap(this.proj_out.forward(h)) : this.proj_out.forward(toMap(h)); // [B, C, H, W]
      return h.add(x);
    });
  }
}
