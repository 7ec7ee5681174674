// `imagic generate` end to end, as a user runs it: a child process on the tiny checkpoint (given a
// small byte-level tokenizer whose ids fit its 1000-token vocabulary).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { fixturePath } from '../fixtures.js';
import { cli, makeTinyModel } from './tiny-model.js';

let dir: string;
let model: string;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-cli-'));
  model = makeTinyModel(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function imagic(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', HF_HOME: path.join(dir, 'hf-home') } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('generate writes a 64x64 PNG; the same seed gives the same bytes; a new seed a new image', async () => {
  const out = path.join(dir, 'a.png');
  const r = imagic('generate', 'a red circle', '-m', model, '--steps', '3', '-o', out, '--seed', '7');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /loaded unet: \d+ tensors/);
  assert.match(r.err, /sampling: 3\/3/);
  assert.match(r.err, /wrote .*a\.png in [\d.]+ s \(seed 7, 3 steps, guidance 7.5\)/);
  const meta = await sharp(out).metadata();
  assert.deepEqual([meta.width, meta.height, meta.channels], [64, 64, 3]);
  const again = path.join(dir, 'b.png');
  assert.equal(imagic('generate', 'a red circle', '-m', model, '--steps', '3', '-o', again, '--seed', '7', '-q').code, 0);
  assert.deepEqual(readFileSync(again), readFileSync(out));
  const other = path.join(dir, 'c.png');
  assert.equal(imagic('generate', 'a red circle', '-m', model, '--steps', '3', '-o', other, '--seed', '8', '-q').code, 0);
  assert.notDeepEqual(readFileSync(other), readFileSync(out));
});

test('existing outputs are kept unless --force; batches get numbered files', () => {
  const out = path.join(dir, 'keep.png');
  writeFileSync(out, 'precious');
  const r = imagic('generate', 'x', '-m', model, '--steps', '1', '-o', out);
  assert.equal(r.code, 1);
  assert.match(r.err, /keep\.png already exists \(use --force to overwrite\)/);
  assert.equal(readFileSync(out, 'utf8'), 'precious');
  assert.equal(imagic('generate', 'x', '-m', model, '--steps', '1', '-o', out, '--force', '-q').code, 0);
  assert.notEqual(readFileSync(out, 'utf8').slice(0, 8), 'precious');
  const batch = path.join(dir, 'batch.png');
  assert.equal(imagic('generate', 'y', '-m', model, '--steps', '1', '-b', '2', '-o', batch, '-q').code, 0);
  assert.ok(existsSync(path.join(dir, 'batch-0.png')) && existsSync(path.join(dir, 'batch-1.png')));
});

test('bad input: clear messages, exit code 1, no files left behind', () => {
  const before_ = readdirSync(dir).sort();
  const cases: [string[], RegExp][] = [
    [['generate', 'x', '-m', model, '--steps', '0', '-o', path.join(dir, 'n.png')], /steps must be an integer >= 1, got '0'/],
    [['generate', 'x', '-m', model, '-g', 'lots', '-o', path.join(dir, 'n.png')], /guidance must be a number, got 'lots'/],
    [['generate', 'x', '-m', model, '--width', '60', '-o', path.join(dir, 'n.png')], /width must be a positive integer and a multiple of 8/],
    [['generate', 'x', '-m', path.join(dir, 'nope'), '-o', path.join(dir, 'n.png')], /neither an existing folder nor a Hub repo id/],
    [['generate', 'x', '-m', path.join(dir, 'none/such'), '--offline', '-o', path.join(dir, 'n.png')], /neither an existing folder nor a Hub repo id/],
    [['generate', 'x', '-m', 'org/not-cached', '--offline', '-o', path.join(dir, 'n.png')], /'org\/not-cached' at revision 'main' is not in the Hub cache/],
    [['generate', 'x', '-m', fixturePath('golden'), '-o', path.join(dir, 'n.png')], /not a diffusers Stable Diffusion folder: it has no model_index\.json/],
    [['generate', '  ', '-m', model, '-o', path.join(dir, 'n.png')], /the prompt is empty/],
    [['generate', 'x', '-m', model, '-o', path.join(dir, 'n.jpg')], /output must be a \.png file/],
    [['generate', 'x', '-m', model, '-o', path.join(dir, 'no', 'dir', 'n.png')], /output folder .* does not exist/],
    [['generate', 'x', '-m', model, '--dtype', 'int8', '-o', path.join(dir, 'n.png')], /Allowed choices are float32, float16, bfloat16/],
  ];
  for (const [args, re] of cases) {
    const r = imagic(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}\n${r.err}`);
    assert.match(r.err, re, args.join(' '));
  }
  assert.deepEqual(readdirSync(dir).sort(), before_);
});

test('a 2000-character prompt is truncated to 77 tokens with a warning', () => {
  const r = imagic('generate', 'ab '.repeat(700), '-m', model, '--steps', '1', '-o', path.join(dir, 'long.png'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: prompt 1 is longer than the text encoder's 77 tokens: \d+ tokens were cut/);
});
