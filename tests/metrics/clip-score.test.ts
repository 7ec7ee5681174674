// CLIPScorer against transformers: the golden tiny CLIP (clip.*), and tests/fixtures/metrics-reference.safetensors
// (make_metrics_reference.py: CLIPImageProcessorPil on four non-square uint8 images, the tiny CLIP's embeddings,
// torchmetrics' per-pair score 100 * max(cos, 0), CLIP-I); loading from folders and a local fake Hub; errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { liveTensors, tensor, type Tensor } from '../../src/engine/index.js';
import { CheckpointError, loadSafetensors, saveSafetensors } from '../../src/io/index.js';
import { imageToTensor } from '../../src/io/image-tensor.js';
import { type RgbImage } from '../../src/io/image-types.js';
import { CLIPConfigError, loadCLIPModel } from '../../src/models/clip/index.js';
import { StateDictError } from '../../src/nn/index.js';
import { CLIPScorer, MetricInputError, MetricLoadError } from '../../src/metrics/index.js';
import { assertClose, settleHandles } from '../helpers.js';
import { fixturePath } from '../fixtures.js';
import { FakeHub } from '../io/hub-server.js';

const TINY = fixturePath('golden/tiny-clip');
const REF = loadSafetensors(fixturePath('metrics-reference.safetensors'));
const ref = (k: string): Tensor => REF.get(`clip.${k}`)!;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-clip-score-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The reference's uint8 images [H, W, 3] as RgbImages: 45x61, 50x24, 32x32 (no resize), 150x97 (H x W). */
const IMAGES: RgbImage[] = [0, 1, 2, 3].map((i) => {
  const t = ref(`image${i}`);
  return { height: t.shape[0]!, width: t.shape[1]!, data: new Uint8Array(t.toTypedArray() as Uint8Array) };
});
/** The reference's ids through a hand-made vocabulary: single letters, so no merges are needed. */
const LETTERS: Record<string, number> = { a: 19, b: 30, c: 9, d: 34, e: 45, f: 10, g: 11, h: 12 };
const TEXTS = ['a b', 'C', ' d  e ', 'f g h']; // -> [998 19 30 999], [998 9 999], [998 34 45 999], [998 10 11 12 999]

/** tiny-clip plus tokenizer files (at the root, as transformers saves a CLIPModel, or in tokenizer/). */
function clipFolder(name: string, opts: { tokenizer?: 'root' | 'sub' | 'none'; files?: Record<string, string> } = {}): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(path.join(TINY, f), path.join(dir, f));
  const where = opts.tokenizer ?? 'root';
  if (where !== 'none') {
    const tdir = where === 'sub' ? path.join(dir, 'tokenizer') : dir;
    mkdirSync(tdir, { recursive: true });
    const vocab: Record<string, number> = {};
    for (let i = 0; i < 998; i++) vocab[`<unused${i}>`] = i;
    for (const [ch, id] of Object.entries(LETTERS)) {
      delete vocab[`<unused${id}>`];
      vocab[`${ch}</w>`] = id;
    }
    vocab['<|startoftext|>'] = 998;
    vocab['<|endoftext|>'] = 999;
    writeFileSync(path.join(tdir, 'vocab.json'), JSON.stringify(vocab));
    writeFileSync(path.join(tdir, 'merges.txt'), '#version: 0.2\n');
    writeFileSync(path.join(tdir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 77, pad_token: '<|endoftext|>' }));
  }
  for (const [f, text] of Object.entries(opts.files ?? {})) writeFileSync(path.join(dir, f), text);
  return dir;
}

let shared: CLIPScorer | undefined;
const scorer = async () => (shared ??= await CLIPScorer.load(clipFolder('root')));
after(() => shared?.dispose());

const MEAN = [0.48145466, 0.4578275, 0.40821073], STD = [0.26862954, 0.26130258, 0.27577711]; // OpenAI CLIP's
const maxDiff = (a: Tensor, b: Tensor) => a.sub(b).abs().amax().item();
/** Rows scaled to unit length in plain numbers (independent of the code under test). */
const unitRows = (t: Tensor) => (t.toArray() as number[][]).map((r) => r.map((v) => v / Math.hypot(...r)));

test('golden tiny CLIP: unit embeddings, cosine and score from preprocessed pixel values and ids', async () => {
  // reference: make_golden.py, clipm.get_image_features(pixel_values=pv), get_text_features(input_ids=cids), cosine_similarity
  const g = loadSafetensors(fixturePath('golden/golden.safetensors'), { keys: ['clip.pixel_values', 'clip.input_ids', 'clip.image_embeds', 'clip.text_embeds', 'clip.cosine'] });
  const s = await scorer();
  const px = { pixelValues: g.get('clip.pixel_values')! };
  const ids = g.get('clip.input_ids')!.toArray() as number[][];
  assertClose(s.imageEmbeds(px), unitRows(g.get('clip.image_embeds')!).flat(), 1e-4, 0, 'image_embeds');
  assertClose(s.textEmbeds(ids), unitRows(g.get('clip.text_embeds')!).flat(), 1e-4, 0, 'text_embeds');
  const cos = g.get('clip.cosine')!.toFlatArray();
  assertClose(s.cosine(px, ids), cos, 1e-4, 0, 'cosine');
  assertClose(s.clipScore(px, ids), cos.map((c) => 100 * Math.max(c, 0)), 1e-2, 0, 'clip score'); // 100x the cosine's 1e-4
  const unit = (k: string) => tensor(unitRows(g.get(k)!));
  console.log(`clip golden max|diff|: image_embeds ${maxDiff(s.imageEmbeds(px), unit('clip.image_embeds')).toExponential(2)}, `
    + `text_embeds ${maxDiff(s.textEmbeds(ids), unit('clip.text_embeds')).toExponential(2)}, cosine ${maxDiff(tensor(s.cosine(px, ids)), g.get('clip.cosine')!).toExponential(2)}`);
});

test('preprocessing equals CLIPImageProcessor (PIL backend) bit for bit: downscale, upscale, exact fit, 3x downscale', async () => {
  // The resize is Pillow's own two-pass fixed-point algorithm (each pass rounds to uint8), so the pixels match
  // exactly; rescale and normalize repeat numpy's float64 multiply and float32 arithmetic.
  const s = await scorer();
  const px = s.pixelValues(IMAGES);
  assert.deepEqual(px.shape, [4, 3, 32, 32]);
  assert.equal(maxDiff(px, ref('pixel_values')), 0, 'pixel_values differ from transformers');
  // the 32x32 image is not resampled: its pixel values are (v / 255 - mean) / std, computed here by hand
  const im = IMAGES[2]!;
  const byHand = [0, 1, 2].flatMap((c) => Array.from({ length: 32 * 32 }, (_, i) => (im.data[3 * i + c]! / 255 - MEAN[c]!) / STD[c]!));
  assertClose(px.select(0, 2), byHand, 1e-6, 0, 'identity case');
  // a [-1, 1] tensor (the pipelines' output) is rounded to uint8 as when saved, so it gives the same pixels
  for (const i of [0, 2]) assert.equal(maxDiff(s.pixelValues(imageToTensor(IMAGES[i]!)), px.narrow(0, i, 1)), 0, `tensor input ${i}`);
});

test('embeddings, CLIP score and CLIP-I on the reference images match transformers within 1e-4', async () => {
  // reference: make_metrics_reference.py (get_image_features / get_text_features with padding 'longest' + mask)
  const s = await scorer();
  const ie = s.imageEmbeds(IMAGES), te = s.textEmbeds(TEXTS);
  assertClose(ie, ref('image_embeds'), 1e-4, 0, 'image_embeds');
  assertClose(te, ref('text_embeds'), 1e-4, 0, 'text_embeds');
  assertClose(s.cosine(IMAGES, TEXTS), ref('cosine'), 1e-4, 0, 'cosine');
  const score = s.clipScore(IMAGES, TEXTS);
  assertClose(score, ref('score'), 1e-2, 0, 'clip score');
  assert.ok(score[0]! > 10 && score[2]! > 4 && score[1] === 0 && score[3] === 0, `two positive pairs, two clamped: ${score}`);
  assertClose(s.clipI(IMAGES.slice(0, 2), IMAGES.slice(2)), ref('clip_i'), 1e-4, 0, 'clip_i');
  assertClose(s.clipI(IMAGES[1]!, IMAGES[1]!), [1], 1e-5, 0, 'an image against itself');
  console.log(`clip reference max|diff|: image_embeds ${maxDiff(ie, ref('image_embeds')).toExponential(2)}, text_embeds ${maxDiff(te, ref('text_embeds')).toExponential(2)}`);
});

test('torchvision backend: antialiased interpolate rounded to uint8, as transformers\' default CLIPImageProcessor', async () => {
  const tv = await CLIPScorer.load(clipFolder('root'), { resizeBackend: 'torchvision' });
  try {
    const px = tv.pixelValues(IMAGES);
    // same algorithm as the reference's torch emulation; the fused (x - 255 m) / (255 s) normalisation differs in the last bit
    assert.ok(maxDiff(px, ref('pixel_values_torch_aa')) <= 1e-6, 'torchvision pixel values');
    assertClose(tv.imageEmbeds(IMAGES), ref('image_embeds_torch_aa'), 1e-4, 0, 'torchvision embeds');
    // The residual against PIL (measured: up to 11 uint8 levels on the upscaled 50x24 image, 15% of pixels
    // differ by >= 1 level; PIL rounds to uint8 between its horizontal and vertical passes), and on the tiny
    // random CLIP up to 1e-3 on the unit embeddings: why 'pil' is the default.
    const u8 = (p: Tensor) => p.mul(tensor(STD).view(1, 3, 1, 1)).add(tensor(MEAN).view(1, 3, 1, 1)).mul(255).round(); // back to 0..255
    const levels = maxDiff(u8(px), u8(ref('pixel_values')));
    assert.ok(levels >= 1 && levels <= 11, `torchvision vs PIL: ${levels} levels`);
    assert.ok(maxDiff(tv.imageEmbeds(IMAGES), ref('image_embeds')) < 2e-3, 'torchvision embeds near PIL ones');
    for (const i of [0, 2]) assert.equal(maxDiff(tv.pixelValues(imageToTensor(IMAGES[i]!)), px.narrow(0, i, 1)), 0, `tensor input ${i}`);
  } finally {
    tv.dispose();
  }
});

test('batches of one give the same embeddings; nothing leaks', async () => {
  const s = await scorer();
  const one = CLIPScorer.fromModel(loadCLIPModel(TINY), s.tokenizer, { batchSize: 1 });
  try {
    // (equal up to float32 rounding: a batch of 4 takes other matmul kernels than a batch of 1)
    assert.ok(maxDiff(one.imageEmbeds(IMAGES), s.imageEmbeds(IMAGES)) <= 1e-6);
    assert.ok(maxDiff(one.textEmbeds(TEXTS), s.textEmbeds(TEXTS)) <= 1e-6);
    await settleHandles();
    const before = liveTensors();
    one.clipScore(IMAGES, TEXTS);
    one.clipI(imageToTensor(IMAGES[0]!), IMAGES[1]!);
    s.cosine({ pixelValues: s.pixelValues(IMAGES) }, TEXTS);
    s.imageEmbeds(IMAGES).dispose();
    s.textEmbeds(TEXTS).dispose();
    await settleHandles();
    assert.equal(liveTensors(), before, 'every intermediate tensor is disposed');
  } finally {
    one.dispose();
  }
});

test('loads tokenizer files from tokenizer/ and reads preprocessor_config.json', async () => {
  const s = await scorer();
  const processor = JSON.stringify({ image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 3, crop_size: 32, size: { shortest_edge: 32 } });
  const sub = await CLIPScorer.load(clipFolder('sub', { tokenizer: 'sub', files: { 'preprocessor_config.json': processor } }));
  try {
    assert.equal(maxDiff(sub.textEmbeds(TEXTS), s.textEmbeds(TEXTS)), 0);
    const px = sub.pixelValues([IMAGES[2]!]); // no resize: (v / 255 - 0.5) / 0.5
    assertClose([px.toFlatArray()[0]!], [IMAGES[2]!.data[0]! / 127.5 - 1], 1e-6, 0, 'custom mean/std');
  } finally {
    sub.dispose();
  }
});

test('load errors name the folder or file and say what is wrong', async () => {
  const missing = path.join(tmp, 'nope');
  await assert.rejects(CLIPScorer.load(missing), (e: Error) => e instanceof MetricLoadError && e.message.includes(missing) && /no such folder/.test(e.message));
  await assert.rejects(CLIPScorer.load(path.join(TINY, 'config.json')), (e: Error) => e instanceof MetricLoadError && /is a file/.test(e.message));
  const corrupt = clipFolder('corrupt', { files: { 'config.json': '{"model_type": "clip",' } });
  await assert.rejects(CLIPScorer.load(corrupt), (e: Error) => e instanceof CLIPConfigError && e.message.includes(path.join(corrupt, 'config.json')) && /not valid JSON/.test(e.message));
  const noWeights = clipFolder('no-weights');
  rmSync(path.join(noWeights, 'model.safetensors'));
  await assert.rejects(CLIPScorer.load(noWeights), (e: Error) => e instanceof CheckpointError && e.message.includes(noWeights) && /model\.safetensors/.test(e.message));
  const noTok = clipFolder('no-tokenizer', { tokenizer: 'none' });
  await assert.rejects(CLIPScorer.load(noTok), (e: Error) => e instanceof MetricLoadError && e.message.includes(noTok) && /vocab\.json and merges\.txt/.test(e.message));
  const badProc = clipFolder('bad-proc', { files: { 'preprocessor_config.json': JSON.stringify({ crop_size: { height: 224, width: 224 } }) } });
  await assert.rejects(CLIPScorer.load(badProc), (e: Error) => e instanceof MetricLoadError && e.message.includes('preprocessor_config.json') && /not be 32x32/.test(e.message));
  // weights with a key missing and one mis-shaped: strict loading lists both
  const bad = clipFolder('bad-weights');
  const sd = loadSafetensors(path.join(TINY, 'model.safetensors'));
  sd.delete('visual_projection.weight');
  sd.set('text_projection.weight', sd.get('text_projection.weight')!.narrow(0, 0, 8));
  saveSafetensors(path.join(bad, 'model.safetensors'), sd);
  await assert.rejects(CLIPScorer.load(bad), (e: Error) => e instanceof StateDictError && e.message.includes(path.join(bad, 'model.safetensors'))
    && /missing keys \(1\):\n {2}visual_projection\.weight/.test(e.message) && /text_projection\.weight: model \[16, 32\], checkpoint \[8, 32\]/.test(e.message));
});

test('input errors: unpaired counts, bad tensors, texts without a tokenizer', async () => {
  const s = await scorer();
  const err = (re: RegExp) => (e: Error) => e instanceof MetricInputError && re.test(e.message);
  assert.throws(() => s.clipScore(IMAGES, TEXTS.slice(1)), err(/4 images but 3 texts/));
  assert.throws(() => s.clipI(IMAGES, IMAGES.slice(1)), err(/got 4 and 3/));
  assert.throws(() => s.imageEmbeds(imageToTensor(IMAGES[0]!).select(0, 0)), err(/\[B, 3, H, W\] tensor in \[-1, 1\], got float32 \[3, 45, 61\]/));
  assert.throws(() => s.textEmbeds([[998, 5, 999], [998, 999]]), err(/token id rows of one length/));
  assert.throws(() => s.imageEmbeds([]), err(/no images/));
  const noTok = CLIPScorer.fromModel(loadCLIPModel(TINY), null);
  try {
    assert.throws(() => noTok.textEmbeds(['a']), err(/no tokenizer: give token ids/));
  } finally {
    noTok.dispose();
  }
});

test('a Hub repo id downloads only config, safetensors weights, tokenizer and preprocessor files', async () => {
  const repoDir = clipFolder('hub-repo', { files: { 'pytorch_model.bin': 'pickle', 'flax_model.msgpack': 'x', 'model.fp16.safetensors': 'x', 'README.md': '# tiny' } });
  const hub = await FakeHub.start({ 'test/tiny-clip': { dir: repoDir } });
  const cacheDir = path.join(tmp, 'hub-cache');
  try {
    const s = await CLIPScorer.load('test/tiny-clip', { endpoint: hub.url, cacheDir, offline: false });
    try {
      assert.equal(maxDiff(s.imageEmbeds(IMAGES), ref('image_embeds')) < 1e-4, true);
    } finally {
      s.dispose();
    }
    const snap = path.join(cacheDir, 'models--test--tiny-clip', 'snapshots', hub.commitOf('test/tiny-clip'));
    assert.deepEqual(readdirSync(snap).sort(), ['config.json', 'merges.txt', 'model.safetensors', 'tokenizer_config.json', 'vocab.json']);
    const offline = await CLIPScorer.load('test/tiny-clip', { cacheDir, offline: true }); // from the cache alone
    offline.dispose();
  } finally {
    await hub.close();
  }
});

test('featureDistance: the LPIPS-style distance on the image tower, recomputed by hand from the hidden states', async () => {
  const scorer = await CLIPScorer.load(clipFolder('feature-distance'));
  const a = IMAGES[2]!, b = { ...a, data: a.data.map((v, i) => (i % 7 === 0 ? 255 - v : v)) };
  const d = scorer.featureDistance([a, b, a], [a, a, b]);
  assert.equal(d[0], 0, 'an image is at distance 0 from itself');
  assert.ok(d[1]! > 0);
  assert.ok(Math.abs(d[1]! - d[2]!) < 1e-6, 'symmetric');
  // by hand: per layer, unit-normalise every patch token (CLS left out), squared differences summed over
  // channels, mean over tokens; mean over layers
  const hs = (img: RgbImage) => scorer.model.vision_model.forward(scorer.pixelValues([img]), { outputHiddenStates: true }).hiddenStates!.slice(1).map((h) => h.toArray() as number[][][]);
  const ha = hs(a), hb = hs(b);
  let total = 0;
  for (let l = 0; l < ha.length; l++) {
    const ta = ha[l]![0]!, tb = hb[l]![0]!;
    let layer = 0;
    for (let n = 1; n < ta.length; n++) {
      const na = Math.sqrt(ta[n]!.reduce((s, v) => s + v * v, 0)) + 1e-10, nb = Math.sqrt(tb[n]!.reduce((s, v) => s + v * v, 0)) + 1e-10;
      layer += ta[n]!.reduce((s, v, c) => s + (v / na - tb[n]![c]! / nb) ** 2, 0);
    }
    total += layer / (ta.length - 1);
  }
  assertClose([d[1]!], [total / ha.length], 1e-5, 1e-4, 'feature distance');
  assert.throws(() => scorer.featureDistance([a], [a, b]), MetricInputError);
  scorer.dispose();
});
