// The plot (#plot): an SVG scatter of the candidates, x = preservation, y = alignment (CLIP score),
// coloured by seed, with the "edited" threshold dashed and the automatic choice marked.
import type { Candidate, Choice } from '../../src/server/api.js';
import { byId, h, svg } from './dom.js';
import { formatEta, niceTicks, seedLabel } from './format.js';
import { isChoice, sortedUnique, type Pick } from './sweep.js';

const W = 440;
const H = 300;
const M = { left: 56, right: 44, top: 14, bottom: 42 };
const PALETTE = ['#2f6fdb', '#e07b1a', '#2a9d5c', '#d23c3c', '#8b5cf6', '#8c5a3c', '#d946a8', '#0e9aa7'];

export const seedColor = (seed: number): string => (seed < 0 ? '#3b3f47' : PALETTE[seed % PALETTE.length] ?? '#777');

function domain(values: number[]): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-6) { lo -= 0.01; hi += 0.01; }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

const num = (v: number): string => v.toFixed(3);

export class PlotView {
  private readonly box = byId('plot', HTMLElement);
  private readonly host = byId('plot-svg', HTMLElement);
  private readonly legend = byId('plot-legend', HTMLElement);

  constructor(private readonly pick: Pick) {}

  show(candidates: Candidate[], choice: Choice | null, threshold: number | null, inputAlignment: number | null): void {
    this.box.hidden = candidates.length === 0;
    if (candidates.length === 0) { this.host.replaceChildren(); this.legend.replaceChildren(); return; }
    const ys = candidates.map((c) => c.alignment);
    if (threshold !== null) ys.push(threshold);
    if (inputAlignment !== null) ys.push(inputAlignment);
    const [x0, x1] = domain(candidates.map((c) => c.preservation));
    const [y0, y1] = domain(ys);
    const pw = W - M.left - M.right;
    const ph = H - M.top - M.bottom;
    const px = (v: number): number => M.left + ((v - x0) / (x1 - x0)) * pw;
    const py = (v: number): number => M.top + (1 - (v - y0) / (y1 - y0)) * ph;

    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'plot-svg',
      'aria-label': `Alignment against preservation of ${candidates.length} candidates` });
    for (const t of niceTicks(y0, y1, 5)) {
      root.append(svg('line', { x1: M.left, x2: M.left + pw, y1: py(t), y2: py(t), class: 'grid' }),
        svg('text', { x: M.left - 6, y: py(t), class: 'tick', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, String(t)));
    }
    for (const t of niceTicks(x0, x1, 5)) {
      root.append(svg('line', { x1: px(t), x2: px(t), y1: M.top, y2: M.top + ph, class: 'grid' }),
        svg('text', { x: px(t), y: M.top + ph + 14, class: 'tick', 'text-anchor': 'middle' }, String(t)));
    }
    root.append(
      svg('rect', { x: M.left, y: M.top, width: pw, height: ph, class: 'frame' }),
      svg('text', { x: M.left + pw / 2, y: H - 6, class: 'axis', 'text-anchor': 'middle' }, 'preservation (similarity to the input)'),
      svg('text', { x: 14, y: M.top + ph / 2, class: 'axis', 'text-anchor': 'middle',
        transform: `rotate(-90 14 ${M.top + ph / 2})` }, 'alignment (CLIP score)'),
    );
    const hline = (v: number, cls: string, label: string): void => {
      root.append(svg('line', { x1: M.left, x2: M.left + pw, y1: py(v), y2: py(v), class: cls }),
        svg('text', { x: M.left + pw + 4, y: py(v), class: `${cls}-label`, 'dominant-baseline': 'middle' }, label));
    };
    if (inputAlignment !== null) hline(inputAlignment, 'input-line', 'input');
    if (threshold !== null) hline(threshold, 'threshold', 'edited');

    for (const c of candidates) {
      const chosen = isChoice(c, choice);
      const tip = `eta ${formatEta(c.eta)}, ${seedLabel(c.seed)}: alignment ${num(c.alignment)}, preservation ${num(c.preservation)}${chosen ? ' (automatic choice)' : ''}`;
      const x = px(c.preservation);
      const y = py(c.alignment);
      const mark = chosen
        ? svg('path', { d: `M${x} ${y - 10}L${x + 10} ${y}L${x} ${y + 10}L${x - 10} ${y}Z`, class: 'point chosen', fill: seedColor(c.seed) })
        : svg('circle', { cx: x, cy: y, r: 5, class: 'point', fill: seedColor(c.seed) });
      mark.append(svg('title', {}, tip));
      mark.addEventListener('click', () => this.pick(c.eta, c.seed));
      if (chosen) root.append(mark); else root.insertBefore(mark, root.querySelector('.chosen'));
    }
    this.host.replaceChildren(root);

    const seeds = sortedUnique(candidates.map((c) => c.seed));
    const items: (HTMLLIElement | null)[] = [
      ...seeds.map((s) => h('li', {}, h('span', { class: 'swatch', style: `background:${seedColor(s)}` }), seedLabel(s))),
      choice ? h('li', {}, h('span', { class: 'swatch diamond' }), 'automatic choice') : null,
      threshold !== null ? h('li', {}, h('span', { class: 'swatch dashed' }), `edited (alignment ≥ ${num(threshold)})`) : null,
    ];
    this.legend.replaceChildren(...items.filter((li): li is HTMLLIElement => li !== null));
  }
}
