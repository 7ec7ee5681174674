// Contact sheets: exact cell placement, where label ink is (and is not), XML-hostile labels, bad grids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readImage, writePng, type RgbImage } from '../../src/io/image.js';
import { contactSheet, contactSheetLayout, escapeXml, sideBySide, type SheetBox } from '../../src/io/sheet.js';
import { pseudoRandom } from '../helpers.js';

/** An image of pseudo-random bytes: a misplaced or resampled copy cannot match it. */
function noiseImage(width: number, height: number, seed: number): RgbImage {
  return { width, height, data: Uint8Array.from(pseudoRandom(width * height * 3, seed), (v) => Math.floor((v + 1) * 127.5)) };
}

const px = (im: RgbImage, x: number, y: number) => [...im.data.subarray((y * im.width + x) * 3, (y * im.width + x) * 3 + 3)];

/** Asserts that `src` sits in `sheet` with its top-left pixel at (x, y), every byte equal. */
function assertPlaced(sheet: RgbImage, src: RgbImage, x: number, y: number, what: string): void {
  for (let r = 0; r < src.height; r++) {
    const got = sheet.data.subarray(((y + r) * sheet.width + x) * 3, ((y + r) * sheet.width + x + src.width) * 3);
    const want = src.data.subarray(r * src.width * 3, (r + 1) * src.width * 3);
    if (!Buffer.from(got).equals(Buffer.from(want))) assert.fail(`${what}: row ${r} differs at offset (${x}, ${y})`);
  }
}

/** Pixels in `box` that are dark (every channel < 128): text ink on white. */
function darkPixels(im: RgbImage, b: SheetBox): number {
  let n = 0;
  for (let y = b.y; y < b.y + b.height; y++) for (let x = b.x; x < b.x + b.width; x++) if (px(im, x, y).every((v) => v < 128)) n++;
  return n;
}

/** Columns of `box` holding any non-white pixel: [first, last] relative to the box, or null. */
function inkSpan(im: RgbImage, b: SheetBox): [number, number] | null {
  let lo = Infinity, hi = -1;
  for (let y = b.y; y < b.y + b.height; y++) {
    for (let x = b.x; x < b.x + b.width; x++) {
      if (px(im, x, y).some((v) => v !== 255)) {
        lo = Math.min(lo, x - b.x);
        hi = Math.max(hi, x - b.x);
      }
    }
  }
  return hi < 0 ? null : [lo, hi];
}

const inside = (x: number, y: number, boxes: SheetBox[]) => boxes.some((b) => x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height);

test('without labels, cells sit at pad + k * (cell + pad) and keep every pixel; the rest is background', async () => {
  const grid = [[noiseImage(64, 48, 1), noiseImage(64, 48, 2), noiseImage(64, 48, 3)], [noiseImage(64, 48, 4), noiseImage(64, 48, 5), noiseImage(64, 48, 6)]];
  const sheet = await contactSheet(grid, { cellPadding: 5 });
  assert.equal(sheet.width, 5 + 3 * (64 + 5));
  assert.equal(sheet.height, 5 + 2 * (48 + 5));
  grid.forEach((row, r) => row.forEach((im, c) => assertPlaced(sheet, im, 5 + c * 69, 5 + r * 53, `cell ${r},${c}`)));
  const cells = grid.flatMap((row, r) => row.map((_, c) => ({ x: 5 + c * 69, y: 5 + r * 53, width: 64, height: 48 })));
  for (let y = 0; y < sheet.height; y++) {
    for (let x = 0; x < sheet.width; x++) if (!inside(x, y, cells)) assert.deepEqual(px(sheet, x, y), [255, 255, 255], `padding at ${x},${y}`);
  }
  const black = await contactSheet(grid, { cellPadding: 0, background: { r: 0, g: 0, b: 0 } });
  assert.equal(black.width, 192);
  assertPlaced(black, grid[1]![2]!, 128, 48, 'no padding');
});

test('images of different sizes are centred in cells as large as the largest (offsets floored)', async () => {
  const big = noiseImage(64, 64, 7), small = noiseImage(33, 20, 8);
  const sheet = await contactSheet([[big, small]], { cellPadding: 8 });
  assert.deepEqual([sheet.width, sheet.height], [8 + 2 * 72, 8 + 72]);
  assertPlaced(sheet, big, 8, 8, 'big');
  assertPlaced(sheet, small, 80 + 15, 8 + 22, 'small'); // floor((64 - 33) / 2) = 15, (64 - 20) / 2 = 22
  assert.deepEqual(px(sheet, 80 + 14, 8 + 22), [255, 255, 255]);
  assert.deepEqual(px(sheet, 80, 8), [255, 255, 255]);
});

test('with a title, column and row labels, the grid moves by their boxes and keeps its pixels', async () => {
  const grid = [[noiseImage(64, 64, 11), noiseImage(64, 64, 12)], [noiseImage(64, 64, 13), noiseImage(64, 64, 14)]];
  const opts = { rowLabels: ['seed 1', 'seed 2'], colLabels: ['eta 0.6', 'eta 0.8'], title: 'Imagic', cellPadding: 8, fontSize: 16, rowLabelWidth: 70 };
  const sheet = await contactSheet(grid, opts);
  // title 32 (= round(16 * 1.25 * 1.6)) and column labels 26 (= round(16 * 1.6)) high, each followed by a pad
  const x0 = 8 + 70 + 8, y0 = 8 + 32 + 8 + 26 + 8;
  assert.deepEqual([sheet.width, sheet.height], [x0 + 2 * 72, y0 + 2 * 72]);
  grid.forEach((row, r) => row.forEach((im, c) => assertPlaced(sheet, im, x0 + c * 72, y0 + r * 72, `cell ${r},${c}`)));
  const layout = contactSheetLayout(grid, opts);
  assert.deepEqual(layout.colLabels[1], { x: x0 + 72, y: 8 + 32 + 8, width: 64, height: 26 });
  assert.deepEqual(layout.rowLabels[1], { x: 8, y: y0 + 72, width: 70, height: 64 });
  assert.deepEqual(layout.title, { x: 8, y: 8, width: sheet.width - 16, height: 32 });
});

test('label boxes hold dark text, inside their edges; unlabelled boxes and all padding stay white', async () => {
  const grid = [[noiseImage(64, 64, 21), noiseImage(64, 64, 22), noiseImage(64, 64, 23)]];
  const opts = {
    rowLabels: ['seed 42'], colLabels: ['eta 0.7', '', 'a label far too long for a 64-pixel cell, WWWWWWWW'], title: 'Baselines', cellPadding: 8,
  };
  const sheet = await contactSheet(grid, opts);
  const rowLabelWidth = sheet.width - 3 * 72 - 2 * 8; // the default: as wide as 'seed 42' at 16 px, plus margins
  assert.ok(rowLabelWidth > 40 && rowLabelWidth < 80, `row label column ${rowLabelWidth} px`);
  const layout = contactSheetLayout(grid, { ...opts, rowLabelWidth });
  assert.equal(layout.width, sheet.width);
  for (const [what, box] of [['row label', layout.rowLabels[0]!], ['column 0', layout.colLabels[0]!], ['column 2 (long)', layout.colLabels[2]!], ['title', layout.title!]] as const) {
    assert.ok(darkPixels(sheet, box) > 15, `${what}: expected dark text pixels`);
    const span = inkSpan(sheet, box)!;
    assert.ok(span[0] > 0 && span[1] < box.width - 1, `${what}: text touches the box edge (columns ${span} of ${box.width}): overflow`);
  }
  assert.equal(inkSpan(sheet, layout.colLabels[1]!), null, 'the empty label leaves its box white');
  const boxes = [...layout.cells.flat(), ...layout.rowLabels, ...layout.colLabels, layout.title!];
  for (let y = 0; y < sheet.height; y++) {
    for (let x = 0; x < sheet.width; x++) if (!inside(x, y, boxes)) assert.deepEqual(px(sheet, x, y), [255, 255, 255], `padding at ${x},${y}`);
  }
  grid[0]!.forEach((im, c) => assertPlaced(sheet, im, layout.cells[0]![c]!.x, layout.cells[0]![c]!.y, `cell ${c}`));
});

test('XML special characters are escaped: they render as text, and nothing breaks', async () => {
  assert.equal(escapeXml(`a<b&c"d'e>`), 'a&lt;b&amp;c&quot;d&apos;e&gt;');
  assert.equal(escapeXml('x\u0001y\nz\uD800'), 'x\uFFFDy z\uFFFD');
  const im = [noiseImage(96, 32, 31), noiseImage(96, 32, 32), noiseImage(96, 32, 33), noiseImage(96, 32, 34)];
  const labels = ['<', '&lt;', ']]></text><svg>&amp;', 'ctl\u0001 "q" \'a\' \uD83D\uDC36'];
  const sheet = await sideBySide(im, labels, { title: '</svg> & <!-- -->' });
  const layout = contactSheetLayout([im], { colLabels: labels, title: 'x', rowLabelWidth: 0 });
  const spans = layout.colLabels.map((b) => inkSpan(sheet, b));
  spans.forEach((s, i) => assert.ok(s !== null, `label ${i} rendered no text`));
  const width = (s: [number, number] | null) => s![1] - s![0] + 1;
  // '&lt;' must show its four characters (27 px against 11 px for '<'), not be read as the entity for '<'
  assert.ok(width(spans[1]!) > 2 * width(spans[0]!), `'&lt;' (${width(spans[1]!)} px) should be much wider than '<' (${width(spans[0]!)} px)`);
  assert.ok(darkPixels(sheet, layout.title!) > 15, 'title rendered');
  im.forEach((x, c) => assertPlaced(sheet, x, layout.cells[0]![c]!.x, layout.cells[0]![c]!.y, `cell ${c}`));
});

test('sideBySide is a one-row contact sheet; a sheet survives writePng and readImage unchanged', async () => {
  const im = [noiseImage(40, 40, 41), noiseImage(40, 40, 42)];
  const a = await sideBySide(im, ['input', 'SDEdit']);
  const b = await contactSheet([im], { colLabels: ['input', 'SDEdit'] });
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-sheet-'));
  try {
    const file = path.join(dir, 'sheet.png');
    await writePng(file, a);
    const back = await readImage(file);
    assert.deepEqual([back.width, back.height], [a.width, a.height]);
    assert.ok(Buffer.from(back.data).equals(Buffer.from(a.data)), 'PNG round trip');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad grids and label counts are refused with clear errors', async () => {
  const im = noiseImage(16, 16, 51);
  await assert.rejects(contactSheet([[im, im, im], [im, im]]), /row 1 has 2 images, but row 0 has 3: every row needs the same number/);
  await assert.rejects(contactSheet([]), /at least one row with at least one image/);
  await assert.rejects(contactSheet([[]]), /at least one row with at least one image/);
  await assert.rejects(contactSheet([[im], [im]], { rowLabels: ['one'] }), /1 row labels for 2 rows/);
  await assert.rejects(sideBySide([im, im], ['a', 'b', 'c']), /3 column labels for 2 columns/);
  await assert.rejects(contactSheet([[im, { width: 16, height: 16, data: new Uint8Array(10) }]]), /image \[0\]\[1\].*768 bytes/);
  await assert.rejects(contactSheet([[im]], { cellPadding: -1 }), /cellPadding must be an integer >= 0/);
});
