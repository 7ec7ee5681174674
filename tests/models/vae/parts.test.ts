// VAE parts against hand computation: the mid-block attention, the asymmetric-pad downsampler, the
// nearest upsampler, the Gaussian posterior; config parsing and the legacy-key conversion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tensor, tidy, zeros, type Tensor } from '../../../src/engine/index.js';
import {
  AUTOENCODER_KL_DEFAULTS, DiagonalGaussianDistribution, Downsample2D, SD_V1_VAE_CONFIG, Upsample2D, VaeAttention,
  convertLegacyVaeAttentionKeys, currentVaeAttentionKey, loadAutoencoderKLConfig, parseAutoencoderKLConfig,
} from '../../../src/models/vae/index.js';
import { assertClose, pseudoRandom } from '../../helpers.js';
import { fixturePath } from '../../fixtures.js';

const vec = (n: number, seed: number, scale = 1) => pseudoRandom(n, seed).map((v) => v * scale);

test('VaeAttention = x + W_o softmax(q k^T / sqrt(C)) v on group-normed positions (hand-computed)', () => {
  const C = 4, P = 4; // 4 channels in 2 groups, a 2x2 image
  const attn = new VaeAttention(C, 2);
  const w = (seed: number) => vec(C * C, seed, 0.5), b = (seed: number) => vec(C, seed, 0.1);
  const p = {
    'group_norm.weight': vec(C, 1).map((v) => 1 + 0.5 * v), 'group_norm.bias': b(2),
    'to_q.weight': w(3), 'to_q.bias': b(4), 'to_k.weight': w(5), 'to_k.bias': b(6),
    'to_v.weight': w(7), 'to_v.bias': b(8), 'to_out.0.weight': w(9), 'to_out.0.bias': b(10),
  };
  tidy(() => {
    attn.loadStateDict(Object.fromEntries(Object.entries(p).map(([k, v]) => [k, tensor(v).reshape(k.endsWith('weight') && k !== 'group_norm.weight' ? [C, C] : [C])])));
    const x = vec(C * P, 11); // [1, C, 2, 2] -> x[c * P + p]
    // group norm over (2 channels x 4 positions), biased variance, eps 1e-6
    const h: number[][] = Array.from({ length: P }, () => new Array<number>(C).fill(0)); // [position][channel]
    for (let g = 0; g < 2; g++) {
      const vals = x.slice(g * 2 * P, (g + 1) * 2 * P);
      const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
      const variance = vals.reduce((a, v) => a + (v - mean) ** 2, 0) / vals.length;
      for (let c = g * 2; c < g * 2 + 2; c++) {
        for (let q = 0; q < P; q++) h[q]![c] = ((x[c * P + q]! - mean) / Math.sqrt(variance + 1e-6)) * p['group_norm.weight'][c]! + p['group_norm.bias'][c]!;
      }
    }
    const lin = (W: number[], B: number[], r: number[]) => Array.from({ length: C }, (_, o) => B[o]! + r.reduce((a, v, i) => a + v * W[o * C + i]!, 0));
    const q = h.map((r) => lin(p['to_q.weight'], p['to_q.bias'], r));
    const k = h.map((r) => lin(p['to_k.weight'], p['to_k.bias'], r));
    const v = h.map((r) => lin(p['to_v.weight'], p['to_v.bias'], r));
    const expected = new Array<number>(C * P);
    for (let i = 0; i < P; i++) {
      const s = k.map((kj) => kj.reduce((a, kv, c) => a + kv * q[i]![c]!, 0) / Math.sqrt(C));
      const m = Math.max(...s);
      const e = s.map((z) => Math.exp(z - m));
      const sum = e.reduce((a, z) => a + z, 0);
      const a = Array.from({ length: C }, (_, c) => e.reduce((acc, z, j) => acc + (z / sum) * v[j]![c]!, 0));
      const o = lin(p['to_out.0.weight'], p['to_out.0.bias'], a);
      for (let c = 0; c < C; c++) expected[c * P + i] = o[c]! + x[c * P + i]!;
    }
    assertClose(attn.forward(tensor(x).reshape([1, C, 2, 2])), expected, 1e-5, 1e-5, 'attention');
  });
});

test('Downsample2D pads one zero row/column at the bottom/right, then a stride-2 3x3 conv', () => {
  const down = new Downsample2D(1);
  tidy(() => {
    down.loadStateDict({ 'conv.weight': tensor(vec(9, 12)).reshape([1, 1, 3, 3]), 'conv.bias': tensor([0.25]) });
    const x = vec(36, 13); // 6x6 -> padded 7x7 -> 3x3
    const wt = vec(9, 12);
    const at = (r: number, c: number) => (r < 6 && c < 6 ? x[r * 6 + c]! : 0);
    const expected: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let s = 0.25;
      for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) s += wt[a * 3 + b]! * at(2 * i + a, 2 * j + b);
      expected.push(s);
    }
    const y = down.forward(tensor(x).reshape([1, 1, 6, 6]));
    assert.deepEqual(y.shape, [1, 1, 3, 3]);
    assertClose(y, expected, 1e-6, 1e-6, 'downsample');
  });
});

test('Upsample2D repeats each pixel 2x2 (nearest) before its conv', () => {
  const up = new Upsample2D(1);
  tidy(() => {
    const centre = zeros([1, 1, 3, 3]);
    centre.select(2, 1).select(2, 1).fill_(1); // identity kernel
    up.loadStateDict({ 'conv.weight': centre, 'conv.bias': tensor([0]) });
    const y = up.forward(tensor([[[[1, 2], [3, 4]]]]));
    assertClose(y, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], 0, 0, 'nearest x2');
  });
});

test('DiagonalGaussianDistribution: logvar clamped to [-30, 20], std = exp(logvar / 2), KL to N(0, 1)', () => {
  tidy(() => {
    // moments [1, 2, 1, 2]: channel 0 = mean, channel 1 = logvar
    const d = new DiagonalGaussianDistribution(tensor([[[[0.5, -1]], [[50, -40]]]]));
    assertClose(d.mean, [0.5, -1], 0, 0, 'mean');
    assertClose(d.logvar, [20, -30], 0, 0, 'clamped logvar');
    assertClose(d.std, [Math.exp(10), Math.exp(-15)], 0, 1e-6, 'std');
    const kl = 0.5 * (0.25 + Math.exp(20) - 1 - 20) + 0.5 * (1 + Math.exp(-30) - 1 + 30);
    assertClose(d.kl(), [kl], 0, 1e-6, 'kl');
    assert.throws(() => new DiagonalGaussianDistribution(zeros([1, 3, 2, 2])), /even channel count/);
  });
});

test('config.json parsing: the tiny-sd file, diffusers defaults, SD v1 preset, clear errors', () => {
  const tiny = loadAutoencoderKLConfig(fixturePath('golden/tiny-sd'));
  assert.deepEqual(tiny.block_out_channels, [8, 16, 16, 16]);
  assert.equal(tiny.norm_num_groups, 4);
  assert.equal(tiny.scaling_factor, 0.18215);
  assert.equal(tiny.force_upcast, true);
  assert.deepEqual(parseAutoencoderKLConfig({}), { ...AUTOENCODER_KL_DEFAULTS });
  const manifest = JSON.parse(readFileSync(fixturePath('golden/sd-v1-manifest.json'), 'utf8')) as { configs: { vae: Record<string, unknown> } };
  assert.deepEqual(parseAutoencoderKLConfig(manifest.configs.vae), { ...SD_V1_VAE_CONFIG });
  assert.throws(() => parseAutoencoderKLConfig({ _class_name: 'AsymmetricAutoencoderKL' }), /only AutoencoderKL/);
  assert.throws(() => parseAutoencoderKLConfig({ down_block_types: ['AttnDownEncoderBlock2D'] }), /'AttnDownEncoderBlock2D' is not supported/);
  assert.throws(() => parseAutoencoderKLConfig({ block_out_channels: [64, 128] }), /down_block_types has 1 entries but block_out_channels has 2/);
  assert.throws(() => parseAutoencoderKLConfig({ act_fn: 'tanh' }), /act_fn 'tanh' is not supported/);
  assert.throws(() => parseAutoencoderKLConfig({ block_out_channels: [48] }), /48 does not split into norm_num_groups 32/);
  assert.throws(() => parseAutoencoderKLConfig({ latent_channels: 0 }), /latent_channels must be a positive integer/);
  assert.throws(() => loadAutoencoderKLConfig('/nonexistent/vae'), /cannot read vae config/);
});

test('convertLegacyVaeAttentionKeys renames and reshapes only the legacy attention keys', () => {
  tidy(() => {
    const w = tensor(vec(9, 14)).reshape([3, 3, 1, 1]);
    const other = tensor([1, 2, 3]);
    const sd = new Map<string, Tensor>([
      ['encoder.mid_block.attentions.0.query.weight', w],
      ['encoder.mid_block.attentions.0.query.bias', tensor([0.1, 0.2, 0.3])],
      ['decoder.mid_block.attentions.0.proj_attn.weight', tensor(vec(9, 15)).reshape([3, 3])],
      ['decoder.mid_block.attentions.0.group_norm.weight', other],
      ['decoder.conv_in.bias', other],
    ]);
    const { stateDict, renamed } = convertLegacyVaeAttentionKeys(sd);
    assert.deepEqual([...stateDict.keys()], [
      'encoder.mid_block.attentions.0.to_q.weight', 'encoder.mid_block.attentions.0.to_q.bias',
      'decoder.mid_block.attentions.0.to_out.0.weight', 'decoder.mid_block.attentions.0.group_norm.weight', 'decoder.conv_in.bias',
    ]);
    assert.equal(renamed.length, 3);
    const q = stateDict.get('encoder.mid_block.attentions.0.to_q.weight')!;
    assert.deepEqual(q.shape, [3, 3]);
    assertClose(q, Float32Array.from(vec(9, 14)), 0, 0, 'values kept');
    assert.equal(stateDict.get('decoder.conv_in.bias'), other, 'other keys are the same tensors');
    assert.equal(currentVaeAttentionKey('decoder.mid_block.attentions.0.value.bias'), 'decoder.mid_block.attentions.0.to_v.bias');
    assert.equal(currentVaeAttentionKey('decoder.mid_block.attentions.0.to_v.bias'), null);
    assert.throws(() => convertLegacyVaeAttentionKeys(new Map([
      ['a.attentions.0.key.weight', tensor(vec(4, 1)).reshape([2, 2])], ['a.attentions.0.to_k.weight', tensor(vec(4, 1)).reshape([2, 2])],
    ])), /both 'a.attentions.0.key.weight' and 'a.attentions.0.to_k.weight'/);
    assert.throws(() => convertLegacyVaeAttentionKeys(new Map([['a.attentions.0.value.weight', tensor(vec(12, 1)).reshape([2, 2, 3])]])), /expected \[C, C\] or \[C, C, 1, 1\]/);
  });
});
