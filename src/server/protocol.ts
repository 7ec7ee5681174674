// The messages between the server and its compute workers (child processes, src/server/worker.ts):
// the server sends one job at a time per message; a worker answers with progress, then done or error.
import type { ImagicSettings, ModelLoadRecord } from '../pipelines/imagic/index.js';

export interface ModelSpec {
  model: string;
  device: string;
  offline?: boolean;
  threads?: number;
  /** A single-file model: how to load it (its YAML, tokenizer, text-encoder heads). */
  load?: ModelLoadRecord;
}

export interface TrainJob {
  kind: 'train';
  jobId: number;
  /** The session folder (EditSession files, upload.png, renders/). */
  dir: string;
  text: string;
  settings: ImagicSettings;
  /** Render and score the candidates and choose one after training. */
  auto: boolean;
  model: ModelSpec;
}

export interface RenderJob {
  kind: 'render';
  jobId: number;
  dir: string;
  eta: number;
  seed: number;
  steps: number;
  guidance: number;
  /** Where the PNG goes (written atomically). */
  out: string;
  model: ModelSpec;
}

export interface CompareJob {
  kind: 'compare';
  jobId: number;
  dir: string;
  text: string;
  strength: number;
  steps: number;
  guidance: number;
  /** SDEdit's and DDIM inversion's seed. */
  seed: number;
  /** Their PNGs. */
  out: { sdedit: string; ddim: string };
  model: ModelSpec;
}

/** Loads the model and a trained session into the render worker ahead of its first render. */
export interface PreloadJob {
  kind: 'preload';
  jobId: number;
  dir: string;
  model: ModelSpec;
}

export type Job = TrainJob | RenderJob | CompareJob | PreloadJob;

export type ToWorker = Job | { kind: 'cancel'; jobId: number };

export interface AutoResult {
  candidates: { eta: number; seed: number; alignment: number; preservation: number; file: string }[];
  choice: { eta: number; seed: number; alignment: number; preservation: number };
  inputAlignment: number;
  threshold: number;
  clip: string;
}

export interface TrainResult {
  interrupted: boolean;
  auto: AutoResult | null;
}

export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'stage'; jobId: number; stage: 'A' | 'B' | 'choose'; total: number; startAt: number }
  | { kind: 'step'; jobId: number; stage: 'A' | 'B' | 'choose'; step: number; total: number; loss: number | null }
  | { kind: 'log'; jobId: number; message: string }
  | { kind: 'done'; jobId: number; result: TrainResult | { ms: number } | null }
  | { kind: 'error'; jobId: number; message: string };
