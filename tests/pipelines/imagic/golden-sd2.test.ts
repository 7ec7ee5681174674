// Stable Diffusion 2.x against diffusers + transformers (../shared/golden, make_golden_v2.py, copied
// into tests/fixtures/golden): the tiny-sd2 text encoder (GELU, pad id 0) and UNet (linear projections,
// per-level heads, upcast attention), the v-prediction DDIM step and training target, the whole
// Imagic trace with v-prediction (loss against the velocity), and the full-size SD 2.1 keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dispose, noGrad, type Tensor } from '../../../src/engine/index.js';
import { loadSafetensors } from '../../../src/io/index.js';
import { CLIPTextModel, parseCLIPTextConfig } from '../../../src/models/clip/index.js';
import { UNet2DConditionModel } from '../../../src/models/unet/index.js';
import { AutoencoderKL } from '../../../src/models/vae/index.js';
import { DDIMScheduler } from '../../../src/schedulers/index.js';
import { disposeStableDiffusion, imagic, invertDDIM, loadStableDiffusion } from '../../../src/pipelines/index.js';
import { assertClose, assertKeysMatch } from '../../helpers.js';
import { fixturePath } from '../../fixtures.js';

interface GoldenImagic { steps_A: number; lr_A: number; steps_B: number; lr_B: number; eta: number; guidance_scale: number; lossA: number[]; lossB: number[] }
interface Manifest { configs: Record<'unet' | 'vae' | 'text_encoder' | 'scheduler', Record<string, unknown>>; state_dict_shapes: Record<'unet' | 'vae' | 'text_encoder', Record<string, number[]>> }

const g = loadSafetensors(fixturePath('golden/golden-v2.safetensors'));
const G = (k: string): Tensor => {
  const t = g.get(`sd2.${k}`);
  assert.ok(t, `golden sd2.${k}`);
  return t;
};
const spec = (JSON.parse(readFileSync(fixturePath('golden/golden-v2.json'), 'utf8')) as { sd2_imagic: GoldenImagic }).sd2_imagic;
const TINY = fixturePath('golden/tiny-sd2');

test('SD 2.x components: text encoder (GELU, pad 0), UNet (linear projections, heads per level, upcast), v-prediction DDIM step and velocity', async () => {
  const sd = await loadStableDiffusion(TINY);
  try {
    assert.equal(sd.scheduler.config.prediction_type, 'v_prediction');
    const te = noGrad(() => sd.textEncoder.forward(G('te.input_ids')));
    assertClose(te.lastHiddenState, G('te.last_hidden_state'), 1e-4, 1e-4, 'sd2.te.last_hidden_state');
    assertClose(te.poolerOutput, G('te.pooler_output'), 1e-4, 1e-4, 'sd2.te.pooler_output');
    const out = noGrad(() => sd.unet.forward(G('unet.sample'), G('unet.timesteps'), G('unet.encoder_hidden_states')));
    assertClose(out, G('unet.out'), 1e-4, 1e-4, 'sd2.unet.out');
    sd.scheduler.setTimesteps(10);
    const step = noGrad(() => sd.scheduler.step(G('ddim.step_model_output'), 901, G('ddim.step_sample')).prevSample);
    assertClose(step, G('ddim.step_t901_prev'), 1e-5, 1e-5, 'sd2.ddim.step_t901_prev');
    const v = sd.scheduler.getVelocity(G('ddim.step_sample'), G('velocity.noise'), [500]);
    assertClose(v, G('velocity.t500'), 1e-5, 1e-5, 'sd2.velocity.t500');
    // The training target follows the scheduler: the velocity here, the noise for epsilon models.
    const target = imagic.trainingTarget(sd, G('ddim.step_sample'), G('velocity.noise'), 500);
    assertClose(target, G('velocity.t500'), 1e-6, 0, 'training target');
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('the Imagic trace on SD 2.x with v-prediction: stages A, B and C within 1e-3 of diffusers', async () => {
  const sd = await loadStableDiffusion(TINY);
  try {
    const latent = imagic.encodeImage(sd, G('imagic.image'));
    assertClose(latent, G('imagic.latent'), 1e-5, 1e-5, 'latent');
    const eTgt = G('imagic.e_tgt');
    const a = await imagic.stageA(sd, latent, eTgt, { steps: spec.steps_A, lr: spec.lr_A, noise: imagic.fixedNoise(G('imagic.A_timesteps').toFlatArray(), G('imagic.A_noise')) });
    assertClose(a.losses, spec.lossA, 1e-4, 1e-4, 'stage A losses (against the velocity)');
    assertClose(a.eOpt, G('imagic.prompt_embeds_opt'), 1e-3, 0, 'e_opt');
    const b = await imagic.stageB(sd, latent, a.eOpt, { steps: spec.steps_B, lr: spec.lr_B, noise: imagic.fixedNoise(G('imagic.B_timesteps').toFlatArray(), G('imagic.B_noise')) });
    assertClose(b.losses, spec.lossB, 1e-4, 1e-4, 'stage B losses');
    const c = await imagic.renderEdit(sd, { eTgt, eOpt: a.eOpt, eUncond: G('imagic.e_uncond') }, { eta: spec.eta, guidanceScale: spec.guidance_scale, steps: 10, latents: G('imagic.sample_init_latent') });
    assertClose(c.latent, G('imagic.sample_final_latent'), 1e-3, 0, 'final latent');
    assertClose(c.image, G('imagic.output_image'), 1e-3, 0, 'output image');
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('with an epsilon scheduler the same step trains against the noise: the trace differs', async () => {
  const sd = await loadStableDiffusion(TINY);
  try {
    const eps = { ...sd, scheduler: new DDIMScheduler({ ...sd.scheduler.config, prediction_type: 'epsilon' }) };
    const latent = imagic.encodeImage(sd, G('imagic.image'));
    const a = await imagic.stageA(eps, latent, G('imagic.e_tgt'), { steps: 2, lr: spec.lr_A, noise: imagic.fixedNoise(G('imagic.A_timesteps').toFlatArray().slice(0, 2), G('imagic.A_noise').narrow(0, 0, 2)) });
    assert.ok(Math.abs(a.losses[0]! - spec.lossA[0]!) > 1e-3, `epsilon loss ${a.losses[0]} equals the velocity loss ${spec.lossA[0]}`);
    const sample = { ...sd, scheduler: new DDIMScheduler({ ...sd.scheduler.config, prediction_type: 'sample' }) };
    await assert.rejects(imagic.stageA(sample, latent, G('imagic.e_tgt'), { steps: 1, lr: 1e-3, noise: imagic.fixedNoise([500], G('imagic.A_noise').narrow(0, 0, 1)) }), /cannot train a model whose scheduler predicts 'sample'/);
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('full-size SD 2.1 (768, v-prediction) on meta: UNet, VAE and text encoder keys and shapes as diffusers names them', () => {
  const m = JSON.parse(readFileSync(fixturePath('golden/sd2-manifest.json'), 'utf8')) as Manifest;
  const unet = new UNet2DConditionModel(m.configs.unet, { device: 'meta' });
  assertKeysMatch('unet', unet.namedParameters(), m.state_dict_shapes.unet);
  assert.equal(unet.config.sample_size! * 8, 768);
  const vae = new AutoencoderKL(m.configs.vae, { device: 'meta' });
  assertKeysMatch('vae', vae.namedParameters(), m.state_dict_shapes.vae);
  const te = new CLIPTextModel(parseCLIPTextConfig(m.configs.text_encoder), { device: 'meta' });
  assertKeysMatch('text_encoder', te.namedParameters(), m.state_dict_shapes.text_encoder);
  for (const x of [unet, vae, te]) x.dispose();
});

test('DDIM inversion with v-prediction: inverting and sampling back lands far nearer the latent than with the prediction misread as epsilon', async () => {
  const sd = await loadStableDiffusion(TINY);
  try {
    const latent = imagic.encodeImage(sd, G('imagic.image'));
    const cond = G('imagic.e_tgt');
    const roundTrip = (model: typeof sd) => noGrad(() => {
      const inv = invertDDIM(model, { imageLatents: latent, promptEmbeds: cond, steps: 50, guidanceScale: 1 });
      inv.imageLatents.dispose();
      return inv.latents;
    });
    const xT = roundTrip(sd);
    const back = await imagic.renderEdit(sd, { eTgt: cond, eOpt: cond, eUncond: cond }, { eta: 1, guidanceScale: 1, steps: 50, latents: xT });
    const err = noGrad(() => back.latent.sub(latent).abs().amax().item());
    const scale = noGrad(() => latent.abs().amax().item());
    // The same round trip with the scheduler misread as epsilon drifts far more.
    const eps = { ...sd, scheduler: new DDIMScheduler({ ...sd.scheduler.config, prediction_type: 'epsilon' }) };
    const xTe = roundTrip(eps);
    const backE = await imagic.renderEdit(eps, { eTgt: cond, eOpt: cond, eUncond: cond }, { eta: 1, guidanceScale: 1, steps: 50, latents: xTe });
    const errE = noGrad(() => backE.latent.sub(latent).abs().amax().item());
    console.log(`  round-trip max|err|: v-prediction ${err.toExponential(2)}, misread as epsilon ${errE.toExponential(2)} (latent scale ${scale.toFixed(2)})`);
    // (a tiny random UNet is not smooth enough for an exact round trip; the comparison is the check)
    assert.ok(errE > 8 * err, `misreading the prediction type changed little (${errE} vs ${err})`);
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('sessions record the model family and prediction type, and refuse a base of another', async () => {
  const sd2 = await loadStableDiffusion(TINY);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-sd2-session-'));
  try {
    const settings = imagic.resolveSettings('default', { stepsA: 2, stepsB: 2, steps: 3 });
    const r = await imagic.runEdit(sd2, dir, { image: G('imagic.image'), imageSource: 'golden', target: G('te.input_ids').toArray() as number[][], uncondIds: G('te.input_ids').toArray() as number[][], modelSource: TINY }, settings);
    assert.equal(r.interrupted, false);
    if (r.embeddings) dispose(Object.values(r.embeddings));
    const json = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as { model: { family: string; prediction: string } };
    assert.deepEqual([json.model.family, json.model.prediction], ['sd2', 'v_prediction']);
    // The same weights read with an epsilon scheduler, and an SD 1.x model: refused, saying why.
    const eps = { ...sd2, scheduler: new DDIMScheduler({ ...sd2.scheduler.config, prediction_type: 'epsilon' }) };
    assert.throws(() => imagic.openForRender(eps, dir), /was trained on Stable Diffusion 2\.x \(v_prediction\), but the model given is Stable Diffusion 2\.x \(epsilon\)/);
    const sd1 = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
    try {
      assert.throws(() => imagic.openForRender(sd1, dir), /was trained on Stable Diffusion 2\.x \(v_prediction\), but the model given is Stable Diffusion 1\.x \(epsilon\)/);
    } finally {
      disposeStableDiffusion(sd1);
    }
    // The base it was trained on (freshly loaded: stage B fine-tuned sd2 in place) opens it.
    const base = await loadStableDiffusion(TINY);
    try {
      dispose(Object.values(imagic.openForRender(base, dir).embeddings));
    } finally {
      disposeStableDiffusion(base);
    }
  } finally {
    disposeStableDiffusion(sd2);
    rmSync(dir, { recursive: true, force: true });
  }
});
