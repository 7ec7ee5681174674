// SDXL single files (sgm layout): tests/fixtures/ldm-converted/tiny-sdxl-ldm.safetensors was written
// from tests/fixtures/golden/tiny-sdxl by diffusers' own converter, and diffusers' single-file loader
// reads it back to exactly that folder (see the fixture's README). Ours must too: same weights, same
// outputs, same text-to-image; the full-size key list is recognized without a YAML.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { manualSeed, noGrad, randn } from '../../src/engine/index.js';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import { convertSingleFile, detectLdmArchitecture, inspectSingleFile, loadSingleFile, planSingleFile, SingleFileError } from '../../src/io/single-file/index.js';
import { defaultTimeIds, disposeStableDiffusion, encodePromptXL, loadStableDiffusion, text2img, type StableDiffusion } from '../../src/pipelines/index.js';
import { fixturePath } from '../fixtures.js';
import { assertSameWeights, editSafetensorsHeader, maxAbsDiff } from '../helpers.js';

const dir = fixturePath('ldm-converted');
const FILE = path.join(dir, 'tiny-sdxl-ldm.safetensors');
const YAML = path.join(dir, 'tiny-sdxl-ldm.yaml');
const FOLDER = fixturePath('golden/tiny-sdxl');
const OPTS = { config: YAML, textEncoderHeads: 4 };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-single-file-xl-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const IDS = [[998, 5, 17, 250, 999, ...Array(72).fill(999)]];
const IDS2 = [[998, 5, 17, 250, 999, ...Array(72).fill(0)]];

function assertSameModel(a: StableDiffusion, b: StableDiffusion, what: string): void {
  assert.ok(a.xl && b.xl, `${what}: both SDXL`);
  assertSameWeights(a.unet, b.unet, `${what} unet`);
  assertSameWeights(a.vae, b.vae, `${what} vae`);
  assertSameWeights(a.textEncoder, b.textEncoder, `${what} text_encoder`);
  assertSameWeights(a.xl.textEncoder2, b.xl.textEncoder2, `${what} text_encoder_2`);
  assert.deepEqual(a.textEncoder.config, b.textEncoder.config, `${what}: text encoder config`);
  assert.deepEqual(a.xl.textEncoder2.config, b.xl.textEncoder2.config, `${what}: text encoder 2 config`);
  assert.deepEqual({ ...a.unet.config, sample_size: 0 }, { ...b.unet.config, sample_size: 0 }, `${what}: unet config (but the default size)`);
  assert.equal(a.vae.config.scaling_factor, 0.13025);
  assert.deepEqual({ ...a.scheduler.config }, { ...b.scheduler.config }, `${what}: scheduler config`);
  assert.equal(a.xl.forceZerosForEmptyPrompt, true);
  // Outputs: SDXL prompt encoding (both encoders' penultimate states, the projected pooled embedding) and the UNet.
  const ea = encodePromptXL(a, IDS, IDS2);
  const eb = encodePromptXL(b, IDS, IDS2);
  assert.deepEqual(ea.promptEmbeds.shape, [1, 77, 80]);
  assert.equal(maxAbsDiff(ea.promptEmbeds, eb.promptEmbeds), 0, `${what}: prompt embeddings`);
  assert.equal(maxAbsDiff(ea.pooled, eb.pooled), 0, `${what}: pooled embedding (text_projection transposed)`);
  manualSeed(0);
  const x = randn([1, 4, 8, 8]);
  const timeIds = defaultTimeIds(64, 64);
  const ua = noGrad(() => a.unet.forward(x, 500, ea.promptEmbeds, { textEmbeds: ea.pooled, timeIds }));
  const ub = noGrad(() => b.unet.forward(x, 500, eb.promptEmbeds, { textEmbeds: eb.pooled, timeIds }));
  assert.equal(maxAbsDiff(ua, ub), 0, `${what}: UNet output with the added conditioning`);
  for (const t of [ea.promptEmbeds, ea.pooled, eb.promptEmbeds, eb.pooled, x, timeIds, ua, ub]) t.dispose();
}

test('SDXL single file: loads with its sgm YAML to exactly its folder\'s weights and outputs', async () => {
  const warnings: string[] = [];
  const logs: string[] = [];
  const single = await loadStableDiffusion(FILE, { ...OPTS, onWarning: (w) => warnings.push(w), onLog: (l) => logs.push(l) });
  const folder = await loadStableDiffusion(FOLDER);
  try {
    assert.equal(single.unet.config.sample_size, 128, 'SDXL\'s 1024 px default');
    assert.ok(logs.some((l) => /custom SDXL-style single file: 875 tensors,.*3 keys skipped/.test(l)), logs.join('\n'));
    assert.ok(warnings.some((w) => /token ids/.test(w)));
    assertSameModel(single, folder, 'sdxl');
    // The whole text-to-image pipeline (zeros unconditional, time_ids for the size) gives the same image.
    const [ia, ib] = [await text2img(single, { prompt: IDS, height: 64, width: 64, steps: 2, seed: 3 }), await text2img(folder, { prompt: IDS, height: 64, width: 64, steps: 2, seed: 3 })];
    assert.equal(maxAbsDiff(ia.images, ib.images), 0, 'text2img');
    ia.images.dispose();
    ib.images.dispose();
  } finally {
    disposeStableDiffusion(single);
    disposeStableDiffusion(folder);
  }
});

test('SDXL single file: the skipped keys are the known ones; every other key is placed', () => {
  const plan = inspectSingleFile(FILE, OPTS);
  assert.deepEqual(plan.skipped.map((s) => s.key).sort(), ['conditioner.embedders.0.transformer.text_model.embeddings.position_ids',
    'conditioner.embedders.1.model.logit_scale', 'denoiser.sigmas']);
  const byComponent = (c: string) => plan.items.filter((i) => i.component === c).length;
  assert.deepEqual([byComponent('unet'), byComponent('vae'), byComponent('text_encoder'), byComponent('text_encoder_2')], [618, 180, 36, 53]);
  const proj = plan.items.find((i) => i.key === 'text_projection.weight')!;
  assert.equal(proj.source, 'conditioner.embedders.1.model.text_projection');
  assert.equal(proj.transform, 'transpose');
  assert.equal(plan.arch.family, 'sdxl');
  assert.equal(plan.arch.unet.addition_time_embed_dim, 8);
  assert.equal(plan.arch.unet.projection_class_embeddings_input_dim, 80);
});

test('SDXL single file: full-size SDXL base is recognized without a YAML, key for key against the diffusers manifest', () => {
  // Keys and shapes of a full-size file, from the manifest through diffusers' converter (make.py).
  const ldm = JSON.parse(readFileSync(path.join(dir, 'sdxl-base-ldm-shapes.json'), 'utf8')) as Record<string, number[]>;
  const shapes = new Map(Object.entries(ldm).map(([k, shape]) => [k, { shape }]));
  const arch = detectLdmArchitecture('sd_xl_base_1.0.safetensors', shapes);
  assert.equal(arch.variant, 'SDXL base');
  const manifest = JSON.parse(readFileSync(fixturePath('golden/sdxl-manifest.json'), 'utf8')) as {
    configs: Record<string, Record<string, unknown>>; state_dict_shapes: Record<string, Record<string, number[]>>;
  };
  for (const [k, v] of Object.entries(manifest.configs.unet!)) assert.deepEqual(arch.unet[k], v, `unet config ${k}`);
  for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'hidden_act', 'projection_dim', 'vocab_size', 'max_position_embeddings']) {
    assert.deepEqual(arch.textEncoder[k], manifest.configs.text_encoder![k], `text_encoder ${k}`);
    assert.deepEqual(arch.textEncoder2![k], manifest.configs.text_encoder_2![k], `text_encoder_2 ${k}`);
  }
  for (const [k, v] of Object.entries(manifest.configs.vae!)) if (k !== 'sample_size') assert.deepEqual(arch.vae[k], v, `vae config ${k}`);
  assert.equal(arch.scheduler.prediction_type, 'epsilon');
  const plan = planSingleFile('sd_xl_base_1.0.safetensors', shapes, arch);
  const components = { unet: 'unet', vae: 'vae', text_encoder: 'text_encoder', text_encoder_2: 'text_encoder_2' } as const;
  for (const [c, m] of Object.entries(components)) {
    const got = Object.fromEntries(plan.items.filter((i) => i.component === c).map((i) => [i.key, i.shape]));
    const want = { ...manifest.state_dict_shapes[m]! };
    delete want['text_model.embeddings.position_ids'];
    assert.deepEqual(got, want, `${c}: every key and shape`);
  }
  assert.deepEqual(plan.skipped.map((s) => s.key).sort(), ['conditioner.embedders.0.transformer.text_model.embeddings.position_ids', 'conditioner.embedders.1.model.logit_scale']);
  // The 'v_pred' marker some fine-tunes carry makes it a v-prediction model.
  const vpred = detectLdmArchitecture('x.safetensors', new Map([...shapes, ['v_pred', { shape: [] }]]));
  assert.equal(vpred.scheduler.prediction_type, 'v_prediction');
  assert.equal(vpred.variant, 'SDXL base v-prediction');
});

test('SDXL single file: convert writes an SDXL diffusers folder that loads identically', async () => {
  const out = path.join(tmp, 'converted');
  const tok = path.join(tmp, 'tok');
  mkdirSync(tok);
  writeFileSync(path.join(tok, 'vocab.json'), JSON.stringify({ '!': 0, 'a</w>': 1, '<|startoftext|>': 2, '<|endoftext|>': 3 }));
  writeFileSync(path.join(tok, 'merges.txt'), '#version: 0.2\n');
  const r = convertSingleFile(FILE, out, { ...OPTS, tokenizerDir: tok });
  assert.ok(r.warnings.some((w) => /no tokenizer_2\/.*pad token '!'/.test(w)), r.warnings.join('\n'));
  const index = JSON.parse(readFileSync(path.join(out, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(index._class_name, 'StableDiffusionXLPipeline');
  assert.deepEqual(index.text_encoder_2, ['transformers', 'CLIPTextModelWithProjection']);
  assert.equal(index.force_zeros_for_empty_prompt, true);
  assert.equal(JSON.parse(readFileSync(path.join(out, 'tokenizer_2', 'tokenizer_config.json'), 'utf8')).pad_token, '!');
  for (const [sub, f] of [['unet', 'diffusion_pytorch_model.safetensors'], ['vae', 'diffusion_pytorch_model.safetensors'], ['text_encoder', 'model.safetensors'], ['text_encoder_2', 'model.safetensors']]) {
    const mine = [...readSafetensorsHeader(path.join(out, sub!, f!)).tensors.keys()].sort();
    const theirs = [...readSafetensorsHeader(path.join(FOLDER, sub!, f!)).tensors.keys()].sort();
    assert.deepEqual(mine, theirs, `${sub}: keys as diffusers writes them`);
  }
  const converted = await loadStableDiffusion(out);
  const folder = await loadStableDiffusion(FOLDER);
  try {
    assert.equal(converted.tokenizer?.padTokenId, 3, 'tokenizer pads with the end token');
    assert.equal(converted.xl?.tokenizer2?.padTokenId, 0, 'tokenizer_2 pads with !');
    assertSameModel(converted, folder, 'sdxl converted');
  } finally {
    disposeStableDiffusion(converted);
    disposeStableDiffusion(folder);
  }
});

test('SDXL single file: bad inputs fail clearly', () => {
  const trunc = path.join(tmp, 'truncated.safetensors');
  copyFileSync(FILE, trunc);
  truncateSync(trunc, 1_000_000);
  assert.throws(() => loadSingleFile(trunc, OPTS), /truncated/);
  // The YAML contradicts the weights: the added conditioning's width, the size embedding, the depth.
  const yaml = readFileSync(YAML, 'utf8');
  const bad = (name: string, from: string | RegExp, to: string) => {
    const f = path.join(tmp, name);
    const text = yaml.replace(from, to);
    assert.notEqual(text, yaml, `${name}: the edit applies`);
    writeFileSync(f, text);
    return f;
  };
  assert.throws(() => loadSingleFile(FILE, { ...OPTS, config: bad('adm.yaml', 'adm_in_channels: 80', 'adm_in_channels: 2816') }), /contradicts the weights: adm_in_channels is 2816 in the YAML but 80/);
  assert.throws(() => loadSingleFile(FILE, { ...OPTS, config: bad('outdim.yaml', /outdim: 8/g, 'outdim: 256') }), /contradicts the weights: the size\/crop embedders' outdim is 256 in the YAML but 8/);
  assert.throws(() => loadSingleFile(FILE, { ...OPTS, config: bad('depth.yaml', 'transformer_depth: [1, 1, 2]', 'transformer_depth: [1, 2, 10]') }), /transformer_depth is \[1,2,10\] in the YAML/);
  assert.throws(() => loadSingleFile(FILE, { ...OPTS, config: bad('last.yaml', 'layer: penultimate', 'layer: last') }), /second text encoder's layer 'last'; only 'penultimate'/);
  assert.throws(() => loadSingleFile(FILE, { ...OPTS, config: bad('edm.yaml', 'EpsScaling', 'EDMScaling') }), /EDMScaling' is not supported/);
  assert.throws(() => loadSingleFile(FILE, { ...OPTS, config: fixturePath('golden/single-file/tiny-sd1-ldm.yaml') }), /LDM \(SD v1 \/ 2\.x\) config but the file is SDXL/);
  assert.throws(() => loadSingleFile(fixturePath('golden/single-file/tiny-sd1-ldm.safetensors'), { ...OPTS }), /SDXL \(sgm\) config but the file is SD v1/);
  // Without the YAML the tiny model's head count is unknown: the message says what to give.
  assert.throws(() => loadSingleFile(FILE, { textEncoderHeads: 4 }), /head count is not stored in the weights.*SDXL.*--config/);
  // A file missing its second text encoder, a refiner, an EDM model: each named.
  const edit = (name: string, f: (h: Record<string, unknown>) => void) => {
    const out = path.join(tmp, name);
    editSafetensorsHeader(FILE, out, f);
    return out;
  };
  const noTe2 = edit('no-te2.safetensors', (h) => { for (const k of Object.keys(h)) if (k.startsWith('conditioner.embedders.1.')) delete h[k]; });
  assert.throws(() => loadSingleFile(noTe2, OPTS), (e: Error) => e instanceof SingleFileError && /needs both text encoders/.test(e.message));
  const refiner = edit('refiner.safetensors', (h) => { h['conditioner.embedders.0.model.ln_final.weight'] = h['denoiser.sigmas']; delete h['denoiser.sigmas']; });
  assert.throws(() => loadSingleFile(refiner, OPTS), /SDXL refiner/);
  const edm = edit('edm.safetensors', (h) => { h.edm_mean = h['denoiser.sigmas']; delete h['denoiser.sigmas']; });
  assert.throws(() => loadSingleFile(edm, OPTS), /EDM-parameterized/);
  const extra = edit('extra.safetensors', (h) => { h['conditioner.embedders.1.model.mystery'] = h['denoiser.sigmas']; delete h['denoiser.sigmas']; });
  assert.throws(() => loadSingleFile(extra, OPTS), /unexpected key.*conditioner\.embedders\.1\.model\.mystery/);
  assert.ok(!existsSync(path.join(tmp, 'converted-bad')));
});
