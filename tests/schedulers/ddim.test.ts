// DDIMScheduler against diffusers' outputs (golden.safetensors, made by make_golden.py) and hand-computed cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, liveTensors, randn, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { DDIMScheduler, SD_V1_DDIM_CONFIG, type DDIMSchedulerConfig } from '../../src/schedulers/index.js';
import { assertClose, pseudoRandom } from '../helpers.js';
import { golden, goldenJson, maxAbsDiff } from './golden.js';

// The SD v1 config exactly as make_golden.py gave it to diffusers:
// DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
//               clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
const sd = () => DDIMScheduler.fromConfig(goldenJson.tiny_configs.scheduler);

/** A [1, 4, 8, 8]-shaped float32 tensor and its values in double, from a seed. */
function input(seed: number): [Tensor, number[]] {
  const v = Float32Array.from(pseudoRandom(256, seed));
  return [tensor(v).reshape([1, 4, 8, 8]), Array.from(v)];
}

test('alphas_cumprod matches diffusers (scaled_linear, float32) to 1e-7', () => {
  const s = sd();
  const err = maxAbsDiff(s.alphasCumprod, golden('sched.alphas_cumprod'));
  console.log(`# alphas_cumprod max|diff|: ${err.toExponential(2)}`);
  assert.ok(err <= 1e-7, `max |diff| ${err}`);
  assert.equal(s.alphasCumprod.length, 1000);
  assert.equal(s.finalAlphaCumprod, s.alphasCumprod[0], 'set_alpha_to_one=false: the final alpha is abar_0');
  assert.deepEqual(new DDIMScheduler(SD_V1_DDIM_CONFIG).alphasCumprod, s.alphasCumprod, 'the built-in SD v1 preset is the same schedule');
});

test('set_timesteps(50) and (10) reproduce diffusers (leading spacing, steps_offset 1)', () => {
  const s = sd();
  assert.equal(s.timesteps.length, 1000, 'before setTimesteps: every training step');
  s.setTimesteps(50);
  assert.deepEqual(s.timesteps, goldenJson.ddim_timesteps_50);
  s.setTimesteps(10);
  assert.deepEqual(s.timesteps, goldenJson.ddim_timesteps_10);
  assert.equal(s.numInferenceSteps, 10);
});

test('trailing and linspace spacing follow their formulas, with numpy round-half-to-even', () => {
  const grid = (cfg: Partial<DDIMSchedulerConfig>, n: number) => {
    const s = new DDIMScheduler(cfg);
    s.setTimesteps(n);
    return s.timesteps;
  };
  // trailing: round(N - k * N/n) - 1, k = 0..n-1
  const trailing = (N: number, n: number) => Array.from({ length: n }, (_, k) => {
    const x = N - (k * N) / n;
    const r = Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);
    return r - 1;
  });
  assert.deepEqual(grid({ timestep_spacing: 'trailing' }, 10), [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
  assert.deepEqual(grid({ timestep_spacing: 'trailing' }, 3), trailing(1000, 3)); // [999, 666, 332]
  // N = 10, n = 4: 10, 7.5, 5, 2.5 -> round half to even: 10, 8, 5, 2 -> 9, 7, 4, 1
  assert.deepEqual(grid({ num_train_timesteps: 10, timestep_spacing: 'trailing' }, 4), [9, 7, 4, 1]);
  assert.deepEqual(grid({ num_train_timesteps: 10, timestep_spacing: 'trailing' }, 4), trailing(10, 4));
  // linspace: round(linspace(0, N-1, n)) descending; steps_offset is not added
  assert.deepEqual(grid({ timestep_spacing: 'linspace', steps_offset: 1 }, 10), [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
  // linspace(0, 999, 5) = 0, 249.75, 499.5, 749.25, 999 -> 499.5 rounds to the even 500
  assert.deepEqual(grid({ timestep_spacing: 'linspace' }, 5), [999, 749, 500, 250, 0]);
  // linspace(0, 9, 3) = 0, 4.5, 9 -> 4.5 rounds to 4
  assert.deepEqual(grid({ num_train_timesteps: 10, timestep_spacing: 'linspace' }, 3), [9, 4, 0]);
  assert.deepEqual(grid({ timestep_spacing: 'linspace' }, 1), [0]);
  // leading without offset: k * (N // n)
  assert.deepEqual(grid({ timestep_spacing: 'leading' }, 3), [666, 333, 0]);
  assert.deepEqual(grid({ timestep_spacing: 'leading', steps_offset: 1 }, 500).slice(-3), [5, 3, 1]);
});

test('step(eps, 981, sample) and step(eps, 1, sample) match diffusers (<= 1e-4)', () => {
  const s = sd();
  s.setTimesteps(10);
  tidy(() => {
    const x = golden('ddim.step_sample'), eps = golden('ddim.step_eps');
    const a = s.step(eps, 981, x);
    const e981 = maxAbsDiff(a.prevSample, golden('ddim.step_t981_prev'));
    assertClose(a.prevSample, golden('ddim.step_t981_prev'), 1e-4, 1e-4, 'step t=981');
    const b = s.step(eps, 1, x); // previous t = -99: the final alpha abar_0
    const e1 = maxAbsDiff(b.prevSample, golden('ddim.step_t1_prev'));
    assertClose(b.prevSample, golden('ddim.step_t1_prev'), 1e-4, 1e-4, 'step t=1');
    console.log(`# ddim step max|diff|: t981 ${e981.toExponential(2)}, t1 ${e1.toExponential(2)}`);
    // t as a tensor gives the same answer
    assertClose(s.step(eps, tensor([981], { dtype: 'int64' }), x).prevSample, a.prevSample, 0, 0, 'tensor timestep');
  });
});

test('step and addNoise leave only their outputs alive', () => {
  const s = sd();
  s.setTimesteps(10);
  const x = golden('ddim.step_sample'), eps = golden('ddim.step_eps');
  const before = liveTensors();
  const out = s.step(eps, 981, x, { eta: 0.5, generator: new Generator(1) });
  const noisy = s.addNoise(x, eps, [500]);
  assert.equal(liveTensors(), before + 3);
  for (const t of [out.prevSample, out.predOriginalSample, noisy]) t.dispose();
  assert.equal(liveTensors(), before);
});

test('add_noise(sample, noise, 500) matches diffusers; per-sample timesteps broadcast', () => {
  const s = sd();
  tidy(() => {
    const x = golden('ddim.step_sample'), n = golden('add_noise.noise');
    const y = s.addNoise(x, n, 500);
    console.log(`# add_noise t500 max|diff|: ${maxAbsDiff(y, golden('add_noise.t500')).toExponential(2)}`);
    assertClose(y, golden('add_noise.t500'), 1e-6, 1e-6, 'add_noise t=500');
    // a batch of 2 with timesteps [500, 0]: sample 1 is sqrt(abar_0) x + sqrt(1 - abar_0) n
    const xb = x.repeat(2, 1, 1, 1), nb = n.repeat(2, 1, 1, 1);
    const yb = s.addNoise(xb, nb, [500, 0]);
    assertClose(yb.select(0, 0), golden('add_noise.t500').select(0, 0), 1e-6, 1e-6, 'batch item 0');
    const a0 = s.alphasCumprod[0]!;
    const xv = x.toFlatArray(), nv = n.toFlatArray();
    assertClose(yb.select(0, 1), xv.map((v, i) => Math.sqrt(a0) * v + Math.sqrt(1 - a0) * nv[i]!), 1e-6, 1e-6, 'batch item 1');
  });
});

test('v_prediction: step follows the formulas; getVelocity + addNoise round-trip to x0', () => {
  const cfg = { ...goldenJson.tiny_configs.scheduler, prediction_type: 'v_prediction' };
  const s = DDIMScheduler.fromConfig(cfg);
  s.setTimesteps(10);
  tidy(() => {
    const [x, xv] = input(3), [v, vv] = input(4);
    const t = 501, tPrev = 401;
    const a = s.alphasCumprod[t]!, ap = s.alphasCumprod[tPrev]!;
    // x0 = sqrt(a) x - sqrt(1-a) v;  eps = sqrt(a) v + sqrt(1-a) x;  prev = sqrt(ap) x0 + sqrt(1-ap) eps
    const x0 = xv.map((xi, i) => Math.sqrt(a) * xi - Math.sqrt(1 - a) * vv[i]!);
    const eps = xv.map((xi, i) => Math.sqrt(a) * vv[i]! + Math.sqrt(1 - a) * xi);
    const prev = x0.map((x0i, i) => Math.sqrt(ap) * x0i + Math.sqrt(1 - ap) * eps[i]!);
    const out = s.step(v, t, x);
    assertClose(out.predOriginalSample, x0, 1e-5, 1e-5, 'v_prediction x0');
    assertClose(out.prevSample, prev, 1e-5, 1e-5, 'v_prediction prev');
    // a perfect v-model: x_t = addNoise(x0, n, t), v = getVelocity(x0, n, t) -> step recovers x0
    const [clean] = input(5), [noise] = input(6);
    const xt = s.addNoise(clean, noise, 301), vt = s.getVelocity(clean, noise, 301);
    const vExpected = clean.toFlatArray().map((c, i) => Math.sqrt(s.alphasCumprod[301]!) * noise.toFlatArray()[i]! - Math.sqrt(1 - s.alphasCumprod[301]!) * c);
    assertClose(vt, vExpected, 1e-6, 1e-6, 'getVelocity');
    assertClose(s.step(vt, 301, xt).predOriginalSample, clean, 1e-5, 1e-5, 'recovered x0');
  });
});

test('sample prediction and clip_sample: x0 is the (clipped) model output', () => {
  const s = new DDIMScheduler({ ...SD_V1_DDIM_CONFIG, prediction_type: 'sample', clip_sample: true, clip_sample_range: 0.5 });
  s.setTimesteps(10);
  tidy(() => {
    const [x, xv] = input(7), [m, mv] = input(8);
    const t = 901, tPrev = 801, a = s.alphasCumprod[t]!, ap = s.alphasCumprod[tPrev]!;
    const x0 = mv.map((v) => Math.min(0.5, Math.max(-0.5, v)));
    const eps = xv.map((xi, i) => (xi - Math.sqrt(a) * mv[i]!) / Math.sqrt(1 - a)); // from the unclipped x0
    const out = s.step(m, t, x);
    assertClose(out.predOriginalSample, x0, 1e-6, 0, 'clipped x0');
    assertClose(out.prevSample, x0.map((v, i) => Math.sqrt(ap) * v + Math.sqrt(1 - ap) * eps[i]!), 1e-5, 1e-5, 'prev');
    assert.notEqual(out.predOriginalSample, m);
  });
});

test('eta > 0 adds sigma * z with sigma = eta * sqrt(variance); a generator gives reproducible noise', () => {
  const s = sd();
  s.setTimesteps(10);
  tidy(() => {
    const [x, xv] = input(9), [e, ev] = input(10), [z, zv] = input(11);
    const eta = 0.6, t = 701, tPrev = 601, a = s.alphasCumprod[t]!, ap = s.alphasCumprod[tPrev]!;
    const variance = ((1 - ap) / (1 - a)) * (1 - a / ap);
    const sigma = eta * Math.sqrt(variance);
    const x0 = xv.map((xi, i) => (xi - Math.sqrt(1 - a) * ev[i]!) / Math.sqrt(a));
    const expected = x0.map((v, i) => Math.sqrt(ap) * v + Math.sqrt(1 - ap - sigma * sigma) * ev[i]! + sigma * zv[i]!);
    assertClose(s.step(e, t, x, { eta, varianceNoise: z }).prevSample, expected, 1e-5, 1e-5, 'eta 0.6 with given noise');
    assert.ok(Math.abs(s.variance(t, tPrev) - variance) < 1e-7);
    // generator: the noise is randn from that generator, so a same-seeded draw reproduces the step
    const viaGen = s.step(e, t, x, { eta, generator: new Generator(42) }).prevSample;
    const zg = randn([1, 4, 8, 8], { generator: new Generator(42) });
    assertClose(viaGen, s.step(e, t, x, { eta, varianceNoise: zg }).prevSample, 1e-6, 1e-6, 'generator noise');
    assert.ok(maxAbsDiff(viaGen, s.step(e, t, x).prevSample) > 1e-3, 'eta > 0 changes the result');
  });
});

test('set_alpha_to_one: the last step returns x0 itself', () => {
  const s = new DDIMScheduler({ ...SD_V1_DDIM_CONFIG, set_alpha_to_one: true });
  assert.equal(s.finalAlphaCumprod, 1);
  s.setTimesteps(10);
  tidy(() => {
    const [x] = input(12), [e] = input(13);
    const out = s.step(e, 1, x);
    assertClose(out.prevSample, out.predOriginalSample, 1e-7, 0, 'prev == x0');
  });
});

test('betas: linear and squaredcos_cap_v2 schedules follow their formulas', () => {
  const lin = new DDIMScheduler({ beta_schedule: 'linear', beta_start: 0.0001, beta_end: 0.02, num_train_timesteps: 1000 });
  assertClose(lin.betas, Array.from({ length: 1000 }, (_, i) => 0.0001 + (i * (0.02 - 0.0001)) / 999), 1e-9, 1e-6, 'linear betas');
  let prod = 1;
  assertClose(lin.alphasCumprod, Array.from(lin.betas, (b) => (prod *= 1 - b)), 1e-7, 1e-6, 'linear alphas_cumprod');
  const cos = new DDIMScheduler({ beta_schedule: 'squaredcos_cap_v2', num_train_timesteps: 50 });
  const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  assertClose(cos.betas, Array.from({ length: 50 }, (_, i) => Math.min(1 - abar((i + 1) / 50) / abar(i / 50), 0.999)), 1e-8, 1e-6, 'cosine betas');
  assert.equal(cos.betas[49], Math.fround(0.999), 'the cap');
  const zsnr = new DDIMScheduler({ ...SD_V1_DDIM_CONFIG, rescale_betas_zero_snr: true });
  assert.equal(zsnr.alphasCumprod[999], 0, 'zero terminal SNR');
  assert.ok(Math.abs(zsnr.alphasCumprod[0]! - sd().alphasCumprod[0]!) < 1e-7, 'first alpha unchanged');
});

test('bad input gives clear errors', () => {
  assert.throws(() => new DDIMScheduler({ beta_schedule: 'cosine' as never }), /unknown beta_schedule 'cosine'/);
  assert.throws(() => new DDIMScheduler({ timestep_spacing: 'even' as never }), /unknown timestep_spacing/);
  assert.throws(() => new DDIMScheduler({ prediction_type: 'x0' as never }), /unknown prediction_type/);
  assert.throws(() => new DDIMScheduler({ thresholding: true }), /thresholding/);
  assert.throws(() => new DDIMScheduler({ trained_betas: [0.1, 0.2], num_train_timesteps: 3 }), /trained_betas has 2 values/);
  const s = sd();
  const [x] = input(1);
  assert.throws(() => s.step(x, 981, x), /setTimesteps/);
  assert.throws(() => s.setTimesteps(0), /positive integer, got 0/);
  assert.throws(() => s.setTimesteps(-5), /positive integer, got -5/);
  assert.throws(() => s.setTimesteps(2.5), /positive integer/);
  assert.throws(() => s.setTimesteps(1001), /cannot be larger than num_train_timesteps \(1000\)/);
  assert.throws(() => s.setTimesteps(1000), /outside \[0, 1000\)/, 'leading + steps_offset 1 overflows at n = N');
  s.setTimesteps(10);
  assert.throws(() => s.step(x, 1000, x), /timestep 1000 is not an integer in \[0, 1000\)/);
  assert.throws(() => s.step(x, 10.5, x), /not an integer/);
  assert.throws(() => s.step(x, 981, x.reshape([4, 64])), /same shape/);
  assert.throws(() => s.step(x, 981, x, { eta: -1 }), /eta/);
  assert.throws(() => s.addNoise(x.repeat(3, 1, 1, 1), x.repeat(3, 1, 1, 1), [1, 2]), /2 timesteps for a batch of 3/);
  assert.throws(() => s.addNoise(x, x, -1), /not an integer in \[0, 1000\)/);
});
