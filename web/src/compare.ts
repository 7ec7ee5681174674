// The compare card (#compare): runs the baselines (SDEdit, DDIM inversion) for the open session and
// shows them beside the input and the Imagic edit once ready.
import type { CompareState } from '../../src/server/api.js';
import { startCompare } from './api.js';
import { attempt, byId, h, showError } from './dom.js';

const SENTENCES: Record<CompareState['status'], string> = {
  none: 'Not run yet.',
  queued: 'Queued…',
  running: 'Running SDEdit and DDIM inversion…',
  ready: 'Ready.',
  failed: 'Failed.',
};

export class CompareView {
  private readonly card = byId('compare', HTMLElement);
  private readonly run = byId('compare-run', HTMLButtonElement);
  private readonly strength = byId('strength', HTMLInputElement);
  private readonly status = byId('compare-status', HTMLElement);
  private readonly images = byId('compare-images', HTMLElement);
  private id: string | null = null;
  private imagesKey = '';

  constructor() {
    this.run.addEventListener('click', () => void this.start());
  }

  show(id: string, state: CompareState): void {
    if (this.id !== id) this.imagesKey = '';
    this.id = id;
    this.card.hidden = false;
    this.render(state);
  }

  hide(): void {
    this.id = null;
    this.card.hidden = true;
  }

  private async start(): Promise<void> {
    const id = this.id;
    if (!id) return;
    let strength: number | undefined;
    if (this.strength.value.trim() !== '') {
      strength = Number(this.strength.value);
      if (!Number.isFinite(strength) || strength <= 0 || strength > 1) {
        showError('SDEdit strength must be a number in (0, 1].');
        this.strength.focus();
        return;
      }
    } else if (this.strength.validity.badInput) {
      showError('SDEdit strength must be a number in (0, 1].');
      return;
    }
    this.run.disabled = true;
    const state = await attempt(() => startCompare(id, strength));
    if (state && this.id === id) this.render(state);
    else this.run.disabled = false;
  }

  private render(state: CompareState): void {
    const busy = state.status === 'queued' || state.status === 'running';
    this.run.disabled = busy;
    this.run.textContent = state.status === 'ready' || state.status === 'failed' ? 'Run again' : 'Compare';
    const strength = state.strength === null ? '' : ` (SDEdit strength ${state.strength})`;
    this.status.textContent = state.status === 'failed'
      ? `Failed: ${state.error ?? 'unknown error'}`
      : `${SENTENCES[state.status]}${state.status === 'ready' ? strength : ''}`;
    this.status.dataset.status = state.status;
    this.card.setAttribute('aria-busy', String(busy));
    const images = state.status === 'ready' ? state.images : [];
    const key = JSON.stringify(images);
    if (key === this.imagesKey) return;
    this.imagesKey = key;
    this.images.replaceChildren(...images.map((im) => h('figure', {},
      h('img', { src: im.url, alt: im.label, width: 256, height: 256 }),
      h('figcaption', {}, im.label))));
  }
}
