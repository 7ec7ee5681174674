// Config files: the golden tiny-sd configs, errors that name the file (and line/column for bad
// JSON), schema checks that list every wrong field, typed access with defaults.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cfg, ConfigError, configSource, getField, makeConfig, readConfig, requireField, validateConfig } from '../../src/io/config.js';
import { fixturePath } from '../fixtures.js';
import { errorOf } from '../helpers.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, text);
  return file;
}

const UNET_SCHEMA = {
  block_out_channels: 'integer[]', layers_per_block: 'integer', attention_head_dim: 'integer|integer[]',
  cross_attention_norm: 'string|null', norm_eps: 'number', use_linear_projection: 'boolean',
};

test('the tiny-sd unet config: known fields typed, unknown fields kept, the file remembered', () => {
  const file = fixturePath('golden/tiny-sd/unet/config.json');
  const c = readConfig(file, UNET_SCHEMA);
  assert.equal(configSource(c), file);
  assert.deepEqual(cfg.integers(c, 'block_out_channels', [320]), [32, 64, 64]);
  assert.equal(cfg.integer(c, 'layers_per_block', 1), 2);
  assert.equal(cfg.number(c, 'norm_eps', 0), 1e-5);
  assert.equal(getField<number | number[]>(c, 'attention_head_dim', 'integer|integer[]', 8), 2);
  assert.equal(getField(c, 'cross_attention_norm', 'string|null', 'x'), null, 'an explicit null is kept when null is allowed');
  assert.equal(getField(c, 'num_attention_heads', 'integer', 7), 7, 'null falls back to the default');
  assert.equal(cfg.number(c, 'not_in_file', 0.5), 0.5);
  assert.equal(c._diffusers_version, '0.40.0.dev0', 'fields nobody asked for are kept');
  assert.equal(requireField<string>(c, 'mid_block_type', 'string'), 'UNetMidBlock2DCrossAttn');
});

test('a missing file, invalid JSON (line and column), a non-object and a byte-order mark', () => {
  const missing = errorOf(() => readConfig(path.join(tmp, 'absent', 'config.json')));
  assert.ok(missing instanceof ConfigError);
  assert.match(missing.message, /absent\/config\.json: config file not found$/);
  const bad = write('bad.json', '{\n  "a": 1,\n  "b": [1, 2,]\n}');
  assert.match(errorOf(() => readConfig(bad)).message, /bad\.json: invalid JSON at line 3, column 14 \(unexpected '\]'\)$/);
  assert.match(errorOf(() => readConfig(write('cut.json', '{"a": [1, 2'))).message, /cut\.json: invalid JSON at line 1, column 12 \(unexpected end of file\)$/);
  const trailing = write('trailing.json', '{"a": 1}\nxyz');
  assert.match(errorOf(() => readConfig(trailing)).message, /trailing\.json: invalid JSON at line 2, column 1/);
  assert.match(errorOf(() => readConfig(write('empty.json', ''))).message, /empty\.json: invalid JSON: the file is empty/);
  assert.match(errorOf(() => readConfig(write('array.json', '[1, 2]'))).message, /array\.json: expected a JSON object, got an array \[1,2\]/);
  assert.equal(readConfig(write('bom.json', '\ufeff{"x": 3}')).x, 3);
});

test('wrong types for known fields are all listed, naming the file', () => {
  const file = write('wrong.json', JSON.stringify({
    block_out_channels: [32, '64'], layers_per_block: 2.5, attention_head_dim: [8, 8], norm_eps: '1e-5', extra: { anything: true },
  }));
  const e = errorOf(() => readConfig(file, UNET_SCHEMA));
  assert.ok(e instanceof ConfigError);
  assert.equal(e.file, file);
  assert.match(e.message, /wrong\.json: fields of the wrong type:\n {2}'block_out_channels' should be integer\[\], got an array \[32,"64"\]\n {2}'layers_per_block' should be integer, got number 2\.5\n {2}'norm_eps' should be number, got string "1e-5"$/);
  const one = readConfig(write('one.json', '{"use_linear_projection": "yes"}'));
  assert.match(errorOf(() => validateConfig(one, UNET_SCHEMA)).message, /one\.json: field 'use_linear_projection' should be boolean, got string "yes"/);
  assert.match(errorOf(() => cfg.integer(one, 'use_linear_projection', 0)).message, /one\.json: field 'use_linear_projection' should be integer, got string "yes"/);
  assert.match(errorOf(() => requireField(one, 'in_channels', 'integer')).message, /one\.json: missing field 'in_channels' \(integer\)/);
  const preset = makeConfig({ in_channels: 4 }, 'preset v1_5');
  assert.match(errorOf(() => cfg.string(preset, 'in_channels', '')).message, /^preset v1_5: field 'in_channels' should be string, got number 4$/);
});
