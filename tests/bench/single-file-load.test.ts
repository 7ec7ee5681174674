// The single-file loading benchmark (bench/single-file-load.ts) on the tiny SD v1 model, so that it
// cannot rot: it writes the same random weights as a diffusers folder and as an LDM single file (with
// the schedule buffers and position_ids real files carry), both load to the same numbers, and it times them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { liveTensors } from '../../src/engine/index.js';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import { inspectSingleFile } from '../../src/io/single-file/index.js';
import { formatReport, runSingleFileBench } from '../../bench/single-file-load.js';
import type { Manifest } from '../../bench/sd-case.js';
import { fixturePath } from '../fixtures.js';

const dir = fixturePath('golden/single-file');
const folder = path.join(dir, 'tiny-sd1-ldm-diffusers');
const yaml = path.join(dir, 'tiny-sd1-ldm.yaml');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-single-file-bench-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The tiny folder as a manifest: its configs, and its keys and shapes. */
function tinyManifest(): Manifest {
  const cfg = (c: string, f = 'config.json') => JSON.parse(readFileSync(path.join(folder, c, f), 'utf8')) as Record<string, unknown>;
  const shapes = (c: string, f: string) => Object.fromEntries([...readSafetensorsHeader(path.join(folder, c, f)).tensors].map(([k, i]) => [k, i.shape]));
  return {
    configs: { unet: cfg('unet'), vae: cfg('vae'), text_encoder: cfg('text_encoder'), scheduler: cfg('scheduler', 'scheduler_config.json') },
    state_dict_shapes: {
      unet: shapes('unet', 'diffusion_pytorch_model.safetensors'), vae: shapes('vae', 'diffusion_pytorch_model.safetensors'),
      text_encoder: shapes('text_encoder', 'model.safetensors'),
    },
  };
}

test('single-file benchmark on the tiny SD v1 model: the same weights written twice, loaded equal, timed in alternating rounds', async () => {
  const start = liveTensors();
  const m = tinyManifest();
  const expectBytes = Object.values(m.state_dict_shapes).flatMap((c) => Object.values(c)).reduce((n, s) => n + s.reduce((a, b) => a * b, 1) * 2, 0);
  const lines: string[] = [];
  const r = await runSingleFileBench({
    manifest: m, dir: tmp, dtype: 'float16', seed: 3, rounds: 2, loadDtype: 'float32',
    singleFile: { config: yaml, textEncoderHeads: 4 }, onLine: (l) => lines.push(l),
  });
  assert.equal(r.sizes.tensors, 710);
  assert.equal(r.sizes.weightBytes, expectBytes);
  assert.equal(r.checkedTensors, 710, 'every weight compared between the two loads');
  // the single file: 710 weights in float16, 12 schedule buffers [1000] and position_ids int64 [1, 77], all skipped by the loader
  const file = path.join(tmp, 'sd-v1-ldm.safetensors');
  const h = readSafetensorsHeader(file);
  assert.equal(h.tensors.size, 710 + 12 + 1);
  assert.equal(r.sizes.fileBytes - r.sizes.weightBytes - 12 * 1000 * 2 - 77 * 8 > 0, true, 'header on top of the data');
  assert.equal(h.tensors.get('betas')?.dtype, 'float16');
  assert.deepEqual(h.tensors.get('first_stage_model.encoder.mid.attn_1.q.weight')?.shape, [64, 64, 1, 1]);
  const plan = inspectSingleFile(file, { config: yaml, textEncoderHeads: 4 });
  assert.equal(plan.items.length, 710);
  assert.equal(plan.skipped.length, 13);
  // the folder: transformers 4.x names for the text encoder, float16
  const te = readSafetensorsHeader(path.join(tmp, 'sd-v1-diffusers', 'text_encoder', 'model.safetensors'));
  assert.ok([...te.tensors.keys()].every((k) => k.startsWith('text_model.')));
  assert.ok([...te.tensors.values()].every((i) => i.dtype === 'float16'));
  // two rounds, alternating which goes first
  assert.deepEqual(r.samples.map((s) => `${s.round}:${s.which}`), ['0:folder', '0:single', '1:single', '1:folder']);
  assert.ok(r.samples.every((s) => s.seconds > 0 && s.log.length > 0));
  assert.equal(r.ratio.best, r.single.best / r.folder.best);
  const per = [0, 1].map((k) => r.samples.find((s) => s.round === k && s.which === 'single')!.seconds / r.samples.find((s) => s.round === k && s.which === 'folder')!.seconds);
  assert.ok(Math.abs(r.ratio.pairedMedian - (per[0]! + per[1]!) / 2) < 1e-12, 'per-round ratios: the median of two is their mean');
  assert.match(formatReport(r), /single \/ folder: best \d/);
  assert.equal(liveTensors(), start);
  // the same seed writes the same bytes; another seed does not
  const again = mkdtempSync(path.join(tmp, 'again-'));
  await runSingleFileBench({ manifest: m, dir: again, dtype: 'float16', seed: 3, rounds: 0, loadDtype: 'float32', singleFile: { config: yaml, textEncoderHeads: 4 } });
  assert.ok(readFileSync(path.join(again, 'sd-v1-ldm.safetensors')).equals(readFileSync(file)), 'seeded: the same file');
  const other = mkdtempSync(path.join(tmp, 'other-'));
  await runSingleFileBench({ manifest: m, dir: other, dtype: 'float16', seed: 4, rounds: 0, loadDtype: 'float32', singleFile: { config: yaml, textEncoderHeads: 4 } });
  assert.ok(!readFileSync(path.join(other, 'sd-v1-ldm.safetensors')).equals(readFileSync(file)));
});
