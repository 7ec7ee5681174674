// Shapes-64 captions (docs/shapes-64.md): the full form "a {size} {color} {shape} {position} on a
// {background} background", partial forms that keep this order, and a parser that reports words outside the domain.
import {
  ATTRIBUTES, BACKGROUNDS, OBJECT_COLORS, POSITION_INFO, POSITIONS, SHAPES, SIZES,
  type AttributeName, type Rng, type ShapeAttributes,
} from './spec.js';

/** Some of the attributes: what a (partial) caption names. */
export type CaptionAttributes = Partial<ShapeAttributes>;

/** "an" before a vowel sound; in this vocabulary only "orange" needs it. */
export function article(word: string): 'a' | 'an' {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** The caption naming exactly `attrs`, in the domain's word order; an unnamed shape reads "shape". */
export function captionOf(attrs: CaptionAttributes): string {
  const words: string[] = [];
  if (attrs.size) words.push(attrs.size);
  if (attrs.color) words.push(attrs.color);
  words.push(attrs.shape ?? 'shape');
  if (attrs.position) words.push(POSITION_INFO[attrs.position].phrase);
  if (attrs.background) words.push(`on a ${attrs.background} background`);
  return `${article(words[0])} ${words.join(' ')}`;
}

/** "a large red circle on the left on a white background". */
export function fullCaption(spec: ShapeAttributes): string {
  return captionOf(spec);
}

/**
 * A caption naming only some of `spec`'s attributes: `which` when given, otherwise a uniform random
 * non-empty proper subset of the five drawn from `rng`.
 */
export function partialCaption(spec: ShapeAttributes, rng: Rng, which?: readonly AttributeName[]): string {
  let names = which;
  if (!names) {
    // 1..30 as a bit mask over ATTRIBUTES: non-empty, not all five.
    const mask = 1 + Math.floor(rng() * 30);
    names = ATTRIBUTES.filter((_, i) => (mask >> i) & 1);
  }
  const attrs: Record<string, string> = {};
  for (const a of names) attrs[a] = spec[a];
  return captionOf(attrs as CaptionAttributes);
}

export interface ParsedCaption {
  /** The attributes the caption names (the first mention wins when one is named twice). */
  attributes: CaptionAttributes;
  /** Words outside the domain's vocabulary, in order (the CLI warns, and still runs). */
  unknownWords: string[];
  /** Repeated attributes and words out of the domain's order, as readable notes. */
  warnings: string[];
}

type Match = { attr: AttributeName; value: string; length: number } | { attr: null; length: number };

const PHRASES: { words: string[]; attr: AttributeName; value: string }[] = [
  ...POSITIONS.map((p) => ({ words: POSITION_INFO[p].phrase.split(' '), attr: 'position' as const, value: p })),
  ...POSITIONS.filter((p) => p === 'center').map((p) => ({ words: ['in', 'the', 'centre'], attr: 'position' as const, value: p })),
  ...BACKGROUNDS.flatMap((b) => [
    { words: ['on', 'a', b, 'background'], attr: 'background' as const, value: b },
    { words: ['on', 'an', b, 'background'], attr: 'background' as const, value: b },
    { words: [b, 'background'], attr: 'background' as const, value: b },
  ]),
  ...[['on', 'a', 'grey', 'background'], ['grey', 'background']].map((words) => ({ words, attr: 'background' as const, value: 'gray' })),
].sort((a, b) => b.words.length - a.words.length);

const WORDS = new Map<string, { attr: AttributeName; value: string }>([
  ...SIZES.map((v) => [v, { attr: 'size' as const, value: v }] as const),
  ...OBJECT_COLORS.map((v) => [v, { attr: 'color' as const, value: v }] as const),
  ...SHAPES.map((v) => [v, { attr: 'shape' as const, value: v }] as const),
]);
const FILLERS = new Set(['a', 'an', 'shape']);

function matchAt(tokens: string[], i: number): Match | null {
  for (const p of PHRASES) {
    if (p.words.every((w, k) => tokens[i + k] === w)) return { attr: p.attr, value: p.value, length: p.words.length };
  }
  const w = WORDS.get(tokens[i]);
  if (w) return { ...w, length: 1 };
  return FILLERS.has(tokens[i]) ? { attr: null, length: 1 } : null;
}

/**
 * Parses a caption of the domain, full or partial, with "a" or "an"; case and punctuation are ignored.
 * Every word is either part of an attribute, an article, the word "shape", or reported as unknown.
 */
export function parseCaption(text: string): ParsedCaption {
  const tokens = text.toLowerCase().replace(/[^a-z\s-]+/g, ' ').split(/[\s-]+/).filter(Boolean);
  const attributes: Record<string, string> = {};
  const unknownWords: string[] = [];
  const warnings: string[] = [];
  let lastOrder = -1;
  for (let i = 0; i < tokens.length;) {
    const m = matchAt(tokens, i);
    if (!m) {
      unknownWords.push(tokens[i]);
      i++;
      continue;
    }
    if (m.attr) {
      const phrase = tokens.slice(i, i + m.length).join(' ');
      if (m.attr in attributes) {
        warnings.push(`${m.attr} named twice ('${phrase}' ignored, kept '${attributes[m.attr]}')`);
      } else {
        attributes[m.attr] = m.value;
        const order = ATTRIBUTES.indexOf(m.attr);
        if (order < lastOrder) warnings.push(`'${phrase}' is out of the domain's word order`);
        lastOrder = Math.max(lastOrder, order);
      }
    }
    i += m.length;
  }
  return { attributes: attributes as CaptionAttributes, unknownWords, warnings };
}

/** The attribute names a parsed caption names, in ATTRIBUTES order. */
export function namedAttributes(attrs: CaptionAttributes): AttributeName[] {
  return ATTRIBUTES.filter((a) => attrs[a] !== undefined);
}
