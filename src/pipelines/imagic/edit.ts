// A whole Imagic edit with its session: stage A, stage B (checkpointed), resumable at any step
// boundary, and the rendering of eta x seed grids from a finished session.
import { createHash } from 'node:crypto';
import { dispose, Generator, keep, type Tensor } from '../../engine/index.js';
import { encodePrompt, type StableDiffusion } from '../stable-diffusion.js';
import type { ImagicSettings } from './presets.js';
import { EditSession, SessionError, modelFamily, modelFingerprint } from './session.js';
import { createLoRA, encodeImage, generatorNoise, renderEdit, stageA, stageB, trainableNames } from './stages.js';

export interface EditInputs {
  /** [1, 3, H, W] in [-1, 1], at the model's resolution. */
  image: Tensor;
  /** Where the image came from (for the session record). */
  imageSource: string;
  /** Text, or token-id rows for checkpoints without a tokenizer. */
  target: string | number[][];
  /** The unconditional side of guidance, as ids, where the checkpoint has no tokenizer. */
  uncondIds?: number[][];
  modelSource: string;
}

export interface EditHooks {
  onStage?: (stage: 'A' | 'B', total: number, startAt: number) => void;
  onStep?: (stage: 'A' | 'B', step: number, total: number, loss: number) => void;
  onLog?: (message: string) => void;
  /** Checked between steps: true stops at the next step boundary, saving what can be resumed. */
  shouldStop?: () => boolean;
}

export interface Embeddings {
  eTgt: Tensor;
  eOpt: Tensor;
  eUncond: Tensor;
}

export interface EditResult {
  session: EditSession;
  /** null when interrupted before stage A completed. */
  embeddings: Embeddings | null;
  /** true when stopped early (shouldStop): run again to resume. */
  interrupted: boolean;
}

/** sha256 of the image tensor's bytes: the same input, resized the same way, gives the same hash. */
export function imageHash(image: Tensor): string {
  return createHash('sha256').update(image.toTypedArray() as Float32Array).digest('hex');
}

/** Opens (resuming) or creates the session, then runs what is left of stages A and B. */
export async function runEdit(sd: StableDiffusion, dir: string, inputs: EditInputs, settings: ImagicSettings, hooks: EditHooks = {}, opts: { restart?: boolean } = {}): Promise<EditResult> {
  const log = hooks.onLog ?? (() => {});
  const sha = imageHash(inputs.image);
  const [, , height, width] = inputs.image.shape as [number, number, number, number];
  let session: EditSession;
  if (EditSession.exists(dir) && !opts.restart) {
    session = EditSession.open(dir);
    session.checkModel(sd);
    const diffs = session.differences(settings, inputs.target, sha);
    if (diffs.length > 0) {
      throw new SessionError(dir, `was started with other settings or inputs:\n  ${diffs.join('\n  ')}\nuse --restart to start it over, or another session folder`);
    }
    session.json.settings = settings; // render-only settings may change
    session.save();
    const p = session.json.progress;
    log(p.stageBDone ? `session ${dir}: training already complete` : `resuming session ${dir}: stage A ${p.stageA ? 'done' : 'to do'}, stage B at step ${p.stageB}/${settings.stepsB}`);
  } else {
    session = EditSession.create(dir, {
      target: inputs.target, settings, model: { source: inputs.modelSource, fingerprint: modelFingerprint(sd), ...modelFamily(sd) },
      image: { source: inputs.imageSource, width, height, sha256: sha },
    });
  }

  const rng = new Generator(settings.seed);
  let emb: (Embeddings & { latent: Tensor }) | null = null;
  try {
    // Stage A: optimize the target embedding (not checkpointed inside: it is the cheaper stage).
    if (!session.json.progress.stageA) {
      const latent = keep(encodeImage(sd, inputs.image, { sampleLatent: settings.sampleLatent, generator: rng }));
      const eTgt = keep(encodePrompt(sd, typeof inputs.target === 'string' ? [inputs.target] : inputs.target, log));
      const eUncond = keep(encodePrompt(sd, sd.tokenizer ? [''] : requireUncond(inputs)));
      hooks.onStage?.('A', settings.stepsA, 0);
      const a = await stageA(sd, latent, eTgt, {
        steps: settings.stepsA, lr: settings.lrA, noise: generatorNoise(rng, latent), mixedPrecision: settings.mixedPrecision, gradientCheckpointing: settings.gradientCheckpointing,
        onStep: (i, loss) => hooks.onStep?.('A', i, settings.stepsA, loss), shouldStop: hooks.shouldStop,
      });
      if (a.losses.length < settings.stepsA) {
        dispose([latent, eTgt, eUncond, a.eOpt]);
        return { session, embeddings: null, interrupted: true };
      }
      const rngAfterA = rng.getState();
      session.saveEmbeddings({ eTgt, eOpt: a.eOpt, eUncond, latent, rngAfterA });
      rngAfterA.dispose();
      emb = { eTgt, eOpt: keep(a.eOpt), eUncond, latent };
    } else {
      const e = session.loadEmbeddings();
      rng.setState(e.rngAfterA);
      e.rngAfterA.dispose();
      emb = { eTgt: keep(e.eTgt), eOpt: keep(e.eOpt), eUncond: keep(e.eUncond), latent: keep(e.latent) };
    }

    // Stage B: fine-tune the UNet (or LoRA adapters on it) at e_opt, checkpointing every settings.checkpointEvery steps.
    if (!session.json.progress.stageBDone) {
      const full = settings.train === 'lora' ? undefined : settings.train;
      const lora = full === undefined ? createLoRA(sd, settings) : undefined;
      try {
        const trained = full === undefined ? lora!.namedParameters().map(([n]) => n) : trainableNames(sd, full);
        const resume = session.loadCheckpoint(sd, lora);
        if (resume) {
          rng.setState(resume.rngState);
          resume.rngState.dispose();
        }
        hooks.onStage?.('B', settings.stepsB, resume?.done ?? 0);
        const b = await stageB(sd, emb.latent, emb.eOpt, {
          steps: settings.stepsB, lr: settings.lrB, train: full, lora, noise: generatorNoise(rng, emb.latent),
          mixedPrecision: settings.mixedPrecision, gradientCheckpointing: settings.gradientCheckpointing,
          resume: resume ? { optimizer: resume.optimizer, done: resume.done } : undefined,
          checkpoint: { every: settings.checkpointEvery, save: (done, opt) => session.saveCheckpoint(sd, done, opt, rng, trained, lora) },
          onStep: (i, loss) => hooks.onStep?.('B', i, settings.stepsB, loss), shouldStop: hooks.shouldStop,
        });
        if (resume) dispose(Object.values(resume.optimizer.tensors));
        if (b.done < settings.stepsB) {
          log(`stopped at stage B step ${b.done}/${settings.stepsB}: saved, run the same command to resume`);
          return { session, embeddings: { eTgt: emb.eTgt, eOpt: emb.eOpt, eUncond: emb.eUncond }, interrupted: true };
        }
        if (lora) {
          session.saveLoRA(sd, lora);
          lora.merge(); // sd.unet now renders the edit, as after a full fine-tuning
        } else {
          session.saveFinetuned(sd, b.trained);
        }
      } finally {
        lora?.detach();
        lora?.dispose();
      }
    } else {
      session.loadFinetuned(sd);
    }
    emb.latent.dispose();
    return { session, embeddings: { eTgt: emb.eTgt, eOpt: emb.eOpt, eUncond: emb.eUncond }, interrupted: false };
  } catch (e) {
    if (emb) dispose(Object.values(emb));
    throw e;
  }
}

function requireUncond(inputs: EditInputs): number[][] {
  if (!inputs.uncondIds) throw new Error('the checkpoint has no tokenizer: give the unconditional prompt as token ids (uncondIds)');
  return inputs.uncondIds;
}

/** Loads a finished session into sd (fine-tuned UNet) and returns its embeddings, for rendering. */
export function openForRender(sd: StableDiffusion, dir: string): { session: EditSession; embeddings: Embeddings } {
  const session = EditSession.open(dir);
  session.checkModel(sd);
  session.loadFinetuned(sd);
  const e = session.loadEmbeddings();
  dispose([e.latent, e.rngAfterA]);
  return { session, embeddings: { eTgt: keep(e.eTgt), eOpt: keep(e.eOpt), eUncond: keep(e.eUncond) } };
}

export interface GridOptions {
  etas: number[];
  seeds: number[];
  steps: number;
  guidanceScale: number;
  size?: { width: number; height: number };
  /** Called with each image as it is rendered ([1, 3, H, W]); the caller owns it. */
  onImage: (image: Tensor, eta: number, seed: number) => Promise<void> | void;
  onStep?: (done: number, total: number) => void;
}

/** Renders every eta for every seed; the same seed gives the same starting noise for every eta. */
export async function renderGrid(sd: StableDiffusion, emb: Embeddings, o: GridOptions): Promise<void> {
  const total = o.etas.length * o.seeds.length * o.steps;
  let done = 0;
  for (const seed of o.seeds) {
    for (const eta of o.etas) {
      const r = await renderEdit(sd, emb, { eta, seed, steps: o.steps, guidanceScale: o.guidanceScale, onStep: () => o.onStep?.(++done, total) }, o.size);
      r.latent.dispose();
      await o.onImage(r.image, eta, seed);
    }
  }
}
