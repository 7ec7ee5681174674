// `imagic convert`: a single-file SD v1 / SD 2.x / SDXL checkpoint (LDM / sgm layout) to a diffusers folder.
import { convertSingleFile } from '../io/single-file/index.js';
import { logger } from './model.js';

export interface ConvertArgs {
  config?: string;
  tokenizer?: string;
  textEncoderHeads?: number;
  dtype?: 'float32' | 'float16' | 'bfloat16';
  force?: boolean;
  quiet?: boolean;
}

/** Converts `file` into the diffusers folder `outDir` (written to a temporary folder, then renamed). */
export function convert(file: string, outDir: string, a: ConvertArgs): void {
  const log = logger(a.quiet);
  const start = performance.now();
  const r = convertSingleFile(file, outDir, {
    config: a.config, tokenizerDir: a.tokenizer, textEncoderHeads: a.textEncoderHeads, dtype: a.dtype, overwrite: a.force,
  });
  r.warnings.forEach((w) => log(`warning: ${w}`));
  log(`converted ${file} (${r.variant}) to ${r.outDir} in ${((performance.now() - start) / 1000).toFixed(1)} s; `
    + `skipped ${r.skipped.length} keys (schedule buffers, EMA, unused text layers)`);
}
