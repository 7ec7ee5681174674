// SDXL's model pieces against diffusers + transformers (../shared/golden, make_golden_v2.py, copied
// into tests/fixtures/golden): the UNet with added conditioning (text_embeds, time_ids; transformer
// depth per level), the projecting second text encoder, the prompt encoding (penultimate hidden
// states of both encoders, concatenated; the pooled embedding), and the full-size SDXL base keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cat, noGrad, type Tensor } from '../../src/engine/index.js';
import { loadSafetensors } from '../../src/io/index.js';
import { CLIPTextModel, CLIPTextModelWithProjection, loadCLIPTextModel, loadCLIPTextModelWithProjection, parseCLIPTextConfig } from '../../src/models/clip/index.js';
import { UNet2DConditionModel } from '../../src/models/unet/index.js';
import { AutoencoderKL } from '../../src/models/vae/index.js';
import { ddimInversionEdit, defaultTimeIds, disposeStableDiffusion, encodePromptXL, img2img, imagic, invertDDIM, loadStableDiffusion, text2img } from '../../src/pipelines/index.js';
import { assertClose, assertKeysMatch, maxAbsDiff } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

const g = loadSafetensors(fixturePath('golden/golden-v2.safetensors'));
const G = (k: string): Tensor => {
  const t = g.get(`sdxl.${k}`);
  assert.ok(t, `golden sdxl.${k}`);
  return t;
};
const TINY = fixturePath('golden/tiny-sdxl');

test('SDXL UNet: text_time added conditioning and per-level transformer depth reproduce diffusers', () => {
  const unet = UNet2DConditionModel.fromPretrained(`${TINY}/unet`);
  try {
    const added = { textEmbeds: G('unet.text_embeds'), timeIds: G('unet.time_ids') };
    const out = noGrad(() => unet.forward(G('unet.sample'), G('unet.timesteps'), G('unet.encoder_hidden_states'), added));
    assertClose(out, G('unet.out'), 1e-4, 1e-4, 'sdxl.unet.out');
    // The conditioning matters: other time_ids give another prediction.
    const other = noGrad(() => unet.forward(G('unet.sample'), G('unet.timesteps'), G('unet.encoder_hidden_states'), { ...added, timeIds: G('unet.time_ids').mul(0.5) }));
    assert.ok(noGrad(() => other.sub(out).abs().amax().item()) > 1e-4);
    assert.throws(() => unet.forward(G('unet.sample'), G('unet.timesteps'), G('unet.encoder_hidden_states')), /needs added conditions: text_embeds and time_ids/);
    assert.throws(() => unet.forward(G('unet.sample'), G('unet.timesteps'), G('unet.encoder_hidden_states'), { ...added, timeIds: G('unet.time_ids').narrow(1, 0, 5) }), /time_ids must be \[2 or 1, 6\], got \[2, 5\]/);
  } finally {
    unet.dispose();
  }
  const sd1 = UNet2DConditionModel.fromPretrained(fixturePath('golden/tiny-sd/unet'));
  try {
    assert.throws(() => sd1.forward(G('unet.sample'), 10, null, { textEmbeds: G('unet.text_embeds'), timeIds: G('unet.time_ids') }), /encoder_hidden_states are required|no addition_embed_type/);
  } finally {
    sd1.dispose();
  }
});

test('SDXL prompt encoding: penultimate hidden states of both text encoders concatenated, and the projected pooled output', () => {
  const te1 = loadCLIPTextModel(`${TINY}/text_encoder`);
  const te2 = loadCLIPTextModelWithProjection(`${TINY}/text_encoder_2`);
  try {
    const a = noGrad(() => te1.forward(G('te.input_ids'), { outputHiddenStates: true }));
    const b = noGrad(() => te2.forward(G('te2.input_ids'), { outputHiddenStates: true }));
    const h1 = a.hiddenStates![a.hiddenStates!.length - 2]!;
    const h2 = b.hiddenStates![b.hiddenStates!.length - 2]!;
    const promptEmbeds = cat([h1, h2], -1); // [1, 77, 48 + 32]
    assertClose(promptEmbeds, G('prompt_embeds'), 1e-4, 1e-4, 'sdxl.prompt_embeds');
    assertClose(b.textEmbeds, G('pooled_prompt_embeds'), 1e-4, 1e-4, 'sdxl.pooled_prompt_embeds');
  } finally {
    te1.dispose();
    te2.dispose();
  }
});

test('full-size SDXL base on meta: UNet (2.6 B parameters), VAE and both text encoders keyed and shaped as diffusers and transformers', () => {
  interface Manifest { configs: Record<string, Record<string, unknown>>; state_dict_shapes: Record<string, Record<string, number[]>> }
  const m = JSON.parse(readFileSync(fixturePath('golden/sdxl-manifest.json'), 'utf8')) as Manifest;
  const unet = new UNet2DConditionModel(m.configs.unet!, { device: 'meta' });
  assertKeysMatch('unet', unet.namedParameters(), m.state_dict_shapes.unet!);
  const n = unet.numParameters();
  console.log(`  SDXL UNet: ${unet.namedParameters().length} tensors, ${(n / 1e9).toFixed(3)} B parameters`);
  assert.ok(n > 2.5e9 && n < 2.7e9, `${n}`);
  const vae = new AutoencoderKL(m.configs.vae!, { device: 'meta' });
  assertKeysMatch('vae', vae.namedParameters(), m.state_dict_shapes.vae!);
  const te1 = new CLIPTextModel(parseCLIPTextConfig(m.configs.text_encoder), { device: 'meta' });
  assertKeysMatch('text_encoder', te1.namedParameters(), m.state_dict_shapes.text_encoder!);
  const te2 = new CLIPTextModelWithProjection(parseCLIPTextConfig(m.configs.text_encoder_2), { device: 'meta' });
  assertKeysMatch('text_encoder_2', te2.namedParameters(), m.state_dict_shapes.text_encoder_2!);
  for (const x of [unet, vae, te1, te2]) x.dispose();
});

test('the Imagic trace on SDXL: the context and the pooled embedding optimized together, both interpolated, zeros unconditional', async () => {
  const spec = (JSON.parse(readFileSync(fixturePath('golden/golden-v2.json'), 'utf8')) as { sdxl_imagic: { steps_A: number; lr_A: number; steps_B: number; lr_B: number; eta: number; guidance_scale: number; lossA: number[]; lossB: number[] } }).sdxl_imagic;
  const sd = await loadStableDiffusion(TINY);
  try {
    assert.equal(sd.vae.config.scaling_factor, 0.13025);
    const latent = imagic.encodeImage(sd, G('imagic.image'));
    assertClose(latent, G('imagic.latent'), 1e-5, 1e-5, 'latent (scaling factor 0.13025)');
    const timeIds = G('imagic.time_ids').reshape(1, 6);
    const eTgt = G('imagic.prompt_embeds_tgt');
    const a = await imagic.stageA(sd, latent, eTgt, {
      steps: spec.steps_A, lr: spec.lr_A, noise: imagic.fixedNoise(G('imagic.A_timesteps').toFlatArray(), G('imagic.A_noise')),
      xl: { pooled: G('imagic.pooled_tgt'), timeIds },
    });
    assertClose(a.losses, spec.lossA, 1e-4, 1e-4, 'stage A losses');
    assertClose(a.eOpt, G('imagic.prompt_embeds_opt'), 1e-3, 0, 'e_opt');
    assertClose(a.pooledOpt!, G('imagic.pooled_opt'), 1e-3, 0, 'pooled_opt');
    const b = await imagic.stageB(sd, latent, a.eOpt, {
      steps: spec.steps_B, lr: spec.lr_B, noise: imagic.fixedNoise(G('imagic.B_timesteps').toFlatArray(), G('imagic.B_noise')),
      added: { textEmbeds: a.pooledOpt!, timeIds },
    });
    assertClose(b.losses, spec.lossB, 1e-4, 1e-4, 'stage B losses');
    const zeros = (t: Tensor) => noGrad(() => t.mul(0));
    const c = await imagic.renderEdit(sd, {
      eTgt, eOpt: a.eOpt, eUncond: zeros(eTgt),
      xl: { tgt: G('imagic.pooled_tgt'), opt: a.pooledOpt!, uncond: zeros(G('imagic.pooled_tgt')), timeIds },
    }, { eta: spec.eta, guidanceScale: spec.guidance_scale, steps: 10, latents: G('imagic.sample_init_latent') });
    assertClose(c.latent, G('imagic.sample_final_latent'), 1e-3, 0, 'final latent');
    assertClose(c.image, G('imagic.output_image'), 1e-3, 0, 'output image');
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('SDXL with gradient checkpointing: stage A (context and pooled embedding) and stage B still reproduce the golden trace', async () => {
  const spec = (JSON.parse(readFileSync(fixturePath('golden/golden-v2.json'), 'utf8')) as { sdxl_imagic: { steps_A: number; lr_A: number; steps_B: number; lr_B: number; lossA: number[]; lossB: number[] } }).sdxl_imagic;
  const sd = await loadStableDiffusion(TINY);
  try {
    const latent = imagic.encodeImage(sd, G('imagic.image'));
    const timeIds = G('imagic.time_ids').reshape(1, 6);
    const a = await imagic.stageA(sd, latent, G('imagic.prompt_embeds_tgt'), {
      steps: spec.steps_A, lr: spec.lr_A, noise: imagic.fixedNoise(G('imagic.A_timesteps').toFlatArray(), G('imagic.A_noise')),
      xl: { pooled: G('imagic.pooled_tgt'), timeIds }, gradientCheckpointing: true,
    });
    assertClose(a.losses, spec.lossA, 1e-4, 1e-4, 'stage A losses');
    assertClose(a.eOpt, G('imagic.prompt_embeds_opt'), 1e-3, 0, 'e_opt');
    // The pooled embedding gets its gradient through the checkpointed chain: it moves exactly as without checkpointing.
    assertClose(a.pooledOpt!, G('imagic.pooled_opt'), 1e-3, 0, 'pooled_opt');
    assert.ok(maxAbsDiff(a.pooledOpt!, G('imagic.pooled_tgt')) > 1e-3, 'the pooled embedding was optimized');
    const b = await imagic.stageB(sd, latent, a.eOpt, {
      steps: spec.steps_B, lr: spec.lr_B, noise: imagic.fixedNoise(G('imagic.B_timesteps').toFlatArray(), G('imagic.B_noise')),
      added: { textEmbeds: a.pooledOpt!, timeIds }, gradientCheckpointing: true,
    });
    assertClose(b.losses, spec.lossB, 1e-4, 1e-4, 'stage B losses');
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('SDXL as a pipeline: text_encoder_2 loaded, encodePromptXL as diffusers, and text-to-image with zeros unconditional and default time_ids', async () => {
  const sd = await loadStableDiffusion(TINY);
  try {
    assert.ok(sd.xl, 'model_index.json lists text_encoder_2');
    assert.equal(sd.xl.forceZerosForEmptyPrompt, true);
    const ids1 = G('te.input_ids').toArray() as number[][];
    const ids2 = G('te2.input_ids').toArray() as number[][];
    const e = encodePromptXL(sd, ids1, ids2);
    assertClose(e.promptEmbeds, G('prompt_embeds'), 1e-4, 1e-4, 'sdxl.prompt_embeds');
    assertClose(e.pooled, G('pooled_prompt_embeds'), 1e-4, 1e-4, 'sdxl.pooled_prompt_embeds');
    // From token ids (the same rows for both encoders), the automatic path equals the explicit one.
    const auto = await text2img(sd, { prompt: ids1, steps: 3, seed: 5 });
    const c = encodePromptXL(sd, ids1);
    const zeros = (t: Tensor) => noGrad(() => t.mul(0));
    const manual = await text2img(sd, {
      prompt: [], promptEmbeds: c.promptEmbeds, negativePromptEmbeds: zeros(c.promptEmbeds), steps: 3, seed: 5,
      added: { textEmbeds: c.pooled, negativeTextEmbeds: zeros(c.pooled), timeIds: defaultTimeIds(64, 64) },
    });
    assertClose(auto.images, manual.images, 0, 0, 'automatic SDXL conditioning');
    assert.deepEqual(auto.images.shape, [1, 3, 64, 64]);
    await assert.rejects(text2img(sd, { prompt: [], promptEmbeds: c.promptEmbeds, negativePromptEmbeds: c.promptEmbeds, steps: 1 }), /needs its added conditioning/);
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('an Imagic session on SDXL: pooled embeddings and time_ids saved, the family recorded, renders from the session equal the edit', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-sdxl-session-'));
  const sd = await loadStableDiffusion(TINY);
  try {
    const ids = G('te.input_ids').toArray() as number[][];
    const settings = imagic.resolveSettings('default', { stepsA: 3, stepsB: 2, steps: 4 });
    const r = await imagic.runEdit(sd, dir, { image: G('imagic.image'), imageSource: 'golden', target: ids, modelSource: TINY }, settings);
    assert.equal(r.interrupted, false);
    const emb = r.embeddings!;
    assert.ok(emb.xl, 'the SDXL embeddings carry the pooled ones');
    assert.deepEqual(emb.xl.timeIds.toArray(), [[64, 64, 0, 0, 64, 64]]);
    assert.equal(noGrad(() => emb.eUncond.abs().amax().item()), 0, 'zeros unconditional (force_zeros_for_empty_prompt)');
    assert.ok(noGrad(() => emb.xl!.opt.sub(emb.xl!.tgt).abs().amax().item()) > 0, 'stage A moved the pooled embedding');
    const json = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as { model: { family: string; prediction: string } };
    assert.deepEqual([json.model.family, json.model.prediction], ['sdxl', 'epsilon']);
    const direct = await imagic.renderEdit(sd, emb, { eta: 0.8, guidanceScale: 7.5, steps: 4, seed: 1 });
    // From the session on a freshly loaded base: the same pixels.
    const base = await loadStableDiffusion(TINY);
    try {
      const { embeddings } = imagic.openForRender(base, dir);
      assert.ok(embeddings.xl);
      const again = await imagic.renderEdit(base, embeddings, { eta: 0.8, guidanceScale: 7.5, steps: 4, seed: 1 });
      assertClose(again.image, direct.image, 0, 0, 'render from the session');
      const batch = await imagic.renderEtas(base, embeddings, { etas: [0.8], seed: 1, steps: 4, guidanceScale: 7.5 });
      assertClose(batch, direct.image, 1e-5, 1e-5, 'renderEtas (batched etas)');
      const e = imagic.EditSession.open(dir).loadEmbeddings();
      const inv = imagic.invertedNoise(base, e.latent, embeddings.eOpt, 4, embeddings.xl);
      assert.deepEqual(inv.shape, [1, 4, 8, 8]);
      const sd1 = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
      try {
        assert.throws(() => imagic.openForRender(sd1, dir), /was trained on Stable Diffusion XL \(epsilon\), but the model given is Stable Diffusion 1\.x/);
      } finally {
        disposeStableDiffusion(sd1);
      }
    } finally {
      disposeStableDiffusion(base);
    }
  } finally {
    disposeStableDiffusion(sd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the baselines on SDXL: SDEdit and DDIM inversion take the added conditioning from the prompts', async () => {
  const sd = await loadStableDiffusion(TINY);
  try {
    const ids = G('te.input_ids').toArray() as number[][];
    const image = G('imagic.image');
    const a = img2img(sd, { image, prompt: ids, strength: 0.6, steps: 5, seed: 2 });
    const b = img2img(sd, { image, prompt: ids, strength: 0.6, steps: 5, seed: 2 });
    assertClose(a.images, b.images, 0, 0, 'SDEdit is deterministic');
    assert.deepEqual(a.images.shape, [1, 3, 64, 64]);
    assert.throws(() => img2img(sd, { image, promptEmbeds: G('prompt_embeds'), strength: 0.6, steps: 2 }), /takes prompts \(text or token ids\) here, not embeddings/);
    // DDIM inversion with the prompt's own conditioning at guidance 1, then sampling back: as the explicit path
    const inv = invertDDIM(sd, { image, prompt: ids, steps: 4 });
    const c = encodePromptXL(sd, ids);
    const latent = imagic.encodeImage(sd, image);
    const explicit = invertDDIM(sd, { imageLatents: latent, promptEmbeds: c.promptEmbeds, steps: 4, added: { textEmbeds: c.pooled, timeIds: defaultTimeIds(64, 64) } });
    assertClose(inv.latents, explicit.latents, 1e-5, 1e-5, 'inverted latents');
    const edit = await ddimInversionEdit(sd, { image, sourcePrompt: ids, targetPrompt: ids, steps: 4 });
    assert.deepEqual(edit.images.shape, [1, 3, 64, 64]);
  } finally {
    disposeStableDiffusion(sd);
  }
});

test('float16 SDXL: the VAE runs in float32 (force_upcast), latents stay float16, and text-to-image matches float32 closely', async () => {
  const logs: string[] = [];
  const half = await loadStableDiffusion(TINY, { dtype: 'float16', onLog: (l) => logs.push(l) });
  const full = await loadStableDiffusion(TINY);
  try {
    assert.equal(half.unet.conv_in.weight.dtype, 'float16');
    assert.equal(half.vae.decoder.conv_in.weight.dtype, 'float32');
    assert.ok(logs.some((l) => /vae: float32 .*force_upcast/.test(l)), logs.join('\n'));
    const z = imagic.encodeImage(half, G('imagic.image'));
    assert.equal(z.dtype, 'float16', 'the latent is in the model dtype');
    const ids = [[998, 5, 17, 999, ...Array(73).fill(999)]];
    const a = await text2img(half, { prompt: ids, height: 64, width: 64, steps: 2, seed: 4 });
    const b = await text2img(full, { prompt: ids, height: 64, width: 64, steps: 2, seed: 4 });
    const d = noGrad(() => a.images.float().sub(b.images).abs().max().item());
    assert.ok(Number.isFinite(d) && d < 0.05, `float16 vs float32 image: max |diff| ${d}`);
    for (const t of [z, a.images, a.latents, b.images, b.latents]) t.dispose();
  } finally {
    disposeStableDiffusion(half);
    disposeStableDiffusion(full);
  }
});
