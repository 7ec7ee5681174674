// Loading a Stable Diffusion v1.x / 2.x / SDXL checkpoint (a diffusers folder, a Hub repo id downloaded into
// the standard cache, or a single-file LDM / sgm checkpoint) into its components: tokenizer, text encoder,
// UNet, VAE and DDIM scheduler.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { cat, dispose, noGrad, tensor, tidy, type DType, type Device, type Tensor } from '../engine/index.js';
import { CheckpointError, formatSummary, isDiffusersPipeline, loadComponent, readSafetensorsHeader, resolveComponent, type LoadSummary } from '../io/index.js';
import { snapshotDownload, type HubProgress } from '../io/hub.js';
import { CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer, CLIP_TEXT_IGNORE_KEYS, clipTextCheckpointKey, parseCLIPTextConfig } from '../models/clip/index.js';
import { UNet2DConditionModel } from '../models/unet/index.js';
import { AutoencoderKL, currentVaeAttentionKey } from '../models/vae/index.js';
import { DDIMScheduler } from '../schedulers/index.js';
import { isSingleFileCheckpoint, loadSingleFile } from '../io/single-file/index.js';

export interface StableDiffusion {
  /** null for checkpoints without tokenizer/ (then prompts must be given as token ids). */
  tokenizer: CLIPTokenizer | null;
  textEncoder: CLIPTextModel;
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  scheduler: DDIMScheduler;
  /** The local folder (or single file) the weights came from. */
  root: string;
  dtype: DType;
  device: Device;
  /** SDXL: the second text encoder (with projection), its tokenizer, and whether the empty prompt is zeros. */
  xl?: StableDiffusionXL;
}

/** SDXL's extra components (model_index.json lists text_encoder_2). */
export interface StableDiffusionXL {
  textEncoder2: CLIPTextModelWithProjection;
  /** null without tokenizer_2/ (then prompts are token ids). */
  tokenizer2: CLIPTokenizer | null;
  /** model_index.json's force_zeros_for_empty_prompt: the unconditional embeddings of '' are zeros. */
  forceZerosForEmptyPrompt: boolean;
}

export interface LoadStableDiffusionOptions {
  /** Weights' dtype: float32 (default), float16 or bfloat16. */
  dtype?: DType;
  device?: Device;
  /** Reads '<name>.<variant>.safetensors' files, e.g. 'fp16'. */
  variant?: string;
  /** Hub options, for a repo id. */
  revision?: string;
  token?: string;
  offline?: boolean;
  cacheDir?: string;
  onDownload?: (p: HubProgress) => void;
  /** One line per loaded component ("unet: 686 tensors, 3.44 GB in 2.1 s"). */
  onLog?: (line: string) => void;
  /** Notes that do not stop loading (a PNDM scheduler config run as DDIM, ...). */
  onWarning?: (message: string) => void;
  /** Single-file checkpoints: the LDM inference YAML (head counts, `parameterization: v`, `layer: penultimate`). */
  config?: string;
  /** Single-file checkpoints: text-encoder heads when the width is not a multiple of 64 (tiny test models). */
  textEncoderHeads?: number;
  /**
   * A tokenizer folder (vocab.json + merges.txt, or a folder with tokenizer/) or a Hub repo id. Single
   * files carry none: without this they load with tokenizer null (prompts as token ids). For a
   * diffusers folder it replaces the folder's tokenizer/.
   */
  tokenizer?: string;
  /** Single-file .ckpt: 'placeholder' leaves objects other than tensors inert instead of refusing the file (see SingleFileOptions). */
  unknownGlobals?: 'refuse' | 'placeholder';
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** A local folder as is; else a Hub repo id ('CompVis/stable-diffusion-v1-4') fetched into the cache. */
export async function resolveModelSource(source: string, opts: LoadStableDiffusionOptions = {}): Promise<string> {
  if (existsSync(source)) {
    if (!statSync(source).isDirectory() && !isSingleFileCheckpoint(source)) {
      throw new Error(`model '${source}' is a file but not a single-file checkpoint (.safetensors, .ckpt); expected one of those or a diffusers folder (model_index.json, unet/, vae/, ...)`);
    }
    return source;
  }
  if (!REPO_ID.test(source) || source.startsWith('.') || source.startsWith('/')) {
    throw new Error(`model '${source}' is neither an existing folder nor a Hub repo id like 'org/name'`);
  }
  return snapshotDownload(source, {
    revision: opts.revision, token: opts.token, offline: opts.offline, cacheDir: opts.cacheDir, onProgress: opts.onDownload,
    ...hubPatterns(opts.variant),
  });
}

/** What to fetch from a Hub repo: the components this project loads, in safetensors, of one variant (no .ckpt, no safety checker). */
export function hubPatterns(variant?: string): { allowPatterns: string[]; ignorePatterns: string[] } {
  const allow = ['model_index.json', 'scheduler/scheduler_config.json', 'tokenizer/*'];
  for (const c of ['unet', 'vae', 'text_encoder']) {
    allow.push(`${c}/config.json`);
    if (variant) allow.push(`${c}/*.${variant}.safetensors`, `${c}/*.safetensors.index.${variant}.json`, `${c}/*.${variant}-*-of-*.safetensors`, `${c}/*-of-*.${variant}.safetensors`);
    else allow.push(`${c}/*.safetensors`, `${c}/*.safetensors.index.json`);
  }
  // Without a variant, skip the variant files that sit beside the full-precision ones.
  const ignore = variant ? [] : ['*.fp16.*', '*.fp16-*', '*.bf16.*', '*.bf16-*', '*.non_ema.*', '*.ema_only.*'];
  return { allowPatterns: allow, ignorePatterns: ignore };
}

/** Loads every component, each streamed from disk into a model built on the meta device. */
export async function loadStableDiffusion(source: string, opts: LoadStableDiffusionOptions = {}): Promise<StableDiffusion> {
  const root = await resolveModelSource(source, opts);
  if (!statSync(root).isDirectory()) return loadFromSingleFile(root, opts);
  if (!isDiffusersPipeline(root)) {
    throw new CheckpointError(root, 'not a diffusers Stable Diffusion folder: it has no model_index.json (expected model_index.json, unet/, vae/, text_encoder/, scheduler/ and usually tokenizer/)');
  }
  const dtype = opts.dtype ?? 'float32';
  const device = opts.device ?? 'cpu';
  const log = (name: string, s: LoadSummary) => opts.onLog?.(formatSummary(s, name));
  const common = { dtype, device, variant: opts.variant };
  const loaded: { dispose(): void }[] = [];
  try {
    const te = loadComponent(root, 'text_encoder', (c, init) => new CLIPTextModel(parseCLIPTextConfig(c), init),
      { ...common, rename: clipTextCheckpointKey, ignore: [...CLIP_TEXT_IGNORE_KEYS] });
    loaded.push(te.module);
    log('text_encoder', te.summary);
    const unet = loadComponent(root, 'unet', (c, init) => new UNet2DConditionModel(c, init), common);
    loaded.push(unet.module);
    log('unet', unet.summary);
    const vae = loadVae(root, common, log);
    loaded.push(vae);
    upcastVae(vae, dtype, opts.onLog);
    const scheduler = DDIMScheduler.fromPretrained(path.join(root, 'scheduler'), (w) => opts.onWarning?.(w));
    const tokDir = path.join(root, 'tokenizer');
    const given = opts.tokenizer !== undefined ? await loadTokenizers(opts.tokenizer, opts) : null;
    const tokenizer = given !== null ? given.tokenizer : existsSync(path.join(tokDir, 'vocab.json')) ? CLIPTokenizer.fromDir(tokDir) : null;
    if (tokenizer === null) opts.onWarning?.(`${root} has no tokenizer/: prompts must be given as token ids`);
    // SDXL: the second text encoder (with projection) and its tokenizer.
    const index = JSON.parse(readFileSync(path.join(root, 'model_index.json'), 'utf8')) as Record<string, unknown>;
    let xl: StableDiffusionXL | undefined;
    if (index.text_encoder_2) {
      const te2 = loadComponent(root, 'text_encoder_2', (c, init) => new CLIPTextModelWithProjection(parseCLIPTextConfig(c), init),
        { ...common, ignore: CLIP_TEXT_IGNORE_KEYS.map((k) => `text_model.${k}`) });
      loaded.push(te2.module);
      log('text_encoder_2', te2.summary);
      const tok2Dir = path.join(root, 'tokenizer_2');
      xl = {
        textEncoder2: te2.module.eval(),
        tokenizer2: given?.tokenizer2 ?? (existsSync(path.join(tok2Dir, 'vocab.json')) ? CLIPTokenizer.fromDir(tok2Dir) : null),
        forceZerosForEmptyPrompt: index.force_zeros_for_empty_prompt === true,
      };
    }
    return { tokenizer, textEncoder: te.module.eval(), unet: unet.module.eval(), vae, scheduler, root, dtype, device, ...(xl ? { xl } : {}) };
  } catch (e) {
    for (const m of loaded) m.dispose();
    throw e;
  }
}

/** A single-file LDM checkpoint (SD v1 / SD 2.x / SDXL): architecture from its keys and the YAML, weights streamed. */
async function loadFromSingleFile(file: string, opts: LoadStableDiffusionOptions): Promise<StableDiffusion> {
  const dtype = opts.dtype ?? 'float32';
  const device = opts.device ?? 'cpu';
  const toks = opts.tokenizer !== undefined ? await loadTokenizers(opts.tokenizer, opts) : null;
  const m = loadSingleFile(file, { config: opts.config, textEncoderHeads: opts.textEncoderHeads, dtype, device, unknownGlobals: opts.unknownGlobals });
  try {
    m.arch.warnings.forEach((w) => opts.onWarning?.(w));
    const gb = m.summary.bytes / 1e9;
    opts.onLog?.(`${m.arch.variant} single file: ${m.summary.tensors} tensors, ${gb.toFixed(2)} GB in ${m.summary.seconds.toFixed(2)} s`
      + ` (${m.skipped.length} keys skipped: schedule buffers, EMA, unused text layers)`);
    const scheduler = DDIMScheduler.fromConfig(m.arch.scheduler, (w) => opts.onWarning?.(w));
    upcastVae(m.vae, dtype, opts.onLog);
    if (toks === null) opts.onWarning?.(`${file} is a single file without a tokenizer: prompts must be given as token ids (give a tokenizer folder or repo id to use text)`);
    let xl: StableDiffusionXL | undefined;
    if (m.textEncoder2) {
      let tokenizer2 = toks?.tokenizer2 ?? null;
      if (toks !== null && tokenizer2 === null) {
        // SDXL's tokenizer_2 is CLIP's vocabulary with '!' as the pad token (stabilityai/stable-diffusion-xl-base-1.0).
        tokenizer2 = CLIPTokenizer.fromDir(toks.dir, { padToken: '!' });
        opts.onWarning?.(`${opts.tokenizer} has no tokenizer_2/: the second text encoder uses ${toks.dir}'s vocabulary with SDXL's pad token '!' (id ${tokenizer2.padTokenId}), as SDXL base's tokenizer_2`);
      }
      // Single files do not say; SDXL base's pipeline (and diffusers' default) uses zeros for the empty prompt.
      xl = { textEncoder2: m.textEncoder2, tokenizer2, forceZerosForEmptyPrompt: true };
    }
    return { tokenizer: toks?.tokenizer ?? null, textEncoder: m.textEncoder, unet: m.unet, vae: m.vae, scheduler, root: file, dtype, device, ...(xl ? { xl } : {}) };
  } catch (e) {
    m.unet.dispose();
    m.vae.dispose();
    m.textEncoder.dispose();
    m.textEncoder2?.dispose();
    throw e;
  }
}

/** A CLIP tokenizer from a folder (with vocab.json, or with tokenizer/ inside) or a Hub repo id. */
export async function loadTokenizer(spec: string, opts: LoadStableDiffusionOptions = {}): Promise<CLIPTokenizer> {
  return (await loadTokenizers(spec, opts)).tokenizer;
}

/**
 * The tokenizer (and SDXL's tokenizer_2 where the folder or repo has one) from a folder with
 * vocab.json, a model folder with tokenizer/ (and tokenizer_2/), or a Hub repo id.
 */
export async function loadTokenizers(spec: string, opts: LoadStableDiffusionOptions = {}): Promise<{ tokenizer: CLIPTokenizer; tokenizer2: CLIPTokenizer | null; dir: string }> {
  let dir = spec;
  if (!existsSync(spec)) {
    if (!REPO_ID.test(spec) || spec.startsWith('.') || spec.startsWith('/')) throw new Error(`tokenizer '${spec}' is neither an existing folder nor a Hub repo id like 'org/name'`);
    dir = await snapshotDownload(spec, {
      revision: opts.revision, token: opts.token, offline: opts.offline, cacheDir: opts.cacheDir, onProgress: opts.onDownload,
      allowPatterns: ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer/*', 'tokenizer_2/*'],
    });
  }
  const has = (d: string) => existsSync(path.join(d, 'vocab.json'));
  const tok2Dir = path.join(dir, 'tokenizer_2');
  const tokenizer2 = has(tok2Dir) ? CLIPTokenizer.fromDir(tok2Dir) : null;
  for (const d of [dir, path.join(dir, 'tokenizer')]) if (has(d)) return { tokenizer: CLIPTokenizer.fromDir(d), tokenizer2, dir: d };
  throw new Error(`tokenizer '${spec}' has no vocab.json (nor tokenizer/vocab.json)`);
}

/** The VAE, streamed; checkpoints with the legacy attention layout (query/key/value, 1x1-conv weights) go the converting path. */
function loadVae(root: string, common: { dtype: DType; device: Device; variant?: string }, log: (n: string, s: LoadSummary) => void): AutoencoderKL {
  const files = resolveComponent(root, 'vae', { variant: common.variant });
  const legacy = files.files.some((f) => [...readSafetensorsHeader(f).tensors.keys()].some((k) => currentVaeAttentionKey(k) !== null));
  if (legacy) {
    const vae = AutoencoderKL.fromPretrained(files.dir, { dtype: common.dtype, device: common.device, variant: common.variant });
    return vae.eval();
  }
  const vae = loadComponent(root, 'vae', (c, init) => new AutoencoderKL(c as never, init), common);
  log('vae', vae.summary);
  return vae.module.eval();
}

/**
 * A float16 model's VAE runs in float32 where its config says `force_upcast` (as diffusers does: SDXL's
 * VAE overflows to NaN in float16). AutoencoderKL casts its inputs to its own dtype; encodeImage casts
 * the latent back.
 */
function upcastVae(vae: AutoencoderKL, dtype: DType, onLog?: (line: string) => void): void {
  if (dtype !== 'float16' || !vae.config.force_upcast) return;
  vae.to({ dtype: 'float32' });
  onLog?.('vae: float32 (its config says force_upcast: a VAE can overflow in float16)');
}

export function disposeStableDiffusion(sd: StableDiffusion): void {
  sd.textEncoder.dispose();
  sd.xl?.textEncoder2.dispose();
  sd.unet.dispose();
  sd.vae.dispose();
}

/**
 * Text embeddings [B, 77, D] for prompts (strings need the tokenizer) or token ids (rows of 77).
 * Truncated prompts are reported through onWarning with the number of tokens lost.
 */
export function encodePrompt(sd: StableDiffusion, prompts: string[] | number[][], onWarning?: (m: string) => void): Tensor {
  let ids: number[][];
  if (prompts.length > 0 && typeof prompts[0] === 'string') {
    if (sd.tokenizer === null) throw new Error(`the checkpoint at ${sd.root} has no tokenizer: give token ids instead of text`);
    const enc = sd.tokenizer.call(prompts as string[], { maxLength: 77 });
    enc.truncated.forEach((lost, i) => {
      if (lost > 0) onWarning?.(`prompt ${i + 1} is longer than the text encoder's 77 tokens: ${lost} tokens were cut ("${enc.truncatedText[i]}")`);
    });
    ids = enc.inputIds;
  } else {
    ids = prompts as number[][];
  }
  return noGrad(() => {
    const t = tensor(ids, { dtype: 'int64', device: sd.device });
    const { lastHiddenState, poolerOutput } = sd.textEncoder.forward(t);
    dispose([t, poolerOutput]);
    return lastHiddenState;
  });
}

/** SDXL's text conditioning: the context [B, 77, D1 + D2] and the pooled embedding [B, P]. */
export interface XLPromptEmbeds {
  promptEmbeds: Tensor;
  pooled: Tensor;
}

/**
 * SDXL prompt encoding, as diffusers' StableDiffusionXLPipeline.encode_prompt: the penultimate hidden
 * states of both text encoders, concatenated, and the second encoder's projected pooled output.
 * Prompts are text (both tokenizers needed) or token ids: `ids2` for the second encoder (default:
 * the same rows). The unconditional side's zeros (force_zeros_for_empty_prompt) are the callers'
 * (text2img, img2img, Imagic), as in diffusers, where they apply to the negative prompt only.
 */
export function encodePromptXL(sd: StableDiffusion, prompts: string[] | number[][], ids2?: number[][], onWarning?: (m: string) => void): XLPromptEmbeds {
  const xl = sd.xl;
  if (!xl) throw new Error(`the checkpoint at ${sd.root} is not SDXL (no text_encoder_2)`);
  const texts = prompts.length > 0 && typeof prompts[0] === 'string' ? (prompts as string[]) : null;
  const idsOf = (tok: CLIPTokenizer | null, which: string): number[][] => {
    if (!texts) return which === 'tokenizer_2' && ids2 ? ids2 : (prompts as number[][]);
    if (tok === null) throw new Error(`the checkpoint at ${sd.root} has no ${which}: give token ids instead of text`);
    const enc = tok.call(texts, { maxLength: 77 });
    enc.truncated.forEach((lost, i) => {
      if (lost > 0) onWarning?.(`prompt ${i + 1} is longer than the text encoder's 77 tokens: ${lost} tokens were cut ("${enc.truncatedText[i]}")`);
    });
    return enc.inputIds;
  };
  const [promptEmbeds, pooled] = noGrad(() => tidy(() => {
    const a = tensor(idsOf(sd.tokenizer, 'tokenizer'), { dtype: 'int64', device: sd.device });
    const b = tensor(idsOf(xl.tokenizer2, 'tokenizer_2'), { dtype: 'int64', device: sd.device });
    const o1 = sd.textEncoder.forward(a, { outputHiddenStates: true });
    const o2 = xl.textEncoder2.forward(b, { outputHiddenStates: true });
    const h1 = o1.hiddenStates![o1.hiddenStates!.length - 2]!;
    const h2 = o2.hiddenStates![o2.hiddenStates!.length - 2]!;
    return [cat([h1, h2], -1), o2.textEmbeds.clone()]; // [B, 77, D1 + D2], pooled [B, P]
  }));
  return { promptEmbeds: promptEmbeds!, pooled: pooled! };
}

/**
 * SDXL's unconditional side for `cond`: zeros where the model forces them and no negative prompt is
 * given (diffusers' force_zeros_for_empty_prompt), else the negative prompt encoded ('' when none).
 */
export function encodeNegativeXL(sd: StableDiffusion, cond: XLPromptEmbeds, negative: string[] | number[][] | undefined, onWarning?: (m: string) => void): XLPromptEmbeds {
  if (negative === undefined && sd.xl?.forceZerosForEmptyPrompt) return noGrad(() => ({ promptEmbeds: cond.promptEmbeds.mul(0), pooled: cond.pooled.mul(0) }));
  if (negative === undefined && sd.tokenizer === null) throw new Error(`the checkpoint at ${sd.root} has no tokenizer to encode the empty negative prompt: give negativePrompt as token ids`);
  return encodePromptXL(sd, negative ?? [''], undefined, onWarning);
}

/** SDXL's time_ids for an image of height x width, uncropped, at its own size: (h, w, 0, 0, h, w). [1, 6] */
export function defaultTimeIds(height: number, width: number, device: Device = 'cpu'): Tensor {
  return tensor([[height, width, 0, 0, height, width]], { dtype: 'float32', device });
}
