// Full-size single files are recognized without a YAML: the key names and shapes of SD 1.x and SD 2.1
// (768, v-prediction) files, written from the full-size diffusers manifests by diffusers' own converter
// (tests/fixtures/ldm-converted/make_full_size.py), read to the manifests' configs, and every stored key
// placed onto exactly the manifest's keys and shapes (or skipped knowingly).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { detectLdmArchitecture, planSingleFile } from '../../src/io/single-file/index.js';
import { fixturePath } from '../fixtures.js';

type Manifest = { configs: Record<string, Record<string, unknown>>; state_dict_shapes: Record<string, Record<string, number[]>> };

const CASES = [
  {
    name: 'SD 1.x', shapes: 'ldm-converted/sd1-ldm-shapes.json', manifest: 'golden/sd-v1-manifest.json', variant: 'SD 1.x', prediction: 'epsilon',
    skipped: (k: string) => /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod)$/.test(k) || k.endsWith('position_ids'),
    textLayers: 12,
  },
  {
    name: 'SD 2.1 768', shapes: 'ldm-converted/sd2-768-ldm-shapes.json', manifest: 'golden/sd2-manifest.json', variant: 'SD 2.x 768 v-prediction', prediction: 'v_prediction',
    skipped: (k: string) => /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod)$/.test(k)
      || /^cond_stage_model\.model\.(text_projection|logit_scale|transformer\.resblocks\.23\.)/.test(k),
    textLayers: 23,
  },
];

for (const c of CASES) {
  test(`full-size ${c.name} single file: recognized without a YAML, key for key against the diffusers manifest`, () => {
    const ldm = JSON.parse(readFileSync(fixturePath(c.shapes), 'utf8')) as Record<string, number[]>;
    const shapes = new Map(Object.entries(ldm).map(([k, shape]) => [k, { shape }]));
    const arch = detectLdmArchitecture('model.safetensors', shapes);
    const manifest = JSON.parse(readFileSync(fixturePath(c.manifest), 'utf8')) as Manifest;
    assert.equal(arch.variant, c.variant);
    for (const [k, v] of Object.entries(manifest.configs.unet!)) assert.deepEqual(arch.unet[k], v, `unet config ${k}`);
    for (const [k, v] of Object.entries(manifest.configs.vae!)) if (k !== 'sample_size') assert.deepEqual(arch.vae[k], v, `vae config ${k}`);
    for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'hidden_act', 'vocab_size', 'max_position_embeddings']) {
      assert.deepEqual(arch.textEncoder[k], manifest.configs.text_encoder![k], `text_encoder ${k}`);
    }
    assert.equal(arch.textLayers, c.textLayers);
    assert.equal(arch.scheduler.prediction_type, c.prediction);
    const plan = planSingleFile('model.safetensors', shapes, arch);
    for (const component of ['unet', 'vae', 'text_encoder'] as const) {
      const got = Object.fromEntries(plan.items.filter((i) => i.component === component).map((i) => [i.key, i.shape]));
      const want = { ...manifest.state_dict_shapes[component]! };
      delete want['text_model.embeddings.position_ids'];
      delete want['embeddings.position_ids'];
      assert.deepEqual(got, want, `${component}: every key and shape`);
    }
    assert.deepEqual(plan.skipped.map((s) => s.key).sort(), Object.keys(ldm).filter(c.skipped).sort());
  });
}
