// The sweep (#sweep): the automatic choice's candidates as a grid, rows = seeds, columns = etas, the
// chosen one outlined; a click on a cell picks its eta and seed. Without an automatic choice, a button
// renders a sweep of the preset's etas for the noise shown (each cell a cached render).
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
  private readonly hint = byId('sweep-hint', HTMLElement);
  private readonly renderButton = byId('sweep-render', HTMLButtonElement);
  private signature = '';
  /** Makes the cells of a sweep on demand (sessions without an automatic choice). */
  private onDemand: (() => Candidate[]) | null = null;

  constructor(private readonly pick: Pick) {
    this.renderButton.addEventListener('click', () => {
      if (!this.onDemand) return;
      this.renderButton.hidden = true;
      this.hint.hidden = false;
      this.hint.textContent = 'Rows are seeds, columns etas; each picture renders once, then comes from the cache. Pick one to show it.';
      this.fill(this.onDemand(), null);
    });
    this.grid.addEventListener('click', (e) => {
      const cell = e.target instanceof Element ? e.target.closest<HTMLButtonElement>('button.sweep-cell') : null;
      if (cell) this.pick(Number(cell.dataset.eta), Number(cell.dataset.seed));
    });
  }

  /** `sweep`: the cells to render on demand when there are no candidates. */
  show(candidates: Candidate[], choice: Choice | null, sweep?: () => Candidate[]): void {
    if (candidates.length === 0 && sweep) {
      this.box.hidden = false;
      if (this.onDemand === null) {
        this.onDemand = sweep;
        this.renderButton.hidden = false;
        this.hint.hidden = true;
      }
      return;
    }
    this.onDemand = null;
    this.renderButton.hidden = true;
    this.hint.hidden = false;
    this.box.hidden = candidates.length === 0;
    this.fill(candidates, choice);
  }

  private fill(candidates: Candidate[], choice: Choice | null): void {
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
    this.onDemand = null;
    this.renderButton.hidden = true;
    this.grid.replaceChildren();
    this.box.hidden = true;
  }
}
