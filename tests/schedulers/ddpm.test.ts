// DDPMScheduler: diffusers' timestep grid (golden.json), add_noise (golden) and hand-computed ancestral steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, randn, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { DDPMScheduler } from '../../src/schedulers/index.js';
import { assertClose, pseudoRandom } from '../helpers.js';
import { golden, goldenJson, maxAbsDiff } from './golden.js';

// make_golden.py: DDPMScheduler(**SD_SCHED without set_alpha_to_one)
const sdConfig = Object.fromEntries(Object.entries(goldenJson.tiny_configs.scheduler).filter(([k]) => k !== 'set_alpha_to_one'));
const sd = () => DDPMScheduler.fromConfig({ _class_name: 'DDPMScheduler', ...sdConfig });

function input(seed: number): [Tensor, number[]] {
  const v = Float32Array.from(pseudoRandom(256, seed));
  return [tensor(v).reshape([1, 4, 8, 8]), Array.from(v)];
}

test('DDPM set_timesteps(10) reproduces diffusers; its alphas and add_noise equal the golden ones', () => {
  const s = sd();
  s.setTimesteps(10);
  assert.deepEqual(s.timesteps, goldenJson.ddpm_timesteps_10);
  assert.ok(maxAbsDiff(s.alphasCumprod, golden('sched.alphas_cumprod')) <= 1e-7);
  tidy(() => {
    assertClose(s.addNoise(golden('ddim.step_sample'), golden('add_noise.noise'), [500]), golden('add_noise.t500'), 1e-6, 1e-6, 'add_noise t=500');
  });
});

test('DDPM step (fixed_small): posterior mean of eq. 7 plus sqrt(beta~_t) * z from the generator', () => {
  const s = sd();
  s.setTimesteps(10);
  tidy(() => {
    const [x, xv] = input(21), [e, ev] = input(22);
    const t = 901, tPrev = 801;
    assert.equal(s.previousTimestep(t), tPrev);
    const a = s.alphasCumprod[t]!, ap = s.alphasCumprod[tPrev]!;
    const alphaT = a / ap, betaT = 1 - alphaT;
    const x0 = xv.map((xi, i) => (xi - Math.sqrt(1 - a) * ev[i]!) / Math.sqrt(a));
    const c0 = (Math.sqrt(ap) * betaT) / (1 - a), ct = (Math.sqrt(alphaT) * (1 - ap)) / (1 - a);
    const sigma = Math.sqrt(((1 - ap) / (1 - a)) * betaT);
    const z = randn([1, 4, 8, 8], { generator: new Generator(7) }).toFlatArray();
    const expected = x0.map((v, i) => c0 * v + ct * xv[i]! + sigma * z[i]!);
    const out = s.step(e, t, x, { generator: new Generator(7) });
    assertClose(out.predOriginalSample, x0, 1e-5, 1e-5, 'x0');
    assertClose(out.prevSample, expected, 1e-5, 1e-5, 'prev');
    assert.ok(Math.abs(s.variance(t) / (sigma * sigma) - 1) < 1e-6, 'variance');
    // fixed_large uses beta_t (of the strided step) as the variance
    const large = DDPMScheduler.fromConfig({ ...sdConfig, variance_type: 'fixed_large' });
    large.setTimesteps(10);
    const zl = randn([1, 4, 8, 8], { generator: new Generator(8) });
    const exp2 = x0.map((v, i) => c0 * v + ct * xv[i]! + Math.sqrt(betaT) * zl.toFlatArray()[i]!);
    assertClose(large.step(e, t, x, { varianceNoise: zl }).prevSample, exp2, 1e-5, 1e-5, 'fixed_large');
  });
});

test('DDPM step at t = 0 adds no noise and returns x0; before setTimesteps the previous step is t - 1', () => {
  const s = sd();
  tidy(() => {
    const [x] = input(23), [e] = input(24);
    assert.equal(s.previousTimestep(500), 499);
    const a = s.step(e, 0, x, { generator: new Generator(1) });
    const b = s.step(e, 0, x, { generator: new Generator(2) });
    assertClose(a.prevSample, b.prevSample, 0, 0, 'no noise at t=0');
    assertClose(a.prevSample, a.predOriginalSample, 1e-6, 1e-6, 'x_{-1} = x0');
  });
});

test('DDPM bad input gives clear errors', () => {
  const s = sd();
  assert.throws(() => s.setTimesteps(0), /positive integer/);
  assert.throws(() => s.setTimesteps(5000), /cannot be larger/);
  assert.throws(() => new DDPMScheduler({ variance_type: 'learned' as never }), /variance_type 'learned'/);
  assert.throws(() => new DDPMScheduler({ beta_schedule: 'sigmoid' as never }), /unknown beta_schedule 'sigmoid'/);
  s.setTimesteps(10);
  const [x] = input(25);
  assert.throws(() => s.step(x, 500, x), /timestep 500 is not one of the 10 timesteps/);
});
