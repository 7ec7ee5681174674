// The reverse key mapping (src/io/single-file/to-ldm.ts): diffusers -> LDM and back through keys.ts is
// the identity on every key of full-size SD v1; on the tiny SD v1 folder it gives exactly the LDM keys
// diffusers itself wrote into tiny-sd1-ldm.safetensors; a file written with it loads to the folder's weights.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { full, liveTensors } from '../../src/engine/index.js';
import { readSafetensorsHeader, SafetensorsReader, writeSafetensorsStreamed } from '../../src/io/safetensors.js';
import { loadSingleFile } from '../../src/io/single-file/index.js';
import { CLIP_PREFIX, clipKey, skipReason, transformedShape, UNET_PREFIX, unetKey, VAE_PREFIX, vaeKey } from '../../src/io/single-file/keys.js';
import { ldmLayout, ldmStateDict, ldmTensors, type ComponentTensor, type Sd1Component as LdmComponent } from '../../src/io/single-file/to-ldm.js';
import { disposeStableDiffusion, loadStableDiffusion } from '../../src/pipelines/stable-diffusion.js';
import { assertSameWeights } from '../helpers.js';
import { readManifest } from '../../bench/sd-case.js';
import { fixturePath } from '../fixtures.js';

const manifest = readManifest(fixturePath('golden/sd-v1-manifest.json'));
const dir = fixturePath('golden/single-file');
const folder = path.join(dir, 'tiny-sd1-ldm-diffusers');
const reference = path.join(dir, 'tiny-sd1-ldm.safetensors');
const FILES: Record<LdmComponent, string> = { unet: 'diffusion_pytorch_model.safetensors', vae: 'diffusion_pytorch_model.safetensors', text_encoder: 'model.safetensors' };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-to-ldm-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** An LDM key and stored shape -> the diffusers key and shape the loader's keys.ts makes of it. */
function back(ldm: string, shape: number[], lpb: number, vaeLevels: number): { component: LdmComponent; key: string; shape: number[] | null } | null {
  if (ldm.startsWith(UNET_PREFIX)) {
    const k = unetKey(ldm.slice(UNET_PREFIX.length), lpb);
    return k === null ? null : { component: 'unet', key: k, shape };
  }
  if (ldm.startsWith(VAE_PREFIX)) {
    const t = vaeKey(ldm.slice(VAE_PREFIX.length), vaeLevels);
    return t === null ? null : { component: 'vae', key: t.key, shape: transformedShape(shape, t.transform) };
  }
  const p = `${CLIP_PREFIX}text_model.`;
  return ldm.startsWith(p) ? { component: 'text_encoder', key: clipKey(ldm.slice(p.length)), shape } : null;
}

test('full-size SD v1: every manifest key maps to an LDM key and back to itself, shape included', () => {
  const layout = ldmLayout(manifest.configs.unet, manifest.configs.vae);
  assert.deepEqual(layout, { layersPerBlock: 2, upBlockHasAttention: [false, true, true, true], vaeLevels: 4 });
  const seen = new Map<string, string>();
  let reshaped = 0;
  for (const component of ['unet', 'vae', 'text_encoder'] as const) {
    for (const [key, shape] of Object.entries(manifest.state_dict_shapes[component])) {
      const to = ldmStateDict(component, key, shape, layout);
      assert.ok(to !== null, `${component}.${key}: no LDM key`);
      assert.ok(!seen.has(to.key), `${component}.${key} and ${seen.get(to.key)} both map to ${to.key}`);
      seen.set(to.key, `${component}.${key}`);
      if (to.shape.length !== shape.length) reshaped++;
      const b = back(to.key, to.shape, layout.layersPerBlock, layout.vaeLevels);
      assert.deepEqual(b, { component, key, shape }, `${component}.${key} -> ${to.key} [${to.shape}] -> ${JSON.stringify(b)}`);
      assert.equal(skipReason(to.key), null, `${to.key} would be skipped by the loader`);
    }
  }
  assert.equal(seen.size, 686 + 248 + 196);
  assert.equal(reshaped, 8, 'q, k, v, proj_out weights of the encoder and decoder mid-block attention');
  // Names as the original SD v1 checkpoints (v1-5-pruned-emaonly) spell them, checked by hand.
  const expect: [LdmComponent, string, number[], string, number[]][] = [
    ['unet', 'down_blocks.0.downsamplers.0.conv.weight', [320, 320, 3, 3], 'model.diffusion_model.input_blocks.3.0.op.weight', [320, 320, 3, 3]],
    ['unet', 'down_blocks.3.resnets.1.time_emb_proj.bias', [1280], 'model.diffusion_model.input_blocks.11.0.emb_layers.1.bias', [1280]],
    ['unet', 'up_blocks.0.upsamplers.0.conv.weight', [1280, 1280, 3, 3], 'model.diffusion_model.output_blocks.2.1.conv.weight', [1280, 1280, 3, 3]],
    ['unet', 'up_blocks.1.upsamplers.0.conv.bias', [1280], 'model.diffusion_model.output_blocks.5.2.conv.bias', [1280]],
    ['unet', 'up_blocks.3.attentions.2.proj_out.weight', [320, 320, 1, 1], 'model.diffusion_model.output_blocks.11.1.proj_out.weight', [320, 320, 1, 1]],
    ['unet', 'up_blocks.2.resnets.0.conv_shortcut.weight', [640, 1920, 1, 1], 'model.diffusion_model.output_blocks.6.0.skip_connection.weight', [640, 1920, 1, 1]],
    ['unet', 'mid_block.resnets.1.norm2.weight', [1280], 'model.diffusion_model.middle_block.2.out_layers.0.weight', [1280]],
    ['unet', 'conv_norm_out.bias', [320], 'model.diffusion_model.out.0.bias', [320]],
    ['vae', 'decoder.mid_block.attentions.0.to_out.0.weight', [512, 512], 'first_stage_model.decoder.mid.attn_1.proj_out.weight', [512, 512, 1, 1]],
    ['vae', 'decoder.mid_block.attentions.0.to_q.bias', [512], 'first_stage_model.decoder.mid.attn_1.q.bias', [512]],
    ['vae', 'decoder.up_blocks.0.resnets.2.conv1.weight', [512, 512, 3, 3], 'first_stage_model.decoder.up.3.block.2.conv1.weight', [512, 512, 3, 3]],
    ['vae', 'decoder.up_blocks.3.resnets.0.conv_shortcut.weight', [128, 256, 1, 1], 'first_stage_model.decoder.up.0.block.0.nin_shortcut.weight', [128, 256, 1, 1]],
    ['vae', 'encoder.mid_block.resnets.1.conv2.bias', [512], 'first_stage_model.encoder.mid.block_2.conv2.bias', [512]],
    ['vae', 'encoder.conv_norm_out.weight', [512], 'first_stage_model.encoder.norm_out.weight', [512]],
    ['text_encoder', 'encoder.layers.11.mlp.fc2.weight', [768, 3072], 'cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight', [768, 3072]],
  ];
  for (const [component, key, shape, ldm, ldmShape] of expect) {
    assert.deepEqual(manifest.state_dict_shapes[component][key], shape, `${component}.${key} in the manifest`);
    assert.deepEqual(ldmStateDict(component, key, shape, layout), { key: ldm, shape: ldmShape });
  }
  assert.equal(ldmStateDict('unet', 'add_embedding.linear_1.weight', [1280, 2816], layout), null, 'an SDXL key has no SD v1 place');
  assert.equal(ldmStateDict('vae', 'decoder.mid_block.attentions.1.to_q.weight', [512, 512], layout), null);
});

test('tiny SD v1: the folder maps to exactly the LDM keys and shapes diffusers wrote into tiny-sd1-ldm.safetensors', () => {
  const cfg = (c: string) => JSON.parse(readFileSync(path.join(folder, c, 'config.json'), 'utf8')) as Record<string, unknown>;
  const layout = ldmLayout(cfg('unet'), cfg('vae'));
  assert.deepEqual(layout, { layersPerBlock: 2, upBlockHasAttention: [false, true, true], vaeLevels: 4 });
  const mine = new Map<string, number[]>();
  for (const c of ['unet', 'vae', 'text_encoder'] as const) {
    for (const [key, info] of readSafetensorsHeader(path.join(folder, c, FILES[c])).tensors) {
      const to = ldmStateDict(c, key, info.shape, layout);
      assert.ok(to !== null, `${c}.${key}: no LDM key`);
      assert.ok(!mine.has(to.key), `${to.key} twice`);
      mine.set(to.key, to.shape);
    }
  }
  const theirs = new Map([...readSafetensorsHeader(reference).tensors].filter(([k]) => skipReason(k) === null).map(([k, i]) => [k, i.shape]));
  assert.equal(theirs.size, 710);
  assert.deepEqual([...mine.keys()].sort(), [...theirs.keys()].sort());
  for (const [k, s] of theirs) assert.deepEqual(mine.get(k), s, `${k}: shape`);
  assert.deepEqual(mine.get('first_stage_model.encoder.mid.attn_1.k.weight'), [64, 64, 1, 1]);
});

test('tiny SD v1: the folder written as an LDM single file (streamed) loads to exactly the folder\'s weights; schedule buffers are skipped', async () => {
  const start = liveTensors();
  const cfg = (c: string) => JSON.parse(readFileSync(path.join(folder, c, 'config.json'), 'utf8')) as Record<string, unknown>;
  const layout = ldmLayout(cfg('unet'), cfg('vae'));
  const readers = (['unet', 'vae', 'text_encoder'] as const).map((c) => ({ c, r: new SafetensorsReader(path.join(folder, c, FILES[c])) }));
  const file = path.join(tmp, 'written.safetensors');
  try {
    const tensors: ComponentTensor[] = readers.flatMap(({ c, r }) => [...r.header.tensors].map(([key, info]) => ({
      component: c, key, dtype: info.dtype, shape: info.shape, data: () => r.read(key),
    })));
    const extra = ['betas', 'alphas_cumprod'].map((name) => ({ name, dtype: 'float32' as const, shape: [1000], data: () => full([1000], 0.5) }));
    const bytes = writeSafetensorsStreamed(file, [...ldmTensors(tensors, layout), ...extra]);
    assert.equal(bytes, readers.reduce((n, { r }) => n + [...r.header.tensors.values()].reduce((m, i) => m + i.end - i.begin, 0), 0) + 2 * 4000);
  } finally {
    for (const { r } of readers) r.close();
  }
  const h = readSafetensorsHeader(file);
  assert.equal(h.tensors.size, 712);
  assert.deepEqual(h.tensors.get('first_stage_model.decoder.mid.attn_1.v.weight')?.shape, [64, 64, 1, 1]);
  const single = loadSingleFile(file, { config: path.join(dir, 'tiny-sd1-ldm.yaml'), textEncoderHeads: 4 });
  const sd = await loadStableDiffusion(folder);
  try {
    assert.deepEqual(single.skipped.map((s) => s.key).sort(), ['alphas_cumprod', 'betas']);
    assert.equal(single.summary.tensors, 710);
    const n = assertSameWeights(single.unet, sd.unet, 'unet') + assertSameWeights(single.vae, sd.vae, 'vae')
      + assertSameWeights(single.textEncoder, sd.textEncoder, 'text_encoder');
    assert.ok(n >= 710, `${n} tensors compared`);
  } finally {
    single.unet.dispose();
    single.vae.dispose();
    single.textEncoder.dispose();
    disposeStableDiffusion(sd);
  }
  assert.equal(liveTensors(), start, 'no tensor leaked (writer or loader)');
});
