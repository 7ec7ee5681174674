// `imagic serve --queue`: the web editor hands its trainings to the Redis queue of `imagic batch` (the
// same job format, src/queue/job.ts) for `imagic worker`s, which write the session into the server's
// session folder (a folder they share with the server) and report training progress through Redis.
// The server's own render worker renders from the session as usual once the job is done.
import type { ModelLoadRecord } from '../pipelines/imagic/index.js';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Job, Queue, QueueEvents } from 'bullmq';
import { JOB_VERSION, type RowJob } from '../queue/job.js';
import { QUEUE_NAME, redisConnection, type QueueProgress } from '../queue/redis.js';
import { renderFile, sessionFiles } from './paths.js';
import type { AutoResult, TrainResult } from './protocol.js';
import type { SessionRecord } from './store.js';

export interface QueueStep {
  stage: 'A' | 'B' | 'choose';
  step: number;
  total: number;
  loss: number | null;
  /** The first report of a stage. */
  startAt?: number;
}

/** What a worker's result and the edit's metrics report (output-metrics.json) say. */
interface RowOutcome {
  status: 'ok' | 'failed';
  error: string | null;
}

interface MetricsJson {
  inputAlignment?: number;
  choice: { eta: number; seed: number; alignment: number; preservation: number; threshold: number } | null;
  candidates: { eta: number; seed: number; alignment: number; preservation: number; file: string }[];
}

export class QueueTrainer {
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  /** Per session being followed: stops following (its job was taken off the queue). */
  private readonly aborts = new Map<string, () => void>();

  constructor(readonly url: string, private readonly root: string, log: (m: string) => void, private readonly loadOf: (model: string) => ModelLoadRecord | undefined = () => undefined) {
    this.queue = new Queue(QUEUE_NAME, { connection: redisConnection(url, log) });
    this.events = new QueueEvents(QUEUE_NAME, { connection: redisConnection(url, () => {}) });
    this.queue.on('error', () => {});
    this.events.on('error', () => {});
  }

  /** The job of a session: one per session, so a restarted server follows the job it handed over before. */
  static jobId(r: SessionRecord): string {
    return `serve.${r.id}`;
  }

  private rowJob(r: SessionRecord, dir: string): RowJob {
    const s = r.settings;
    return {
      version: JOB_VERSION, batchId: `${r.id}0000`, outDir: path.join(this.root, 'queue'), session: dir,
      row: { index: 0, key: `000-${r.id}`, image: sessionFiles(dir).upload, imageName: 'upload.png', target: r.text, ...(r.auto ? {} : { eta: s.eta, seed: 0 }) },
      settings: {
        model: r.model, preset: r.preset, stepsA: s.stepsA, stepsB: s.stepsB, lrA: s.lrA, lrB: s.lrB, train: s.train, trainSeed: s.seed, steps: s.steps, guidance: s.guidanceScale,
        checkpointEvery: s.checkpointEvery, baselines: false, strength: 0.6, auto: r.auto, ...this.loadOf(r.model),
      },
    };
  }

  /** Hands the training over (or follows the job already there) and resolves when a worker has finished it. */
  async train(r: SessionRecord, dir: string, onStep: (s: QueueStep) => void): Promise<TrainResult> {
    const job = this.rowJob(r, dir);
    await mkdir(job.outDir, { recursive: true });
    const id = QueueTrainer.jobId(r);
    let existing = await this.queue.getJob(id);
    const state = existing ? await existing.getState() : null;
    if (existing && (state === 'completed' || state === 'failed')) {
      // A finished job of an earlier attempt (the session was resumed): run it again.
      await existing.remove();
      existing = undefined;
    }
    const handed = existing ?? await this.queue.add('row', job, { jobId: id, attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false });
    let stage: 'A' | 'B' | null = null;
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
      if (jobId !== id) return;
      const p = data as QueueProgress;
      if (!p || (p.stage !== 'A' && p.stage !== 'B') || !Array.isArray(p.losses)) return;
      const first = p.step - p.losses.length + 1;
      p.losses.forEach((loss, i) => {
        const step = first + i;
        onStep({ stage: p.stage, step, total: p.total, loss, ...(stage !== p.stage ? { startAt: step - 1 } : {}) });
        stage = p.stage;
      });
      if (p.stage === 'B' && p.step === p.total) onStep({ stage: 'choose', step: 0, total: 0, loss: null, startAt: 0 });
    };
    this.events.on('progress', onProgress);
    let result: RowOutcome;
    try {
      const removed = new Promise<never>((_, reject) => this.aborts.set(r.id, () => reject(new Error('cancelled'))));
      const rv = await Promise.race([(handed as Job).waitUntilFinished(this.events), removed]);
      result = typeof rv === 'string' ? JSON.parse(rv) as RowOutcome : rv as RowOutcome;
    } finally {
      this.events.off('progress', onProgress);
      this.aborts.delete(r.id);
    }
    if (result.status !== 'ok') throw new Error(result.error ?? 'the queue worker failed the edit');
    return { interrupted: false, auto: r.auto ? await this.collect(r, dir, job) : null };
  }

  /** The automatic choice the worker made, from its metrics report; its candidates go into the render cache. */
  private async collect(r: SessionRecord, dir: string, job: RowJob): Promise<AutoResult | null> {
    const rowDir = path.join(job.outDir, 'rows', job.row.key);
    let m: MetricsJson;
    try {
      m = JSON.parse(await readFile(path.join(rowDir, 'output-metrics.json'), 'utf8')) as MetricsJson;
    } catch {
      return null; // no CLIP on the worker's side: no choice
    }
    if (!m.choice) return null;
    const s = r.settings;
    await mkdir(sessionFiles(dir).renders, { recursive: true });
    const candidates: AutoResult['candidates'] = [];
    for (const c of m.candidates) {
      const file = renderFile(dir, { eta: c.eta, seed: c.seed, steps: s.steps, guidance: s.guidanceScale });
      await copyFile(path.resolve(rowDir, c.file), file);
      candidates.push({ eta: c.eta, seed: c.seed, alignment: c.alignment, preservation: c.preservation, file });
    }
    const k = m.choice;
    return { candidates, choice: { eta: k.eta, seed: k.seed, alignment: k.alignment, preservation: k.preservation }, inputAlignment: m.inputAlignment ?? NaN, threshold: k.threshold, clip: 'the queue worker\'s' };
  }

  /** Takes a job that no worker has started off the queue; false when it runs already. */
  async cancel(r: SessionRecord): Promise<boolean> {
    const job = await this.queue.getJob(QueueTrainer.jobId(r));
    if (!job) return true;
    const state = await job.getState();
    if (state === 'active') return false;
    await job.remove();
    this.aborts.get(r.id)?.();
    return true;
  }

  async close(): Promise<void> {
    await Promise.all([this.queue.close(), this.events.close()]);
  }
}
