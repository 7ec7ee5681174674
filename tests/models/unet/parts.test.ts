// The UNet parts' options that the SD v1 golden does not exercise, checked against hand-computed
// values or an independent composition of engine ops: Downsample2D padding 0, Upsample2D to a given
// size, ResnetBlock2D 'scale_shift', GEGLU, and use_linear_projection (Linear == 1x1 conv).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conv2d, Generator, groupNorm, noGrad, tensor, tidy } from '../../../src/engine/index.js';
import { Downsample2D, GEGLU, ResnetBlock2D, Transformer2DModel, Upsample2D } from '../../../src/models/unet/index.js';
import { assertClose, randomTensor } from '../../helpers.js';

test('Downsample2D with padding 0 pads right/bottom by one, then a stride-2 conv', () => {
  tidy(() => noGrad(() => {
    const d = new Downsample2D(1, 1, 0);
    d.conv.weight.fill_(1);
    d.conv.bias!.fill_(0);
    const x = tensor([[[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]]]);
    // windows at rows/cols {0,1,2} and {2,3,pad}: sums of 3x3 blocks
    const out = d.forward(x);
    assert.deepEqual(out.shape, [1, 1, 2, 2]);
    assertClose(out, [54, 45, 72, 54], 0, 0, 'Downsample2D padding 0');
    const p1 = new Downsample2D(1, 1, 1);
    p1.conv.weight.fill_(1);
    p1.conv.bias!.fill_(0);
    assertClose(p1.forward(x), [14, 30, 57, 99], 0, 0, 'Downsample2D padding 1');
  }));
});

test('Upsample2D: nearest x2, or nearest to an explicit size (odd latent sizes), then the conv', () => {
  tidy(() => noGrad(() => {
    const u = new Upsample2D(1);
    u.conv.weight.zero_();
    u.conv.weight.narrow(2, 1, 1).narrow(3, 1, 1).fill_(1); // identity 3x3 kernel
    u.conv.bias!.fill_(0.5);
    const x = tensor([[[[1, 2], [3, 4], [5, 6]]]]); // [1, 1, 3, 2]
    assertClose(u.forward(x), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4, 5, 5, 6, 6, 5, 5, 6, 6].map((v) => v + 0.5), 0, 0, 'x2');
    const sized = u.forward(x, [5, 3]); // source index floor(i * in / out)
    assert.deepEqual(sized.shape, [1, 1, 5, 3]);
    assertClose(sized, [1, 1, 2, 1, 1, 2, 3, 3, 4, 3, 3, 4, 5, 5, 6].map((v) => v + 0.5), 0, 0, 'to [5, 3]');
  }));
});

test("ResnetBlock2D 'scale_shift' and channel change: x' + conv2(silu(norm2(h) * (1 + scale) + shift))", () => {
  tidy(() => noGrad(() => {
    const o = { generator: new Generator(3), dtype: 'float64' as const };
    const r = new ResnetBlock2D({ ...o, inChannels: 4, outChannels: 6, tembChannels: 5, groups: 2, eps: 1e-6, timeEmbeddingNorm: 'scale_shift', outputScaleFactor: 2 });
    assert.deepEqual(r.time_emb_proj!.weight.shape, [12, 5]);
    assert.ok(r.conv_shortcut !== null);
    for (const [, p] of r.namedParameters()) p.add_(randomTensor(p.shape, p.numel, 0.1)); // non-trivial norms
    const x = randomTensor([2, 4, 5, 3], 11), temb = randomTensor([2, 5], 12);
    const conv = (c: { weight: typeof x; bias: typeof x | null }, v: typeof x, padding: number) => conv2d(v, c.weight, c.bias, { padding });
    let h = conv(r.conv1, groupNorm(x, 2, r.norm1.weight, r.norm1.bias, 1e-6).silu(), 1);
    const t = temb.silu().matmul(r.time_emb_proj!.weight.transpose(0, 1)).add(r.time_emb_proj!.bias!); // [2, 12]
    const scale = t.narrow(1, 0, 6).reshape([2, 6, 1, 1]), shift = t.narrow(1, 6, 6).reshape([2, 6, 1, 1]);
    h = groupNorm(h, 2, r.norm2.weight, r.norm2.bias, 1e-6).mul(scale.add(1)).add(shift).silu();
    h = conv(r.conv2, h, 1);
    const expected = conv(r.conv_shortcut!, x, 0).add(h).div(2);
    assertClose(r.forward(x, temb), expected, 1e-12, 1e-12, 'scale_shift resnet');
  }));
});

test('GEGLU: proj output split into value and gate, value * gelu(gate) (exact erf)', () => {
  tidy(() => noGrad(() => {
    const g = new GEGLU(1, 2, { dtype: 'float64' });
    g.proj.weight.copy_(tensor([[1], [2], [-1], [0.5]]));
    g.proj.bias!.fill_(0);
    const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    const x = 0.8;
    assertClose(g.forward(tensor([[x]], { dtype: 'float64' })), [x * gelu(-x), 2 * x * gelu(0.5 * x)], 1e-7, 1e-7, 'GEGLU');
  }));
});

/** erf by its Maclaurin series (ample for |v| < 3). */
function erf(v: number): number {
  let sum = 0, term = v;
  for (let n = 0; n < 60; n++) {
    sum += term / (2 * n + 1);
    term *= (-v * v) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

test('use_linear_projection: Linear proj_in/proj_out compute what 1x1 convs with the same weights do', () => {
  tidy(() => noGrad(() => {
    const base = { numAttentionHeads: 2, attentionHeadDim: 4, inChannels: 8, normNumGroups: 2, crossAttentionDim: 6, dtype: 'float64' as const };
    const conv = new Transformer2DModel({ ...base, generator: new Generator(5) });
    const lin = new Transformer2DModel({ ...base, useLinearProjection: true, device: 'meta' });
    const sd = new Map(conv.namedParameters().map(([k, t]) => [k, k.startsWith('proj_') && t.ndim === 4 ? t.reshape([t.shape[0]!, t.shape[1]!]) : t]));
    lin.loadStateDict(sd);
    assert.deepEqual(lin.proj_in.weight.shape, [8, 8]);
    const x = randomTensor([2, 8, 3, 5], 21), ctx = randomTensor([2, 7, 6], 22);
    const a = conv.forward(x, ctx), b = lin.forward(x, ctx);
    assert.ok(a.sub(x).abs().max().item() > 1e-3, 'the transformer changes its input');
    assertClose(b, a, 1e-12, 1e-12, 'linear vs conv projection');
  }));
});
