// CLIPTokenizer: the 32 golden texts of OpenAI's simple_tokenizer and transformers' SD v1 padding and
// truncation over the real vocabulary (../shared/clip-vocab, skipped where absent), and a handmade BPE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLIPTokenizer, CLIPTokenizerError, cleanText } from '../../../src/models/clip/index.js';
import { loadSafetensors, readSafetensorsHeader } from '../../../src/io/safetensors.js';
import { fixturePath, repoRoot, sharedPath } from '../../fixtures.js';

const VOCAB_DIR = sharedPath('clip-vocab');
const haveVocab = existsSync(path.join(VOCAB_DIR, 'vocab.json')) && existsSync(path.join(VOCAB_DIR, 'merges.txt'));
const skipReal = haveVocab ? false : `the real CLIP vocabulary is absent (${VOCAB_DIR}): tokenizer golden tests skipped`;
const EXTRA = path.join(repoRoot, 'tests', 'models', 'clip', 'clip-extra.safetensors');

let real: CLIPTokenizer | undefined;
function realTokenizer(): CLIPTokenizer {
  real ??= CLIPTokenizer.fromFiles(path.join(VOCAB_DIR, 'vocab.json'), path.join(VOCAB_DIR, 'merges.txt'));
  return real;
}

test('the 32 golden texts encode to the ids of OpenAI\'s reference tokenizer', { skip: skipReal }, () => {
  const golden = JSON.parse(readFileSync(fixturePath('golden/tokenizer-golden.json'), 'utf8')) as { vocab_size: number; cases: { text: string; ids: number[] }[] };
  const tok = realTokenizer();
  assert.equal(tok.vocabSize, golden.vocab_size);
  assert.equal(golden.cases.length, 32);
  assert.deepEqual([tok.bosTokenId, tok.eosTokenId, tok.padTokenId], [49406, 49407, 49407]);
  for (const c of golden.cases) assert.deepEqual(tok.encode(c.text), c.ids, `text ${JSON.stringify(c.text)}`);
});

test('SD v1 padding and truncation match transformers\' CLIPTokenizer (max_length 77)', { skip: skipReal }, () => {
  // reference: tests/models/clip/make_clip_extra.py, tok(texts, padding="max_length", max_length=77, truncation=True)
  const header = readSafetensorsHeader(EXTRA);
  const texts = JSON.parse(header.metadata.texts!) as string[];
  const lengths = JSON.parse(header.metadata.untruncated_lengths!) as number[];
  const ref = loadSafetensors(EXTRA, { keys: ['tok.input_ids', 'tok.attention_mask'] }, header);
  const warnings: string[] = [];
  const enc = realTokenizer().call(texts, { onWarning: (m) => warnings.push(m) });
  assert.deepEqual(enc.inputIds, ref.get('tok.input_ids')!.toArray());
  assert.deepEqual(enc.attentionMask, ref.get('tok.attention_mask')!.toArray());
  assert.deepEqual(enc.truncated, lengths.map((n) => Math.max(0, n - 77)));
  assert.equal(enc.truncated[1], 725);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /prompt 1 is 802 tokens long .* 725 tokens were truncated/);
  assert.match(enc.truncatedText[1]!, /^dog a dog a dog .* a dog$/); // 75 kept tokens end with 'a'
  const t = realTokenizer().inputIdsTensor(texts[0]!);
  assert.deepEqual(t.shape, [1, 77]);
  assert.equal(t.dtype, 'int64');
  assert.deepEqual(t.toFlatArray(), (ref.get('tok.input_ids')!.toArray() as number[][])[0]);
});

test('a 2000-character prompt is cut to 77 ids ending in 49407, with a warning that counts the loss', { skip: skipReal }, () => {
  const tok = realTokenizer();
  const prompt = 'a photo of a cat wearing a hat, '.repeat(63).slice(0, 2000);
  assert.equal(prompt.length, 2000);
  const full = tok.encode(prompt);
  const warnings: string[] = [];
  const enc = tok.call(prompt, { onWarning: (m) => warnings.push(m) });
  const ids = enc.inputIds[0]!;
  assert.equal(ids.length, 77);
  assert.deepEqual(ids.slice(0, 76), full.slice(0, 76));
  assert.equal(ids[76], 49407);
  assert.equal(enc.truncated[0], full.length - 77);
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0]!.includes(`${full.length - 77} tokens were truncated`), warnings[0]);
});

test('decode inverts encode up to whitespace and case', { skip: skipReal }, () => {
  const tok = realTokenizer();
  const ids = tok.encode('Naïve café, 🐱 日本語!');
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'naïve café , 🐱 日本語 !');
  assert.throws(() => tok.decode([60000]), CLIPTokenizerError);
});

// ---- a handmade vocabulary: every expected id worked out by hand from the merge ranks below
const MERGES = ['#version: 0.2', 'l o', 'lo w', 'e r</w>', 'n e', 'ne w', 'low er</w>', 'lo w</w>', 'Ã ©</w>'];
const VOCAB = { 'lower</w>': 1, new: 2, 'er</w>': 3, 'low</w>': 4, '!</w>': 5, 'Ã©</w>': 6, '<|startoftext|>': 10, '<|endoftext|>': 11 };

function withFiles<R>(files: Record<string, string>, fn: (dir: string) => R): R {
  const dir = mkdtempSync(path.join(tmpdir(), 'clip-tok-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const handmade = (extra: Record<string, string> = {}) =>
  withFiles({ 'vocab.json': JSON.stringify(VOCAB), 'merges.txt': MERGES.join('\n') + '\n', ...extra }, (d) => CLIPTokenizer.fromDir(d));

test('handmade BPE: merges applied by rank, end-of-word marker, byte-level pieces, unknown pieces', () => {
  const tok = handmade();
  // lower: l o -> lo, lo w -> low, e r</w> -> er</w>, low er</w> -> lower</w>
  // newer: e r</w> (rank 2) before n e (rank 3), then ne w; 'new er</w>' is no merge -> new + er</w>
  // low: l o, then lo w</w> (the end-of-word form)
  assert.deepEqual(tok.bpe('lower'), ['lower</w>']);
  assert.deepEqual(tok.bpe('newer'), ['new', 'er</w>']);
  assert.deepEqual(tok.bpe('low'), ['low</w>']);
  assert.deepEqual(tok.encode('  Lower\t NEWER\nlow! '), [10, 1, 2, 3, 4, 5, 11]);
  // é is the bytes C3 A9, printed by the byte map as 'Ã' and '©'
  assert.deepEqual(tok.encode('é'), [10, 6, 11]);
  // z, z, z</w> are not in the vocabulary: each becomes the unknown token (<|endoftext|>, as transformers)
  assert.deepEqual(tok.encode('zzz'), [10, 11, 11, 11, 11]);
  assert.deepEqual(tok.encode('<|startoftext|>low<|endoftext|>'), [10, 10, 4, 11, 11]);
  assert.equal(tok.decode([10, 1, 2, 3, 4, 5, 11]), '<|startoftext|>lower newer low ! <|endoftext|>');
});

test('handmade BPE: padding to 77 with the pad token, truncation keeping the end token, 2000 characters', () => {
  const tok = handmade();
  const short = tok.call(['low', 'lower newer'], { maxLength: 6 });
  assert.deepEqual(short.inputIds, [[10, 4, 11, 11, 11, 11], [10, 1, 2, 3, 11, 11]]);
  assert.deepEqual(short.attentionMask, [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]]);
  assert.deepEqual(tok.call(['low', 'lower newer'], { padding: 'longest' }).inputIds, [[10, 4, 11, 11, 11], [10, 1, 2, 3, 11]]);
  const prompt = 'low '.repeat(500);
  assert.equal(prompt.length, 2000);
  const warnings: string[] = [];
  const enc = tok.call(prompt, { onWarning: (m) => warnings.push(m) });
  assert.deepEqual(enc.inputIds[0], [10, ...new Array(75).fill(4), 11]);
  assert.deepEqual(enc.truncated, [502 - 77]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /prompt is 502 tokens long but the text encoder takes 77: 425 tokens were truncated \("low low/);
  const noTrunc = tok.call(prompt, { truncation: false, padding: 'none' });
  assert.equal(noTrunc.inputIds[0]!.length, 502);
  const ids = tok.inputIdsTensor(['low', 'lower'], { maxLength: 4 });
  assert.deepEqual(ids.toArray(), [[10, 4, 11, 11], [10, 1, 11, 11]]);
});

test('tokenizer_config.json special tokens and length are honoured', () => {
  const tok = handmade({ 'tokenizer_config.json': JSON.stringify({ pad_token: { content: 'new' }, model_max_length: 5 }) });
  assert.equal(tok.padTokenId, 2);
  assert.deepEqual(tok.call('low').inputIds, [[10, 4, 11, 2, 2]]);
});

test('text cleanup: html entities, whitespace runs, lower case', () => {
  assert.equal(cleanText('  A &amp;amp; B&lt;3 &#233;t&#xE9;\u00a0\u3000Done\n'), 'a & b<3 été done');
  assert.equal(cleanText('&unknown; &amp'), '&unknown; &');
});

test('bad tokenizer files give CLIPTokenizerError naming the file and the problem', () => {
  assert.throws(() => CLIPTokenizer.fromFiles('/nonexistent/vocab.json', '/nonexistent/merges.txt'), (e: Error) =>
    e instanceof CLIPTokenizerError && /vocab\.json not found at \/nonexistent\/vocab\.json/.test(e.message));
  withFiles({ 'vocab.json': '{"a": 1', 'merges.txt': '' }, (d) =>
    assert.throws(() => CLIPTokenizer.fromDir(d), /vocab\.json is not valid JSON/));
  withFiles({ 'vocab.json': JSON.stringify(VOCAB), 'merges.txt': '#version: 0.2\nl o\nbad line here\n' }, (d) =>
    assert.throws(() => CLIPTokenizer.fromDir(d), /merges\.txt:3: expected two space-separated symbols, got "bad line here"/));
  withFiles({ 'vocab.json': JSON.stringify({ a: 1 }), 'merges.txt': '' }, (d) =>
    assert.throws(() => CLIPTokenizer.fromDir(d), /the bos token '<\|startoftext\|>' is not in the vocabulary/));
  withFiles({ 'vocab.json': JSON.stringify({ a: 'x' }), 'merges.txt': '' }, (d) =>
    assert.throws(() => CLIPTokenizer.fromDir(d), /token "a" has id "x"/));
  assert.throws(() => handmade().call('low', { maxLength: 1 }), /maxLength must be an integer >= 2/);
});
