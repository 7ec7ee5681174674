// The training loss chart (#loss-chart): stage A and B losses against their step on a <canvas>, raw and
// smoothed (EMA), on a log y axis when the losses span more than a decade, redrawn once per frame.
import { niceTicks } from './format.js';

export const COLORS = { A: '#2f6fdb', B: '#e07b1a' } as const;
const INK = '#404652';
const GRID = '#e4e7ec';
const FONT = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
const M = { left: 52, right: 12, top: 24, bottom: 34 };

/** Ticks for a log10 axis spanning exponents [fl, fh]: powers of ten, plus 2x and 5x when few. */
function logTicks(fl: number, fh: number): number[] {
  const out: number[] = [];
  const mults = Math.floor(fh) - Math.ceil(fl) >= 2 ? [1] : [1, 2, 5];
  for (let e = Math.floor(fl); e <= Math.ceil(fh); e++) {
    for (const m of mults) {
      const v = m * 10 ** e;
      if (Math.log10(v) >= fl && Math.log10(v) <= fh) out.push(Number(v.toPrecision(6)));
    }
  }
  return out;
}

function ema(values: number[], alpha: number): number[] {
  const out: number[] = [];
  let acc = Number.NaN;
  for (const v of values) {
    if (!Number.isFinite(v)) { out.push(acc); continue; }
    acc = Number.isNaN(acc) ? v : acc + alpha * (v - acc);
    out.push(acc);
  }
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(0) : String(Number(v.toPrecision(3)));
}

export class LossChart {
  private series: { A: number[]; B: number[] } = { A: [], B: [] };
  private xMax = 1;
  private frame = 0;

  constructor(private readonly canvas: HTMLCanvasElement) {
    new ResizeObserver(() => this.schedule()).observe(canvas);
  }

  /** Shows these losses (kept by reference: push to them and call schedule()); xMax = the longest stage. */
  set(losses: { A: number[]; B: number[] }, xMax: number): void {
    this.series = losses;
    this.xMax = Math.max(1, xMax);
    this.schedule();
  }

  schedule(): void {
    if (this.frame === 0) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  private draw(): void {
    const { canvas } = this;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    const ctx = canvas.getContext('2d');
    if (w === 0 || h === 0 || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = FONT;

    const { A, B } = this.series;
    const values = [...A, ...B].filter((v) => Number.isFinite(v));
    const xMax = Math.max(this.xMax, A.length, B.length);
    const pw = w - M.left - M.right;
    const ph = h - M.top - M.bottom;
    const px = (step: number): number => M.left + (step / xMax) * pw;

    const lo = values.length ? values.reduce((a, b) => Math.min(a, b)) : 0;
    const hi = values.length ? values.reduce((a, b) => Math.max(a, b)) : 1;
    const log = lo > 0 && hi / lo > 10;
    const f = (v: number): number => (log ? Math.log10(v) : v);
    let fl = f(lo);
    let fh = f(hi);
    if (fh - fl < 1e-9) { fl -= 0.5; fh += 0.5; }
    const pad = (fh - fl) * 0.05;
    fl -= pad; fh += pad;
    const py = (v: number): number => M.top + (1 - (f(v) - fl) / (fh - fl)) * ph;

    // grid and ticks
    ctx.strokeStyle = GRID;
    ctx.fillStyle = INK;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const yTicks = log ? logTicks(fl, fh) : niceTicks(fl, fh, 4);
    for (const t of yTicks) {
      const y = Math.round(py(t)) + 0.5;
      if (y < M.top - 1 || y > M.top + ph + 1) continue;
      ctx.beginPath(); ctx.moveTo(M.left, y); ctx.lineTo(M.left + pw, y); ctx.stroke();
      ctx.fillText(fmt(t), M.left - 6, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of niceTicks(0, xMax, 5)) {
      const x = Math.round(px(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, M.top + ph); ctx.lineTo(x, M.top + ph + 4); ctx.strokeStyle = INK; ctx.stroke();
      ctx.fillText(String(t), x, M.top + ph + 6);
    }
    ctx.strokeStyle = INK;
    ctx.strokeRect(M.left + 0.5, M.top + 0.5, pw, ph);

    // axis labels
    ctx.fillText('step', M.left + pw / 2, h - 13);
    ctx.save();
    ctx.translate(12, M.top + ph / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(log ? 'loss (log scale)' : 'loss', 0, 0);
    ctx.restore();

    if (!values.length) {
      ctx.textBaseline = 'middle';
      ctx.fillText('no losses yet', M.left + pw / 2, M.top + ph / 2);
    }

    // series: raw (faint) then smoothed
    ctx.save();
    ctx.beginPath(); ctx.rect(M.left, M.top, pw, ph); ctx.clip();
    for (const stage of ['A', 'B'] as const) {
      const raw = this.series[stage];
      this.line(ctx, raw, px, py, COLORS[stage], 1, 0.3);
      this.line(ctx, ema(raw, raw.length > 200 ? 0.05 : 0.2), px, py, COLORS[stage], 2, 1);
    }
    ctx.restore();

    // legend
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    let x = M.left;
    for (const stage of ['A', 'B'] as const) {
      const s = this.series[stage];
      const last = s.length ? s[s.length - 1] : undefined;
      const label = `stage ${stage}${last !== undefined && Number.isFinite(last) ? ` ${fmt(last)}` : ''}`;
      ctx.fillStyle = COLORS[stage];
      ctx.fillRect(x, 8, 14, 3);
      ctx.fillStyle = INK;
      ctx.fillText(label, x + 18, 10);
      x += 26 + ctx.measureText(label).width;
    }
  }

  private line(
    ctx: CanvasRenderingContext2D, values: number[], px: (s: number) => number, py: (v: number) => number,
    color: string, width: number, alpha: number,
  ): void {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.globalAlpha = alpha;
    ctx.beginPath();
    let pen = false;
    values.forEach((v, i) => {
      if (!Number.isFinite(v)) { pen = false; return; }
      const x = px(i + 1);
      const y = py(v);
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
}
