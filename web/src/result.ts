// The result card (#result): the edited image re-rendered for the eta slider and the seed (at once when
// idle; during a render only the latest change is kept and rendered next, so a drag never queues a
// render per tick), download links, and the sweep and plot of the automatic choice.
import type { SessionDetail } from '../../src/server/api.js';
import { downloadUrl, fetchRender, fileUrl, renderUrl } from './api.js';
import { byId, showError } from './dom.js';
import { formatEta, seedLabel } from './format.js';
import { PlotView } from './plot.js';
import { SweepView } from './sweep.js';

export class ResultView {
  private readonly card = byId('result', HTMLElement);
  private readonly figure = byId('result-figure', HTMLElement);
  private readonly img = byId('result-img', HTMLImageElement);
  private readonly inputImg = byId('result-input', HTMLImageElement);
  private readonly slider = byId('eta-slider', HTMLInputElement);
  private readonly etaValue = byId('eta-value', HTMLOutputElement);
  private readonly seedSelect = byId('seed-select', HTMLSelectElement);
  private readonly useChoice = byId('use-choice', HTMLButtonElement);
  private readonly choiceInfo = byId('choice-info', HTMLElement);
  private readonly settingsInfo = byId('render-settings', HTMLElement);
  private readonly info = byId('render-info', HTMLElement);
  private readonly downloadImage = byId('download-image', HTMLAnchorElement);
  private readonly downloadSession = byId('download-session', HTMLAnchorElement);
  private readonly sweep: SweepView;
  private readonly plot: PlotView;
  private detail: SessionDetail | null = null;
  /** The session the controls were set up for; null again once it leaves `ready`. */
  private initializedFor: string | null = null;
  private controller: AbortController | null = null;
  /** A change came while a render was running: render the controls' values when it ends. */
  private pending = false;
  private changedAt = 0;
  private objectUrl: string | null = null;

  constructor() {
    const pick = (eta: number, seed: number): void => { this.set(eta, seed); this.requestRender(); };
    this.sweep = new SweepView(pick);
    this.plot = new PlotView(pick);
    this.slider.addEventListener('input', () => { this.showEta(); this.requestRender(); });
    this.seedSelect.addEventListener('change', () => this.requestRender());
    this.useChoice.addEventListener('click', () => {
      const choice = this.detail?.choice;
      if (!choice) return;
      this.set(choice.eta, choice.seed);
      this.requestRender();
    });
  }

  show(detail: SessionDetail): void {
    this.detail = detail;
    this.card.hidden = false;
    const { settings, choice } = detail;
    this.settingsInfo.textContent = `${settings.steps} sampling steps, guidance ${settings.guidanceScale}`;
    this.choiceInfo.textContent = choice
      ? `Automatic choice: eta ${formatEta(choice.eta)}, ${seedLabel(choice.seed)} (alignment ${choice.alignment.toFixed(3)}, preservation ${choice.preservation.toFixed(3)})`
      : 'No automatic choice: starting from the preset eta.';
    this.useChoice.disabled = choice === null;
    this.downloadSession.href = downloadUrl(detail.id);
    this.downloadSession.setAttribute('download', `imagic-${detail.id}.tar.gz`);
    this.sweep.show(detail.candidates, choice, () => {
      const seed = Number(this.seedSelect.value);
      return settings.autoEtas.map((eta) => ({
        eta, seed, alignment: NaN, preservation: NaN, url: renderUrl(detail.id, { eta, seed, steps: settings.steps, guidance: settings.guidanceScale }),
      }));
    });
    this.plot.show(detail.candidates, choice, detail.threshold, detail.inputAlignment);
    if (this.initializedFor === detail.id) return;
    this.initializedFor = detail.id;
    // A render of the previous session still running is not shown here.
    this.controller?.abort();
    this.controller = null;
    this.pending = false;
    this.inputImg.src = fileUrl(detail.id, 'input.png');
    this.clearImage();
    if (choice) this.set(choice.eta, choice.seed); else this.set(settings.eta, 0);
    this.requestRender();
  }

  hide(): void {
    this.card.hidden = true;
    this.detail = null;
    this.initializedFor = null;
    this.pending = false;
    this.controller?.abort();
    this.controller = null;
    this.figure.removeAttribute('aria-busy');
    this.sweep.reset();
  }

  private set(eta: number, seed: number): void {
    this.slider.value = String(eta);
    this.seedSelect.value = String(seed);
    if (this.seedSelect.value !== String(seed)) {
      this.seedSelect.append(new Option(seedLabel(seed), String(seed)));
      this.seedSelect.value = String(seed);
    }
    this.showEta();
  }

  private showEta(): void {
    this.etaValue.value = formatEta(Number(this.slider.value));
  }

  /** Marks the change time (for dataset.ms); renders now, or after the running render. */
  private requestRender(): void {
    this.changedAt = performance.now();
    if (this.controller) this.pending = true;
    else void this.render();
  }

  private async render(): Promise<void> {
    const d = this.detail;
    if (!d) return;
    const eta = Number(this.slider.value);
    const seed = Number(this.seedSelect.value);
    const url = renderUrl(d.id, { eta, seed, steps: d.settings.steps, guidance: d.settings.guidanceScale });
    this.downloadImage.href = url;
    this.downloadImage.setAttribute('download', `imagic-${d.id}-eta${formatEta(eta)}-seed${seed}.png`);
    const controller = new AbortController();
    this.controller = controller;
    this.pending = false;
    const startedAt = this.changedAt;
    this.figure.setAttribute('aria-busy', 'true');
    try {
      const r = await fetchRender(url, controller.signal);
      const objectUrl = URL.createObjectURL(r.blob);
      const probe = new Image();
      probe.src = objectUrl;
      try {
        await probe.decode();
      } catch {
        URL.revokeObjectURL(objectUrl);
        throw new Error('The rendered image could not be decoded');
      }
      if (controller !== this.controller) { URL.revokeObjectURL(objectUrl); return; }
      this.img.src = objectUrl;
      if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
      this.objectUrl = objectUrl;
      const ms = Math.round(performance.now() - startedAt);
      Object.assign(this.img.dataset, {
        eta: formatEta(eta), seed: String(seed), ms: String(ms), serverMs: r.serverMs, cache: r.cache,
      });
      this.img.alt = `“${d.text}”: eta ${formatEta(eta)}, ${seedLabel(seed)}`;
      this.info.textContent = `rendered in ${ms} ms (server ${r.serverMs || '?'} ms, cache ${r.cache || '?'})`;
      this.sweep.markCurrent(eta, seed);
    } catch (e) {
      if (controller === this.controller) showError(e);
    } finally {
      if (controller === this.controller) {
        this.controller = null;
        if (this.pending) void this.render();
        else this.figure.removeAttribute('aria-busy');
      }
    }
  }

  private clearImage(): void {
    this.img.removeAttribute('src');
    for (const k of ['eta', 'seed', 'ms', 'serverMs', 'cache']) delete this.img.dataset[k];
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
    this.info.textContent = '';
  }
}
