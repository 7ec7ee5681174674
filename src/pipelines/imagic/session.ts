// Edit sessions: what Imagic's expensive stages (A, B) produce, saved so that rendering more etas and
// seeds needs no training, and an interrupted edit resumes from the last completed step.
//   session.json                settings, target, model fingerprint, progress
//   input.png                   the input as the model saw it (resized and cropped)
//   embeddings.safetensors      e_tgt, e_opt, e_uncond, the image latent, the training RNG after stage A
//   unet-finetuned.safetensors  the fine-tuned UNet tensors (only those Stage B trained)
//   lora.safetensors            or, with LoRA, only the adapters (PEFT/diffusers keys `unet.<layer>.lora_A.weight`)
//   stage-b-checkpoint.safetensors  a resumable partial Stage B (weights or adapters, Adam state, RNG)
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Generator, noGrad, type Tensor, optim, dispose } from '../../engine/index.js';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../../io/safetensors.js';
import { LoRA, type LoRATargets } from '../../nn/index.js';
import type { StableDiffusion } from '../stable-diffusion.js';
import type { ImagicSettings } from './presets.js';

export const SESSION_VERSION = 1;

export interface SessionJson {
  version: number;
  /** What the edit asks for: text, or token ids for checkpoints without a tokenizer. */
  target: string | number[][];
  /** family and prediction: recorded since SD 2.x support (older sessions lack them: SD 1.x, epsilon). */
  model: { source: string; fingerprint: string; family?: ModelFamily; prediction?: string; load?: ModelLoadRecord };
  settings: ImagicSettings;
  image: { source: string; width: number; height: number; sha256: string };
  progress: { stageA: boolean; stageB: number; stageBDone: boolean };
  trained: string[];
  created: string;
  updated: string;
}

/** The options a single-file base model was loaded with (absolute paths, or a tokenizer repo id). */
export interface ModelLoadRecord {
  config?: string;
  tokenizer?: string;
  textEncoderHeads?: number;
}

/** The load options worth recording (existing paths made absolute, so the record works from any folder); undefined when none is set. */
export function modelLoadRecord(o: ModelLoadRecord): ModelLoadRecord | undefined {
  const abs = (p: string | undefined) => (p !== undefined && existsSync(p) ? path.resolve(p) : p);
  const r: ModelLoadRecord = {};
  if (o.config !== undefined) r.config = abs(o.config);
  if (o.tokenizer !== undefined) r.tokenizer = abs(o.tokenizer);
  if (o.textEncoderHeads !== undefined) r.textEncoderHeads = o.textEncoderHeads;
  return Object.keys(r).length ? r : undefined;
}

/** A session folder that cannot be used as asked (missing, another model, other settings). */
export class SessionError extends Error {
  constructor(readonly dir: string, message: string) {
    super(`session ${dir}: ${message}`);
    this.name = 'SessionError';
  }
}

/** Which Stable Diffusion a checkpoint is: 1.x, 2.x (linear projections in the transformer blocks) or XL (text_time conditioning). */
export type ModelFamily = 'sd1' | 'sd2' | 'sdxl';

const FAMILY_NAMES: Record<ModelFamily, string> = { sd1: 'Stable Diffusion 1.x', sd2: 'Stable Diffusion 2.x', sdxl: 'Stable Diffusion XL' };

/** The model's family and what its scheduler predicts (epsilon or v_prediction): what a session was trained for. */
export function modelFamily(sd: StableDiffusion): { family: ModelFamily; prediction: string } {
  const c = sd.unet.config;
  const family: ModelFamily = c.addition_embed_type === 'text_time' ? 'sdxl' : c.use_linear_projection ? 'sd2' : 'sd1';
  return { family, prediction: sd.scheduler.config.prediction_type };
}

/** Identifies a base model: its UNet/text-encoder configs and a checksum of a few weights. */
export function modelFingerprint(sd: StableDiffusion): string {
  const h = createHash('sha256');
  // The SDXL options, when unset, are left out: fingerprints stay those of sessions made before they existed.
  const { addition_embed_type, addition_time_embed_dim, projection_class_embeddings_input_dim, ...rest } = sd.unet.config;
  const sdxl = addition_embed_type === null ? {} : { addition_embed_type, addition_time_embed_dim, projection_class_embeddings_input_dim };
  h.update(JSON.stringify({ ...rest, ...sdxl }));
  h.update(JSON.stringify(sd.textEncoder.config));
  noGrad(() => {
    for (const m of [sd.unet.conv_in.weight, sd.unet.conv_out.weight, sd.textEncoder.embeddings.token_embedding.weight]) {
      const s = m.float().sum();
      h.update(`${m.shape.join('x')}:${s.item().toPrecision(6)};`);
      s.dispose();
    }
  });
  return h.digest('hex').slice(0, 16);
}

/** Training settings that must match to resume (render-only settings may differ). */
const TRAINING_KEYS: (keyof ImagicSettings)[] = ['stepsA', 'lrA', 'stepsB', 'lrB', 'train', 'seed', 'sampleLatent', 'mixedPrecision'];
/** And with LoRA (sessions made before LoRA existed lack them, and trained in full). */
const LORA_KEYS: (keyof ImagicSettings)[] = ['loraRank', 'loraTargets'];

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, file);
}

/** A session folder: the settings, progress, trained embeddings and weights of one edit, from which it resumes and renders. */
export class EditSession {
  constructor(readonly dir: string, public json: SessionJson) {}

  static exists(dir: string): boolean {
    return existsSync(path.join(dir, 'session.json'));
  }

  static create(dir: string, json: Omit<SessionJson, 'version' | 'created' | 'updated' | 'progress' | 'trained'>): EditSession {
    mkdirSync(dir, { recursive: true });
    // Stale temporary files of an interrupted write are never valid data.
    for (const f of readdirSync(dir)) if (/\.tmp-\d+$/.test(f)) rmSync(path.join(dir, f), { force: true });
    const now = new Date().toISOString();
    const s = new EditSession(dir, { ...json, version: SESSION_VERSION, progress: { stageA: false, stageB: 0, stageBDone: false }, trained: [], created: now, updated: now });
    s.save();
    return s;
  }

  static open(dir: string): EditSession {
    const file = path.join(dir, 'session.json');
    if (!existsSync(file)) throw new SessionError(dir, 'no session.json: not an edit session folder');
    let json: SessionJson;
    try {
      json = JSON.parse(readFileSync(file, 'utf8')) as SessionJson;
    } catch (e) {
      throw new SessionError(dir, `session.json is not valid JSON (${(e as Error).message})`);
    }
    if (json.version !== SESSION_VERSION) throw new SessionError(dir, `made by an incompatible version (session format ${json.version}, this imagic reads ${SESSION_VERSION})`);
    for (const f of readdirSync(dir)) if (/\.tmp-\d+$/.test(f)) rmSync(path.join(dir, f), { force: true });
    return new EditSession(dir, json);
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  save(): void {
    this.json.updated = new Date().toISOString();
    writeJsonAtomic(this.file('session.json'), this.json);
  }

  /** Throws unless this session was made with the same base model. */
  checkModel(sd: StableDiffusion): void {
    const now = modelFamily(sd);
    const was = { family: this.json.model.family ?? 'sd1', prediction: this.json.model.prediction ?? 'epsilon' };
    if (was.family !== now.family || was.prediction !== now.prediction) {
      throw new SessionError(this.dir, `was trained on ${FAMILY_NAMES[was.family]} (${was.prediction}), but the model given is ${FAMILY_NAMES[now.family]} (${now.prediction}): load the session's base model (${this.json.model.source}), or start a new session`);
    }
    const fp = modelFingerprint(sd);
    if (fp !== this.json.model.fingerprint) {
      throw new SessionError(this.dir, `was made with a different model (${this.json.model.source}, fingerprint ${this.json.model.fingerprint}; this model's is ${fp}): load the same model, or start a new session`);
    }
  }

  /** Differences in training settings or inputs, as readable lines (empty: resumable). */
  differences(settings: ImagicSettings, target: SessionJson['target'], imageSha: string): string[] {
    const out: string[] = [];
    const keys = settings.train === 'lora' ? [...TRAINING_KEYS, ...LORA_KEYS] : TRAINING_KEYS;
    for (const k of keys) {
      if (JSON.stringify(this.json.settings[k]) !== JSON.stringify(settings[k])) out.push(`${k}: ${this.json.settings[k]} in the session, ${settings[k]} now`);
    }
    if (JSON.stringify(this.json.target) !== JSON.stringify(target)) out.push(`target text: ${JSON.stringify(this.json.target)} in the session, ${JSON.stringify(target)} now`);
    if (this.json.image.sha256 !== imageSha) out.push('the input image differs');
    return out;
  }

  // ---- stage A ----
  saveEmbeddings(t: { eTgt: Tensor; eOpt: Tensor; eUncond: Tensor; latent: Tensor; rngAfterA: Tensor; xl?: { tgt: Tensor; opt: Tensor; uncond: Tensor; timeIds: Tensor } }): void {
    const xl: Record<string, Tensor> = t.xl ? { pooled_tgt: t.xl.tgt, pooled_opt: t.xl.opt, pooled_uncond: t.xl.uncond, time_ids: t.xl.timeIds } : {};
    saveSafetensors(this.file('embeddings.safetensors'), { e_tgt: t.eTgt, e_opt: t.eOpt, e_uncond: t.eUncond, latent: t.latent, rng_after_a: t.rngAfterA, ...xl }, { format: 'imagic-session' });
    this.json.progress.stageA = true;
    this.save();
  }

  /** The trained embeddings; `xl` (SDXL sessions): the pooled embeddings and the time_ids. */
  loadEmbeddings(): { eTgt: Tensor; eOpt: Tensor; eUncond: Tensor; latent: Tensor; rngAfterA: Tensor; xl?: { tgt: Tensor; opt: Tensor; uncond: Tensor; timeIds: Tensor } } {
    const file = this.file('embeddings.safetensors');
    if (!this.json.progress.stageA || !existsSync(file)) throw new SessionError(this.dir, 'stage A has not completed (no embeddings.safetensors)');
    const m = loadSafetensors(file);
    const get = (k: string) => {
      const t = m.get(k);
      if (t === undefined) throw new SessionError(this.dir, `embeddings.safetensors lacks '${k}'`);
      return t;
    };
    const base = { eTgt: get('e_tgt'), eOpt: get('e_opt'), eUncond: get('e_uncond'), latent: get('latent'), rngAfterA: get('rng_after_a') };
    if (!m.has('pooled_opt')) return base;
    return { ...base, xl: { tgt: get('pooled_tgt'), opt: get('pooled_opt'), uncond: get('pooled_uncond'), timeIds: get('time_ids') } };
  }

  // ---- stage B ----
  /** A resumable partial stage B: trained weights (or the LoRA adapters), Adam state and the training RNG. */
  saveCheckpoint(sd: StableDiffusion, done: number, opt: optim.Optimizer, rng: Generator, trained: string[], lora?: LoRA): void {
    const tensors: Record<string, Tensor> = {};
    if (lora) {
      for (const [n, t] of lora.namedParameters()) tensors[`lora.${n}`] = t;
    } else {
      const params = new Map(sd.unet.namedParameters());
      for (const n of trained) tensors[`unet.${n}`] = params.get(n)!;
    }
    const state = opt.stateDict();
    for (const [k, t] of Object.entries(state.tensors)) tensors[`optimizer.${k}`] = t;
    const rngState = rng.getState();
    tensors['rng'] = rngState;
    saveSafetensors(this.file('stage-b-checkpoint.safetensors'), tensors, { done: String(done), step: String(state.step), kind: state.kind });
    rngState.dispose();
    this.json.progress.stageB = done;
    this.json.trained = trained;
    this.save();
  }

  /** Restores a partial stage B into sd.unet (or into `lora`) and returns the optimizer state and RNG to continue with. */
  loadCheckpoint(sd: StableDiffusion, lora?: LoRA): { done: number; optimizer: optim.OptimizerState; rngState: Tensor } | null {
    const file = this.file('stage-b-checkpoint.safetensors');
    if (this.json.progress.stageB === 0 || !existsSync(file)) return null;
    const m = loadSafetensors(file);
    const weights = new Map<string, Tensor>();
    const adapters = new Map<string, Tensor>();
    const opt: Record<string, Tensor> = {};
    for (const [k, t] of m) {
      if (k.startsWith('unet.')) weights.set(k.slice(5), t);
      else if (k.startsWith('lora.')) adapters.set(k.slice(5), t);
      else if (k.startsWith('optimizer.')) opt[k.slice(10)] = t;
    }
    try {
      if (lora) lora.loadStateDict(adapters, { source: `${file} (LoRA adapters)` });
      else this.applyWeights(sd, weights);
    } catch (e) {
      dispose([...m.values()]);
      throw e instanceof SessionError ? e : new SessionError(this.dir, `its stage B checkpoint does not fit these settings (${(e as Error).message.split('\n')[0]}): use --restart`);
    } finally {
      dispose([...weights.values(), ...adapters.values()]);
    }
    return { done: this.json.progress.stageB, optimizer: { kind: 'adam', step: this.json.progress.stageB, hyper: {}, tensors: opt }, rngState: m.get('rng')! };
  }

  /** Stage B with LoRA is done: saves only the adapters (with the base model's fingerprint), not the UNet. */
  saveLoRA(sd: StableDiffusion, lora: LoRA): void {
    const tensors = Object.fromEntries(lora.namedParameters().map(([n, t]) => [`unet.${n}`, t]));
    saveSafetensors(this.file('lora.safetensors'), tensors, {
      format: 'imagic-lora', rank: String(lora.rank), alpha: String(lora.alpha), targets: lora.targets, base_fingerprint: modelFingerprint(sd),
    });
    this.json.trained = lora.mergedWeightNames();
    this.json.progress.stageB = this.json.settings.stepsB;
    this.json.progress.stageBDone = true;
    this.save();
    rmSync(this.file('stage-b-checkpoint.safetensors'), { force: true });
  }

  saveFinetuned(sd: StableDiffusion, trained: string[]): void {
    const params = new Map(sd.unet.namedParameters());
    saveSafetensors(this.file('unet-finetuned.safetensors'), Object.fromEntries(trained.map((n) => [n, params.get(n)!])), { format: 'imagic-session' });
    this.json.trained = trained;
    this.json.progress.stageB = this.json.settings.stepsB;
    this.json.progress.stageBDone = true;
    this.save();
    rmSync(this.file('stage-b-checkpoint.safetensors'), { force: true });
  }

  /** Puts the fine-tuned tensors (or the LoRA adapters, merged) into sd.unet, which must be the session's base model. */
  loadFinetuned(sd: StableDiffusion): void {
    if (this.json.settings.train === 'lora') {
      this.loadLoRA(sd);
      return;
    }
    const file = this.file('unet-finetuned.safetensors');
    if (!this.json.progress.stageBDone || !existsSync(file)) throw new SessionError(this.dir, 'stage B has not completed (no unet-finetuned.safetensors): run `imagic edit` again to resume it');
    const m = loadSafetensors(file);
    try {
      this.applyWeights(sd, m);
    } finally {
      dispose([...m.values()]);
    }
  }

  private loadLoRA(sd: StableDiffusion): void {
    const file = this.file('lora.safetensors');
    if (!this.json.progress.stageBDone || !existsSync(file)) throw new SessionError(this.dir, 'stage B has not completed (no lora.safetensors): run `imagic edit` again to resume it');
    const header = readSafetensorsHeader(file);
    const meta = header.metadata;
    const fp = modelFingerprint(sd);
    if (meta.base_fingerprint !== fp) {
      throw new SessionError(this.dir, `its LoRA adapters were trained on another base model (fingerprint ${meta.base_fingerprint ?? 'none'}; this model's is ${fp}): load ${this.json.model.source}, the model it was made with`);
    }
    const m = loadSafetensors(file, {}, header);
    const adapters = new Map([...m].map(([k, t]) => [k.replace(/^unet\./, ''), t]));
    const lora = new LoRA(sd.unet, { rank: Number(meta.rank), alpha: Number(meta.alpha), targets: meta.targets as LoRATargets });
    try {
      lora.loadStateDict(adapters, { source: file });
      lora.merge();
    } catch (e) {
      throw new SessionError(this.dir, `lora.safetensors does not fit this model: ${(e as Error).message}`);
    } finally {
      lora.detach();
      lora.dispose();
      dispose([...m.values()]);
    }
  }

  private applyWeights(sd: StableDiffusion, weights: Map<string, Tensor>): void {
    const params = new Map(sd.unet.namedParameters());
    for (const [k, t] of weights) {
      const p = params.get(k);
      if (p === undefined || p.shape.join() !== t.shape.join()) {
        throw new SessionError(this.dir, `fine-tuned tensor '${k}' ${p === undefined ? 'is not in this UNet' : `has shape [${t.shape}] but the UNet's is [${p.shape}]`}: a session of another model`);
      }
    }
    noGrad(() => {
      for (const [k, t] of weights) params.get(k)!.copy_(t);
    });
  }
}
