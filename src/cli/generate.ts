// `imagic generate "prompt" -o out.png`: text-to-image with a Stable Diffusion v1.x checkpoint.
import path from 'node:path';
import { Generator, dispose } from '../engine/index.js';
import { tensorToImages, writePng } from '../io/image.js';
import { disposeStableDiffusion, text2img } from '../pipelines/index.js';
import { checkTargetText } from './edit.js';
import { loadModel, logger, type ModelArgs } from './model.js';
import { checkOutputs } from './options.js';
import { stepProgress } from './progress.js';

export interface GenerateArgs extends ModelArgs {
  output: string;
  negative?: string;
  seed: number;
  steps: number;
  guidance: number;
  width?: number;
  height?: number;
  batch: number;
  eta: number;
  force?: boolean;
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
  const outputs = outputPaths(a.output, a.batch);
  checkOutputs(outputs, a.force ?? false);
  const log = logger(a.quiet);
  checkTargetText(a.model, prompt, log);
  const t0 = Date.now();
  const sd = await loadModel(a);
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
