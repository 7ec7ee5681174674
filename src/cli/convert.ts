// `imagic convert`: a single-file SD v1 / SD 2.x / SDXL checkpoint (LDM / sgm layout) to a diffusers folder.
import { convertSingleFile } from '../io/single-file/index.js';
import { logger } from './model.js';
import { stepProgress, type StepProgress } from './progress.js';

export interface ConvertArgs {
  config?: string;
  tokenizer?: string;
  textEncoderHeads?: number;
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** .ckpt: leave objects other than tensors inert instead of refusing the file. */
  allowCkptObjects?: boolean;
  force?: boolean;
  quiet?: boolean;
}

/** Converts `file` into the diffusers folder `outDir` (written to a temporary folder, then renamed). */
export function convert(file: string, outDir: string, a: ConvertArgs): void {
  const log = logger(a.quiet);
  const start = performance.now();
  // Reading the weights is the long part (GBs): a bar in MB read.
  let bar: StepProgress | null = null;
  let shown = -1;
  let r;
  try {
    r = convertSingleFile(file, outDir, {
      config: a.config, tokenizerDir: a.tokenizer, textEncoderHeads: a.textEncoderHeads, dtype: a.dtype, overwrite: a.force,
      unknownGlobals: a.allowCkptObjects ? 'placeholder' : 'refuse',
      onProgress: (done, total) => {
        bar ??= stepProgress('reading MB', Math.max(1, Math.round(total / 1e6)), a.quiet);
        const mb = Math.round(done / 1e6);
        if (mb !== shown) bar.update((shown = mb));
      },
    });
  } finally {
    (bar as StepProgress | null)?.stop();
  }
  r.warnings.forEach((w) => log(`warning: ${w}`));
  log(`converted ${file} (${r.variant}) to ${r.outDir} in ${((performance.now() - start) / 1000).toFixed(1)} s; `
    + `skipped ${r.skipped.length} keys (schedule buffers, EMA, unused text layers)`);
}
