// Gradient checkpointing gives the gradients of an ordinary backward pass: every UNet weight's and
// the conditioning's, on the tiny golden UNet (with skip connections riding along the chain).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, liveTensors, mseLoss, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { checkpointedBackward } from '../../src/nn/index.js';
import { UNet2DConditionModel } from '../../src/models/unet/index.js';
import { assertClose } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

function grads(unet: UNet2DConditionModel, ehs: Tensor): number[][] {
  return [...unet.parameters().map((p) => p.grad!.toFlatArray()), ehs.grad!.toFlatArray()];
}

test('checkpointed gradients equal ordinary ones (all UNet weights and the conditioning)', () => {
  const unet = UNet2DConditionModel.fromPretrained(fixturePath('golden/tiny-sd/unet'));
  unet.requiresGrad_(true);
  const gen = new Generator(4);
  // 10x12 latents: not divisible by 4, so the upsamplers get explicit sizes too.
  const sample = randn([2, 4, 10, 12], { generator: gen });
  const target = randn([2, 4, 10, 12], { generator: gen });
  const ehs = randn([1, 77, 32], { generator: gen }).requiresGrad_(true);

  const plain = tidy(() => {
    const l = mseLoss(unet.forward(sample, 321, ehs), target);
    l.backward();
    return l.item();
  });
  const expected = grads(unet, ehs);
  for (const p of unet.parameters()) p.grad = null;
  ehs.grad = null;

  const live = liveTensors();
  const { inputs, segments } = unet.segments(sample, 321, ehs);
  assert.equal(segments.length, 1 + 3 + 1 + 3 + 1, 'input, 3 down blocks, mid, 3 up blocks, output');
  const lossTensor = checkpointedBackward(segments, inputs, ([pred]) => mseLoss(pred!, target));
  assert.equal(liveTensors() - live, 1, 'no handles left behind but the loss');
  const lossValue = lossTensor.item();
  lossTensor.dispose();
  assert.ok(Math.abs(lossValue - plain) < 1e-6, `loss ${lossValue} vs ${plain}`);
  const got = grads(unet, ehs);
  assert.ok(expected.some((g) => g.some((v) => v !== 0)));
  got.forEach((g, i) => assertClose(g, expected[i]!, 1e-6, 1e-5, i < got.length - 1 ? unet.namedParameters()[i]![0] : 'ehs'));
  // And the segments compose to the forward pass.
  const [out] = noGrad(() => segments.reduce((s, seg) => tidy(() => seg(s)), inputs));
  assertClose(out!, noGrad(() => unet.forward(sample, 321, ehs)), 1e-6, 1e-6, 'segments = forward');
});

test('inputs passed through the chain unchanged stay the caller\'s', () => {
  const x = randn([3], { generator: new Generator(1) }).requiresGrad_(true);
  const w = randn([3], { generator: new Generator(2) }).requiresGrad_(true);
  const loss = checkpointedBackward([([a, b]) => [a!.mul(w), b!], ([a, b]) => [a!.mul(b!)]], [x, x], ([y]) => y!.sum());
  const value = loss.item();
  loss.dispose();
  assert.equal(x.isDisposed, false);
  assert.equal(x.kept, false);
  // y = (x * w) * x: dy/dx = 2 w x, dy/dw = x^2
  assertClose(x.grad!, noGrad(() => w.mul(x).mul(2)), 1e-6, 1e-6, 'dx');
  assertClose(w.grad!, noGrad(() => x.square()), 1e-6, 1e-6, 'dw');
  assert.ok(Math.abs(value - noGrad(() => x.square().mul(w).sum().item())) < 1e-5);
});

test('the returned loss belongs to the caller\'s scope: a tidy that derives from it and returns the result frees it', () => {
  const x = randn([3], { generator: new Generator(1) }).requiresGrad_(true);
  const step = () => tidy(() => checkpointedBackward([([a]) => [a!.mul(2)]], [x], ([y]) => y!.sum().mul(4)).div(4)); // as fp16 loss scaling does
  step().dispose();
  const live = liveTensors();
  for (let i = 0; i < 3; i++) step().dispose();
  assert.equal(liveTensors() - live, 0, 'no loss tensor left behind per step');
});
