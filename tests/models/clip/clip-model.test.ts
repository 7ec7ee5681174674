// CLIPModel and CLIPVisionModel against transformers: the golden tiny CLIP (clip.*: projected image and
// text features and their cosine, as make_golden.py's get_image_features / get_text_features), keys, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cosineSimilarity, tensor, zeros, type Tensor } from '../../../src/engine/index.js';
import { loadSafetensors, readSafetensorsHeader } from '../../../src/io/safetensors.js';
import {
  CLIPConfigError, CLIPInputError, CLIPModel, CLIPVisionModel, loadCLIPModel, parseCLIPConfig, parseCLIPVisionConfig,
} from '../../../src/models/clip/index.js';
import { assertClose } from '../../helpers.js';
import { fixturePath } from '../../fixtures.js';

const CLIP_DIR = fixturePath('golden/tiny-clip');
const golden = () => loadSafetensors(fixturePath('golden/golden.safetensors'),
  { keys: ['clip.pixel_values', 'clip.input_ids', 'clip.image_embeds', 'clip.text_embeds', 'clip.cosine'] });

let tiny: CLIPModel | undefined;
const tinyModel = () => (tiny ??= loadCLIPModel(CLIP_DIR));

/** Rows scaled to unit length, in plain numbers (independent of the code under test). */
function unitRows(t: Tensor): number[][] {
  return (t.toArray() as number[][]).map((r) => {
    const n = Math.hypot(...r);
    return r.map((v) => v / n);
  });
}

test('clip golden: projected image and text features and their cosine match transformers', () => {
  // reference: make_golden.py, clipm.get_image_features(pixel_values=pv), clipm.get_text_features(input_ids=cids)
  // (projected, not normalised: the golden rows have norms far from 1)
  const g = golden();
  const m = tinyModel();
  const ie = m.getImageFeatures(g.get('clip.pixel_values')!);
  const te = m.getTextFeatures(g.get('clip.input_ids')!);
  assert.deepEqual(ie.shape, [2, 16]);
  assert.deepEqual(te.shape, [2, 16]);
  assertClose(ie, g.get('clip.image_embeds')!, 1e-4, 1e-4, 'clip.image_embeds');
  assertClose(te, g.get('clip.text_embeds')!, 1e-4, 1e-4, 'clip.text_embeds');
  assertClose(cosineSimilarity(ie, te, 1), g.get('clip.cosine')!, 1e-5, 1e-4, 'clip.cosine');
  const md = (a: Tensor, b: Tensor) => a.sub(b).abs().amax().item().toExponential(2);
  console.log(`clip max|diff|: image_embeds ${md(ie, g.get('clip.image_embeds')!)}, text_embeds ${md(te, g.get('clip.text_embeds')!)}, `
    + `cosine ${md(cosineSimilarity(ie, te, 1), g.get('clip.cosine')!)}`);
});

test('CLIPModel.forward: unit embeddings and exp(logit_scale) * cosine logits, as transformers', () => {
  const g = golden();
  const m = tinyModel();
  const out = m.forward(g.get('clip.input_ids')!, g.get('clip.pixel_values')!);
  const img = unitRows(g.get('clip.image_embeds')!), txt = unitRows(g.get('clip.text_embeds')!);
  assertClose(out.imageEmbeds, img.flat(), 1e-5, 1e-4, 'image_embeds (normalised)');
  assertClose(out.textEmbeds, txt.flat(), 1e-5, 1e-4, 'text_embeds (normalised)');
  const scale = Math.exp(loadSafetensors(path.join(CLIP_DIR, 'model.safetensors'), { keys: ['logit_scale'] }).get('logit_scale')!.item());
  assert.ok(Math.abs(scale - Math.exp(2.6592)) < 1e-3, 'logit_scale as initialised (2.6592)');
  const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
  const perText = txt.map((t) => img.map((i) => scale * dot(t, i)));
  assertClose(out.logitsPerText, perText.flat(), 1e-4, 1e-4, 'logits_per_text');
  assertClose(out.logitsPerImage, perText[0]!.map((_, j) => perText.map((r) => r[j]!)).flat(), 1e-4, 1e-4, 'logits_per_image');
  // the diagonal is the golden cosine, scaled
  const logits = out.logitsPerText.toArray() as number[][];
  assertClose([logits[0]![0]!, logits[1]![1]!], g.get('clip.cosine')!.toFlatArray().map((c) => c * scale), 1e-4, 1e-4, 'diagonal');
});

test('CLIPModel keys equal the checkpoint\'s (transformers CLIPModel names, pre_layrnorm included)', () => {
  const config = parseCLIPConfig(JSON.parse(readFileSync(path.join(CLIP_DIR, 'config.json'), 'utf8')));
  assert.equal(config.projectionDim, 16);
  assert.equal(config.visionConfig.patchSize, 8);
  const m = new CLIPModel(config, { device: 'meta' });
  const header = readSafetensorsHeader(path.join(CLIP_DIR, 'model.safetensors'));
  const own = new Map(m.namedParameters().map(([k, t]) => [k, t.shape]));
  assert.deepEqual([...own.keys()].sort(), [...header.tensors.keys()].sort());
  for (const [k, info] of header.tensors) assert.deepEqual(own.get(k), info.shape, k);
  for (const k of ['vision_model.pre_layrnorm.weight', 'vision_model.embeddings.class_embedding', 'logit_scale', 'text_projection.weight']) {
    assert.ok(own.has(k), k);
  }
  assert.equal(own.get('vision_model.embeddings.patch_embedding.bias'), undefined, 'patch embedding has no bias');
  assert.deepEqual(own.get('vision_model.embeddings.position_embedding.weight'), [17, 32], '(32/8)^2 patches + CLS');
});

test('CLIPVisionModel alone: pooled output is post_layernorm of the CLS row', () => {
  const m = tinyModel();
  const px = golden().get('clip.pixel_values')!;
  const v = m.vision_model.forward(px);
  assert.deepEqual(v.lastHiddenState.shape, [2, 17, 32]);
  assertClose(v.poolerOutput, m.vision_model.post_layernorm.forward(v.lastHiddenState.select(1, 0)), 0, 0, 'pooled CLS');
  // a standalone vision tower takes the same weights without the vision_model. prefix
  const sd = loadSafetensors(path.join(CLIP_DIR, 'model.safetensors'));
  const own = new Map([...sd].filter(([k]) => k.startsWith('vision_model.')).map(([k, t]) => [k.slice('vision_model.'.length), t]));
  own.set('embeddings.position_ids', tensor([Array.from({ length: 17 }, (_, i) => i)], { dtype: 'int64' }));
  const alone = new CLIPVisionModel(m.config.visionConfig, { device: 'meta' });
  alone.loadStateDict(own);
  assertClose(alone.forward(px).poolerOutput, v.poolerOutput, 0, 0, 'standalone vision tower');
});

test('bad pixel values and vision configs give clear errors', () => {
  const m = tinyModel();
  const err = (re: RegExp) => (e: Error) => e instanceof CLIPInputError && re.test(e.message);
  assert.throws(() => m.getImageFeatures(zeros([1, 3, 16, 16])), err(/pixel values must be \[B, 3, 32, 32\] \(resize and center-crop first\), got \[1, 3, 16, 16\]/));
  assert.throws(() => m.getImageFeatures(zeros([3, 32, 32])), err(/got \[3, 32, 32\]/));
  assert.throws(() => m.getImageFeatures(zeros([1, 3, 32, 32], { dtype: 'uint8' })), err(/must be floating point, got uint8/));
  assert.throws(() => m.getTextFeatures([[998, 4000, 999]]), err(/token id 4000 is outside the vocabulary/));
  assert.throws(() => parseCLIPVisionConfig({ image_size: 30, patch_size: 8 }), (e: Error) => e instanceof CLIPConfigError && /image_size 30 is not a multiple of patch_size 8/.test(e.message));
  assert.throws(() => parseCLIPConfig({ model_type: 'clip', text_config: 3 }), /'text_config' must be an object/);
  assert.throws(() => parseCLIPConfig({ model_type: 'clip', vision_config: { hidden_act: 'tanh' } }), /\(vision_config\): 'hidden_act' must be one of/);
});
