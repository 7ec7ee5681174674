// The whole golden Imagic trace (../shared/golden, `imagic.*`): stage A's e_opt, the fine-tuned
// UNet's probe output, and stage C's final latent and image, within 1e-3 of diffusers + torch.optim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { liveTensors, noGrad, type Tensor } from '../../../src/engine/index.js';
import { loadSafetensors } from '../../../src/io/index.js';
import { loadStableDiffusion, disposeStableDiffusion, encodePrompt, imagic } from '../../../src/pipelines/index.js';
import { assertClose, settleHandles } from '../../helpers.js';
import { fixturePath } from '../../fixtures.js';

interface GoldenImagic { steps_A: number; lr_A: number; steps_B: number; lr_B: number; eta: number; guidance_scale: number; lossA: number[]; lossB: number[] }

test('stages A, B and C reproduce the golden Imagic trace', async () => {
  const spec = (JSON.parse(readFileSync(fixturePath('golden/golden.json'), 'utf8')) as { imagic: GoldenImagic }).imagic;
  const g = loadSafetensors(fixturePath('golden/golden.safetensors'));
  const G = (k: string): Tensor => g.get(`imagic.${k}`) ?? g.get(k)!;
  const sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
  try {
    // Encoding: latent = mean * 0.18215; embeddings of the target and empty prompts.
    const latent = imagic.encodeImage(sd, G('image'));
    assertClose(latent, G('latent'), 1e-5, 1e-5, 'latent');
    const eTgt = encodePrompt(sd, G('target_ids').toArray() as number[][]);
    const eUncond = encodePrompt(sd, G('uncond_ids').toArray() as number[][]);
    assertClose(eTgt, G('e_tgt'), 1e-5, 1e-5, 'e_tgt');

    // Stage A with the trace's timesteps and noise.
    const a = await imagic.stageA(sd, latent, eTgt, {
      steps: spec.steps_A, lr: spec.lr_A, noise: imagic.fixedNoise(G('A_timesteps').toFlatArray(), G('A_noise')),
    });
    assertClose(a.losses, spec.lossA, 1e-4, 1e-4, 'stage A losses');
    assertClose(a.eOpt, G('e_opt'), 1e-3, 0, 'e_opt');
    assert.ok(noGrad(() => a.eOpt.sub(eTgt).abs().amax().item()) > 1e-3, 'stage A moved the embedding');

    // Stage B: all UNet weights, then the probe.
    const b = await imagic.stageB(sd, latent, a.eOpt, {
      steps: spec.steps_B, lr: spec.lr_B, noise: imagic.fixedNoise(G('B_timesteps').toFlatArray(), G('B_noise')),
    });
    assertClose(b.losses, spec.lossB, 1e-4, 1e-4, 'stage B losses');
    assert.equal(b.trained.length, sd.unet.namedParameters().length);
    const probe = noGrad(() => sd.unet.forward(g.get('unet.sample')!, g.get('unet.timesteps')!, a.eOpt.expand(2, -1, -1)));
    assertClose(probe, G('finetuned_unet_probe_out'), 1e-3, 0, 'fine-tuned UNet probe');

    // Stage C: eta 0.7, 10 DDIM steps, guidance 7.5, from the trace's initial latent.
    await settleHandles();
    const live = liveTensors();
    const c = await imagic.renderEdit(sd, { eTgt, eOpt: a.eOpt, eUncond }, { eta: spec.eta, guidanceScale: spec.guidance_scale, steps: 10, latents: G('sample_init_latent') });
    assertClose(c.latent, G('sample_final_latent'), 1e-3, 0, 'final latent');
    assertClose(c.image, G('output_image'), 1e-3, 0, 'output image');
    await settleHandles();
    assert.equal(liveTensors(), live + 2, 'rendering leaves only its image and latent');
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('with gradient checkpointing, stages A and B still reproduce the golden trace', async () => {
  const spec = (JSON.parse(readFileSync(fixturePath('golden/golden.json'), 'utf8')) as { imagic: GoldenImagic }).imagic;
  const g = loadSafetensors(fixturePath('golden/golden.safetensors'));
  const G = (k: string): Tensor => g.get(`imagic.${k}`)!;
  const sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
  try {
    const latent = imagic.encodeImage(sd, G('image'));
    const eTgt = encodePrompt(sd, G('target_ids').toArray() as number[][]);
    const a = await imagic.stageA(sd, latent, eTgt, {
      steps: spec.steps_A, lr: spec.lr_A, noise: imagic.fixedNoise(G('A_timesteps').toFlatArray(), G('A_noise')), gradientCheckpointing: true,
    });
    assertClose(a.losses, spec.lossA, 1e-4, 1e-4, 'stage A losses');
    assertClose(a.eOpt, G('e_opt'), 1e-3, 0, 'e_opt');
    const b = await imagic.stageB(sd, latent, a.eOpt, {
      steps: spec.steps_B, lr: spec.lr_B, noise: imagic.fixedNoise(G('B_timesteps').toFlatArray(), G('B_noise')), gradientCheckpointing: true,
    });
    assertClose(b.losses, spec.lossB, 1e-4, 1e-4, 'stage B losses');
    const probe = noGrad(() => sd.unet.forward(g.get('unet.sample')!, g.get('unet.timesteps')!, a.eOpt.expand(2, -1, -1)));
    assertClose(probe, G('finetuned_unet_probe_out'), 1e-3, 0, 'fine-tuned UNet probe');
  } finally {
    disposeStableDiffusion(sd);
  }
});
