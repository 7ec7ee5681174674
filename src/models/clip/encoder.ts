// The transformer stack both CLIP towers share: pre-norm layers of multi-head self-attention and an MLP,
// as transformers' CLIPAttention / CLIPMLP / CLIPEncoderLayer / CLIPEncoder (Radford et al. 2021).
import { scaledDotProductAttention, tidy, type DType, type Device, type Generator, type Tensor } from '../../engine/index.js';
import { LayerNorm, Linear, Module, ModuleList } from '../../nn/index.js';
import type { CLIPActivation, CLIPEncoderConfig } from './config.js';

export interface CLIPBuildOptions {
  /** 'meta' builds the key/shape tree without allocating (fill it with loadStateDict). */
  device?: Device;
  dtype?: DType;
  /** Generator for the random initialization (training from scratch). */
  generator?: Generator;
}

/** Input that a CLIP model cannot take (says what is wrong with it). */
export class CLIPInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CLIPInputError';
  }
}

/** transformers' ACT2FN for the names CLIP configs use. */
export function applyActivation(x: Tensor, act: CLIPActivation): Tensor {
  switch (act) {
    case 'quick_gelu': return x.quickGelu(); // x * sigmoid(1.702 x)
    case 'gelu': return x.gelu();
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast': return x.gelu('tanh');
    case 'relu': return x.relu();
  }
}

export interface AttentionMasking {
  /** Each position sees itself and earlier ones only (the text tower). */
  causal?: boolean;
  /** Boolean [B, 1, L, L] (true = attend); replaces `causal` when given (it must include causality). */
  mask?: Tensor | null;
}

/** Multi-head self-attention with biased q/k/v/out projections. */
export class CLIPAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;
  constructor(hiddenSize: number, numHeads: number, o: CLIPBuildOptions = {}) {
    super();
    this.numHeads = numHeads;
    this.headDim = hiddenSize / numHeads;
    // registration order as transformers' state_dict: k, v, q, out
    this.k_proj = this.module('k_proj', new Linear(hiddenSize, hiddenSize, true, o));
    this.v_proj = this.module('v_proj', new Linear(hiddenSize, hiddenSize, true, o));
    this.q_proj = this.module('q_proj', new Linear(hiddenSize, hiddenSize, true, o));
    this.out_proj = this.module('out_proj', new Linear(hiddenSize, hiddenSize, true, o));
  }

  forward(x: Tensor, masking: AttentionMasking = {}): Tensor {
    const [b, l, d] = x.shape as [number, number, number];
    // [B, L, D] -> [B, H, L, Dh]
    const heads = (t: Tensor) => t.view(b, l, this.numHeads, this.headDim).transpose(1, 2);
    const q = heads(this.q_proj.forward(x));
    const k = heads(this.k_proj.forward(x));
    const v = heads(this.v_proj.forward(x));
    // softmax(q k^T / sqrt(Dh) + mask) v, the scale transformers applies
    const a = masking.mask
      ? scaledDotProductAttention(q, k, v, { attnMask: masking.mask })
      : scaledDotProductAttention(q, k, v, { isCausal: masking.causal ?? false });
    return this.out_proj.forward(a.transpose(1, 2).reshape(b, l, d)); // [B, L, D]
  }
}

/** fc1 -> activation -> fc2. */
export class CLIPMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(hiddenSize: number, intermediateSize: number, readonly act: CLIPActivation, o: CLIPBuildOptions = {}) {
    super();
    this.fc1 = this.module('fc1', new Linear(hiddenSize, intermediateSize, true, o));
    this.fc2 = this.module('fc2', new Linear(intermediateSize, hiddenSize, true, o));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(applyActivation(this.fc1.forward(x), this.act));
  }
}

/** x + attn(ln1(x)), then + mlp(ln2(.)). */
export class CLIPEncoderLayer extends Module {
  readonly self_attn: CLIPAttention;
  readonly layer_norm1: LayerNorm;
  readonly mlp: CLIPMLP;
  readonly layer_norm2: LayerNorm;
  constructor(c: CLIPEncoderConfig, o: CLIPBuildOptions = {}) {
    super();
    this.self_attn = this.module('self_attn', new CLIPAttention(c.hiddenSize, c.numAttentionHeads, o));
    this.layer_norm1 = this.module('layer_norm1', new LayerNorm(c.hiddenSize, c.layerNormEps, o));
    this.mlp = this.module('mlp', new CLIPMLP(c.hiddenSize, c.intermediateSize, c.hiddenAct, o));
    this.layer_norm2 = this.module('layer_norm2', new LayerNorm(c.hiddenSize, c.layerNormEps, o));
  }
  forward(x: Tensor, masking: AttentionMasking = {}): Tensor {
    // intermediates are freed per layer (autograd keeps what it saved on its own)
    return tidy(() => {
      const h = x.add(this.self_attn.forward(this.layer_norm1.forward(x), masking));
      return h.add(this.mlp.forward(this.layer_norm2.forward(h)));
    });
  }
}

export interface CLIPEncoderOutput {
  lastHiddenState: Tensor; // [B, L, D]
  /** The input and every layer's output (numHiddenLayers + 1), when asked for. */
  hiddenStates?: Tensor[];
}

/** `layers.N` of CLIPEncoderLayer. */
export class CLIPEncoder extends Module {
  readonly layers: ModuleList<CLIPEncoderLayer>;
  constructor(c: CLIPEncoderConfig, o: CLIPBuildOptions = {}) {
    super();
    const layers = Array.from({ length: c.numHiddenLayers }, () => new CLIPEncoderLayer(c, o));
    this.layers = this.module('layers', new ModuleList(layers));
  }
  forward(x: Tensor, masking: AttentionMasking = {}, outputHiddenStates = false): CLIPEncoderOutput {
    const hiddenStates: Tensor[] = [x];
    let h = x;
    for (const layer of this.layers) {
      h = layer.forward(h, masking);
      hiddenStates.push(h);
    }
    return outputHiddenStates ? { lastHiddenState: h, hiddenStates } : { lastHiddenState: h };
  }
}
