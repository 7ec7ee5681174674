// The page of `imagic serve`: wires the cards to the API and to the server's events, and keeps the
// open session in the URL hash (#session=<id>) so that a reload reopens it, running job included.
import type { SessionDetail, SessionSummary, Status } from '../../src/server/api.js';
import { ApiFailure, cancelSession, deleteSession, getOptions, getSession, getStatus, listSessions, resumeSession } from './api.js';
import { CompareView } from './compare.js';
import { attempt, byId, clearError, showError } from './dom.js';
import { connectEvents } from './events.js';
import { GalleryView } from './gallery.js';
import { InputView } from './input.js';
import { TrainingView } from './progress.js';
import { ResultView } from './result.js';

let current: SessionDetail | null = null;
/** The session being opened or open (set before its detail arrives). */
let wanted: string | null = null;
let openTicket = 0;
let serverStatus: Status | null = null;
let connected = false;

const training = new TrainingView({
  cancel: async (id) => { const d = await attempt(() => cancelSession(id)); if (d) show(d); },
  resume: async (id) => { const d = await attempt(() => resumeSession(id)); if (d) show(d); },
});
const result = new ResultView();
const compare = new CompareView();
const gallery = new GalleryView({
  open: (id) => { void openSession(id); byId('training', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'start' }); },
  remove: async (id) => {
    if ((await attempt(() => deleteSession(id))) === undefined) return;
    removed(id);
  },
});
const input = new InputView((detail) => {
  gallery.upsert(detail);
  void openSession(detail.id, detail);
});

function hashSession(): string | null {
  const m = /^#session=(.+)$/.exec(location.hash);
  return m?.[1] ? decodeURIComponent(m[1]) : null;
}

function setHash(id: string | null): void {
  if (hashSession() === id) return;
  if (id) location.hash = `session=${encodeURIComponent(id)}`;
  else history.replaceState(null, '', location.pathname + location.search);
}

async function openSession(id: string, known?: SessionDetail): Promise<void> {
  const ticket = ++openTicket;
  wanted = id;
  setHash(id);
  gallery.markOpen(id);
  const detail = known ?? (await attempt(() => getSession(id)));
  if (ticket !== openTicket) return;
  if (detail) {
    show(detail);
    // Events newer than this copy came before it (a fast job, a slow response): fetch the newest.
    if (gallery.revision(id) > detail.revision) void refreshOpen();
  } else if (current?.id !== id) closeSession();
}

function closeSession(): void {
  openTicket++;
  current = null;
  wanted = null;
  setHash(null);
  gallery.markOpen(null);
  training.hide();
  result.hide();
  compare.hide();
}

/** Shows a detail of the open session; losses from `step` events newer than it are kept. */
function show(detail: SessionDetail): void {
  if (wanted !== detail.id) return;
  if (current?.id === detail.id && current.revision > detail.revision) return; // an older copy, arriving late
  if (current?.id === detail.id) {
    for (const stage of ['A', 'B'] as const) {
      const mine = current.losses[stage];
      const theirs = detail.losses[stage];
      if (mine.length > theirs.length) theirs.push(...mine.slice(theirs.length));
    }
  }
  current = detail;
  training.show(detail);
  if (detail.status === 'ready') {
    result.show(detail);
    compare.show(detail.id, detail.compare);
  } else {
    result.hide();
    compare.hide();
  }
}

let refreshing = false;
let refreshAgain = false;

/** Re-fetches the open session's detail (one request at a time; calls meanwhile make one more). */
async function refreshOpen(): Promise<void> {
  if (!current) return;
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  const id = current.id;
  try {
    const detail = await getSession(id);
    if (current?.id === id) show(detail);
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 404 && current?.id === id) removed(id);
    else showError(e);
  } finally {
    refreshing = false;
    if (refreshAgain) { refreshAgain = false; void refreshOpen(); }
  }
}

function removed(id: string): void {
  gallery.remove(id);
  if (wanted === id) closeSession();
}

function sessionChanged(s: SessionSummary): void {
  gallery.upsert(s);
  if (!current || current.id !== s.id) return;
  const before = current.status;
  show({ ...current, ...s });
  // the summary lacks candidates and the compare state: fetch them when they may have changed
  if (before !== s.status || s.status === 'ready') void refreshOpen();
}

function renderServerStatus(): void {
  const el = byId('server-status', HTMLElement);
  const s = serverStatus;
  const parts: string[] = [];
  if (s) {
    const title = s.training ? gallery.get(s.training)?.text : undefined;
    parts.push(`device ${s.device}`);
    parts.push(s.training ? `training ${title ? `“${title}”` : s.training}` : 'idle');
    parts.push(`${s.queued.length} queued`);
    if (s.renders > 0) parts.push(`${s.renders} rendering`);
    parts.push(`v${s.version}`);
  }
  if (!connected) parts.push(s ? 'reconnecting…' : 'connecting…');
  el.textContent = parts.join(' · ');
  el.classList.toggle('offline', !connected);
}

function statusChanged(s: Status): void {
  serverStatus = s;
  training.setQueue(s.queued);
  renderServerStatus();
}

async function loadLists(): Promise<void> {
  const [status, sessions] = await Promise.all([attempt(getStatus), attempt(listSessions)]);
  if (sessions) gallery.set(sessions);
  if (status) statusChanged(status);
}

async function init(): Promise<void> {
  byId('error-dismiss', HTMLButtonElement).addEventListener('click', clearError);
  connectEvents({
    session: (e) => sessionChanged(e.session),
    step: (e) => training.step(e),
    deleted: (e) => removed(e.id),
    status: (e) => statusChanged(e.status),
    reconnected: () => { void loadLists(); void refreshOpen(); },
    connection: (up) => { connected = up; renderServerStatus(); },
  });
  window.addEventListener('hashchange', () => {
    const id = hashSession();
    if (id === null) { if (wanted !== null) closeSession(); }
    else if (id !== wanted) void openSession(id);
  });
  const id = hashSession();
  if (id) void openSession(id);
  const [options] = await Promise.all([attempt(getOptions), loadLists()]);
  if (options) input.setOptions(options);
}

void init();
