// The input card: an image (dropped, picked and uploaded at once, or an example), the target text,
// model, preset and advanced settings; "Edit" creates the session. Input is kept on any error.
import type { EditSettings, NewSession, Options, PresetInfo, PresetName, SessionDetail } from '../../src/server/api.js';
import { createSession, uploadFile } from './api.js';
import { attempt, byId, clearError, h, showError } from './dom.js';

/** The advanced number inputs: element id, EditSettings key, integer or not. */
const FIELDS = [
  ['steps-a', 'stepsA', true],
  ['steps-b', 'stepsB', true],
  ['lr-a', 'lrA', false],
  ['lr-b', 'lrB', false],
  ['seed', 'seed', true],
  ['steps', 'steps', true],
  ['guidance', 'guidanceScale', false],
] as const;

type FieldKey = (typeof FIELDS)[number][1];

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;
}

/** A bad advanced setting, with the field to focus. */
class FieldError extends Error {
  constructor(readonly field: HTMLInputElement, message: string) {
    super(message);
  }
}

export class InputView {
  private readonly fileInput = byId('file-input', HTMLInputElement);
  private readonly dropZone = byId('drop-zone', HTMLElement);
  private readonly preview = byId('input-preview', HTMLImageElement);
  private readonly uploadStatus = byId('upload-status', HTMLElement);
  private readonly examples = byId('examples', HTMLElement);
  private readonly text = byId('target-text', HTMLInputElement);
  private readonly model = byId('model', HTMLInputElement);
  private readonly preset = byId('preset', HTMLSelectElement);
  private readonly auto = byId('auto', HTMLInputElement);
  private readonly start = byId('start', HTMLButtonElement);
  private options: Options | null = null;
  /** An upload id or `example:<name>`. */
  private input: string | null = null;
  private previewUrl: string | null = null;
  private uploading = 0;

  constructor(private readonly created: (detail: SessionDetail) => void) {
    this.fileInput.addEventListener('change', () => {
      const file = this.fileInput.files?.[0];
      this.fileInput.value = ''; // choosing the same file again fires `change` again
      if (file) void this.upload(file);
    });
    this.dropZone.addEventListener('dragover', (e) => {
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
      this.dropZone.classList.add('dragging');
    });
    this.dropZone.addEventListener('dragleave', () => this.dropZone.classList.remove('dragging'));
    this.dropZone.addEventListener('drop', (e) => {
      e.preventDefault();
      this.dropZone.classList.remove('dragging');
      const file = e.dataTransfer?.files[0];
      if (file) void this.upload(file);
      else showError('Drop an image file (PNG, JPEG or WebP).');
    });
    this.examples.addEventListener('click', (e) => {
      const button = e.target instanceof Element ? e.target.closest<HTMLButtonElement>('button[data-example]') : null;
      const name = button?.dataset.example;
      if (name) this.chooseExample(name);
    });
    this.preset.addEventListener('change', () => this.showPresetValues());
    byId('edit-form', HTMLFormElement).addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
  }

  setOptions(options: Options): void {
    this.options = options;
    this.model.placeholder = options.defaultModel;
    this.preset.replaceChildren(...options.presets.map((p) => new Option(p.name, p.name, false, p.name === options.defaultPreset)));
    this.preset.value = options.defaultPreset;
    this.showPresetValues();
    this.examples.replaceChildren(...options.examples.map((ex) => h('button', {
      type: 'button', class: 'example', 'data-example': ex.name, 'aria-pressed': 'false', title: ex.suggestion,
    }, h('img', { src: ex.url, alt: '', width: 64, height: 64 }), h('span', {}, ex.caption))));
    byId('examples-box', HTMLElement).hidden = options.examples.length === 0;
    this.start.disabled = false;
  }

  private chosenPreset(): PresetInfo | undefined {
    return this.options?.presets.find((p) => p.name === this.preset.value);
  }

  private showPresetValues(): void {
    const p = this.chosenPreset();
    for (const [id, key] of FIELDS) {
      const value = p && key !== 'seed' ? p[key] : undefined;
      byId(id, HTMLInputElement).placeholder = value === undefined ? 'preset' : String(value);
    }
  }

  private async upload(file: File): Promise<void> {
    const max = this.options?.maxUploadBytes;
    if (max !== undefined && file.size > max) {
      showError(`${file.name} is ${formatBytes(file.size)}; the largest upload is ${formatBytes(max)}.`);
      return;
    }
    const ticket = ++this.uploading;
    this.start.disabled = true;
    this.dropZone.setAttribute('aria-busy', 'true');
    this.uploadStatus.textContent = `Uploading ${file.name}…`;
    const upload = await attempt(() => uploadFile(file));
    if (ticket !== this.uploading) return; // a later file superseded this one
    this.dropZone.removeAttribute('aria-busy');
    this.start.disabled = this.options === null;
    if (!upload) {
      this.uploadStatus.textContent = this.input ? 'Upload failed: the previous image stays selected.' : 'Upload failed.';
      return;
    }
    clearError();
    this.input = upload.id;
    this.setPreview(URL.createObjectURL(file), file.name, true);
    this.uploadStatus.textContent = `${file.name} · ${upload.width}×${upload.height} ${upload.format}`;
    this.markExample(null);
  }

  private chooseExample(name: string): void {
    const ex = this.options?.examples.find((e) => e.name === name);
    if (!ex) return;
    this.uploading++; // an upload still running no longer replaces this choice
    this.dropZone.removeAttribute('aria-busy');
    this.start.disabled = false;
    this.input = `example:${ex.name}`;
    this.setPreview(ex.url, ex.caption, false);
    this.uploadStatus.textContent = `Example: ${ex.caption}`;
    this.markExample(ex.name);
    if (this.text.value.trim() === '') this.text.value = ex.suggestion;
  }

  private setPreview(url: string, alt: string, owned: boolean): void {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = owned ? url : null;
    this.preview.src = url;
    this.preview.alt = `Input: ${alt}`;
    this.preview.hidden = false;
    this.dropZone.classList.add('has-image');
  }

  private markExample(name: string | null): void {
    for (const b of this.examples.querySelectorAll<HTMLButtonElement>('button[data-example]')) {
      b.setAttribute('aria-pressed', String(b.dataset.example === name));
    }
  }

  /** The advanced settings the user filled in; throws with a message naming a bad field. */
  private settings(): EditSettings {
    const out: EditSettings = {};
    for (const [id, key, integer] of FIELDS) {
      const el = byId(id, HTMLInputElement);
      const label = document.querySelector(`label[for="${id}"]`)?.textContent?.trim() ?? id;
      if (el.value.trim() === '') {
        if (el.validity.badInput) throw new FieldError(el, `${label}: not a number.`);
        continue;
      }
      const v = Number(el.value);
      if (!Number.isFinite(v) || (integer && !Number.isInteger(v))) {
        throw new FieldError(el, `${label}: ${integer ? 'a whole number' : 'a number'} please.`);
      }
      (out as Record<FieldKey, number>)[key] = v;
    }
    const train = byId('train', HTMLSelectElement).value;
    if (train === 'all' || train === 'attention' || train === 'lora') out.train = train;
    out.auto = this.auto.checked;
    return out;
  }

  private async submit(): Promise<void> {
    if (!this.input) {
      showError('Choose an image (drop one, pick a file) or an example first.');
      this.fileInput.focus();
      return;
    }
    const text = this.text.value.trim();
    if (text === '') {
      showError('Enter the target text: what the edited image should show.');
      this.text.focus();
      return;
    }
    let settings: EditSettings;
    try {
      settings = this.settings();
    } catch (e) {
      showError(e);
      if (e instanceof FieldError) {
        byId('advanced', HTMLDetailsElement).open = true;
        e.field.focus();
      }
      return;
    }
    const body: NewSession = { input: this.input, text, settings };
    if (this.preset.value !== '') body.preset = this.preset.value as PresetName;
    const model = this.model.value.trim();
    if (model !== '') body.model = model;
    this.start.disabled = true;
    const detail = await attempt(() => createSession(body));
    this.start.disabled = false;
    if (!detail) return;
    clearError();
    this.created(detail);
  }
}
