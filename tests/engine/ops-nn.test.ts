// Neural-network ops checked against naive JavaScript references written from the definitions
// (convolution loops, normalization statistics, attention with Math.exp, the resampling formulas
// of PyTorch's kernels). Antialiased and fractional-scale resampling are checked against values
// printed by Python PyTorch (tests/fixtures/make_ops_fixtures.py -> tests/fixtures/ops-reference.json).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  tensor, ones, conv2d, groupNorm, layerNorm, embedding, scaledDotProductAttention, interpolate, pad, maxPool2d,
  avgPool2d, mseLoss, l1Loss, cosineSimilarity, dropout, type Tensor, type InterpolateOptions, type InterpolateMode,
} from '../../src/engine/index.js';
import { assertClose, pseudoRandom } from '../helpers.js';

const flat = (t: Tensor) => t.toFlatArray();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

// ---- references -----------------------------------------------------------------------------------

interface ConvArgs { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number }
function conv2dRef(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null, a: ConvArgs): { data: number[]; shape: number[] } {
  const [N, C, H, W] = xs as [number, number, number, number];
  const [O, Cg, KH, KW] = ws as [number, number, number, number];
  const [sh, sw] = a.stride, [ph, pw] = a.padding, [dh, dw] = a.dilation;
  const HO = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const WO = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const og = O / a.groups;
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let i = 0; i < HO; i++) for (let j = 0; j < WO; j++) {
    const g = Math.floor(o / og);
    let s = b ? b[o]! : 0;
    for (let c = 0; c < Cg; c++) for (let ki = 0; ki < KH; ki++) for (let kj = 0; kj < KW; kj++) {
      const y = i * sh - ph + ki * dh, xx = j * sw - pw + kj * dw;
      if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
      s += x[((n * C + g * Cg + c) * H + y) * W + xx]! * w[((o * Cg + c) * KH + ki) * KW + kj]!;
    }
    out.push(s);
  }
  assert.equal(C, Cg * a.groups);
  return { data: out, shape: [N, O, HO, WO] };
}

/** Normalizes contiguous blocks of `block` values, then applies per-element affine weight/bias. */
function normalizeBlocks(x: number[], block: number, eps: number, affine: (i: number, v: number) => number): number[] {
  const out: number[] = [];
  for (let s = 0; s < x.length; s += block) {
    const v = x.slice(s, s + block);
    const m = v.reduce((a, b) => a + b, 0) / block;
    const varb = v.reduce((a, b) => a + (b - m) ** 2, 0) / block;
    v.forEach((e, k) => out.push(affine(s + k, (e - m) / Math.sqrt(varb + eps))));
  }
  return out;
}

/** softmax(q k^T * scale + mask) v for one [L,E] x [S,E] x [S,Ev] head; mask(l, s) additive. */
function attentionRef(q: number[], k: number[], v: number[], L: number, S: number, E: number, Ev: number, scale: number,
  mask: (l: number, s: number) => number): number[] {
  const out: number[] = [];
  for (let l = 0; l < L; l++) {
    const logits: number[] = [];
    for (let s = 0; s < S; s++) {
      let d = 0;
      for (let e = 0; e < E; e++) d += q[l * E + e]! * k[s * E + e]!;
      logits.push(d * scale + mask(l, s));
    }
    const mx = Math.max(...logits);
    const p = logits.map((z) => Math.exp(z - mx));
    const z = p.reduce((a, b) => a + b, 0);
    for (let e = 0; e < Ev; e++) {
      let acc = 0;
      for (let s = 0; s < S; s++) acc += (p[s]! / z) * v[s * Ev + e]!;
      out.push(acc);
    }
  }
  return out;
}

// Resampling, one axis at a time, following PyTorch's CPU kernels (UpSample.h).
/** The source coordinate scale: (in-1)/(out-1) with align corners, else 1/scaleFactor or in/out. */
function axisScale(inSize: number, outSize: number, alignCorners: boolean, sf?: number): number {
  if (alignCorners) return outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  return sf !== undefined ? 1 / sf : inSize / outSize;
}
function srcIndex(scale: number, dst: number, alignCorners: boolean, cubic: boolean): number {
  if (alignCorners) return scale * dst;
  const s = scale * (dst + 0.5) - 0.5;
  return !cubic && s < 0 ? 0 : s;
}
/** Per output index: list of [input index, weight]. */
type Taps = [number, number][][];
function tapsFor(mode: InterpolateMode, inSize: number, outSize: number, alignCorners: boolean, sf?: number): Taps {
  const taps: Taps = [];
  const scale = axisScale(inSize, outSize, alignCorners, sf);
  const fs = Math.fround(scale); // nearest modes compute in float
  const clampI = (i: number) => Math.min(Math.max(i, 0), inSize - 1);
  for (let d = 0; d < outSize; d++) {
    if (mode === 'nearest') {
      taps.push([[Math.min(Math.floor(Math.fround(d * fs)), inSize - 1), 1]]);
    } else if (mode === 'nearest-exact') {
      taps.push([[Math.min(Math.floor(Math.fround((d + 0.5) * fs)), inSize - 1), 1]]);
    } else if (mode === 'bilinear') {
      const s = srcIndex(scale, d, alignCorners, false);
      const i0 = Math.floor(s), l1 = s - i0;
      taps.push([[i0, 1 - l1], [Math.min(i0 + 1, inSize - 1), l1]]);
    } else if (mode === 'bicubic') {
      const s = srcIndex(scale, d, alignCorners, true);
      const i0 = Math.floor(s), t = s - i0, A = -0.75;
      const cc1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
      const cc2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
      const w = [cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t)];
      taps.push(w.map((wk, k) => [clampI(i0 - 1 + k), wk]));
    } else {
      // area = adaptive average pooling
      const start = Math.floor((d * inSize) / outSize), end = Math.ceil(((d + 1) * inSize) / outSize);
      const row: [number, number][] = [];
      for (let i = start; i < end; i++) row.push([i, 1 / (end - start)]);
      taps.push(row);
    }
  }
  return taps;
}
function resampleRef(x: number[], shape: number[], outH: number, outW: number, th: Taps, tw: Taps): number[] {
  const [N, C, H, W] = shape as [number, number, number, number];
  const out: number[] = [];
  for (let p = 0; p < N * C; p++) for (let i = 0; i < outH; i++) for (let j = 0; j < outW; j++) {
    let s = 0;
    for (const [hi, hw] of th[i]!) for (const [wi, ww] of tw[j]!) s += hw * ww * x[(p * H + hi) * W + wi]!;
    out.push(s);
  }
  return out;
}

function poolRef(x: number[], shape: number[], k: [number, number], st: [number, number], p: [number, number], isMax: boolean) {
  const [N, C, H, W] = shape as [number, number, number, number];
  const HO = Math.floor((H + 2 * p[0] - k[0]) / st[0]) + 1, WO = Math.floor((W + 2 * p[1] - k[1]) / st[1]) + 1;
  const out: number[] = [];
  for (let q = 0; q < N * C; q++) for (let i = 0; i < HO; i++) for (let j = 0; j < WO; j++) {
    let m = -Infinity, s = 0;
    for (let a = 0; a < k[0]; a++) for (let b = 0; b < k[1]; b++) {
      const y = i * st[0] - p[0] + a, xx = j * st[1] - p[1] + b;
      if (y < 0 || y >= H || xx < 0 || xx >= W) continue; // padding: -inf for max, 0 for avg
      const v = x[(q * H + y) * W + xx]!;
      m = Math.max(m, v);
      s += v;
    }
    out.push(isMax ? m : s / (k[0] * k[1])); // avg_pool2d counts the padding (count_include_pad)
  }
  return { data: out, shape: [N, C, HO, WO] };
}

// ---- tests --------------------------------------------------------------------------------------

describe('conv2d', () => {
  const cases: [string, number[], number[], boolean, ConvArgs][] = [
    ['plain 3x3', [1, 2, 5, 5], [3, 2, 3, 3], false, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }],
    ['bias, padding 1', [2, 2, 4, 5], [3, 2, 3, 3], true, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }],
    ['stride 2, asymmetric padding', [1, 3, 7, 6], [2, 3, 3, 2], true, { stride: [2, 2], padding: [1, 0], dilation: [1, 1], groups: 1 }],
    ['stride (1,2), dilation 2', [1, 2, 7, 7], [2, 2, 3, 3], true, { stride: [1, 2], padding: [2, 1], dilation: [2, 2], groups: 1 }],
    ['groups 2', [2, 4, 5, 5], [6, 2, 3, 3], true, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2 }],
    ['depthwise groups 4, stride 2', [1, 4, 6, 6], [4, 1, 3, 3], true, { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 4 }],
    ['1x1', [1, 3, 2, 3], [2, 3, 1, 1], true, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }],
  ];
  for (const [name, xs, ws, withBias, a] of cases) {
    test(name, () => {
      const n = xs.reduce((p, q) => p * q, 1), m = ws.reduce((p, q) => p * q, 1);
      const x = pseudoRandom(n, 61), w = pseudoRandom(m, 62), b = withBias ? pseudoRandom(ws[0]!, 63) : null;
      const ref = conv2dRef(x, xs, w, ws, b, a);
      const y = conv2d(tensor(x).reshape(xs), tensor(w).reshape(ws), b ? tensor(b) : null,
        { stride: a.stride, padding: a.padding, dilation: a.dilation, groups: a.groups });
      assert.deepEqual(y.shape, ref.shape);
      assertClose(y, ref.data, 1e-5, 1e-5);
      const y64 = conv2d(tensor(x, { dtype: 'float64' }).reshape(xs), tensor(w, { dtype: 'float64' }).reshape(ws),
        b ? tensor(b, { dtype: 'float64' }) : null, a);
      assertClose(y64, ref.data, 1e-12, 1e-12);
    });
  }
  test('scalar options (stride 2, padding 1)', () => {
    const x = pseudoRandom(1 * 2 * 6 * 6, 64), w = pseudoRandom(2 * 2 * 3 * 3, 65);
    const ref = conv2dRef(x, [1, 2, 6, 6], w, [2, 2, 3, 3], null, { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 });
    assertClose(conv2d(tensor(x).reshape(1, 2, 6, 6), tensor(w).reshape(2, 2, 3, 3), undefined, { stride: 2, padding: 1 }), ref.data, 1e-5, 1e-5);
  });
  test('channel mismatch throws', () => {
    assert.throws(() => conv2d(ones([1, 3, 4, 4]), ones([2, 2, 3, 3])));
  });
});

describe('groupNorm / layerNorm', () => {
  test('groupNorm with and without affine, eps', () => {
    const [N, C, H, W, G] = [2, 6, 3, 2, 3];
    const x = pseudoRandom(N * C * H * W, 71).map((v) => v * 3 + 1);
    const w = pseudoRandom(C, 72), b = pseudoRandom(C, 73);
    const per = (C / G) * H * W;
    const chan = (i: number) => Math.floor(i / (H * W)) % C;
    const plain = normalizeBlocks(x, per, 1e-5, (_, v) => v);
    const affine = normalizeBlocks(x, per, 1e-5, (i, v) => v * w[chan(i)]! + b[chan(i)]!);
    const xt = tensor(x).reshape(N, C, H, W);
    assertClose(groupNorm(xt, G), plain, 1e-5, 1e-5);
    assertClose(groupNorm(xt, G, tensor(w), tensor(b)), affine, 1e-5, 1e-5);
    assertClose(groupNorm(xt, G, tensor(w), tensor(b), 0.5), normalizeBlocks(x, per, 0.5, (i, v) => v * w[chan(i)]! + b[chan(i)]!), 1e-5, 1e-5);
    // one group = normalize each sample over everything; C groups = instance norm
    assertClose(groupNorm(xt, 1), normalizeBlocks(x, C * H * W, 1e-5, (_, v) => v), 1e-5, 1e-5);
    assertClose(groupNorm(xt, C), normalizeBlocks(x, H * W, 1e-5, (_, v) => v), 1e-5, 1e-5);
    // also on a 3-D input [N, C, L]
    assertClose(groupNorm(tensor(x).reshape(N, C, H * W), G), plain, 1e-5, 1e-5);
    assert.throws(() => groupNorm(xt, 4), 'channels must divide into groups');
  });

  test('layerNorm over the last one and two dims, with weight and bias', () => {
    const [A, B, D] = [2, 3, 4];
    const x = pseudoRandom(A * B * D, 74).map((v) => v * 2 - 0.5);
    const w = pseudoRandom(D, 75), b = pseudoRandom(D, 76);
    const xt = tensor(x).reshape(A, B, D);
    assertClose(layerNorm(xt, [D]), normalizeBlocks(x, D, 1e-5, (_, v) => v), 1e-5, 1e-5);
    assertClose(layerNorm(xt, [D], tensor(w), tensor(b)), normalizeBlocks(x, D, 1e-5, (i, v) => v * w[i % D]! + b[i % D]!), 1e-5, 1e-5);
    assertClose(layerNorm(xt, [D], tensor(w), null), normalizeBlocks(x, D, 1e-5, (i, v) => v * w[i % D]!), 1e-5, 1e-5);
    const w2 = pseudoRandom(B * D, 77), b2 = pseudoRandom(B * D, 78);
    assertClose(layerNorm(xt, [B, D], tensor(w2).reshape(B, D), tensor(b2).reshape(B, D), 1e-3),
      normalizeBlocks(x, B * D, 1e-3, (i, v) => v * w2[i % (B * D)]! + b2[i % (B * D)]!), 1e-5, 1e-5);
  });
});

describe('embedding', () => {
  test('rows of the weight by id, any id shape, repeated ids', () => {
    const V = 5, D = 3;
    const w = pseudoRandom(V * D, 81);
    const ids = [[4, 0, 2], [2, 2, 1]];
    const y = embedding(tensor(ids, { dtype: 'int64' }), tensor(w).reshape(V, D));
    assert.deepEqual(y.shape, [2, 3, D]);
    assertClose(y, ids.flat().flatMap((i) => w.slice(i * D, i * D + D)).map(Math.fround), 0, 0);
    assert.deepEqual(embedding(tensor(3, { dtype: 'int64' }), tensor(w).reshape(V, D)).shape, [D]);
    assert.throws(() => embedding(tensor([5], { dtype: 'int64' }), tensor(w).reshape(V, D)), 'out of range id');
  });
});

describe('scaledDotProductAttention', () => {
  const [B, Hh, L, S, E, Ev] = [2, 2, 3, 4, 5, 3];
  const q = pseudoRandom(B * Hh * L * E, 91), k = pseudoRandom(B * Hh * S * E, 92), v = pseudoRandom(B * Hh * S * Ev, 93);
  const qt = () => tensor(q).reshape(B, Hh, L, E);
  const kt = () => tensor(k).reshape(B, Hh, S, E);
  const vt = () => tensor(v).reshape(B, Hh, S, Ev);
  const ref = (scale: number, mask: (bh: number, l: number, s: number) => number) => {
    const out: number[] = [];
    for (let bh = 0; bh < B * Hh; bh++) {
      out.push(...attentionRef(q.slice(bh * L * E, (bh + 1) * L * E), k.slice(bh * S * E, (bh + 1) * S * E),
        v.slice(bh * S * Ev, (bh + 1) * S * Ev), L, S, E, Ev, scale, (l, s) => mask(bh, l, s)));
    }
    return out;
  };
  const dflt = 1 / Math.sqrt(E);

  test('no mask', () => {
    const y = scaledDotProductAttention(qt(), kt(), vt());
    assert.deepEqual(y.shape, [B, Hh, L, Ev]);
    assertClose(y, ref(dflt, () => 0), 1e-6, 1e-5);
  });

  test('boolean mask (true = attend), broadcast over batch and heads', () => {
    const m = [[true, false, true, true], [false, true, true, false], [true, true, true, true]];
    const y = scaledDotProductAttention(qt(), kt(), vt(), { attnMask: tensor(m) });
    assertClose(y, ref(dflt, (_, l, s) => (m[l]![s] ? 0 : -Infinity)), 1e-6, 1e-5);
  });

  test('additive float mask, per batch [B,1,L,S]', () => {
    const fm = pseudoRandom(B * L * S, 94).map((x) => x * 2);
    const y = scaledDotProductAttention(qt(), kt(), vt(), { attnMask: tensor(fm).reshape(B, 1, L, S) });
    assertClose(y, ref(dflt, (bh, l, s) => fm[(Math.floor(bh / Hh) * L + l) * S + s]!), 1e-6, 1e-5);
  });

  test('isCausal (top-left aligned lower triangle, L < S)', () => {
    const y = scaledDotProductAttention(qt(), kt(), vt(), { isCausal: true });
    assertClose(y, ref(dflt, (_, l, s) => (s <= l ? 0 : -Infinity)), 1e-6, 1e-5);
  });

  test('custom scale', () => {
    const y = scaledDotProductAttention(qt(), kt(), vt(), { scale: 0.8 });
    assertClose(y, ref(0.8, () => 0), 1e-6, 1e-5);
  });

  test('3-D inputs [B, L, E]', () => {
    const y = scaledDotProductAttention(tensor(q.slice(0, L * E)).reshape(1, L, E), tensor(k.slice(0, S * E)).reshape(1, S, E),
      tensor(v.slice(0, S * Ev)).reshape(1, S, Ev));
    assertClose(y, attentionRef(q, k, v, L, S, E, Ev, dflt, () => 0), 1e-6, 1e-5);
  });
});

describe('interpolate', () => {
  const shape = [1, 2, 4, 5];
  const x = pseudoRandom(40, 101);
  const xt = () => tensor(x).reshape(shape);
  const check = (opts: InterpolateOptions, outH: number, outW: number, sf?: [number, number]) => {
    const mode = opts.mode ?? 'nearest', ac = opts.alignCorners ?? false;
    const th = tapsFor(mode, shape[2]!, outH, ac, sf?.[0]);
    const tw = tapsFor(mode, shape[3]!, outW, ac, sf?.[1]);
    const y = interpolate(xt(), opts);
    assert.deepEqual(y.shape, [1, 2, outH, outW]);
    assertClose(y, resampleRef(x, shape, outH, outW, th, tw), 1e-5, 1e-5, JSON.stringify(opts));
  };
  test('nearest: up, down, scale factor 2 and 0.5', () => {
    check({ size: [7, 8], mode: 'nearest' }, 7, 8);
    check({ size: [3, 2], mode: 'nearest' }, 3, 2);
    check({ scaleFactor: 2 }, 8, 10, [2, 2]);
    check({ scaleFactor: [0.5, 0.4], mode: 'nearest' }, 2, 2, [0.5, 0.4]);
    // a simple case by hand: 2x upsampling repeats each pixel
    assert.deepEqual(interpolate(tensor([[[[1, 2], [3, 4]]]]), { scaleFactor: 2 }).toArray(),
      [[[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]]);
  });
  test('nearest-exact: up and down', () => {
    check({ size: [7, 8], mode: 'nearest-exact' }, 7, 8);
    check({ size: [3, 2], mode: 'nearest-exact' }, 3, 2);
    check({ size: [4, 3], mode: 'nearest-exact' }, 4, 3);
  });
  test('bilinear without alignCorners: up, down, scale factor, single size', () => {
    check({ size: [7, 8], mode: 'bilinear' }, 7, 8);
    check({ size: [3, 2], mode: 'bilinear' }, 3, 2);
    check({ scaleFactor: 2, mode: 'bilinear' }, 8, 10, [2, 2]);
    check({ size: 6, mode: 'bilinear' }, 6, 6);
    // by hand: [0, 1] upsampled to 4 without align corners: src = (d+0.5)/2-0.5 -> 0, 0.25, 0.75, 1
    assertClose(interpolate(tensor([[[[0, 1]]]]), { size: [1, 4], mode: 'bilinear' }), [0, 0.25, 0.75, 1], 1e-7, 0);
  });
  test('bilinear with alignCorners', () => {
    check({ size: [7, 8], mode: 'bilinear', alignCorners: true }, 7, 8);
    check({ size: [3, 2], mode: 'bilinear', alignCorners: true }, 3, 2);
    // by hand: [0, 1] to 4 with align corners: 0, 1/3, 2/3, 1
    assertClose(interpolate(tensor([[[[0, 1]]]]), { size: [1, 4], mode: 'bilinear', alignCorners: true }), [0, 1 / 3, 2 / 3, 1], 1e-7, 0);
  });
  test('bicubic with and without alignCorners (naive cubic convolution, A = -0.75)', () => {
    check({ size: [7, 8], mode: 'bicubic' }, 7, 8);
    check({ size: [3, 2], mode: 'bicubic' }, 3, 2);
    check({ size: [7, 8], mode: 'bicubic', alignCorners: true }, 7, 8);
    check({ scaleFactor: 2, mode: 'bicubic' }, 8, 10, [2, 2]);
  });
  test('area (adaptive average pooling)', () => {
    check({ size: [2, 5], mode: 'area' }, 2, 5);
    check({ size: [3, 2], mode: 'area' }, 3, 2);
    check({ size: [1, 1], mode: 'area' }, 1, 1);
  });
  test('bad arguments throw', () => {
    assert.throws(() => interpolate(xt(), { mode: 'bilinear' }), /exactly one of size and scaleFactor/);
    assert.throws(() => interpolate(xt(), { size: 2, scaleFactor: 2 }), /exactly one/);
    assert.throws(() => interpolate(xt(), { size: 2, mode: 'nearest', antialias: true }), /antialias/);
    assert.throws(() => interpolate(xt(), { size: 2, mode: 'area', alignCorners: true }), /alignCorners/);
    assert.throws(() => interpolate(tensor([1, 2, 3]), { size: 2 }), /4-D/);
  });

  // Fractional scale factors, nearest-exact/area/bicubic cross-checks and antialiased downsampling,
  // against values printed by PyTorch.
  interface InterpCase { name: string; input: number[]; inputShape: number[]; output: number[]; outputShape: number[];
    args: { size?: number[]; scale_factor?: number; mode: InterpolateMode; align_corners?: boolean; antialias?: boolean } }
  const fixture = JSON.parse(readFileSync(path.join(root, 'tests', 'fixtures', 'ops-reference.json'), 'utf8')) as { interpolate: InterpCase[] };
  for (const c of fixture.interpolate) {
    test(`PyTorch reference: ${c.name}`, () => {
      const opts: InterpolateOptions = { mode: c.args.mode };
      if (c.args.size) opts.size = c.args.size as [number, number];
      if (c.args.scale_factor !== undefined) opts.scaleFactor = c.args.scale_factor;
      if (c.args.align_corners !== undefined) opts.alignCorners = c.args.align_corners;
      if (c.args.antialias !== undefined) opts.antialias = c.args.antialias;
      const y = interpolate(tensor(c.input).reshape(c.inputShape), opts);
      assert.deepEqual(y.shape, c.outputShape);
      assertClose(y, c.output, 1e-5, 1e-5, c.name);
    });
  }
});

describe('pad', () => {
  // x[1,1,3,4] = 1..12
  const x = () => tensor([[[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]]]);
  const H = 3, W = 4;
  const at = (i: number, j: number) => i * W + j + 1;
  const padRef = (pads: [number, number, number, number], map: (i: number, n: number) => number | null, value = 0) => {
    const [l, r, t, b] = pads;
    const out: number[][] = [];
    for (let i = -t; i < H + b; i++) {
      const row: number[] = [];
      for (let j = -l; j < W + r; j++) {
        const si = map(i, H), sj = map(j, W);
        row.push(si === null || sj === null ? value : at(si, sj));
      }
      out.push(row);
    }
    return [[out]];
  };
  const inside = (i: number, n: number) => (i >= 0 && i < n ? i : null);
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  const replicate = (i: number, n: number) => Math.min(Math.max(i, 0), n - 1);
  const circular = (i: number, n: number) => ((i % n) + n) % n;
  const pads: [number, number, number, number] = [2, 1, 1, 2];

  test('constant (default 0, and a value)', () => {
    assert.deepEqual(pad(x(), pads).toArray(), padRef(pads, inside));
    assert.deepEqual(pad(x(), pads, 'constant', -1.5).toArray(), padRef(pads, inside, -1.5));
    // only the last dim; negative padding crops
    assert.deepEqual(pad(x(), [1, 0]).shape, [1, 1, 3, 5]);
    assert.deepEqual(pad(x(), [-1, -2]).toArray(), [[[[2], [6], [10]]]]);
  });
  test('reflect', () => {
    assert.deepEqual(pad(x(), pads, 'reflect').toArray(), padRef(pads, reflect));
    // 3-D input, last dim only
    assert.deepEqual(pad(tensor([[[1, 2, 3]]]), [2, 2], 'reflect').toArray(), [[[3, 2, 1, 2, 3, 2, 1]]]);
  });
  test('replicate', () => {
    assert.deepEqual(pad(x(), pads, 'replicate').toArray(), padRef(pads, replicate));
  });
  test('circular', () => {
    assert.deepEqual(pad(x(), pads, 'circular').toArray(), padRef(pads, circular));
  });
});

describe('pooling', () => {
  const shape = [2, 2, 5, 6];
  const x = pseudoRandom(120, 111);
  const cases: [string, [number, number], [number, number] | undefined, [number, number]][] = [
    ['2x2 default stride', [2, 2], undefined, [0, 0]],
    ['3x3 stride 2 padding 1', [3, 3], [2, 2], [1, 1]],
    ['3x2 stride (1,2)', [3, 2], [1, 2], [0, 0]],
    ['2x3 stride 1 padding (1,1)', [2, 3], [1, 1], [1, 1]],
  ];
  for (const [name, k, s, p] of cases) {
    test(`maxPool2d / avgPool2d ${name}`, () => {
      const mx = poolRef(x, shape, k, s ?? k, p, true);
      const y = maxPool2d(tensor(x).reshape(shape), k, s, p);
      assert.deepEqual(y.shape, mx.shape);
      assertClose(y, mx.data.map(Math.fround), 0, 0);
      const av = poolRef(x, shape, k, s ?? k, p, false);
      const ya = avgPool2d(tensor(x).reshape(shape), k, s, p);
      assert.deepEqual(ya.shape, av.shape);
      assertClose(ya, av.data, 1e-6, 1e-5);
    });
  }
  test('scalar kernel size', () => {
    assert.deepEqual(maxPool2d(tensor([[[[1, 5, 2, 0], [3, 4, 8, 7]]]]), 2).toArray(), [[[[5, 8]]]]);
    assert.deepEqual(avgPool2d(tensor([[[[1, 5, 2, 0], [3, 4, 8, 7]]]]), 2).toArray(), [[[[3.25, 4.25]]]]);
  });
});

describe('losses and similarity', () => {
  const a = pseudoRandom(12, 121), b = pseudoRandom(12, 122);
  const at = () => tensor(a).reshape(3, 4), bt = () => tensor(b).reshape(3, 4);
  test('mseLoss mean / sum / none', () => {
    const sq = a.map((v, i) => (v - b[i]!) ** 2);
    const none = mseLoss(at(), bt(), 'none');
    assert.deepEqual(none.shape, [3, 4]);
    assertClose(none, sq, 1e-7, 1e-5);
    const s = mseLoss(at(), bt(), 'sum');
    assert.deepEqual(s.shape, []);
    assertClose(s, [sq.reduce((p, q) => p + q, 0)], 1e-6, 1e-5);
    assertClose(mseLoss(at(), bt()), [sq.reduce((p, q) => p + q, 0) / 12], 1e-6, 1e-5);
    assertClose(mseLoss(at(), bt(), 'mean'), [sq.reduce((p, q) => p + q, 0) / 12], 1e-6, 1e-5);
  });
  test('l1Loss mean / sum / none', () => {
    const ab = a.map((v, i) => Math.abs(v - b[i]!));
    assertClose(l1Loss(at(), bt(), 'none'), ab, 1e-7, 1e-5);
    assertClose(l1Loss(at(), bt(), 'sum'), [ab.reduce((p, q) => p + q, 0)], 1e-6, 1e-5);
    assertClose(l1Loss(at(), bt()), [ab.reduce((p, q) => p + q, 0) / 12], 1e-6, 1e-5);
  });
  test('cosineSimilarity along dim 1 and dim 0, broadcasting, zero vector', () => {
    const cos = (u: number[], v: number[]) => {
      const d = u.reduce((p, q, i) => p + q * v[i]!, 0);
      const nu = Math.sqrt(u.reduce((p, q) => p + q * q, 0)), nv = Math.sqrt(v.reduce((p, q) => p + q * q, 0));
      return d / (Math.max(nu, 1e-8) * Math.max(nv, 1e-8));
    };
    const rows = (m: number[]) => [0, 1, 2].map((r) => m.slice(r * 4, r * 4 + 4));
    const cols = (m: number[]) => [0, 1, 2, 3].map((c) => [0, 1, 2].map((r) => m[r * 4 + c]!));
    const c1 = cosineSimilarity(at(), bt());
    assert.deepEqual(c1.shape, [3]);
    assertClose(c1, rows(a).map((u, i) => cos(u, rows(b)[i]!)), 1e-6, 1e-5);
    assertClose(cosineSimilarity(at(), bt(), 0), cols(a).map((u, i) => cos(u, cols(b)[i]!)), 1e-6, 1e-5);
    assertClose(cosineSimilarity(at(), tensor(b.slice(0, 4)).reshape(1, 4), -1), rows(a).map((u) => cos(u, b.slice(0, 4))), 1e-6, 1e-5);
    assertClose(cosineSimilarity(tensor([[1, 0], [0, 0]]), tensor([[1, 1], [1, 1]])), [Math.SQRT1_2, 0], 1e-6, 1e-6);
  });
});

describe('dropout', () => {
  test('p = 0 and training = false are the identity', () => {
    const x = tensor(pseudoRandom(50, 131));
    assert.deepEqual(flat(dropout(x, 0)), flat(x));
    assert.deepEqual(flat(dropout(x, 0.5, false)), flat(x));
    assert.deepEqual(flat(dropout(x, 0.9, false)), flat(x));
  });
  test('p = 0.5 zeros about half and scales survivors by 1/(1-p) = 2', () => {
    const n = 20000;
    const x = tensor(pseudoRandom(n, 132).map((v) => v + 3)); // all in [2, 4), never 0
    const xv = flat(x);
    const y = flat(dropout(x, 0.5));
    let zeros = 0;
    for (let i = 0; i < n; i++) {
      if (y[i] === 0) zeros++;
      else assert.equal(y[i], Math.fround(xv[i]! * 2), `survivor ${i} scaled by 2`);
    }
    // binomial(20000, 0.5): sd ~71; 0.47..0.53 is > 8 sd either side
    assert.ok(zeros > 0.47 * n && zeros < 0.53 * n, `zeroed ${zeros} of ${n}`);
  });
  test('p = 1 zeros everything', () => {
    assert.deepEqual(flat(dropout(ones([10]), 1)), new Array(10).fill(0));
  });
});
