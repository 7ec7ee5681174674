// The gallery (#gallery): every session, newest first, with thumbnail, settings, date and status; open,
// delete (after confirm()) and download its picture. Kept live by `session` and `deleted` events.
import type { SessionSummary } from '../../src/server/api.js';
import { byId, h } from './dom.js';
import { formatDate, STATUS_LABELS } from './format.js';

export interface GalleryActions {
  open(id: string): void;
  remove(id: string): Promise<void>;
}

/** What an item shows: it is rebuilt only when this changes (not on every progress step). */
const shown = (s: SessionSummary): string =>
  JSON.stringify([s.text, s.model, s.preset, s.settings.stepsA, s.settings.stepsB, s.settings.steps, s.status, s.thumbnail, s.created]);

export class GalleryView {
  private readonly list = byId('gallery-list', HTMLUListElement);
  private readonly empty = byId('gallery-empty', HTMLElement);
  private readonly sessions = new Map<string, SessionSummary>();
  private openId: string | null = null;

  constructor(private readonly actions: GalleryActions) {
    this.list.addEventListener('click', (e) => {
      const button = e.target instanceof Element ? e.target.closest('button') : null;
      const id = button?.closest<HTMLElement>('li[data-session]')?.dataset.session;
      if (!button || !id) return;
      if (button.classList.contains('open')) this.actions.open(id);
      if (button.classList.contains('delete')) void this.confirmDelete(button, id);
    });
  }

  set(all: SessionSummary[]): void {
    this.sessions.clear();
    this.list.replaceChildren();
    for (const s of all) this.upsert(s);
    this.updateEmpty();
  }

  /** The newest revision seen of a session (-1: none). */
  revision(id: string): number {
    return this.sessions.get(id)?.revision ?? -1;
  }

  upsert(s: SessionSummary): void {
    const before = this.sessions.get(s.id);
    if (before && before.revision > s.revision) return; // an older copy, arriving late
    this.sessions.set(s.id, s);
    const existing = this.item(s.id);
    if (existing && before && shown(before) === shown(s)) return;
    const li = existing ?? h('li', { 'data-session': s.id, class: 'gallery-item' });
    li.replaceChildren(...this.content(s));
    if (s.id === this.openId) li.setAttribute('aria-current', 'true'); else li.removeAttribute('aria-current');
    if (!existing) {
      // newest first: before the first item created earlier
      const next = [...this.list.children].find((el) => {
        const other = el instanceof HTMLElement ? this.sessions.get(el.dataset.session ?? '') : undefined;
        return other !== undefined && other.created < s.created;
      });
      this.list.insertBefore(li, next ?? null);
    }
    this.updateEmpty();
  }

  remove(id: string): void {
    this.sessions.delete(id);
    this.item(id)?.remove();
    this.updateEmpty();
  }

  markOpen(id: string | null): void {
    this.openId = id;
    for (const li of this.list.querySelectorAll<HTMLElement>('li[data-session]')) {
      if (li.dataset.session === id) li.setAttribute('aria-current', 'true'); else li.removeAttribute('aria-current');
    }
  }

  get(id: string): SessionSummary | undefined {
    return this.sessions.get(id);
  }

  private item(id: string): HTMLElement | undefined {
    return [...this.list.querySelectorAll<HTMLElement>('li[data-session]')].find((li) => li.dataset.session === id);
  }

  private content(s: SessionSummary): Node[] {
    const steps = `${s.settings.stepsA}+${s.settings.stepsB} training steps, ${s.settings.steps} sampling`;
    return [
      h('img', { class: 'thumb', src: s.thumbnail, alt: '', width: 64, height: 64, loading: 'lazy', decoding: 'async' }),
      h('div', { class: 'gallery-body' },
        h('p', { class: 'gallery-text', title: s.text }, s.text),
        h('p', { class: 'gallery-meta' }, `${s.model} · ${s.preset} · ${steps}`),
        h('p', { class: 'gallery-meta' },
          h('time', { datetime: s.created }, formatDate(s.created)), ' ',
          h('span', { class: `badge badge-${s.status}` }, STATUS_LABELS[s.status]))),
      h('div', { class: 'gallery-actions' },
        h('button', { type: 'button', class: 'open', 'aria-label': `Open “${s.text}”` }, 'Open'),
        h('a', { class: 'download button-link', href: s.thumbnail, download: `imagic-${s.id}.png`,
          'aria-label': `Download the image of “${s.text}”` }, 'Image'),
        h('button', { type: 'button', class: 'delete danger', 'aria-label': `Delete “${s.text}”` }, 'Delete')),
    ];
  }

  private async confirmDelete(button: HTMLButtonElement, id: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!window.confirm(`Delete the session “${s?.text ?? id}”? Its files are removed.`)) return;
    button.disabled = true;
    await this.actions.remove(id);
    button.disabled = false;
  }

  private updateEmpty(): void {
    this.empty.hidden = this.sessions.size > 0;
  }
}
