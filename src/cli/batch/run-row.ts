// One row of a batch, with the same code as `imagic edit` (or `imagic compare` with --baselines): its
// files go to <out>/rows/<key>/, its session resumes where an earlier run (or a killed worker) left it,
// and any failure becomes the row's result instead of stopping the batch.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readImage } from '../../io/image.js';
import { PRESETS, defaultPreset, resolveClipSource } from '../../pipelines/imagic/index.js';
import { checkEdit, isShapesModel, readAttributes, type ShapeAttributes } from '../../shapes/index.js';
import { compare } from '../compare.js';
import { edit } from '../edit.js';
import type { MetricsReport } from '../metrics.js';
import type { RowJob } from '../../queue/job.js';

export interface RowResult {
  version: 1;
  key: string;
  index: number;
  status: 'ok' | 'failed';
  error: string | null;
  image: string;
  target: string;
  /** What the row ran with: the batch's settings with the row's own preset (the model's default preset when neither gives one). */
  settings: { model: string; preset: string; stepsA: number | null; stepsB: number | null; steps: number | null; guidance: number | null; baselines: boolean; strength: number | null };
  /** Paths relative to the out dir. */
  files: { input: string | null; output: string | null; sdedit: string | null; ddim: string | null; sheet: string | null; session: string };
  eta: number | null;
  /** -1: the input's inverted noise. */
  seed: number | null;
  alignment: number | null;
  preservation: number | null;
  baselines: { method: string; alignment: number; preservation: number }[];
  /** Shapes-64 only: what the domain's evaluator reads. */
  evaluator: { input: ShapeAttributes | null; output: ShapeAttributes | null; success: boolean; preserved: boolean } | null;
  /** Where the session was when this run started (a resumed row: stage A done, stage B at step n). */
  resumedFrom: { stageA: boolean; stageB: number } | null;
  worker: string;
  device: string;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  /** When the submitting command received it (its clock; with --queue, after the trip through Redis). */
  receivedAt?: string;
}

export interface RowEnv {
  device: string;
  threads?: number;
  offline?: boolean;
}

export const rowDir = (outDir: string, key: string) => path.join(outDir, 'rows', key);

function hasClip(model: string, clipModel: string | undefined): boolean {
  try {
    resolveClipSource(model, clipModel, true);
    return true;
  } catch {
    return false;
  }
}

export type RowStep = (stage: 'A' | 'B', step: number, total: number, loss: number) => void;

/** The session folder of a row: the job's own, else <out>/rows/<key>/session. */
export const rowSession = (job: RowJob) => job.session ?? path.join(rowDir(job.outDir, job.row.key), 'session');

/** A row's result before anything ran: what the row asked for, no files, no scores; started now. */
export function rowResult(job: RowJob, worker: string, device: string): RowResult {
  const { row, settings: s, outDir } = job;
  const now = new Date().toISOString();
  return {
    version: 1, key: row.key, index: row.index, status: 'ok', error: null, image: row.imageName, target: row.target,
    settings: {
      model: s.model, preset: row.preset ?? s.preset ?? defaultPreset(s.model), stepsA: s.stepsA ?? null, stepsB: s.stepsB ?? null, steps: s.steps ?? null,
      guidance: s.guidance ?? null, baselines: s.baselines, strength: s.baselines ? s.strength : null,
    },
    files: { input: null, output: null, sdedit: null, ddim: null, sheet: null, session: path.relative(outDir, rowSession(job)) },
    eta: row.eta ?? null, seed: row.seed ?? null, alignment: null, preservation: null, baselines: [], evaluator: null, resumedFrom: null,
    worker, device, startedAt: now, finishedAt: now, seconds: 0,
  };
}

export async function runRow(job: RowJob, env: RowEnv, onStep?: RowStep): Promise<RowResult> {
  const t0 = Date.now();
  const { row, settings: s, outDir } = job;
  const dir = rowDir(outDir, row.key);
  const rel = (f: string | null) => (f && existsSync(f) ? path.relative(outDir, f) : null);
  const session = rowSession(job);
  const base = rowResult(job, `${os.hostname()}:${process.pid}`, env.device);
  const finish = (r: RowResult): RowResult => ({ ...r, finishedAt: new Date().toISOString(), seconds: Math.round((Date.now() - t0) / 100) / 10 });
  try {
    mkdirSync(dir, { recursive: true });
    if (existsSync(path.join(session, 'session.json'))) {
      const p = (JSON.parse(readFileSync(path.join(session, 'session.json'), 'utf8')) as { progress: { stageA: boolean; stageB: number } }).progress;
      base.resumedFrom = { stageA: p.stageA, stageB: p.stageB };
    }
    const metrics = hasClip(s.model, s.clipModel);
    const auto = metrics && (s.auto ?? true);
    const args = {
      model: s.model, config: s.config, tokenizer: s.tokenizer, textEncoderHeads: s.textEncoderHeads, clipModel: s.clipModel, dtype: 'float32' as const, device: env.device, threads: env.threads, offline: env.offline, quiet: true, force: true, session,
      preset: row.preset ?? s.preset, stepsA: s.stepsA, stepsB: s.stepsB, lrA: s.lrA, lrB: s.lrB, train: s.train, seed: s.trainSeed, steps: s.steps, guidance: s.guidance,
      checkpointEvery: s.checkpointEvery, onStep,
      // Without an eta: the automatic choice, else the preset's eta.
      etas: row.eta !== undefined ? [row.eta] : auto ? ('auto' as const) : [PRESETS[row.preset ?? s.preset ?? defaultPreset(s.model)].eta],
      seeds: row.seed !== undefined ? [row.seed] : undefined, metrics,
    };
    let report: MetricsReport | null;
    let output: string;
    if (s.baselines) {
      const sheet = path.join(dir, 'compare.png');
      const r = await compare(row.image, row.target, { ...args, output: sheet, strength: s.strength, sourceText: row.source });
      if (r.interrupted) throw new Error('interrupted');
      report = r.report;
      output = path.join(dir, 'compare-imagic.png');
      base.files.sheet = rel(sheet);
      base.files.sdedit = rel(path.join(dir, 'compare-sdedit.png'));
      base.files.ddim = rel(path.join(dir, 'compare-ddim-inversion.png'));
    } else {
      output = path.join(dir, 'output.png');
      const r = await edit(row.image, row.target, { ...args, output });
      if (r.interrupted) throw new Error('interrupted');
      report = r.report;
    }
    base.files.output = rel(output);
    base.files.input = rel(path.join(session, 'input.png'));
    if (report) {
      const c = report.choice ?? report.candidates[0];
      if (c) Object.assign(base, { eta: c.eta, seed: c.seed, alignment: c.alignment, preservation: c.preservation });
      base.baselines = report.baselines.map((b) => ({ method: b.method, alignment: b.alignment, preservation: b.preservation }));
    }
    if (isShapesModel(s.model) && base.files.input) {
      const input = readAttributes(await readImage(path.join(session, 'input.png')));
      const out = readAttributes(await readImage(output));
      const k = checkEdit(input, out, row.target);
      base.evaluator = { input: input.attributes, output: out.attributes, success: k.success, preserved: k.preserved };
    }
    return finish(base);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n').slice(0, 6).join('\n');
    if (msg === 'interrupted') throw e; // not a result: the row stays unfinished
    return finish({ ...base, status: 'failed', error: msg });
  }
}
