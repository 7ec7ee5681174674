// Gradients of every differentiable op against central finite differences in float64 (gradcheck in
// tests/helpers.ts), plus a few analytic gradients written out by hand. Inputs are kept tiny:
// gradcheck runs two forward passes per input element.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  tensor, cat, stack, where, lerp, matmul, bmm, linear, baddbmm, conv2d, groupNorm, layerNorm, embedding,
  scaledDotProductAttention, interpolate, pad, maxPool2d, avgPool2d, mseLoss, l1Loss, cosineSimilarity, softmax,
  type Tensor,
} from '../../src/engine/index.js';
import { assertClose, gradcheck, randomTensor } from '../helpers.js';

const r = randomTensor;
/** A float64 tensor whose values are bounded away from 0 (in [lo, hi)). */
const positive = (shape: number[], seed: number, lo = 0.5, hi = 2) => r(shape, seed, (hi - lo) / 2, (hi + lo) / 2);
const i64 = (v: number[] | number[][]) => tensor(v, { dtype: 'int64' });

describe('arithmetic', () => {
  test('add / sub / mul / div with broadcasting', () => {
    gradcheck((a, b) => a.add(b), [r([2, 3], 1), r([3], 2)], { name: 'add' });
    gradcheck((a, b) => a.add(b, -2.5), [r([2, 3], 1), r([2, 1], 2)], { name: 'add alpha' });
    gradcheck((a, b) => a.sub(b), [r([2, 1, 3], 3), r([4, 1], 4)], { name: 'sub' });
    gradcheck((a, b) => a.mul(b), [r([2, 3], 5), r([2, 1], 6)], { name: 'mul' });
    gradcheck((a, b) => a.div(b), [r([3, 2], 7), positive([2], 8)], { name: 'div' });
    gradcheck((a) => a.mul(3).sub(1).div(-4).add(0.5), [r([5], 9)], { name: 'scalar chain' });
    gradcheck((a, b) => b.sub(a).neg(), [r([4], 10), r([], 11)], { name: 'sub from 0-dim' });
    gradcheck((a, b) => a.maximum(b).add(a.minimum(b)), [r([6], 12), r([6], 13)], { name: 'maximum/minimum' });
  });

  test('pow: tensor ^ number, tensor ^ tensor (positive base)', () => {
    gradcheck((a) => a.pow(3), [r([5], 14)], { name: 'pow 3' });
    gradcheck((a) => a.pow(-1.5), [positive([5], 15)], { name: 'pow -1.5' });
    gradcheck((a, b) => a.pow(b), [positive([2, 3], 16), r([3], 17)], { name: 'pow tensor' });
    gradcheck((a) => a.square().add(a.reciprocal()), [positive([4], 18)], { name: 'square + reciprocal' });
  });
});

describe('unary math and activations', () => {
  const ops: [string, (t: Tensor) => Tensor, boolean][] = [
    ['exp', (t) => t.exp(), false],
    ['log', (t) => t.log(), true],
    ['sqrt', (t) => t.sqrt(), true],
    ['rsqrt', (t) => t.rsqrt(), true],
    ['sin', (t) => t.sin(), false],
    ['cos', (t) => t.cos(), false],
    ['tanh', (t) => t.tanh(), false],
    ['sigmoid', (t) => t.sigmoid(), false],
    ['silu', (t) => t.silu(), false],
    ['gelu exact', (t) => t.gelu(), false],
    ['gelu tanh', (t) => t.gelu('tanh'), false],
    ['quickGelu', (t) => t.quickGelu(), false],
    ['erf', (t) => t.erf(), false],
    ['abs (away from 0)', (t) => t.sub(1.25).abs(), true],
    ['relu (away from 0)', (t) => t.sub(1.25).relu(), true],
    ['log1p / expm1', (t) => t.log1p().add(t.expm1()), true],
  ];
  for (const [name, op, pos] of ops) {
    test(name, () => {
      gradcheck(op, [pos ? positive([2, 3], 21) : r([2, 3], 21, 2.5)], { name });
    });
  }

  test('clamp away from the bounds', () => {
    const x = tensor([-0.9, -0.3, 0.1, 0.45, 0.7, -0.55], { dtype: 'float64' });
    gradcheck((t) => t.clamp(-0.5, 0.5), [x], { name: 'clamp' });
    gradcheck((t) => t.clamp(0), [x], { name: 'clamp min' });
    gradcheck((t) => t.clamp(null, 0.2), [x], { name: 'clamp max' });
  });
});

describe('softmax and reductions', () => {
  test('softmax / logSoftmax over each dim', () => {
    for (const dim of [0, 1, -1]) {
      gradcheck((t) => t.softmax(dim), [r([2, 3, 4], 31, 2)], { name: `softmax ${dim}` });
      gradcheck((t) => t.logSoftmax(dim), [r([2, 3, 4], 32, 2)], { name: `logSoftmax ${dim}` });
    }
    gradcheck((t) => softmax(t, 1), [r([3, 3], 33)], { name: 'functional softmax' });
  });

  test('sum / mean over all, one and two dims, keepdim', () => {
    const x = r([2, 3, 4], 34);
    gradcheck((t) => t.sum(), [x], { name: 'sum all' });
    gradcheck((t) => t.sum(1), [x], { name: 'sum 1' });
    gradcheck((t) => t.sum([0, 2], { keepdim: true }), [x], { name: 'sum 0,2 keepdim' });
    gradcheck((t) => t.mean(), [x], { name: 'mean all' });
    gradcheck((t) => t.mean(-1, { keepdim: true }), [x], { name: 'mean -1 keepdim' });
    gradcheck((t) => t.mean([0, 1]), [x], { name: 'mean 0,1' });
    gradcheck((t) => t.cumsum(1), [x], { name: 'cumsum' });
  });

  test('var / std with correction 0 and 1', () => {
    const x = r([3, 4], 35);
    gradcheck((t) => t.var(), [x], { name: 'var all' });
    gradcheck((t) => t.var(1), [x], { name: 'var 1' });
    gradcheck((t) => t.var(0, { correction: 0, keepdim: true }), [x], { name: 'var 0 corr 0' });
    gradcheck((t) => t.std(1, { correction: 0 }), [x], { name: 'std 1 corr 0' });
    gradcheck((t) => t.std(), [x], { name: 'std all' });
  });

  test('amax / amin / max(dim) values (no ties)', () => {
    const x = r([3, 4], 36);
    gradcheck((t) => t.amax(), [x], { name: 'amax all' });
    gradcheck((t) => t.amax(1), [x], { name: 'amax 1' });
    gradcheck((t) => t.amin(0, { keepdim: true }), [x], { name: 'amin 0' });
    gradcheck((t) => t.max(1)[0], [x], { name: 'max(dim) values' });
  });
});

describe('products', () => {
  test('matmul 2-D, batched with broadcasting, matrix-vector', () => {
    gradcheck((a, b) => a.matmul(b), [r([2, 3], 41), r([3, 4], 42)], { name: 'matmul 2D' });
    gradcheck((a, b) => matmul(a, b), [r([2, 1, 2, 3], 43), r([3, 3, 2], 44)], { name: 'matmul batched broadcast' });
    gradcheck((a, b) => a.matmul(b), [r([3, 4], 45), r([4], 46)], { name: 'matmul mv' });
  });
  test('bmm', () => {
    gradcheck((a, b) => bmm(a, b), [r([2, 2, 3], 47), r([2, 3, 2], 48)], { name: 'bmm' });
  });
  test('linear with and without bias', () => {
    gradcheck((x, w, b) => linear(x, w, b), [r([2, 3, 4], 49), r([5, 4], 50), r([5], 51)], { name: 'linear bias' });
    gradcheck((x, w) => linear(x, w), [r([3, 4], 52), r([2, 4], 53)], { name: 'linear' });
  });
  test('baddbmm with beta and alpha', () => {
    gradcheck((i, a, b) => baddbmm(i, a, b, 0.5, -1.5), [r([2, 1, 3], 54), r([2, 2, 4], 55), r([2, 4, 3], 56)], { name: 'baddbmm' });
    gradcheck((i, a, b) => baddbmm(i, a, b), [r([3], 57), r([2, 2, 2], 58), r([2, 2, 3], 59)], { name: 'baddbmm default' });
  });
});

describe('neural-network ops', () => {
  test('conv2d with groups, stride, padding, dilation and bias', () => {
    gradcheck((x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1, groups: 2 }),
      [r([1, 4, 5, 5], 61), r([4, 2, 3, 3], 62), r([4], 63)], { name: 'conv2d groups stride padding' });
    gradcheck((x, w) => conv2d(x, w, null, { stride: [1, 2], padding: [2, 1], dilation: 2 }),
      [r([2, 2, 5, 4], 64), r([3, 2, 2, 2], 65)], { name: 'conv2d dilation' });
  });

  test('groupNorm with weight and bias', () => {
    gradcheck((x, w, b) => groupNorm(x, 2, w, b), [r([2, 4, 2, 3], 66, 2, 0.5), r([4], 67), r([4], 68)], { name: 'groupNorm' });
    gradcheck((x) => groupNorm(x, 3, null, null, 1e-3), [r([1, 6, 3], 69)], { name: 'groupNorm plain' });
  });

  test('layerNorm with weight and bias', () => {
    gradcheck((x, w, b) => layerNorm(x, [4], w, b), [r([2, 3, 4], 70, 2), r([4], 71), r([4], 72)], { name: 'layerNorm' });
    gradcheck((x, w, b) => layerNorm(x, [2, 3], w, b, 1e-2), [r([2, 2, 3], 73), r([2, 3], 74), r([2, 3], 75)], { name: 'layerNorm 2 dims' });
    gradcheck((x) => layerNorm(x, [5]), [r([3, 5], 76)], { name: 'layerNorm plain' });
  });

  test('embedding: gradient w.r.t. the weight, repeated ids accumulate', () => {
    const ids = i64([[3, 0, 3], [1, 3, 0]]);
    gradcheck((w) => embedding(ids, w), [r([5, 2], 77)], { name: 'embedding' });
    // by hand: d sum(embedding(ids, w)) / dw[v] = (count of v in ids) for every column
    const w = r([5, 2], 78).requiresGrad_(true);
    embedding(ids, w).sum().backward();
    assert.deepEqual(w.grad!.toArray(), [[2, 2], [1, 1], [0, 0], [3, 3], [0, 0]]);
  });

  test('scaledDotProductAttention: q, k, v; with boolean and float masks; causal; scale', () => {
    const q = r([1, 2, 3, 4], 81), k = r([1, 2, 4, 4], 82), v = r([1, 2, 4, 3], 83);
    gradcheck((a, b, c) => scaledDotProductAttention(a, b, c), [q, k, v], { name: 'sdpa' });
    const bm = tensor([[true, false, true, true], [true, true, false, false], [false, true, true, true]]);
    gradcheck((a, b, c) => scaledDotProductAttention(a, b, c, { attnMask: bm }), [q, k, v], { name: 'sdpa bool mask' });
    const fm = r([3, 4], 84, 2);
    gradcheck((a, b, c) => scaledDotProductAttention(a, b, c, { attnMask: fm }), [q, k, v], { name: 'sdpa float mask' });
    gradcheck((a, b, c, m) => scaledDotProductAttention(a, b, c, { attnMask: m }), [q, k, v, fm], { name: 'sdpa float mask grad' });
    gradcheck((a, b, c) => scaledDotProductAttention(a, b, c, { isCausal: true, scale: 0.7 }), [q, k, v], { name: 'sdpa causal scale' });
  });

  test('interpolate: nearest, bilinear (both alignCorners), bicubic, area', () => {
    const x = r([1, 2, 3, 4], 91);
    gradcheck((t) => interpolate(t, { size: [5, 3], mode: 'nearest' }), [x], { name: 'nearest' });
    gradcheck((t) => interpolate(t, { scaleFactor: 2, mode: 'nearest' }), [x], { name: 'nearest x2' });
    gradcheck((t) => interpolate(t, { size: [5, 3], mode: 'bilinear' }), [x], { name: 'bilinear' });
    gradcheck((t) => interpolate(t, { size: [5, 7], mode: 'bilinear', alignCorners: true }), [x], { name: 'bilinear ac' });
    gradcheck((t) => interpolate(t, { size: [5, 6], mode: 'bicubic' }), [x], { name: 'bicubic' });
    gradcheck((t) => interpolate(t, { size: [2, 3], mode: 'bicubic', alignCorners: true }), [x], { name: 'bicubic ac down' });
    gradcheck((t) => interpolate(t, { size: [2, 3], mode: 'area' }), [x], { name: 'area' });
    gradcheck((t) => interpolate(t, { size: [2, 3], mode: 'bilinear', antialias: true }), [x], { name: 'bilinear antialias' });
  });

  test('pad: constant, reflect, replicate, circular', () => {
    const x = r([1, 2, 3, 4], 92);
    gradcheck((t) => pad(t, [1, 2, 2, 1]), [x], { name: 'pad constant' });
    gradcheck((t) => pad(t, [2, 1, 1, 2], 'constant', 3), [x], { name: 'pad constant value' });
    gradcheck((t) => pad(t, [2, 3, 2, 1], 'reflect'), [x], { name: 'pad reflect' });
    gradcheck((t) => pad(t, [2, 1, 0, 2], 'replicate'), [x], { name: 'pad replicate' });
    gradcheck((t) => pad(t, [1, 2, 2, 1], 'circular'), [x], { name: 'pad circular' });
  });

  test('maxPool2d / avgPool2d', () => {
    const x = r([1, 2, 5, 5], 93);
    gradcheck((t) => maxPool2d(t, 2), [x], { name: 'maxPool2d 2' });
    gradcheck((t) => maxPool2d(t, 3, 2, 1), [x], { name: 'maxPool2d 3/2/1' });
    gradcheck((t) => avgPool2d(t, 2), [x], { name: 'avgPool2d 2' });
    gradcheck((t) => avgPool2d(t, [3, 2], [2, 1], [1, 0]), [x], { name: 'avgPool2d 3x2' });
  });

  test('mseLoss (mean, sum, none) and l1Loss away from kinks', () => {
    const a = r([3, 4], 94), b = r([3, 4], 95);
    for (const red of ['mean', 'sum', 'none'] as const) {
      gradcheck((x, y) => mseLoss(x, y, red), [a, b], { name: `mse ${red}` });
    }
    // |a - b| >= 0.25 everywhere
    const sign = tensor([1, -1, 1, 1, -1, -1, 1, -1, 1, -1, -1, 1], { dtype: 'float64' }).reshape(3, 4);
    const far = a.add(sign.mul(r([3, 4], 96, 0.25, 0.5)));
    for (const red of ['mean', 'sum', 'none'] as const) {
      gradcheck((x, y) => l1Loss(x, y, red), [a, far], { name: `l1 ${red}` });
    }
  });

  test('cosineSimilarity', () => {
    gradcheck((x, y) => cosineSimilarity(x, y), [r([3, 4], 97), r([3, 4], 98)], { name: 'cos dim 1' });
    gradcheck((x, y) => cosineSimilarity(x, y, 0), [r([3, 2], 99), r([3, 1], 100)], { name: 'cos dim 0 broadcast' });
  });

  test('dropout with p = 0 passes gradients through unchanged', () => {
    const x = r([4], 101).requiresGrad_(true);
    x.mul(tensor([1, 2, 3, 4], { dtype: 'float64' })).sum().backward();
    assertClose(x.grad!, [1, 2, 3, 4], 0, 0);
  });
});

describe('selection and shape ops', () => {
  test('lerp with scalar and tensor weights', () => {
    gradcheck((a, b) => a.lerp(b, 0.3), [r([2, 3], 111), r([2, 3], 112)], { name: 'lerp scalar' });
    gradcheck((a, b, w) => lerp(a, b, w), [r([2, 3], 113), r([2, 3], 114), r([3], 115)], { name: 'lerp tensor' });
  });

  test('where (both branches) and maskedFill', () => {
    const c = tensor([[true, false, true], [false, false, true]]);
    gradcheck((a, b) => where(c, a, b), [r([2, 3], 116), r([3], 117)], { name: 'where' });
    gradcheck((a) => where(c, a, 0.5), [r([2, 3], 118)], { name: 'where number' });
    gradcheck((a) => a.maskedFill(c, -2), [r([2, 3], 119)], { name: 'maskedFill' });
  });

  test('cat / stack', () => {
    gradcheck((a, b, c) => cat([a, b, c], 1), [r([2, 1], 121), r([2, 3], 122), r([2, 2], 123)], { name: 'cat' });
    gradcheck((a, b) => stack([a, b], 1), [r([2, 3], 124), r([2, 3], 125)], { name: 'stack' });
  });

  test('permute / transpose / reshape / expand / repeat / flip / squeeze', () => {
    const x = r([2, 3, 2], 126);
    gradcheck((t) => t.permute(2, 0, 1), [x], { name: 'permute' });
    gradcheck((t) => t.transpose(0, 2).reshape(3, 4), [x], { name: 'transpose reshape' });
    gradcheck((t) => t.expand(4, 3, 2), [r([3, 1], 127)], { name: 'expand' });
    gradcheck((t) => t.repeat(2, 3), [r([2, 2], 128)], { name: 'repeat' });
    gradcheck((t) => t.flip([0, 2]).flatten(), [x], { name: 'flip' });
    gradcheck((t) => t.unsqueeze(1).squeeze(), [x], { name: 'unsqueeze/squeeze' });
  });

  test('gather / indexSelect / narrow / slice / select / chunk / split', () => {
    const x = r([3, 4], 129);
    gradcheck((t) => t.gather(1, i64([[0, 0, 3], [2, 1, 1], [3, 3, 0]])), [x], { name: 'gather (repeats)' });
    gradcheck((t) => t.indexSelect(0, i64([2, 0, 2])), [x], { name: 'indexSelect (repeats)' });
    gradcheck((t) => t.narrow(1, 1, 2), [x], { name: 'narrow' });
    gradcheck((t) => t.slice(1, 0, 4, 2), [x], { name: 'slice step' });
    gradcheck((t) => t.select(0, 1), [x], { name: 'select' });
    gradcheck((t) => { const [p, q] = t.chunk(2, 1); return p!.mul(q!); }, [x], { name: 'chunk' });
    gradcheck((t) => { const [p, q] = t.split([1, 3], 1); return q!.mul(p!); }, [x], { name: 'split' });
    gradcheck((t) => t.triu(1).add(t.tril(-1).mul(2)), [x], { name: 'triu/tril' });
  });
});

describe('analytic gradients by hand', () => {
  test('d/dx sum(x^2 * y) = 2xy, d/dy = x^2; sin; softmax row sums', () => {
    const xv = [0.5, -1, 2], yv = [3, 0.25, -1];
    const x = tensor(xv, { dtype: 'float64', requiresGrad: true });
    const y = tensor(yv, { dtype: 'float64', requiresGrad: true });
    x.pow(2).mul(y).sum().backward();
    assertClose(x.grad!, xv.map((v, i) => 2 * v * yv[i]!), 1e-15, 0);
    assertClose(y.grad!, xv.map((v) => v * v), 1e-15, 0);
    const s = tensor(xv, { dtype: 'float64', requiresGrad: true });
    s.sin().sum().backward();
    assertClose(s.grad!, xv.map(Math.cos), 1e-15, 1e-15);
    // the gradient of sum(softmax(x)) is zero (the outputs always sum to 1)
    const z = tensor([[1, 2, 3], [0, -1, 4]], { dtype: 'float64', requiresGrad: true });
    z.softmax(1).sum().backward();
    assertClose(z.grad!, [0, 0, 0, 0, 0, 0], 1e-15, 0);
  });

  test('mean over n elements gives 1/n; linear weight gradient is the outer product', () => {
    const x = tensor([[1, 2], [3, 4]], { dtype: 'float64', requiresGrad: true });
    x.mean().backward();
    assertClose(x.grad!, [0.25, 0.25, 0.25, 0.25], 0, 0);
    const inp = tensor([[1, -2, 3]], { dtype: 'float64' });
    const w = tensor([[0.5, 0.5, 0.5], [1, 0, -1]], { dtype: 'float64', requiresGrad: true });
    const b = tensor([0, 0], { dtype: 'float64', requiresGrad: true });
    linear(inp, w, b).mul(tensor([[2, -1]], { dtype: 'float64' })).sum().backward();
    assert.deepEqual(w.grad!.toArray(), [[2, -4, 6], [-1, 2, -3]]);
    assert.deepEqual(b.grad!.toArray(), [2, -1]);
  });
});
