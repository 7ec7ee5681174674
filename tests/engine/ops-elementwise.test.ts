// Elementwise ops: arithmetic with broadcasting and scalars, PyTorch's type promotion, unary math and
// activations, clamp/lerp/where/maskedFill, comparisons and in-place ops. Expected values are
// computed here from the definitions (Math.* in float64), never read back from the engine.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, zeros, ones, arange, where, lerp, type Tensor, type DType } from '../../src/engine/index.js';
import { assertClose } from '../helpers.js';

const flat = (t: Tensor) => t.toFlatArray();

/** erf by its Maclaurin series (accurate to ~1e-13 for |x| <= 3.5). */
function erf(x: number): number {
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

// Values exactly representable in float32, on both sides of 0.
const XS = [-3, -2.5, -1.25, -0.5, -0.125, 0, 0.25, 0.75, 1.5, 3];
const POS = [0.125, 0.5, 1, 2, 7.5, 100];

describe('arithmetic and broadcasting', () => {
  test('add/sub/mul/div broadcast [2,3] with [3]', () => {
    const a = tensor([[1, 2, 3], [4, 5, 6]]);
    const b = tensor([10, 20, 40]);
    assert.deepEqual(a.add(b).shape, [2, 3]);
    assert.deepEqual(flat(a.add(b)), [11, 22, 43, 14, 25, 46]);
    assert.deepEqual(flat(a.sub(b)), [-9, -18, -37, -6, -15, -34]);
    assert.deepEqual(flat(a.mul(b)), [10, 40, 120, 40, 100, 240]);
    assertClose(a.div(b), [0.1, 0.1, 0.075, 0.4, 0.25, 0.15], 0, 1e-7);
    assert.deepEqual(flat(b.sub(a)), [9, 18, 37, 6, 15, 34]);
  });

  test('outer broadcast [2,1] * [1,3] and [3,1,2] + [4,1]', () => {
    const col = tensor([[1], [2]]);
    const row = tensor([[3, 4, 5]]);
    const p = col.mul(row);
    assert.deepEqual(p.shape, [2, 3]);
    assert.deepEqual(p.toArray(), [[3, 4, 5], [6, 8, 10]]);
    const a = arange(6, undefined, 1, { dtype: 'float32' }).reshape(3, 1, 2); // [[[0,1]],[[2,3]],[[4,5]]]
    const b = tensor([[0], [10], [20], [30]]);
    const s = a.add(b);
    assert.deepEqual(s.shape, [3, 4, 2]);
    const expected: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 2; k++) expected.push(2 * i + k + 10 * j);
    assert.deepEqual(flat(s), expected);
  });

  test('incompatible shapes throw', () => {
    assert.throws(() => tensor([1, 2, 3]).add(tensor([1, 2])));
  });

  test('scalars on either side (numbers and 0-dim tensors)', () => {
    const x = tensor([1, -2, 0.5]);
    assert.deepEqual(flat(x.add(2)), [3, 0, 2.5]);
    assert.deepEqual(flat(x.sub(1.5)), [-0.5, -3.5, -1]);
    assert.deepEqual(flat(x.mul(-2)), [-2, 4, -1]);
    assert.deepEqual(flat(x.div(4)), [0.25, -0.5, 0.125]);
    // scalar on the left: a 0-dim tensor
    const ten = tensor(10);
    assert.deepEqual(ten.shape, []);
    assert.deepEqual(flat(ten.sub(x)), [9, 12, 9.5]);
    assert.deepEqual(flat(ten.div(x)), [10, -5, 20]);
    assert.deepEqual(ten.sub(x).shape, [3]);
    // alpha: x + alpha * y
    assert.deepEqual(flat(x.add(tensor([1, 1, 1]), 3)), [4, 1, 3.5]);
    assert.deepEqual(flat(x.add(2, 3)), [7, 4, 6.5]);
  });

  test('remainder and floorDivide follow Python (floor) semantics; int/int div is true division', () => {
    assert.deepEqual(flat(tensor([-7, 7, -7.5, 7.5]).remainder(3)), [2, 1, 1.5, 1.5]);
    assert.deepEqual(flat(tensor([-7, 7, 5]).remainder(-3)), [-1, -2, -1]);
    const fd = tensor([-7, 7, 6], { dtype: 'int64' }).floorDivide(2);
    assert.equal(fd.dtype, 'int64');
    assert.deepEqual(flat(fd), [-4, 3, 3]);
    const q = tensor([7, -7], { dtype: 'int64' }).div(2);
    assert.equal(q.dtype, 'float32');
    assert.deepEqual(flat(q), [3.5, -3.5]);
  });

  test('maximum / minimum / atan2 / pow', () => {
    const a = tensor([[1, 5], [-3, 0]]);
    const b = tensor([2, -1]);
    assert.deepEqual(flat(a.maximum(b)), [2, 5, 2, 0]);
    assert.deepEqual(flat(a.minimum(b)), [1, -1, -3, -1]);
    assert.deepEqual(flat(a.maximum(0)), [1, 5, 0, 0]);
    const y = [1, -1, 0.5, -2], xv = [1, 1, -0.25, -3];
    assertClose(tensor(y).atan2(tensor(xv)), y.map((v, i) => Math.atan2(v, xv[i]!)), 1e-6, 1e-6);
    assert.deepEqual(flat(tensor([1, 2, 3, -2]).pow(2)), [1, 4, 9, 4]);
    assertClose(tensor(POS).pow(0.5), POS.map(Math.sqrt), 1e-6, 1e-6);
    assertClose(tensor(POS).pow(-1.5), POS.map((v) => v ** -1.5), 1e-7, 1e-6);
    assertClose(tensor([2, 3, 0.5]).pow(tensor([3, 2, -2])), [8, 9, 4], 0, 1e-6);
    // broadcast exponent
    assert.deepEqual(flat(tensor([[2], [3]]).pow(tensor([0, 1, 2]))), [1, 2, 4, 1, 3, 9]);
    const ip = tensor([1, 2, 3], { dtype: 'int64' }).pow(2);
    assert.equal(ip.dtype, 'int64');
    assert.deepEqual(flat(ip), [1, 4, 9]);
    assert.equal(tensor([1, 4], { dtype: 'int64' }).pow(0.5).dtype, 'float32');
  });
});

describe('type promotion (as PyTorch)', () => {
  const cases: [string, () => Tensor, DType, number[]][] = [
    ['int64 + 2 stays int64', () => tensor([1, 2, 3], { dtype: 'int64' }).add(2), 'int64', [3, 4, 5]],
    ['int64 * 0.5 becomes float32', () => tensor([1, 2, 3], { dtype: 'int64' }).mul(0.5), 'float32', [0.5, 1, 1.5]],
    ['int32 + 2 stays int32', () => tensor([1, 2], { dtype: 'int32' }).add(2), 'int32', [3, 4]],
    ['uint8 + 10 wraps in uint8', () => tensor([250, 1], { dtype: 'uint8' }).add(10), 'uint8', [4, 11]],
    ['bool + 1 is int64', () => tensor([true, false]).add(1), 'int64', [2, 1]],
    ['bool + 1.5 is float32', () => tensor([true, false]).add(1.5), 'float32', [2.5, 1.5]],
    ['float16 + 1.5 stays float16', () => tensor([1, 2], { dtype: 'float16' }).add(1.5), 'float16', [2.5, 3.5]],
    ['bfloat16 * 2 stays bfloat16', () => tensor([1.5, -3], { dtype: 'bfloat16' }).mul(2), 'bfloat16', [3, -6]],
    ['float32 + float64 0-dim stays float32', () => tensor([1, 2]).add(tensor(0.5, { dtype: 'float64' })), 'float32', [1.5, 2.5]],
    ['float64 0-dim + float32 stays float32', () => tensor(0.5, { dtype: 'float64' }).add(tensor([1, 2])), 'float32', [1.5, 2.5]],
    ['int64 + float64 0-dim is float64 (higher category)', () => tensor([1, 2], { dtype: 'int64' }).add(tensor(0.5, { dtype: 'float64' })), 'float64', [1.5, 2.5]],
    ['int64 + float16 0-dim is float16', () => tensor([1, 2], { dtype: 'int64' }).add(tensor(0.5, { dtype: 'float16' })), 'float16', [1.5, 2.5]],
    ['int32 + int64 0-dim stays int32', () => tensor([1, 2], { dtype: 'int32' }).add(tensor(5, { dtype: 'int64' })), 'int32', [6, 7]],
    ['int32 * int64 [1] is int64', () => tensor([1, 2], { dtype: 'int32' }).mul(tensor([3], { dtype: 'int64' })), 'int64', [3, 6]],
    ['float32 + float64 (same rank) is float64', () => tensor([1, 2]).add(tensor([0.25, 0.5], { dtype: 'float64' })), 'float64', [1.25, 2.5]],
    ['float16 + float32 is float32', () => tensor([1], { dtype: 'float16' }).add(tensor([0.5])), 'float32', [1.5]],
    ['bfloat16 + float16 is float32', () => tensor([1], { dtype: 'bfloat16' }).add(tensor([0.5], { dtype: 'float16' })), 'float32', [1.5]],
  ];
  for (const [name, make, dtype, values] of cases) {
    test(name, () => {
      const r = make();
      assert.equal(r.dtype, dtype);
      assert.deepEqual(flat(r), values);
    });
  }

  test('comparisons give bool; int64 < 2.5 compares as real numbers', () => {
    const r = tensor([1, 2, 3], { dtype: 'int64' }).lt(2.5);
    assert.equal(r.dtype, 'bool');
    assert.deepEqual(flat(r), [1, 1, 0]);
  });

  test('in-place ops cannot change the dtype: int64.mul_(0.5) throws', () => {
    assert.throws(() => tensor([1, 2], { dtype: 'int64' }).mul_(0.5), /can't be cast|cast/);
  });
});

describe('unary math and activations', () => {
  const unary: [string, (t: Tensor) => Tensor, (x: number) => number, number[]][] = [
    ['neg', (t) => t.neg(), (x) => -x, XS],
    ['abs', (t) => t.abs(), Math.abs, XS],
    ['exp', (t) => t.exp(), Math.exp, XS],
    ['expm1', (t) => t.expm1(), Math.expm1, XS],
    ['log', (t) => t.log(), Math.log, POS],
    ['log1p', (t) => t.log1p(), Math.log1p, POS],
    ['sqrt', (t) => t.sqrt(), Math.sqrt, POS],
    ['rsqrt', (t) => t.rsqrt(), (x) => 1 / Math.sqrt(x), POS],
    ['sin', (t) => t.sin(), Math.sin, XS],
    ['cos', (t) => t.cos(), Math.cos, XS],
    ['tanh', (t) => t.tanh(), Math.tanh, XS],
    ['sigmoid', (t) => t.sigmoid(), sigmoid, XS],
    ['silu', (t) => t.silu(), (x) => x * sigmoid(x), XS],
    ['relu', (t) => t.relu(), (x) => Math.max(0, x), XS],
    ['gelu exact', (t) => t.gelu(), (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), XS],
    ['gelu tanh', (t) => t.gelu('tanh'), (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))), XS],
    ['quickGelu', (t) => t.quickGelu(), (x) => x * sigmoid(1.702 * x), XS],
    ['square', (t) => t.square(), (x) => x * x, XS],
    ['reciprocal', (t) => t.reciprocal(), (x) => 1 / x, POS],
    ['erf', (t) => t.erf(), erf, XS],
    ['floor', (t) => t.floor(), Math.floor, XS],
    ['ceil', (t) => t.ceil(), Math.ceil, XS],
    ['trunc', (t) => t.trunc(), Math.trunc, XS],
    ['sign', (t) => t.sign(), Math.sign, XS],
  ];
  for (const [name, op, ref, xs] of unary) {
    test(`${name} float32 and float64`, () => {
      const expected = xs.map(ref);
      const y32 = op(tensor(xs));
      assert.equal(y32.dtype, 'float32');
      assertClose(y32, expected, 1e-6, 2e-6, `${name} float32`);
      const y64 = op(tensor(xs, { dtype: 'float64' }));
      assert.equal(y64.dtype, 'float64');
      assertClose(y64, expected, 1e-12, 1e-12, `${name} float64`);
    });
  }

  test('round is half-to-even', () => {
    assert.deepEqual(flat(tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6]).round()), [0, 2, 2, -0, -2, 2, 3]);
  });

  test('special values: log(0), sqrt(-1), exp(-inf), sigmoid(+-inf), isfinite/isnan', () => {
    assert.deepEqual(flat(tensor([0]).log()), [-Infinity]);
    assert.ok(Number.isNaN(flat(tensor([-1]).sqrt())[0]));
    assert.deepEqual(flat(tensor([-Infinity, Infinity]).exp()), [0, Infinity]);
    assert.deepEqual(flat(tensor([-Infinity, Infinity]).sigmoid()), [0, 1]);
    const v = tensor([1, Infinity, -Infinity, NaN]);
    assert.deepEqual(flat(v.isfinite()), [1, 0, 0, 0]);
    assert.deepEqual(flat(v.isnan()), [0, 0, 0, 1]);
    assert.equal(v.isnan().dtype, 'bool');
  });

  test('unary ops on a non-contiguous view', () => {
    const m = tensor([[1, 2, 3], [4, 5, 6]]).transpose(0, 1); // [[1,4],[2,5],[3,6]]
    assert.deepEqual(flat(m.square()), [1, 16, 4, 25, 9, 36]);
  });
});

describe('clamp, lerp, where, maskedFill', () => {
  test('clamp with min, max, both', () => {
    const x = tensor([-2, -0.5, 0, 0.5, 2]);
    assert.deepEqual(flat(x.clamp(-1, 1)), [-1, -0.5, 0, 0.5, 1]);
    assert.deepEqual(flat(x.clamp(0)), [0, 0, 0, 0.5, 2]);
    assert.deepEqual(flat(x.clamp(null, 0.25)), [-2, -0.5, 0, 0.25, 0.25]);
    assert.deepEqual(flat(x.clamp(undefined, 0.25)), [-2, -0.5, 0, 0.25, 0.25]);
    assert.throws(() => x.clamp());
    const i = tensor([1, 5, 9], { dtype: 'int64' });
    assert.equal(i.clamp(2, 6).dtype, 'int64');
    assert.deepEqual(flat(i.clamp(2, 6)), [2, 5, 6]);
    assert.equal(i.clamp(2.5, 6).dtype, 'float32');
    assert.deepEqual(flat(i.clamp(2.5, 6)), [2.5, 5, 6]);
  });

  test('lerp with a scalar weight and a broadcast tensor weight', () => {
    const a = tensor([[0, 1], [2, 3]]);
    const b = tensor([[4, 5], [-2, 11]]);
    assert.deepEqual(flat(a.lerp(b, 0.25)), [1, 2, 1, 5]);
    assert.deepEqual(flat(lerp(a, b, 0)), [0, 1, 2, 3]);
    assert.deepEqual(flat(lerp(a, b, 1)), [4, 5, -2, 11]);
    const w = tensor([0.5, 0.75]);
    const r = a.lerp(b, w);
    // a + w * (b - a) with w broadcast along rows
    const av = [0, 1, 2, 3], bv = [4, 5, -2, 11], wv = [0.5, 0.75, 0.5, 0.75];
    assertClose(r, av.map((x, i) => x + wv[i]! * (bv[i]! - x)), 1e-6, 1e-6);
    // extrapolation: weight outside [0, 1]
    assertClose(a.lerp(b, 1.5), av.map((x, i) => x + 1.5 * (bv[i]! - x)), 1e-6, 1e-6);
  });

  test('where with tensor and number branches, broadcasting the condition', () => {
    const c = tensor([[true], [false]]);
    const a = tensor([[1, 2, 3], [4, 5, 6]]);
    const b = tensor([-1, -2, -3]);
    assert.deepEqual(flat(where(c, a, b)), [1, 2, 3, -1, -2, -3]);
    assert.deepEqual(flat(where(c, a, 0)), [1, 2, 3, 0, 0, 0]);
    assert.deepEqual(flat(where(c, 9, b)), [9, 9, 9, -1, -2, -3]);
    const nn = where(tensor([true, false, true]), 1, 0);
    assert.equal(nn.dtype, 'int64');
    assert.deepEqual(flat(nn), [1, 0, 1]);
    const nf = where(tensor([true, false]), 0.5, 2);
    assert.equal(nf.dtype, 'float32');
    assert.deepEqual(flat(nf), [0.5, 2]);
    // a number branch does not upcast a float64 tensor branch, nor an int tensor to float64
    assert.equal(where(tensor([true, false]), tensor([1, 2], { dtype: 'float64' }), 3).dtype, 'float64');
    assert.equal(where(tensor([true, false]), tensor([1, 2], { dtype: 'int64' }), 0.5).dtype, 'float32');
    // a condition from a comparison
    const x = tensor([-1, 2, -3, 4]);
    assert.deepEqual(flat(where(x.gt(0), x, x.mul(0.5))), [-0.5, 2, -1.5, 4]);
  });

  test('maskedFill with a broadcast mask', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const mask = tensor([true, false, true]);
    assert.deepEqual(flat(x.maskedFill(mask, -Infinity)), [-Infinity, 2, -Infinity, -Infinity, 5, -Infinity]);
    assert.deepEqual(flat(x.maskedFill(tensor([[false], [true]]), 0.5)), [1, 2, 3, 0.5, 0.5, 0.5]);
    const i = tensor([1, 2, 3], { dtype: 'int64' }).maskedFill(tensor([true, false, true]), 7);
    assert.equal(i.dtype, 'int64');
    assert.deepEqual(flat(i), [7, 2, 7]);
    assert.deepEqual(flat(x), [1, 2, 3, 4, 5, 6], 'maskedFill is out of place');
  });
});

describe('comparisons and logical ops', () => {
  const a = () => tensor([1, 2, 3, 4]);
  const b = () => tensor([4, 2, 1, 4]);
  const cmp: [string, (x: Tensor, y: Tensor | number) => Tensor, number[], number[]][] = [
    ['eq', (x, y) => x.eq(y), [0, 1, 0, 1], [0, 0, 1, 0]],
    ['ne', (x, y) => x.ne(y), [1, 0, 1, 0], [1, 1, 0, 1]],
    ['lt', (x, y) => x.lt(y), [1, 0, 0, 0], [1, 1, 0, 0]],
    ['le', (x, y) => x.le(y), [1, 1, 0, 1], [1, 1, 1, 0]],
    ['gt', (x, y) => x.gt(y), [0, 0, 1, 0], [0, 0, 0, 1]],
    ['ge', (x, y) => x.ge(y), [0, 1, 1, 1], [0, 0, 1, 1]],
  ];
  for (const [name, op, vsTensor, vsThree] of cmp) {
    test(name, () => {
      const r = op(a(), b());
      assert.equal(r.dtype, 'bool');
      assert.deepEqual(flat(r), vsTensor);
      assert.deepEqual(flat(op(a(), 3)), vsThree);
    });
  }

  test('comparison broadcasting and against a bool', () => {
    assert.deepEqual(flat(tensor([[1], [3]]).lt(tensor([2, 3]))), [1, 1, 0, 0]);
    assert.deepEqual(flat(tensor([true, false]).eq(true)), [1, 0]);
    assert.deepEqual(flat(tensor([NaN, 1]).eq(tensor([NaN, 1]))), [0, 1]);
  });

  test('logicalAnd / logicalOr / logicalNot', () => {
    const p = tensor([true, true, false, false]);
    const q = tensor([true, false, true, false]);
    assert.deepEqual(flat(p.logicalAnd(q)), [1, 0, 0, 0]);
    assert.deepEqual(flat(p.logicalOr(q)), [1, 1, 1, 0]);
    assert.deepEqual(flat(p.logicalNot()), [0, 0, 1, 1]);
    assert.deepEqual(flat(p.logicalAnd(false)), [0, 0, 0, 0]);
    assert.deepEqual(flat(tensor([0, 2, -1]).logicalNot()), [1, 0, 0]);
  });
});

describe('in-place ops', () => {
  test('add_/sub_/mul_/div_ with broadcasting return this and change the values', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const r = x.add_(tensor([10, 20, 30]));
    assert.equal(r, x);
    assert.deepEqual(flat(x), [11, 22, 33, 14, 25, 36]);
    x.sub_(1).mul_(tensor([[2], [0.5]])).div_(2);
    assert.deepEqual(flat(x), [10, 21, 32, 3.25, 6, 8.75]);
  });

  test('in-place ops write through views into the base tensor', () => {
    const base = zeros([3, 4]);
    base.narrow(1, 1, 2).add_(5);
    base.select(0, 2).fill_(-1);
    assert.deepEqual(base.toArray(), [[0, 5, 5, 0], [0, 5, 5, 0], [-1, -1, -1, -1]]);
    base.transpose(0, 1).select(0, 0).mul_(0).add_(tensor([7, 8, 9]));
    assert.deepEqual(base.toArray(), [[7, 5, 5, 0], [8, 5, 5, 0], [9, -1, -1, -1]]);
  });

  test('int tensors stay int under add_ of an integer; the in-place result cannot broadcast the target', () => {
    const i = tensor([1, 2], { dtype: 'int64' });
    i.add_(3);
    assert.equal(i.dtype, 'int64');
    assert.deepEqual(flat(i), [4, 5]);
    assert.throws(() => tensor([1, 2, 3]).add_(tensor([[1, 2, 3], [4, 5, 6]])));
  });

  test('copy_ broadcasts and converts dtype', () => {
    const dst = zeros([2, 3]);
    dst.copy_(tensor([1, 2, 3], { dtype: 'int64' }));
    assert.equal(dst.dtype, 'float32');
    assert.deepEqual(dst.toArray(), [[1, 2, 3], [1, 2, 3]]);
    dst.copy_(tensor([[0.5], [-0.25]], { dtype: 'float64' }));
    assert.deepEqual(dst.toArray(), [[0.5, 0.5, 0.5], [-0.25, -0.25, -0.25]]);
    const idst = zeros([4], { dtype: 'int32' });
    idst.copy_(tensor([2.7, -2.7, 0.2, 9.99]));
    assert.deepEqual(flat(idst), [2, -2, 0, 9], 'float to int truncates toward zero');
    const hdst = zeros([2], { dtype: 'bfloat16' });
    hdst.copy_(tensor([1 / 3, 1], { dtype: 'float64' }));
    assert.deepEqual(flat(hdst), [0.333984375, 1]);
    const src = tensor([1, 2, 3, 4]);
    const d2 = zeros([4]);
    d2.copy_(src);
    src.fill_(0);
    assert.deepEqual(flat(d2), [1, 2, 3, 4], 'copy_ copies, it does not alias');
  });

  test('fill_ and zero_', () => {
    const x = ones([2, 2]);
    assert.equal(x.fill_(2.5), x);
    assert.deepEqual(flat(x), [2.5, 2.5, 2.5, 2.5]);
    assert.equal(x.zero_(), x);
    assert.deepEqual(flat(x), [0, 0, 0, 0]);
    const b = zeros([3], { dtype: 'bool' }).fill_(true);
    assert.deepEqual(flat(b), [1, 1, 1]);
    const i = zeros([2], { dtype: 'int64' }).fill_(-7);
    assert.deepEqual(flat(i), [-7, -7]);
  });
});

test('functional arithmetic with a number on the left: 2 - x, 1 / x, 2 ** x, int promotion', async () => {
  const F = await import('../../src/engine/index.js');
  const x = F.tensor([1, 2, 4]);
  assert.deepEqual(F.sub(2, x).toFlatArray(), [1, 0, -2]);
  assert.deepEqual(F.div(1, x).toFlatArray(), [1, 0.5, 0.25]);
  assert.deepEqual(F.pow(2, x).toFlatArray(), [2, 4, 16]);
  const i = F.tensor([1, 2], { dtype: 'int64' });
  assert.equal(F.sub(10, i).dtype, 'int64');
  assert.equal(F.mul(0.5, i).dtype, 'float32');
  assert.deepEqual(F.mul(0.5, i).toFlatArray(), [0.5, 1]);
  assert.throws(() => F.add(1, 2), /at least one operand must be a tensor/);
});
