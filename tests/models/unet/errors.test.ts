// Bad inputs and configs give errors that name the problem (never a libtorch stack from deep inside).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { liveTensors, noGrad, randn, tensor, tidy, zeros } from '../../../src/engine/index.js';
import { StateDictError } from '../../../src/nn/index.js';
import { UNet2DConditionModel, UNetConfigError, parseUNetConfig } from '../../../src/models/unet/index.js';
import { fixturePath } from '../../fixtures.js';

const tinyConfig = JSON.parse(readFileSync(fixturePath('golden/tiny-sd/unet/config.json'), 'utf8')) as Record<string, unknown>;
// random weights are enough here: these tests check what is refused, not numbers
const unet = tidy(() => new UNet2DConditionModel(tinyConfig));

test('sample with the wrong channel count names in_channels', () => {
  tidy(() => {
    assert.throws(() => unet.forward(zeros([1, 3, 8, 8]), 1, zeros([1, 77, 32])),
      /sample has 3 channels but the model takes in_channels=4/);
    assert.throws(() => unet.forward(zeros([4, 8, 8]), 1, zeros([1, 77, 32])), /sample must be \[B, 4, H, W\]/);
  });
});

test('conditioning of the wrong width names cross_attention_dim', () => {
  tidy(() => {
    assert.throws(() => unet.forward(zeros([1, 4, 8, 8]), 1, zeros([1, 77, 768])),
      /encoder_hidden_states have width 768 but cross_attention_dim is 32/);
    assert.throws(() => unet.forward(zeros([1, 4, 8, 8]), 1, zeros([77, 32])), /encoder_hidden_states must be \[B, seq, 32\]/);
    assert.throws(() => unet.forward(zeros([2, 4, 8, 8]), 1, zeros([3, 77, 32])), /batch 3 does not match the sample batch 2/);
    assert.throws(() => unet.forward(zeros([1, 4, 8, 8]), 1, null), /encoder_hidden_states are required/);
  });
});

test('timesteps that do not fit the batch are refused', () => {
  tidy(() => {
    assert.throws(() => unet.forward(zeros([2, 4, 8, 8]), tensor([1, 2, 3]), zeros([2, 77, 32])), /3 timesteps for a batch of 2/);
  });
});

test('a refused forward leaks nothing', () => {
  const x = zeros([1, 4, 8, 8]), e = zeros([1, 77, 33]), t2 = tensor([1, 2]), e32 = zeros([1, 77, 32]);
  const before = liveTensors();
  assert.throws(() => noGrad(() => unet.forward(x, 5, e)));
  assert.throws(() => noGrad(() => unet.forward(x, t2, e32))); // fails inside the forward's scope
  assert.equal(liveTensors(), before);
  for (const t of [x, e, t2, e32]) t.dispose();
});

test('part-level shape checks name the part', () => {
  tidy(() => {
    const block = unet.down_blocks.at(0).resnets.at(0);
    assert.throws(() => block.forward(randn([1, 5, 4, 4]), zeros([1, 128])), /ResnetBlock2D: expected input \[B, 32, H, W\], got \[1, 5, 4, 4\]/);
  });
});

test('config errors name the option', () => {
  assert.throws(() => parseUNetConfig({ ...tinyConfig, num_attention_heads: 8 }), (e: Error) =>
    e instanceof UNetConfigError && /num_attention_heads=8 is not supported/.test(e.message) && /attention_head_dim/.test(e.message));
  assert.throws(() => parseUNetConfig({ ...tinyConfig, down_block_types: ['CrossAttnDownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'] }),
    /unsupported down block type 'AttnDownBlock2D'/);
  assert.throws(() => parseUNetConfig({ ...tinyConfig, block_out_channels: [32, 64] }), /block_out_channels \(2\) must have one entry per down block \(3\)/);
  assert.throws(() => parseUNetConfig({ ...tinyConfig, attention_head_dim: [2, 2] }), /attention_head_dim has 2 entries/);
  assert.throws(() => parseUNetConfig({ ...tinyConfig, attention_head_dim: 3 }), /does not split into 3 attention heads/);
  assert.throws(() => parseUNetConfig({ ...tinyConfig, norm_num_groups: 5 }), /does not split into norm_num_groups=5/);
  assert.throws(() => parseUNetConfig({ ...tinyConfig, class_embed_type: 'timestep' }), /class_embed_type="timestep" is not supported/);
  assert.throws(() => parseUNetConfig({ ...tinyConfig, act_fn: 'mish' }), /act_fn 'mish' is not supported/);
  assert.throws(() => parseUNetConfig({ ...tinyConfig, layers_per_blok: 2 }), /unknown option 'layers_per_blok'/);
  // what diffusers writes into every config.json is accepted as is
  assert.equal(parseUNetConfig(tinyConfig).attention_head_dim, 2);
});

test('loading weights of another size lists every mis-shaped key', () => {
  const other = new UNet2DConditionModel({ ...tinyConfig, cross_attention_dim: 48 }, { device: 'meta' });
  assert.throws(() => tidy(() => other.loadStateDict(unet.stateDict())), (e: Error) =>
    e instanceof StateDictError && e.mismatched.length === 22 && /attn2\.to_k\.weight: model \[32, 48\], checkpoint \[32, 32\]/.test(e.message));
});
