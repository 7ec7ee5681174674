// LoRA adapters (src/nn/lora.ts): a fresh adapter changes nothing, its update is scale * B A by hand,
// gradients reach only the adapters, and merging gives the adapted model's outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, linear, mseLoss, noGrad, randn, tidy } from '../../src/engine/index.js';
import { Linear, Conv2d, LoRA, Module, loraMergedWeightNames } from '../../src/nn/index.js';
import { loadStableDiffusion, disposeStableDiffusion } from '../../src/pipelines/index.js';
import { assertClose } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

const inputs = (sd: { unet: { config: { in_channels: number; cross_attention_dim: number | number[] } } }) => {
  const g = new Generator(3);
  const dim = sd.unet.config.cross_attention_dim;
  return {
    sample: randn([2, sd.unet.config.in_channels, 8, 8], { generator: g }), // [2, 4, 8, 8]
    ehs: randn([2, 7, Array.isArray(dim) ? dim[0]! : dim], { generator: g }), // [2, 7, D]
  };
};

/** Sets every adapter's B to small random values, as after some training. */
function perturb(lora: LoRA, seed = 5): void {
  const g = new Generator(seed);
  noGrad(() => {
    for (const [n, p] of lora.namedParameters()) if (n.endsWith('lora_B.weight')) tidy(() => { p.copy_(randn(p.shape, { generator: g }).mul(0.05)); });
  });
}

test('fresh adapters leave the UNet\'s output unchanged, bit for bit; detached, the model is the base again', async () => {
  const sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
  try {
    const { sample, ehs } = inputs(sd);
    const base = noGrad(() => sd.unet.forward(sample, 500, ehs)).toFlatArray();
    for (const targets of ['attention', 'attention+resnets'] as const) {
      const lora = new LoRA(sd.unet, { rank: 2, targets, generator: new Generator(1) });
      assert.deepEqual(noGrad(() => sd.unet.forward(sample, 500, ehs)).toFlatArray(), base, `${targets}: zero B changes nothing`);
      perturb(lora);
      assert.notDeepEqual(noGrad(() => sd.unet.forward(sample, 500, ehs)).toFlatArray(), base, 'a trained adapter does change it');
      lora.detach();
      assert.deepEqual(noGrad(() => sd.unet.forward(sample, 500, ehs)).toFlatArray(), base, 'detached');
      lora.dispose();
    }
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('the targets: attention projections (diffusers\' default), plus the resnets\' convolutions; keys as PEFT writes them', async () => {
  const sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
  try {
    const lora = new LoRA(sd.unet, { rank: 4 });
    const layers = lora.layerNames();
    assert.ok(layers.length > 0 && layers.every((n) => /\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$/.test(n)), layers.join(' '));
    const attnLinears = sd.unet.namedModules().filter(([n, m]) => m instanceof Linear && /\.attn[12]\.(to_[qkv]|to_out\.0)$/.test(n));
    assert.equal(layers.length, attnLinears.length, 'every attention projection');
    assert.deepEqual(loraMergedWeightNames(sd.unet, 'attention'), layers.map((n) => `${n}.weight`));
    const keys = Object.keys(lora.stateDict());
    assert.equal(keys.length, 2 * layers.length);
    assert.ok(keys.includes(`${layers[0]}.lora_A.weight`) && keys.includes(`${layers[0]}.lora_B.weight`), keys[0]);
    lora.detach();
    lora.dispose();
    const withConv = new LoRA(sd.unet, { rank: 4, targets: 'attention+resnets' });
    const convs = withConv.layerNames().filter((n) => /\.resnets\.\d+\.conv[12]$/.test(n));
    assert.equal(convs.length, sd.unet.namedModules().filter(([n, m]) => m instanceof Conv2d && /\.resnets\.\d+\.conv[12]$/.test(n)).length);
    assert.ok(convs.length > 0);
    withConv.detach();
    withConv.dispose();
    assert.throws(() => new LoRA(sd.unet, { rank: 0 }), /rank must be an integer >= 1/);
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('a linear layer\'s update is (alpha / r) x A^T B^T, by hand', () => {
  const layer = new Linear(6, 5, true, { generator: new Generator(2) });
  const parent = new LoRA(new OneAttention(layer), { rank: 3, alpha: 6, generator: new Generator(4) });
  perturb(parent);
  const [a, b] = [parent.namedParameters()[0]![1], parent.namedParameters()[1]![1]];
  const x = randn([2, 4, 6], { generator: new Generator(9) });
  const got = noGrad(() => layer.forward(x));
  const want = noGrad(() => linear(x, layer.weight, layer.bias).add(linear(linear(x, a), b).mul(2))); // alpha / r = 2
  assertClose(got, want, 1e-6, 1e-6, 'adapted output');
  // Merged: W + 2 B A gives the same output through the plain layer.
  parent.merge();
  assert.equal(layer.adapter, null);
  assertClose(noGrad(() => layer.forward(x)), want, 1e-5, 1e-5, 'merged output');
});

test('gradients reach only the adapters, and merging reproduces the adapted UNet (convolutions included)', async () => {
  const sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
  try {
    const { sample, ehs } = inputs(sd);
    sd.unet.requiresGrad_(false);
    const lora = new LoRA(sd.unet, { rank: 2, targets: 'attention+resnets', generator: new Generator(1) });
    lora.requiresGrad_(true);
    tidy(() => mseLoss(sd.unet.forward(sample, 500, ehs), sample).backward());
    for (const [n, p] of sd.unet.namedParameters()) assert.equal(p.grad, null, `${n} got a gradient`);
    for (const [n, p] of lora.namedParameters()) {
      const g = p.grad;
      assert.ok(g !== null, `${n} has no gradient`);
      const norm = noGrad(() => g.abs().sum().item());
      // With B = 0, dL/dA = 0 and dL/dB is not.
      if (n.endsWith('lora_A.weight')) assert.equal(norm, 0, n);
      else assert.ok(norm > 0, n);
    }
    perturb(lora);
    const adapted = noGrad(() => sd.unet.forward(sample, 500, ehs));
    lora.merge();
    assertClose(noGrad(() => sd.unet.forward(sample, 500, ehs)), adapted, 1e-5, 1e-4, 'merged UNet');
    lora.dispose();
  } finally {
    disposeStableDiffusion(sd);
  }
});

/** A model whose one layer is named like an attention projection (attn1.to_q). */
class OneAttention extends Module {
  constructor(layer: Linear) {
    super();
    this.module('attn1', new (class extends Module {
      constructor() {
        super();
        this.module('to_q', layer);
      }
    })());
  }
}
