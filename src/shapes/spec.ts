// The Shapes-64 domain as typed constants (docs/shapes-64.md): palettes, shapes, sizes, the 3x3 grid,
// a ShapeSpec with its jitter, and a small seeded PRNG (mulberry32) so data is reproducible without libtorch.

export const IMAGE_SIZE = 64;

export type Rgb = readonly [number, number, number];

export const BACKGROUNDS = ['white', 'black', 'gray'] as const;
export type Background = (typeof BACKGROUNDS)[number];
export const BACKGROUND_RGB: Readonly<Record<Background, Rgb>> = {
  white: [255, 255, 255],
  black: [0, 0, 0],
  gray: [128, 128, 128],
};

export const OBJECT_COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] as const;
export type ObjectColor = (typeof OBJECT_COLORS)[number];
export const OBJECT_RGB: Readonly<Record<ObjectColor, Rgb>> = {
  red: [220, 40, 40],
  green: [40, 170, 70],
  blue: [40, 90, 220],
  yellow: [240, 200, 40],
  purple: [150, 60, 200],
  orange: [245, 130, 30],
};

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export type Shape = (typeof SHAPES)[number];

export const SIZES = ['small', 'large'] as const;
export type Size = (typeof SIZES)[number];
/** Nominal side of the bounding box in px; the drawn side is this +- SIDE_JITTER. */
export const SIZE_SIDE: Readonly<Record<Size, number>> = { small: 16, large: 28 };
export const SIDE_JITTER = 2;
/** The reading rule's threshold between small and large (px of bounding-box side). */
export const SIZE_THRESHOLD = 22;

export const POSITIONS = [
  'top-left', 'top', 'top-right',
  'left', 'center', 'right',
  'bottom-left', 'bottom', 'bottom-right',
] as const;
export type Position = (typeof POSITIONS)[number];
/** Grid centre of each cell (bounding-box centre in px, continuous coordinates) and its caption phrase. */
export const POSITION_INFO: Readonly<Record<Position, { x: number; y: number; phrase: string }>> = {
  'top-left': { x: 16, y: 16, phrase: 'in the top left' },
  top: { x: 32, y: 16, phrase: 'at the top' },
  'top-right': { x: 48, y: 16, phrase: 'in the top right' },
  left: { x: 16, y: 32, phrase: 'on the left' },
  center: { x: 32, y: 32, phrase: 'in the center' },
  right: { x: 48, y: 32, phrase: 'on the right' },
  'bottom-left': { x: 16, y: 48, phrase: 'in the bottom left' },
  bottom: { x: 32, y: 48, phrase: 'at the bottom' },
  'bottom-right': { x: 48, y: 48, phrase: 'in the bottom right' },
};
export const POSITION_JITTER = 3;

/** The five attributes a caption can name, in caption word order except position/background. */
export const ATTRIBUTES = ['size', 'color', 'shape', 'position', 'background'] as const;
export type AttributeName = (typeof ATTRIBUTES)[number];

/** The named attributes of an image or a caption. */
export interface ShapeAttributes {
  shape: Shape;
  color: ObjectColor;
  size: Size;
  position: Position;
  background: Background;
}

/**
 * One image of the domain: its attributes plus the drawn geometry. `side` is the bounding-box side in
 * px, (`cx`, `cy`) the bounding-box centre in continuous pixel coordinates (pixel (i, j) covers
 * [i, i+1) x [j, j+1)), so the grid centre 32 is the boundary between pixels 31 and 32.
 */
export interface ShapeSpec extends ShapeAttributes {
  side: number;
  cx: number;
  cy: number;
}

/** A uniform [0, 1) generator. */
export type Rng = () => number;

/** mulberry32: a tiny 32-bit seeded PRNG, good enough for synthetic data (not cryptographic). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform element of `items`. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

/** Uniform in [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** A spec with the given attributes at its nominal size and grid centre (no jitter). */
export function nominalSpec(attrs: ShapeAttributes): ShapeSpec {
  const { x, y } = POSITION_INFO[attrs.position];
  return { ...attrs, side: SIZE_SIDE[attrs.size], cx: x, cy: y };
}

/** Draws every attribute uniformly, then the side (+-2 px) and centre (+-3 px each axis) uniformly. */
export function randomSpec(rng: Rng): ShapeSpec {
  const shape = pick(rng, SHAPES);
  const color = pick(rng, OBJECT_COLORS);
  const size = pick(rng, SIZES);
  const position = pick(rng, POSITIONS);
  const background = pick(rng, BACKGROUNDS);
  const { x, y } = POSITION_INFO[position];
  return {
    shape, color, size, position, background,
    side: SIZE_SIDE[size] + uniform(rng, -SIDE_JITTER, SIDE_JITTER),
    cx: x + uniform(rng, -POSITION_JITTER, POSITION_JITTER),
    cy: y + uniform(rng, -POSITION_JITTER, POSITION_JITTER),
  };
}
