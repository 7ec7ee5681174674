// `imagic edit` and `imagic render`: an Imagic edit with its session, and more renders from a session.
import path from 'node:path';
import { dispose, type Tensor } from '../engine/index.js';
import { imageToTensor, prepareImage, readImage, tensorToImage, writePng, type RgbImage } from '../io/image.js';
import { contactSheet } from '../io/sheet.js';
import { disposeStableDiffusion, type StableDiffusion } from '../pipelines/index.js';
import { EditSession, etaWarning, openForRender, renderGrid, resolveSettings, runEdit, type EditInputs, type EditResult, type Embeddings, type ImagicSettings, type PresetName } from '../pipelines/imagic/index.js';
import { checkOutputs, interruptFlag, withSuffix } from './options.js';
import { stepProgress, type StepProgress } from './progress.js';
import { loadModel, logger, type ModelArgs } from './model.js';
import { captionWarnings, imageDomainWarning, isShapesModel } from '../shapes/domain.js';

export interface RenderArgs {
  output: string;
  etas?: number[];
  seeds: number[];
  steps?: number;
  guidance?: number;
  force?: boolean;
}

export interface EditArgs extends ModelArgs, RenderArgs {
  /** Default: 'shapes' for the Shapes-64 model, else 'default'. */
  preset?: PresetName;
  stepsA?: number;
  stepsB?: number;
  lrA?: number;
  lrB?: number;
  train?: 'all' | 'attention';
  mixedPrecision?: 'no' | 'bf16' | 'fp16';
  seed?: number;
  sampleLatent?: boolean;
  checkpointEvery?: number;
  gradientCheckpointing?: boolean;
  session?: string;
  restart?: boolean;
}

/** The files a render writes: one image, or one per eta and seed plus the contact sheet at `output`. */
export function renderOutputs(output: string, etas: number[], seeds: number[]): { single: boolean; files: Map<string, string>; sheet: string | null } {
  const files = new Map<string, string>();
  const single = etas.length === 1 && seeds.length === 1;
  for (const seed of seeds) for (const eta of etas) files.set(`${eta}/${seed}`, single ? output : withSuffix(output, `eta${eta.toFixed(2)}-seed${seed}`));
  return { single, files, sheet: single ? null : output };
}

/** Renders etas x seeds from trained embeddings; writes the images and, for a sweep, the labelled sheet. */
export async function renderAll(sd: StableDiffusion, emb: Embeddings, settings: ImagicSettings, r: RenderArgs, log: (m: string) => void, quiet?: boolean): Promise<string[]> {
  const etas = r.etas ?? [settings.eta];
  for (const eta of etas) {
    const w = etaWarning(eta);
    if (w) log(`warning: ${w}`);
  }
  const out = renderOutputs(r.output, etas, r.seeds);
  const steps = r.steps ?? settings.steps;
  const guidance = r.guidance ?? settings.guidanceScale;
  const grid = new Map<string, RgbImage>();
  const bar = stepProgress('render', etas.length * r.seeds.length * steps, quiet);
  try {
    await renderGrid(sd, emb, {
      etas, seeds: r.seeds, steps, guidanceScale: guidance,
      onStep: (d) => bar.update(d),
      onImage: async (image: Tensor, eta, seed) => {
        const rgb = tensorToImage(image);
        image.dispose();
        grid.set(`${eta}/${seed}`, rgb);
        await writePng(out.files.get(`${eta}/${seed}`)!, rgb);
      },
    });
  } finally {
    bar.stop();
  }
  const written = [...out.files.values()];
  if (out.sheet) {
    const rows = r.seeds.map((seed) => etas.map((eta) => grid.get(`${eta}/${seed}`)!));
    const sheet = await contactSheet(rows, { rowLabels: r.seeds.map((s) => `seed ${s}`), colLabels: etas.map((e) => `eta ${e}`) });
    await writePng(out.sheet, sheet);
    written.push(out.sheet);
  }
  return written;
}

/** Loads and prepares the input image at the model's resolution ([1, 3, H, W] in [-1, 1]). */
export async function loadInput(file: string, sd: StableDiffusion, log: (m: string) => void): Promise<Tensor> {
  const img = await readImage(file);
  const size = (sd.unet.config.sample_size ?? 64) * 8;
  if (img.width !== size || img.height !== size) log(`note: ${file} is ${img.width}x${img.height}; resized and center-cropped to the model's ${size}x${size}`);
  const prepared = await prepareImage(img, { width: size, height: size, mode: 'center-crop' });
  if (isShapesModel(sd.root)) {
    const w = imageDomainWarning(prepared);
    if (w) log(`warning: ${w}`);
  }
  return imageToTensor(prepared);
}

/** The preset when none is given: 'shapes' for the embedded Shapes-64 model, else SD's 'default'. */
export function defaultPreset(model: string): PresetName {
  return isShapesModel(model) ? 'shapes' : 'default';
}

/** Warns about target text the Shapes-64 model cannot know (other models: nothing to check). */
export function checkTargetText(model: string, text: string, log: (m: string) => void): void {
  if (isShapesModel(model)) for (const w of captionWarnings(text)) log(`warning: ${w}`);
}

/** runEdit with a progress bar per stage (step, loss, time left), stopping when `stopped()` says so. */
export async function trainWithProgress(sd: StableDiffusion, dir: string, inputs: EditInputs, settings: ImagicSettings, a: { quiet?: boolean; restart?: boolean }, stopped: () => boolean, log: (m: string) => void): Promise<EditResult> {
  let bar: StepProgress | null = null;
  try {
    return await runEdit(sd, dir, inputs, settings, {
      onLog: log,
      shouldStop: stopped,
      onStage: (stage, total, startAt) => {
        bar?.stop();
        bar = stepProgress(`stage ${stage}`, total, a.quiet);
        if (startAt > 0) bar.update(startAt);
      },
      onStep: (_stage, step, _total, loss) => bar?.update(step, { loss: loss.toFixed(4) }),
    }, { restart: a.restart });
  } finally {
    (bar as StepProgress | null)?.stop();
  }
}

export function defaultSessionDir(output: string): string {
  const ext = path.extname(output);
  return `${output.slice(0, output.length - ext.length)}.imagic`;
}

export async function edit(imageFile: string, target: string, a: EditArgs): Promise<{ outputs: string[]; session: string; interrupted: boolean }> {
  if (target.trim() === '') throw new Error('the target text is empty');
  const settings = resolveSettings(a.preset ?? defaultPreset(a.model), {
    stepsA: a.stepsA, stepsB: a.stepsB, lrA: a.lrA, lrB: a.lrB, train: a.train, mixedPrecision: a.mixedPrecision,
    seed: a.seed, sampleLatent: a.sampleLatent, checkpointEvery: a.checkpointEvery, gradientCheckpointing: a.gradientCheckpointing, steps: a.steps, guidanceScale: a.guidance,
    eta: a.etas?.length === 1 ? a.etas[0] : undefined,
  });
  const out = renderOutputs(a.output, a.etas ?? [settings.eta], a.seeds);
  checkOutputs([...out.files.values(), ...(out.sheet ? [out.sheet] : [])], a.force ?? false);
  const log = logger(a.quiet);
  checkTargetText(a.model, target, log);
  const t0 = Date.now();
  const sd = await loadModel(a);
  const stop = interruptFlag(log);
  let input: Tensor | null = null;
  let emb: Embeddings | null = null;
  try {
    input = await loadInput(imageFile, sd, log);
    const dir = a.session ?? defaultSessionDir(a.output);
    const result = await trainWithProgress(sd, dir, { image: input, imageSource: path.resolve(imageFile), target, modelSource: a.model }, settings, a, stop.stopped, log);
    emb = result.embeddings;
    if (result.interrupted) {
      log(`interrupted: the session ${dir} is saved; run the same command again to resume`);
      return { outputs: [], session: dir, interrupted: true };
    }
    const outputs = await renderAll(sd, emb!, settings, a, log, a.quiet);
    log(`wrote ${outputs.join(', ')}`);
    log(`session: ${dir} (render more with: imagic render ${dir} --eta 0.5,0.6,0.7,0.8 --seeds 0,1,2 -o more.png)`);
    log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { outputs, session: dir, interrupted: false };
  } finally {
    stop.dispose();
    if (input) input.dispose();
    if (emb) dispose(Object.values(emb));
    disposeStableDiffusion(sd);
  }
}

export async function render(sessionDir: string, a: RenderArgs & Partial<ModelArgs>): Promise<string[]> {
  const session = EditSession.open(sessionDir);
  const etas = a.etas ?? [session.json.settings.eta];
  const out = renderOutputs(a.output, etas, a.seeds);
  checkOutputs([...out.files.values(), ...(out.sheet ? [out.sheet] : [])], a.force ?? false);
  const log = logger(a.quiet);
  const sd = await loadModel({ dtype: 'float32', device: 'cpu', ...a, model: a.model ?? session.json.model.source });
  let emb: Embeddings | null = null;
  try {
    emb = openForRender(sd, sessionDir).embeddings;
    const outputs = await renderAll(sd, emb, session.json.settings, { ...a, etas }, log, a.quiet);
    log(`wrote ${outputs.join(', ')}`);
    return outputs;
  } finally {
    if (emb) dispose(Object.values(emb));
    disposeStableDiffusion(sd);
  }
}
