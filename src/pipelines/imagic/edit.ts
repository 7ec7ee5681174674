// A whole Imagic edit with its session: stage A, stage B (checkpointed), resumable at any step
// boundary, and the rendering of eta x seed grids from a finished session.
import { createHash } from 'node:crypto';
import { dispose, Generator, keep, type Tensor } from '../../engine/index.js';
import { defaultTimeIds, encodeNegativeXL, encodePrompt, encodePromptXL, type StableDiffusion } from '../stable-diffusion.js';
import type { ImagicSettings } from './presets.js';
import { EditSession, SessionError, modelFamily, modelFingerprint, type ModelLoadRecord } from './session.js';
import { createLoRA, encodeImage, generatorNoise, renderEdit, stageA, stageB, trainableNames, type PooledEmbeddings } from './stages.js';

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
  /** How a single-file model was loaded (its YAML, tokenizer, text-encoder heads): recorded so that render can load it again. */
  modelLoad?: ModelLoadRecord;
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
  /** SDXL: the pooled embeddings (target, optimized, unconditional) and the time_ids. */
  xl?: PooledEmbeddings;
}

/** Every tensor of the embeddings (to dispose them). */
export function embeddingTensors(e: Embeddings): Tensor[] {
  return [e.eTgt, e.eOpt, e.eUncond, ...(e.xl ? [e.xl.tgt, e.xl.opt, e.xl.uncond, e.xl.timeIds] : [])];
}

/** The target's and the unconditional context, and for SDXL their pooled embeddings and the time_ids. */
function encodeTargets(sd: StableDiffusion, inputs: EditInputs, size: { height: number; width: number }, log: (m: string) => void): { eTgt: Tensor; eUncond: Tensor; xl?: { tgt: Tensor; uncond: Tensor; timeIds: Tensor } } {
  const target = typeof inputs.target === 'string' ? [inputs.target] : inputs.target;
  if (!sd.xl) {
    return { eTgt: encodePrompt(sd, target, log), eUncond: encodePrompt(sd, sd.tokenizer ? [''] : requireUncond(inputs)) };
  }
  const t = encodePromptXL(sd, target, undefined, log);
  const u = encodeNegativeXL(sd, t, sd.tokenizer || sd.xl.forceZerosForEmptyPrompt ? undefined : requireUncond(inputs));
  return { eTgt: t.promptEmbeds, eUncond: u.promptEmbeds, xl: { tgt: t.pooled, uncond: u.pooled, timeIds: defaultTimeIds(size.height, size.width, sd.device) } };
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
      target: inputs.target, settings, model: { source: inputs.modelSource, fingerprint: modelFingerprint(sd), ...modelFamily(sd), ...(inputs.modelLoad && Object.keys(inputs.modelLoad).length ? { load: inputs.modelLoad } : {}) },
      image: { source: inputs.imageSource, width, height, sha256: sha },
    });
  }

  const rng = new Generator(settings.seed);
  let emb: (Embeddings & { latent: Tensor }) | null = null;
  try {
    // Stage A: optimize the target embedding (not checkpointed inside: it is the cheaper stage).
    if (!session.json.progress.stageA) {
      const latent = keep(encodeImage(sd, inputs.image, { sampleLatent: settings.sampleLatent, generator: rng }));
      const enc = encodeTargets(sd, inputs, { height, width }, log);
      const eTgt = keep(enc.eTgt);
      const eUncond = keep(enc.eUncond);
      if (enc.xl) for (const t of Object.values(enc.xl)) keep(t);
      hooks.onStage?.('A', settings.stepsA, 0);
      const a = await stageA(sd, latent, eTgt, {
        steps: settings.stepsA, lr: settings.lrA, noise: generatorNoise(rng, latent), mixedPrecision: settings.mixedPrecision, gradientCheckpointing: settings.gradientCheckpointing,
        onStep: (i, loss) => hooks.onStep?.('A', i, settings.stepsA, loss), shouldStop: hooks.shouldStop,
        xl: enc.xl ? { pooled: enc.xl.tgt, timeIds: enc.xl.timeIds } : undefined,
      });
      const xl = enc.xl ? { tgt: enc.xl.tgt, opt: keep(a.pooledOpt!), uncond: enc.xl.uncond, timeIds: enc.xl.timeIds } : undefined;
      if (a.losses.length < settings.stepsA) {
        dispose([latent, ...embeddingTensors({ eTgt, eOpt: a.eOpt, eUncond, xl })]);
        return { session, embeddings: null, interrupted: true };
      }
      const rngAfterA = rng.getState();
      session.saveEmbeddings({ eTgt, eOpt: a.eOpt, eUncond, latent, rngAfterA, xl });
      rngAfterA.dispose();
      emb = { eTgt, eOpt: keep(a.eOpt), eUncond, latent, ...(xl ? { xl } : {}) };
    } else {
      const e = session.loadEmbeddings();
      rng.setState(e.rngAfterA);
      e.rngAfterA.dispose();
      if (e.xl) for (const t of Object.values(e.xl)) keep(t);
      emb = { eTgt: keep(e.eTgt), eOpt: keep(e.eOpt), eUncond: keep(e.eUncond), latent: keep(e.latent), ...(e.xl ? { xl: e.xl } : {}) };
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
          added: emb.xl ? { textEmbeds: emb.xl.opt, timeIds: emb.xl.timeIds } : undefined,
        });
        if (resume) dispose(Object.values(resume.optimizer.tensors));
        if (b.done < settings.stepsB) {
          log(`stopped at stage B step ${b.done}/${settings.stepsB}: saved, run the same command to resume`);
          return { session, embeddings: { eTgt: emb.eTgt, eOpt: emb.eOpt, eUncond: emb.eUncond, ...(emb.xl ? { xl: emb.xl } : {}) }, interrupted: true };
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
    return { session, embeddings: { eTgt: emb.eTgt, eOpt: emb.eOpt, eUncond: emb.eUncond, ...(emb.xl ? { xl: emb.xl } : {}) }, interrupted: false };
  } catch (e) {
    if (emb) dispose([...embeddingTensors(emb), emb.latent]);
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
  if (e.xl) for (const t of Object.values(e.xl)) keep(t);
  return { session, embeddings: { eTgt: keep(e.eTgt), eOpt: keep(e.eOpt), eUncond: keep(e.eUncond), ...(e.xl ? { xl: e.xl } : {}) } };
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
