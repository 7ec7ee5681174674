// The Shapes-64 evaluator (docs/shapes-64.md, "Reading an attribute back"): reads the five attributes
// of any 64x64 RGB image by the spec's rules, and checks an edit against its target caption.
import type { RgbImage } from '../io/image-types.js';
import { namedAttributes, parseCaption, type CaptionAttributes, type ParsedCaption } from './captions.js';
import {
  BACKGROUND_RGB, BACKGROUNDS, OBJECT_COLORS, OBJECT_RGB, POSITION_INFO, POSITIONS, SIZE_THRESHOLD,
  type AttributeName, type Background, type ObjectColor, type Position, type Rgb, type Shape,
  type ShapeAttributes,
} from './spec.js';

/** A pixel is part of the object when it is farther than this (Euclidean RGB) from the background. */
export const OBJECT_DISTANCE = 60;
/** The median object pixel must lie within this distance of some object color, or the read fails. */
export const MAX_COLOR_DISTANCE = 80;
/**
 * Fill-ratio thresholds: above SQUARE_MIN a square (ideal 1.0), from TRIANGLE_MAX to SQUARE_MIN a
 * circle (ideal pi/4 = 0.785), below TRIANGLE_MAX a triangle (ideal 0.5); each halfway-ish between ideals.
 */
export const SQUARE_MIN_FILL = 0.89;
export const TRIANGLE_MAX_FILL = 0.64;
/** An unnamed position is preserved when the bounding-box centre moved by at most this (Euclidean px). */
export const MAX_CENTRE_SHIFT = 4;

/** What was measured, whether or not the read succeeded. */
export interface Measurements {
  /** Per-channel median of the border pixels, and its distance to the nearest background color. */
  borderMedian: Rgb;
  backgroundDistance: number;
  objectPixels: number;
  /** Inclusive pixel bounds of the object, or null when there are no object pixels. */
  bbox: { x0: number; y0: number; x1: number; y1: number } | null;
  /** Bounding-box centre in continuous pixel coordinates ((x0 + x1 + 1) / 2). */
  centre: { x: number; y: number } | null;
  /** Bounding-box side: the larger of its width and height, px. */
  side: number;
  fillRatio: number;
  /** Per-channel median of the object pixels, and its distance to the nearest object color. */
  objectMedian: Rgb | null;
  colorDistance: number;
}

export interface ReadResult {
  /** The five attributes, or null when the image fails every attribute (see reason). */
  attributes: ShapeAttributes | null;
  reason?: string;
  measured: Measurements;
}

const dist = (a: Rgb, b: Rgb) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

function nearest<K extends string>(keys: readonly K[], table: Readonly<Record<K, Rgb>>, c: Rgb): [K, number] {
  let best = keys[0], bestD = Infinity;
  for (const k of keys) {
    const d = dist(table[k], c);
    if (d < bestD) { best = k; bestD = d; }
  }
  return [best, bestD];
}

/** Per-channel median (lower median for an even count) of the listed pixel offsets. */
function medianRgb(data: Uint8Array, offsets: number[]): Rgb {
  const out = [0, 0, 0];
  const ch = new Uint8Array(offsets.length);
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < offsets.length; i++) ch[i] = data[offsets[i] + k];
    ch.sort();
    out[k] = ch[(offsets.length - 1) >> 1];
  }
  return out as unknown as Rgb;
}

function shapeOf(fill: number): Shape {
  return fill > SQUARE_MIN_FILL ? 'square' : fill >= TRIANGLE_MAX_FILL ? 'circle' : 'triangle';
}

function positionOf(x: number, y: number): Position {
  let best: Position = POSITIONS[0], bestD = Infinity;
  for (const p of POSITIONS) {
    const d = Math.hypot(POSITION_INFO[p].x - x, POSITION_INFO[p].y - y);
    if (d < bestD) { best = p; bestD = d; }
  }
  return best;
}

/** Reads the attributes of `image` (any size; the domain's is 64x64) by the spec's reading rules. */
export function readAttributes(image: RgbImage): ReadResult {
  const { width: w, height: h, data } = image;
  const border: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) if (y === 0 || y === h - 1 || x === 0 || x === w - 1) border.push((y * w + x) * 3);
  }
  const borderMedian = medianRgb(data, border);
  const [background, backgroundDistance] = nearest(BACKGROUNDS, BACKGROUND_RGB, borderMedian);
  const bg = BACKGROUND_RGB[background];

  const object: number[] = [];
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      if (Math.hypot(data[o] - bg[0], data[o + 1] - bg[1], data[o + 2] - bg[2]) <= OBJECT_DISTANCE) continue;
      object.push(o);
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  const measured: Measurements = {
    borderMedian, backgroundDistance, objectPixels: object.length,
    bbox: null, centre: null, side: 0, fillRatio: 0, objectMedian: null, colorDistance: Infinity,
  };
  if (object.length === 0) return { attributes: null, reason: 'no object pixels', measured };

  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  measured.bbox = { x0, y0, x1, y1 };
  measured.centre = { x: (x0 + x1 + 1) / 2, y: (y0 + y1 + 1) / 2 };
  measured.side = Math.max(bw, bh);
  measured.fillRatio = object.length / (bw * bh);
  const objectMedian = medianRgb(data, object);
  const [color, colorDistance] = nearest(OBJECT_COLORS, OBJECT_RGB, objectMedian);
  measured.objectMedian = objectMedian;
  measured.colorDistance = colorDistance;
  if (colorDistance > MAX_COLOR_DISTANCE) {
    return {
      attributes: null, measured,
      reason: `median object pixel (${objectMedian.join(',')}) is ${colorDistance.toFixed(1)} from the nearest object color (${color}), over ${MAX_COLOR_DISTANCE}`,
    };
  }
  return {
    attributes: {
      shape: shapeOf(measured.fillRatio),
      color: color as ObjectColor,
      size: measured.side < SIZE_THRESHOLD ? 'small' : 'large',
      position: positionOf(measured.centre.x, measured.centre.y),
      background: background as Background,
    },
    measured,
  };
}

export interface EditCheck {
  /** Every attribute the target caption names holds in the output. */
  success: boolean;
  /** Every attribute it does not name keeps its input value (position: centre moved <= 4 px). */
  preserved: boolean;
  /** Named attributes that do not hold in the output. */
  failed: AttributeName[];
  /** Unnamed attributes that changed. */
  changed: AttributeName[];
  /** How far the bounding-box centre moved (Euclidean px), or null when either read failed. */
  centreShift: number | null;
  /** Why the check could not be made in full (an unreadable input or output image). */
  reason?: string;
}

/**
 * Checks an edit: `input` and `output` are readAttributes results, `target` the target caption (text
 * or already parsed). An unreadable output fails both; an unreadable input fails preservation only.
 */
export function checkEdit(input: ReadResult, output: ReadResult, target: string | ParsedCaption | CaptionAttributes): EditCheck {
  const named: CaptionAttributes = typeof target === 'string' ? parseCaption(target).attributes
    : 'attributes' in target && typeof target.attributes === 'object' ? target.attributes : target as CaptionAttributes;
  const names = namedAttributes(named);
  const unnamed = (['size', 'color', 'shape', 'position', 'background'] as const).filter((a) => !names.includes(a));
  const out = output.attributes, inp = input.attributes;
  if (!out) {
    return { success: false, preserved: false, failed: names, changed: unnamed, centreShift: null, reason: `output unreadable: ${output.reason}` };
  }
  const failed = names.filter((a) => out[a] !== named[a]);
  if (!inp) {
    return { success: failed.length === 0, preserved: false, failed, changed: unnamed, centreShift: null, reason: `input unreadable: ${input.reason}` };
  }
  const ci = input.measured.centre!, co = output.measured.centre!;
  const centreShift = Math.hypot(co.x - ci.x, co.y - ci.y);
  const changed = unnamed.filter((a) => (a === 'position' ? centreShift > MAX_CENTRE_SHIFT : out[a] !== inp[a]));
  return { success: failed.length === 0, preserved: changed.length === 0, failed, changed, centreShift };
}
