// text2img on the tiny golden checkpoint against diffusers' StableDiffusionPipeline
// (tests/fixtures/make_text2img_reference.py -> text2img-reference.safetensors).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, liveTensors, type Tensor } from '../../src/engine/index.js';
import { loadSafetensors } from '../../src/io/index.js';
import { loadStableDiffusion, disposeStableDiffusion, text2img, encodePrompt, type StableDiffusion } from '../../src/pipelines/index.js';
import { assertClose, settleHandles } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

let sd: StableDiffusion;
let g: Map<string, Tensor>;
let ref: Map<string, Tensor>;
const warnings: string[] = [];

before(async () => {
  sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'), { onWarning: (w) => warnings.push(w) });
  g = loadSafetensors(fixturePath('golden/golden.safetensors'), { keys: ['imagic.target_ids', 'imagic.uncond_ids', 'imagic.sample_init_latent'] });
  ref = loadSafetensors(fixturePath('text2img-reference.safetensors'));
});
after(() => disposeStableDiffusion(sd));

const ids = (k: string) => g.get(k)!.toArray() as number[][];

test('the tiny checkpoint loads every component and says it has no tokenizer', () => {
  assert.equal(sd.tokenizer, null);
  assert.ok(warnings.some((w) => /no tokenizer/.test(w)), warnings.join('\n'));
  assert.deepEqual(sd.scheduler.config.steps_offset, 1);
});

test('10 DDIM steps with guidance 7.5 reproduce diffusers (final latent and decoded image)', async () => {
  const steps: number[] = [];
  const { images, latents } = await text2img(sd, {
    prompt: ids('imagic.target_ids'), negativePrompt: ids('imagic.uncond_ids'), steps: 10, guidanceScale: 7.5,
    latents: g.get('imagic.sample_init_latent')!, onStep: (i, n, t) => steps.push(t),
  });
  assert.deepEqual(steps, [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  assertClose(latents, ref.get('text2img.final_latent')!, 1e-4, 1e-4, 'final latent');
  assertClose(images, ref.get('text2img.image')!, 1e-4, 1e-4, 'image');
});

test('guidance 1 runs the conditional branch alone, as diffusers', async () => {
  const { latents } = await text2img(sd, { prompt: ids('imagic.target_ids'), steps: 10, guidanceScale: 1, latents: g.get('imagic.sample_init_latent')! });
  assertClose(latents, ref.get('text2img.final_latent_no_guidance')!, 1e-4, 1e-4, 'final latent without guidance');
});

test('a seed fixes the noise; batches repeat per prompt; no tensors leak', async () => {
  await settleHandles();
  const live = liveTensors();
  const run = (seed: number) => text2img(sd, { prompt: ids('imagic.target_ids'), negativePrompt: ids('imagic.uncond_ids'), steps: 2, seed, numImagesPerPrompt: 2 });
  const a = await run(3), b = await run(3), c = await run(4);
  assert.deepEqual(a.images.shape, [2, 3, 64, 64]);
  assertClose(a.images, b.images, 0, 0, 'same seed, same image');
  assert.notDeepEqual(a.latents.toFlatArray(), c.latents.toFlatArray());
  const [first, second] = a.latents.chunk(2);
  assert.notDeepEqual(first!.toFlatArray(), second!.toFlatArray(), 'the two images of a prompt get different noise');
  for (const r of [a, b, c]) {
    r.images.dispose();
    r.latents.dispose();
  }
  first!.dispose();
  second!.dispose();
  await settleHandles();
  assert.equal(liveTensors(), live);
});

test('bad options are refused with clear errors', async () => {
  const p = ids('imagic.target_ids');
  await assert.rejects(text2img(sd, { prompt: p, steps: 0 }), /steps must be a positive integer/);
  await assert.rejects(text2img(sd, { prompt: p, width: 60 }), /width must be a positive integer and a multiple of 8/);
  await assert.rejects(text2img(sd, { prompt: 'a photo', steps: 1, guidanceScale: 1 }), /has no tokenizer: give token ids/);
  await assert.rejects(text2img(sd, { prompt: p, steps: 1 }), /no tokenizer to encode the empty negative prompt/);
  await assert.rejects(text2img(sd, { prompt: p, guidanceScale: 1, steps: 1, generator: new Generator(0), latents: g.get('imagic.sample_init_latent')!.expand(2, 4, 8, 8) }), /latents must have shape \[1,4,8,8\]/);
  assert.throws(() => encodePrompt(sd, [[998, 5000, 999]]), /5000/);
});

test('Hub downloads fetch only the loaded components, in safetensors, of the asked variant', async () => {
  const { hubPatterns } = await import('../../src/pipelines/index.js');
  const { filterRepoFiles } = await import('../../src/io/hub-cache.js');
  // The file list of runwayml/stable-diffusion-v1-5 (abridged).
  const repo = [
    'model_index.json', 'v1-5-pruned.ckpt', 'v1-5-pruned-emaonly.safetensors', 'feature_extractor/preprocessor_config.json',
    'safety_checker/config.json', 'safety_checker/model.safetensors', 'safety_checker/model.fp16.safetensors',
    'scheduler/scheduler_config.json', 'text_encoder/config.json', 'text_encoder/model.safetensors', 'text_encoder/model.fp16.safetensors',
    'text_encoder/pytorch_model.bin', 'tokenizer/merges.txt', 'tokenizer/vocab.json', 'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json',
    'unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'unet/diffusion_pytorch_model.fp16.safetensors',
    'unet/diffusion_pytorch_model.non_ema.safetensors', 'unet/diffusion_pytorch_model.bin',
    'vae/config.json', 'vae/diffusion_pytorch_model.safetensors', 'vae/diffusion_pytorch_model.fp16.safetensors',
  ];
  const full = hubPatterns();
  assert.deepEqual(filterRepoFiles(repo, full.allowPatterns, full.ignorePatterns).sort(), [
    'model_index.json', 'scheduler/scheduler_config.json', 'text_encoder/config.json', 'text_encoder/model.safetensors',
    'tokenizer/merges.txt', 'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json', 'tokenizer/vocab.json',
    'unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'vae/config.json', 'vae/diffusion_pytorch_model.safetensors',
  ]);
  const fp16 = hubPatterns('fp16');
  const got = filterRepoFiles(repo, fp16.allowPatterns, fp16.ignorePatterns);
  assert.deepEqual(got.filter((f) => f.endsWith('.safetensors')).sort(), [
    'text_encoder/model.fp16.safetensors', 'unet/diffusion_pytorch_model.fp16.safetensors', 'vae/diffusion_pytorch_model.fp16.safetensors',
  ]);
});
