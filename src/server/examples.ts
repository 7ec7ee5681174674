// Example inputs for the page: Shapes-64 pictures (the embedded model's domain), with a target text
// that makes a good edit of each.
import sharp from 'sharp';
import { captionOf, nominalSpec, renderShape, type ShapeAttributes } from '../shapes/index.js';

interface ExampleSpec {
  name: string;
  attrs: ShapeAttributes;
  suggestion: string;
}

const EXAMPLES: ExampleSpec[] = [
  { name: 'red-circle', attrs: { shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' }, suggestion: 'a red square' },
  { name: 'blue-square', attrs: { shape: 'square', color: 'blue', size: 'small', position: 'center', background: 'black' }, suggestion: 'a large blue square' },
  { name: 'green-triangle', attrs: { shape: 'triangle', color: 'green', size: 'large', position: 'top-right', background: 'gray' }, suggestion: 'a yellow triangle' },
  { name: 'purple-circle', attrs: { shape: 'circle', color: 'purple', size: 'small', position: 'bottom-left', background: 'white' }, suggestion: 'a purple circle on a black background' },
];

export interface ExampleImage {
  name: string;
  caption: string;
  suggestion: string;
  png: Buffer;
}

export async function renderExamples(): Promise<Map<string, ExampleImage>> {
  const out = new Map<string, ExampleImage>();
  for (const e of EXAMPLES) {
    const img = renderShape(nominalSpec(e.attrs));
    const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
    out.set(e.name, { name: e.name, caption: captionOf(e.attrs), suggestion: e.suggestion, png });
  }
  return out;
}
