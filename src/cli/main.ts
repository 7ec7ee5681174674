#!/usr/bin/env node
// The imagic command line: thin argument parsing over the pipelines.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { generate } from './generate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The embedded model, once the project ships it (models/shapes-64). */
const EMBEDDED_MODEL = path.join(root, 'models', 'shapes-64');

function int(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}
function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got '${v}'`);
    return n;
  };
}

const program = new Command()
  .name('imagic')
  .description('Text-based editing of real photos with diffusion models (Imagic on Stable Diffusion v1.x), on libtorch.')
  .showHelpAfterError('(run with --help for usage)');

program
  .command('generate')
  .description('Generate images from a text prompt (text-to-image with classifier-free guidance and DDIM).')
  .argument('<prompt>', 'what to draw, e.g. "a red circle on the left"')
  .requiredOption('-o, --output <file.png>', 'where to write the image (several images: file-0.png, file-1.png, ...)')
  .option('-m, --model <dir|repo-id>', 'a diffusers folder, or a Hub repo id downloaded into the Hugging Face cache (default: the embedded model)')
  .option('-n, --negative <prompt>', 'negative prompt: what to steer away from (default: empty)')
  .option('-s, --seed <n>', 'random seed; the same seed gives the same image on the same machine', int('seed', 0), 0)
  .option('--steps <n>', 'DDIM sampling steps', int('steps', 1), 50)
  .option('-g, --guidance <scale>', 'classifier-free guidance scale (1 disables guidance)', num('guidance'), 7.5)
  .option('--width <px>', 'image width, a multiple of 8 (default: the model\'s size)', int('width', 8))
  .option('--height <px>', 'image height, a multiple of 8 (default: the model\'s size)', int('height', 8))
  .option('-b, --batch <n>', 'images to generate', int('batch', 1), 1)
  .option('--eta <eta>', 'DDIM eta: 0 is deterministic, 1 is DDPM-like', num('eta'), 0)
  .addOption(new Option('--dtype <dtype>', 'weights and compute precision').choices(['float32', 'float16', 'bfloat16']).default('float32'))
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--variant <name>', "read '<weights>.<variant>.safetensors' files, e.g. fp16")
  .option('--revision <rev>', 'Hub branch, tag or commit (with a repo id)', 'main')
  .option('--offline', 'never use the network: the model must be a folder or already in the cache')
  .option('--threads <n>', 'CPU threads for libtorch', int('threads', 1))
  .option('-f, --force', 'overwrite existing output files')
  .option('-q, --quiet', 'print nothing but errors')
  .action(async (prompt: string, o) => {
    const model = o.model ?? (existsSync(EMBEDDED_MODEL) ? EMBEDDED_MODEL : undefined);
    if (model === undefined) throw new Error('no --model given, and the embedded model (models/shapes-64) is not in this checkout yet');
    await generate(prompt, { ...o, model });
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`imagic: ${e.message}\n`);
  process.exitCode = 1;
});
