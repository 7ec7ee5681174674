// Optimizers against PyTorch's documented update rules (torch.optim.Adam / AdamW / SGD docs),
// recomputed here in float64 JavaScript, and against values printed by Python torch
// (tests/fixtures/make_optim_fixtures.py -> tests/fixtures/optim-reference.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { optim, tensor, tidy, Tensor, liveTensors, dispose } from '../../src/engine/index.js';
import { assertClose } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

// The problem: minimize sum((A x - b)^2) + 0.1 * sum(x^4); gradient 2 A^T (A x - b) + 0.4 x^3.
const A = [[1, 2, 0], [0.5, -1, 3], [2, 0.25, -0.5], [-1, 1, 1]];
const b = [1, -2, 0.5, 3];
const x0 = [0.3, -0.7, 1.1];

function gradJs(x: number[]): number[] {
  const r = A.map((row, i) => row.reduce((s, a, j) => s + a * x[j]!, 0) - b[i]!);
  return x.map((xj, j) => 2 * A.reduce((s, row, i) => s + row[j]! * r[i]!, 0) + 0.4 * xj ** 3);
}

function lossTs(x: Tensor): Tensor {
  const At = tensor(A, { dtype: 'float64' });
  const bt = tensor(b, { dtype: 'float64' });
  return At.matmul(x).sub(bt).square().sum().add(x.pow(4).sum().mul(0.1));
}

function runTs(make: (p: Tensor) => optim.Optimizer, steps: number): number[] {
  const x = tensor(x0, { dtype: 'float64', requiresGrad: true });
  const opt = make(x);
  for (let s = 0; s < steps; s++) {
    tidy(() => {
      opt.zeroGrad();
      lossTs(x).backward();
      opt.step();
    });
  }
  const out = x.toFlatArray();
  opt.disposeState();
  x.dispose();
  return out;
}

interface AdamJs { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean; amsgrad: boolean }
function adamJs(o: AdamJs, steps: number): number[] {
  const x = x0.slice();
  const m = [0, 0, 0], v = [0, 0, 0], vmax = [0, 0, 0];
  for (let t = 1; t <= steps; t++) {
    let g = gradJs(x);
    if (o.wd !== 0 && !o.decoupled) g = g.map((gi, i) => gi + o.wd * x[i]!);
    for (let i = 0; i < 3; i++) {
      if (o.wd !== 0 && o.decoupled) x[i]! *= 1 - o.lr * o.wd;
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g[i]!;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g[i]! ** 2;
      vmax[i] = Math.max(vmax[i]!, v[i]!);
      const mhat = m[i]! / (1 - o.b1 ** t);
      const vhat = (o.amsgrad ? vmax[i]! : v[i]!) / (1 - o.b2 ** t);
      x[i]! -= (o.lr * mhat) / (Math.sqrt(vhat) + o.eps);
    }
  }
  return x;
}

const base: AdamJs = { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0, decoupled: false, amsgrad: false };

test('Adam matches the documented update rule over 25 steps', () => {
  const got = runTs((p) => new optim.Adam([p], { lr: 0.01 }), 25);
  assertClose(got, adamJs(base, 25), 1e-10, 1e-10);
  assert.ok(Math.abs(got[0]! - x0[0]!) > 0.05, 'the parameters moved');
});

test('Adam with L2 weight decay, custom betas and amsgrad matches the rule', () => {
  const o = { ...base, lr: 0.05, b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.1, amsgrad: true };
  const got = runTs((p) => new optim.Adam([p], { lr: 0.05, betas: [0.8, 0.95], eps: 1e-6, weightDecay: 0.1, amsgrad: true }), 15);
  assertClose(got, adamJs(o, 15), 1e-10, 1e-10);
});

test('AdamW decays the weights decoupled from the gradient', () => {
  const got = runTs((p) => new optim.AdamW([p], { lr: 0.02, weightDecay: 0.5 }), 20);
  assertClose(got, adamJs({ ...base, lr: 0.02, wd: 0.5, decoupled: true }, 20), 1e-10, 1e-10);
  const l2 = adamJs({ ...base, lr: 0.02, wd: 0.5, decoupled: false }, 20);
  assert.ok(Math.abs(got[2]! - l2[2]!) > 1e-4, 'decoupled and L2 decay differ');
});

test('SGD with momentum, dampening, Nesterov and weight decay matches the rule', () => {
  const sgdJs = (lr: number, mu: number, damp: number, wd: number, nesterov: boolean, steps: number) => {
    const x = x0.slice();
    let buf: number[] | null = null;
    for (let t = 0; t < steps; t++) {
      const g = gradJs(x).map((gi, i) => gi + wd * x[i]!);
      let d = g;
      if (mu !== 0) {
        buf = buf === null ? g.slice() : buf.map((bi, i) => mu * bi + (1 - damp) * g[i]!);
        d = nesterov ? g.map((gi, i) => gi + mu * buf![i]!) : buf;
      }
      for (let i = 0; i < 3; i++) x[i]! -= lr * d[i]!;
    }
    return x;
  };
  assertClose(runTs((p) => new optim.SGD([p], { lr: 0.01 }), 10), sgdJs(0.01, 0, 0, 0, false, 10), 1e-12, 1e-10);
  assertClose(runTs((p) => new optim.SGD([p], { lr: 0.01, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }), 10),
    sgdJs(0.01, 0.9, 0.1, 0.01, false, 10), 1e-12, 1e-10);
  assertClose(runTs((p) => new optim.SGD([p], { lr: 0.005, momentum: 0.8, nesterov: true }), 10),
    sgdJs(0.005, 0.8, 0, 0, true, 10), 1e-12, 1e-10);
});

test('Adam and AdamW match Python torch (fixture) to 1e-6 in float32', () => {
  const ref = JSON.parse(readFileSync(fixturePath('optim-reference.json'), 'utf8')) as Record<string, { x: number[] }>;
  const run32 = (make: (p: Tensor) => optim.Optimizer) => {
    const x = tensor(x0, { requiresGrad: true });
    const opt = make(x);
    for (let s = 0; s < 10; s++) {
      tidy(() => {
        opt.zeroGrad();
        const At = tensor(A), bt = tensor(b);
        At.matmul(x).sub(bt).square().sum().add(x.pow(4).sum().mul(0.1)).backward();
        opt.step();
      });
    }
    const out = x.toFlatArray();
    opt.disposeState();
    return out;
  };
  assertClose(run32((p) => new optim.Adam([p], { lr: 0.01 })), ref.adam!.x, 1e-6, 0);
  assertClose(run32((p) => new optim.AdamW([p], { lr: 0.01, weightDecay: 0.1 })), ref.adamw!.x, 1e-6, 0);
  assertClose(run32((p) => new optim.Adam([p], { lr: 0.01, amsgrad: true, weightDecay: 0.05 })), ref.adam_amsgrad_wd!.x, 1e-6, 0);
  assertClose(run32((p) => new optim.SGD([p], { lr: 0.01, momentum: 0.9, nesterov: true })), ref.sgd_nesterov!.x, 1e-6, 0);
});

test('optimizer state saves and loads: a resumed run equals an uninterrupted one', () => {
  const uninterrupted = runTs((p) => new optim.Adam([p], { lr: 0.01 }), 12);
  const x = tensor(x0, { dtype: 'float64', requiresGrad: true });
  const first = new optim.Adam([x], { lr: 0.01 });
  const stepOnce = (o: optim.Optimizer) => tidy(() => {
    o.zeroGrad();
    lossTs(x).backward();
    o.step();
  });
  for (let s = 0; s < 7; s++) stepOnce(first);
  const saved = first.stateDict();
  assert.equal(saved.step, 7);
  assert.deepEqual(Object.keys(saved.tensors).sort(), ['exp_avg.0', 'exp_avg_sq.0']);
  const second = new optim.Adam([x], { lr: 0.01 });
  second.loadStateDict(saved);
  first.disposeState(); // the loaded state is a copy
  for (let s = 0; s < 5; s++) stepOnce(second);
  assertClose(x.toFlatArray(), uninterrupted, 1e-12, 1e-12);
  second.disposeState();
  x.dispose();
});

test('loading a mismatched state is refused with a clear message', () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const y = tensor([1, 2], { requiresGrad: true });
  const a = new optim.Adam([x]);
  x.grad = tensor([1, 1, 1]);
  a.step();
  const s = new optim.SGD([x]);
  assert.throws(() => s.loadStateDict(a.stateDict()), /cannot load the state of a 'adam' optimizer/);
  const b = new optim.Adam([y]);
  assert.throws(() => b.loadStateDict(a.stateDict()), /exp_avg.0' has shape \[3\] but parameter 0 has \[2\]/);
  assert.throws(() => new optim.Adam([tensor([1])]), /does not require grad/);
  assert.throws(() => new optim.Adam([x], { lr: -1 }), /invalid learning rate/);
  a.disposeState();
  dispose([x, y]);
});

test('optimizer steps leave the live-tensor count flat', () => {
  const x = tensor(x0, { dtype: 'float64', requiresGrad: true });
  const opt = new optim.AdamW([x], { lr: 0.01 });
  const step = () => tidy(() => {
    opt.zeroGrad();
    lossTs(x).backward();
    opt.step();
  });
  step();
  const before = liveTensors();
  for (let i = 0; i < 200; i++) step();
  assert.equal(liveTensors(), before);
  opt.disposeState();
  x.dispose();
});

test('clipGradNorm scales gradients to the max norm and returns the norm before', () => {
  const x = tensor([3, 4], { requiresGrad: true });
  const y = tensor([12], { requiresGrad: true });
  x.grad = tensor([3, 4]);
  y.grad = tensor([12]);
  const norm = optim.clipGradNorm([x, y], 6.5);
  assertClose([norm.item()], [13], 1e-5);
  assertClose(x.grad!, [1.5, 2], 1e-5);
  assertClose(y.grad!, [6], 1e-5);
});
