// A single-file checkpoint through the CLI as a user drives it: edit with its YAML, a tokenizer and
// the head count; the session records how the base was loaded, so render needs none of it again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixturePath, repoRoot } from '../fixtures.js';
import { runCli, writeTinyTokenizer, writeRedBlueImage } from './tiny-model.js';

let dir: string;
let input: string;
const p = (name: string) => path.join(dir, name);
const file = fixturePath('golden/single-file/tiny-sd1-ldm.safetensors');
const yaml = fixturePath('golden/single-file/tiny-sd1-ldm.yaml');

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-cli-single-'));
  writeTinyTokenizer(p('tok'));
  input = p('input.png');
  await writeRedBlueImage(input);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('single file: edit with --config/--tokenizer/--text-encoder-heads, then render from the session with none of them', () => {
  const r = runCli(['edit', input, 'a blue square', '-m', file, '--config', yaml, '--tokenizer', p('tok'), '--text-encoder-heads', '4',
    '--steps-a', '3', '--steps-b', '3', '--steps', '2', '--eta', '0.7', '--threads', '1', '-o', p('edit.png')]);
  assert.equal(r.code, 0, r.err);
  const session = JSON.parse(readFileSync(p('edit.imagic/session.json'), 'utf8'));
  assert.deepEqual(session.model.load, { config: yaml, tokenizer: p('tok'), textEncoderHeads: 4 });
  assert.equal(session.model.family, 'sd1');
  const again = runCli(['render', p('edit.imagic'), '-o', p('render.png'), '--steps', '2', '--threads', '1']);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(readFileSync(p('render.png')), readFileSync(p('edit.png')), 'the same image, the base loaded as recorded');
  // Options given to render still win: a wrong head count is an error naming it.
  const wrong = runCli(['render', p('edit.imagic'), '-o', p('wrong.png'), '--text-encoder-heads', '5', '--threads', '1']);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.err, /does not split into 5 heads/);
});

test('single file: batch rows load it with --config/--tokenizer/--text-encoder-heads (the job carries them)', () => {
  writeFileSync(p('edits.csv'), 'image,target_text,eta\ninput.png,a blue square,0.7\n');
  const r = runCli(['batch', p('edits.csv'), '-o', p('batch'), '-m', file, '--config', yaml, '--tokenizer', p('tok'), '--text-encoder-heads', '4',
    '--clip-model', path.join(repoRoot, 'models', 'shapes-64', 'clip'), '--steps-a', '2', '--steps-b', '2', '--steps', '2', '--threads', '1', '-q']);
  assert.equal(r.code, 0, r.err + r.out);
  const lines = readFileSync(p('batch/results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status?: string; error?: string });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.status, 'ok', JSON.stringify(lines[0]));
  assert.ok(existsSync(p('batch/rows/001-input-a-blue-square/output.png')));
  const batchJson = JSON.parse(readFileSync(p('batch/batch.json'), 'utf8')) as { settings: Record<string, unknown> };
  assert.deepEqual([batchJson.settings.config, batchJson.settings.tokenizer, batchJson.settings.textEncoderHeads], [yaml, p('tok'), 4]);
});
