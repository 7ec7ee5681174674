// The Shapes-64 renderer (docs/shapes-64.md): one solid object over a solid background, 64x64 RGB,
// edges anti-aliased by 4x4 supersampling (coverage-weighted blend of object over background).
import type { RgbImage } from '../io/image-types.js';
import { BACKGROUND_RGB, IMAGE_SIZE, OBJECT_RGB, type Shape, type ShapeSpec } from './spec.js';

/** Samples per pixel along each axis (4x4 = 16 coverage levels). */
export const SUPERSAMPLE = 4;

/**
 * Whether the point (x, y) (continuous pixel coordinates) lies inside the object. Circle: disc of
 * diameter `side`; square: half-open [c - side/2, c + side/2) on each axis; triangle: apex at the top
 * centre, base along the bottom edge, width = height = side.
 */
export function insideShape(shape: Shape, side: number, cx: number, cy: number, x: number, y: number): boolean {
  const h = side / 2;
  switch (shape) {
    case 'circle': {
      const dx = x - cx, dy = y - cy;
      return dx * dx + dy * dy <= h * h;
    }
    case 'square':
      return x >= cx - h && x < cx + h && y >= cy - h && y < cy + h;
    case 'triangle': {
      const top = cy - h;
      if (y < top || y >= cy + h) return false;
      // Half-width grows from 0 at the apex to side/2 at the base.
      return Math.abs(x - cx) <= (y - top) / 2;
    }
  }
}

/** Renders `spec` as a 64x64 RgbImage (writePng can write it). */
export function renderShape(spec: ShapeSpec): RgbImage {
  const n = IMAGE_SIZE;
  const data = new Uint8Array(n * n * 3);
  const bg = BACKGROUND_RGB[spec.background];
  const fg = OBJECT_RGB[spec.color];
  for (let i = 0; i < n * n; i++) data.set(bg, i * 3);

  const h = spec.side / 2;
  const x0 = Math.max(0, Math.floor(spec.cx - h)), x1 = Math.min(n - 1, Math.ceil(spec.cx + h));
  const y0 = Math.max(0, Math.floor(spec.cy - h)), y1 = Math.min(n - 1, Math.ceil(spec.cy + h));
  const s = SUPERSAMPLE, total = s * s;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      let hits = 0;
      for (let j = 0; j < s; j++) {
        for (let i = 0; i < s; i++) {
          if (insideShape(spec.shape, spec.side, spec.cx, spec.cy, x + (i + 0.5) / s, y + (j + 0.5) / s)) hits++;
        }
      }
      if (hits === 0) continue;
      const c = hits / total, o = (y * n + x) * 3;
      for (let k = 0; k < 3; k++) data[o + k] = Math.round(bg[k] + (fg[k] - bg[k]) * c);
    }
  }
  return { width: n, height: n, data };
}
