// The Shapes-64 domain CLIP: its trainer (multi-positive contrastive loss, deterministic, resumable)
// and the shipped one (models/shapes-64/clip), which must read every attribute of fresh renders.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dispose } from '../../src/engine/index.js';
import { CLIPScorer } from '../../src/metrics/index.js';
import { loadCLIPModel } from '../../src/models/clip/index.js';
import { captionOf } from '../../src/shapes/captions.js';
import { mulberry32, randomSpec } from '../../src/shapes/spec.js';
import { exportShapesClip, shapesClipTokenizer, trainShapesClip, zeroShotAccuracy, type ClipTrainSettings } from '../../src/shapes/train/clip.js';
import { renderBatch } from '../../src/shapes/train/data.js';
import { repoRoot } from '../fixtures.js';

const shipped = path.join(repoRoot, 'models', 'shapes-64', 'clip');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-shapes-clip-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('domain CLIP trainer', () => {
  const s: ClipTrainSettings = { steps: 4, batchSize: 12, lr: 1e-3, warmup: 2, weightDecay: 0.05, full: 0.4, groupSize: 4, seed: 3, loss: 'sigmoid' };

  test('is deterministic and resumes to the same weights; the export loads as a CLIPModel folder', async () => {
    const straight = await trainShapesClip(path.join(tmp, 'a'), s);
    const first = await trainShapesClip(path.join(tmp, 'b'), { ...s, steps: 2 });
    first.model.dispose();
    const resumed = await trainShapesClip(path.join(tmp, 'b'), s);
    assert.equal(resumed.step, 4);
    const sa = new Map(straight.model.namedParameters()), sb = new Map(resumed.model.namedParameters());
    for (const [k, t] of sa) assert.deepEqual(t.toTypedArray(), sb.get(k)!.toTypedArray(), k);
    const out = path.join(tmp, 'export');
    exportShapesClip(straight.model, out, { test: true });
    const loaded = loadCLIPModel(out);
    for (const [k, t] of loaded.namedParameters()) assert.deepEqual(t.toTypedArray(), sa.get(k)!.toTypedArray(), k);
    loaded.dispose();
    straight.model.dispose();
    resumed.model.dispose();
  });

  test('the softmax form (nce) trains too: finite losses, below ln(batch) once it learned a little', async () => {
    const losses: number[] = [];
    const r = await trainShapesClip(path.join(tmp, 'nce'), { ...s, loss: 'nce', steps: 2 }, { onStep: (_i, _n, l) => losses.push(l) });
    assert.equal(r.step, 2);
    assert.equal(losses.length, 2);
    // the multi-positive loss is at most ln(12) for a batch of 12 (uniform softmax, at least one match)
    for (const l of losses) assert.ok(Number.isFinite(l) && l > 0 && l <= Math.log(12) + 1e-4, `loss ${l}`);
    r.model.dispose();
  });

  test('refuses to resume a run with other settings', async () => {
    await assert.rejects(trainShapesClip(path.join(tmp, 'a'), { ...s, lr: 2e-3 }), /other settings/);
  });
});

describe('the shipped domain CLIP (models/shapes-64/clip)', () => {
  test('reads every attribute of 200 fresh renders zero-shot (size, color, position, background at least 97%; shape, its weak point, at least 80%)', async () => {
    const { model } = { model: loadCLIPModel(shipped) };
    const rng = mulberry32(99);
    const specs = Array.from({ length: 200 }, () => randomSpec(rng));
    const images = renderBatch(specs);
    const acc = zeroShotAccuracy(model, shapesClipTokenizer(), images, specs);
    for (const [attr, v] of Object.entries(acc)) assert.ok(v >= (attr === 'shape' ? 0.8 : 0.97), `${attr}: ${(100 * v).toFixed(1)}%`);
    dispose(images);
    model.dispose();
  });

  test('through CLIPScorer: the matching caption scores above a one-attribute change, and CLIP-I ranks a near copy above an edit', async () => {
    const clip = await CLIPScorer.load(shipped);
    const rng = mulberry32(5);
    const spec = { ...randomSpec(rng), color: 'red' as const, shape: 'circle' as const };
    const images = renderBatch([spec, { ...spec, cx: spec.cx + 1 }, { ...spec, color: 'blue' }]);
    const [same, other] = clip.clipScore(images.narrow(0, 0, 1).expand(2, -1, -1, -1), [captionOf({ color: 'red', shape: 'circle' }), captionOf({ color: 'blue', shape: 'circle' })]);
    assert.ok(same! > other! + 2, `CLIP score ${same} vs ${other}`);
    const ref = images.narrow(0, 0, 1).expand(2, -1, -1, -1);
    const [near, edited] = clip.clipI(images.narrow(0, 1, 2), ref);
    assert.ok(near! > edited!, `CLIP-I ${near} vs ${edited}`);
    dispose([images, ref]);
    clip.dispose();
  });
});
