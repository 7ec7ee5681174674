// The Shapes-64 trainer on tiny settings: the learning-rate schedule, the loss weights, determinism
// for a seed, an interrupted and resumed run equal to an uninterrupted one, refusing other settings,
// and the export loading as a Stable Diffusion folder.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dispose } from '../../src/engine/index.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { disposeStableDiffusion, loadStableDiffusion, text2img } from '../../src/pipelines/index.js';
import { isShapesModel } from '../../src/shapes/domain.js';
import {
  DEFAULT_TRAIN_SETTINGS, exportShapesModel, learningRate, pixelWeights, readRun, shapesBatch, trainShapes, type TrainSettings,
} from '../../src/shapes/train/index.js';
import { nominalSpec } from '../../src/shapes/spec.js';
import { renderBatch } from '../../src/shapes/train/data.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const tiny: TrainSettings = {
  ...DEFAULT_TRAIN_SETTINGS,
  seed: 7,
  vae: { ...DEFAULT_TRAIN_SETTINGS.vae, steps: 3, batchSize: 2, warmup: 1 },
  unet: { ...DEFAULT_TRAIN_SETTINGS.unet, steps: 4, batchSize: 4, warmup: 2, dataset: 12 },
};

function checkpointsEqual(a: string, b: string): void {
  for (const f of ['vae-checkpoint.safetensors', 'unet-checkpoint.safetensors']) {
    const x = loadSafetensors(path.join(a, f)), y = loadSafetensors(path.join(b, f));
    assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort(), f);
    for (const [k, t] of x) {
      const u = y.get(k)!;
      assert.equal(t.sub(u).abs().amax().item(), 0, `${f}: ${k} differs`);
    }
    dispose([...x.values(), ...y.values()]);
  }
}

describe('training pieces', () => {
  test('learning rate: linear warmup to lr, cosine down to lr / 10 at the last step', () => {
    const p = { steps: 100, batchSize: 1, lr: 1e-3, warmup: 10 };
    assert.ok(Math.abs(learningRate(p, 0) - 1e-4) < 1e-12);
    assert.ok(Math.abs(learningRate(p, 9) - 1e-3) < 1e-12);
    assert.ok(Math.abs(learningRate(p, 10) - 1e-3) < 1e-12);
    assert.ok(Math.abs(learningRate(p, 55) - 0.55e-3) < 1e-12);
    assert.ok(Math.abs(learningRate(p, 100) - 1e-4) < 1e-12);
  });

  test('batches depend only on (seed, step); captions mix full, partial and empty', () => {
    const a = shapesBatch(3, 5, 64), b = shapesBatch(3, 5, 64), c = shapesBatch(3, 6, 64);
    assert.deepEqual(a.captions, b.captions);
    assert.equal(a.images.sub(b.images).abs().amax().item(), 0);
    assert.notDeepEqual(a.captions, c.captions);
    assert.ok(a.captions.some((t) => t === ''), 'some captions dropped');
    assert.ok(a.captions.some((t) => t.endsWith('background') && t.split(' ').length >= 10), 'some full captions');
    assert.ok(a.captions.some((t) => t !== '' && t.split(' ').length < 8), 'some partial captions');
    dispose([a.images, b.images, c.images]);
  });

  test('pixel weights: object pixels and the 2-px frame weigh more', () => {
    const spec = nominalSpec({ shape: 'square', color: 'red', size: 'large', position: 'center', background: 'white' });
    const images = renderBatch([spec]);
    const t = pixelWeights(images, [spec], 10, 5);
    const w = t.toTypedArray() as Float32Array;
    const at = (y: number, x: number) => w[y * 64 + x];
    assert.deepEqual(t.shape, [1, 1, 64, 64]);
    assert.equal(at(32, 32), 10, 'inside the square');
    assert.equal(at(10, 10), 1, 'background');
    assert.equal(at(0, 30), 5, 'frame');
    assert.equal(at(63, 63), 5, 'frame corner');
    dispose([images, t]);
  });
});

describe('trainShapes', () => {
  const full = path.join(tmp, 'full'), again = path.join(tmp, 'again'), resumed = path.join(tmp, 'resumed');

  test('trains both phases, logs, and records its progress', async () => {
    const run = await trainShapes(full, tiny);
    assert.equal(run.progress.vae, 3);
    assert.equal(run.progress.unet, 4);
    assert.ok(run.progress.scalingFactor! > 0);
    const log = readFileSync(path.join(full, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(log.map((l) => `${l.phase}:${l.step}`), ['vae:3', 'unet:4']);
    assert.ok(log.every((l) => Number.isFinite(l.loss) && l.loss > 0));
  });

  test('the same seed gives the same weights', async () => {
    await trainShapes(again, tiny);
    checkpointsEqual(full, again);
  });

  test('stopped mid-phase and resumed, it ends with the same weights as an uninterrupted run', async () => {
    let calls = 0;
    // Stop in phase 1 (after 2 VAE steps), then in phase 2 (after 2 more UNet steps).
    let run = await trainShapes(resumed, tiny, { shouldStop: () => ++calls === 3 });
    assert.equal(run.progress.vae, 2);
    assert.equal(run.progress.unet, 0);
    calls = 0;
    run = await trainShapes(resumed, tiny, { shouldStop: () => ++calls === 4 });
    assert.equal(run.progress.vae, 3);
    assert.equal(run.progress.unet, 2);
    run = await trainShapes(resumed, tiny);
    assert.equal(run.progress.unet, 4);
    checkpointsEqual(full, resumed);
  });

  test('a run continues only with its own settings', async () => {
    await assert.rejects(trainShapes(full, { ...tiny, seed: 8 }), /started with other settings \(seed: 7 in the run, 8 now\)/);
    await assert.rejects(trainShapes(full, { ...tiny, unet: { ...tiny.unet, lr: 5e-4 } }), /unet\.lr: 0\.001 in the run, 0\.0005 now/);
    writeFileSync(path.join(tmp, 'bad.json'), '{');
    const bad = path.join(tmp, 'badrun');
    await trainShapes(bad, { ...tiny, unet: { ...tiny.unet, steps: 0 }, vae: { ...tiny.vae, steps: 1 } }).catch(() => {});
    writeFileSync(path.join(bad, 'run.json'), '{ not json');
    await assert.rejects(trainShapes(bad, tiny), /run\.json is not valid JSON/);
  });

  test('exports a diffusers folder that loads like SD and generates', async () => {
    const out = path.join(tmp, 'model');
    const r = exportShapesModel(full, out);
    assert.ok(r.bytes > 10e6 && r.bytes < 25e6, `fp16 weights ${r.bytes} bytes`);
    assert.ok(isShapesModel(out));
    for (const f of ['model_index.json', 'scheduler/scheduler_config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'text_encoder/config.json', 'text_encoder/model.safetensors', 'unet/diffusion_pytorch_model.safetensors', 'vae/config.json', 'training.json']) {
      assert.ok(existsSync(path.join(out, f)), f);
    }
    const vaeCfg = JSON.parse(readFileSync(path.join(out, 'vae', 'config.json'), 'utf8'));
    assert.ok(Math.abs(vaeCfg.scaling_factor - readRun(full)!.progress.scalingFactor!) < 1e-5);
    const unetWeights = loadSafetensors(path.join(out, 'unet', 'diffusion_pytorch_model.safetensors'));
    assert.ok([...unetWeights.values()].every((t) => t.dtype === 'float16'));
    dispose([...unetWeights.values()]);

    const sd = await loadStableDiffusion(out);
    const g = await text2img(sd, { prompt: 'a red circle', steps: 2, seed: 0 });
    assert.deepEqual(g.images.shape, [1, 3, 64, 64]);
    assert.ok(Number.isFinite(g.images.abs().amax().item()));
    dispose([g.images, g.latents]);
    disposeStableDiffusion(sd);

    assert.throws(() => exportShapesModel(full, out), /exists: pass --force/);
    writeFileSync(path.join(out, 'README.md'), 'the model card\n');
    exportShapesModel(full, out, { force: true });
    assert.equal(readFileSync(path.join(out, 'README.md'), 'utf8'), 'the model card\n', 'the card survives a re-export');
  });
});
