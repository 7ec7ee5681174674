// The Shapes-64 tokenizer: written in CLIP's file format and loaded by CLIPTokenizer.fromDir, every domain
// word is one token, captions are one token per word, other text still tokenizes byte by byte.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLIPTokenizer } from '../../src/models/clip/tokenizer.js';
import { fullCaption, parseCaption, partialCaption } from '../../src/shapes/captions.js';
import { mulberry32, randomSpec } from '../../src/shapes/spec.js';
import { buildShapesVocab, shapesDomainWords, writeShapesTokenizer } from '../../src/shapes/tokenizer.js';

describe('shapes tokenizer', () => {
  let dir: string;
  let tok: CLIPTokenizer;
  let written: ReturnType<typeof writeShapesTokenizer>;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-shapes-tok-'));
    written = writeShapesTokenizer(path.join(dir, 'tokenizer'));
    tok = CLIPTokenizer.fromDir(path.join(dir, 'tokenizer'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('files: CLIP format, no temporaries left, config as CLIP', () => {
    assert.deepEqual(readdirSync(path.join(dir, 'tokenizer')).sort(), ['merges.txt', 'tokenizer_config.json', 'vocab.json']);
    const merges = readFileSync(written.mergesPath, 'utf8').split('\n');
    assert.equal(merges[0], '#version: 0.2');
    assert.ok(merges.slice(1).filter(Boolean).every((l) => l.split(' ').length === 2));
    const config = JSON.parse(readFileSync(written.configPath, 'utf8')) as Record<string, unknown>;
    assert.equal(config.model_max_length, 77);
    assert.equal(config.bos_token, '<|startoftext|>');
    assert.equal(config.eos_token, '<|endoftext|>');
    assert.equal(config.pad_token, '<|endoftext|>');
    assert.equal(config.unk_token, '<|endoftext|>');
    assert.equal(config.do_lower_case, true);
    assert.equal(tok.modelMaxLength, 77);
    assert.equal(tok.vocabSize, written.vocabSize);
    // rewriting in place works (rename over existing files)
    writeShapesTokenizer(path.join(dir, 'tokenizer'));
    assert.equal(readdirSync(path.join(dir, 'tokenizer')).length, 3);
  });

  test('vocab: deterministic, ids contiguous 0..N-1, CLIP byte layout, specials last, small', () => {
    const a = buildShapesVocab();
    const b = buildShapesVocab();
    assert.deepEqual(a, b);
    assert.equal(JSON.stringify(a), JSON.stringify(b)); // same key order too
    const ids = Object.values(a.vocab).sort((x, y) => x - y);
    const n = ids.length;
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => i));
    const byId = new Map(Object.entries(a.vocab).map(([t, i]) => [i, t]));
    assert.equal(byId.get(0), '!');
    assert.equal(byId.get(255), String.fromCodePoint(256 + 67)); // CLIP's last byte char ('\xad' -> 'Ń')
    assert.equal(byId.get(256), '!</w>');
    for (let i = 0; i < 256; i++) assert.equal(byId.get(256 + i), `${byId.get(i)}</w>`);
    assert.equal(byId.get(n - 2), '<|startoftext|>');
    assert.equal(byId.get(n - 1), '<|endoftext|>');
    assert.equal(tok.bosTokenId, n - 2);
    assert.equal(tok.eosTokenId, n - 1);
    assert.equal(tok.padTokenId, n - 1);
    assert.ok(n < 700, `vocab size ${n}`);
    // every merge's parts and result are tokens; no merge is listed twice
    const keys = a.merges.map(([x, y]) => `${x} ${y}`);
    assert.equal(new Set(keys).size, keys.length);
    for (const [x, y] of a.merges) {
      for (const t of [x, y, x + y]) assert.ok(t in a.vocab, `${t} missing`);
    }
  });

  test('covers the words parseCaption accepts (centre, grey included)', () => {
    const words = shapesDomainWords();
    for (const w of ['a', 'an', 'small', 'large', 'red', 'green', 'blue', 'yellow', 'purple', 'orange', 'circle', 'square',
      'triangle', 'shape', 'on', 'in', 'at', 'the', 'top', 'bottom', 'left', 'right', 'center', 'background', 'white',
      'black', 'gray', 'centre', 'grey']) {
      assert.ok(words.includes(w), w);
    }
    assert.equal(new Set(words).size, words.length);
    // the alternative spellings are ones parseCaption accepts (phrase words like "in" only parse inside a phrase)
    const parsed = parseCaption('a shape in the centre on a grey background');
    assert.deepEqual(parsed.unknownWords, []);
    assert.deepEqual(parsed.attributes, { position: 'center', background: 'gray' });
  });

  test('every domain word is exactly one token, its own whole-word id', () => {
    const { vocab } = buildShapesVocab();
    for (const w of shapesDomainWords()) {
      assert.deepEqual(tok.tokenize(w), [vocab[`${w}</w>`]], w);
      assert.deepEqual(tok.tokenize(w.toUpperCase()), [vocab[`${w}</w>`]], w.toUpperCase());
      assert.equal(tok.decode(tok.tokenize(w)), w);
    }
  });

  test('captions of random specs: one token per word plus bos/eos, decoding back', () => {
    const rng = mulberry32(1234);
    const { vocab } = buildShapesVocab();
    for (let i = 0; i < 300; i++) {
      const spec = randomSpec(rng);
      for (const caption of [fullCaption(spec), partialCaption(spec, rng)]) {
        const words = caption.split(' ');
        const ids = tok.encode(caption);
        assert.deepEqual(ids, [tok.bosTokenId, ...words.map((w) => vocab[`${w}</w>`]!), tok.eosTokenId], caption);
        assert.equal(tok.decode(ids, { skipSpecialTokens: true }), caption);
      }
    }
  });

  test('case and punctuation as CLIP: lower-cased, punctuation its own token', () => {
    const { vocab } = buildShapesVocab();
    assert.deepEqual(tok.tokenize('A Large RED Circle.'),
      [vocab['a</w>'], vocab['large</w>'], vocab['red</w>'], vocab['circle</w>'], vocab['.</w>']]);
    assert.deepEqual(tok.tokenize('red, blue!'), [vocab['red</w>'], vocab[',</w>'], vocab['blue</w>'], vocab['!</w>']]);
    // a symbol run is one pre-token: '...' is characters then '.</w>'
    assert.deepEqual(tok.tokenize('...'), [vocab['.'], vocab['.'], vocab['.</w>']]);
    assert.equal(tok.decode(tok.tokenize('A Large RED Circle.')), 'a large red circle .');
  });

  test('out-of-domain text tokenizes character by character and round-trips', () => {
    const { vocab } = buildShapesVocab();
    assert.deepEqual(tok.tokenize('zebra'), [vocab.z, vocab.e, vocab.b, vocab.r, vocab['a</w>']]);
    assert.equal(tok.decode(tok.encode('zebra'), { skipSpecialTokens: true }), 'zebra');
    assert.deepEqual(tok.tokenize('a zebra'), [vocab['a</w>'], vocab.z, vocab.e, vocab.b, vocab.r, vocab['a</w>']]);
    // words that contain domain words' pieces still decode exactly and never hit unk
    for (const text of ['redder circles', 'topology', 'greenish bluebottle', 'crème brûlée 42', '日本 😀']) {
      const ids = tok.tokenize(text);
      assert.ok(!ids.includes(tok.unkTokenId), text);
      assert.equal(tok.decode(ids), text.replace(/(\d)/g, ' $1 ').replace(/ +/g, ' ').trim(), text);
    }
  });

  test('padding to 77 uses the eos id', () => {
    const enc = tok.call(['a red circle', 'a small blue triangle in the bottom right on a gray background']);
    for (const [n, row] of enc.inputIds.entries()) {
      assert.equal(row.length, 77);
      const real = enc.attentionMask[n]!.filter((m) => m === 1).length;
      assert.equal(row[0], tok.bosTokenId);
      assert.equal(row[real - 1], tok.eosTokenId);
      assert.ok(row.slice(real).every((id) => id === tok.eosTokenId));
    }
    assert.equal(enc.attentionMask[0]!.filter((m) => m === 1).length, 5);
    assert.equal(enc.attentionMask[1]!.filter((m) => m === 1).length, 14);
  });
});
