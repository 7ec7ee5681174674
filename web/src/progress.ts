// The training card (#training): status, progress bar with elapsed time and ETA, the loss chart fed by
// `step` events, and the cancel / resume buttons.
import type { Progress, ServerEvent, SessionDetail } from '../../src/server/api.js';
import { byId } from './dom.js';
import { formatDuration, formatLeft, isActive, statusSentence } from './format.js';
import { LossChart } from './loss-chart.js';

export type StepEvent = Extract<ServerEvent, { type: 'step' }>;

export interface TrainingActions {
  cancel(id: string): Promise<void>;
  resume(id: string): Promise<void>;
}

/** Stores the loss of 1-based `step` at index step - 1 (a replayed step overwrites; a gap stays NaN). */
export function recordLoss(losses: number[], step: number, loss: number): void {
  const i = step - 1;
  if (i < 0) return;
  while (losses.length < i) losses.push(Number.NaN);
  losses[i] = loss;
}

/** "stage B 120/150 · 12.3 s elapsed · about 3 s left" (empty when no stage runs). */
export function progressSentence(p: Progress, now: number): string {
  if (p.stage === null) return '';
  const parts = [`${p.stage === 'choose' ? 'choosing' : `stage ${p.stage}`} ${p.step}/${p.total}`];
  if (p.stageStartedAt !== null) {
    const elapsed = Math.max(0, (now - p.stageStartedAt) / 1000);
    parts.push(`${formatDuration(elapsed)} elapsed`);
    const done = p.step - p.stageStartStep;
    if (done > 0 && p.total > p.step) parts.push(formatLeft(((p.total - p.step) * elapsed) / done));
  }
  return parts.filter(Boolean).join(' · ');
}

export class TrainingView {
  private readonly card = byId('training', HTMLElement);
  private readonly title = byId('session-title', HTMLElement);
  private readonly status = byId('status', HTMLElement);
  private readonly bar = byId('progress-bar', HTMLProgressElement);
  private readonly text = byId('progress-text', HTMLElement);
  private readonly announce = byId('progress-announce', HTMLElement);
  private readonly cancelButton = byId('cancel', HTMLButtonElement);
  private readonly resumeButton = byId('resume', HTMLButtonElement);
  private readonly chart = new LossChart(byId('loss-chart', HTMLCanvasElement));
  private detail: SessionDetail | null = null;
  private queue: string[] = [];
  private timer = 0;
  private lastTextAt = 0;
  private lastAnnounced = '';

  constructor(actions: TrainingActions) {
    const wire = (button: HTMLButtonElement, act: (id: string) => Promise<void>): void => {
      button.addEventListener('click', () => {
        const id = this.detail?.id;
        if (!id) return;
        button.disabled = true;
        void act(id).finally(() => { button.disabled = false; });
      });
    };
    wire(this.cancelButton, actions.cancel);
    wire(this.resumeButton, actions.resume);
  }

  show(detail: SessionDetail): void {
    const fresh = this.detail?.id !== detail.id;
    this.detail = detail;
    this.card.hidden = false;
    this.title.textContent = `“${detail.text}”`;
    this.title.title = `session ${detail.id}`;
    this.chart.set(detail.losses, Math.max(detail.settings.stepsA, detail.settings.stepsB));
    if (fresh) this.lastAnnounced = '';
    this.render(true);
  }

  hide(): void {
    this.detail = null;
    this.card.hidden = true;
    this.stopTimer();
  }

  /** The server's queue, for "queued (2nd in line)". */
  setQueue(queued: string[]): void {
    this.queue = queued;
    if (this.detail) this.renderStatus();
  }

  step(ev: StepEvent): void {
    const d = this.detail;
    if (!d || ev.id !== d.id) return;
    if (ev.loss !== null && ev.stage !== 'choose') {
      recordLoss(d.losses[ev.stage], ev.step, ev.loss);
      this.chart.schedule();
    }
    const p = d.progress;
    if (p.stage !== ev.stage) {
      // the `session` event with the stage's real start follows; until then count from now
      p.stage = ev.stage;
      p.stageStartedAt = Date.now();
      p.stageStartStep = Math.max(0, ev.step - 1);
    }
    p.step = ev.step;
    p.total = ev.total;
    if (d.status === 'queued') d.status = ev.stage === 'choose' ? 'choosing' : 'training';
    this.render(false);
  }

  private render(force: boolean): void {
    const d = this.detail;
    if (!d) return;
    this.renderStatus();
    const p = d.progress;
    if (d.status === 'ready') {
      this.bar.max = 1;
      this.bar.value = 1;
    } else if (p.total > 0 && p.stage !== null) {
      this.bar.max = p.total;
      this.bar.value = Math.min(p.step, p.total);
    } else if (isActive(d.status)) {
      this.bar.removeAttribute('value'); // indeterminate while queued
    } else {
      this.bar.value = 0;
    }
    const now = Date.now();
    if (force || now - this.lastTextAt > 250) this.renderText(now);
    if (isActive(d.status)) this.startTimer(); else this.stopTimer();
  }

  private renderStatus(): void {
    const d = this.detail;
    if (!d) return;
    const position = this.queue.indexOf(d.id);
    this.status.textContent = statusSentence(d, position < 0 ? null : position);
    this.status.dataset.status = d.status;
    this.cancelButton.hidden = !isActive(d.status);
    this.resumeButton.hidden = d.status !== 'cancelled' && d.status !== 'failed';
  }

  private renderText(now: number): void {
    const d = this.detail;
    if (!d) return;
    this.lastTextAt = now;
    const p = d.progress;
    let text: string;
    if (d.status === 'ready') {
      text = `trained: stage A ${d.settings.stepsA} steps, stage B ${d.settings.stepsB} steps`;
    } else if (isActive(d.status)) {
      text = progressSentence(p, now);
    } else {
      text = p.stage === null ? '' : `stopped at ${p.stage === 'choose' ? 'choosing' : `stage ${p.stage}`} ${p.step}/${p.total}`;
    }
    this.text.textContent = text;
    // screen readers hear the stage and every 10 %, not every step
    const tenth = p.total > 0 ? Math.floor((10 * p.step) / p.total) * 10 : 0;
    const said = isActive(d.status) && p.stage !== null ? `${p.stage === 'choose' ? 'choosing' : `stage ${p.stage}`} ${tenth}% done` : '';
    if (said !== this.lastAnnounced) {
      this.lastAnnounced = said;
      this.announce.textContent = said;
    }
  }

  private startTimer(): void {
    if (this.timer === 0) this.timer = window.setInterval(() => this.renderText(Date.now()), 1000);
  }

  private stopTimer(): void {
    if (this.timer !== 0) window.clearInterval(this.timer);
    this.timer = 0;
  }
}
