// The full-size SD v1 UNet, built on the 'meta' device (nothing allocated), has exactly the 686
// checkpoint keys and shapes that diffusers gives it (tests/fixtures/golden/sd-v1-manifest.json),
// so real checkpoints load without renaming.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { liveTensors } from '../../../src/engine/index.js';
import { CrossAttnDownBlock2D, UNet2DConditionModel, parseUNetConfig, sdV1UNetConfig } from '../../../src/models/unet/index.js';
import { fixturePath } from '../../fixtures.js';

interface Manifest {
  configs: { unet: Record<string, unknown> };
  state_dict_shapes: { unet: Record<string, number[]> };
}
const manifest = JSON.parse(readFileSync(fixturePath('golden/sd-v1-manifest.json'), 'utf8')) as Manifest;
const expected = manifest.state_dict_shapes.unet;

/** A readable diff of two key -> shape maps (empty when equal). */
function shapeDiff(got: Map<string, number[]>, want: Record<string, number[]>): string {
  const lines: string[] = [];
  for (const k of Object.keys(want)) if (!got.has(k)) lines.push(`  missing:    ${k} [${want[k]!.join(', ')}]`);
  for (const [k, s] of got) {
    if (!(k in want)) lines.push(`  unexpected: ${k} [${s.join(', ')}]`);
    else if (s.join(',') !== want[k]!.join(',')) lines.push(`  mis-shaped: ${k}: model [${s.join(', ')}], diffusers [${want[k]!.join(', ')}]`);
  }
  return lines.slice(0, 40).join('\n') + (lines.length > 40 ? `\n  ... and ${lines.length - 40} more` : '');
}

test('full SD v1 UNet on meta: the 686 diffusers keys with their exact shapes, built in well under a second', () => {
  assert.equal(Object.keys(expected).length, 686);
  const live = liveTensors();
  const t0 = performance.now();
  const unet = new UNet2DConditionModel(manifest.configs.unet, { device: 'meta' });
  const ms = performance.now() - t0;
  const params = unet.namedParameters();
  const got = new Map(params.map(([k, t]) => [k, t.shape]));
  assert.equal(got.size, params.length, 'no duplicate parameter names');
  const diff = shapeDiff(got, expected);
  assert.equal(diff, '', `UNet keys differ from diffusers':\n${diff}`);
  assert.equal(unet.namedBuffers().length, 0);
  for (const [k, t] of params) assert.equal(t.device, 'meta', `${k} allocated on ${t.device}`);
  // the state dict order is diffusers' too (saving gives the same file layout)
  assert.deepEqual(params.map(([k]) => k), Object.keys(expected));
  const n = Object.values(expected).reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(unet.numParameters(), n);
  assert.equal(n, 859_520_964, 'SD v1 UNet parameter count');
  console.log(`  built in ${ms.toFixed(1)} ms, ${params.length} parameters, ${n} elements`);
  assert.ok(ms < 1000, `building on meta took ${ms.toFixed(0)} ms`);
  unet.dispose();
  assert.equal(liveTensors(), live);
});

test('sdV1UNetConfig() is the manifest config with diffusers defaults filled in', () => {
  assert.deepEqual(sdV1UNetConfig(), parseUNetConfig(manifest.configs.unet));
  const c = sdV1UNetConfig();
  assert.equal(c.attention_head_dim, 8, 'SD v1: 8 heads (named attention_head_dim)');
  assert.equal(c.cross_attention_dim, 768);
  assert.deepEqual(c.block_out_channels, [320, 640, 1280, 1280]);
  assert.equal(c.use_linear_projection, false);
});

test('heads: attention_head_dim is the head count (8 for SD v1), per block when a list', () => {
  const headsOf = (u: UNet2DConditionModel, i: number): [number, number] => {
    const block = u.down_blocks.at(i);
    assert.ok(block instanceof CrossAttnDownBlock2D);
    const attn = block.attentions.at(0).transformer_blocks.at(0).attn2!;
    return [attn.heads, attn.dimHead];
  };
  const sd = new UNet2DConditionModel(manifest.configs.unet, { device: 'meta' });
  assert.deepEqual([0, 1, 2].map((i) => headsOf(sd, i)), [[8, 40], [8, 80], [8, 160]]);
  const perBlock = new UNet2DConditionModel({ ...manifest.configs.unet, attention_head_dim: [5, 10, 20, 20] }, { device: 'meta' });
  assert.deepEqual([0, 1, 2].map((i) => headsOf(perBlock, i)), [[5, 64], [10, 64], [20, 64]]);
  assert.deepEqual(shapeDiff(new Map(perBlock.namedParameters().map(([k, t]) => [k, t.shape])), expected), '', 'head count does not change weights');
  sd.dispose();
  perBlock.dispose();
});
