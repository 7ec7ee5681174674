// Autograd beyond single-op gradients: accumulation, grad mode scopes, autograd.grad, autocast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { optim, GradScaler, tensor, noGrad, enableGrad, isGradEnabled, grad, autocast, linear, conv2d, randn, Generator, mseLoss, tidy } from '../../src/engine/index.js';
import { assertClose } from '../helpers.js';

test('gradients accumulate across backward calls until cleared', () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  x.mul(x).sum().backward(); // 2x
  x.mul(3).sum().backward(); // + 3
  assertClose(x.grad!, [5, 7, 9]);
  x.grad = null;
  assert.equal(x.grad, null);
  x.sum().backward();
  assertClose(x.grad!, [1, 1, 1]);
});

test('backward with an explicit gradient and retainGraph', () => {
  const x = tensor([1, -2], { requiresGrad: true });
  const y = x.pow(3); // dy/dx = 3x^2 = [3, 12]
  y.backward(tensor([1, 0.5]), { retainGraph: true });
  assertClose(x.grad!, [3, 6]);
  y.backward(tensor([1, 1]));
  assertClose(x.grad!, [6, 18]);
});

test('noGrad records nothing; enableGrad inside it records again; modes restore', () => {
  const w = tensor([2], { requiresGrad: true });
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    const inner = enableGrad(() => w.mul(3));
    assert.equal(inner.requiresGrad, true);
    return w.mul(3);
  });
  assert.equal(y.requiresGrad, false);
  assert.equal(isGradEnabled(), true);
  assert.throws(() => noGrad(() => {
    throw new Error('inside');
  }), /inside/);
  assert.equal(isGradEnabled(), true, 'restored after a throw');
});

test('detach cuts the graph; leaves and non-leaves; retainGrad', () => {
  const x = tensor([1, 2], { requiresGrad: true });
  const h = x.mul(2);
  assert.equal(x.isLeaf, true);
  assert.equal(h.isLeaf, false);
  h.retainGrad();
  const d = h.detach();
  assert.equal(d.requiresGrad, false);
  h.mul(d).sum().backward(); // d/dh = d = 2x; d/dx = 2 * d
  assertClose(h.grad!, [2, 4]);
  assertClose(x.grad!, [4, 8]);
});

test('grad() returns gradients without touching .grad, with createGraph for second order', () => {
  const x = tensor([0.5, -1.5], { requiresGrad: true, dtype: 'float64' });
  const y = x.pow(3).sum();
  const [g] = grad([y], [x], { createGraph: true }); // 3x^2
  assertClose(g!, [0.75, 6.75], 1e-12);
  assert.equal(x.grad, null);
  const [g2] = grad([g!.sum()], [x]); // 6x
  assertClose(g2!, [3, -9], 1e-12);
  const unused = tensor([1], { requiresGrad: true });
  const z = x.sum();
  assert.deepEqual(grad([z], [x, unused], { allowUnused: true }).map((t) => t === null), [false, true]);
});

test('autocast (bfloat16 on CPU) runs linear/conv in bf16 with fp32 master weights, and gradients reach them in fp32', () => {
  const gen = new Generator(11);
  const w = randn([4, 3], { generator: gen, requiresGrad: true });
  const x = randn([5, 3], { generator: gen });
  const k = randn([2, 1, 3, 3], { generator: gen, requiresGrad: true });
  const img = randn([1, 1, 6, 6], { generator: gen });
  const [y, c, ref] = autocast({ deviceType: 'cpu', dtype: 'bfloat16' }, () => [linear(x, w), conv2d(img, k), x.matmul(w.transpose(0, 1))]);
  assert.equal(y.dtype, 'bfloat16');
  assert.equal(c.dtype, 'bfloat16');
  assert.equal(w.dtype, 'float32');
  // bf16 has 8 bits of mantissa: results agree with fp32 to about 1%.
  const exact = linear(x, w);
  assertClose(y.float(), exact, 0.05, 0.02);
  assertClose(ref.float(), exact, 0.05, 0.02);
  const loss = tidy(() => mseLoss(y.float(), exact.detach().mul(0.5)).add(c.float().square().mean()));
  loss.backward();
  assert.equal(w.grad!.dtype, 'float32');
  assert.equal(k.grad!.dtype, 'float32');
  const out = linear(x, w);
  assert.equal(out.dtype, 'float32', 'autocast is off again outside the scope');
  // Nested and disabled scopes.
  const z = autocast({ deviceType: 'cpu' }, () => autocast({ deviceType: 'cpu', enabled: false }, () => linear(x, w)));
  assert.equal(z.dtype, 'bfloat16', 'enabled: false leaves the outer autocast in force');
});

test('GradScaler: scales the loss, unscales gradients, skips overflowing steps and adapts the scale', () => {
  const p = tensor([1, 2], { requiresGrad: true });
  const opt = new optim.SGD([p], { lr: 0.1 });
  const scaler = new GradScaler({ initScale: 1024, growthInterval: 2 });
  // A clean step: gradient 2p = [2, 4] after unscaling; p -= 0.1 * g.
  tidy(() => scaler.scale(p.square().sum()).backward());
  assertClose(p.grad!, [2048, 4096]);
  assert.equal(scaler.step(opt), true);
  assertClose(p.grad!, [2, 4], 1e-6);
  assertClose(p, [0.8, 1.6], 1e-6);
  scaler.update();
  opt.zeroGrad();
  // An overflowing step (inf gradient) is skipped and the scale halves.
  tidy(() => scaler.scale(p.mul(tensor([Infinity, 1])).sum()).backward());
  assert.equal(scaler.step(opt), false);
  assertClose(p, [0.8, 1.6], 1e-6);
  scaler.update();
  assert.equal(scaler.scale_, 512);
  opt.zeroGrad();
  // Two clean steps in a row grow it back.
  for (let i = 0; i < 2; i++) {
    tidy(() => scaler.scale(p.sum()).backward());
    scaler.step(opt);
    scaler.update();
    opt.zeroGrad();
  }
  assert.equal(scaler.scale_, 1024);
  assertClose(p, [0.6, 1.4], 1e-6);
});
