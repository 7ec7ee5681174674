// Text for the page: durations, dates, numbers and session status labels.
import type { SessionStatus, SessionSummary } from '../../src/server/api.js';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** ETA wording: "about 3 s left", coarser as it grows. */
export function formatLeft(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s left`;
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

export function formatDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export const formatEta = (eta: number): string => eta.toFixed(2);

export const seedLabel = (seed: number): string => (seed < 0 ? 'inverted noise' : `seed ${seed}`);

export const STATUS_LABELS: Record<SessionStatus, string> = {
  queued: 'queued',
  training: 'training',
  choosing: 'choosing',
  ready: 'ready',
  cancelled: 'cancelled',
  failed: 'failed',
};

/** The sentence in #status: "training stage B", "queued (2nd in line)", "failed: <error>". */
export function statusSentence(s: SessionSummary, queuePosition: number | null): string {
  switch (s.status) {
    case 'queued':
      return queuePosition === null ? 'Queued' : `Queued (${ordinal(queuePosition + 1)} in line)`;
    case 'training':
      return s.progress.stage === 'A' || s.progress.stage === 'B' ? `Training stage ${s.progress.stage}` : 'Training';
    case 'choosing':
      return 'Choosing eta and seed (rendering and scoring candidates)';
    case 'ready':
      return 'Ready';
    case 'cancelled':
      return 'Cancelled';
    case 'failed':
      return `Failed${s.error ? `: ${s.error}` : ''}`;
  }
}

function ordinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}

export const isActive = (status: SessionStatus): boolean =>
  status === 'queued' || status === 'training' || status === 'choosing';

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}
