// Whether a model, a caption or an image belongs to the Shapes-64 domain, for the warnings the CLI
// gives when the embedded model is asked for something it has never seen (it still runs).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RgbImage } from '../io/image-types.js';
import { parseCaption } from './captions.js';
import { OBJECT_DISTANCE, readAttributes } from './evaluate.js';
import { BACKGROUND_RGB, OBJECT_RGB } from './spec.js';

/** The model_index.json key the exporter writes into a Shapes-64 model folder. */
export const DOMAIN_KEY = '_imagic_domain';
export const SHAPES_DOMAIN = 'shapes-64';

/** True for a local diffusers folder whose model_index.json names the Shapes-64 domain. */
export function isShapesModel(dir: string): boolean {
  const file = path.join(dir, 'model_index.json');
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)[DOMAIN_KEY] === SHAPES_DOMAIN;
  } catch {
    return false;
  }
}

/** Warnings for a caption given to the Shapes-64 model: words outside its vocabulary, odd order. */
export function captionWarnings(text: string): string[] {
  const p = parseCaption(text);
  const out: string[] = [];
  if (p.unknownWords.length > 0) {
    out.push(`"${text}" has words outside the Shapes-64 domain (${[...new Set(p.unknownWords)].join(', ')}): the embedded model only knows captions like "a large red circle on the left on a white background" (sizes, colors, circle/square/triangle, nine positions, white/black/gray backgrounds); running anyway, they act as noise`);
  }
  for (const w of p.warnings) out.push(`"${text}": ${w}`);
  return out;
}

/** Share of pixels that are neither near a domain background nor near a domain object color. */
export function offPaletteShare(image: RgbImage): number {
  const palette = [...Object.values(BACKGROUND_RGB), ...Object.values(OBJECT_RGB)];
  const n = image.width * image.height;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const r = image.data[3 * i]!, g = image.data[3 * i + 1]!, b = image.data[3 * i + 2]!;
    let best = Infinity;
    for (const c of palette) best = Math.min(best, Math.hypot(r - c[0], g - c[1], b - c[2]));
    if (best > OBJECT_DISTANCE) off++;
  }
  return off / n;
}

/**
 * A warning when `image` (at 64x64) does not look like a Shapes-64 image: the evaluator cannot read
 * it, or more than 5% of its pixels are far from every color of the domain (a photo, a gradient).
 */
export function imageDomainWarning(image: RgbImage): string | null {
  const read = readAttributes(image);
  const off = offPaletteShare(image);
  if (read.attributes !== null && off <= 0.05) return null;
  const why = read.attributes === null ? read.reason ?? 'its attributes cannot be read' : `${(100 * off).toFixed(0)}% of its pixels are far from every color of the domain`;
  return `the input does not look like a Shapes-64 image (${why}): the embedded model only knows one solid circle, square or triangle on a white, black or gray background; running anyway, expect a poor edit`;
}
