// Pillow's resampling and preprocessor_config.json parsing, by hand (the bicubic path against transformers is in
// clip-score.test.ts: bit-exact on four images).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RgbImage } from '../../src/io/image-types.js';
import { MetricLoadError, parseProcessorConfig, pilResize, readProcessorConfig, resizedSize } from '../../src/metrics/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-clip-preprocess-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A one-row grey image (R = G = B) from values. */
const row = (vals: number[]): RgbImage => ({ width: vals.length, height: 1, data: Uint8Array.from(vals.flatMap((v) => [v, v, v])) });
const red = (im: RgbImage) => Array.from(im.data).filter((_, i) => i % 3 === 0);

test('pilResize: box and bilinear cases worked out by hand as Pillow computes them', () => {
  // box 4 -> 2: each output averages two inputs, rounded half up by the fixed-point rounding term: (10+21)/2 = 15.5 -> 16
  assert.deepEqual(red(pilResize(row([10, 21, 30, 40]), 2, 1, 'box')), [16, 35]);
  // bilinear 2 -> 4: centres at 0.25, 0.75, 1.25, 1.75; the edge outputs have one tap in range (renormalised to 1):
  // [0, 0.75*0 + 0.25*100, 0.25*0 + 0.75*100, 100]
  assert.deepEqual(red(pilResize(row([0, 100]), 4, 1, 'bilinear')), [0, 25, 75, 100]);
  // bicubic: the overshoot of a step (0 -> 255, 4x) is clipped to 0..255. Expected from Pillow 12.3:
  // np.array(Image.fromarray(a).resize((16, 1), Image.BICUBIC)) for a = [[0, 0, 255, 255]] as RGB
  assert.deepEqual(red(pilResize(row([0, 0, 255, 255]), 16, 1, 'bicubic')), [0, 0, 0, 0, 0, 0, 21, 88, 167, 234, 255, 255, 255, 255, 255, 255]);
  // the same size is a copy; a vertical-only resize leaves columns independent
  const im = row([1, 2, 3]);
  const same = pilResize(im, 3, 1);
  assert.deepEqual(same.data, im.data);
  assert.notEqual(same.data, im.data);
  const tall = pilResize(im, 3, 5, 'bilinear');
  assert.deepEqual([tall.width, tall.height], [3, 5]);
  assert.deepEqual(red(tall), [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
});

test('resizedSize: shortest edge to the size, the long edge truncated as Python int()', () => {
  assert.deepEqual(resizedSize(45, 61, { shortestEdge: 32 }), [32, 43]); // 32 * 61 / 45 = 43.38
  assert.deepEqual(resizedSize(50, 24, { shortestEdge: 32 }), [66, 32]); // 66.67 -> 66
  assert.deepEqual(resizedSize(512, 512, { shortestEdge: 224 }), [224, 224]);
  assert.deepEqual(resizedSize(10, 20, { height: 7, width: 9 }), [7, 9]);
});

test('preprocessor_config.json: fields, defaults, and errors that name the file', () => {
  const c = parseProcessorConfig({ size: 32, crop_size: 32, resample: 2, image_mean: 0.5, do_rescale: false }, 32);
  assert.deepEqual([c.size, c.cropSize, c.resample, c.imageMean, c.doRescale], [{ shortestEdge: 32 }, { height: 32, width: 32 }, 'bilinear', [0.5, 0.5, 0.5], false]);
  assert.deepEqual(readProcessorConfig(tmp, 224).imageStd, [0.26862954, 0.26130258, 0.27577711], 'no file: CLIP defaults');
  const file = path.join(tmp, 'preprocessor_config.json');
  writeFileSync(file, '{"size": ');
  assert.throws(() => readProcessorConfig(tmp, 224), (e: Error) => e instanceof MetricLoadError && e.message.startsWith(file) && /not valid JSON/.test(e.message));
  const err = (re: RegExp) => (e: Error) => e instanceof MetricLoadError && re.test(e.message);
  assert.throws(() => parseProcessorConfig({ resample: 0 }, 32), err(/'resample' must be a PIL resampling code 1-5/));
  assert.throws(() => parseProcessorConfig({ size: { shortest_edge: 32, longest_edge: 40 } }, 32), err(/'size' must be/));
  assert.throws(() => parseProcessorConfig({ image_std: [1, 0, 1] }, 32), err(/'image_std' must not be 0/));
  assert.throws(() => parseProcessorConfig({ image_mean: [1, 2] }, 32), err(/'image_mean' must be a number or 3 numbers/));
  assert.throws(() => parseProcessorConfig({ do_center_crop: false }, 32), err(/would not be 32x32/));
  assert.doesNotThrow(() => parseProcessorConfig({ do_center_crop: false, size: { height: 32, width: 32 } }, 32));
});
