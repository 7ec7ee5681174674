// SDEdit img2img on the tiny golden checkpoint against diffusers' StableDiffusionImg2ImgPipeline
// (tests/fixtures/make_baselines_reference.py -> baselines-reference.safetensors).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, liveTensors, type Tensor } from '../../src/engine/index.js';
import { loadSafetensors } from '../../src/io/index.js';
import { imageToTensor, tensorToImage } from '../../src/io/image.js';
import { loadStableDiffusion, disposeStableDiffusion, encodeImage, img2img, img2imgTimesteps, type StableDiffusion } from '../../src/pipelines/index.js';
import { assertClose } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

let sd: StableDiffusion;
let g: Map<string, Tensor>;
let ref: Map<string, Tensor>;

before(async () => {
  sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
  g = loadSafetensors(fixturePath('golden/golden.safetensors'), { keys: ['imagic.target_ids', 'imagic.uncond_ids', 'imagic.image'] });
  ref = loadSafetensors(fixturePath('baselines-reference.safetensors'));
});
after(() => disposeStableDiffusion(sd));

const ids = (k: string) => g.get(k)!.toArray() as number[][];
const SEED = 1234; // the reference's torch.Generator seed
const common = () => ({
  prompt: ids('imagic.target_ids'), negativePrompt: ids('imagic.uncond_ids'), steps: 10, strength: 0.6, guidanceScale: 7.5,
});

test('strength 0.6 of 10 steps runs the last 6 DDIM timesteps (diffusers get_timesteps)', () => {
  assert.deepEqual(img2imgTimesteps(sd, 10, 0.6), [501, 401, 301, 201, 101, 1]);
  assert.deepEqual(ref.get('img2img.noise_timestep')!.toFlatArray(), [501]);
  assert.deepEqual(img2imgTimesteps(sd, 10, 1), [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  assert.deepEqual(img2imgTimesteps(sd, 10, 0.05), []);
  assert.deepEqual(img2imgTimesteps(sd, 50, 0.29), img2imgTimesteps(sd, 50, 0.28)); // floor(50 * 0.29) = 14, as Python's int()
});

test('the posterior sample from the seed is diffusers\' image latent', () => {
  const z = encodeImage(sd, g.get('imagic.image')!, { generator: new Generator(SEED) });
  assertClose(z, ref.get('img2img.init_latents')!, 1e-5, 1e-5, 'scaled posterior sample');
  z.dispose();
});

test('SDEdit with the reference noise reproduces diffusers (final latent and image)', () => {
  const seen: number[] = [];
  const r = img2img(sd, {
    ...common(), image: g.get('imagic.image')!, generator: new Generator(SEED), noise: ref.get('img2img.noise')!,
    onStep: (i, n, t) => seen.push(t),
  });
  assert.deepEqual(seen, [501, 401, 301, 201, 101, 1]);
  assert.deepEqual(r.timesteps, seen);
  assertClose(r.latents, ref.get('img2img.final_latent')!, 1e-4, 1e-4, 'final latent');
  assertClose(r.images, ref.get('img2img.image')!, 1e-4, 1e-4, 'image');
  r.images.dispose();
  r.latents.dispose();
});

test('with only the seed, both draws (posterior sample, then noise) are diffusers\' generator draws', () => {
  const r = img2img(sd, { ...common(), image: g.get('imagic.image')!, seed: SEED });
  assertClose(r.latents, ref.get('img2img.final_latent')!, 1e-4, 1e-4, 'final latent from the seed');
  r.images.dispose();
  r.latents.dispose();
});

test('latentMode mean starts from the posterior mean (diffusers given the scaled mean as a 4-channel image)', () => {
  const r = img2img(sd, { ...common(), image: g.get('imagic.image')!, latentMode: 'mean', noise: ref.get('img2img.mean.noise')! });
  assertClose(r.latents, ref.get('img2img.mean.final_latent')!, 1e-4, 1e-4, 'final latent from the mean');
  // imageLatents skips the VAE encoder: the same latent gives the same result, bit for bit
  const z = encodeImage(sd, g.get('imagic.image')!, { latentMode: 'mean' });
  const r2 = img2img(sd, { ...common(), imageLatents: z, noise: ref.get('img2img.mean.noise')! });
  assertClose(r2.latents, r.latents, 0, 0, 'imageLatents path');
  for (const t of [r.images, r.latents, r2.images, r2.latents, z]) t.dispose();
});

test('an RgbImage encodes as its imageToTensor tensor; a strength below one step returns the decoded image latent', () => {
  const rgb = tensorToImage(g.get('imagic.image')!);
  const fromRgb = encodeImage(sd, rgb, { latentMode: 'mean' });
  const x = imageToTensor(rgb);
  const fromTensor = encodeImage(sd, x, { latentMode: 'mean' });
  assertClose(fromRgb, fromTensor, 0, 0, 'RgbImage and its tensor encode alike');
  const steps: number[] = [];
  const r = img2img(sd, { ...common(), image: rgb, strength: 0.05, latentMode: 'mean', onStep: (i) => steps.push(i) });
  assert.deepEqual(r.timesteps, []);
  assert.deepEqual(steps, []);
  assertClose(r.latents, fromRgb, 0, 0, 'no step: the image latent itself');
  const decoded = sd.vae.decode(fromRgb.div(sd.vae.config.scaling_factor));
  assertClose(r.images, decoded, 0, 0, 'decoded');
  for (const t of [x, fromRgb, fromTensor, r.images, r.latents, decoded]) t.dispose();
});

test('one image for two prompts is shared; the same seed gives the same result; nothing leaks', () => {
  const live = liveTensors();
  const p = ids('imagic.target_ids');
  const run = () => img2img(sd, { prompt: [p[0]!, p[0]!], guidanceScale: 1, steps: 4, strength: 0.5, image: g.get('imagic.image')!, seed: 7 });
  const a = run(), b = run();
  assert.deepEqual(a.latents.shape, [2, 4, 8, 8]);
  assertClose(a.latents, b.latents, 0, 0, 'same seed');
  const [first, second] = a.latents.chunk(2);
  assert.notDeepEqual(first!.toFlatArray(), second!.toFlatArray(), 'each prompt gets its own noise');
  for (const t of [a.images, a.latents, b.images, b.latents, first!, second!]) t.dispose();
  assert.equal(liveTensors(), live);
});

test('bad options are refused with clear errors, leaking nothing', () => {
  const image = g.get('imagic.image')!;
  const p = ids('imagic.target_ids');
  const [noise2, image3, narrow] = [ref.get('img2img.noise')!.expand(2, 4, 8, 8), image.expand(3, 3, 64, 64), image.narrow(3, 0, 60)];
  const live = liveTensors();
  assert.throws(() => img2img(sd, { ...common(), image, strength: 1.5 }), /strength must be a number in \[0, 1\], got 1.5/);
  assert.throws(() => img2img(sd, { ...common(), image, strength: -0.1 }), /strength must be a number in \[0, 1\]/);
  assert.throws(() => img2img(sd, { ...common(), image, strength: NaN }), /strength must be a number in \[0, 1\]/);
  assert.throws(() => img2img(sd, { ...common(), image, steps: 0 }), /steps must be a positive integer/);
  assert.throws(() => img2img(sd, { ...common() }), /give either image or imageLatents/);
  assert.throws(() => img2img(sd, { ...common(), image, noise: noise2 }), /noise must have shape \[1, 4, 8, 8\]/);
  assert.throws(() => img2img(sd, { ...common(), image: image3 }), /3 images for 1 prompts/);
  assert.throws(() => img2img(sd, { ...common(), image: narrow }), /multiples of 8/);
  assert.throws(() => img2img(sd, { prompt: p, image, steps: 1 }), /no tokenizer to encode the empty negative prompt/);
  assert.throws(() => img2img(sd, { guidanceScale: 1, image, steps: 1 }), /give a prompt/);
  assert.equal(liveTensors(), live);
  for (const t of [noise2, image3, narrow]) t.dispose();
});
