// The shipped Shapes-64 model (models/shapes-64), end to end: it loads as a Stable Diffusion folder,
// generates images the evaluator reads as captioned, the demo's Imagic edit changes the named attribute
// with the automatic choice keeps the rest of the picture, and the CLI warns about input outside the domain (and still runs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { dispose } from '../../src/engine/index.js';
import { imageToTensor, tensorToImage, tensorToImages } from '../../src/io/image-tensor.js';
import { writePng } from '../../src/io/image.js';
import { disposeStableDiffusion, loadStableDiffusion, text2img, type StableDiffusion } from '../../src/pipelines/index.js';
import { encodeImage, invertedNoise } from '../../src/pipelines/imagic/stages.js';
import { AUTO_SEEDS, autoChoose, clipCandidateScorer } from '../../src/pipelines/imagic/auto.js';
import { CLIPScorer } from '../../src/metrics/index.js';
import { editBenchmarkCases } from '../../src/shapes/edit-benchmark.js';
import type { RgbImage } from '../../src/io/image-types.js';
import { runEdit } from '../../src/pipelines/imagic/edit.js';
import { resolveSettings } from '../../src/pipelines/imagic/presets.js';
import { checkEdit, fullCaption, isShapesModel, nominalSpec, readAttributes, renderShape, type EditCheck, type ShapeAttributes, type ShapeSpec } from '../../src/shapes/index.js';
import { repoRoot } from '../fixtures.js';
import { runCli } from '../cli/tiny-model.js';

const model = path.join(repoRoot, 'models', 'shapes-64');
let sd: StableDiffusion;
let tmp: string;
before(async () => {
  sd = await loadStableDiffusion(model);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-shapes-'));
});
after(() => {
  disposeStableDiffusion(sd);
  rmSync(tmp, { recursive: true, force: true });
});

describe('the shipped Shapes-64 model', () => {
  test('is a Shapes-64 diffusers folder of fp16 weights under 25 MB', () => {
    assert.ok(isShapesModel(model));
    assert.equal(sd.unet.config.sample_size, 8);
    assert.equal(sd.vae.downscaleFactor, 8);
  });

  test('generates what the caption says, for a few captions (fixed seed, 25 steps)', async () => {
    const specs: ShapeAttributes[] = [
      { size: 'large', color: 'red', shape: 'circle', position: 'left', background: 'white' },
      { size: 'small', color: 'blue', shape: 'square', position: 'top-right', background: 'black' },
      { size: 'large', color: 'green', shape: 'triangle', position: 'bottom', background: 'gray' },
      { size: 'small', color: 'yellow', shape: 'circle', position: 'center', background: 'black' },
    ];
    const r = await text2img(sd, { prompt: specs.map(fullCaption), steps: 25, seed: 0 });
    const images = tensorToImages(r.images);
    dispose([r.images, r.latents]);
    images.forEach((img, i) => assert.deepEqual(readAttributes(img).attributes, specs[i], fullCaption(specs[i]!)));
  });

  test('Imagic with the automatic choice (the demo edit): the red circle becomes a red square and keeps the rest', async () => {
    const r = await autoEdit(nominalSpec({ shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' }), 'a red square');
    assert.ok(r.check.success, `the output is not a red square: failed ${r.check.failed} ${r.check.reason ?? ''} (chose ${r.choice})`);
    assert.ok(r.check.preserved, `the edit changed ${r.check.changed} (chose ${r.choice})`);
  });

  test('Imagic with the automatic choice on two development edits (editBenchmarkCases(4, 7), not the benchmark): success and preservation', async () => {
    const cases = editBenchmarkCases(4, 7);
    for (const id of [0, 4]) {
      const c = cases[id]!;
      const r = await autoEdit(c.input, c.target);
      assert.ok(r.check.success && r.check.preserved, `#${id} "${c.target}": success ${r.check.success}, changed ${r.check.changed} (chose ${r.choice})`);
    }
  });
});

/** An edit as `imagic edit` makes it by default: the shapes preset, every candidate, the rule with the shipped CLIP. */
async function autoEdit(spec: ShapeSpec, target: string): Promise<{ check: EditCheck; choice: string }> {
  const s = resolveSettings('shapes');
  const image = imageToTensor(renderShape(spec));
  const dir = path.join(tmp, `auto-${target.replace(/\W+/g, '-')}-${spec.cx.toFixed(1)}`);
  const r = await runEdit(sd, dir, { image, imageSource: 'rendered', target, modelSource: model }, s);
  const emb = r.embeddings!;
  const latent = encodeImage(sd, image);
  const inverted = invertedNoise(sd, latent, emb.eOpt, s.steps);
  const clip = await CLIPScorer.load(path.join(model, 'clip'));
  const images = new Map<string, RgbImage>();
  try {
    const res = await autoChoose(sd, emb, {
      etas: s.autoEtas, seeds: AUTO_SEEDS, steps: s.steps, guidanceScale: s.guidanceScale, target, input: image,
      scorer: clipCandidateScorer(clip, 'clip'), invertedNoise: inverted,
      onImage: (img, c) => {
        images.set(`${c.eta}/${c.seed}`, tensorToImage(img));
        img.dispose();
      },
    });
    const chosen = images.get(`${res.choice.candidate.eta}/${res.choice.candidate.seed}`)!;
    const check = checkEdit(readAttributes(renderShape(spec)), readAttributes(chosen), target);
    return { check, choice: `eta ${res.choice.candidate.eta} seed ${res.choice.candidate.seed}` };
  } finally {
    clip.dispose();
    dispose([image, latent, inverted, ...Object.values(emb)]);
    // sd.unet is fine-tuned now: reload for what follows.
    disposeStableDiffusion(sd);
    sd = await loadStableDiffusion(model);
  }
}

describe('the CLI on input outside the domain', () => {
  test('a caption with unknown words: a warning naming them, and an image anyway', () => {
    const out = path.join(tmp, 'dog.png');
    const r = runCli(['generate', 'a red dog on a white background', '-o', out, '--steps', '3']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /warning: "a red dog on a white background" has words outside the Shapes-64 domain \(dog\)/);
  });

  test('an input that is not 64x64 is resized with a note; a photo-like input warns that it is out of the domain', async () => {
    const big = path.join(tmp, 'big.png');
    const spec = nominalSpec({ shape: 'square', color: 'blue', size: 'large', position: 'center', background: 'gray' });
    await writePng(path.join(tmp, 'small.png'), renderShape(spec));
    await sharp(path.join(tmp, 'small.png')).resize(192, 192, { kernel: 'nearest' }).toFile(big);
    const fast = ['--steps-a', '2', '--steps-b', '2', '--steps', '2', '-f'];
    let r = runCli(['edit', big, 'a blue circle', '-o', path.join(tmp, 'e1.png'), ...fast]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /note: .*big\.png is 192x192; resized and center-cropped to the model's 64x64/);
    assert.doesNotMatch(r.err, /does not look like a Shapes-64 image/);

    const photo = path.join(tmp, 'photo.png');
    const px = Buffer.alloc(96 * 96 * 3);
    for (let y = 0; y < 96; y++) for (let x = 0; x < 96; x++) px.set([(40 + 2 * x) % 256, (90 + y) % 256, (30 + x + y) % 256], (y * 96 + x) * 3);
    await sharp(px, { raw: { width: 96, height: 96, channels: 3 } }).jpeg().toFile(photo);
    r = runCli(['edit', photo, 'a blue circle', '-o', path.join(tmp, 'e2.png'), ...fast]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /warning: the input does not look like a Shapes-64 image/);
  });
});
