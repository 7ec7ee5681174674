// CLIPTextModel: CLIP's causal text transformer, the text encoder of Stable Diffusion v1.x; follows
// transformers' CLIPTextEmbeddings / CLIPTextTransformer / CLIPTextModel (modeling_clip.py).
import { noGrad, tensor, tidy, type Tensor } from '../../engine/index.js';
import { Embedding, LayerNorm, Module, type LoadOptions } from '../../nn/index.js';
import { type CLIPTextConfig } from './config.js';
import { CLIPEncoder, CLIPInputError, type AttentionMasking, type CLIPBuildOptions } from './encoder.js';

/**
 * Checkpoint keys that carry no weights: the position_ids buffer that checkpoints saved by older
 * transformers versions hold (every real SD v1 text encoder), with or without the text_model. prefix.
 */
export const CLIP_TEXT_IGNORE_KEYS: readonly string[] = Object.freeze([
  'text_model.embeddings.position_ids',
  'embeddings.position_ids',
]);

/** The prefix that transformers 4.x checkpoints (every SD v1 text_encoder on the Hub) put on each key. */
export const CLIP_TEXT_LEGACY_PREFIX = 'text_model.';

/**
 * A text-encoder checkpoint key as this model names it: the `text_model.` prefix of older checkpoints
 * dropped (for streaming loaders that take a rename function, with CLIP_TEXT_IGNORE_KEYS as ignore).
 */
export function clipTextCheckpointKey(key: string): string {
  return key.startsWith(CLIP_TEXT_LEGACY_PREFIX) ? key.slice(CLIP_TEXT_LEGACY_PREFIX.length) : key;
}

/** token_embedding(ids) + position_embedding(0..L-1). */
export class CLIPTextEmbeddings extends Module {
  readonly token_embedding: Embedding;
  readonly position_embedding: Embedding;
  constructor(c: CLIPTextConfig, o: CLIPBuildOptions = {}) {
    super();
    this.token_embedding = this.module('token_embedding', new Embedding(c.vocabSize, c.hiddenSize, o));
    this.position_embedding = this.module('position_embedding', new Embedding(c.maxPositionEmbeddings, c.hiddenSize, o));
  }
  forward(inputIds: Tensor): Tensor {
    const l = inputIds.size(1);
    // positions 0..L-1 are the first L rows of the table: [L, D] broadcast over the batch
    const pos = this.position_embedding.weight.narrow(0, 0, l);
    return this.token_embedding.forward(inputIds).add(pos); // [B, L, D]
  }
}

export interface CLIPTextModelOutput {
  lastHiddenState: Tensor; // [B, L, D] (L = 77 for SD), after final_layer_norm
  poolerOutput: Tensor; // [B, D], lastHiddenState at each row's end token
  /** Embeddings and each layer's output (before the final norm), when asked for. */
  hiddenStates?: Tensor[];
}

export interface CLIPTextForwardOptions {
  /** [B, L], 1 for tokens to attend to and 0 for padding (SD v1 passes none). */
  attentionMask?: Tensor | number[][] | null;
  outputHiddenStates?: boolean;
}

/**
 * The text tower. Parameter names are transformers' CLIPTextModel state-dict keys as
 * sd-v1-manifest.json lists them (`embeddings.*`, `encoder.layers.N.*`, `final_layer_norm.*`);
 * loadStateDict also takes checkpoints whose keys carry the older `text_model.` prefix.
 */
export class CLIPTextModel extends Module {
  readonly embeddings: CLIPTextEmbeddings;
  readonly encoder: CLIPEncoder;
  readonly final_layer_norm: LayerNorm;
  constructor(readonly config: CLIPTextConfig, o: CLIPBuildOptions = {}) {
    super();
    this.embeddings = this.module('embeddings', new CLIPTextEmbeddings(config, o));
    this.encoder = this.module('encoder', new CLIPEncoder(config, o));
    this.final_layer_norm = this.module('final_layer_norm', new LayerNorm(config.hiddenSize, config.layerNormEps, o));
  }

  /**
   * input ids [B, L] (int64 or int32; a nested array is accepted) -> last hidden state and pooled
   * output. L may be shorter than max_position_embeddings; SD v1 always passes 77.
   */
  forward(inputIds: Tensor | number[][], opts: CLIPTextForwardOptions = {}): CLIPTextModelOutput {
    return tidy(() => {
      const ids = this.checkIds(inputIds);
      const masking = this.masking(ids, opts.attentionMask ?? null);
      const x = this.embeddings.forward(ids); // [B, L, D]
      const enc = this.encoder.forward(x, masking, opts.outputHiddenStates ?? false);
      const lastHiddenState = this.final_layer_norm.forward(enc.lastHiddenState); // [B, L, D]
      const poolerOutput = gatherRows(lastHiddenState, this.poolingIndex(ids)); // [B, D]
      return enc.hiddenStates ? { lastHiddenState, poolerOutput, hiddenStates: enc.hiddenStates } : { lastHiddenState, poolerOutput };
    });
  }

  /**
   * Where each row's pooled output is read, transformers' rule: the first position holding
   * eos_token_id; with eos_token_id 2 (configs of the first CLIP ports) the position of the largest id.
   */
  poolingIndex(ids: Tensor): Tensor {
    const eos = this.config.eosTokenId;
    if (eos === 2) return ids.argmax(-1); // [B]
    return ids.eq(eos).to('int32').argmax(-1); // [B]: first match (0 where a row has no eos)
  }

  /** Strict loading that also accepts `text_model.`-prefixed keys and ignores position_ids. */
  override loadStateDict(sd: Record<string, Tensor> | Map<string, Tensor>, opts: LoadOptions = {}): void {
    const entries = sd instanceof Map ? [...sd] : Object.entries(sd);
    const legacy = entries.some(([k]) => k.startsWith(CLIP_TEXT_LEGACY_PREFIX) && !CLIP_TEXT_IGNORE_KEYS.includes(k));
    const mapped = new Map(entries.map(([k, t]) => [legacy ? clipTextCheckpointKey(k) : k, t]));
    super.loadStateDict(mapped, {
      ...opts,
      ignore: [...CLIP_TEXT_IGNORE_KEYS, ...(opts.ignore ?? [])],
      source: `${opts.source ?? 'text encoder state dict'}${legacy ? " (keys read without their 'text_model.' prefix)" : ''}`,
    });
  }

  private checkIds(inputIds: Tensor | number[][]): Tensor {
    const c = this.config;
    let ids: Tensor;
    if (inputIds instanceof Array) {
      if (inputIds.length === 0 || !inputIds.every((r) => Array.isArray(r) && r.length === inputIds[0]!.length && r.every(Number.isInteger))) {
        throw new CLIPInputError('CLIPTextModel: input ids must be a non-empty [B, L] array of integers with rows of equal length');
      }
      ids = tensor(inputIds, { dtype: 'int64', device: this.device });
    } else {
      ids = inputIds;
    }
    if (ids.dtype !== 'int64' && ids.dtype !== 'int32') {
      throw new CLIPInputError(`CLIPTextModel: input ids must be int64 or int32, got ${ids.dtype}`);
    }
    if (ids.ndim !== 2) throw new CLIPInputError(`CLIPTextModel: input ids must be [B, L], got shape [${ids.shape.join(', ')}]`);
    const [b, l] = ids.shape as [number, number];
    if (b === 0 || l === 0) throw new CLIPInputError(`CLIPTextModel: input ids are empty (shape [${b}, ${l}])`);
    if (l > c.maxPositionEmbeddings) {
      throw new CLIPInputError(`CLIPTextModel: ${l} tokens per row exceed max_position_embeddings ${c.maxPositionEmbeddings} (truncate with the tokenizer)`);
    }
    const [lo, hi] = noGrad(() => [ids.amin().item(), ids.amax().item()]);
    if (lo! < 0 || hi! >= c.vocabSize) {
      const bad = lo! < 0 ? lo : hi;
      throw new CLIPInputError(`CLIPTextModel: token id ${bad} is outside the vocabulary [0, ${c.vocabSize - 1}] (vocab_size ${c.vocabSize})`);
    }
    return ids.device === this.device ? ids : ids.to(this.device);
  }

  private masking(ids: Tensor, attentionMask: Tensor | number[][] | null): AttentionMasking {
    if (attentionMask === null) return { causal: true };
    const [b, l] = ids.shape as [number, number];
    const m = attentionMask instanceof Array ? tensor(attentionMask, { dtype: 'int64', device: this.device }) : attentionMask.to(this.device);
    if (m.shape.join(',') !== `${b},${l}`) {
      throw new CLIPInputError(`CLIPTextModel: attention mask has shape [${m.shape.join(', ')}], expected [${b}, ${l}] like the input ids`);
    }
    // causal [L, L] and the keys to attend [B, 1, 1, L] -> [B, 1, L, L] (true = attend)
    const causal = tensor(Array.from({ length: l }, (_, i) => Array.from({ length: l }, (_, j) => j <= i)), { device: this.device });
    return { mask: causal.logicalAnd(m.ne(0).view(b, 1, 1, l)) };
  }

  /** The device the weights live on. */
  get device(): string {
    return this.embeddings.token_embedding.weight.device;
  }
}

/** rows[b] = x[b, index[b]]: [B, L, D] and [B] -> [B, D]. */
export function gatherRows(x: Tensor, index: Tensor): Tensor {
  const [b, , d] = x.shape as [number, number, number];
  const idx = index.to('int64').view(b, 1, 1).expand(b, 1, d); // [B, 1, D]
  return x.gather(1, idx).squeeze(1);
}
