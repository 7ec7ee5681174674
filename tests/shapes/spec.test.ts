// The Shapes-64 domain constants and the seeded sampler: the palette and grid of docs/shapes-64.md,
// reproducible draws, jitter ranges, and every attribute value drawn.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BACKGROUND_RGB, mulberry32, OBJECT_RGB, POSITION_INFO, POSITIONS, randomSpec, SIZE_SIDE, type ShapeSpec,
} from '../../src/shapes/spec.js';

describe('Shapes-64 spec', () => {
  test('palette and grid as the doc defines them', () => {
    assert.deepEqual(BACKGROUND_RGB.gray, [128, 128, 128]);
    assert.deepEqual(OBJECT_RGB.orange, [245, 130, 30]);
    assert.deepEqual(OBJECT_RGB.purple, [150, 60, 200]);
    assert.deepEqual(SIZE_SIDE, { small: 16, large: 28 });
    assert.deepEqual(POSITIONS.map((p) => [POSITION_INFO[p].x, POSITION_INFO[p].y]),
      [[16, 16], [32, 16], [48, 16], [16, 32], [32, 32], [48, 32], [16, 48], [32, 48], [48, 48]]);
    assert.equal(POSITION_INFO['bottom-right'].phrase, 'in the bottom right');
    assert.equal(POSITION_INFO.top.phrase, 'at the top');
  });

  test('mulberry32 is reproducible and in [0, 1)', () => {
    const a = mulberry32(42), b = mulberry32(42), c = mulberry32(43);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
    assert.notEqual(xs[0], c());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  });

  test('randomSpec draws every value, with jitter in range', () => {
    const rng = mulberry32(3);
    const seen = new Map<string, Set<string>>();
    for (let i = 0; i < 2000; i++) {
      const s: ShapeSpec = randomSpec(rng);
      for (const k of ['shape', 'color', 'size', 'position', 'background'] as const) {
        if (!seen.has(k)) seen.set(k, new Set());
        seen.get(k)!.add(s[k]);
      }
      assert.ok(Math.abs(s.side - SIZE_SIDE[s.size]) <= 2);
      assert.ok(Math.abs(s.cx - POSITION_INFO[s.position].x) <= 3);
      assert.ok(Math.abs(s.cy - POSITION_INFO[s.position].y) <= 3);
    }
    assert.deepEqual([...seen.entries()].map(([k, v]) => [k, v.size]),
      [['shape', 3], ['color', 6], ['size', 2], ['position', 9], ['background', 3]]);
    assert.deepEqual(randomSpec(mulberry32(9)), randomSpec(mulberry32(9)));
  });
});
