// The Shapes-64 tokenizer: a tiny byte-level BPE vocabulary in CLIP's vocab.json + merges.txt format, so
// CLIPTokenizer loads it unchanged. Every domain word is one whole-word token; any other text still
// tokenizes character by character through the 512 byte-level tokens (with and without '</w>').
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BACKGROUNDS, OBJECT_COLORS, POSITION_INFO, POSITIONS, SHAPES, SIZES } from './spec.js';

export const SHAPES_BOS_TOKEN = '<|startoftext|>';
export const SHAPES_EOS_TOKEN = '<|endoftext|>';
export const SHAPES_MODEL_MAX_LENGTH = 77;

export interface ShapesVocab {
  /** token -> id, ids contiguous 0..N-1. */
  vocab: Record<string, number>;
  /** BPE merges, lowest rank (applied first) first. */
  merges: [string, string][];
}

/**
 * CLIP's bytes_to_unicode as an ordered list, in the order CLIP's vocabulary lists it: the printable
 * bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') first, then the other bytes mapped to 256 + n in byte order.
 */
function clipByteChars(): string[] {
  const bs: number[] = [];
  const add = (a: number, b: number) => { for (let c = a; c <= b; c++) bs.push(c); };
  add(0x21, 0x7e);
  add(0xa1, 0xac);
  add(0xae, 0xff);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return cs.map((c) => String.fromCodePoint(c));
}

/**
 * The domain's words, deduplicated, in a fixed order: articles, sizes, colors, shapes, "shape", the words
 * of the position phrases, "on", backgrounds, "background", and the spellings parseCaption also accepts.
 */
export function shapesDomainWords(): string[] {
  const words = [
    'a', 'an',
    ...SIZES,
    ...OBJECT_COLORS,
    ...SHAPES, 'shape',
    ...POSITIONS.flatMap((p) => POSITION_INFO[p].phrase.split(' ')),
    'on',
    ...BACKGROUNDS, 'background',
    'centre', 'grey',
  ];
  return [...new Set(words)];
}

/** The initial BPE symbols of a lower-case ASCII word: its characters, the last one with '</w>'. */
function symbols(word: string): string[] {
  const chars = [...word];
  return [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
}

/** CLIP's BPE of one word's symbols (same rule as CLIPTokenizer.bpe), used to check the merges. */
function runBpe(word: string, ranks: Map<string, number>): string[] {
  let parts = symbols(word);
  while (parts.length > 1) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i < parts.length - 1; i++) {
      const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) break;
    const [first, second] = [parts[best]!, parts[best + 1]!];
    const merged: string[] = [];
    for (let i = 0; i < parts.length;) {
      if (i < parts.length - 1 && parts[i] === first && parts[i + 1] === second) {
        merged.push(first + second);
        i += 2;
      } else {
        merged.push(parts[i]!);
        i += 1;
      }
    }
    parts = merged;
  }
  return parts;
}

/**
 * The Shapes-64 BPE vocabulary, deterministic. Ids 0..255: CLIP's byte-level characters; 256..511 the same
 * with '</w>'; then one token per merge (the intermediate prefixes and each whole domain word with '</w>');
 * then <|startoftext|> and <|endoftext|>.
 *
 * Merges are each word's left-to-right chain ("c i", "ci r", ..., "circl e</w>"). Ranking: every merge
 * whose left side is already a multi-character prefix comes first (these can only fire inside the word
 * that built the prefix, so once a word starts merging it runs to the end undisturbed), then the
 * character-character merges that start a word, topologically ordered so that each word's starting pair
 * outranks every other starting pair found inside it ("b o" before "t o", or "bottom" would split).
 * The result is checked: every domain word must come out of CLIP's BPE as its single whole-word token.
 */
export function buildShapesVocab(): ShapesVocab {
  const words = shapesDomainWords();
  for (const w of words) {
    if (!/^[a-z]+$/.test(w)) throw new Error(`buildShapesVocab: domain word ${JSON.stringify(w)} is not lower-case a-z`);
  }

  // each word's chain; the first merge of a word is char-char, the rest have a multi-char left side
  const starts: string[] = []; // 'x y' of the first merge of each multi-letter word, deduplicated, first-seen order
  const startOf = new Map<string, string>(); // word -> its first merge key
  const rest: [string, string][] = []; // the later chain merges, deduplicated, first-seen order
  const seen = new Set<string>();
  for (const w of words) {
    const syms = symbols(w);
    if (syms.length < 2) continue; // "a" is the byte-level token "a</w>"
    let prefix = syms[0]!;
    for (let i = 1; i < syms.length; i++) {
      const key = `${prefix} ${syms[i]}`;
      if (i === 1) {
        startOf.set(w, key);
        if (!starts.includes(key)) starts.push(key);
      } else if (!seen.has(key)) {
        seen.add(key);
        rest.push([prefix, syms[i]!]);
      }
      prefix += syms[i];
    }
  }

  // order the starting merges: start(w) before every other starting pair that occurs inside w
  const after = new Map<string, Set<string>>(starts.map((s) => [s, new Set<string>()]));
  const indegree = new Map<string, number>(starts.map((s) => [s, 0]));
  for (const [w, start] of startOf) {
    const syms = symbols(w);
    for (let i = 0; i < syms.length - 1; i++) {
      const pair = `${syms[i]} ${syms[i + 1]}`;
      if (pair !== start && after.has(pair) && !after.get(start)!.has(pair)) {
        after.get(start)!.add(pair);
        indegree.set(pair, indegree.get(pair)! + 1);
      }
    }
  }
  const orderedStarts: string[] = [];
  const ready = starts.filter((s) => indegree.get(s) === 0);
  while (ready.length > 0) {
    // first-seen order among the ready ones keeps the result deterministic
    ready.sort((a, b) => starts.indexOf(a) - starts.indexOf(b));
    const s = ready.shift()!;
    orderedStarts.push(s);
    for (const t of after.get(s)!) {
      indegree.set(t, indegree.get(t)! - 1);
      if (indegree.get(t) === 0) ready.push(t);
    }
  }
  if (orderedStarts.length !== starts.length) {
    throw new Error('buildShapesVocab: the domain words\' starting merges conflict (cycle); no merge order builds every word');
  }

  const merges: [string, string][] = [
    ...rest,
    ...orderedStarts.map((k) => k.split(' ') as [string, string]),
  ];

  const tokens: string[] = clipByteChars();
  tokens.push(...tokens.map((t) => `${t}</w>`));
  const inVocab = new Set(tokens);
  for (const [a, b] of merges) {
    const t = a + b;
    if (!inVocab.has(t)) {
      inVocab.add(t);
      tokens.push(t);
    }
  }
  tokens.push(SHAPES_BOS_TOKEN, SHAPES_EOS_TOKEN);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => { vocab[t] = i; });

  const ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
  for (const w of words) {
    const out = runBpe(w, ranks);
    if (out.length !== 1 || out[0] !== `${w}</w>`) {
      throw new Error(`buildShapesVocab: BPE splits domain word '${w}' into ${JSON.stringify(out)}`);
    }
  }
  return { vocab, merges };
}

/** The tokenizer_config.json written next to the vocabulary (CLIP's special tokens and length). */
export function shapesTokenizerConfig(): Record<string, unknown> {
  return {
    tokenizer_class: 'CLIPTokenizer',
    model_max_length: SHAPES_MODEL_MAX_LENGTH,
    bos_token: SHAPES_BOS_TOKEN,
    eos_token: SHAPES_EOS_TOKEN,
    pad_token: SHAPES_EOS_TOKEN,
    unk_token: SHAPES_EOS_TOKEN,
    do_lower_case: true,
    add_prefix_space: false,
    errors: 'replace',
  };
}

/** Writes `text` to `file` through a temporary name in the same folder, then renames it into place. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(tmp, text, 'utf8');
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes vocab.json, merges.txt ('#version: 0.2' header) and tokenizer_config.json into `dir` (created
 * if missing), each atomically. Returns the paths written and the vocabulary size.
 */
export function writeShapesTokenizer(dir: string): { vocabPath: string; mergesPath: string; configPath: string; vocabSize: number } {
  const { vocab, merges } = buildShapesVocab();
  mkdirSync(dir, { recursive: true });
  const vocabPath = path.join(dir, 'vocab.json');
  const mergesPath = path.join(dir, 'merges.txt');
  const configPath = path.join(dir, 'tokenizer_config.json');
  writeAtomic(vocabPath, `${JSON.stringify(vocab)}\n`);
  writeAtomic(mergesPath, `#version: 0.2\n${merges.map(([a, b]) => `${a} ${b}`).join('\n')}\n`);
  writeAtomic(configPath, `${JSON.stringify(shapesTokenizerConfig(), null, 2)}\n`);
  return { vocabPath, mergesPath, configPath, vocabSize: Object.keys(vocab).length };
}
