// The CLIP byte-level BPE tokenizer of Stable Diffusion v1 (vocab.json + merges.txt); follows OpenAI's
// CLIP simple_tokenizer.py (its ftfy repair step aside) and transformers' CLIPTokenizer for SD v1's padding.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tensor, type Device, type Tensor } from '../../engine/index.js';

/** A vocabulary or merges file that cannot be used, or bad tokenizer options (says which and why). */
export class CLIPTokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CLIPTokenizerError';
  }
}

export interface CLIPTokenizerOptions {
  bosToken?: string; // '<|startoftext|>' (49406 in SD v1)
  eosToken?: string; // '<|endoftext|>' (49407)
  /** SD v1 pads with the end token; SD 2 checkpoints say '!' in tokenizer_config.json. */
  padToken?: string;
  /** Stands for BPE pieces missing from the vocabulary (never happens with a complete byte-level vocab). */
  unkToken?: string;
  /** The text encoder's context length: 77. */
  modelMaxLength?: number;
}

export interface CallOptions {
  /** Pad/truncate to this many tokens (default modelMaxLength, 77). */
  maxLength?: number;
  /** 'max_length' (SD's rule, default): every row padded to maxLength; 'longest': to the longest row; 'none'. */
  padding?: 'max_length' | 'longest' | 'none';
  /** Cut rows longer than maxLength, keeping a final end token (default true). */
  truncation?: boolean;
  /** Called once per truncated text with a message saying how many tokens were lost. */
  onWarning?: (message: string) => void;
}

export interface Encoding {
  inputIds: number[][]; // [B, maxLength] with bos ... eos pad ...
  /** 1 for real tokens (bos and eos included), 0 for padding. */
  attentionMask: number[][];
  /** How many tokens each text lost to truncation (0 when it fitted). */
  truncated: number[];
  /** What each text lost, decoded ('' when nothing). */
  truncatedText: string[];
}

/** GPT-2's reversible map from the 256 byte values to printable characters (simple_tokenizer's bytes_to_unicode). */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  const add = (a: string, b: string) => { for (let c = a.codePointAt(0)!; c <= b.codePointAt(0)!; c++) printable.push(c); };
  add('!', '~');
  add('¡', '¬');
  add('®', 'ÿ');
  const table = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + n++);
  return table;
}
const BYTE_ENCODER = bytesToUnicode();
const BYTE_DECODER = new Map(BYTE_ENCODER.map((ch, b) => [ch, b]));

/** Unicode White_Space, which the Python `regex` module's \s matches (JavaScript's \s differs slightly). */
const WS = '\\p{White_Space}';
/** simple_tokenizer's pattern: special-token literals, contractions, letter runs, single digits, other-symbol runs. */
const PRE_TOKENIZE = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${WS}\\p{L}\\p{N}]+`, 'giu');
const WS_RUN = new RegExp(`${WS}+`, 'gu');
const WS_EDGES = new RegExp(`^${WS}+|${WS}+$`, 'gu');

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '©', reg: '®', trade: '™', hellip: '…',
  mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«', raquo: '»', deg: '°',
  times: '×', divide: '÷', middot: '·', euro: '€', pound: '£', yen: '¥', cent: '¢', sect: '§', para: '¶',
};
/** Python's html.unescape for numeric references and the common named ones. */
function htmlUnescape(s: string): string {
  return s.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z]+);?/g, (m, body: string) => {
    if (body.startsWith('#')) {
      const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (!(cp > 0 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) return '\ufffd';
      return String.fromCodePoint(cp);
    }
    const named = NAMED_ENTITIES[body];
    // only amp, lt, gt, quot and nbsp may lack the semicolon (HTML5's legacy list, as Python)
    if (named === undefined || (!m.endsWith(';') && !['amp', 'lt', 'gt', 'quot', 'nbsp'].includes(body))) return m;
    return named;
  });
}

/** basic_clean (html unescape twice, strip) then whitespace_clean (runs to one space, strip), lower-cased. */
export function cleanText(text: string): string {
  const unescaped = htmlUnescape(htmlUnescape(text));
  return unescaped.replace(WS_RUN, ' ').replace(WS_EDGES, '').toLowerCase();
}

const CACHE_LIMIT = 50_000;

export class CLIPTokenizer {
  readonly bosToken: string;
  readonly eosToken: string;
  readonly padToken: string;
  readonly unkToken: string;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly modelMaxLength: number;
  private readonly decoder: Map<number, string>;
  private readonly ranks: Map<string, number>; // 'first second' -> merge priority
  private readonly cache = new Map<string, string[]>();

  constructor(readonly vocab: Map<string, number>, merges: [string, string][], opts: CLIPTokenizerOptions = {}) {
    this.ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    this.decoder = new Map([...vocab].map(([t, id]) => [id, t]));
    this.bosToken = opts.bosToken ?? '<|startoftext|>';
    this.eosToken = opts.eosToken ?? '<|endoftext|>';
    this.padToken = opts.padToken ?? this.eosToken;
    this.unkToken = opts.unkToken ?? this.eosToken;
    const id = (tok: string, what: string) => {
      const v = vocab.get(tok);
      if (v === undefined) throw new CLIPTokenizerError(`CLIPTokenizer: the ${what} token '${tok}' is not in the vocabulary`);
      return v;
    };
    this.bosTokenId = id(this.bosToken, 'bos');
    this.eosTokenId = id(this.eosToken, 'eos');
    this.padTokenId = id(this.padToken, 'pad');
    this.unkTokenId = id(this.unkToken, 'unk');
    this.modelMaxLength = opts.modelMaxLength ?? 77;
    if (!Number.isInteger(this.modelMaxLength) || this.modelMaxLength < 2) {
      throw new CLIPTokenizerError(`CLIPTokenizer: modelMaxLength must be an integer >= 2, got ${opts.modelMaxLength}`);
    }
    // the special tokens are their own BPE (simple_tokenizer seeds its cache with them)
    for (const t of [this.bosToken, this.eosToken]) this.cache.set(t, [t]);
  }

  /** From a checkpoint's tokenizer/vocab.json and tokenizer/merges.txt. */
  static fromFiles(vocabPath: string, mergesPath: string, opts: CLIPTokenizerOptions = {}): CLIPTokenizer {
    return new CLIPTokenizer(readVocab(vocabPath), readMerges(mergesPath), opts);
  }

  /** From a tokenizer folder (vocab.json, merges.txt and, when present, tokenizer_config.json's special tokens). */
  static fromDir(dir: string, opts: CLIPTokenizerOptions = {}): CLIPTokenizer {
    const fromConfig = readTokenizerConfig(path.join(dir, 'tokenizer_config.json'));
    return CLIPTokenizer.fromFiles(path.join(dir, 'vocab.json'), path.join(dir, 'merges.txt'), { ...fromConfig, ...opts });
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  /** The BPE pieces of one pre-token (already byte-mapped), the last ending in '</w>'. */
  bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit !== undefined) return hit;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      // the adjacent pair merged earliest in training
      let best = -1, bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      const [first, second] = [word[best]!, word[best + 1]!];
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (word[i] === first && word[i + 1] === second && i < word.length - 1) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(token, word);
    return word;
  }

  /** Token ids of a text, without bos/eos. */
  tokenize(text: string): number[] {
    const ids: number[] = [];
    const utf8 = new TextEncoder();
    for (const m of cleanText(text).matchAll(PRE_TOKENIZE)) {
      const mapped = Array.from(utf8.encode(m[0]), (b) => BYTE_ENCODER[b]!).join('');
      for (const piece of this.bpe(mapped)) ids.push(this.vocab.get(piece) ?? this.unkTokenId);
    }
    return ids;
  }

  /** bos + tokens + eos, neither padded nor truncated (what tokenizer-golden.json lists). */
  encode(text: string): number[] {
    return [this.bosTokenId, ...this.tokenize(text), this.eosTokenId];
  }

  /** The text of some ids (special tokens kept unless skipped), as simple_tokenizer's decode. */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    const special = new Set([this.bosTokenId, this.eosTokenId, this.padTokenId]);
    const text = ids
      .filter((i) => !(opts.skipSpecialTokens && special.has(i)))
      .map((i) => {
        const t = this.decoder.get(i);
        if (t === undefined) throw new CLIPTokenizerError(`CLIPTokenizer.decode: id ${i} is not in the vocabulary (size ${this.vocab.size})`);
        return t;
      })
      .join('');
    const bytes = Uint8Array.from([...text].map((ch) => BYTE_DECODER.get(ch) ?? 0x3f));
    return new TextDecoder('utf-8').decode(bytes).replaceAll('</w>', ' ').trim();
  }

  /**
   * SD v1's tokenizer call: each text as bos ... eos, truncated to maxLength keeping a final eos
   * (reporting what was lost) and padded with the pad token to maxLength.
   */
  call(texts: string | string[], opts: CallOptions = {}): Encoding {
    const list = typeof texts === 'string' ? [texts] : texts;
    const maxLength = opts.maxLength ?? this.modelMaxLength;
    if (!Number.isInteger(maxLength) || maxLength < 2) throw new CLIPTokenizerError(`CLIPTokenizer: maxLength must be an integer >= 2, got ${maxLength}`);
    const out: Encoding = { inputIds: [], attentionMask: [], truncated: [], truncatedText: [] };
    list.forEach((text, n) => {
      if (typeof text !== 'string') throw new CLIPTokenizerError(`CLIPTokenizer: text ${n} is not a string (${typeof text})`);
      let ids = this.encode(text);
      let lost = 0, lostText = '';
      if ((opts.truncation ?? true) && ids.length > maxLength) {
        lost = ids.length - maxLength;
        lostText = this.decode(ids.slice(maxLength - 1, -1));
        ids = [...ids.slice(0, maxLength - 1), this.eosTokenId];
        opts.onWarning?.(`prompt${list.length > 1 ? ` ${n}` : ''} is ${maxLength + lost} tokens long but the text encoder takes ${maxLength}: `
          + `${lost} token${lost === 1 ? ' was' : 's were'} truncated ("${lostText.length > 80 ? `${lostText.slice(0, 77)}...` : lostText}")`);
      }
      out.inputIds.push(ids);
      out.truncated.push(lost);
      out.truncatedText.push(lostText);
    });
    const padding = opts.padding ?? 'max_length';
    const target = padding === 'max_length' ? maxLength : padding === 'longest' ? Math.max(...out.inputIds.map((r) => r.length)) : 0;
    for (const row of out.inputIds) {
      out.attentionMask.push([...row.map(() => 1), ...new Array<number>(Math.max(0, target - row.length)).fill(0)]);
      while (row.length < target) row.push(this.padTokenId);
    }
    return out;
  }

  /** The int64 input ids tensor [B, maxLength] a text encoder takes (padded to max_length). */
  inputIdsTensor(texts: string | string[], opts: Omit<CallOptions, 'padding'> & { device?: Device } = {}): Tensor {
    const { inputIds } = this.call(texts, { ...opts, padding: 'max_length' });
    return tensor(inputIds, { dtype: 'int64', device: opts.device });
  }
}

function readText(file: string, what: string): string {
  if (!existsSync(file)) throw new CLIPTokenizerError(`CLIPTokenizer: ${what} not found at ${file}`);
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new CLIPTokenizerError(`CLIPTokenizer: cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/** vocab.json: {token: id}. */
export function readVocab(file: string): Map<string, number> {
  let json: unknown;
  try {
    json = JSON.parse(readText(file, 'vocab.json'));
  } catch (e) {
    if (e instanceof CLIPTokenizerError) throw e;
    throw new CLIPTokenizerError(`CLIPTokenizer: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CLIPTokenizerError(`CLIPTokenizer: ${file} must hold a JSON object {token: id}`);
  const vocab = new Map<string, number>();
  for (const [tok, id] of Object.entries(json)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new CLIPTokenizerError(`CLIPTokenizer: ${file}: token ${JSON.stringify(tok)} has id ${JSON.stringify(id)}, not a non-negative integer`);
    vocab.set(tok, id as number);
  }
  return vocab;
}

/** merges.txt: an optional '#version' line, then one 'first second' pair per line, earliest merge first. */
export function readMerges(file: string): [string, string][] {
  const lines = readText(file, 'merges.txt').split(/\r?\n/);
  const merges: [string, string][] = [];
  lines.forEach((line, i) => {
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new CLIPTokenizerError(`CLIPTokenizer: ${file}:${i + 1}: expected two space-separated symbols, got ${JSON.stringify(line)}`);
    }
    merges.push([parts[0]!, parts[1]!]);
  });
  return merges;
}

/** Special tokens and model_max_length from tokenizer_config.json (strings or {content} objects), if the file exists. */
function readTokenizerConfig(file: string): CLIPTokenizerOptions {
  if (!existsSync(file)) return {};
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CLIPTokenizerError(`CLIPTokenizer: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const tok = (k: string): string | undefined => {
    const v = json[k];
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
    return undefined;
  };
  const max = json.model_max_length;
  // transformers writes a huge sentinel when no length is set
  const modelMaxLength = typeof max === 'number' && Number.isInteger(max) && max >= 2 && max < 1e6 ? max : undefined;
  const opts: CLIPTokenizerOptions = { bosToken: tok('bos_token'), eosToken: tok('eos_token'), padToken: tok('pad_token'), unkToken: tok('unk_token'), modelMaxLength };
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as CLIPTokenizerOptions;
}
