// Shapes-64 captions: the full form, "a"/"an", partial forms in the domain's word order, and
// parseCaption's round trip and unknown-word reports.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { captionOf, fullCaption, parseCaption, partialCaption } from '../../src/shapes/captions.js';
import { ATTRIBUTES, mulberry32, randomSpec, type ShapeAttributes } from '../../src/shapes/spec.js';

const spec: ShapeAttributes = { size: 'large', color: 'red', shape: 'circle', position: 'left', background: 'white' };

describe('captions', () => {
  test('full caption of a known spec', () => {
    assert.equal(fullCaption(spec), 'a large red circle on the left on a white background');
    assert.equal(fullCaption({ ...spec, size: 'small', color: 'blue', shape: 'triangle', position: 'bottom-right', background: 'gray' }),
      'a small blue triangle in the bottom right on a gray background');
  });

  test('"an" before orange', () => {
    assert.equal(captionOf({ color: 'orange', shape: 'square' }), 'an orange square');
    assert.equal(partialCaption({ ...spec, color: 'orange' }, mulberry32(0), ['color']), 'an orange shape');
    assert.equal(captionOf({ size: 'large', color: 'orange' }), 'a large orange shape');
  });

  test('partial captions keep the order; an unnamed shape is "shape"', () => {
    const rng = mulberry32(0);
    assert.equal(partialCaption(spec, rng, ['color', 'shape']), 'a red circle');
    assert.equal(partialCaption(spec, rng, ['position', 'shape']), 'a circle on the left');
    assert.equal(partialCaption(spec, rng, ['background', 'shape']), 'a circle on a white background');
    assert.equal(partialCaption(spec, rng, ['color']), 'a red shape');
    assert.equal(partialCaption(spec, rng, ['background', 'size', 'position']), 'a large shape on the left on a white background');
    assert.equal(captionOf({ position: 'center' }), 'a shape in the center');
  });

  test('random partial captions name a non-empty proper subset, in order', () => {
    const rng = mulberry32(5);
    const counts = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const s = randomSpec(rng);
      const text = partialCaption(s, rng);
      const full = fullCaption(s).split(' ');
      const parsed = parseCaption(text);
      const n = Object.keys(parsed.attributes).length;
      counts.set(n, (counts.get(n) ?? 0) + 1);
      assert.ok(n >= 1 && n <= 4, text);
      // Order: the caption's words, minus "shape" and the article, form a subsequence of the full caption.
      let j = 0;
      for (const w of text.split(' ').slice(1).filter((w) => w !== 'shape')) {
        while (j < full.length && full[j] !== w) j++;
        assert.ok(j < full.length, `'${text}' out of order against '${full.join(' ')}'`);
        j++;
      }
    }
    assert.deepEqual([...counts.keys()].sort(), [1, 2, 3, 4]);
  });

  test('parseCaption round trip over random specs, full and every partial form', () => {
    const rng = mulberry32(11);
    for (let i = 0; i < 300; i++) {
      const s = randomSpec(rng);
      const full = parseCaption(fullCaption(s));
      assert.deepEqual(full, { attributes: { size: s.size, color: s.color, shape: s.shape, position: s.position, background: s.background }, unknownWords: [], warnings: [] });
      const mask = 1 + (i % 31);
      const which = ATTRIBUTES.filter((_, k) => (mask >> k) & 1);
      const text = partialCaption(s, rng, which);
      const parsed = parseCaption(text);
      const expected: Record<string, string> = {};
      for (const a of which) expected[a] = s[a];
      assert.deepEqual(parsed.attributes, expected, text);
      assert.deepEqual(parsed.unknownWords, [], text);
      assert.deepEqual(parsed.warnings, [], text);
    }
  });

  test('accepts "a" and "an" either way, case and punctuation', () => {
    assert.deepEqual(parseCaption('a orange square').attributes, { color: 'orange', shape: 'square' });
    assert.deepEqual(parseCaption('An orange square.').attributes, { color: 'orange', shape: 'square' });
    assert.deepEqual(parseCaption('an red circle').unknownWords, []);
    assert.deepEqual(parseCaption('A Green Shape!').attributes, { color: 'green' });
    assert.deepEqual(parseCaption('a square on the right').attributes, { shape: 'square', position: 'right' });
    assert.deepEqual(parseCaption('a circle on a black background').attributes, { shape: 'circle', background: 'black' });
    assert.deepEqual(parseCaption('a circle in the top left').attributes, { shape: 'circle', position: 'top-left' });
  });

  test('reports words outside the domain', () => {
    const p = parseCaption('a fluffy red dog on the left');
    assert.deepEqual(p.attributes, { color: 'red', position: 'left' });
    assert.deepEqual(p.unknownWords, ['fluffy', 'dog']);
    assert.deepEqual(parseCaption('a white circle').unknownWords, ['white']); // white is a background only
    assert.deepEqual(parseCaption('a photo of a cat').unknownWords, ['photo', 'of', 'cat']);
    assert.deepEqual(parseCaption('a large red circle').unknownWords, []);
  });

  test('warns on repeated attributes and words out of order', () => {
    const twice = parseCaption('a red blue circle');
    assert.deepEqual(twice.attributes, { color: 'red', shape: 'circle' });
    assert.equal(twice.warnings.length, 1);
    assert.match(twice.warnings[0], /color named twice/);
    const order = parseCaption('a circle large');
    assert.deepEqual(order.attributes, { shape: 'circle', size: 'large' });
    assert.match(order.warnings[0], /out of the domain's word order/);
  });
});
