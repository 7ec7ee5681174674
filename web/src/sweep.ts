// The sweep (#sweep): the automatic choice's candidates as a grid, rows = seeds, columns = etas, the
// chosen one outlined; a click on a cell picks its eta and seed.
import type { Candidate, Choice } from '../../src/server/api.js';
import { byId, h } from './dom.js';
import { formatEta, seedLabel } from './format.js';

export type Pick = (eta: number, seed: number) => void;

const key = (eta: number, seed: number): string => `${formatEta(eta)}|${seed}`;

export const isChoice = (c: { eta: number; seed: number }, choice: Choice | null): boolean =>
  choice !== null && key(c.eta, c.seed) === key(choice.eta, choice.seed);

export const sortedUnique = (values: number[]): number[] =>
  [...new Set(values.map((v) => Number(v.toFixed(4))))].sort((a, b) => a - b);

export class SweepView {
  private readonly box = byId('sweep', HTMLElement);
  private readonly grid = byId('sweep-grid', HTMLTableElement);
  private signature = '';

  constructor(private readonly pick: Pick) {
    this.grid.addEventListener('click', (e) => {
      const cell = e.target instanceof Element ? e.target.closest<HTMLButtonElement>('button.sweep-cell') : null;
      if (cell) this.pick(Number(cell.dataset.eta), Number(cell.dataset.seed));
    });
  }

  show(candidates: Candidate[], choice: Choice | null): void {
    this.box.hidden = candidates.length === 0;
    const signature = JSON.stringify([candidates.map((c) => c.url), choice]);
    if (signature === this.signature) return;
    this.signature = signature;
    const etas = sortedUnique(candidates.map((c) => c.eta));
    const seeds = sortedUnique(candidates.map((c) => c.seed));
    const byKey = new Map(candidates.map((c) => [key(c.eta, c.seed), c]));
    const head = h('tr', {}, h('th', { scope: 'col', class: 'corner' }, 'seed \\ eta'),
      ...etas.map((eta) => h('th', { scope: 'col' }, formatEta(eta))));
    const rows = seeds.map((seed) => h('tr', {},
      h('th', { scope: 'row' }, seed < 0 ? 'inverted' : String(seed)),
      ...etas.map((eta) => {
        const c = byKey.get(key(eta, seed));
        if (!c) return h('td', {});
        const chosen = isChoice(c, choice);
        const label = `eta ${formatEta(eta)}, ${seedLabel(seed)}${chosen ? ' (automatic choice)' : ''}`;
        return h('td', {}, h('button', {
          type: 'button', class: chosen ? 'sweep-cell chosen' : 'sweep-cell', 'data-eta': formatEta(eta),
          'data-seed': seed, 'aria-label': label, title: label,
        }, h('img', { src: c.url, alt: '', width: 64, height: 64, loading: 'lazy', decoding: 'async' })));
      })));
    this.grid.replaceChildren(h('thead', {}, head), h('tbody', {}, ...rows));
  }

  /** Marks the cell now shown in #result-img (aria-current). */
  markCurrent(eta: number, seed: number): void {
    for (const b of this.grid.querySelectorAll<HTMLButtonElement>('button.sweep-cell')) {
      const on = b.dataset.eta === formatEta(eta) && b.dataset.seed === String(seed);
      if (on) b.setAttribute('aria-current', 'true'); else b.removeAttribute('aria-current');
    }
  }

  reset(): void {
    this.signature = '';
    this.grid.replaceChildren();
    this.box.hidden = true;
  }
}
