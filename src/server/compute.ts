// What a compute worker does (src/server/worker.ts runs it in a child process, off the server's event
// loop): train a session (stages A and B, then the automatic choice), render one eta and seed from a
// trained session, and run the baselines. It keeps one model loaded and the base weights of what a
// session changes, so that sessions can follow each other without reloading the model.
import { existsSync } from 'node:fs';
import { dispose, keep, noGrad, setNumThreads, type Tensor } from '../engine/index.js';
import { imageToTensor, prepareImage, readImage, writePng } from '../io/image.js';
import { CLIPScorer } from '../metrics/index.js';
import { ddimInversionEdit, disposeStableDiffusion, img2img, loadStableDiffusion, type StableDiffusion } from '../pipelines/index.js';
import {
  embeddingTensors, AUTO_SEEDS, DEFAULT_AUTO_RULE, DEFAULT_PRESERVATION, EditSession, INVERTED_SEED, autoChoose, clipCandidateScorer, invertedNoise, renderEtas,
  resolveClipSource, runEdit, stageBChangedWeights, type CandidateScorer, type Embeddings,
} from '../pipelines/imagic/index.js';
import type { CompareJob, FromWorker, ModelSpec, PreloadJob, RenderJob, TrainJob, TrainResult } from './protocol.js';
import { renderFile, sessionFiles } from './paths.js';

/** Thrown inside a job that was cancelled between two of its steps. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

interface LoadedSession {
  dir: string;
  emb: Embeddings;
  latent: Tensor;
  /** The input's DDIM-inverted noise, per number of sampling steps. */
  inverted: Map<number, Tensor>;
}

export class Compute {
  private sd: StableDiffusion | null = null;
  private modelKey = '';
  /** The base model's values of every parameter a session has changed (restored before the next). */
  private base = new Map<string, Tensor>();
  /** sd.unet holds some session's fine-tuned weights. */
  private dirty = false;
  private loaded: LoadedSession | null = null;
  private scorers = new Map<string, CandidateScorer & { dispose(): void }>();
  private readonly cancelled = new Set<number>();

  constructor(private readonly send: (m: FromWorker) => void) {}

  cancel(jobId: number): void {
    this.cancelled.add(jobId);
  }

  private async model(spec: ModelSpec, jobId: number): Promise<StableDiffusion> {
    const key = `${spec.model}|${spec.device}|${JSON.stringify(spec.load ?? {})}`;
    if (this.sd && this.modelKey === key) return this.sd;
    this.release();
    if (spec.threads !== undefined) setNumThreads(spec.threads);
    const log = (message: string) => this.send({ kind: 'log', jobId, message });
    this.sd = await loadStableDiffusion(spec.model, { device: spec.device, dtype: 'float32', offline: spec.offline, ...spec.load, onLog: (l) => log(`loaded ${l}`), onWarning: (w) => log(`warning: ${w}`) });
    this.modelKey = key;
    return this.sd;
  }

  /** Frees the model and everything that belongs to it. */
  release(): void {
    this.unload();
    dispose([...this.base.values()]);
    this.base.clear();
    this.dirty = false;
    if (this.sd) disposeStableDiffusion(this.sd);
    this.sd = null;
    this.modelKey = '';
    for (const s of this.scorers.values()) s.dispose();
    this.scorers.clear();
  }

  private unload(): void {
    if (!this.loaded) return;
    dispose([...embeddingTensors(this.loaded.emb), this.loaded.latent, ...this.loaded.inverted.values()]);
    this.loaded = null;
  }

  /** Puts the base model's weights back where a session changed them. */
  private restoreBase(sd: StableDiffusion): void {
    this.unload();
    if (!this.dirty) return;
    const params = new Map(sd.unet.namedParameters());
    noGrad(() => {
      for (const [k, t] of this.base) params.get(k)!.copy_(t);
    });
    this.dirty = false;
  }

  /** Remembers the base values of `names` before a session changes them. */
  private snapshot(sd: StableDiffusion, names: string[]): void {
    const params = new Map(sd.unet.namedParameters());
    noGrad(() => {
      for (const n of names) if (!this.base.has(n) && params.has(n)) this.base.set(n, keep(params.get(n)!.detach().clone()));
    });
    this.dirty = true;
  }

  private async scorer(spec: ModelSpec, jobId: number): Promise<{ scorer: CandidateScorer; name: string }> {
    const clip = resolveClipSource(spec.model, undefined, true);
    let s = this.scorers.get(clip.source);
    if (!s) {
      try {
        const c = await CLIPScorer.load(clip.source, { device: spec.device, offline: spec.offline });
        s = { ...clipCandidateScorer(c, clip.name, DEFAULT_PRESERVATION), dispose: () => c.dispose() };
      } catch (e) {
        throw new Error(`cannot load the CLIP that chooses eta (${clip.source}): ${(e as Error).message.split('\n')[0]}; turn off the automatic choice to edit without it`);
      }
      this.scorers.set(clip.source, s);
      this.send({ kind: 'log', jobId, message: `loaded CLIP ${clip.name}` });
    }
    return { scorer: s, name: clip.name };
  }

  /** The input at the model's resolution, [1, 3, H, W] in [-1, 1]; writes it as the session's input.png. */
  private async input(sd: StableDiffusion, dir: string): Promise<Tensor> {
    const f = sessionFiles(dir);
    const size = (sd.unet.config.sample_size ?? 64) * 8;
    const img = await prepareImage(await readImage(f.upload), { width: size, height: size, mode: 'center-crop' });
    if (!existsSync(f.input)) await writePng(f.input, img);
    return imageToTensor(img);
  }

  async train(job: TrainJob): Promise<TrainResult> {
    const sd = await this.model(job.model, job.jobId);
    this.restoreBase(sd);
    const input = await this.input(sd, job.dir);
    let emb: Embeddings | null = null;
    try {
      // A missing or broken CLIP fails before any training.
      const scorer = job.auto ? await this.scorer(job.model, job.jobId) : null;
      this.snapshot(sd, stageBChangedWeights(sd, job.settings));
      const stopped = () => this.cancelled.has(job.jobId);
      const r = await runEdit(sd, job.dir, { image: input, imageSource: 'upload.png', target: job.text, modelSource: job.model.model, modelLoad: job.model.load }, job.settings, {
        onLog: (message) => this.send({ kind: 'log', jobId: job.jobId, message }),
        onStage: (stage, total, startAt) => this.send({ kind: 'stage', jobId: job.jobId, stage, total, startAt }),
        onStep: (stage, step, total, loss) => this.send({ kind: 'step', jobId: job.jobId, stage, step, total, loss }),
        shouldStop: stopped,
      });
      emb = r.embeddings;
      if (r.interrupted || !scorer) return { interrupted: r.interrupted, auto: null };
      return { interrupted: false, auto: await this.choose(sd, job, emb!, input, scorer, stopped) };
    } finally {
      input.dispose();
      if (emb) dispose(embeddingTensors(emb));
      // The next job starts from the base model.
      this.restoreBase(sd);
    }
  }

  /** Renders the preset's candidate etas from each noise (the input's inverted noise, seeds 0-3), scores them and chooses. */
  private async choose(sd: StableDiffusion, job: TrainJob, emb: Embeddings, input: Tensor, s: { scorer: CandidateScorer; name: string }, stopped: () => boolean): Promise<TrainResult['auto']> {
    const { steps, guidanceScale, autoEtas } = job.settings;
    const e = EditSession.open(job.dir).loadEmbeddings();
    dispose([...embeddingTensors(e), e.rngAfterA]);
    const total = AUTO_SEEDS.length * steps;
    this.send({ kind: 'stage', jobId: job.jobId, stage: 'choose', total, startAt: 0 });
    let inverted: Tensor | null = null;
    try {
      inverted = invertedNoise(sd, e.latent, emb.eOpt, steps, emb.xl);
      const files: string[] = [];
      const r = await autoChoose(sd, emb, {
        etas: autoEtas, seeds: AUTO_SEEDS, steps, guidanceScale, target: job.text, input, scorer: s.scorer, rule: DEFAULT_AUTO_RULE, invertedNoise: inverted,
        onStep: (done) => this.send({ kind: 'step', jobId: job.jobId, stage: 'choose', step: done, total, loss: null }),
        onImage: async (image, c) => {
          const file = renderFile(job.dir, { eta: c.eta, seed: c.seed, steps, guidance: guidanceScale });
          try {
            await writePng(file, image, { mkdir: true });
          } finally {
            image.dispose();
          }
          files.push(file);
          if (stopped()) throw new CancelledError();
        },
      });
      const k = r.choice.candidate;
      return {
        candidates: r.candidates.map((c, i) => ({ ...c, file: files[i]! })),
        choice: { eta: k.eta, seed: k.seed, alignment: k.alignment, preservation: k.preservation },
        inputAlignment: r.inputAlignment, threshold: r.choice.threshold, clip: s.name,
      };
    } finally {
      dispose([e.latent, ...(inverted ? [inverted] : [])]);
    }
  }

  /** Loads a trained session's fine-tuned weights and embeddings (kept until another session is rendered). */
  private session(sd: StableDiffusion, dir: string): LoadedSession {
    if (this.loaded?.dir === dir) return this.loaded;
    this.restoreBase(sd);
    const session = EditSession.open(dir);
    session.checkModel(sd);
    this.snapshot(sd, session.json.trained);
    session.loadFinetuned(sd);
    const e = session.loadEmbeddings();
    e.rngAfterA.dispose();
    // SDXL sessions carry the pooled embeddings and time_ids too: renders interpolate both.
    const emb: Embeddings = { eTgt: e.eTgt, eOpt: e.eOpt, eUncond: e.eUncond, ...(e.xl ? { xl: e.xl } : {}) };
    embeddingTensors(emb).forEach((t) => keep(t));
    this.loaded = { dir, emb, latent: keep(e.latent), inverted: new Map() };
    return this.loaded;
  }

  async preload(job: PreloadJob): Promise<null> {
    this.session(await this.model(job.model, job.jobId), job.dir);
    return null;
  }

  async render(job: RenderJob): Promise<{ ms: number }> {
    const sd = await this.model(job.model, job.jobId);
    const t0 = performance.now();
    const s = this.session(sd, job.dir);
    let noise: Tensor | undefined;
    if (job.seed === INVERTED_SEED) {
      noise = s.inverted.get(job.steps);
      if (!noise) {
        noise = keep(invertedNoise(sd, s.latent, s.emb.eOpt, job.steps, s.emb.xl));
        s.inverted.set(job.steps, noise);
      }
    }
    const images = await renderEtas(sd, s.emb, { etas: [job.eta], seed: noise ? 0 : job.seed, noise, steps: job.steps, guidanceScale: job.guidance });
    try {
      await writePng(job.out, images, { mkdir: true });
    } finally {
      images.dispose();
    }
    return { ms: performance.now() - t0 };
  }

  /** SDEdit and DDIM inversion on the base model, from the session's input. */
  async compare(job: CompareJob): Promise<null> {
    const sd = await this.model(job.model, job.jobId);
    this.restoreBase(sd);
    const input = imageToTensor(await readImage(sessionFiles(job.dir).input));
    try {
      const a = img2img(sd, { image: input, prompt: job.text, strength: job.strength, steps: job.steps, guidanceScale: job.guidance, seed: job.seed });
      a.latents.dispose();
      try {
        await writePng(job.out.sdedit, a.images);
      } finally {
        a.images.dispose();
      }
      if (this.cancelled.has(job.jobId)) throw new CancelledError();
      const b = await ddimInversionEdit(sd, { image: input, sourcePrompt: '', targetPrompt: job.text, steps: job.steps, guidanceScale: job.guidance, seed: job.seed });
      dispose([b.latents, b.invertedLatents]);
      try {
        await writePng(job.out.ddim, b.images);
      } finally {
        b.images.dispose();
      }
    } finally {
      input.dispose();
    }
    return null;
  }
}
