// The HTTP API of `imagic serve`, as types shared by the server (src/server/) and the page (web/src/).
// Types only: no runtime code, so the page's bundle imports nothing from the server.
//
//   GET    /api/status                          Status
//   GET    /api/options                         Options (presets, default model, examples)
//   GET    /api/examples/:name.png              an example input (Shapes-64 renders)
//   POST   /api/uploads          (raw bytes)    Upload          413 too large, 415 not a PNG/JPEG/WebP, 422 undecodable
//   POST   /api/sessions         NewSession     SessionDetail   400 bad settings/text/model, 404 unknown upload
//   GET    /api/sessions                        SessionSummary[] (newest first: the gallery)
//   GET    /api/sessions/:id                    SessionDetail   404
//   DELETE /api/sessions/:id                    204 (cancels its job first)
//   POST   /api/sessions/:id/cancel             SessionDetail   409 when nothing runs
//   POST   /api/sessions/:id/resume             SessionDetail   409 unless cancelled or failed
//   GET    /api/sessions/:id/render?eta=&seed=&steps=&guidance=   image/png (cached per key) 409 not trained
//          headers: x-render-ms (the worker's render time; 0 on a cache hit), x-cache: hit | miss
//   POST   /api/sessions/:id/compare   {strength?}   CompareState   409 not trained
//   GET    /api/sessions/:id/compare            CompareState
//   GET    /api/sessions/:id/files/:name        input.png | output.png | compare-sdedit.png | compare-ddim-inversion.png
//   GET    /api/sessions/:id/download           the session folder as .tar.gz
//   GET    /api/events                          server-sent events: ServerEvent (event name = its `type`)
// Errors: status 4xx/5xx with ApiError. With a token (any bind but loopback), every request carries it
// as `Authorization: Bearer <token>`, `?token=<token>`, or the `imagic_token` cookie that GET /?token= sets.

export interface ApiError {
  error: string;
}

export interface Status {
  version: string;
  /** The device the workers compute on: 'cpu', 'cuda', 'cuda:1'. */
  device: string;
  /** The session whose training runs now, if any. */
  training: string | null;
  /** Sessions waiting to train, in order. */
  queued: string[];
  /** Renders waiting or running. */
  renders: number;
  uptimeS: number;
}

export type PresetName = 'default' | 'thorough' | 'fast' | 'shapes';

/** The settings a page may set; anything left out comes from the preset. */
export interface EditSettings {
  stepsA?: number;
  stepsB?: number;
  lrA?: number;
  lrB?: number;
  /** What stage B trains (default: the preset's): LoRA adapters, all UNet weights, or the attention weights. */
  train?: 'all' | 'attention' | 'lora';
  /** Training seed. */
  seed?: number;
  /** Sampling steps of each render. */
  steps?: number;
  guidanceScale?: number;
  /** Choose eta and seed automatically after training (needs the model's CLIP): default true. */
  auto?: boolean;
}

export interface PresetInfo {
  name: PresetName;
  stepsA: number;
  stepsB: number;
  lrA: number;
  lrB: number;
  train: 'all' | 'attention' | 'lora';
  steps: number;
  guidanceScale: number;
  eta: number;
  autoEtas: number[];
}

export interface Example {
  name: string;
  caption: string;
  /** A target text that makes a good edit of it. */
  suggestion: string;
  url: string;
}

export interface Options {
  defaultModel: string;
  /** The preset used when none is chosen, for the default model. */
  defaultPreset: PresetName;
  presets: PresetInfo[];
  examples: Example[];
  /** Largest upload, in bytes. */
  maxUploadBytes: number;
}

export interface Upload {
  id: string;
  width: number;
  height: number;
  /** 'png' | 'jpeg' | 'webp', sniffed from the bytes. */
  format: string;
}

export interface NewSession {
  /** An upload's id, or `example:<name>`. */
  input: string;
  text: string;
  /** A diffusers folder or a Hub repo id; default Options.defaultModel. */
  model?: string;
  preset?: PresetName;
  settings?: EditSettings;
}

export type SessionStatus = 'queued' | 'training' | 'choosing' | 'ready' | 'cancelled' | 'failed';

export interface Progress {
  /** 'A', 'B' (training), 'choose' (rendering and scoring the candidates), or null. */
  stage: 'A' | 'B' | 'choose' | null;
  step: number;
  total: number;
  /** Date.now() when this stage started (for elapsed time and ETA). */
  stageStartedAt: number | null;
  /** The step at which this stage (re)started: a resumed stage starts above 0. */
  stageStartStep: number;
}

export interface Choice {
  eta: number;
  /** -1: the input's own DDIM-inverted noise. */
  seed: number;
  alignment: number;
  preservation: number;
}

export interface SessionSummary {
  id: string;
  /** Grows with every change: of two copies of a session, the one with the higher revision is newer. */
  revision: number;
  text: string;
  model: string;
  preset: PresetName;
  /** The resolved settings (preset + overrides). */
  settings: Required<EditSettings> & { eta: number; autoEtas: number[] };
  status: SessionStatus;
  error: string | null;
  created: string;
  updated: string;
  progress: Progress;
  choice: Choice | null;
  /** The picture to show for it: the chosen output when there is one, else the input. */
  thumbnail: string;
}

export interface Candidate {
  eta: number;
  seed: number;
  alignment: number;
  preservation: number;
  /** Where its image is served (a render URL, cached). */
  url: string;
}

export interface SessionDetail extends SessionSummary {
  losses: { A: number[]; B: number[] };
  /** The automatic choice's candidates (empty before it or without it). */
  candidates: Candidate[];
  /** The input's own alignment (the rule's floor), when scored. */
  inputAlignment: number | null;
  /** The rule's threshold: candidates at or above it count as edited. */
  threshold: number | null;
  compare: CompareState;
}

export interface CompareState {
  status: 'none' | 'queued' | 'running' | 'ready' | 'failed';
  error: string | null;
  strength: number | null;
  /** URLs of input, Imagic (the chosen or session eta), SDEdit, DDIM inversion, when ready. */
  images: { label: string; url: string }[];
}

export type ServerEvent =
  /** A session changed (status, progress, choice, compare); sent with the whole summary. */
  | { type: 'session'; session: SessionSummary }
  /** One training step: sent for every step, not stored in `session` events. */
  | { type: 'step'; id: string; stage: 'A' | 'B' | 'choose'; step: number; total: number; loss: number | null }
  | { type: 'deleted'; id: string }
  | { type: 'status'; status: Status };
