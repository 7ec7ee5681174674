// Creation, dtypes, shape/indexing ops, conversions, reading data back, and seeded generators.
// Seeded draws are compared with values printed by Python PyTorch (tests/fixtures/ops-reference.json).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  tensor, fromTypedArray, zeros, ones, full, arange, linspace, zerosLike, onesLike, fullLike, randn, rand, randint,
  randnLike, cat, stack, Generator, manualSeed, Tensor, type DType,
} from '../../src/engine/index.js';
import { assertClose } from '../helpers.js';

const flat = (t: Tensor) => t.toFlatArray();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const fixture = JSON.parse(readFileSync(path.join(root, 'tests', 'fixtures', 'ops-reference.json'), 'utf8')) as {
  random: Record<string, number[] | number[][] | number[][][]>;
};

// a [2,3,4] tensor holding 0..23
const a234 = () => arange(24, undefined, 1, { dtype: 'float32' }).reshape(2, 3, 4);
/** Reference for a permutation of a [2,3,4] tensor holding 0..23. */
function permuteRef(dims: number[]): number[] {
  const shape = [2, 3, 4], st = [12, 4, 1];
  const os = dims.map((d) => shape[d]!);
  const out: number[] = [];
  for (let i = 0; i < os[0]!; i++) for (let j = 0; j < os[1]!; j++) for (let k = 0; k < os[2]!; k++) {
    out.push(i * st[dims[0]!]! + j * st[dims[1]!]! + k * st[dims[2]!]!);
  }
  return out;
}

describe('creation', () => {
  test('tensor(): nested arrays, scalars, booleans, default float32', () => {
    const t = tensor([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, 'float32');
    assert.equal(t.device, 'cpu');
    assert.equal(t.ndim, 2);
    assert.equal(t.numel, 6);
    assert.equal(t.size(1), 3);
    assert.equal(t.size(-2), 2);
    assert.throws(() => t.size(2), RangeError);
    assert.deepEqual(flat(t), [1, 2, 3, 4, 5, 6]);
    const s = tensor(2.5);
    assert.deepEqual(s.shape, []);
    assert.equal(s.item(), 2.5);
    const b = tensor([[true, false]]);
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(flat(b), [1, 0]);
    assert.deepEqual(tensor([[[1], [2]]]).shape, [1, 2, 1]);
    assert.deepEqual(tensor([]).shape, [0]);
    assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
    assert.throws(() => tensor([[1, 2], 3] as never), /ragged/);
  });

  test('tensor() with an explicit dtype and requiresGrad', () => {
    const t = tensor([1.7, -2.2], { dtype: 'int64' });
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(flat(t), [1, -2]);
    const g = tensor([1, 2], { requiresGrad: true });
    assert.equal(g.requiresGrad, true);
    assert.equal(tensor([1, 2]).requiresGrad, false);
  });

  test('fromTypedArray: the array type picks the dtype; shape; offsets; conversion', () => {
    const cases: [ArrayBufferView & ArrayLike<number | bigint>, DType][] = [
      [new Float32Array([1.5, -2, 3, 4]), 'float32'],
      [new Float64Array([1.5, -2, 3, 4]), 'float64'],
      [new BigInt64Array([1n, -2n, 3n, 4n]), 'int64'],
      [new Int32Array([1, -2, 3, 4]), 'int32'],
      [new Int16Array([1, -2, 3, 4]), 'int16'],
      [new Int8Array([1, -2, 3, 4]), 'int8'],
      [new Uint8Array([1, 254, 3, 4]), 'uint8'],
    ];
    for (const [arr, dtype] of cases) {
      const t = fromTypedArray(arr as never, [2, 2]);
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.shape, [2, 2]);
      assert.deepEqual(flat(t), Array.from(arr as ArrayLike<number | bigint>, Number));
      // tensor() on a typed array: 1-D of the same dtype
      assert.equal(tensor(arr as never).dtype, dtype);
    }
    // a subarray view: starts at its byteOffset
    const sub = new Float32Array([0, 1, 2, 3, 4, 5]).subarray(2, 5);
    assert.deepEqual(flat(fromTypedArray(sub, [3])), [2, 3, 4]);
    // the data is copied once: later writes to the array do not show
    const src = new Float32Array([1, 2]);
    const t = fromTypedArray(src, [2]);
    src[0] = 100;
    assert.deepEqual(flat(t), [1, 2]);
    // conversion on the way in
    const h = fromTypedArray(new Float64Array([1 / 3]), [1], { dtype: 'bfloat16' });
    assert.equal(h.dtype, 'bfloat16');
    assert.deepEqual(flat(h), [0.333984375]);
    assert.throws(() => fromTypedArray(new Float32Array(5), [2, 2]), /bytes/);
    assert.deepEqual(fromTypedArray(new Float32Array(0), [0, 3]).shape, [0, 3]);
  });

  test('zeros / ones / full / *Like', () => {
    assert.deepEqual(zeros([2, 3]).toArray(), [[0, 0, 0], [0, 0, 0]]);
    assert.equal(zeros([2]).dtype, 'float32');
    assert.deepEqual(flat(ones([3], { dtype: 'int64' })), [1, 1, 1]);
    assert.equal(ones([3], { dtype: 'int64' }).dtype, 'int64');
    assert.deepEqual(full([2, 2], -1.25).toArray(), [[-1.25, -1.25], [-1.25, -1.25]]);
    const fb = full([2], true);
    assert.equal(fb.dtype, 'bool');
    assert.deepEqual(flat(fb), [1, 1]);
    assert.deepEqual(flat(full([2], 7, { dtype: 'uint8' })), [7, 7]);
    assert.deepEqual(zeros([]).shape, []);
    assert.equal(ones([]).item(), 1);
    const base = tensor([[1, 2]], { dtype: 'float64' });
    const z = zerosLike(base), o = onesLike(base), f = fullLike(base, 3);
    for (const [t, v] of [[z, 0], [o, 1], [f, 3]] as [Tensor, number][]) {
      assert.equal(t.dtype, 'float64');
      assert.deepEqual(t.shape, [1, 2]);
      assert.deepEqual(flat(t), [v, v]);
    }
    assert.equal(zerosLike(base, { dtype: 'int32' }).dtype, 'int32');
  });

  test('arange: integer arguments give int64, fractional float32; negative steps', () => {
    const a = arange(5);
    assert.equal(a.dtype, 'int64');
    assert.deepEqual(flat(a), [0, 1, 2, 3, 4]);
    assert.deepEqual(flat(arange(2, 7)), [2, 3, 4, 5, 6]);
    assert.deepEqual(flat(arange(1, 10, 3)), [1, 4, 7]);
    assert.deepEqual(flat(arange(5, 0, -2)), [5, 3, 1]);
    const f = arange(0, 1, 0.25);
    assert.equal(f.dtype, 'float32');
    assert.deepEqual(flat(f), [0, 0.25, 0.5, 0.75]);
    const d = arange(3, undefined, 1, { dtype: 'float64' });
    assert.equal(d.dtype, 'float64');
    assert.deepEqual(flat(d), [0, 1, 2]);
    assert.deepEqual(arange(0).shape, [0]);
  });

  test('linspace', () => {
    assertClose(linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1], 0, 0);
    assertClose(linspace(-1, 2, 7), [-1, -0.5, 0, 0.5, 1, 1.5, 2], 1e-7, 0);
    assertClose(linspace(0, 1, 3, { dtype: 'float64' }), [0, 0.5, 1], 0, 0);
    assert.equal(linspace(0, 1, 3, { dtype: 'float64' }).dtype, 'float64');
    assert.deepEqual(flat(linspace(3, 9, 1)), [3]);
    assertClose(linspace(0, 1, 11, { dtype: 'float64' }), Array.from({ length: 11 }, (_, i) => i / 10), 1e-15, 0);
  });
});

describe('dtypes', () => {
  test('round trips through toTypedArray with the right array types', () => {
    const vals = [0, 1, -2, 3, 100];
    const expectArray: [DType, unknown][] = [
      ['float32', Float32Array], ['float16', Float32Array], ['bfloat16', Float32Array], ['float64', Float64Array],
      ['int64', BigInt64Array], ['int32', Int32Array], ['int16', Int16Array], ['int8', Int8Array],
    ];
    for (const [dtype, ctor] of expectArray) {
      const t = tensor(vals, { dtype });
      assert.equal(t.dtype, dtype);
      const ta = t.toTypedArray();
      assert.ok(ta instanceof (ctor as typeof Float32Array), `${dtype} reads back as ${(ctor as { name: string }).name}`);
      assert.deepEqual(Array.from(ta as ArrayLike<number | bigint>, Number), vals);
    }
    const u = tensor([0, 1, 200, 255], { dtype: 'uint8' });
    assert.ok(u.toTypedArray() instanceof Uint8Array);
    assert.deepEqual(flat(u), [0, 1, 200, 255]);
    const b = tensor([true, false, true]);
    assert.ok(b.toTypedArray() instanceof Uint8Array);
    assert.deepEqual(flat(b), [1, 0, 1]);
    assert.deepEqual(tensor([1, 2]).to('int64').toTypedArray(), new BigInt64Array([1n, 2n]));
  });

  test('int64 keeps 64-bit integers exactly through BigInt64Array', () => {
    const big = new BigInt64Array([9007199254740993n, -9223372036854775808n, 9223372036854775806n]);
    const t = fromTypedArray(big, [3]);
    assert.deepEqual(t.toTypedArray(), big);
    assert.deepEqual(t.add(1).toTypedArray(), new BigInt64Array([9007199254740994n, -9223372036854775807n, 9223372036854775807n]));
  });

  test('float16 and bfloat16 round to nearest even, exactly', () => {
    // bfloat16: 8 significant bits
    assert.deepEqual(flat(tensor([1 / 3], { dtype: 'bfloat16' })), [0.333984375]);
    assert.deepEqual(flat(tensor([3.14159], { dtype: 'bfloat16' })), [3.140625]);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1); 1 + 3*2^-8 ties up to 1 + 2^-6
    assert.deepEqual(flat(tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8, 256.5, -1000.1], { dtype: 'bfloat16' })), [1, 1.015625, 256, -1000]);
    // float16: 11 significant bits, max 65504, subnormals down to 2^-24
    assert.deepEqual(flat(tensor([1 / 3], { dtype: 'float16' })), [0.333251953125]);
    assert.deepEqual(flat(tensor([0.1], { dtype: 'float16' })), [0.0999755859375]);
    assert.deepEqual(flat(tensor([1 + 2 ** -11, 1 + 3 * 2 ** -11], { dtype: 'float16' })), [1, 1.001953125]);
    assert.deepEqual(flat(tensor([65504, 65520, 70000, -70000], { dtype: 'float16' })), [65504, Infinity, Infinity, -Infinity]);
    assert.deepEqual(flat(tensor([2 ** -24, 2 ** -26], { dtype: 'float16' })), [2 ** -24, 0]);
    // bfloat16 has float32's range: compare with rounding float32 bits to the top 16 (nearest even)
    const bf16 = (x: number) => {
      const u = new Uint32Array(new Float32Array([x]).buffer);
      u[0] = ((u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) & 0xffff0000) >>> 0;
      return new Float32Array(u.buffer)[0]!;
    };
    assert.equal(bf16(1 / 3), 0.333984375);
    const wide = [1e30, 1e-30, -3e38, 1.17549435e-38, 123456.789];
    assert.deepEqual(flat(tensor(wide, { dtype: 'bfloat16' })), wide.map(bf16));
    // float32 rounding of a float64 value
    assert.deepEqual(flat(tensor([0.1])), [Math.fround(0.1)]);
    assert.deepEqual(flat(tensor([0.1], { dtype: 'float64' })), [0.1]);
  });

  test('conversions: float -> int truncates, -> bool is != 0, -> uint8', () => {
    const f = tensor([2.7, -2.7, 0.5, -0.5, 0]);
    assert.deepEqual(flat(f.to('int64')), [2, -2, 0, 0, 0]);
    assert.deepEqual(flat(f.long()), [2, -2, 0, 0, 0]);
    assert.deepEqual(flat(f.to('int32')), [2, -2, 0, 0, 0]);
    assert.deepEqual(flat(f.to('bool')), [1, 1, 1, 1, 0]);
    assert.deepEqual(flat(tensor([3.9, 200.2]).to('uint8')), [3, 200]);
    assert.deepEqual(flat(tensor([true, false]).to('float32')), [1, 0]);
    const d = tensor([1 / 3]).double();
    assert.equal(d.dtype, 'float64');
    assert.deepEqual(flat(d), [Math.fround(1 / 3)]);
    assert.equal(tensor([1]).half().dtype, 'float16');
    assert.equal(tensor([1]).bfloat16().dtype, 'bfloat16');
    assert.equal(tensor([1], { dtype: 'float64' }).float().dtype, 'float32');
    assert.equal(tensor([1]).cpu().device, 'cpu');
    assert.equal(tensor([1]).to({ dtype: 'int32', device: 'cpu' }).dtype, 'int32');
  });

  test('to() without a change aliases; copy: true copies', () => {
    const x = tensor([1, 2, 3]);
    const same = x.to('float32');
    same.fill_(9);
    assert.deepEqual(flat(x), [9, 9, 9], 'to() to the same dtype returns the same storage, as in PyTorch');
    const copy = x.to({ dtype: 'float32', copy: true });
    copy.fill_(0);
    assert.deepEqual(flat(x), [9, 9, 9]);
    assert.deepEqual(flat(copy), [0, 0, 0]);
    const conv = x.to('float64');
    conv.fill_(1);
    assert.deepEqual(flat(x), [9, 9, 9], 'a dtype conversion is a new tensor');
    const cl = x.clone();
    cl.fill_(5);
    assert.deepEqual(flat(x), [9, 9, 9]);
  });
});

describe('reading data back', () => {
  test('toArray() nests like the shape', () => {
    assert.deepEqual(a234().toArray(), [
      [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]],
      [[12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22, 23]],
    ]);
    assert.equal(tensor(4).toArray(), 4);
    assert.deepEqual(tensor([[1], [2]]).toArray(), [[1], [2]]);
    assert.deepEqual(zeros([2, 0]).toArray(), [[], []]);
    assert.deepEqual(tensor([true, false]).toArray(), [1, 0]);
    // a non-contiguous view reads back in logical order
    assert.deepEqual(tensor([[1, 2, 3], [4, 5, 6]]).transpose(0, 1).toArray(), [[1, 4], [2, 5], [3, 6]]);
  });
  test('item() needs exactly one element', () => {
    assert.equal(tensor([[7]]).item(), 7);
    assert.equal(tensor([5], { dtype: 'int64' }).item(), 5);
    assert.throws(() => tensor([1, 2]).item(), /exactly one element/);
  });
});

describe('shape ops', () => {
  test('reshape / view with -1, and the same values in row-major order', () => {
    const x = a234();
    assert.deepEqual(x.reshape(4, -1).shape, [4, 6]);
    assert.deepEqual(x.reshape([6, 4]).toArray(), Array.from({ length: 6 }, (_, i) => [0, 1, 2, 3].map((j) => i * 4 + j)));
    assert.deepEqual(x.view(-1).shape, [24]);
    assert.deepEqual(flat(x.view(2, 12)), Array.from({ length: 24 }, (_, i) => i));
    assert.throws(() => x.reshape(5, -1));
    // a view shares storage
    const v = x.view(24);
    v.narrow(0, 0, 1).fill_(-1);
    assert.equal(flat(x)[0], -1);
  });

  test('permute / transpose', () => {
    for (const dims of [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0], [0, 2, 1]]) {
      const p = a234().permute(dims);
      assert.deepEqual(p.shape, dims.map((d) => [2, 3, 4][d]!));
      assert.deepEqual(flat(p), permuteRef(dims));
    }
    assert.deepEqual(flat(a234().permute(0, 2, 1)), permuteRef([0, 2, 1]));
    assert.deepEqual(flat(a234().permute(-1, 0, 1)), permuteRef([2, 0, 1]));
    assert.deepEqual(flat(a234().transpose(0, 2)), permuteRef([2, 1, 0]));
    assert.deepEqual(flat(a234().transpose(-1, -2)), permuteRef([0, 2, 1]));
  });

  test('contiguous; view of a non-contiguous tensor throws, reshape copies', () => {
    const t = a234().transpose(1, 2);
    assert.throws(() => t.view(24), /view/);
    assert.deepEqual(flat(t.reshape(24)), permuteRef([0, 2, 1]));
    const c = t.contiguous();
    assert.deepEqual(flat(c.view(24)), permuteRef([0, 2, 1]));
    assert.deepEqual(c.shape, [2, 4, 3]);
  });

  test('flatten', () => {
    assert.deepEqual(a234().flatten().shape, [24]);
    assert.deepEqual(a234().flatten(1).shape, [2, 12]);
    assert.deepEqual(a234().flatten(0, 1).shape, [6, 4]);
    assert.deepEqual(flat(a234().flatten(1)), Array.from({ length: 24 }, (_, i) => i));
    assert.deepEqual(tensor(3).flatten().shape, [1]);
  });

  test('expand and repeat', () => {
    const col = tensor([[1], [2]]);
    const e = col.expand(2, 3);
    assert.deepEqual(e.toArray(), [[1, 1, 1], [2, 2, 2]]);
    assert.deepEqual(col.expand([3, -1, 2]).toArray(), [[[1, 1], [2, 2]], [[1, 1], [2, 2]], [[1, 1], [2, 2]]]);
    assert.throws(() => tensor([1, 2]).expand(3));
    const r = tensor([[1, 2], [3, 4]]).repeat(2, 3);
    assert.deepEqual(r.toArray(), [[1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4], [1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4]]);
    assert.deepEqual(tensor([1, 2]).repeat([2, 2]).toArray(), [[1, 2, 1, 2], [1, 2, 1, 2]]);
    assert.deepEqual(tensor([1, 2]).repeat(3).toArray(), [1, 2, 1, 2, 1, 2]);
  });

  test('squeeze / unsqueeze', () => {
    const t = zeros([1, 3, 1, 2]);
    assert.deepEqual(t.squeeze().shape, [3, 2]);
    assert.deepEqual(t.squeeze(0).shape, [3, 1, 2]);
    assert.deepEqual(t.squeeze(-2).shape, [1, 3, 2]);
    assert.deepEqual(t.squeeze(1).shape, [1, 3, 1, 2], 'squeezing a dim that is not 1 does nothing');
    assert.deepEqual(t.squeeze([0, 2]).shape, [3, 2]);
    const v = tensor([1, 2, 3]);
    assert.deepEqual(v.unsqueeze(0).toArray(), [[1, 2, 3]]);
    assert.deepEqual(v.unsqueeze(1).toArray(), [[1], [2], [3]]);
    assert.deepEqual(v.unsqueeze(-1).shape, [3, 1]);
    assert.deepEqual(tensor(5).unsqueeze(0).toArray(), [5]);
  });

  test('cat', () => {
    const a = tensor([[1, 2], [3, 4]]), b = tensor([[5, 6]]), c = tensor([[7], [8]]);
    assert.deepEqual(cat([a, b]).toArray(), [[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(cat([a, c], 1).toArray(), [[1, 2, 7], [3, 4, 8]]);
    assert.deepEqual(cat([a, c, a], -1).toArray(), [[1, 2, 7, 1, 2], [3, 4, 8, 3, 4]]);
    assert.throws(() => cat([a, c], 0));
    // mixed dtypes promote
    const m = cat([tensor([1], { dtype: 'int64' }), tensor([0.5])]);
    assert.equal(m.dtype, 'float32');
    assert.deepEqual(flat(m), [1, 0.5]);
  });

  test('stack', () => {
    const a = tensor([1, 2, 3]), b = tensor([4, 5, 6]);
    assert.deepEqual(stack([a, b]).toArray(), [[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(stack([a, b], 1).toArray(), [[1, 4], [2, 5], [3, 6]]);
    assert.deepEqual(stack([a, b], -1).toArray(), [[1, 4], [2, 5], [3, 6]]);
    assert.throws(() => stack([a, tensor([1, 2])]));
  });

  test('chunk and split (a size, and a list of sizes)', () => {
    const x = arange(10, undefined, 1, { dtype: 'float32' }).reshape(5, 2);
    const ch = x.chunk(3);
    assert.deepEqual(ch.map((t) => t.shape), [[2, 2], [2, 2], [1, 2]]);
    assert.deepEqual(ch.map(flat), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    assert.deepEqual(x.chunk(2, 1).map(flat), [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]);
    const sp = x.split(2);
    assert.deepEqual(sp.map((t) => t.shape[0]), [2, 2, 1]);
    assert.deepEqual(sp.map(flat), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    const sz = x.split([1, 4]);
    assert.deepEqual(sz.map(flat), [[0, 1], [2, 3, 4, 5, 6, 7, 8, 9]]);
    assert.deepEqual(x.split([1, 1], 1).map(flat), [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]);
    assert.throws(() => x.split([1, 2]), 'sizes must add up to the dim');
  });

  test('narrow / slice / select', () => {
    const x = a234();
    assert.deepEqual(x.narrow(2, 1, 2).toArray(), [[[1, 2], [5, 6], [9, 10]], [[13, 14], [17, 18], [21, 22]]]);
    assert.deepEqual(flat(x.narrow(1, 2, 1)), [8, 9, 10, 11, 20, 21, 22, 23]);
    assert.throws(() => x.narrow(1, 2, 2));
    assert.deepEqual(flat(x.slice(2, 1, 100, 2)), [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]);
    assert.deepEqual(flat(x.slice(1, 1)), [4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]);
    assert.deepEqual(flat(x.slice(2, -2)), [2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23]);
    assert.deepEqual(x.slice(0, 5).shape, [0, 3, 4]);
    const s = x.select(1, 2);
    assert.deepEqual(s.shape, [2, 4]);
    assert.deepEqual(flat(s), [8, 9, 10, 11, 20, 21, 22, 23]);
    assert.deepEqual(flat(x.select(2, -1)), [3, 7, 11, 15, 19, 23]);
    assert.deepEqual(x.select(0, 1).select(0, 0).select(0, 3).shape, []);
    assert.equal(x.select(0, 1).select(0, 0).select(0, 3).item(), 15);
    assert.throws(() => x.select(0, 2));
  });

  test('indexSelect and gather', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    const idx = tensor([2, 0, 2], { dtype: 'int64' });
    assert.deepEqual(x.indexSelect(0, idx).toArray(), [[7, 8, 9], [1, 2, 3], [7, 8, 9]]);
    assert.deepEqual(x.indexSelect(1, tensor([1], { dtype: 'int64' })).toArray(), [[2], [5], [8]]);
    // gather: out[i][j] = x[i][index[i][j]] along dim 1; x[index[i][j]][j] along dim 0
    const gi = tensor([[0, 0], [2, 1], [1, 2]], { dtype: 'int64' });
    assert.deepEqual(x.gather(1, gi).toArray(), [[1, 1], [6, 5], [8, 9]]);
    assert.deepEqual(x.gather(0, tensor([[2, 1, 0]], { dtype: 'int64' })).toArray(), [[7, 5, 3]]);
    assert.throws(() => x.gather(1, tensor([[3]], { dtype: 'int64' })));
  });

  test('flip', () => {
    assert.deepEqual(tensor([[1, 2, 3], [4, 5, 6]]).flip(1).toArray(), [[3, 2, 1], [6, 5, 4]]);
    assert.deepEqual(tensor([[1, 2, 3], [4, 5, 6]]).flip(0).toArray(), [[4, 5, 6], [1, 2, 3]]);
    assert.deepEqual(tensor([[1, 2, 3], [4, 5, 6]]).flip([0, 1]).toArray(), [[6, 5, 4], [3, 2, 1]]);
    assert.deepEqual(flat(a234().flip(-1)), permuteRef([0, 1, 2]).map((v) => v - (v % 4) + 3 - (v % 4)));
  });

  test('triu / tril with diagonals', () => {
    const m = tensor([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]);
    const mask = (keep: (i: number, j: number) => boolean) =>
      [0, 1, 2].map((i) => [0, 1, 2, 3].map((j) => (keep(i, j) ? i * 4 + j + 1 : 0)));
    for (const d of [-1, 0, 1, 2]) {
      assert.deepEqual(m.triu(d).toArray(), mask((i, j) => j - i >= d), `triu(${d})`);
      assert.deepEqual(m.tril(d).toArray(), mask((i, j) => j - i <= d), `tril(${d})`);
    }
    assert.deepEqual(m.triu().toArray(), mask((i, j) => j >= i));
    // batched: applies to the last two dims
    assert.deepEqual(ones([2, 2, 2]).tril().toArray(), [[[1, 0], [1, 1]], [[1, 0], [1, 1]]]);
  });
});

describe('Generator and seeded draws', () => {
  test('torch.Generator().manual_seed(0); torch.randn(4)', () => {
    const r = randn([4], { generator: new Generator(0) });
    assert.deepEqual(flat(r), [1.5409960746765137, -0.293428897857666, -2.1787893772125244, 0.5684312582015991]);
  });

  test('matches PyTorch draws for randn (small and vectorized sizes, float64), rand, randint', () => {
    const R = fixture.random;
    assert.deepEqual(flat(randn([4], { generator: new Generator(0) })), R.randn_seed0_4);
    assert.deepEqual(flat(randn([20], { generator: new Generator(0) })), R.randn_seed0_20);
    assert.deepEqual(randn([2, 3], { generator: new Generator(42) }).toArray(), R.randn_seed42_2x3);
    const d = randn([3], { generator: new Generator(0), dtype: 'float64' });
    assert.equal(d.dtype, 'float64');
    assert.deepEqual(flat(d), R.randn_seed0_3_float64);
    assert.deepEqual(flat(rand([5], { generator: new Generator(123) })), R.rand_seed123_5);
    const ri = randint(0, 10, [6], { generator: new Generator(7) });
    assert.equal(ri.dtype, 'int64');
    assert.deepEqual(flat(ri), R.randint_seed7_0_10_6);
    // consecutive draws continue the stream
    const g = new Generator(0);
    assert.deepEqual([flat(randn([3], { generator: g })), flat(randn([3], { generator: g }))], R.randn_seed0_two_draws_of_3);
  });

  test('the same seed gives the same numbers; another seed different ones', () => {
    const draw = (seed: number) => [
      flat(randn([3, 5], { generator: new Generator(seed) })),
      flat(rand([17], { generator: new Generator(seed) })),
      flat(randint(-5, 5, [9], { generator: new Generator(seed) })),
    ];
    assert.deepEqual(draw(1234), draw(1234));
    assert.notDeepEqual(draw(1234)[0], draw(1235)[0]);
    const g = new Generator(5);
    const first = flat(randn([4], { generator: g }));
    g.manualSeed(5);
    assert.deepEqual(flat(randn([4], { generator: g })), first);
    assert.equal(g.initialSeed, 5);
    assert.equal(g.device, 'cpu');
  });

  test('getState / setState replays the stream', () => {
    const g = new Generator(99);
    randn([7], { generator: g });
    const state = g.getState();
    assert.equal(state.dtype, 'uint8');
    const a = flat(rand([6], { generator: g }));
    g.setState(state);
    assert.deepEqual(flat(rand([6], { generator: g })), a);
  });

  test('manualSeed seeds the default generator', () => {
    manualSeed(0);
    assert.deepEqual(flat(randn([4])), fixture.random.randn_seed0_4);
    manualSeed(7);
    const a = flat(randint(0, 10, [6]));
    assert.deepEqual(a, fixture.random.randint_seed7_0_10_6);
  });

  test('value ranges: rand in [0, 1), randint in [low, high); randnLike keeps shape and dtype', () => {
    const g = new Generator(3);
    const r = flat(rand([2000], { generator: g }));
    assert.ok(r.every((v) => v >= 0 && v < 1));
    const m = r.reduce((p, q) => p + q, 0) / r.length;
    assert.ok(Math.abs(m - 0.5) < 0.05, `mean ${m}`);
    const ri = flat(randint(-3, 2, [2000], { generator: g }));
    assert.ok(ri.every((v) => Number.isInteger(v) && v >= -3 && v < 2));
    assert.deepEqual([...new Set(ri)].sort((p, q) => p - q), [-3, -2, -1, 0, 1]);
    const like = randnLike(zeros([2, 3], { dtype: 'float64' }), { generator: new Generator(0) });
    assert.deepEqual(like.shape, [2, 3]);
    assert.equal(like.dtype, 'float64');
    assert.deepEqual(flat(like).slice(0, 3), fixture.random.randn_seed0_3_float64);
  });
});
