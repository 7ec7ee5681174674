// CLIPTextModel against transformers: the golden tiny SD text encoder (te.*), extra references from
// make_clip_extra.py (padding mask, short input, hidden states, gelu + legacy pooling), SD v1 keys and shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tensor, tidy, type Tensor } from '../../../src/engine/index.js';
import { StateDictError } from '../../../src/nn/index.js';
import { loadSafetensors } from '../../../src/io/safetensors.js';
import {
  CLIPConfigError, CLIPInputError, CLIPTextModel, CLIP_TEXT_IGNORE_KEYS, clipTextCheckpointKey, loadCLIPTextModel, parseCLIPTextConfig, sdV1TextConfig,
} from '../../../src/models/clip/index.js';
import { assertClose } from '../../helpers.js';
import { fixturePath, repoRoot } from '../../fixtures.js';

const TE_DIR = fixturePath('golden/tiny-sd/text_encoder');
const EXTRA = path.join(repoRoot, 'tests', 'models', 'clip', 'clip-extra.safetensors');
const golden = (keys: string[]) => loadSafetensors(fixturePath('golden/golden.safetensors'), { keys });
const maxDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().amax().item());

let tiny: CLIPTextModel | undefined;
const tinyModel = () => (tiny ??= loadCLIPTextModel(TE_DIR));

test('te golden: tiny SD text encoder reproduces transformers\' last_hidden_state and pooler_output', () => {
  // reference: make_golden.py, te = CLIPTextModel(clip_cfg(True)); out = te(ids), ids = [998, 5, 17, 256, 999] + [999] * 72
  const g = golden(['te.input_ids', 'te.last_hidden_state', 'te.pooler_output']);
  const out = tinyModel().forward(g.get('te.input_ids')!);
  assert.deepEqual(out.lastHiddenState.shape, [1, 77, 32]);
  assert.deepEqual(out.poolerOutput.shape, [1, 32]);
  assertClose(out.lastHiddenState, g.get('te.last_hidden_state')!, 1e-4, 1e-4, 'te.last_hidden_state');
  assertClose(out.poolerOutput, g.get('te.pooler_output')!, 1e-4, 1e-4, 'te.pooler_output');
  // pooled = the row at the first eos (999 at position 4)
  assertClose(out.poolerOutput, out.lastHiddenState.select(1, 4), 0, 0, 'pooled row');
  console.log(`te max|diff|: last_hidden_state ${maxDiff(out.lastHiddenState, g.get('te.last_hidden_state')!).toExponential(2)}, `
    + `pooler_output ${maxDiff(out.poolerOutput, g.get('te.pooler_output')!).toExponential(2)}`);
});

test('attention mask, short sequences and hidden states match transformers', () => {
  // reference: tests/models/clip/make_clip_extra.py (mask.*, short.*)
  const r = loadSafetensors(EXTRA);
  const m = tinyModel();
  const masked = m.forward(r.get('mask.input_ids')!, { attentionMask: r.get('mask.attention_mask')! });
  assertClose(masked.lastHiddenState, r.get('mask.last_hidden_state')!, 1e-4, 1e-4, 'mask.last_hidden_state');
  assertClose(masked.poolerOutput, r.get('mask.pooler_output')!, 1e-4, 1e-4, 'mask.pooler_output');
  // the mask only hides padding, which causality already hides from real tokens: their rows are unchanged
  const plain = m.forward(r.get('mask.input_ids')!);
  assertClose(plain.lastHiddenState.narrow(1, 0, 5).select(0, 0), masked.lastHiddenState.narrow(1, 0, 5).select(0, 0), 1e-5, 1e-5, 'unpadded rows');
  const short = m.forward(r.get('short.input_ids')!.toArray() as number[][], { outputHiddenStates: true });
  assert.deepEqual(short.lastHiddenState.shape, [2, 5, 32]);
  assertClose(short.lastHiddenState, r.get('short.last_hidden_state')!, 1e-4, 1e-4, 'short.last_hidden_state');
  assertClose(short.poolerOutput, r.get('short.pooler_output')!, 1e-4, 1e-4, 'short.pooler_output');
  assert.equal(short.hiddenStates!.length, 3);
  assertClose(short.hiddenStates![1]!, r.get('short.hidden_state_1')!, 1e-4, 1e-4, 'short.hidden_states[1]');
  assertClose(short.hiddenStates![2]!, r.get('short.hidden_state_2')!, 1e-4, 1e-4, 'short.hidden_states[2]');
});

test('gelu activation and eos_token_id 2 (legacy pooling at the largest id) match transformers', () => {
  // reference: make_clip_extra.py legacy.*: the tiny weights under hidden_act "gelu", eos_token_id 2
  const cfgJson = { ...JSON.parse(readFileSync(path.join(TE_DIR, 'config.json'), 'utf8')), hidden_act: 'gelu', eos_token_id: 2 };
  const m = new CLIPTextModel(parseCLIPTextConfig(cfgJson), { device: 'meta' });
  m.loadStateDict(loadSafetensors(path.join(TE_DIR, 'model.safetensors')));
  const r = loadSafetensors(EXTRA, { keys: ['legacy.input_ids', 'legacy.last_hidden_state', 'legacy.pooler_output'] });
  const out = m.forward(r.get('legacy.input_ids')!);
  assertClose(out.lastHiddenState, r.get('legacy.last_hidden_state')!, 1e-4, 1e-4, 'legacy.last_hidden_state');
  assertClose(out.poolerOutput, r.get('legacy.pooler_output')!, 1e-4, 1e-4, 'legacy.pooler_output');
  // row 0 holds a 2 at position 2, yet the legacy rule pools at the first 999 (position 4)
  assert.deepEqual(m.poolingIndex(r.get('legacy.input_ids')!).toFlatArray(), [4, 5]);
  // the modern rule: the first eos; a row without one pools at position 0, as transformers' argmax
  assert.deepEqual(tinyModel().poolingIndex(tensor([[998, 999, 5, 999], [998, 5, 6, 7]], { dtype: 'int64' })).toFlatArray(), [1, 0]);
});

test('SD v1 text encoder built on meta has exactly the 196 manifest keys and shapes', () => {
  const manifest = JSON.parse(readFileSync(fixturePath('golden/sd-v1-manifest.json'), 'utf8')) as {
    configs: { text_encoder: unknown }; state_dict_shapes: { text_encoder: Record<string, number[]> };
  };
  const config = parseCLIPTextConfig(manifest.configs.text_encoder, 'sd-v1-manifest.json text_encoder');
  assert.deepEqual(config, sdV1TextConfig());
  const m = new CLIPTextModel(config, { device: 'meta' });
  const expected = Object.entries(manifest.state_dict_shapes.text_encoder).filter(([k]) => !CLIP_TEXT_IGNORE_KEYS.includes(k));
  assert.equal(expected.length, 196);
  const got = m.namedParameters().map(([k, t]) => [k, t.shape]);
  assert.deepEqual(got, expected);
  assert.equal(m.namedBuffers().length, 0);
  assert.equal(m.numParameters(), 123060480);
  assert.ok(m.parameters().every((p) => p.device === 'meta'));
});

test('checkpoints with the text_model. prefix and position_ids load; bad key sets are listed', () => {
  const sd = loadSafetensors(path.join(TE_DIR, 'model.safetensors'));
  const legacy = new Map([...sd].map(([k, t]) => [`text_model.${k}`, t]));
  legacy.set('text_model.embeddings.position_ids', tensor([Array.from({ length: 77 }, (_, i) => i)], { dtype: 'int64' }));
  const m = new CLIPTextModel(tinyModel().config, { device: 'meta' });
  m.loadStateDict(legacy);
  const g = golden(['te.input_ids', 'te.last_hidden_state']);
  assertClose(m.forward(g.get('te.input_ids')!).lastHiddenState, g.get('te.last_hidden_state')!, 1e-4, 1e-4, 'legacy-keyed load');

  // the same rule for streaming loaders that take a rename function
  assert.equal(clipTextCheckpointKey('text_model.encoder.layers.0.mlp.fc1.weight'), 'encoder.layers.0.mlp.fc1.weight');
  assert.equal(clipTextCheckpointKey('final_layer_norm.bias'), 'final_layer_norm.bias');

  const broken = new Map(sd);
  broken.delete('encoder.layers.1.mlp.fc2.bias');
  broken.set('encoder.layers.0.self_attn.q_proj.weight', tensor([[1, 2]]));
  broken.set('encoder.layers.9.mlp.fc1.weight', tensor([1]));
  assert.throws(() => new CLIPTextModel(tinyModel().config, { device: 'meta' }).loadStateDict(broken, { source: 'broken.safetensors' }),
    (e: Error) => e instanceof StateDictError
      && e.message.includes('broken.safetensors')
      && e.message.includes('encoder.layers.1.mlp.fc2.bias')
      && e.message.includes('encoder.layers.9.mlp.fc1.weight')
      && e.message.includes('encoder.layers.0.self_attn.q_proj.weight: model [32, 32], checkpoint [1, 2]'));
});

test('bfloat16 weights give the float32 result to bfloat16 precision', () => {
  const g = golden(['te.input_ids', 'te.last_hidden_state']);
  const m = loadCLIPTextModel(TE_DIR, { dtype: 'bfloat16' });
  assert.equal(m.embeddings.token_embedding.weight.dtype, 'bfloat16');
  const out = m.forward(g.get('te.input_ids')!);
  assert.equal(out.lastHiddenState.dtype, 'bfloat16');
  assertClose(out.lastHiddenState.float(), g.get('te.last_hidden_state')!, 0.1, 0.05, 'bf16 last_hidden_state');
});

test('bad input ids give CLIPInputError saying what is wrong', () => {
  const m = tinyModel();
  const err = (re: RegExp) => (e: Error) => e instanceof CLIPInputError && re.test(e.message);
  assert.throws(() => m.forward([[998, 1000, 999]]), err(/token id 1000 is outside the vocabulary \[0, 999\] \(vocab_size 1000\)/));
  assert.throws(() => m.forward(tensor([[998, -3, 999]], { dtype: 'int64' })), err(/token id -3 is outside the vocabulary/));
  assert.throws(() => m.forward(tensor([[998, 3, 999]])), err(/must be int64 or int32, got float32/));
  assert.throws(() => m.forward(tensor([998, 3, 999], { dtype: 'int64' })), err(/must be \[B, L\], got shape \[3\]/));
  assert.throws(() => m.forward([new Array(78).fill(5)]), err(/78 tokens per row exceed max_position_embeddings 77/));
  assert.throws(() => m.forward([[1, 2], [3]]), err(/rows of equal length/));
  assert.throws(() => m.forward([[1, 2.5]]), err(/array of integers/));
  assert.throws(() => m.forward([[998, 999]], { attentionMask: [[1, 1, 1]] }), err(/attention mask has shape \[1, 3\], expected \[1, 2\]/));
});

test('bad configs give CLIPConfigError naming the field', () => {
  const base = JSON.parse(readFileSync(path.join(TE_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => parseCLIPTextConfig({ ...base, ...patch }, 'text_encoder/config.json'),
      (e: Error) => e instanceof CLIPConfigError && e.message.startsWith('text_encoder/config.json: ') && re.test(e.message));
  bad({ num_attention_heads: 5 }, /hidden_size 32 is not divisible by num_attention_heads 5/);
  bad({ hidden_act: 'swish' }, /'hidden_act' must be one of quick_gelu, gelu/);
  bad({ vocab_size: -1 }, /'vocab_size' must be a positive integer \(got -1\)/);
  bad({ layer_norm_eps: '1e-5' }, /'layer_norm_eps' must be a positive number/);
  bad({ model_type: 'clip_vision_model' }, /model_type is "clip_vision_model", expected 'clip_text_model'/);
  bad({ eos_token_id: 1000 }, /eos_token_id 1000 is outside the vocabulary/);
  assert.throws(() => parseCLIPTextConfig([1, 2]), CLIPConfigError);
  assert.throws(() => loadCLIPTextModel(path.join(repoRoot, 'no-such-dir')), /no-such-dir\/config\.json: not found/);
  // defaults as transformers' CLIPTextConfig; a whole CLIPConfig gives its text_config
  const d = parseCLIPTextConfig({});
  assert.deepEqual([d.hiddenSize, d.numAttentionHeads, d.eosTokenId, d.hiddenAct], [512, 8, 49407, 'quick_gelu']);
  assert.equal(parseCLIPTextConfig({ model_type: 'clip', text_config: { hidden_size: 64 } }).hiddenSize, 64);
});
