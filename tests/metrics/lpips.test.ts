// LPIPS v0.1 against PyTorch: the golden AlexNet one (lpips.*, make_golden.py: torchvision alexnet().features with
// random weights, golden/tiny-lpips-alex.safetensors) and a narrow VGG16 one (lpips_vgg.*, make_metrics_reference.py,
// tiny-lpips-vgg.safetensors); key layouts, split files, the Hub, and errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { enableGrad, liveTensors, type Tensor } from '../../src/engine/index.js';
import { SafetensorsError, loadSafetensors, saveSafetensors } from '../../src/io/index.js';
import { imageToTensor, tensorToImages } from '../../src/io/image-tensor.js';
import { StateDictError } from '../../src/nn/index.js';
import { LPIPS, MetricInputError, MetricLoadError } from '../../src/metrics/index.js';
import { assertClose, settleHandles } from '../helpers.js';
import { fixturePath } from '../fixtures.js';
import { FakeHub } from '../io/hub-server.js';

const ALEX = fixturePath('golden/tiny-lpips-alex.safetensors');
const VGG = fixturePath('tiny-lpips-vgg.safetensors');
const G = loadSafetensors(fixturePath('golden/golden.safetensors'), { keys: ['lpips.img0', 'lpips.img1', 'lpips.value', 'lpips.self'] });
const R = loadSafetensors(fixturePath('metrics-reference.safetensors'), { keys: ['lpips_vgg.img0', 'lpips_vgg.img1', 'lpips_vgg.value', 'lpips_vgg.self'] });
const g = (k: string): Tensor => G.get(`lpips.${k}`)!;
const r = (k: string): Tensor => R.get(`lpips_vgg.${k}`)!;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-lpips-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let alexModel: LPIPS | undefined;
const alex = async () => (alexModel ??= await LPIPS.load({ net: 'alex', weights: ALEX }));
after(() => alexModel?.dispose());

/** A weight file made from `src` with its keys mapped (null drops one) and tensors replaced. */
function rewrite(name: string, src: string, key: (k: string) => string | null, replace: Record<string, Tensor> = {}): string {
  const out = new Map<string, Tensor>();
  for (const [k, t] of loadSafetensors(src)) {
    const nk = key(k);
    if (nk !== null) out.set(nk, replace[nk] ?? t);
  }
  const file = path.join(tmp, name);
  saveSafetensors(file, out);
  return file;
}

test('golden AlexNet LPIPS: value and self-distance match the reference within 1e-4', async () => {
  // reference: make_golden.py lpips(i0, i1) (taps after features[0:2],[2:5],[5:8],[8:10],[10:12]; weights alexnet.N.*)
  const m = await alex();
  const d = m.distance(g('img0'), g('img1'));
  assertClose(d, g('value'), 1e-4, 1e-4, 'lpips.value');
  assertClose(m.distance(g('img0'), g('img0')), g('self'), 1e-6, 0, 'lpips.self');
  assert.ok(d.every((v) => v > 0.01), `distinct images are apart: ${d}`);
  console.log(`lpips alex max|diff|: ${Math.max(...d.map((v, i) => Math.abs(v - g('value').toFlatArray()[i]!))).toExponential(2)}`);
});

test('VGG16 LPIPS (narrow trunk, widths read from the file) matches the reference within 1e-4', async () => {
  // reference: make_metrics_reference.py: vgg16 features built by hand (taps relu1_2 .. relu5_3), widths 8,8,16,16,16
  assert.deepEqual(LPIPS.widthsOf('vgg', [VGG]), [8, 8, 16, 16, 16]);
  const m = await LPIPS.load({ net: 'vgg', weights: VGG });
  try {
    const convs = m.namedParameters().filter(([k]) => k.startsWith('features.') && k.endsWith('.weight')).map(([k]) => Number(k.split('.')[1]));
    assert.deepEqual(convs, [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], 'torchvision vgg16.features conv indices');
    const d = m.distance(r('img0'), r('img1')); // [2, 3, 40, 56]: non-square
    assertClose(d, r('value'), 1e-4, 1e-4, 'lpips_vgg.value');
    assertClose(m.distance(r('img0'), r('img0')), r('self'), 1e-6, 0, 'lpips_vgg.self');
    console.log(`lpips vgg max|diff|: ${Math.max(...d.map((v, i) => Math.abs(v - r('value').toFlatArray()[i]!))).toExponential(2)}`);
  } finally {
    m.dispose();
  }
});

test('trunk and heads in separate files, torchvision and lpips key names, batching, RgbImages, gradients', async () => {
  const m = await alex();
  const trunk = rewrite('trunk.safetensors', ALEX, (k) => (k.startsWith('alexnet.') ? `features.${k.slice(8)}` : null));
  const heads = rewrite('heads.safetensors', ALEX, (k) => (k.startsWith('lin') ? k : null));
  // an lpips.LPIPS state dict: net.sliceK.N.*, plus the scaling layer's constant buffers
  const slices = [[0, 2], [2, 5], [5, 8], [8, 10], [10, 12]];
  const lp = rewrite('lpips-layout.safetensors', ALEX, (k) => {
    const n = /^alexnet\.(\d+)\./.exec(k);
    return n ? `net.slice${slices.findIndex(([a, b]) => Number(n[1]) >= a! && Number(n[1]) < b!) + 1}.${k.slice(8)}` : k;
  });
  const withBuffers = loadSafetensors(lp);
  withBuffers.set('scaling_layer.shift', g('img0').narrow(1, 0, 1).flatten().narrow(0, 0, 3).reshape(1, 3, 1, 1));
  saveSafetensors(lp, withBuffers);
  const want = m.distance(g('img0'), g('img1'));
  for (const weights of [[trunk, heads], [lp]]) {
    const other = await LPIPS.load({ net: 'alex', weights, batchSize: 1 }); // one pair per pass
    try {
      assertClose(other.distance(g('img0'), g('img1')), want, 1e-6, 0, `from ${weights.map((f) => path.basename(f))}`);
    } finally {
      other.dispose();
    }
  }
  // uint8 images go through x / 127.5 - 1 (lpips.im2tensor)
  const [a, b] = [tensorToImages(g('img0')), tensorToImages(g('img1'))];
  const asTensors = m.distance(imageToTensor(a[1]!), imageToTensor(b[1]!));
  assertClose(m.distance(a, b).slice(1), asTensors, 1e-6, 0, 'RgbImage pairs');
  assertClose(asTensors, [want[1]!], 2e-3, 0, 'quantized to uint8, near the float value');
  // forward is differentiable (LPIPS as a loss)
  enableGrad(() => {
    const x = g('img1').clone().requiresGrad_(true);
    m.forward(g('img0'), x).sum().backward();
    assert.ok(x.grad !== null && x.grad.abs().sum().item() > 0, 'gradient reaches the image');
  });
});

test('no tensors leak from distance()', async () => {
  const m = await alex();
  m.distance(g('img0'), g('img1'));
  await settleHandles();
  const before = liveTensors();
  m.distance(g('img0'), g('img1'));
  m.distance(tensorToImages(g('img0')), tensorToImages(g('img1')));
  await settleHandles();
  assert.equal(liveTensors(), before);
});

test('weight files with missing, unexpected or mis-shaped keys are refused, every bad key listed', async () => {
  const bad = rewrite('bad.safetensors', ALEX, (k) => (k === 'lin4.model.1.weight' ? null : k === 'lin3.model.1.weight' ? 'lin9.model.1.weight' : k),
    { 'lin2.model.1.weight': g('img0').narrow(1, 0, 1).narrow(2, 0, 1).narrow(3, 0, 1).reshape(1, 2, 1, 1) });
  await assert.rejects(LPIPS.load({ net: 'alex', weights: bad }), (e: Error) => e instanceof StateDictError && e.message.includes(bad)
    && /missing keys \(2\):\n {2}lin3\.model\.1\.weight\n {2}lin4\.model\.1\.weight/.test(e.message)
    && /unexpected keys \(1\):\n {2}lin9\.model\.1\.weight/.test(e.message)
    && /lin2\.model\.1\.weight: model \[1, 384, 1, 1\], checkpoint \[1, 2, 1, 1\]/.test(e.message));
  // the trunk alone (no heads) and a trunk for the other net
  await assert.rejects(LPIPS.load({ net: 'alex', weights: rewrite('trunk-only.safetensors', ALEX, (k) => (k.startsWith('alexnet.') ? k : null)) }),
    (e: Error) => e instanceof StateDictError && /missing keys \(5\)/.test(e.message));
  await assert.rejects(LPIPS.load({ net: 'vgg', weights: ALEX }), (e: Error) => e instanceof StateDictError && /features\.2\.weight/.test(e.message));
});

test('load and input errors', async () => {
  const missing = path.join(tmp, 'nope.safetensors');
  await assert.rejects(LPIPS.load({ net: 'alex', weights: missing }), (e: Error) => e instanceof MetricLoadError && e.message.includes(missing) && /no such weight file/.test(e.message));
  const corrupt = path.join(tmp, 'corrupt.safetensors');
  writeFileSync(corrupt, Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
  await assert.rejects(LPIPS.load({ net: 'alex', weights: corrupt }), (e: Error) => e instanceof SafetensorsError && e.message.includes(corrupt));
  await assert.rejects(LPIPS.load({ net: 'squeeze' as 'alex', weights: ALEX }), (e: Error) => e instanceof MetricInputError && /'alex' or 'vgg'/.test(e.message));
  const m = await alex();
  const err = (re: RegExp) => (e: Error) => e instanceof MetricInputError && re.test(e.message);
  assert.throws(() => m.distance(g('img0'), g('img1').narrow(3, 0, 60)), err(/one size: got \[2, 3, 64, 64\] and \[2, 3, 64, 60\]/));
  assert.throws(() => m.distance(tensorToImages(g('img0')), tensorToImages(g('img1').narrow(2, 0, 48))), err(/one size/));
  assert.throws(() => m.distance(g('img0').narrow(2, 0, 20).narrow(3, 0, 20), g('img1').narrow(2, 0, 20).narrow(3, 0, 20)), err(/20x20 images are too small/));
  assert.throws(() => m.distance(g('img0').select(0, 0), g('img1').select(0, 0)), err(/\[B, 3, H, W\]/));
  assert.throws(() => m.distance(tensorToImages(g('img0')), tensorToImages(g('img1')).slice(1)), err(/got 2 and 1/));
});

test('weights from a Hub repo (file names in the repo, cached like huggingface_hub)', async () => {
  const dir = mkdtempSync(path.join(tmp, 'repo-'));
  rewrite(path.join(path.basename(dir), 'alex.safetensors'), ALEX, (k) => k);
  const hub = await FakeHub.start({ 'test/lpips': { dir } });
  try {
    const m = await LPIPS.load({ net: 'alex', repo: 'test/lpips', weights: ['alex.safetensors'], endpoint: hub.url, cacheDir: path.join(tmp, 'cache') });
    try {
      assertClose(m.distance(g('img0'), g('img1')), g('value'), 1e-4, 1e-4, 'from the Hub');
    } finally {
      m.dispose();
    }
  } finally {
    await hub.close();
  }
});
