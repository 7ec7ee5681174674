// SDXL through the CLI as a user drives it, with text prompts: a folder with both tokenizers
// (edit, render from the session, a session refused on a mismatched base) and a single file with
// its sgm YAML (generate, convert).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { fixturePath } from '../fixtures.js';
import { makeTinyModel, makeTinyXLModel, runCli, writeTinyTokenizer, writeRedBlueImage } from './tiny-model.js';

let dir: string;
let model: string;
let input: string;
const fast = ['--steps-a', '3', '--steps-b', '3', '--steps', '2', '--threads', '1'];
const p = (name: string) => path.join(dir, name);
const single = fixturePath('ldm-converted/tiny-sdxl-ldm.safetensors');
const yaml = fixturePath('ldm-converted/tiny-sdxl-ldm.yaml');

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-cli-sdxl-'));
  model = makeTinyXLModel(dir);
  writeTinyTokenizer(p('tok'));
  input = p('input.png');
  await writeRedBlueImage(input);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('SDXL folder: edit with a text prompt, a session that records the family, render bit-identical, a v1 base refused', async () => {
  const r = runCli(['edit', input, 'a blue square', '-m', model, ...fast, '--eta', '0.8', '-o', p('edit.png')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /stage A: 3\/3 \| loss [\d.]+/);
  const meta = await sharp(p('edit.png')).metadata();
  assert.deepEqual([meta.width, meta.height], [64, 64]);
  const session = JSON.parse(readFileSync(p('edit.imagic/session.json'), 'utf8'));
  assert.equal(session.model.family, 'sdxl');
  const again = runCli(['render', p('edit.imagic'), '-o', p('render.png'), '--steps', '2', '--threads', '1']);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(readFileSync(p('render.png')), readFileSync(p('edit.png')), 'the same image from the session');
  // compare: Imagic next to SDEdit and DDIM inversion, which take the pooled embedding and time_ids from the prompts.
  const cmp = runCli(['compare', input, 'a blue square', '-m', model, ...fast, '--eta', '0.8', '-o', p('compare.png')]);
  assert.equal(cmp.code, 0, cmp.err);
  const side = await sharp(p('compare.png')).metadata();
  assert.ok(side.width! >= 4 * 64, `a side-by-side of input, Imagic, SDEdit and DDIM (${side.width} px wide)`);
  const v1 = makeTinyModel(dir);
  const wrong = runCli(['render', p('edit.imagic'), '-m', v1, '-o', p('wrong.png'), '--threads', '1']);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.err, /sdxl|SDXL/);
  assert.ok(!existsSync(p('wrong.png')));
});

test('SDXL single file: generate with --config and --tokenizer (tokenizer_2 derived, said), then convert', async () => {
  const out = p('gen.png');
  const r = runCli(['generate', 'a red circle', '-m', single, '--config', yaml, '--text-encoder-heads', '4', '--tokenizer', p('tok'),
    '--width', '64', '--height', '64', '--steps', '2', '--seed', '1', '--threads', '1', '-o', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /no tokenizer_2\/: the second text encoder uses .*pad token '!' \(id 0\)/);
  const meta = await sharp(out).metadata();
  assert.deepEqual([meta.width, meta.height], [64, 64]);
  // The same image from the folder with the same tokenizers.
  const folder = runCli(['generate', 'a red circle', '-m', model, '--width', '64', '--height', '64', '--steps', '2', '--seed', '1', '--threads', '1', '-o', p('gen-folder.png')]);
  assert.equal(folder.code, 0, folder.err);
  assert.deepEqual(readFileSync(p('gen-folder.png')), readFileSync(out));
  const c = runCli(['convert', single, p('converted'), '--config', yaml, '--text-encoder-heads', '4', '--tokenizer', p('tok')]);
  assert.equal(c.code, 0, c.err);
  assert.ok(existsSync(p('converted/text_encoder_2/model.safetensors')));
  assert.ok(existsSync(p('converted/tokenizer_2/vocab.json')));
});
