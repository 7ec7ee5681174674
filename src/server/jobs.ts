// The server's jobs: a training queue (one training at a time per device, on the train worker) and
// renders and baselines on a second worker, so that a slider move is served while a session trains.
// Every change is written to the session's record and announced as a ServerEvent.
import type { ModelLoadRecord } from '../pipelines/imagic/index.js';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { ServerEvent, Status } from './api.js';
import { renderFile, sessionFiles, type RenderKey } from './paths.js';
import type { ModelSpec, TrainResult } from './protocol.js';
import type { SessionRecord, Store } from './store.js';
import { summary } from './views.js';
import { WorkerProcess } from './workers.js';
import { QueueTrainer, type QueueStep } from './queued.js';

/** A request the session's state does not allow (the API answers 409). */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

export interface JobsOptions {
  device: string;
  /** How to load the single-file models the server knows (the default model given with --config/--tokenizer). */
  modelLoads?: Record<string, ModelLoadRecord>;
  /** Hand trainings to this Redis queue (imagic worker) instead of the local train worker. */
  queue?: string;
  /** The data folder (the queue's rows live under it). */
  root?: string;
  offline?: boolean;
  threads?: number;
  version: string;
  log: (m: string) => void;
}

/** Records are written at most this often while steps stream in (and at every stage change). */
const SAVE_EVERY_MS = 2000;

export class Jobs extends EventEmitter<{ event: [ServerEvent] }> {
  private readonly trainer: WorkerProcess;
  private readonly queued: QueueTrainer | null;
  private readonly renderer: WorkerProcess;
  private readonly queue: string[] = [];
  private running: { id: string; jobId: number | null; cancel: boolean } | null = null;
  private readonly renders = new Map<string, Promise<{ ms: number }>>();
  /** Per session: renders and baselines in flight (a deleted session's folder goes when they end). */
  private readonly inFlight = new Map<string, number>();
  private readonly deleting = new Set<string>();
  private readonly started = Date.now();
  private lastSave = 0;
  /** Shutting down: a training stopped now is queued again at the next start, not cancelled. */
  private closing = false;
  private trainDone: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store, private readonly o: JobsOptions) {
    super();
    this.trainer = new WorkerProcess('train', o.log);
    this.renderer = new WorkerProcess('render', o.log);
    this.queued = o.queue ? new QueueTrainer(o.queue, o.root ?? store.root, o.log, (m) => o.modelLoads?.[m]) : null;
  }

  /** After a restart: sessions that were queued or training go back in the queue and resume from disk. */
  resumeUnfinished(): string[] {
    const ids = this.store.list().reverse().filter((r) => r.status === 'queued' || r.status === 'training' || r.status === 'choosing').map((r) => r.id);
    for (const id of ids) {
      const r = this.store.get(id)!;
      r.status = 'queued';
      this.queue.push(id);
    }
    this.pump();
    return ids;
  }

  status(): Status {
    return {
      version: this.o.version, device: this.o.device, training: this.running?.id ?? null, queued: [...this.queue],
      renders: this.renderer.busy, uptimeS: Math.round((Date.now() - this.started) / 1000),
    };
  }

  private modelSpec(r: SessionRecord): ModelSpec {
    const load = this.o.modelLoads?.[r.model];
    return { model: r.model, device: this.o.device, offline: this.o.offline, threads: this.o.threads, ...(load ? { load } : {}) };
  }

  private emitSession(r: SessionRecord): void {
    this.emit('event', { type: 'session', session: summary(r) });
  }

  private async save(r: SessionRecord, announce = true): Promise<void> {
    this.lastSave = Date.now();
    try {
      await this.store.save(r);
    } catch (e) {
      if (this.store.get(r.id)) this.o.log(`warning: cannot save session ${r.id}: ${(e as Error).message}`);
    }
    if (announce) this.emitSession(r);
  }

  async enqueue(r: SessionRecord): Promise<void> {
    r.status = 'queued';
    r.error = null;
    this.queue.push(r.id);
    await this.save(r);
    this.emit('event', { type: 'status', status: this.status() });
    this.pump();
  }

  private pump(): void {
    if (this.running) return;
    const id = this.queue.shift();
    if (id === undefined) return;
    const r = this.store.get(id);
    if (!r) return this.pump();
    this.running = { id, jobId: null, cancel: false };
    this.trainDone = this.train(r).finally(() => {
      this.running = null;
      this.emit('event', { type: 'status', status: this.status() });
      if (this.deleting.has(id)) void this.removeWhenIdle(id);
      this.pump();
    });
    this.emit('event', { type: 'status', status: this.status() });
  }

  private async train(r: SessionRecord): Promise<void> {
    r.status = 'training';
    await this.save(r);
    const progress = (m: QueueStep) => {
      if (m.startAt !== undefined) {
        r.status = m.stage === 'choose' ? 'choosing' : 'training';
        r.progress = { stage: m.stage, step: m.startAt, total: m.total, stageStartedAt: Date.now(), stageStartStep: m.startAt };
        // Losses after the last checkpoint are recomputed by the resumed stage.
        if (m.stage !== 'choose') r.losses[m.stage] = r.losses[m.stage].slice(0, m.startAt);
        void this.save(r);
      }
      if (m.stage === 'choose' && m.step === 0) return;
      r.progress.step = m.step;
      if (m.stage !== 'choose' && m.loss !== null) r.losses[m.stage][m.step - 1] = m.loss;
      this.emit('event', { type: 'step', id: r.id, stage: m.stage, step: m.step, total: m.total, loss: m.loss });
      if (Date.now() - this.lastSave > SAVE_EVERY_MS) void this.save(r, false);
    };
    try {
      const result = this.queued ? await this.queued.train(r, this.store.dir(r.id), progress) : await this.trainer.run<TrainResult>(
        { kind: 'train', dir: this.store.dir(r.id), text: r.text, settings: r.settings, auto: r.auto, model: this.modelSpec(r) },
        (m) => {
          if (m.kind === 'stage') progress({ stage: m.stage, step: m.startAt, total: m.total, loss: null, startAt: m.startAt });
          else if (m.kind === 'step') progress({ stage: m.stage, step: m.step, total: m.total, loss: m.loss });
        },
        (jobId) => {
          if (this.running?.id === r.id) this.running.jobId = jobId;
        },
      );
      if (result.interrupted) {
        r.status = this.closing ? 'queued' : 'cancelled';
      } else {
        r.status = 'ready';
        if (result.auto) {
          const a = result.auto;
          r.choice = a.choice;
          r.candidates = a.candidates.map(({ eta, seed, alignment, preservation }) => ({ eta, seed, alignment, preservation }));
          r.inputAlignment = a.inputAlignment;
          r.threshold = a.threshold;
          r.clip = a.clip;
        }
      }
      r.progress.stage = null;
      if (r.status === 'ready') queueMicrotask(() => this.preload(r.id));
    } catch (e) {
      const cancelled = this.running?.cancel === true;
      r.status = this.closing ? 'queued' : cancelled ? 'cancelled' : 'failed';
      r.error = cancelled ? null : (e as Error).message;
      r.progress.stage = null;
    }
    await this.save(r);
  }

  /** Stops a queued or running training (a running one at its next step, saved for resuming). */
  async cancel(id: string): Promise<void> {
    const r = this.store.get(id)!;
    const i = this.queue.indexOf(id);
    if (i >= 0) {
      this.queue.splice(i, 1);
      r.status = 'cancelled';
      await this.save(r);
      this.emit('event', { type: 'status', status: this.status() });
      return;
    }
    // A training that has just stopped keeps `running` until its record is saved: its status says it is over.
    if (this.running?.id !== id || (r.status !== 'training' && r.status !== 'choosing')) throw new ConflictError(`session ${id} is ${r.status}: nothing to cancel`);
    if (this.queued) {
      this.running.cancel = true;
      if (!(await this.queued.cancel(r))) {
        this.running.cancel = false;
        throw new ConflictError(`session ${id} is training on a queue worker (${this.queued.url}): it cannot be stopped from here`);
      }
      return;
    }
    this.running.cancel = true;
    if (this.running.jobId !== null) this.trainer.cancel(this.running.jobId);
  }

  async resume(id: string): Promise<void> {
    const r = this.store.get(id)!;
    if (r.status !== 'cancelled' && r.status !== 'failed') throw new ConflictError(`session ${id} is ${r.status}: only a cancelled or failed session can be resumed`);
    await this.enqueue(r);
  }

  private track<T>(id: string, p: Promise<T>): Promise<T> {
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
    this.emit('event', { type: 'status', status: this.status() });
    return p.finally(() => {
      this.emit('event', { type: 'status', status: this.status() });
      const n = (this.inFlight.get(id) ?? 1) - 1;
      if (n === 0) this.inFlight.delete(id);
      else this.inFlight.set(id, n);
      if (this.deleting.has(id)) void this.removeWhenIdle(id);
    });
  }

  /** The session the render worker has loaded (or is loading). */
  private preloaded: string | null = null;

  /** Loads a trained session into the render worker while nothing else runs there, so that its first render is not a cold one. */
  preload(id: string): void {
    const r = this.store.get(id);
    if (!r || r.status !== 'ready' || this.preloaded === id || this.renderer.busy > 0) return;
    this.preloaded = id;
    void this.track(id, this.renderer.run<null>({ kind: 'preload', dir: this.store.dir(id), model: this.modelSpec(r) })).catch((e: Error) => {
      this.preloaded = null;
      this.o.log(`warning: preloading session ${id} for rendering: ${e.message}`);
    });
  }

  /** The render's PNG: from the cache, or rendered by the render worker (one job per key at a time). */
  async render(id: string, k: RenderKey): Promise<{ file: string; ms: number; cache: 'hit' | 'miss' }> {
    const r = this.store.get(id)!;
    if (r.status !== 'ready') throw new ConflictError(`session ${id} is ${r.status}${r.error ? ` (${r.error})` : ''}: it renders once trained`);
    const file = renderFile(this.store.dir(id), k);
    if (existsSync(file)) return { file, ms: 0, cache: 'hit' };
    let p = this.renders.get(file);
    if (!p) {
      this.preloaded = id;
      p = this.track(id, this.renderer.run<{ ms: number }>({ kind: 'render', dir: this.store.dir(id), ...k, out: file, model: this.modelSpec(r) }));
      this.renders.set(file, p);
      void p.catch(() => {}).finally(() => this.renders.delete(file));
    }
    const { ms } = await p;
    return { file, ms, cache: 'miss' };
  }

  /** SDEdit and DDIM inversion on the same input, on the render worker. */
  async compare(id: string, strength: number): Promise<void> {
    const r = this.store.get(id)!;
    if (r.status !== 'ready') throw new ConflictError(`session ${id} is ${r.status}: compare it once it is trained`);
    if (r.compare.status === 'queued' || r.compare.status === 'running') throw new ConflictError(`session ${id}: a comparison is already running`);
    const dir = this.store.dir(id);
    const f = sessionFiles(dir);
    r.compare = { status: 'running', error: null, strength, seed: 0 };
    this.preloaded = null; // the baselines put the base weights back
    await this.save(r);
    const s = r.settings;
    void this.track(id, this.renderer.run<null>({ kind: 'compare', dir, text: r.text, strength, steps: s.steps, guidance: s.guidanceScale, seed: 0, out: { sdedit: f.sdedit, ddim: f.ddim }, model: this.modelSpec(r) }))
      .then(() => {
        r.compare.status = 'ready';
      }, (e: Error) => {
        r.compare.status = 'failed';
        r.compare.error = e.message;
      })
      .then(() => this.save(r));
  }

  /** Forgets the session now; its folder goes once its jobs have stopped. */
  async delete(id: string): Promise<void> {
    this.deleting.add(id);
    const i = this.queue.indexOf(id);
    if (i >= 0) this.queue.splice(i, 1);
    if (this.running?.id === id) await this.cancel(id).catch(() => {});
    this.emit('event', { type: 'deleted', id });
    await this.removeWhenIdle(id);
  }

  private async removeWhenIdle(id: string): Promise<void> {
    if (this.running?.id === id || this.inFlight.has(id)) return;
    this.deleting.delete(id);
    await this.store.remove(id);
  }

  isDeleting(id: string): boolean {
    return this.deleting.has(id);
  }

  /** Stops the workers; a running training first saves its progress (up to `graceMs`) and resumes at the next start. */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    this.queue.length = 0;
    if (this.running?.jobId != null) {
      this.trainer.cancel(this.running.jobId);
      await Promise.race([this.trainDone, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    }
    await Promise.all([this.trainer.close(), this.renderer.close(), this.queued?.close()]);
  }
}
