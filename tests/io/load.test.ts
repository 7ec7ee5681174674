// Streaming loads into nn Modules: strict key/shape checks from headers alone, meta-built models
// materialized without leaks, dtype policy, progress, and whole components of the golden tiny-sd.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arange, empty, fromTypedArray, liveTensors, tensor, type DType, type Tensor } from '../../src/engine/index.js';
import { Conv2d, Embedding, GroupNorm, Linear, Module, ModuleList, StateDictError, type InitOptions } from '../../src/nn/index.js';
import { readSafetensorsHeader, loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import { formatSummary, loadComponent, loadComponentAsync, loadWeights, loadWeightsAsync, type BuildInit } from '../../src/io/load.js';
import { type JsonObject } from '../../src/io/config.js';
import { assertClose, pseudoRandom, errorOf } from '../helpers.js';
import { fixturePath } from '../fixtures.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-load-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

class Block extends Module {
  readonly norm: GroupNorm;
  readonly conv: Conv2d;
  constructor(o: InitOptions) {
    super();
    this.norm = this.module('norm', new GroupNorm(1, 3, 1e-5, true, o));
    this.conv = this.module('conv', new Conv2d(3, 3, 3, { ...o, padding: 1 }));
  }
}
/** 11 tensors: embed.weight [5,3], blocks.{0,1}.{norm.weight,norm.bias,conv.weight,conv.bias}, proj.{weight,bias}. */
class Small extends Module {
  readonly embed: Embedding;
  readonly blocks: ModuleList<Block>;
  readonly proj: Linear;
  constructor(o: InitOptions = {}) {
    super();
    this.embed = this.module('embed', new Embedding(5, 3, o));
    this.blocks = this.module('blocks', new ModuleList([new Block(o), new Block(o)]));
    this.proj = this.module('proj', new Linear(3, 2, true, o));
  }
}
const SMALL_KEYS = 11;

/** Deterministic values for every key of Small (float32), as a checkpoint would hold them. */
function smallWeights(seed = 1): Map<string, Tensor> {
  const shapes = new Small({ device: 'meta' }).namedParameters().map(([k, t]) => [k, t.shape] as const);
  return new Map(shapes.map(([k, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return [k, fromTypedArray(Float32Array.from(pseudoRandom(n, seed * 100 + i)), shape)];
  }));
}

/** A float parameter and an int64 buffer, as CLIP's position_ids. */
class WithIds extends Module {
  readonly w: Tensor;
  readonly ids: Tensor;
  constructor(o: InitOptions = {}) {
    super();
    this.w = this.param('w', empty([2], { device: o.device ?? 'cpu', dtype: o.dtype }));
    this.ids = this.buffer('ids', o.device === 'meta' ? empty([1, 77], { device: 'meta', dtype: 'int64' }) : arange(77).reshape([1, 77]));
  }
}

function writeFile(name: string, tensors: Map<string, Tensor>): string {
  const file = path.join(tmp, name);
  saveSafetensors(file, tensors);
  return file;
}

const weights = smallWeights();
const smallFile = writeFile('small.safetensors', weights);
const idsFile = writeFile('ids.safetensors', new Map([['w', tensor([0.1, -2.5])], ['ids', arange(77).reshape([1, 77])]]));
const expected = new Map([...weights].map(([k, t]) => [k, t.toFlatArray()]));

function assertValues(m: Module, dtype: DType = 'float32', atol = 0, rtol = 0): void {
  const params = m.namedParameters();
  assert.equal(params.length, SMALL_KEYS);
  for (const [k, p] of params) {
    assert.equal(p.dtype, dtype, k);
    assertClose(p, expected.get(k)!, atol, rtol, k);
  }
}

/** Collects garbage and lets pending finalizers run, so that liveTensors() counts only what is reachable. */
async function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setImmediate(resolve));
}

test('strict load into an allocated module: exact values, the same Tensor objects, nothing leaked', async () => {
  const m = new Small();
  const handles = m.parameters();
  await settle();
  const live = liveTensors();
  const summary = loadWeights(m, smallFile);
  assert.equal(liveTensors(), live, 'copied in place: no tensor left over');
  assertValues(m);
  assert.deepEqual(m.parameters(), handles);
  const dataBytes = [...readSafetensorsHeader(smallFile).tensors.values()].reduce((n, t) => n + t.end - t.begin, 0);
  assert.equal(summary.tensors, SMALL_KEYS);
  assert.equal(summary.bytes, dataBytes);
  assert.ok(summary.seconds >= 0);
  assert.deepEqual(summary.files, [smallFile]);
  assert.match(formatSummary(summary, 'small'), /^small: 11 tensors, 0\.0 MB in \d+\.\d\d s/);
  // the forward pass uses the loaded weights: y = x W^T + b
  const w = expected.get('proj.weight')!;
  const b = expected.get('proj.bias')!;
  const y = m.proj.forward(tensor([[1, 2, 3]]));
  assertClose(y, [w[0]! + 2 * w[1]! + 3 * w[2]! + b[0]!, w[3]! + 2 * w[4]! + 3 * w[5]! + b[1]!], 1e-6, 1e-6);
  m.dispose();
});

test('a missing, an extra and a mis-shaped key are all named, before any data is read', () => {
  const bad = new Map(weights);
  bad.delete('blocks.1.conv.bias');
  bad.set('blocks.0.extra.weight', tensor([1, 2]));
  bad.set('proj.weight', fromTypedArray(new Float32Array(6), [3, 2]));
  const file = writeFile('bad.safetensors', bad);
  const m = new Small();
  const before = m.proj.bias!.toFlatArray();
  const e = errorOf(() => loadWeights(m, file, { source: 'the bad checkpoint' }));
  assert.ok(e instanceof StateDictError);
  assert.deepEqual(e.missing, ['blocks.1.conv.bias']);
  assert.deepEqual(e.unexpected, ['blocks.0.extra.weight']);
  assert.deepEqual(e.mismatched, [{ key: 'proj.weight', expected: [2, 3], got: [3, 2] }]);
  assert.match(e.message, /^the bad checkpoint does not match the model:\nmissing keys \(1\):\n {2}blocks.1.conv.bias\nunexpected keys \(1\):\n {2}blocks.0.extra.weight\nmis-shaped keys \(1\):\n {2}proj.weight: model \[2, 3\], checkpoint \[3, 2\]$/);
  assert.deepEqual(m.proj.bias!.toFlatArray(), before, 'nothing was loaded');
  // the default source is the file name
  assert.match(errorOf(() => loadWeights(m, file)).message, /bad\.safetensors does not match the model/);
  // non-strict: loads what matches and reports the rest
  const s = loadWeights(m, file, { strict: false });
  assert.equal(s.tensors, SMALL_KEYS - 2);
  assert.deepEqual(s.missing, ['blocks.1.conv.bias']);
  assert.deepEqual(s.unexpected, ['blocks.0.extra.weight']);
  assert.deepEqual(m.proj.bias!.toFlatArray(), expected.get('proj.bias'));
  m.dispose();
});

test('ignored keys are accepted silently (exact names and RegExps); rename maps checkpoint keys', () => {
  const extra = new Map(weights);
  extra.set('text_model.embeddings.position_ids', fromTypedArray(new BigInt64Array(77).map((_, i) => BigInt(i)), [1, 77]));
  extra.set('ema.decay', tensor(0.999));
  const file = writeFile('extra.safetensors', extra);
  const m = new Small();
  assert.deepEqual((errorOf(() => loadWeights(m, file)) as StateDictError).unexpected, ['ema.decay', 'text_model.embeddings.position_ids']);
  const s = loadWeights(m, file, { ignore: ['text_model.embeddings.position_ids', /^ema\./] });
  assert.equal(s.tensors, SMALL_KEYS);
  assertValues(m);
  // a prefixed checkpoint (as transformers 4 saves CLIPTextModel: text_model.*) loads through rename
  const prefixed = writeFile('prefixed.safetensors', new Map([...weights].map(([k, t]) => [`model.${k}`, t])));
  const m2 = new Small();
  loadWeights(m2, prefixed, { rename: (k) => (k.startsWith('model.') ? k.slice(6) : null) });
  assertValues(m2);
  m.dispose();
  m2.dispose();
  // an ignored model key may be absent from the checkpoint when the model already holds values for it
  const onlyW = writeFile('only-w.safetensors', new Map([['w', tensor([0.1, -2.5])]]));
  const allocated = new WithIds();
  assert.deepEqual((errorOf(() => loadWeights(allocated, onlyW)) as StateDictError).missing, ['ids']);
  loadWeights(allocated, onlyW, { ignore: ['ids'] });
  assertClose(allocated.w, [0.1, -2.5], 1e-7, 0);
  assert.deepEqual(allocated.ids.toFlatArray().slice(0, 3), [0, 1, 2]);
  // ... but not when it is on meta (it would stay empty)
  assert.deepEqual((errorOf(() => loadWeights(new WithIds({ device: 'meta' }), onlyW, { ignore: ['ids'] })) as StateDictError).missing, ['ids']);
  allocated.dispose();
});

test('a meta-built module gets the real values: one tensor per parameter stays alive, nothing more', async () => {
  await settle();
  const live = liveTensors();
  const m = new Small({ device: 'meta' });
  assert.equal(liveTensors(), live + SMALL_KEYS);
  assert.ok(m.parameters().every((p) => p.device === 'meta'));
  let calls = 0;
  loadWeights(m, smallFile, {
    onProgress: () => {
      calls++;
      assert.equal(liveTensors(), live + SMALL_KEYS, 'streaming: no read tensor outlives its step');
    },
  });
  assert.equal(calls, SMALL_KEYS);
  assert.equal(liveTensors(), live + SMALL_KEYS, 'every read tensor was handed over or freed');
  assert.ok(m.parameters().every((p) => p.device === 'cpu'));
  assertValues(m);
  m.dispose();
  assert.equal(liveTensors(), live);
});

test('dtype policy: float16 / bfloat16 / float32 as asked, integers untouched', () => {
  for (const [dtype, rtol] of [['float16', 2 ** -11], ['bfloat16', 2 ** -8], ['float32', 0]] as const) {
    const m = new Small({ device: 'meta', dtype });
    loadWeights(m, smallFile);
    assertValues(m, dtype, 1e-7, rtol);
    m.dispose();
    const a = new Small();
    loadWeights(a, smallFile, { dtype });
    assertValues(a, dtype, 1e-7, rtol);
    a.dispose();
  }
  // an fp16 file into a float32 model: the float16 values, widened exactly
  const half = new Map([...weights].map(([k, t]) => [k, t.to('float16')]));
  const halfFile = writeFile('half.safetensors', half);
  const m = new Small({ device: 'meta' });
  loadWeights(m, halfFile);
  for (const [k, p] of m.namedParameters()) {
    assert.equal(p.dtype, 'float32');
    assert.deepEqual(p.toFlatArray(), half.get(k)!.toFlatArray(), k);
  }
  m.dispose();
  for (const t of half.values()) t.dispose();
  // an integer buffer keeps its dtype whatever float dtype is asked
  const ids = new WithIds({ device: 'meta' });
  loadWeights(ids, idsFile, { dtype: 'float16' });
  assert.equal(ids.w.dtype, 'float16');
  assert.equal(ids.ids.dtype, 'int64');
  assert.deepEqual(ids.ids.toFlatArray(), Array.from({ length: 77 }, (_, i) => i));
  ids.dispose();
});

test('onProgress reports monotonically up to the total; shards load like one file', () => {
  const keys = [...weights.keys()].sort();
  const first = writeFile('shard-1.safetensors', new Map(keys.slice(0, 5).map((k) => [k, weights.get(k)!])));
  const second = writeFile('shard-2.safetensors', new Map(keys.slice(5).map((k) => [k, weights.get(k)!])));
  const calls: [number, number, string][] = [];
  const m = new Small({ device: 'meta' });
  const s = loadWeights(m, [first, second], { onProgress: (done, total, key) => calls.push([done, total, key]) });
  assertValues(m);
  assert.equal(calls.length, SMALL_KEYS);
  const total = calls[0]![1];
  assert.equal(total, s.bytes);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i]![0] > calls[i - 1]![0], 'strictly increasing');
  assert.ok(calls.every(([, t]) => t === total));
  assert.equal(calls[calls.length - 1]![0], total);
  assert.deepEqual(calls.map(([, , k]) => k).sort(), keys);
  const dup = writeFile('dup.safetensors', new Map([['proj.bias', weights.get('proj.bias')!]]));
  assert.match(errorOf(() => loadWeights(new Small({ device: 'meta' }), [first, second, dup])).message, /keys stored twice: 'proj.bias' in .*shard-2.safetensors and .*dup.safetensors/);
  m.dispose();
});

test('loadWeightsAsync gives the same values and progress', async () => {
  const m = new Small({ device: 'meta' });
  let last = 0;
  const s = await loadWeightsAsync(m, smallFile, { onProgress: (done) => { assert.ok(done > last); last = done; } });
  assert.equal(last, s.bytes);
  assertValues(m);
  m.dispose();
});

test('loadComponent: resolves, builds on meta from the config, loads; errors dispose the half-built module', async () => {
  const root = path.join(tmp, 'pipe');
  mkdirSync(path.join(root, 'small'), { recursive: true });
  writeFileSync(path.join(root, 'model_index.json'), JSON.stringify({ _class_name: 'TestPipeline', small: ['diffusers', 'Small'] }));
  writeFileSync(path.join(root, 'small', 'config.json'), JSON.stringify({ _class_name: 'Small', _diffusers_version: '0.40.0', layers: 2, future_field: 'kept' }));
  copyFileSync(smallFile, path.join(root, 'small', 'diffusion_pytorch_model.safetensors'));
  const seen: [JsonObject, BuildInit][] = [];
  const build = (config: JsonObject, init: BuildInit) => {
    seen.push([config, init]);
    return new Small(init);
  };
  const { module, config, summary, files } = loadComponent(root, 'small', build, { dtype: 'bfloat16' });
  assert.deepEqual(seen[0]![1], { device: 'meta', dtype: 'bfloat16' });
  assert.equal(config.layers, 2);
  assert.equal(config.future_field, 'kept');
  assert.equal(files.className, 'Small');
  assert.equal(summary.tensors, SMALL_KEYS);
  assertValues(module, 'bfloat16', 1e-7, 2 ** -8);
  module.dispose();
  const asyncLoaded = await loadComponentAsync(root, 'small', build);
  assertValues(asyncLoaded.module);
  asyncLoaded.module.dispose();
  // a model that does not match: the error names the component and its file; the module is freed
  await settle();
  const live = liveTensors();
  const e = errorOf(() => loadComponent(root, 'small', (_c, init) => new Linear(3, 2, true, init)));
  assert.ok(e instanceof StateDictError);
  assert.match(e.message, /^small \(.*small\/diffusion_pytorch_model.safetensors\) does not match the model:\nmissing keys \(2\):\n {2}weight\n {2}bias\nunexpected keys \(11\)/);
  assert.equal(liveTensors(), live);
  assert.match(errorOf(() => loadComponent(fixturePath('golden/tiny-sd'), 'scheduler', build)).message, /component 'scheduler' has no weights to load/);
});

/** A module whose parameters mirror a checkpoint's keys and shapes, built on meta as real models are. */
class MetaMirror extends Module {
  constructor(file: string, init: BuildInit) {
    super();
    for (const [k, info] of readSafetensorsHeader(file).tensors) this.param(k, empty(info.shape, { device: 'meta', dtype: init.dtype }));
  }
}

test('tiny-sd components load through loadComponent with the values safetensors reads', async () => {
  await settle();
  const root = fixturePath('golden/tiny-sd');
  for (const [name, file] of [['unet', 'unet/diffusion_pytorch_model.safetensors'], ['vae', 'vae/diffusion_pytorch_model.safetensors'], ['text_encoder', 'text_encoder/model.safetensors']]) {
    const full = path.join(root, file!);
    await settle();
    const live = liveTensors();
    const { module, summary } = loadComponent(root, name!, (_c, init) => new MetaMirror(full, init));
    const n = readSafetensorsHeader(full).tensors.size;
    assert.equal(summary.tensors, n);
    assert.equal(liveTensors(), live + n, `${name}: one live tensor per parameter`);
    const ref = loadSafetensors(full);
    for (const [k, p] of module.namedParameters()) assert.deepEqual(p.toTypedArray(), ref.get(k)!.toTypedArray(), `${name} ${k}`);
    for (const t of ref.values()) t.dispose();
    module.dispose();
  }
});

test('loading onto the device under test (IMAGIC_TEST_DEVICE, default cpu): meta-built and allocated modules', () => {
  const device = process.env.IMAGIC_TEST_DEVICE ?? 'cpu';
  const onDevice = (d: string) => d === device || (device === 'cuda' && d === 'cuda:0');
  const m = new Small({ device: 'meta' });
  loadWeights(m, smallFile, { device, dtype: 'bfloat16' });
  assert.ok(m.parameters().every((p) => onDevice(p.device) && p.dtype === 'bfloat16'));
  assertValues(m, 'bfloat16', 1e-7, 2 ** -8);
  const a = new Small().to({ device });
  const handles = a.parameters();
  loadWeights(a, smallFile); // copied in place on the device
  assert.deepEqual(a.parameters(), handles);
  assert.ok(a.parameters().every((p) => onDevice(p.device)));
  assertValues(a);
  m.dispose();
  a.dispose();
});
