// Shapes-64 domain checks: model detection, caption warnings, and input images that are not of the domain.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { captionWarnings, imageDomainWarning, isShapesModel, offPaletteShare } from '../../src/shapes/domain.js';
import { renderShape } from '../../src/shapes/render.js';
import { mulberry32, nominalSpec, randomSpec } from '../../src/shapes/spec.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-domain-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A smooth color gradient with noise: nothing like the domain (a stand-in for a photo). */
function photoLike(): { width: number; height: number; data: Uint8Array } {
  const rng = mulberry32(5);
  const data = new Uint8Array(64 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) {
    const o = (y * 64 + x) * 3;
    data[o] = Math.min(255, 60 + 2 * x + 20 * rng());
    data[o + 1] = Math.min(255, 90 + y + 20 * rng());
    data[o + 2] = Math.min(255, 40 + x + y + 20 * rng());
  }
  return { width: 64, height: 64, data };
}

describe('Shapes-64 domain checks', () => {
  test('isShapesModel reads the domain key of model_index.json', () => {
    const a = path.join(tmp, 'a'), b = path.join(tmp, 'b');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(path.join(a, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline', _imagic_domain: 'shapes-64' }));
    writeFileSync(path.join(b, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline' }));
    assert.equal(isShapesModel(a), true);
    assert.equal(isShapesModel(b), false);
    assert.equal(isShapesModel(path.join(tmp, 'missing')), false);
  });

  test('captions of the domain pass; other words are named in the warning', () => {
    assert.deepEqual(captionWarnings('a large red circle on the left on a white background'), []);
    assert.deepEqual(captionWarnings('An orange shape'), []);
    const w = captionWarnings('a red dog wearing a hat');
    assert.equal(w.length, 1);
    assert.match(w[0]!, /outside the Shapes-64 domain \(dog, wearing, hat\)/);
  });

  test('rendered images are in the domain; a photo-like image and an empty one are not', () => {
    const rng = mulberry32(11);
    for (let i = 0; i < 200; i++) assert.equal(imageDomainWarning(renderShape(randomSpec(rng))), null);
    const photo = photoLike();
    assert.ok(offPaletteShare(photo) > 0.2, `off-palette share ${offPaletteShare(photo)}`);
    assert.match(imageDomainWarning(photo)!, /does not look like a Shapes-64 image/);
    const blank = renderShape({ ...nominalSpec({ shape: 'circle', color: 'red', size: 'small', position: 'center', background: 'white' }), side: 0 });
    assert.match(imageDomainWarning(blank)!, /does not look like a Shapes-64 image \(.*object/);
  });
});
