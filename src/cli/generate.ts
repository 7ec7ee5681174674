// `imagic generate "prompt" -o out.png`: text-to-image with a Stable Diffusion v1.x checkpoint.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Generator, dispose, setNumThreads, type DType } from '../engine/index.js';
import { tensorToImages, writePng } from '../io/image.js';
import { cliProgressReporter } from '../io/hub.js';
import { disposeStableDiffusion, loadStableDiffusion, text2img } from '../pipelines/index.js';
import { stepProgress } from './progress.js';

export interface GenerateArgs {
  model: string;
  output: string;
  negative?: string;
  seed: number;
  steps: number;
  guidance: number;
  width?: number;
  height?: number;
  batch: number;
  eta: number;
  dtype: DType;
  device: string;
  variant?: string;
  revision?: string;
  offline?: boolean;
  force?: boolean;
  quiet?: boolean;
  threads?: number;
}

/** out.png for one image; out-0.png, out-1.png, ... for several. */
export function outputPaths(output: string, n: number): string[] {
  if (n === 1) return [output];
  const ext = path.extname(output) || '.png';
  const base = output.slice(0, output.length - path.extname(output).length);
  return Array.from({ length: n }, (_, i) => `${base}-${i}${ext}`);
}

export async function generate(prompt: string, a: GenerateArgs): Promise<string[]> {
  if (prompt.trim() === '') throw new Error('the prompt is empty');
  if (path.extname(a.output).toLowerCase() !== '.png') throw new Error(`output must be a .png file, got '${a.output}'`);
  const outputs = outputPaths(a.output, a.batch);
  const existing = outputs.filter((p) => existsSync(p));
  if (existing.length > 0 && !a.force) throw new Error(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''} (use --force to overwrite)`);
  const dir = path.dirname(path.resolve(a.output));
  if (!existsSync(dir)) throw new Error(`the output folder ${dir} does not exist`);
  if (a.threads !== undefined) setNumThreads(a.threads);
  const log = (m: string) => a.quiet || process.stderr.write(`${m}\n`);
  const t0 = Date.now();
  const download = a.quiet || !process.stderr.isTTY ? undefined : cliProgressReporter();
  const sd = await loadStableDiffusion(a.model, {
    dtype: a.dtype, device: a.device, variant: a.variant, revision: a.revision, offline: a.offline,
    onDownload: download?.onProgress, onLog: (l) => log(`loaded ${l}`), onWarning: (w) => log(`warning: ${w}`),
  }).finally(() => download?.stop());
  try {
    const bar = stepProgress('sampling', a.steps, a.quiet);
    let result;
    try {
      result = await text2img(sd, {
        prompt, negativePrompt: a.negative, steps: a.steps, guidanceScale: a.guidance, width: a.width, height: a.height,
        numImagesPerPrompt: a.batch, eta: a.eta, generator: new Generator(a.seed), onStep: (i) => bar.update(i), onWarning: (w) => log(`warning: ${w}`),
      });
    } finally {
      bar.stop();
    }
    const images = tensorToImages(result.images);
    dispose([result.images, result.latents]);
    for (const [i, file] of outputs.entries()) await writePng(file, images[i]!);
    log(`wrote ${outputs.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${a.seed}, ${a.steps} steps, guidance ${a.guidance})`);
    return outputs;
  } finally {
    disposeStableDiffusion(sd);
  }
}
