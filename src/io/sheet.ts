// Contact sheets: images in a labelled grid (rows x columns) for comparing edits side by side.
// Labels are SVG text rendered by sharp (librsvg, DejaVu Sans), measured, and shrunk until they fit their box.
import sharp from 'sharp';
import { checkImage, ImageError, type RgbImage } from './image-types.js';

/** A colour, 0-255 per channel. */
export type SheetColor = { r: number; g: number; b: number };
type Rgb = SheetColor;

/** Labels and spacing of a contact sheet. */
export interface ContactSheetOptions {
  /** One label per row, drawn in a column on the left ('' leaves a row unlabelled). */
  rowLabels?: string[];
  /** One label per column, drawn above the grid. */
  colLabels?: string[];
  /** One line above everything. */
  title?: string;
  /** Pixels between cells, labels and the sheet's edge (default 8). */
  cellPadding?: number;
  /** Largest label font size in pixels (default 16; the title's is 1.25x). Labels shrink to fit, to 8 px, then are cut with an ellipsis. */
  fontSize?: number;
  /** Width of the row-label column (default: the widest label at fontSize, at most max(cell width, 8 * fontSize)). */
  rowLabelWidth?: number;
  /** Default white. */
  background?: Rgb;
  /** Default black. */
  textColor?: Rgb;
}

export interface SheetBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ContactSheetLayout {
  width: number;
  height: number;
  /** The cell boxes, [row][col]: every cell is as large as the largest image. */
  cells: SheetBox[][];
  /** Where each image's top-left pixel goes (centred in its cell, offsets floored). */
  imageOrigins: { x: number; y: number }[][];
  rowLabels: SheetBox[];
  colLabels: SheetBox[];
  title: SheetBox | null;
}

const MARGIN = 2; // pixels kept free on each side of a label's text
const MIN_FONT = 8; // labels shrink to this size, then are cut with an ellipsis

/** Where everything goes. rowLabelWidth is the label column's width (0: none). */
export function contactSheetLayout(images: RgbImage[][], opts: ContactSheetOptions & { rowLabelWidth: number }): ContactSheetLayout {
  const rows = images.length, cols = images[0]?.length ?? 0;
  const pad = opts.cellPadding ?? 8;
  const fs = opts.fontSize ?? 16;
  const cw = Math.max(...images.flat().map((im) => im.width));
  const ch = Math.max(...images.flat().map((im) => im.height));
  const labelW = opts.rowLabels ? opts.rowLabelWidth : 0;
  const headerH = opts.colLabels ? Math.round(fs * 1.6) : 0;
  const titleH = opts.title !== undefined ? Math.round(fs * 1.25 * 1.6) : 0;
  const x0 = pad + (labelW > 0 ? labelW + pad : 0);
  const y0 = pad + (titleH > 0 ? titleH + pad : 0) + (headerH > 0 ? headerH + pad : 0);
  const width = x0 + cols * (cw + pad);
  const height = y0 + rows * (ch + pad);
  const cells = images.map((row, r) => row.map((_, c) => ({ x: x0 + c * (cw + pad), y: y0 + r * (ch + pad), width: cw, height: ch })));
  return {
    width, height, cells,
    imageOrigins: images.map((row, r) => row.map((im, c) => ({
      x: cells[r]![c]!.x + Math.floor((cw - im.width) / 2), y: cells[r]![c]!.y + Math.floor((ch - im.height) / 2),
    }))),
    rowLabels: labelW > 0 ? cells.map((row) => ({ x: pad, y: row[0]!.y, width: labelW, height: ch })) : [],
    colLabels: headerH > 0 ? cells[0]!.map((cell) => ({ x: cell.x, y: y0 - pad - headerH, width: cw, height: headerH })) : [],
    title: titleH > 0 ? { x: pad, y: pad, width: width - 2 * pad, height: titleH } : null,
  };
}

/**
 * A labelled grid of images, [row][col]; every row must have as many images as the first. Cells are
 * as large as the largest image; each image keeps its pixels exactly, centred in its cell.
 */
export async function contactSheet(images: RgbImage[][], opts: ContactSheetOptions = {}): Promise<RgbImage> {
  checkGrid(images, opts);
  const fs = opts.fontSize ?? 16;
  const bg = opts.background ?? { r: 255, g: 255, b: 255 };
  let rowLabelWidth = 0;
  if (opts.rowLabels) {
    const cw = Math.max(...images.flat().map((im) => im.width));
    const widths = await Promise.all(opts.rowLabels.map((l) => (l.trim() === '' ? 0 : measureText(l, fs))));
    rowLabelWidth = opts.rowLabelWidth ?? Math.min(Math.max(...widths, fs) + 2 * MARGIN, Math.max(cw, 8 * fs));
    if (!Number.isInteger(rowLabelWidth) || rowLabelWidth < 1) throw new RangeError(`rowLabelWidth must be a positive integer, got ${rowLabelWidth}`);
  }
  const layout = contactSheetLayout(images, { ...opts, rowLabelWidth });
  const { width, height } = layout;
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    out[3 * i] = bg.r;
    out[3 * i + 1] = bg.g;
    out[3 * i + 2] = bg.b;
  }
  images.forEach((row, r) => row.forEach((im, c) => blit(out, width, im, layout.imageOrigins[r]![c]!)));

  const labels: [string, SheetBox, number][] = [
    ...(opts.rowLabels ?? []).map((l, i): [string, SheetBox, number] => [l, layout.rowLabels[i]!, fs]),
    ...(opts.colLabels ?? []).map((l, i): [string, SheetBox, number] => [l, layout.colLabels[i]!, fs]),
    ...(layout.title ? [[opts.title!, layout.title, fs * 1.25] as [string, SheetBox, number]] : []),
  ];
  const rendered = await Promise.all(labels.map(([text, box, size]) =>
    (text.trim() === '' ? null : renderLabel(text, box, size, bg, opts.textColor ?? { r: 0, g: 0, b: 0 }))));
  rendered.forEach((img, i) => {
    if (img) blit(out, width, img, labels[i]![1]);
  });
  return { width, height, data: out };
}

/** One labelled row: contactSheet([images], { colLabels: labels }). */
export async function sideBySide(images: RgbImage[], labels?: string[], opts: Omit<ContactSheetOptions, 'colLabels'> = {}): Promise<RgbImage> {
  return contactSheet([images], { ...opts, colLabels: labels });
}

function checkGrid(images: RgbImage[][], opts: ContactSheetOptions): void {
  if (!Array.isArray(images) || images.length === 0 || !Array.isArray(images[0]) || images[0].length === 0) {
    throw new ImageError('<sheet>', 'contactSheet: give at least one row with at least one image');
  }
  const cols = images[0].length;
  images.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== cols) {
      throw new ImageError('<sheet>', `contactSheet: row ${r} has ${Array.isArray(row) ? row.length : 'no'} images, but row 0 has ${cols}: every row needs the same number`);
    }
    row.forEach((im, c) => checkImage(im, `contactSheet image [${r}][${c}]`));
  });
  if (opts.rowLabels && opts.rowLabels.length !== images.length) {
    throw new ImageError('<sheet>', `contactSheet: ${opts.rowLabels.length} row labels for ${images.length} rows`);
  }
  if (opts.colLabels && opts.colLabels.length !== cols) {
    throw new ImageError('<sheet>', `contactSheet: ${opts.colLabels.length} column labels for ${cols} columns`);
  }
  const pad = opts.cellPadding ?? 8;
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`cellPadding must be an integer >= 0, got ${pad}`);
  const fs = opts.fontSize ?? 16;
  if (!Number.isFinite(fs) || fs < 4) throw new RangeError(`fontSize must be a number >= 4, got ${fs}`);
}

/** Copies `src` into the [H, W, 3] buffer `dst` (width `dstW`) with its top-left pixel at `at`. */
function blit(dst: Uint8Array, dstW: number, src: RgbImage, at: { x: number; y: number }): void {
  for (let y = 0; y < src.height; y++) {
    const from = y * src.width * 3;
    dst.set(src.data.subarray(from, from + src.width * 3), ((at.y + y) * dstW + at.x) * 3);
  }
}

/** &, <, >, quotes escaped; characters XML 1.0 forbids (most C0 controls, lone surrogates) become U+FFFD. */
export function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/[\t\n\r]/g, ' ')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const hex = (c: Rgb) => `#${[c.r, c.g, c.b].map((v) => Math.max(0, Math.min(255, Math.round(v))).toString(16).padStart(2, '0')).join('')}`;

function svgText(text: string, w: number, h: number, size: number, x: number, anchor: 'start' | 'middle', bg: Rgb, fg: Rgb): Buffer {
  const baseline = h / 2 + size * 0.36; // centres DejaVu's cap height (0.73 em) on the box
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` +
    `<rect width="100%" height="100%" fill="${hex(bg)}"/>` +
    `<text x="${x}" y="${baseline.toFixed(2)}" font-family="DejaVu Sans" font-size="${size.toFixed(2)}" text-anchor="${anchor}" fill="${hex(fg)}">${escapeXml(text)}</text></svg>`);
}

async function rasterize(svg: Buffer, bg: Rgb): Promise<RgbImage> {
  const { data, info } = await sharp(svg, { density: 72 }).flatten({ background: bg }).toColourspace('srgb').raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`label rendering gave ${info.channels} channels, expected 3`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Leftmost and rightmost columns with ink (any channel differing from the background by > 8), or null. */
function inkColumns(img: RgbImage, bg: Rgb): [number, number] | null {
  let lo = Infinity, hi = -1;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 3;
      if (Math.abs(img.data[i]! - bg.r) > 8 || Math.abs(img.data[i + 1]! - bg.g) > 8 || Math.abs(img.data[i + 2]! - bg.b) > 8) {
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
    }
  }
  return hi < 0 ? null : [lo, hi];
}

/** The width in pixels of the text's ink at `size`, rendered on a canvas wide enough for it. */
async function measureText(text: string, size: number): Promise<number> {
  const white = { r: 255, g: 255, b: 255 }, black = { r: 0, g: 0, b: 0 };
  const pad = Math.ceil(size);
  for (let w = Math.ceil(text.length * size * 1.2) + 2 * pad; ; w *= 2) {
    const img = await rasterize(svgText(text, w, Math.ceil(size * 1.6), size, pad, 'start', white, black), white);
    const ink = inkColumns(img, white);
    if (ink === null) return 0;
    if (ink[1] < w - 1 || w > 1 << 16) return ink[1] - ink[0] + 1;
  }
}

/**
 * The label centred in `box`: its font shrunk from `size` until its ink fits the box less MARGIN on each
 * side, down to MIN_FONT; a label that does not fit even then is cut, with an ellipsis.
 */
async function renderLabel(text: string, box: SheetBox, size: number, bg: Rgb, fg: Rgb): Promise<RgbImage> {
  const avail = Math.max(1, box.width - 2 * MARGIN);
  let fs = Math.min(size, box.height / 1.6);
  const minFs = Math.min(MIN_FONT, fs);
  for (let tries = 0; tries < 6; tries++) {
    const natural = await measureText(text, fs);
    if (natural <= avail) break;
    fs = Math.max(minFs, fs * (avail / natural) * 0.97);
    if (fs === minFs) {
      text = await cutToFit(text, fs, avail);
      break;
    }
  }
  // Centred by its advance width, the ink may sit a pixel off centre: shrink on until it clears the edges.
  for (let tries = 0; ; tries++) {
    const img = await rasterize(svgText(text, box.width, box.height, fs, box.width / 2, 'middle', bg, fg), bg);
    const ink = inkColumns(img, bg);
    if (ink === null || (ink[0] > 0 && ink[1] < box.width - 1) || tries === 6) return img;
    fs *= 0.9;
  }
}

/** The longest prefix of `text` that, with an ellipsis, fits `avail` pixels at font size `fs` (binary search). */
async function cutToFit(text: string, fs: number, avail: number): Promise<string> {
  const chars = [...text]; // code points, so that a surrogate pair is never split
  let lo = 0, hi = chars.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await measureText(chars.slice(0, mid).join('').trimEnd() + '\u2026', fs)) <= avail) lo = mid;
    else hi = mid - 1;
  }
  return chars.slice(0, lo).join('').trimEnd() + '\u2026';
}
