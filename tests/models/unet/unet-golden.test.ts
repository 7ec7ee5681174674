// UNet2DConditionModel against diffusers on the tiny-sd fixture: forward (unet.out), the gradient
// w.r.t. the conditioning (unet.grad_encoder_hidden_states), and odd latent sizes (a plain-PyTorch
// reference that itself reproduces unet.out: make_odd_size_reference.py beside this file).
//   golden, from tests/fixtures/golden/make_golden.py:
//     eps = unet(x, tt, emb).sample                                   -> unet.out
//     e1 = emb[:1].requires_grad_(); (unet(x[:1], tt[:1], e1).sample * r).sum().backward()
//                                                                      -> unet.grad_encoder_hidden_states
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { enableGrad, grad, liveTensors, noGrad, tensor, tidy, type Tensor } from '../../../src/engine/index.js';
import { loadSafetensors } from '../../../src/io/safetensors.js';
import { UNet2DConditionModel } from '../../../src/models/unet/index.js';
import { assertClose } from '../../helpers.js';
import { fixturePath, repoRoot } from '../../fixtures.js';

const golden = loadSafetensors(fixturePath('golden/golden.safetensors'), {
  keys: ['unet.sample', 'unet.timesteps', 'unet.encoder_hidden_states', 'unet.out', 'unet.grad_probe', 'unet.grad_encoder_hidden_states'],
});
const G = (k: string): Tensor => golden.get(k)!;
const unet = UNet2DConditionModel.fromPretrained(fixturePath('golden/tiny-sd/unet'));

function maxAbs(a: Tensor, b: Tensor): number {
  return tidy(() => a.sub(b).abs().max().item());
}

test('tiny-sd UNet forward matches diffusers unet.out (batch 2, timesteps [10, 981])', () => {
  const out = noGrad(() => unet.forward(G('unet.sample'), G('unet.timesteps'), G('unet.encoder_hidden_states')));
  assert.deepEqual(out.shape, [2, 4, 8, 8]);
  const err = maxAbs(out, G('unet.out'));
  console.log(`  unet.out max|diff| = ${err.toExponential(2)}`);
  assertClose(out, G('unet.out'), 1e-4, 1e-4, 'unet.out');
  out.dispose();
});

test('gradient w.r.t. encoder_hidden_states matches diffusers (Imagic stage A)', () => {
  const g = tidy(() => {
    const cond = G('unet.encoder_hidden_states').narrow(0, 0, 1).detach().clone().requiresGrad_(true); // [1, 77, 32]
    return enableGrad(() => {
      const out = unet.forward(G('unet.sample').narrow(0, 0, 1), G('unet.timesteps').narrow(0, 0, 1), cond);
      const loss = out.mul(G('unet.grad_probe')).sum();
      return grad([loss], [cond])[0]!;
    });
  });
  const expected = G('unet.grad_encoder_hidden_states');
  assert.deepEqual(g.shape, expected.shape);
  const err = maxAbs(g, expected);
  console.log(`  grad_encoder_hidden_states max|diff| = ${err.toExponential(2)} (max|grad| ${tidy(() => expected.abs().max().item()).toExponential(2)})`);
  assertClose(g, expected, 1e-4, 1e-4, 'grad_encoder_hidden_states');
  g.dispose();
});

interface OddCase { shape: number[]; timestep: number; sample: number[]; out: number[] }
const odd = JSON.parse(readFileSync(path.join(repoRoot, 'tests', 'models', 'unet', 'odd-size-reference.json'), 'utf8')) as { cases: OddCase[] };

for (const c of odd.cases) {
  test(`latent ${c.shape.join('x')} (not a multiple of 4) runs with upsample sizes and matches the reference`, () => {
    tidy(() => {
      const x = tensor(c.sample).reshape(c.shape);
      const cond = G('unet.encoder_hidden_states').narrow(0, 0, 1);
      const out = noGrad(() => unet.forward(x, c.timestep, cond));
      assert.deepEqual(out.shape, c.shape);
      assertClose(out, c.out, 1e-4, 1e-4, `out ${c.shape.join('x')}`);
    });
  });
}

test('timestep forms agree: number, scalar tensor, [1] int64 broadcast, [B] float', () => {
  tidy(() => {
    const x = G('unet.sample'); // [2, 4, 8, 8]
    const ehs = G('unet.encoder_hidden_states');
    noGrad(() => {
      const ref = unet.forward(x, tensor([500, 500], { dtype: 'float32' }), ehs);
      for (const t of [500, tensor(500, { dtype: 'int64' }), tensor([500], { dtype: 'int64' })]) {
        assertClose(unet.forward(x, t, ehs), ref, 0, 0, `timestep ${String(t)}`);
      }
      // per-sample timesteps: row i equals a batch-1 run at t_i
      const both = unet.forward(x, G('unet.timesteps'), ehs);
      const row1 = unet.forward(x.narrow(0, 1, 1), 981, ehs.narrow(0, 1, 1));
      assertClose(both.narrow(0, 1, 1), row1, 1e-5, 1e-5, 'row 1 at t=981');
    });
  });
});

test('encoder_hidden_states of batch 1 broadcast to the sample batch', () => {
  tidy(() => noGrad(() => {
    const x = G('unet.sample');
    const e1 = G('unet.encoder_hidden_states').narrow(0, 0, 1);
    const a = unet.forward(x, G('unet.timesteps'), e1);
    const b = unet.forward(x, G('unet.timesteps'), e1.expand([2, -1, -1]).contiguous());
    assertClose(a, b, 0, 0, 'broadcast conditioning');
  }));
});

test('a forward inside tidy leaves no live tensors behind', () => {
  noGrad(() => tidy(() => unet.forward(G('unet.sample'), 10, G('unet.encoder_hidden_states')))).dispose(); // warm
  const before = liveTensors();
  const out = noGrad(() => unet.forward(G('unet.sample'), 10, G('unet.encoder_hidden_states')));
  assert.equal(liveTensors(), before + 1, 'only the output survives');
  out.dispose();
});

test('weight gradients (Imagic stage B) match central differences in float64', () => {
  const u64 = UNet2DConditionModel.fromPretrained(fixturePath('golden/tiny-sd/unet'), { dtype: 'float64' });
  tidy(() => {
    const x = G('unet.sample').narrow(0, 0, 1).to('float64');
    const cond = G('unet.encoder_hidden_states').narrow(0, 0, 1).to('float64');
    const probe = G('unet.grad_probe').to('float64');
    const objective = () => u64.forward(x, 981, cond).mul(probe).sum();
    const named = new Map(u64.namedParameters());
    // one weight per kind of part: time MLP, resnet conv, cross-attention key, GEGLU, upsampler, output conv
    const picks: [string, number][] = [
      ['time_embedding.linear_1.weight', 3], ['down_blocks.0.resnets.0.conv1.weight', 17],
      ['mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight', 5],
      ['up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj.weight', 40],
      ['up_blocks.0.upsamplers.0.conv.weight', 9], ['conv_out.bias', 2],
    ];
    const params = picks.map(([k]) => named.get(k)!);
    for (const p of params) p.requiresGrad_(true);
    const grads = enableGrad(() => grad([objective()], params));
    const eps = 1e-6;
    picks.forEach(([k, i], j) => {
      const flat = params[j]!.view([-1]).narrow(0, i, 1);
      const at = (d: number) => noGrad(() => {
        flat.add_(d);
        const v = tidy(() => objective().item());
        flat.sub_(d);
        return v;
      });
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      const analytic = grads[j]!.view([-1]).narrow(0, i, 1).item();
      assert.ok(Math.abs(analytic - numeric) <= 1e-6 + 1e-4 * Math.abs(numeric), `${k}[${i}]: analytic ${analytic}, numeric ${numeric}`);
      assert.ok(Math.abs(numeric) > 1e-8, `${k}[${i}]: the probe reaches this weight`);
    });
    for (const p of params) p.requiresGrad_(false);
  });
  u64.dispose();
});
