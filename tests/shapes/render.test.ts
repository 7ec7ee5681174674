// The Shapes-64 renderer: exact pixels of hand-computed cases (4x4 supersampled coverage), symmetry,
// every pixel an exact 16-level blend, and a PNG round trip through writePng/readImage.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readImage, writePng, type RgbImage } from '../../src/io/image.js';
import { renderShape } from '../../src/shapes/render.js';
import { BACKGROUND_RGB, mulberry32, OBJECT_RGB, randomSpec, type ShapeSpec } from '../../src/shapes/spec.js';

const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
const spec = (over: Partial<ShapeSpec>): ShapeSpec => ({
  shape: 'square', color: 'red', size: 'small', position: 'center', background: 'white', side: 16, cx: 32, cy: 32, ...over,
});
/** The blend the renderer must produce for a pixel covered by k of 16 samples. */
const blend = (bg: readonly number[], fg: readonly number[], k: number) => bg.map((b, c) => Math.round(b + (fg[c] - b) * k / 16));

describe('renderShape', () => {
  test('returns a 64x64 RgbImage', () => {
    const img = renderShape(spec({}));
    assert.equal(img.width, 64);
    assert.equal(img.height, 64);
    assert.ok(img.data instanceof Uint8Array);
    assert.equal(img.data.length, 64 * 64 * 3);
  });

  test('pixel-aligned square: exactly pixels 24..39, no edge blend', () => {
    const img = renderShape(spec({}));
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const inside = x >= 24 && x <= 39 && y >= 24 && y <= 39;
        assert.deepEqual(px(img, x, y), inside ? [220, 40, 40] : [255, 255, 255], `pixel ${x},${y}`);
      }
    }
  });

  test('odd side: half-covered edges and quarter-covered corners, hand-computed', () => {
    // side 15 at 32: edges at 24.5 and 39.5, so pixels 24 and 39 are half covered on that axis.
    const img = renderShape(spec({ side: 15 }));
    assert.deepEqual(px(img, 30, 30), [220, 40, 40]);
    assert.deepEqual(px(img, 25, 38), [220, 40, 40]);
    assert.deepEqual(px(img, 0, 0), [255, 255, 255]);
    assert.deepEqual(px(img, 63, 63), [255, 255, 255]);
    assert.deepEqual(px(img, 23, 32), [255, 255, 255]);
    // 255 + (220-255)/2 = 237.5 -> 238; 255 + (40-255)/2 = 147.5 -> 148.
    assert.deepEqual(px(img, 24, 32), [238, 148, 148]);
    assert.deepEqual(px(img, 39, 32), [238, 148, 148]);
    assert.deepEqual(px(img, 32, 24), [238, 148, 148]);
    // Corner: coverage 1/4: 255 - 35/4 = 246.25 -> 246; 255 - 215/4 = 201.25 -> 201.
    assert.deepEqual(px(img, 24, 24), [246, 201, 201]);
    const edge = px(img, 24, 32);
    for (let c = 0; c < 3; c++) assert.ok(edge[c] > [220, 40, 40][c] && edge[c] < 255);
  });

  test('triangle: apex up, base at the bottom, mirror-symmetric about x = 32', () => {
    const img = renderShape(spec({ shape: 'triangle', color: 'blue', background: 'black' }));
    // Base row 39 (y in [39, 40)) is full in the middle; row 40 and row 23 are empty.
    assert.deepEqual(px(img, 32, 39), [40, 90, 220]);
    assert.deepEqual(px(img, 26, 39), [40, 90, 220]);
    for (let x = 0; x < 64; x++) {
      assert.deepEqual(px(img, x, 40), [0, 0, 0]);
      assert.deepEqual(px(img, x, 23), [0, 0, 0]);
    }
    // Apex pixel: half-width 0.06..0.44 over the row, so only partly covered.
    const apex = px(img, 31, 24);
    assert.ok(apex[2] > 0 && apex[2] < 220, `apex ${apex}`);
    // Upper corners of the bounding box are outside the triangle.
    assert.deepEqual(px(img, 24, 25), [0, 0, 0]);
    assert.deepEqual(px(img, 39, 25), [0, 0, 0]);
    for (let y = 0; y < 64; y++) for (let x = 0; x < 32; x++) assert.deepEqual(px(img, x, y), px(img, 63 - x, y));
  });

  test('circle: the disc of diameter 16, symmetric in x and y', () => {
    const img = renderShape(spec({ shape: 'circle', color: 'green', background: 'gray' }));
    assert.deepEqual(px(img, 31, 31), [40, 170, 70]);
    assert.deepEqual(px(img, 24, 32), [40, 170, 70]); // samples at dx <= 7.875, dy <= 0.875: inside r = 8
    assert.deepEqual(px(img, 23, 32), [128, 128, 128]);
    assert.deepEqual(px(img, 24, 24), [128, 128, 128]); // bounding-box corner, outside the disc
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 32; x++) {
        assert.deepEqual(px(img, x, y), px(img, 63 - x, y));
        assert.deepEqual(px(img, y, x), px(img, y, 63 - x));
      }
    }
  });

  test('every pixel of random specs is an exact k/16 blend, with some edge pixels strictly between', () => {
    const rng = mulberry32(7);
    for (let n = 0; n < 50; n++) {
      const s = randomSpec(rng);
      const img = renderShape(s);
      const bg = BACKGROUND_RGB[s.background], fg = OBJECT_RGB[s.color];
      const levels = Array.from({ length: 17 }, (_, k) => blend(bg, fg, k).join(','));
      let partial = 0, full = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          const k = levels.indexOf(px(img, x, y).join(','));
          assert.ok(k >= 0, `pixel ${x},${y} of ${JSON.stringify(s)} is not a blend`);
          if (k > 0 && k < 16) partial++;
          if (k === 16) full++;
        }
      }
      // A square's edges can fall between sample rows and columns; a disc's or triangle's never do.
      assert.ok(full > 0 && (partial > 0 || s.shape === 'square'), `${JSON.stringify(s)}: ${partial} partial, ${full} full`);
      // Jitter stays within the spec: side +-2, centre +-3.
      assert.ok(Math.abs(s.side - (s.size === 'small' ? 16 : 28)) <= 2);
    }
  });

  describe('writePng', () => {
    let dir = '';
    before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-shapes-')); });
    after(() => rmSync(dir, { recursive: true, force: true }));
    test('writes a rendered image that reads back byte for byte', async () => {
      const img = renderShape(spec({ shape: 'circle', color: 'orange', side: 27.3, cx: 45.2, cy: 18.7 }));
      const file = path.join(dir, 'shape.png');
      await writePng(file, img);
      const back = await readImage(file);
      assert.equal(back.width, 64);
      assert.deepEqual(Buffer.from(back.data), Buffer.from(img.data));
    });
  });
});
