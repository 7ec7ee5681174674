// Timestep embeddings against hand-computed values: freqs_i = exp(-ln(10000) * i / (half - shift)),
// emb = [sin(t f), cos(t f)] (or cos first with flip_sin_to_cos), a zero column for odd widths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, tensor, tidy } from '../../../src/engine/index.js';
import { TimestepEmbedding, getTimestepEmbedding, timestepsForBatch } from '../../../src/models/unet/index.js';
import { assertClose } from '../../helpers.js';

/** The formula in double precision, written out. */
function handEmbedding(ts: number[], dim: number, flip: boolean, shift: number): number[] {
  const half = Math.floor(dim / 2);
  const out: number[] = [];
  for (const t of ts) {
    const f = Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / (half - shift)));
    const sin = f.map((x) => Math.sin(t * x)), cos = f.map((x) => Math.cos(t * x));
    out.push(...(flip ? [...cos, ...sin] : [...sin, ...cos]), ...(dim % 2 ? [0] : []));
  }
  return out;
}

test('SD v1 setting (flip_sin_to_cos, freq_shift 0): cos first, freqs 10000^(-i/half)', () => {
  tidy(() => {
    const ts = [0, 1, 10, 981];
    const e = getTimestepEmbedding(tensor(ts, { dtype: 'int64' }), 8, { flipSinToCos: true, downscaleFreqShift: 0 });
    assert.deepEqual(e.shape, [4, 8]);
    assert.equal(e.dtype, 'float32');
    // dim 8, half 4: freqs are exactly 1, 0.1, 0.01, 0.001
    const t981 = [Math.cos(981), Math.cos(98.1), Math.cos(9.81), Math.cos(0.981), Math.sin(981), Math.sin(98.1), Math.sin(9.81), Math.sin(0.981)];
    assertClose(e.narrow(0, 3, 1), t981, 2e-5, 0, 't=981 by hand');
    assertClose(e.narrow(0, 0, 1), [1, 1, 1, 1, 0, 0, 0, 0], 0, 0, 't=0');
    assertClose(e, handEmbedding(ts, 8, true, 0), 2e-5, 0, 'all rows');
  });
});

test('defaults (sin first, shift 1), odd width padded with a zero, fractional timesteps', () => {
  tidy(() => {
    const ts = [0.5, 3, 250.25];
    const e = getTimestepEmbedding(tensor(ts), 7);
    assert.deepEqual(e.shape, [3, 7]);
    assertClose(e, handEmbedding(ts, 7, false, 1), 1e-5, 0, 'dim 7, shift 1');
    // half 3, shift 1: freqs 1, 10000^-0.5 = 0.01, 10000^-1
    assertClose(e.narrow(0, 1, 1), [Math.sin(3), Math.sin(0.03), Math.sin(3e-4), Math.cos(3), Math.cos(0.03), Math.cos(3e-4), 0], 1e-6, 0, 't=3');
  });
});

test('TimestepEmbedding: linear_2(silu(linear_1(x))) with hand weights', () => {
  tidy(() => noGrad(() => {
    const te = new TimestepEmbedding(2, 2);
    te.linear_1.weight.copy_(tensor([[1, 0], [0.5, -1]]));
    te.linear_1.bias!.copy_(tensor([0, 0.25]));
    te.linear_2.weight.copy_(tensor([[2, 0], [1, 1]]));
    te.linear_2.bias!.copy_(tensor([0.1, 0]));
    const silu = (v: number) => v / (1 + Math.exp(-v));
    const x = [0.3, -0.7];
    const h = [silu(0.3), silu(0.5 * 0.3 + 0.7 + 0.25)];
    const out = te.forward(tensor([x]));
    assertClose(out, [2 * h[0]! + 0.1, h[0]! + h[1]!], 1e-6, 1e-6, 'TimestepEmbedding');
    assert.deepEqual(te.namedParameters().map(([k]) => k), ['linear_1.weight', 'linear_1.bias', 'linear_2.weight', 'linear_2.bias']);
  }));
});

test('timestepsForBatch broadcasts [], [1] and numbers, keeps [B], and rejects the rest', () => {
  tidy(() => {
    assertClose(timestepsForBatch(7, 3, 'cpu'), [7, 7, 7], 0, 0, 'number');
    assertClose(timestepsForBatch(tensor(7, { dtype: 'int64' }), 2, 'cpu'), [7, 7], 0, 0, 'scalar');
    assertClose(timestepsForBatch(tensor([1, 2], { dtype: 'int64' }), 2, 'cpu'), [1, 2], 0, 0, '[B]');
    assert.equal(timestepsForBatch(tensor([1, 2], { dtype: 'int64' }), 2, 'cpu').dtype, 'float32');
    assert.throws(() => timestepsForBatch(tensor([1, 2, 3]), 2, 'cpu'), /3 timesteps for a batch of 2/);
    assert.throws(() => timestepsForBatch(tensor([[1, 2]]), 2, 'cpu'), /shape \[\], \[1\] or \[B\]/);
    assert.throws(() => timestepsForBatch(Number.NaN, 1, 'cpu'), /finite/);
    assert.throws(() => getTimestepEmbedding(tensor([[1]]), 8), /1-D/);
  });
});
