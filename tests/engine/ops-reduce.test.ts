// Reductions, softmax, cumsum and matrix products, checked against naive JavaScript references.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, matmul, bmm, linear, baddbmm, softmax, type Tensor } from '../../src/engine/index.js';
import { assertClose, pseudoRandom } from '../helpers.js';

const flat = (t: Tensor) => t.toFlatArray();

// ---- a tiny strided-array reference -------------------------------------------------------------
interface Arr { shape: number[]; data: number[] }
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
function strides(s: number[]): number[] {
  const st = new Array(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) st[i] = st[i + 1] * s[i + 1]!;
  return st;
}
function unravel(i: number, s: number[]): number[] {
  const idx: number[] = [];
  for (let d = s.length - 1; d >= 0; d--) {
    idx.unshift(i % s[d]!);
    i = Math.floor(i / s[d]!);
  }
  return idx;
}
/** Reduces `dims` of x with fn (given the list of values), optionally keeping size-1 dims. */
function reduceRef(x: Arr, dims: number[], fn: (v: number[]) => number, keepdim = false): Arr {
  const nd = x.shape.length;
  const ds = dims.map((d) => (d < 0 ? d + nd : d));
  const outShapeKeep = x.shape.map((n, d) => (ds.includes(d) ? 1 : n));
  const groups: number[][] = Array.from({ length: numel(outShapeKeep) }, () => []);
  const ost = strides(outShapeKeep);
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape);
    let o = 0;
    idx.forEach((v, d) => { if (!ds.includes(d)) o += v * ost[d]!; });
    groups[o]!.push(x.data[i]!);
  }
  const shape = keepdim ? outShapeKeep : x.shape.filter((_, d) => !ds.includes(d));
  return { shape, data: groups.map(fn) };
}
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const mean = (v: number[]) => sum(v) / v.length;
const variance = (c: number) => (v: number[]) => {
  const m = mean(v);
  return sum(v.map((x) => (x - m) ** 2)) / (v.length - c);
};
const argOf = (pick: (a: number, b: number) => boolean) => (v: number[]) => {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (pick(v[i]!, v[best]!)) best = i;
  return best;
};

/** Naive matmul of row-major [m,k] x [k,n]. */
function mm(a: number[], b: number[], m: number, k: number, n: number): number[] {
  const out = new Array(m * n).fill(0);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
    out[i * n + j] = s;
  }
  return out;
}

// A [2,3,4] input with distinct values (no ties for max/min).
const X_SHAPE = [2, 3, 4];
// Multiples of 1/16 plus i/1024: exact in float32 and pairwise distinct.
const X_DISTINCT = pseudoRandom(24, 3).map((v, i) => Math.round(v * 64) / 16 + i / 1024);
const X: Arr = { shape: X_SHAPE, data: X_DISTINCT };
const xt = (dtype: 'float32' | 'float64' = 'float32') => tensor(X.data, { dtype }).reshape(X.shape);

describe('sum / mean / var / std', () => {
  const dimSets: (number[] | undefined)[] = [undefined, [0], [1], [2], [-1], [0, 2], [1, 2]];
  for (const dims of dimSets) {
    for (const keepdim of [false, true]) {
      test(`dims ${JSON.stringify(dims ?? 'all')} keepdim ${keepdim}`, () => {
        const all = dims ?? [0, 1, 2];
        const x = xt();
        const x64 = xt('float64');
        const check = (got: Tensor, ref: Arr, atol: number, what: string) => {
          // full reductions without keepdim give 0-dim tensors
          assert.deepEqual(got.shape, ref.shape, `${what} shape`);
          assertClose(got, ref.data, atol, 1e-5, what);
        };
        check(x.sum(dims, { keepdim }), reduceRef(X, all, sum, keepdim), 1e-5, 'sum');
        check(x.mean(dims, { keepdim }), reduceRef(X, all, mean, keepdim), 1e-6, 'mean');
        check(x64.var(dims, { keepdim }), reduceRef(X, all, variance(1), keepdim), 1e-12, 'var corr 1');
        check(x64.var(dims, { keepdim, correction: 0 }), reduceRef(X, all, variance(0), keepdim), 1e-12, 'var corr 0');
        check(x.std(dims, { keepdim }), reduceRef(X, all, (v) => Math.sqrt(variance(1)(v)), keepdim), 1e-6, 'std corr 1');
        check(x.std(dims, { keepdim, correction: 0 }), reduceRef(X, all, (v) => Math.sqrt(variance(0)(v)), keepdim), 1e-6, 'std corr 0');
        check(x.amax(dims, { keepdim }), reduceRef(X, all, (v) => Math.max(...v), keepdim), 0, 'amax');
        check(x.amin(dims, { keepdim }), reduceRef(X, all, (v) => Math.min(...v), keepdim), 0, 'amin');
      });
    }
  }

  test('full reductions are 0-dim; item() reads them', () => {
    const s = tensor([[1, 2], [3, 4]]).sum();
    assert.deepEqual(s.shape, []);
    assert.equal(s.item(), 10);
    assert.equal(tensor([[1, 2], [3, 4]]).mean().item(), 2.5);
    assert.equal(tensor([[1, 2], [3, 4]]).max().item(), 4);
    assert.equal(tensor([[1, 2], [3, 4]]).min().item(), 1);
  });

  test('sum of int64 stays int64, sum of bool counts; dtype option accumulates in float64', () => {
    const i = tensor([1, 2, 3], { dtype: 'int64' }).sum();
    assert.equal(i.dtype, 'int64');
    assert.equal(i.item(), 6);
    const b = tensor([true, false, true, true]).sum();
    assert.equal(b.dtype, 'int64');
    assert.equal(b.item(), 3);
    const big = tensor([1e8, 1, -1e8]).sum(undefined, { dtype: 'float64' });
    assert.equal(big.dtype, 'float64');
    assert.equal(big.item(), 1);
    const m = tensor([[1, 2], [3, 5]], { dtype: 'float16' }).mean(1, { dtype: 'float32' });
    assert.equal(m.dtype, 'float32');
    assert.deepEqual(flat(m), [1.5, 4]);
  });

  test('var/std of small vectors, correction 0 and 1', () => {
    assert.equal(tensor([3]).var(undefined, { correction: 0 }).item(), 0);
    // var([1,2,3,4]) = 5/3 (unbiased), 5/4 (biased)
    assertClose(tensor([1, 2, 3, 4]).var(), [5 / 3], 1e-6);
    assertClose(tensor([1, 2, 3, 4]).std(undefined, { correction: 0 }), [Math.sqrt(5 / 4)], 1e-6);
  });

  test('all / any', () => {
    const b = tensor([[true, false], [true, true]]);
    assert.equal(b.all().item(), 0);
    assert.equal(b.any().item(), 1);
    assert.deepEqual(flat(b.all(1)), [0, 1]);
    assert.deepEqual(flat(b.any(0)), [1, 1]);
    assert.deepEqual(b.all(1, { keepdim: true }).shape, [2, 1]);
  });
});

describe('max(dim) / min(dim) / argmax / argmin', () => {
  for (const dim of [0, 1, 2, -1]) {
    for (const keepdim of [false, true]) {
      test(`dim ${dim} keepdim ${keepdim}`, () => {
        const x = xt();
        const [v, i] = x.max(dim, keepdim);
        const vRef = reduceRef(X, [dim], (a) => Math.max(...a), keepdim);
        const iRef = reduceRef(X, [dim], argOf((a, b) => a > b), keepdim);
        assert.deepEqual(v.shape, vRef.shape);
        assert.deepEqual(flat(v), vRef.data.map(Math.fround));
        assert.equal(i.dtype, 'int64');
        assert.deepEqual(i.shape, iRef.shape);
        assert.deepEqual(flat(i), iRef.data);
        const [mv, mi] = x.min(dim, keepdim);
        assert.deepEqual(flat(mv), reduceRef(X, [dim], (a) => Math.min(...a), keepdim).data.map(Math.fround));
        assert.deepEqual(flat(mi), reduceRef(X, [dim], argOf((a, b) => a < b), keepdim).data);
        const am = x.argmax(dim, keepdim);
        assert.deepEqual(am.shape, iRef.shape);
        assert.deepEqual(flat(am), iRef.data);
        assert.deepEqual(flat(x.argmin(dim, keepdim)), reduceRef(X, [dim], argOf((a, b) => a < b), keepdim).data);
      });
    }
  }

  test('argmax/argmin without dim index the flattened tensor', () => {
    const x = xt();
    const am = x.argmax();
    assert.deepEqual(am.shape, []);
    assert.equal(am.item(), argOf((a, b) => a > b)(X.data));
    assert.equal(x.argmin().item(), argOf((a, b) => a < b)(X.data));
  });

  test('ties: max(dim) and argmax return the first occurrence', () => {
    const x = tensor([[1, 3, 3, 0], [2, 2, 1, 2]]);
    const [v, i] = x.max(1);
    assert.deepEqual(flat(v), [3, 2]);
    assert.deepEqual(flat(i), [1, 0]);
    assert.deepEqual(flat(x.argmax(1)), [1, 0]);
  });
});

describe('softmax / logSoftmax / cumsum', () => {
  const softmaxRef = (x: Arr, dim: number): number[] => {
    // numerically exact in float64 for these small values
    const nd = x.shape.length;
    const d = dim < 0 ? dim + nd : dim;
    const st = strides(x.shape);
    return x.data.map((v, i) => {
      const idx = unravel(i, x.shape);
      let z = 0;
      for (let k = 0; k < x.shape[d]!; k++) z += Math.exp(x.data[i + (k - idx[d]!) * st[d]!]!);
      return Math.exp(v) / z;
    });
  };
  for (const dim of [0, 1, 2, -1]) {
    test(`softmax and logSoftmax over dim ${dim}`, () => {
      const ref = softmaxRef(X, dim);
      const s = xt().softmax(dim);
      assert.deepEqual(s.shape, X.shape);
      assertClose(s, ref, 1e-7, 1e-5, 'softmax');
      assertClose(softmax(xt('float64'), dim), ref, 1e-14, 1e-12, 'softmax float64');
      assertClose(xt().logSoftmax(dim), ref.map(Math.log), 1e-5, 1e-5, 'logSoftmax');
      assertClose(xt('float64').logSoftmax(dim), ref.map(Math.log), 1e-12, 1e-12, 'logSoftmax float64');
    });
  }

  test('softmax is stable for large logits and handles -inf', () => {
    assertClose(tensor([1000, 1001, 1002]).softmax(0), softmaxRef({ shape: [3], data: [0, 1, 2] }, 0), 1e-7, 1e-5);
    assertClose(tensor([0, -Infinity, 0]).softmax(0), [0.5, 0, 0.5], 0, 0);
    assertClose(tensor([1000, 1001, 1002]).logSoftmax(0), softmaxRef({ shape: [3], data: [0, 1, 2] }, 0).map(Math.log), 1e-5, 1e-5);
  });

  test('softmax with a dtype option computes in that dtype', () => {
    const s = tensor([1, 2, 3], { dtype: 'float16' }).softmax(0, 'float32');
    assert.equal(s.dtype, 'float32');
    assertClose(s, softmaxRef({ shape: [3], data: [1, 2, 3] }, 0), 1e-7, 1e-6);
  });

  test('cumsum over each dim', () => {
    for (const dim of [0, 1, 2]) {
      const st = strides(X.shape);
      const ref = X.data.map((_, i) => {
        const idx = unravel(i, X.shape);
        let s = 0;
        for (let k = 0; k <= idx[dim]!; k++) s += X.data[i + (k - idx[dim]!) * st[dim]!]!;
        return s;
      });
      assertClose(xt().cumsum(dim), ref, 1e-5, 1e-5, `cumsum dim ${dim}`);
    }
    const ic = tensor([1, 2, 3, 4], { dtype: 'int64' }).cumsum(0);
    assert.equal(ic.dtype, 'int64');
    assert.deepEqual(flat(ic), [1, 3, 6, 10]);
    assert.deepEqual(flat(tensor([[1, 2], [3, 4]]).cumsum(-1)), [1, 3, 3, 7]);
  });
});

describe('matrix products', () => {
  const A = pseudoRandom(12, 11), B = pseudoRandom(20, 12);

  test('matmul 2D', () => {
    const a = tensor(A).reshape(3, 4), b = tensor(B).reshape(4, 5);
    const c = matmul(a, b);
    assert.deepEqual(c.shape, [3, 5]);
    assertClose(c, mm(A, B, 3, 4, 5), 1e-6, 1e-5);
    assertClose(tensor([[1, 2], [3, 4]]).matmul(tensor([[5, 6], [7, 8]])), [19, 22, 43, 50], 0, 0);
  });

  test('matmul vector cases', () => {
    const m = tensor([[1, 2, 3], [4, 5, 6]]);
    const v3 = tensor([1, 0, -1]);
    const mv = m.matmul(v3);
    assert.deepEqual(mv.shape, [2]);
    assert.deepEqual(flat(mv), [-2, -2]);
    const vm = tensor([1, -1]).matmul(m);
    assert.deepEqual(vm.shape, [3]);
    assert.deepEqual(flat(vm), [-3, -3, -3]);
    const dot = v3.matmul(tensor([2, 3, 4]));
    assert.deepEqual(dot.shape, []);
    assert.equal(dot.item(), -2);
  });

  test('batched matmul broadcasts batch dims: [2,1,3,4] @ [3,4,5] -> [2,3,3,5]', () => {
    const AD = pseudoRandom(2 * 3 * 4, 21), BD = pseudoRandom(3 * 4 * 5, 22);
    const a = tensor(AD).reshape(2, 1, 3, 4);
    const b = tensor(BD).reshape(3, 4, 5);
    const c = a.matmul(b);
    assert.deepEqual(c.shape, [2, 3, 3, 5]);
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
      expected.push(...mm(AD.slice(i * 12, i * 12 + 12), BD.slice(j * 20, j * 20 + 20), 3, 4, 5));
    }
    assertClose(c, expected, 1e-6, 1e-5);
    // a batched matrix times a plain matrix
    const c2 = tensor(BD).reshape(3, 4, 5).matmul(tensor(pseudoRandom(10, 23)).reshape(5, 2));
    assert.deepEqual(c2.shape, [3, 4, 2]);
    const e2: number[] = [];
    for (let j = 0; j < 3; j++) e2.push(...mm(BD.slice(j * 20, j * 20 + 20), pseudoRandom(10, 23), 4, 5, 2));
    assertClose(c2, e2, 1e-6, 1e-5);
  });

  test('matmul on transposed (non-contiguous) operands', () => {
    const a = tensor(A).reshape(4, 3).transpose(0, 1); // [3,4], a[i][p] = A[p*3+i]
    const at: number[] = [];
    for (let i = 0; i < 3; i++) for (let p = 0; p < 4; p++) at.push(A[p * 3 + i]!);
    assertClose(a.matmul(tensor(B).reshape(4, 5)), mm(at, B, 3, 4, 5), 1e-6, 1e-5);
  });

  test('bmm', () => {
    const AD = pseudoRandom(2 * 3 * 4, 31), BD = pseudoRandom(2 * 4 * 2, 32);
    const c = bmm(tensor(AD).reshape(2, 3, 4), tensor(BD).reshape(2, 4, 2));
    assert.deepEqual(c.shape, [2, 3, 2]);
    assertClose(c, [...mm(AD.slice(0, 12), BD.slice(0, 8), 3, 4, 2), ...mm(AD.slice(12), BD.slice(8), 3, 4, 2)], 1e-6, 1e-5);
    assert.throws(() => bmm(tensor(AD).reshape(2, 3, 4), tensor(BD).reshape(4, 4)));
  });

  test('linear with and without bias (weight is [out, in])', () => {
    const x = pseudoRandom(2 * 3 * 4, 41), w = pseudoRandom(5 * 4, 42), bias = pseudoRandom(5, 43);
    const wT: number[] = [];
    for (let i = 0; i < 4; i++) for (let o = 0; o < 5; o++) wT.push(w[o * 4 + i]!);
    const ref = mm(x, wT, 6, 4, 5);
    const y = linear(tensor(x).reshape(2, 3, 4), tensor(w).reshape(5, 4));
    assert.deepEqual(y.shape, [2, 3, 5]);
    assertClose(y, ref, 1e-6, 1e-5);
    const yb = linear(tensor(x).reshape(2, 3, 4), tensor(w).reshape(5, 4), tensor(bias));
    assertClose(yb, ref.map((v, i) => v + bias[i % 5]!), 1e-6, 1e-5);
    assertClose(linear(tensor(x).reshape(6, 4), tensor(w).reshape(5, 4), null), ref, 1e-6, 1e-5);
  });

  test('baddbmm: beta * input + alpha * (b1 @ b2), input broadcast', () => {
    const b1 = pseudoRandom(2 * 2 * 3, 51), b2 = pseudoRandom(2 * 3 * 4, 52), inp = pseudoRandom(2 * 4, 53);
    const prod = [...mm(b1.slice(0, 6), b2.slice(0, 12), 2, 3, 4), ...mm(b1.slice(6), b2.slice(12), 2, 3, 4)];
    const inpB = [...inp, ...inp];
    const t1 = tensor(b1).reshape(2, 2, 3), t2 = tensor(b2).reshape(2, 3, 4);
    const y = baddbmm(tensor(inp).reshape(2, 4), t1, t2);
    assert.deepEqual(y.shape, [2, 2, 4]);
    assertClose(y, prod.map((p, i) => inpB[i]! + p), 1e-6, 1e-5);
    const y2 = baddbmm(tensor(inp).reshape(2, 4), t1, t2, 0.5, -2);
    assertClose(y2, prod.map((p, i) => 0.5 * inpB[i]! - 2 * p), 1e-6, 1e-5);
    // beta = 0 ignores the input entirely (even NaN), as in PyTorch
    const y3 = baddbmm(tensor([NaN]).reshape(1, 1, 1).expand(2, 2, 4), t1, t2, 0, 1);
    assertClose(y3, prod, 1e-6, 1e-5);
  });
});
