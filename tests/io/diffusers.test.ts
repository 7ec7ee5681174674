// Diffusers folders: the golden tiny-sd pipeline, fp16 variants and sharded layouts built from its
// unet (same values), single-component folders, and the errors for everything that is not there.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cat, tidy, type Tensor } from '../../src/engine/index.js';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import {
  addVariant, CheckpointError, isDiffusersPipeline, listComponents, readModelIndex, resolveComponent, resolveWeightFiles,
} from '../../src/io/diffusers.js';
import { fixturePath } from '../fixtures.js';
import { errorOf } from '../helpers.js';

const tinySd = fixturePath('golden/tiny-sd');
const unetFile = path.join(tinySd, 'unet', 'diffusion_pytorch_model.safetensors');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-diffusers-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The tiny-sd unet as stored (float32) and rounded to float16, read once for all tests. */
let unet32: Map<string, Tensor> | undefined;
let unet16: Map<string, Tensor> | undefined;
const originalUnet = () => (unet32 ??= loadSafetensors(unetFile));
const halfUnet = () => (unet16 ??= loadSafetensors(unetFile, { dtype: 'float16' }));

/** A pipeline folder with tiny-sd's model_index.json and an empty unet/ holding tiny-sd's unet config. */
function pipeline(name: string): { root: string; unet: string } {
  const root = path.join(tmp, name);
  const unet = path.join(root, 'unet');
  mkdirSync(unet, { recursive: true });
  copyFileSync(path.join(tinySd, 'model_index.json'), path.join(root, 'model_index.json'));
  copyFileSync(path.join(tinySd, 'unet', 'config.json'), path.join(unet, 'config.json'));
  return { root, unet };
}

/** Every tensor of the given files, by key. */
function readAll(files: string[]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const f of files) for (const [k, t] of loadSafetensors(f)) out.set(k, t);
  return out;
}

function disposeAll(...maps: Map<string, Tensor>[]): void {
  for (const m of maps) for (const t of m.values()) t.dispose();
}

/** max |a - b| and max |a - b| / |b| (over |b| in float16's normal range) across every tensor; keys and shapes must agree. */
function compare(a: Map<string, Tensor>, b: Map<string, Tensor>): { maxAbs: number; maxRel: number } {
  const keys = [...a.keys()].sort();
  assert.deepEqual(keys, [...b.keys()].sort());
  for (const k of keys) assert.deepEqual(a.get(k)!.shape, b.get(k)!.shape, k);
  return tidy(() => {
    const x = cat(keys.map((k) => a.get(k)!.flatten().to('float64')));
    const y = cat(keys.map((k) => b.get(k)!.flatten().to('float64')));
    const diff = x.sub(y).abs();
    const rel = diff.div(y.abs()).maskedFill(y.abs().lt(6.2e-5), 0);
    return { maxAbs: diff.max().item(), maxRel: rel.max().item() };
  });
}

test('addVariant puts the variant before the last extension, as diffusers and transformers do', () => {
  assert.equal(addVariant('diffusion_pytorch_model.safetensors', 'fp16'), 'diffusion_pytorch_model.fp16.safetensors');
  assert.equal(addVariant('diffusion_pytorch_model.safetensors.index.json', 'fp16'), 'diffusion_pytorch_model.safetensors.index.fp16.json');
  assert.equal(addVariant('model.safetensors.index.json', 'fp16'), 'model.safetensors.index.fp16.json');
  assert.equal(addVariant('model.safetensors', null), 'model.safetensors');
});

test('tiny-sd: model_index.json and every component that is present', () => {
  assert.ok(isDiffusersPipeline(tinySd));
  const index = readModelIndex(tinySd);
  assert.equal(index.className, 'StableDiffusionPipeline');
  assert.deepEqual([...index.components.keys()], ['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler']);
  assert.deepEqual(listComponents(tinySd).map((c) => `${c.name}:${c.library}/${c.className}:${c.present}`), [
    'unet:diffusers/UNet2DConditionModel:true', 'vae:diffusers/AutoencoderKL:true', 'text_encoder:transformers/CLIPTextModel:true',
    'tokenizer:transformers/CLIPTokenizer:false', 'scheduler:diffusers/DDIMScheduler:true',
  ]);
  const unet = resolveComponent(tinySd, 'unet');
  assert.equal(unet.dir, path.join(tinySd, 'unet'));
  assert.deepEqual(unet.files, [unetFile]);
  assert.equal(unet.index, null);
  assert.equal(unet.library, 'diffusers');
  assert.equal(unet.className, 'UNet2DConditionModel');
  assert.deepEqual(unet.config.block_out_channels, [32, 64, 64]);
  const vae = resolveComponent(tinySd, 'vae');
  assert.deepEqual(vae.files, [path.join(tinySd, 'vae', 'diffusion_pytorch_model.safetensors')]);
  assert.equal(vae.config.scaling_factor, 0.18215);
  const te = resolveComponent(tinySd, 'text_encoder');
  assert.equal(te.library, 'transformers');
  assert.deepEqual(te.files, [path.join(tinySd, 'text_encoder', 'model.safetensors')]);
  assert.equal(te.config.hidden_size, 32);
  const sched = resolveComponent(tinySd, 'scheduler');
  assert.deepEqual(sched.files, []);
  assert.equal(sched.configFile, path.join(tinySd, 'scheduler', 'scheduler_config.json'));
  assert.equal(sched.config.beta_schedule, 'scaled_linear');
  assert.equal(sched.config.steps_offset, 1);
});

test('a missing component is named, with the components that are there', () => {
  const e = errorOf(() => resolveComponent(tinySd, 'tokenizer'));
  assert.ok(e instanceof CheckpointError);
  assert.match(e.message, /component 'tokenizer' \(CLIPTokenizer\) is listed in model_index.json but its folder .*tokenizer is missing \(folders present: unet, vae, text_encoder, scheduler\)/);
  assert.match(errorOf(() => resolveComponent(tinySd, 'safety_checker')).message,
    /the pipeline has no component 'safety_checker'; model_index.json lists unet, vae, text_encoder, tokenizer, scheduler \(folders present: unet, vae, text_encoder, scheduler\)/);
});

test('a component folder on its own (config.json + weights) resolves too', () => {
  const unet = resolveComponent(path.join(tinySd, 'unet'), 'unet');
  assert.deepEqual(unet.files, [unetFile]);
  assert.equal(unet.className, 'UNet2DConditionModel');
  assert.equal(unet.library, 'diffusers', 'guessed from _diffusers_version');
  const te = resolveComponent(path.join(tinySd, 'text_encoder'), 'text_encoder');
  assert.equal(te.library, 'transformers', 'guessed from architectures');
  assert.equal(te.className, 'CLIPTextModel');
  const clip = resolveComponent(fixturePath('golden/tiny-clip'), 'clip');
  assert.deepEqual(clip.files, [fixturePath('golden/tiny-clip/model.safetensors')]);
});

test('an fp16 variant loads to the same values within float16 rounding; a missing variant lists what is there', () => {
  const { root, unet } = pipeline('variant');
  const original = originalUnet();
  const half = halfUnet();
  saveSafetensors(path.join(unet, 'diffusion_pytorch_model.fp16.safetensors'), half, { format: 'pt' });
  const c = resolveComponent(root, 'unet', { variant: 'fp16' });
  assert.deepEqual(c.files, [path.join(unet, 'diffusion_pytorch_model.fp16.safetensors')]);
  assert.equal(c.variant, 'fp16');
  const back = readAll(c.files);
  assert.ok([...back.values()].every((t) => t.dtype === 'float16'));
  const { maxAbs, maxRel } = compare(back, original);
  assert.ok(maxRel <= 2 ** -11, `relative error ${maxRel} within float16 rounding (2^-11)`);
  assert.ok(maxRel > 0, 'float16 did round something (the test compares real values)');
  assert.ok(maxAbs < 1e-3, `abs error ${maxAbs}`);
  const noPlain = errorOf(() => resolveComponent(root, 'unet'));
  assert.ok(noPlain instanceof CheckpointError);
  assert.match(noPlain.message, /no weights: expected diffusion_pytorch_model.safetensors or diffusion_pytorch_model.safetensors.index.json; found diffusion_pytorch_model.fp16.safetensors; load it with variant 'fp16'/);
  const noVariant = errorOf(() => resolveComponent(tinySd, 'unet', { variant: 'bf16' }));
  assert.match(noVariant.message, /unet: no 'bf16' variant weights: expected diffusion_pytorch_model.bf16.safetensors or diffusion_pytorch_model.safetensors.index.bf16.json; found diffusion_pytorch_model.safetensors; load it with no variant/);
  disposeAll(back);
});

/** Splits the unet into two shards (keys alternately) with a diffusers-style index. */
function writeShards(dir: string, shardName: (i: number) => string, indexName: string, tensors: Map<string, Tensor>): Map<string, string> {
  const keys = [...tensors.keys()].sort();
  const parts = [new Map<string, Tensor>(), new Map<string, Tensor>()];
  const weightMap = new Map<string, string>();
  keys.forEach((k, i) => {
    parts[i % 2]!.set(k, tensors.get(k)!);
    weightMap.set(k, shardName(i % 2));
  });
  parts.forEach((p, i) => saveSafetensors(path.join(dir, shardName(i)), p));
  writeFileSync(path.join(dir, indexName), JSON.stringify({ metadata: { total_size: 0 }, weight_map: Object.fromEntries(weightMap) }, null, 2));
  return weightMap;
}

test('a sharded checkpoint (index + 2 shards) loads to exactly the same values', () => {
  const { root, unet } = pipeline('sharded');
  const original = originalUnet();
  const shard = (i: number) => `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
  const weightMap = writeShards(unet, shard, 'diffusion_pytorch_model.safetensors.index.json', original);
  const c = resolveComponent(root, 'unet');
  assert.deepEqual(c.files, [path.join(unet, shard(0)), path.join(unet, shard(1))]);
  assert.equal(c.index!.file, path.join(unet, 'diffusion_pytorch_model.safetensors.index.json'));
  assert.deepEqual(c.index!.weightMap, weightMap);
  const back = readAll(c.files);
  assert.deepEqual(compare(back, original), { maxAbs: 0, maxRel: 0 });
  // diffusers prefers the index over a single file next to it
  copyFileSync(unetFile, path.join(unet, 'diffusion_pytorch_model.safetensors'));
  assert.equal(resolveComponent(root, 'unet').files.length, 2);
  // a shard that is missing is named
  rmSync(path.join(unet, shard(1)));
  assert.match(errorOf(() => resolveComponent(root, 'unet')).message,
    /diffusion_pytorch_model.safetensors.index.json: the index lists 2 shards, 1 missing: diffusion_pytorch_model-00002-of-00002.safetensors \(incomplete download\?\)/);
  disposeAll(back);
});

test('sharded fp16 variants: the diffusers naming and the legacy one', () => {
  const original = originalUnet();
  const half = halfUnet();
  const a = pipeline('sharded-fp16');
  const shard = (i: number) => `diffusion_pytorch_model.fp16-0000${i + 1}-of-00002.safetensors`;
  writeShards(a.unet, shard, 'diffusion_pytorch_model.safetensors.index.fp16.json', half);
  const ca = resolveComponent(a.root, 'unet', { variant: 'fp16' });
  assert.deepEqual(ca.files.map((f) => path.basename(f)), [shard(0), shard(1)]);
  const backA = readAll(ca.files);
  assert.deepEqual(compare(backA, half), { maxAbs: 0, maxRel: 0 });
  assert.ok(compare(backA, original).maxRel <= 2 ** -11);
  assert.match(errorOf(() => resolveComponent(a.root, 'unet')).message, /found diffusion_pytorch_model.fp16-00001-of-00002.safetensors, .*; load it with variant 'fp16'/);
  const b = pipeline('sharded-fp16-legacy');
  const legacy = (i: number) => `diffusion_pytorch_model-0000${i + 1}-of-00002.fp16.safetensors`;
  writeShards(b.unet, legacy, 'diffusion_pytorch_model.safetensors.index.json', half);
  const cb = resolveComponent(b.root, 'unet', { variant: 'fp16' });
  assert.deepEqual(cb.files.map((f) => path.basename(f)), [legacy(0), legacy(1)]);
  disposeAll(backA);
});

test('transformers components: model.safetensors before model.safetensors.index.json', () => {
  const root = path.join(tmp, 'te');
  mkdirSync(root);
  copyFileSync(path.join(tinySd, 'text_encoder', 'config.json'), path.join(root, 'config.json'));
  const te = loadSafetensors(path.join(tinySd, 'text_encoder', 'model.safetensors'));
  writeShards(root, (i) => `model-0000${i + 1}-of-00002.safetensors`, 'model.safetensors.index.json', te);
  assert.equal(resolveWeightFiles(root, { library: 'transformers' }).files.length, 2);
  copyFileSync(path.join(tinySd, 'text_encoder', 'model.safetensors'), path.join(root, 'model.safetensors'));
  assert.deepEqual(resolveComponent(root, 'text_encoder').files, [path.join(root, 'model.safetensors')]);
  disposeAll(te);
});

test('folders that are not checkpoints, and components without config or weights, get clear errors', () => {
  const notCkpt = path.join(tmp, 'photos');
  mkdirSync(notCkpt);
  writeFileSync(path.join(notCkpt, 'cat.png'), 'x');
  mkdirSync(path.join(notCkpt, 'more'));
  assert.match(errorOf(() => resolveComponent(notCkpt, 'unet')).message,
    /photos: not a diffusers checkpoint: expected a pipeline folder with model_index.json \(and unet\/, vae\/, text_encoder\/, tokenizer\/, scheduler\/ folders\) or a component folder with config.json and diffusion_pytorch_model.safetensors or model.safetensors; found cat.png, more\//);
  const empty = path.join(tmp, 'empty');
  mkdirSync(empty);
  assert.match(errorOf(() => resolveComponent(empty, 'unet')).message, /found an empty folder/);
  assert.match(errorOf(() => resolveComponent(path.join(tmp, 'nowhere'), 'unet')).message, /nowhere: no such file or folder/);
  assert.match(errorOf(() => resolveComponent(unetFile, 'unet')).message, /is a file, not a diffusers folder.*from_single_file/);

  const noConfig = pipeline('no-config');
  rmSync(path.join(noConfig.unet, 'config.json'));
  copyFileSync(unetFile, path.join(noConfig.unet, 'diffusion_pytorch_model.safetensors'));
  assert.match(errorOf(() => resolveComponent(noConfig.root, 'unet')).message,
    /unet: component 'unet' has no config.json \(nor scheduler_config.json, preprocessor_config.json, tokenizer_config.json\); found diffusion_pytorch_model.safetensors/);

  const noWeights = pipeline('no-weights');
  assert.match(errorOf(() => resolveComponent(noWeights.root, 'unet')).message,
    /unet: no weights: expected diffusion_pytorch_model.safetensors or diffusion_pytorch_model.safetensors.index.json; found config.json$/);

  const pickled = pipeline('pickled');
  writeFileSync(path.join(pickled.unet, 'diffusion_pytorch_model.bin'), 'PK');
  const e = errorOf(() => resolveComponent(pickled.root, 'unet'));
  assert.ok(e instanceof CheckpointError);
  assert.match(e.message, /found only pickled PyTorch weights \(diffusion_pytorch_model.bin\); imagic reads safetensors only. Convert them with python -c .*save_file\(torch.load\('diffusion_pytorch_model.bin'.*'diffusion_pytorch_model.safetensors'\)/);

  const badIndex = pipeline('bad-index');
  writeFileSync(path.join(badIndex.root, 'model_index.json'), '{\n  "unet": ["diffusers", "UNet2DConditionModel"],\n  "vae": ["diffusers" "AutoencoderKL"]\n}');
  assert.match(errorOf(() => resolveComponent(badIndex.root, 'unet')).message, /model_index.json: invalid JSON at line 3, column 23 \(unexpected '"'\)$/);
});
