// The C++ reference UNet forward (native/src/unet-reference.cc, the baseline of bench/unet.ts) computes
// exactly what the TypeScript UNet2DConditionModel computes: same ops, same order, so outputs agree to
// 1e-5 (in practice bit for bit), on the tiny-sd golden checkpoint and on a random mid-size model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { native } from '../../src/engine/native.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { UNet2DConditionModel, parseUNetConfig } from '../../src/models/unet/index.js';
import { MID_UNET_CONFIG, unetReference } from '../../bench/unet.js';
import { assertClose } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

const golden = loadSafetensors(fixturePath('golden/golden.safetensors'), {
  keys: ['unet.sample', 'unet.timesteps', 'unet.encoder_hidden_states', 'unet.out'],
});
const G = (k: string): Tensor => golden.get(k)!;
const tiny = UNet2DConditionModel.fromPretrained(fixturePath('golden/tiny-sd/unet'));

function maxAbs(a: Tensor, b: Tensor): number {
  return tidy(() => a.sub(b).abs().max().item());
}

/** TS forward and C++ forward on the same inputs: they must agree within 1e-5. */
function compare(unet: UNet2DConditionModel, sample: Tensor, timestep: number | Tensor, ehs: Tensor, what: string): Tensor {
  const ts = noGrad(() => unet.forward(sample, timestep, ehs));
  const cpp = unetReference(unet, sample, timestep, ehs, { iters: 2, warmup: 1 });
  assert.deepEqual(cpp.out.shape, ts.shape);
  assert.equal(cpp.samples.length, 2);
  assert.ok(cpp.medianMs > 0);
  console.log(`  ${what}: max|C++ - TS| = ${maxAbs(cpp.out, ts).toExponential(2)}`);
  assertClose(cpp.out, ts, 1e-5, 0, what);
  ts.dispose();
  return cpp.out;
}

test('tiny-sd checkpoint: C++ forward equals the TypeScript forward (and diffusers unet.out)', () => {
  // per-sample timesteps [10, 981], batch 2
  const out = compare(tiny, G('unet.sample'), G('unet.timesteps'), G('unet.encoder_hidden_states'), 'tiny golden');
  assertClose(out, G('unet.out'), 1e-4, 1e-4, 'C++ vs diffusers unet.out');
  out.dispose();
  // a number timestep, a 1-row conditioning broadcast to the batch
  compare(tiny, G('unet.sample'), 500, G('unet.encoder_hidden_states').narrow(0, 0, 1), 'tiny t=500').dispose();
});

test('tiny-sd checkpoint at an odd latent size (6x10: upsample sizes) agrees too', () => {
  tidy(() => {
    const gen = new Generator(3);
    const x = randn([1, 4, 6, 10], { generator: gen });
    compare(tiny, x, 250, G('unet.encoder_hidden_states').narrow(0, 1, 1), 'tiny 6x10');
  });
});

test('random mid-size UNet (64/128/256 ch, 4 heads): C++ forward equals the TypeScript forward', () => {
  tidy(() => {
    const gen = new Generator(7);
    const unet = new UNet2DConditionModel(MID_UNET_CONFIG, { generator: gen }).eval();
    try {
      const x = randn([2, 4, 16, 16], { generator: gen });
      const ehs = randn([2, 77, 128], { generator: gen });
      compare(unet, x, 741, ehs, 'mid 2x4x16x16');
    } finally {
      unet.dispose();
    }
  });
});

test('the C++ forward refuses what it does not implement, naming it', () => {
  tidy(() => {
    const sd = Object.fromEntries(Object.entries(tiny.stateDict()).map(([k, t]) => [k, t.handle]));
    const x = G('unet.sample'), ehs = G('unet.encoder_hidden_states');
    const run = (weights: typeof sd, config: object) => native.unetReferenceBench(weights, config, x.handle, 500, ehs.handle, 1, 0);
    const cfg = tiny.config as unknown as Record<string, unknown>;
    const other = { ...cfg, down_block_types: ['SimpleCrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'] };
    assert.throws(() => run(sd, other), /unetReferenceBench: config: down block type 'SimpleCrossAttnDownBlock2D' is not supported/);
    assert.throws(() => run(sd, { ...cfg, use_linear_projection: true }), /use_linear_projection=true/);
    assert.throws(() => run(sd, { ...cfg, layers_per_block: [2, 2] }), /'layers_per_block' has 2 entries for 3 blocks/);
    const { ['mid_block.resnets.1.conv2.weight']: _dropped, ...missing } = sd;
    assert.throws(() => run(missing, cfg), /weights: missing 'mid_block\.resnets\.1\.conv2\.weight'/);
    assert.throws(() => run({ ...sd, 'extra.weight': sd['conv_in.weight']! }, cfg), /1 key\(s\) the forward never read: extra\.weight/);
    assert.throws(() => run(sd, parseUNetConfig({ ...cfg, cross_attention_dim: 64 })), /encoderHiddenStates must be \[B, seq, 64\]/);
  });
});
