// Scatter and line plots (metric against metric, one curve per series) drawn as SVG by hand and
// rasterized to PNG by sharp (librsvg, DejaVu Sans), as io/sheet.ts does for its labels.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from './image.js';
import { escapeXml } from './sheet.js';

export type MarkerShape = 'circle' | 'square' | 'triangle' | 'diamond' | 'cross';

export interface PlotPoint {
  x: number;
  y: number;
  /** A small label beside the point (e.g. its eta, "0.7"). */
  label?: string;
}

export interface PlotSeries {
  /** The legend's text. */
  name: string;
  points: PlotPoint[];
  /** Connect the points in the order given (default false). */
  line?: boolean;
  /** Default: circle. */
  marker?: MarkerShape;
  /** '#rrggbb' (default: the next colour of a 10-colour palette, matplotlib's tab10). */
  color?: string;
  /** Marker radius in pixels (default 4). */
  size?: number;
}

/** A point drawn over everything with a ring around it (the chosen candidate), with its own legend entry. */
export interface PlotHighlight {
  x: number;
  y: number;
  /** The legend's text (default: no legend entry). */
  name?: string;
  /** Default black. */
  color?: string;
}

export interface PlotOptions {
  title?: string;
  /** The axes' labels: say what is measured, e.g. "CLIP-I to the input (shapes-64 CLIP)". */
  xLabel: string;
  yLabel: string;
  /** Pixels (default 800 x 560). */
  width?: number;
  height?: number;
  /** Axis ranges (default: the data's, padded and widened to round ticks). */
  xRange?: [number, number];
  yRange?: [number, number];
  highlights?: PlotHighlight[];
  /** Base font size in pixels (default 13). */
  fontSize?: number;
}

export interface PlotLayout {
  width: number;
  height: number;
  /** The plotting area, in pixels. */
  area: { x: number; y: number; width: number; height: number };
  xDomain: [number, number];
  yDomain: [number, number];
  xTicks: number[];
  yTicks: number[];
  /** Data -> pixel (y grows downwards). */
  px(x: number): number;
  py(y: number): number;
  /** The legend's box (null: no legend). */
  legend: { x: number; y: number; width: number; height: number } | null;
}

export const PLOT_PALETTE: readonly string[] = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

const COLOR = /^#[0-9a-fA-F]{6}$/;
/** About this many ticks per axis. */
const TICKS = 8;
/** DejaVu Sans' mean advance is about 0.6 em for these texts: enough to size boxes, not to align ink. */
const textWidth = (s: string, size: number) => s.length * size * 0.6;

/** Heckbert's nice numbers: a round step (1, 2, 5 x 10^k) giving about `count` ticks that cover [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi)) || hi <= lo) throw new RangeError(`niceTicks: need finite lo < hi, got ${lo}, ${hi}`);
  const nice = (v: number, round: boolean) => {
    const e = Math.floor(Math.log10(v));
    const f = v / 10 ** e;
    const n = round ? (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) : f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return n * 10 ** e;
  };
  const step = nice(nice(hi - lo, false) / Math.max(1, count - 1), true);
  const first = Math.ceil(lo / step - 1e-9), last = Math.floor(hi / step + 1e-9);
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  return Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toFixed(digits)));
}

/** The data's range, padded by 5% (a single value: +-1, or +-10% of it), widened to whole ticks. */
function domainOf(values: number[], given?: [number, number]): [number, number] {
  if (given) {
    if (!(Number.isFinite(given[0]) && Number.isFinite(given[1]) && given[1] > given[0])) throw new RangeError(`plot range must be [lo, hi] with lo < hi, got [${given}]`);
    return given;
  }
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-12) {
    const d = Math.abs(lo) > 1e-12 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  } else {
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
  }
  const t = niceTicks(lo, hi, TICKS);
  const step = t.length > 1 ? t[1]! - t[0]! : hi - lo;
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return [Number((Math.floor(lo / step + 1e-9) * step).toFixed(digits)), Number((Math.ceil(hi / step - 1e-9) * step).toFixed(digits))];
}

function check(series: PlotSeries[], o: PlotOptions): void {
  if (!Array.isArray(series) || series.length === 0) throw new RangeError('plot: give at least one series');
  for (const s of series) {
    if (!Array.isArray(s.points)) throw new RangeError(`plot: series '${s.name}' has no points array`);
    for (const p of s.points) if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) throw new RangeError(`plot: series '${s.name}' has a non-finite point (${p.x}, ${p.y})`);
    if (s.color !== undefined && !COLOR.test(s.color)) throw new RangeError(`plot: series '${s.name}' colour must be '#rrggbb', got '${s.color}'`);
  }
  for (const h of o.highlights ?? []) {
    if (!Number.isFinite(h.x) || !Number.isFinite(h.y)) throw new RangeError(`plot: highlight at a non-finite point (${h.x}, ${h.y})`);
    if (h.color !== undefined && !COLOR.test(h.color)) throw new RangeError(`plot: highlight colour must be '#rrggbb', got '${h.color}'`);
  }
  const w = o.width ?? 800, h = o.height ?? 560;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 200 || h < 150 || w * h > 16e6) throw new RangeError(`plot: width and height must be integers, at least 200 x 150 and at most 16 megapixels, got ${w} x ${h}`);
  if (series.every((s) => s.points.length === 0) && (o.highlights ?? []).length === 0) throw new RangeError('plot: no points to draw');
}

const legendEntries = (series: PlotSeries[], o: PlotOptions) => [...series.map((s) => s.name), ...(o.highlights ?? []).flatMap((h) => (h.name ? [h.name] : []))];

/** Where everything goes; px/py map data to pixels (the test checks marker pixels with them). */
export function plotLayout(series: PlotSeries[], o: PlotOptions): PlotLayout {
  check(series, o);
  const width = o.width ?? 800, height = o.height ?? 560, fs = o.fontSize ?? 13;
  const pts = [...series.flatMap((s) => s.points), ...(o.highlights ?? [])];
  const xDomain = domainOf(pts.map((p) => p.x), o.xRange);
  const yDomain = domainOf(pts.map((p) => p.y), o.yRange);
  const xTicks = niceTicks(xDomain[0], xDomain[1], TICKS).filter((t) => t >= xDomain[0] - 1e-9 && t <= xDomain[1] + 1e-9);
  const yTicks = niceTicks(yDomain[0], yDomain[1], TICKS).filter((t) => t >= yDomain[0] - 1e-9 && t <= yDomain[1] + 1e-9);
  const entries = legendEntries(series, o);
  const legendW = entries.length > 0 ? Math.min(Math.round(width * 0.3), Math.ceil(Math.max(...entries.map((e) => textWidth(e, fs)))) + 3 * fs) : 0;
  const tickW = Math.ceil(Math.max(...yTicks.map((t) => textWidth(formatTick(t, yTicks), fs)))) + 6;
  const left = Math.round(fs * 2.2) + tickW + 6;
  const top = o.title ? Math.round(fs * 3) : Math.round(fs);
  const bottom = Math.round(fs * 4);
  const right = legendW > 0 ? legendW + 2 * fs : fs;
  const area = { x: left, y: top, width: width - left - right, height: height - top - bottom };
  if (area.width < 40 || area.height < 40) throw new RangeError(`plot: ${width} x ${height} leaves no room for the plotting area (labels and legend take it)`);
  const px = (x: number) => area.x + ((x - xDomain[0]) / (xDomain[1] - xDomain[0])) * area.width;
  const py = (y: number) => area.y + area.height - ((y - yDomain[0]) / (yDomain[1] - yDomain[0])) * area.height;
  const legend = legendW > 0 ? { x: width - legendW - fs, y: area.y, width: legendW, height: Math.round(entries.length * fs * 1.6 + fs * 0.6) } : null;
  return { width, height, area, xDomain, yDomain, xTicks, yTicks, px, py, legend };
}

/** Ticks with as many decimals as their step needs. */
function formatTick(t: number, ticks: number[]): string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : Math.abs(t) || 1;
  return t.toFixed(Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9))));
}

function marker(shape: MarkerShape, x: number, y: number, r: number, color: string): string {
  const f = (v: number) => v.toFixed(2);
  switch (shape) {
    case 'circle': return `<circle cx="${f(x)}" cy="${f(y)}" r="${f(r)}" fill="${color}"/>`;
    case 'square': return `<rect x="${f(x - r)}" y="${f(y - r)}" width="${f(2 * r)}" height="${f(2 * r)}" fill="${color}"/>`;
    case 'diamond': return `<polygon points="${f(x)},${f(y - 1.3 * r)} ${f(x + 1.3 * r)},${f(y)} ${f(x)},${f(y + 1.3 * r)} ${f(x - 1.3 * r)},${f(y)}" fill="${color}"/>`;
    case 'triangle': return `<polygon points="${f(x)},${f(y - 1.3 * r)} ${f(x + 1.2 * r)},${f(y + 0.8 * r)} ${f(x - 1.2 * r)},${f(y + 0.8 * r)}" fill="${color}"/>`;
    case 'cross': return `<path d="M${f(x - r)},${f(y - r)}L${f(x + r)},${f(y + r)}M${f(x - r)},${f(y + r)}L${f(x + r)},${f(y - r)}" stroke="${color}" stroke-width="${f(Math.max(1.5, r / 2))}"/>`;
  }
}

/** The plot as an SVG document. */
export function plotSvg(series: PlotSeries[], o: PlotOptions): string {
  const L = plotLayout(series, o);
  const fs = o.fontSize ?? 13;
  const { area: a } = L;
  const text = (x: number, y: number, s: string, opts: { size?: number; anchor?: string; color?: string; extra?: string } = {}) =>
    `<text x="${x.toFixed(2)}" y="${y.toFixed(2)}" font-family="DejaVu Sans" font-size="${(opts.size ?? fs).toFixed(2)}" text-anchor="${opts.anchor ?? 'start'}" fill="${opts.color ?? '#000000'}"${opts.extra ?? ''}>${escapeXml(s)}</text>`;
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}">`, `<rect width="100%" height="100%" fill="#ffffff"/>`];
  // grid and ticks
  for (const t of L.xTicks) {
    const x = L.px(t);
    out.push(`<line x1="${x.toFixed(2)}" y1="${a.y}" x2="${x.toFixed(2)}" y2="${a.y + a.height}" stroke="#e6e6e6" stroke-width="1"/>`);
    out.push(`<line x1="${x.toFixed(2)}" y1="${a.y + a.height}" x2="${x.toFixed(2)}" y2="${a.y + a.height + 5}" stroke="#000000" stroke-width="1"/>`);
    out.push(text(x, a.y + a.height + 6 + fs, formatTick(t, L.xTicks), { anchor: 'middle' }));
  }
  for (const t of L.yTicks) {
    const y = L.py(t);
    out.push(`<line x1="${a.x}" y1="${y.toFixed(2)}" x2="${a.x + a.width}" y2="${y.toFixed(2)}" stroke="#e6e6e6" stroke-width="1"/>`);
    out.push(`<line x1="${a.x - 5}" y1="${y.toFixed(2)}" x2="${a.x}" y2="${y.toFixed(2)}" stroke="#000000" stroke-width="1"/>`);
    out.push(text(a.x - 8, y + fs * 0.36, formatTick(t, L.yTicks), { anchor: 'end' }));
  }
  out.push(`<rect x="${a.x}" y="${a.y}" width="${a.width}" height="${a.height}" fill="none" stroke="#000000" stroke-width="1"/>`);
  // axis labels and title
  out.push(text(a.x + a.width / 2, L.height - fs * 0.9, o.xLabel, { anchor: 'middle' }));
  const ly = a.y + a.height / 2, lx = fs * 1.2;
  out.push(text(lx, ly, o.yLabel, { anchor: 'middle', extra: ` transform="rotate(-90 ${lx.toFixed(2)} ${ly.toFixed(2)})"` }));
  if (o.title) out.push(text(L.width / 2, fs * 1.8, o.title, { anchor: 'middle', size: fs * 1.2 }));
  // series: lines under markers, labels over them
  const colors = series.map((s, i) => s.color ?? PLOT_PALETTE[i % PLOT_PALETTE.length]!);
  out.push(`<svg x="${a.x}" y="${a.y}" width="${a.width}" height="${a.height}" overflow="hidden"><g transform="translate(${-a.x} ${-a.y})">`);
  series.forEach((s, i) => {
    if (s.line && s.points.length > 1) {
      const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${L.px(p.x).toFixed(2)},${L.py(p.y).toFixed(2)}`).join('');
      out.push(`<path d="${d}" fill="none" stroke="${colors[i]}" stroke-width="1.5" stroke-opacity="0.7"/>`);
    }
  });
  series.forEach((s, i) => {
    for (const p of s.points) out.push(marker(s.marker ?? 'circle', L.px(p.x), L.py(p.y), s.size ?? 4, colors[i]!));
  });
  for (const h of o.highlights ?? []) {
    out.push(`<circle cx="${L.px(h.x).toFixed(2)}" cy="${L.py(h.y).toFixed(2)}" r="10" fill="none" stroke="${h.color ?? '#000000'}" stroke-width="2.5"/>`);
  }
  series.forEach((s, i) => {
    for (const p of s.points) if (p.label) out.push(text(L.px(p.x) + (s.size ?? 4) + 2, L.py(p.y) - (s.size ?? 4) - 1, p.label, { size: fs * 0.75, color: colors[i] }));
  });
  out.push('</g></svg>');
  // legend
  if (L.legend) {
    const g = L.legend;
    out.push(`<rect x="${g.x}" y="${g.y}" width="${g.width}" height="${g.height}" fill="#ffffff" stroke="#bbbbbb" stroke-width="1"/>`);
    const rowY = (k: number) => g.y + fs * 0.3 + fs * 1.6 * (k + 0.5);
    series.forEach((s, i) => {
      const y = rowY(i);
      if (s.line) out.push(`<line x1="${g.x + fs * 0.4}" y1="${y.toFixed(2)}" x2="${g.x + fs * 1.8}" y2="${y.toFixed(2)}" stroke="${colors[i]}" stroke-width="1.5"/>`);
      out.push(marker(s.marker ?? 'circle', g.x + fs * 1.1, y, Math.min(s.size ?? 4, fs * 0.4), colors[i]!));
      out.push(text(g.x + fs * 2.3, y + fs * 0.36, s.name));
    });
    (o.highlights ?? []).filter((h) => h.name).forEach((h, k) => {
      const y = rowY(series.length + k);
      out.push(`<circle cx="${(g.x + fs * 1.1).toFixed(2)}" cy="${y.toFixed(2)}" r="${(fs * 0.5).toFixed(2)}" fill="none" stroke="${h.color ?? '#000000'}" stroke-width="2"/>`);
      out.push(text(g.x + fs * 2.3, y + fs * 0.36, h.name!));
    });
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The plot as an 8-bit RGB PNG. */
export async function renderPlot(series: PlotSeries[], o: PlotOptions): Promise<Buffer> {
  const svg = Buffer.from(plotSvg(series, o));
  return sharp(svg, { density: 72 }).flatten({ background: '#ffffff' }).toColourspace('srgb').png().toBuffer();
}

/** Writes the plot's PNG atomically: a hidden temporary file in the same folder, flushed, then renamed over `file`. */
export async function writePlot(file: string, series: PlotSeries[], o: PlotOptions): Promise<void> {
  const png = await renderPlot(series, o);
  const dir = path.dirname(path.resolve(file));
  const s = await stat(dir).catch(() => null);
  if (s === null || !s.isDirectory()) throw new Error(`cannot write ${file}: folder ${dir} does not exist`);
  try {
    await writeFileAtomic(file, png);
  } catch (e) {
    throw new Error(`cannot write ${file}: ${(e as Error).message}`);
  }
}
