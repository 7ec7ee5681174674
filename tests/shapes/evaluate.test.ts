// The Shapes-64 evaluator: read-back of rendered specs (>= 99% over 2000), failures on images without
// an object or with an off-palette object, and checkEdit on hand-made edits (the 4 px position rule).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fullCaption } from '../../src/shapes/captions.js';
import { checkEdit, readAttributes } from '../../src/shapes/evaluate.js';
import { renderShape } from '../../src/shapes/render.js';
import { ATTRIBUTES, mulberry32, nominalSpec, randomSpec, type ShapeSpec } from '../../src/shapes/spec.js';

const base: ShapeSpec = nominalSpec({ shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' });
const read = (s: Partial<ShapeSpec>) => readAttributes(renderShape({ ...base, ...s }));

describe('readAttributes', () => {
  test('reads back >= 99% of 2000 random rendered specs', () => {
    const rng = mulberry32(2024);
    const n = 2000;
    const failures = new Map<string, number>();
    let ok = 0;
    const examples: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = randomSpec(rng);
      const r = readAttributes(renderShape(s));
      const wrong = ATTRIBUTES.filter((a) => r.attributes?.[a] !== s[a]);
      for (const a of wrong) failures.set(a, (failures.get(a) ?? 0) + 1);
      if (wrong.length === 0) ok++;
      else if (examples.length < 5) examples.push(`${JSON.stringify(s)} -> ${JSON.stringify(r.attributes)} (${r.reason ?? `fill ${r.measured.fillRatio.toFixed(3)}, side ${r.measured.side}`})`);
    }
    const rate = ok / n;
    console.log(`# Shapes-64 read-back: ${ok}/${n} = ${(100 * rate).toFixed(2)}%; failures by attribute: ${JSON.stringify(Object.fromEntries(failures))}`);
    for (const e of examples) console.log(`#   ${e}`);
    assert.ok(rate >= 0.99, `read-back rate ${rate}`);
  });

  test('measures the hand-made square exactly', () => {
    const r = read({ shape: 'square', side: 16, cx: 32, cy: 32, position: 'center', size: 'small' });
    assert.deepEqual(r.attributes, { shape: 'square', color: 'red', size: 'small', position: 'center', background: 'white' });
    assert.deepEqual(r.measured.bbox, { x0: 24, y0: 24, x1: 39, y1: 39 });
    assert.deepEqual(r.measured.centre, { x: 32, y: 32 });
    assert.equal(r.measured.side, 16);
    assert.equal(r.measured.fillRatio, 1);
    assert.equal(r.measured.objectPixels, 256);
    assert.deepEqual(r.measured.objectMedian, [220, 40, 40]);
    assert.equal(r.measured.colorDistance, 0);
  });

  test('an image with no object fails every attribute', () => {
    const blank = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(128) };
    const r = readAttributes(blank);
    assert.equal(r.attributes, null);
    assert.equal(r.reason, 'no object pixels');
    // A faint object (within 60 of the background) is no object either.
    const faint = renderShape({ ...base, background: 'white' });
    for (let i = 0; i < faint.data.length; i++) faint.data[i] = Math.max(faint.data[i], 230);
    assert.equal(readAttributes(faint).attributes, null);
  });

  test('an object far from every object color fails every attribute', () => {
    // Pure cyan (0, 255, 255) on black: nearest object color is green at ~218, over 80.
    const img = renderShape({ ...base, background: 'black' });
    for (let i = 0; i < img.data.length; i += 3) if (img.data[i + 2] > 0) img.data.set([0, 255, 255], i);
    const r = readAttributes(img);
    assert.equal(r.attributes, null);
    assert.match(r.reason!, /from the nearest object color/);
    assert.ok(r.measured.colorDistance > 80);
    // A slightly off red (20 away) still reads as red.
    const near = renderShape({ ...base, shape: 'square' });
    for (let i = 0; i < near.data.length; i += 3) if (near.data[i] === 220) near.data.set([232, 52, 48], i);
    assert.equal(readAttributes(near).attributes?.color, 'red');
  });
});

describe('checkEdit', () => {
  const input = read({});

  test('a color edit that holds and preserves the rest', () => {
    const c = checkEdit(input, read({ color: 'blue' }), 'a blue circle');
    assert.deepEqual(c, { success: true, preserved: true, failed: [], changed: [], centreShift: 0 });
  });

  test('a shape edit: success, preservation, and the failures named', () => {
    assert.equal(checkEdit(input, read({ shape: 'square' }), 'a square').success, true);
    assert.equal(checkEdit(input, read({ shape: 'square' }), 'a square').preserved, true);
    const wrong = checkEdit(input, read({ shape: 'triangle' }), 'a red square');
    assert.equal(wrong.success, false);
    assert.deepEqual(wrong.failed, ['shape']);
    assert.equal(wrong.preserved, true);
    const both = checkEdit(input, read({ shape: 'triangle', color: 'green' }), 'a red square');
    assert.deepEqual([both.failed, both.changed], [['color', 'shape'], []]); // named: a failure, not a change
    const changed = checkEdit(input, read({ shape: 'square', background: 'black', size: 'small', side: 16 }), 'a square');
    assert.equal(changed.success, true);
    assert.equal(changed.preserved, false);
    assert.deepEqual(changed.changed, ['size', 'background']);
  });

  test('position: a 3 px move is preserved, a 5 px move is not', () => {
    const moved3 = checkEdit(input, read({ cx: base.cx + 3 }), 'a blue circle');
    assert.equal(moved3.centreShift, 3);
    assert.equal(moved3.preserved, true);
    assert.equal(moved3.success, false);
    assert.deepEqual(moved3.failed, ['color']);
    const moved5 = checkEdit(input, read({ cy: base.cy - 5, color: 'blue' }), 'a blue circle');
    assert.equal(moved5.centreShift, 5);
    assert.equal(moved5.success, true);
    assert.equal(moved5.preserved, false);
    assert.deepEqual(moved5.changed, ['position']);
  });

  test('a named position must hold; other attributes preserved', () => {
    const c = checkEdit(input, read({ position: 'right', cx: 48 }), 'a circle on the right');
    assert.deepEqual([c.success, c.preserved, c.centreShift], [true, true, 32]);
    const miss = checkEdit(input, read({ cx: 24 }), 'a circle on the right');
    assert.deepEqual(miss.failed, ['position']);
  });

  test('the full caption of the output is a successful target; an unreadable output fails both', () => {
    const out = { ...base, color: 'purple' as const, background: 'gray' as const };
    const c = checkEdit(input, readAttributes(renderShape(out)), fullCaption(out));
    assert.deepEqual([c.success, c.preserved], [true, true]);
    const blank = readAttributes({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) });
    const f = checkEdit(input, blank, 'a blue circle');
    assert.deepEqual([f.success, f.preserved], [false, false]);
    assert.match(f.reason!, /output unreadable: no object pixels/);
    const g = checkEdit(blank, read({ color: 'blue' }), 'a blue circle');
    assert.deepEqual([g.success, g.preserved], [true, false]);
  });
});
