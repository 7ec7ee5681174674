// Plots: round ticks by hand, markers, lines and the highlight ring found at the pixels the layout
// computes, axis-label and legend ink, atomic writes, bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { niceTicks, plotLayout, renderPlot, writePlot, type PlotOptions, type PlotSeries } from '../../src/io/plot.js';

async function decode(png: Buffer): Promise<{ width: number; height: number; at: (x: number, y: number) => number[] }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width, height: info.height,
    at: (x, y) => {
      const i = (Math.round(y) * info.width + Math.round(x)) * 3;
      return [data[i]!, data[i + 1]!, data[i + 2]!];
    },
  };
}

const near = (got: number[], want: number[], tol: number) => got.every((v, i) => Math.abs(v - want[i]!) <= tol);

test('niceTicks: steps of 1, 2 or 5 x 10^k inside the range (worked by hand)', () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  // range 0.14 -> nice 0.2 -> /5 = 0.04 -> rounds to 0.05
  assert.deepEqual(niceTicks(0.83, 0.97), [0.85, 0.9, 0.95]);
  // range 19 -> nice 20 -> /5 = 4 -> rounds to 5
  assert.deepEqual(niceTicks(12, 31), [15, 20, 25, 30]);
  // range 6 -> nice 10 -> /5 = 2
  assert.deepEqual(niceTicks(-3, 3), [-2, 0, 2]);
  assert.throws(() => niceTicks(1, 1), /finite lo < hi/);
});

const series: PlotSeries[] = [
  { name: 'seed 0', color: '#ff0000', marker: 'square', size: 6, line: true, points: [{ x: 0.5, y: 20, label: '0.5' }, { x: 0.9, y: 30, label: '0.9' }] },
  { name: 'SDEdit', color: '#0000ff', marker: 'circle', size: 6, points: [{ x: 0.6, y: 28 }] },
];
const opts: PlotOptions = {
  title: 'candidates', xLabel: 'CLIP-I to the input (test CLIP)', yLabel: 'CLIP score to the text (test CLIP)', width: 640, height: 480,
  highlights: [{ x: 0.9, y: 30, name: 'chosen', color: '#000000' }],
};

test('markers, the connecting line and the highlight are where the layout puts them', async () => {
  const png = await renderPlot(series, opts);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  const im = await decode(png);
  assert.deepEqual([im.width, im.height], [640, 480]);
  const L = plotLayout(series, opts);
  // the data range is padded to whole ticks: every point inside the area
  assert.ok(L.xDomain[0] <= 0.5 && L.xDomain[1] >= 0.9 && L.yDomain[0] <= 20 && L.yDomain[1] >= 30, `${L.xDomain} ${L.yDomain}`);
  assert.ok(L.px(0.5) > L.area.x && L.px(0.9) < L.area.x + L.area.width);
  assert.ok(near(im.at(L.px(0.5), L.py(20)), [255, 0, 0], 10), `red square at (0.5, 20): ${im.at(L.px(0.5), L.py(20))}`);
  assert.ok(near(im.at(L.px(0.6), L.py(28)), [0, 0, 255], 10), `blue circle at (0.6, 28): ${im.at(L.px(0.6), L.py(28))}`);
  // halfway along the line (0.5, 20) -> (0.9, 30): red at opacity 0.7 over white
  // (the 1.5 px line is anti-aliased: its strongest pixel within one of the point)
  const around = [-1, 0, 1].flatMap((dx) => [-1, 0, 1].map((dy) => im.at(L.px(0.7) + dx, L.py(25) + dy)));
  const mid = around.sort((p, q) => p[1]! - q[1]!)[0]!;
  assert.ok(mid[0]! > 200 && mid[1]! < 110 && mid[2]! < 110, `line at its midpoint: ${mid}`);
  // the highlight ring (radius 10, width 2.5) around (0.9, 30): dark on its left, the red marker inside
  const ring = im.at(L.px(0.9) - 10, L.py(30));
  assert.ok(ring.every((v) => v < 110), `ring pixel: ${ring}`);
  // a marker-free spot between the points is not red or blue
  const empty = im.at(L.px(0.55), L.py(29));
  assert.ok(!near(empty, [255, 0, 0], 60) && !near(empty, [0, 0, 255], 60), `empty spot: ${empty}`);
});

test('axis labels, ticks and the legend leave ink; the image is not blank', async () => {
  const im = await decode(await renderPlot(series, opts));
  const L = plotLayout(series, opts);
  const count = (x0: number, y0: number, x1: number, y1: number, pred: (p: number[]) => boolean) => {
    let n = 0;
    for (let y = Math.max(0, Math.floor(y0)); y < Math.min(im.height, y1); y++) for (let x = Math.max(0, Math.floor(x0)); x < Math.min(im.width, x1); x++) if (pred(im.at(x, y))) n++;
    return n;
  };
  const dark = (p: number[]) => p.every((v) => v < 100);
  assert.ok(count(L.area.x, L.area.y + L.area.height + 20, L.area.x + L.area.width, im.height, dark) > 50, 'x label ink below the ticks');
  assert.ok(count(0, L.area.y, 24, L.area.y + L.area.height, dark) > 50, 'y label ink, rotated, on the left');
  assert.ok(count(0, 0, im.width, L.area.y - 4, dark) > 30, 'title ink');
  const g = L.legend!;
  assert.ok(g.x > L.area.x + L.area.width, 'legend right of the area');
  assert.ok(count(g.x, g.y, g.x + g.width, g.y + g.height, (p) => near(p, [255, 0, 0], 30)) > 5, 'legend: the red series');
  assert.ok(count(g.x, g.y, g.x + g.width, g.y + g.height, (p) => near(p, [0, 0, 255], 30)) > 5, 'legend: the blue series');
  assert.ok(count(0, 0, im.width, im.height, (p) => !near(p, [255, 255, 255], 3)) > 2000, 'not blank');
});

test('writePlot writes atomically, refuses a missing folder; bad input is refused by name', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-plot-'));
  try {
    const f = path.join(dir, 'p.png');
    await writePlot(f, series, opts);
    assert.deepEqual(readFileSync(f), await renderPlot(series, opts), 'deterministic bytes');
    assert.deepEqual(readdirSync(dir), ['p.png'], 'no temporary file left');
    await assert.rejects(writePlot(path.join(dir, 'nowhere', 'p.png'), series, opts), /folder .* does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => plotLayout([], opts), /at least one series/);
  assert.throws(() => plotLayout([{ name: 'a', points: [{ x: NaN, y: 1 }] }], opts), /series 'a' has a non-finite point/);
  assert.throws(() => plotLayout([{ name: 'a', color: 'red', points: [{ x: 1, y: 1 }] }], opts), /colour must be '#rrggbb'/);
  // a single point still gets a usable range
  const one = plotLayout([{ name: 'a', points: [{ x: 0.8, y: 25 }] }], { xLabel: 'x', yLabel: 'y' });
  assert.ok(one.xDomain[0] < 0.8 && one.xDomain[1] > 0.8 && one.yDomain[0] < 25 && one.yDomain[1] > 25);
});
