// A session record as the API shows it: settings in the page's terms, and URLs for its pictures.
import { existsSync } from 'node:fs';
import type { CompareState, SessionDetail, SessionSummary } from './api.js';
import { renderFile, sessionFiles } from './paths.js';
import type { SessionRecord } from './store.js';

const fmtEta = (eta: number) => eta.toFixed(2);

export function renderUrl(r: SessionRecord, eta: number, seed: number): string {
  return `/api/sessions/${r.id}/render?eta=${fmtEta(eta)}&seed=${seed}&steps=${r.settings.steps}&guidance=${r.settings.guidanceScale}`;
}

export function summary(r: SessionRecord): SessionSummary {
  const s = r.settings;
  return {
    id: r.id, revision: r.revision, text: r.text, model: r.model, preset: r.preset,
    settings: { stepsA: s.stepsA, stepsB: s.stepsB, lrA: s.lrA, lrB: s.lrB, train: s.train, seed: s.seed, steps: s.steps, guidanceScale: s.guidanceScale, auto: r.auto, eta: s.eta, autoEtas: [...s.autoEtas] },
    status: r.status, error: r.error, created: r.created, updated: r.updated, progress: { ...r.progress }, choice: r.choice,
    thumbnail: r.status === 'ready' && r.choice ? renderUrl(r, r.choice.eta, r.choice.seed) : `/api/sessions/${r.id}/files/upload.png`,
  };
}

export function compareState(r: SessionRecord, dir: string): CompareState {
  const c = r.compare;
  const f = sessionFiles(dir);
  const ready = c.status === 'ready' && existsSync(f.sdedit) && existsSync(f.ddim);
  const imagic = r.choice ?? { eta: r.settings.eta, seed: 0 };
  return {
    status: c.status, error: c.error, strength: c.strength,
    images: ready ? [
      { label: 'input', url: `/api/sessions/${r.id}/files/input.png` },
      { label: `Imagic (eta ${fmtEta(imagic.eta)}, ${imagic.seed === -1 ? 'inverted noise' : `seed ${imagic.seed}`})`, url: renderUrl(r, imagic.eta, imagic.seed) },
      { label: `SDEdit (strength ${c.strength})`, url: `/api/sessions/${r.id}/files/compare-sdedit.png` },
      { label: 'DDIM inversion', url: `/api/sessions/${r.id}/files/compare-ddim-inversion.png` },
    ] : [],
  };
}

export function detail(r: SessionRecord, dir: string): SessionDetail {
  return {
    ...summary(r), losses: { A: [...r.losses.A], B: [...r.losses.B] },
    candidates: r.candidates.map((c) => ({ ...c, url: renderUrl(r, c.eta, c.seed) })),
    inputAlignment: r.inputAlignment, threshold: r.threshold, compare: compareState(r, dir),
  };
}

/** The files GET /api/sessions/:id/files/:name serves: a fixed list, never a path from the request. */
export function namedFile(r: SessionRecord, dir: string, name: string): string | null {
  const f = sessionFiles(dir);
  switch (name) {
    case 'upload.png': return f.upload;
    case 'input.png': return f.input;
    case 'compare-sdedit.png': return f.sdedit;
    case 'compare-ddim-inversion.png': return f.ddim;
    case 'output.png': {
      const c = r.choice ?? { eta: r.settings.eta, seed: 0 };
      return renderFile(dir, { eta: c.eta, seed: c.seed, steps: r.settings.steps, guidance: r.settings.guidanceScale });
    }
    default: return null;
  }
}
