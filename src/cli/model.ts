// Loading the model for a command: dtype, device, Hub options, download progress and load logs.
import { setNumThreads, type DType } from '../engine/index.js';
import { cliProgressReporter } from '../io/hub.js';
import { loadStableDiffusion, type StableDiffusion } from '../pipelines/index.js';

export interface ModelArgs {
  model: string;
  dtype: DType;
  device: string;
  variant?: string;
  revision?: string;
  offline?: boolean;
  threads?: number;
  quiet?: boolean;
  /** Single-file checkpoints: the LDM inference YAML. */
  config?: string;
  /** A tokenizer folder or Hub repo id (single files carry none). */
  tokenizer?: string;
  /** Single files: text-encoder heads when its width is not a multiple of 64. */
  textEncoderHeads?: number;
  /** .ckpt files: load the tensors of a pickle that also holds other objects, leaving those inert. */
  allowCkptObjects?: boolean;
}

export const logger = (quiet?: boolean) => (m: string) => {
  if (!quiet) process.stderr.write(`${m}\n`);
};

export async function loadModel(a: ModelArgs): Promise<StableDiffusion> {
  if (a.threads !== undefined) setNumThreads(a.threads);
  const log = logger(a.quiet);
  const download = a.quiet || !process.stderr.isTTY ? undefined : cliProgressReporter();
  return loadStableDiffusion(a.model, {
    dtype: a.dtype, device: a.device, variant: a.variant, revision: a.revision, offline: a.offline,
    config: a.config, tokenizer: a.tokenizer, textEncoderHeads: a.textEncoderHeads, unknownGlobals: a.allowCkptObjects ? 'placeholder' : 'refuse',
    onDownload: download?.onProgress, onLog: (l) => log(`loaded ${l}`), onWarning: (w) => log(`warning: ${w}`),
  }).finally(() => download?.stop());
}

