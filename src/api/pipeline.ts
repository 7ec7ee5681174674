// The public API's model handle: loadPipeline() and what every call takes (progress, AbortSignal).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dispose, keep, noGrad, setNumThreads, type DType, type Tensor } from '../engine/index.js';
import type { HubProgress } from '../io/hub.js';
import { disposeStableDiffusion, loadStableDiffusion, type StableDiffusion } from '../pipelines/index.js';
import { modelLoadRecord, type ModelLoadRecord } from '../pipelines/imagic/index.js';

/** The model shipped in the package: Shapes-64, a small Stable Diffusion trained by the project (models/shapes-64). */
export const EMBEDDED_MODEL: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'models', 'shapes-64');

/** What a long call reports as it goes. */
export type Progress =
  | { phase: 'download'; file: string; bytes: number; total: number | undefined }
  | { phase: 'stage A' | 'stage B'; step: number; total: number; loss: number }
  | { phase: 'render' | 'candidates' | 'sdedit' | 'ddim-inversion' | 'sampling'; step: number; total: number };

/** Options every long call of the API takes. */
export interface RunOptions {
  /** Called as work progresses: downloads, each training step with its loss, each sampling step. */
  onProgress?: (p: Progress) => void;
  /** Notes and warnings, one line each (default: dropped). */
  onLog?: (message: string) => void;
  /**
   * Stops the call at the next step and rejects it with an AbortError. Training stops at a step
   * boundary with its session saved, so the same call with the same `session` resumes it.
   */
  signal?: AbortSignal;
}

export interface LoadOptions extends RunOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Weights' precision (default float32). */
  dtype?: DType;
  /** Read '<weights>.<variant>.safetensors', e.g. 'fp16'. */
  variant?: string;
  /** Hub branch, tag or commit, for a repo id (default 'main'). */
  revision?: string;
  /** Never use the network: a folder, or a repo id already in the Hugging Face cache. */
  offline?: boolean;
  /** Hub token (default HF_TOKEN, then HF_HOME/token). */
  token?: string;
  /** libtorch's CPU threads (process-wide). */
  threads?: number;
  /** Single-file checkpoints: the LDM / sgm inference YAML, where the weights leave something open (head counts, v-prediction). */
  config?: string;
  /** A tokenizer folder (or a model folder with tokenizer/ and, for SDXL, tokenizer_2/) or a Hub repo id; single files carry none. */
  tokenizer?: string;
  /** Single files: text-encoder heads when the width is not a multiple of 64 (tiny test models). */
  textEncoderHeads?: number;
}

/** A loaded Stable Diffusion checkpoint (1.x, 2.x or XL). Call dispose() to free its weights. */
export class Pipeline {
  private disposed = false;
  /** @internal use loadPipeline() */
  constructor(
    /** The components (tokenizer, text encoder, UNet, VAE, scheduler), for lower-level use. */
    readonly sd: StableDiffusion,
    /** What it was loaded from: a folder or a Hub repo id. */
    readonly source: string,
    readonly device: string,
    /** How a single-file checkpoint was loaded (YAML, tokenizer, heads); edit sessions record it. */
    readonly load?: ModelLoadRecord,
  ) {}

  /** The side of the square images it makes (512 for SD v1.x, 64 for the embedded model). */
  get resolution(): number {
    return (this.sd.unet.config.sample_size ?? 64) * 8;
  }

  /** The local folder holding the weights. */
  get root(): string {
    return this.sd.root;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeStableDiffusion(this.sd);
  }

  /** @internal */
  check(): StableDiffusion {
    if (this.disposed) throw new Error('this Pipeline has been disposed');
    return this.sd;
  }
}

/**
 * Loads a Stable Diffusion v1.x checkpoint: a diffusers folder, or a Hub repo id (downloaded once
 * into the Hugging Face cache, shared with Python). Without `model`, the embedded Shapes-64 model.
 *
 * @example
 * const pipe = await loadPipeline(); // the embedded model
 * const sd15 = await loadPipeline('runwayml/stable-diffusion-v1-5', { device: 'cuda', dtype: 'float16' });
 */
export async function loadPipeline(model: string = EMBEDDED_MODEL, o: LoadOptions = {}): Promise<Pipeline> {
  throwIfAborted(o.signal);
  if (o.threads !== undefined) setNumThreads(o.threads);
  if (model === EMBEDDED_MODEL && !existsSync(path.join(model, 'model_index.json'))) {
    throw new Error(`the embedded model is missing at ${model}: the package is incomplete; reinstall imagic`);
  }
  const device = o.device ?? 'cpu';
  const sd = await loadStableDiffusion(model, {
    device, dtype: o.dtype ?? 'float32', variant: o.variant, revision: o.revision, offline: o.offline, token: o.token,
    onDownload: o.onProgress ? (p: HubProgress) => o.onProgress!({ phase: 'download', file: p.file, bytes: p.downloaded, total: p.total }) : undefined,
    config: o.config, tokenizer: o.tokenizer, textEncoderHeads: o.textEncoderHeads,
    onLog: (l) => o.onLog?.(`loaded ${l}`), onWarning: (w) => o.onLog?.(`warning: ${w}`),
  });
  return new Pipeline(sd, model, device, modelLoadRecord(o));
}

/** An Error named 'AbortError', as fetch() and timers reject with; `cause` is the signal's reason. */
export function abortError(signal: AbortSignal): Error {
  const e = new Error('the operation was aborted', { cause: signal.reason });
  e.name = 'AbortError';
  return e;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * Runs `fn` with the weights named `names` free to change (an edit fine-tunes the UNet, a render
 * loads a session's weights), and puts the base model's values back afterwards, so that the next
 * call on the same Pipeline starts from the base model.
 */
export async function withBaseRestored<R>(pipe: Pipeline, names: string[], fn: () => Promise<R>): Promise<R> {
  const sd = pipe.check();
  const params = new Map(sd.unet.namedParameters());
  const saved = new Map<string, Tensor>();
  noGrad(() => {
    for (const n of names) {
      const p = params.get(n);
      if (p && !saved.has(n)) saved.set(n, keep(p.detach().clone()));
    }
  });
  try {
    return await fn();
  } finally {
    noGrad(() => {
      for (const [n, t] of saved) params.get(n)!.copy_(t);
    });
    dispose([...saved.values()]);
  }
}
