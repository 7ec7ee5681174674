// Streaming weight loading into nn Modules: every key and shape is checked from the safetensors
// headers alone, then tensors are read one by one into the model (a checkpoint is never held twice).
import { isFloating, noGrad, type DType, type Device, type Tensor } from '../engine/index.js';
import { StateDictError, type Module } from '../nn/index.js';
import { type JsonObject } from './config.js';
import { CheckpointError, resolveComponent, type ComponentFiles, type ResolveOptions } from './diffusers.js';
import { readSafetensorsHeader, SafetensorsError, SafetensorsReader, type TensorInfo } from './safetensors.js';

export interface LoadWeightsOptions {
  /** Floating-point parameters end up in this dtype (default: each parameter's own; integer ones keep theirs). */
  dtype?: DType;
  /** Where parameters end up (default: where they are; 'cpu' for a module built on 'meta'). */
  device?: Device;
  /**
   * Checkpoint keys accepted silently when the model lacks them (e.g. 'text_model.embeddings.position_ids'),
   * and model keys allowed to be absent from the checkpoint if the model already holds values for them.
   */
  ignore?: (string | RegExp)[];
  /** Throw on any missing, unexpected or mis-shaped key (default true); else load what matches. */
  strict?: boolean;
  /** Where the weights come from, for error messages (default: the file names). */
  source?: string;
  /** Maps a checkpoint key to the model's key (null drops it), e.g. to strip a 'text_model.' prefix. */
  rename?: (checkpointKey: string) => string | null;
  /** Called after each tensor with the bytes read so far, the total and the checkpoint key. */
  onProgress?: (doneBytes: number, totalBytes: number, key: string) => void;
}

export interface LoadSummary {
  /** Tensors read into the model. */
  tensors: number;
  /** Bytes read from the files (their stored dtype). */
  bytes: number;
  seconds: number;
  files: string[];
  /** What a non-strict load left out (all empty after a strict load). */
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

/** One tensor of a load plan: where it comes from and where it goes. */
export interface PlanItem {
  key: string;
  checkpointKey: string;
  file: string;
  info: TensorInfo;
  param: Tensor;
}

export interface LoadPlan {
  items: PlanItem[];
  totalBytes: number;
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

/**
 * Matches the files' headers (no tensor data read) against the module's parameters and buffers.
 * Strict by default: throws a StateDictError listing every missing, unexpected and mis-shaped key.
 */
export function planWeights(module: Module, weightFiles: string | string[], opts: LoadWeightsOptions = {}): LoadPlan {
  const files = typeof weightFiles === 'string' ? [weightFiles] : weightFiles;
  if (files.length === 0) throw new Error('loadWeights: no weight files given');
  const own = new Map<string, Tensor>([...module.namedParameters(), ...module.namedBuffers()]);
  const ignored = (k: string) => (opts.ignore ?? []).some((p) => (typeof p === 'string' ? p === k : p.test(k)));
  const found = new Map<string, { checkpointKey: string; file: string; info: TensorInfo }>();
  const unexpected: string[] = [];
  const duplicates: string[] = [];
  for (const file of files) {
    const header = readSafetensorsHeader(file);
    for (const [checkpointKey, info] of header.tensors) {
      const key = opts.rename ? opts.rename(checkpointKey) : checkpointKey;
      if (key === null) continue;
      const prev = found.get(key);
      if (prev !== undefined) {
        duplicates.push(`'${key}' in ${prev.file} and ${file}`);
        continue;
      }
      if (!own.has(key)) {
        if (!ignored(checkpointKey) && !ignored(key)) unexpected.push(key);
        continue;
      }
      found.set(key, { checkpointKey, file, info });
    }
  }
  if (duplicates.length) throw new SafetensorsError(files.join(', '), `keys stored twice: ${duplicates.slice(0, 10).join('; ')}`);
  const missing: string[] = [];
  const mismatched: LoadPlan['mismatched'] = [];
  const items: PlanItem[] = [];
  for (const [key, param] of own) {
    const f = found.get(key);
    if (f === undefined) {
      // An ignored key may be absent only if the model already has real values for it.
      if (!ignored(key) || param.device === 'meta') missing.push(key);
      continue;
    }
    if (f.info.shape.join(',') !== param.shape.join(',')) {
      mismatched.push({ key, expected: param.shape, got: f.info.shape });
      continue;
    }
    items.push({ key, ...f, param });
  }
  if ((opts.strict ?? true) && (missing.length || unexpected.length || mismatched.length)) {
    throw new StateDictError(missing, unexpected, mismatched, opts.source ?? files.join(', '));
  }
  // File order, then offset order within a file: the reads go through each file once, front to back.
  const order = new Map(files.map((f, i) => [f, i]));
  items.sort((a, b) => order.get(a.file)! - order.get(b.file)! || a.info.begin - b.info.begin);
  const totalBytes = items.reduce((n, it) => n + (it.info.end - it.info.begin), 0);
  return { items, totalBytes, missing, unexpected, mismatched };
}

/** Reads one tensor and puts it in its parameter: assign_ for a meta one or a dtype/device change, else copy_ in place. */
function loadOne(reader: SafetensorsReader, it: PlanItem, opts: LoadWeightsOptions): void {
  const p = it.param;
  const dtype: DType = isFloating(p.dtype) && opts.dtype !== undefined ? opts.dtype : p.dtype;
  const device: Device = opts.device ?? (p.device === 'meta' ? 'cpu' : p.device);
  const raw = reader.read(it.checkpointKey);
  try {
    noGrad(() => {
      if (p.device === 'meta' || dtype !== p.dtype || !sameDevice(device, p.device)) {
        const converted = raw.dtype === dtype && sameDevice(device, 'cpu') ? raw : raw.to({ dtype, device });
        p.assign_(converted); // shares converted's storage: no second copy
        if (converted !== raw) converted.dispose();
      } else {
        p.copy_(raw);
      }
    });
  } finally {
    raw.dispose();
  }
}

function* stream(module: Module, weightFiles: string | string[], opts: LoadWeightsOptions): Generator<void, LoadSummary> {
  const start = performance.now();
  const plan = planWeights(module, weightFiles, opts);
  const files = typeof weightFiles === 'string' ? [weightFiles] : weightFiles;
  let done = 0;
  let reader = null as SafetensorsReader | null;
  try {
    for (const it of plan.items) {
      if (reader?.file !== it.file) {
        reader?.close();
        reader = new SafetensorsReader(it.file);
      }
      loadOne(reader, it, opts);
      done += it.info.end - it.info.begin;
      opts.onProgress?.(done, plan.totalBytes, it.checkpointKey);
      yield;
    }
  } finally {
    reader?.close();
  }
  return {
    tensors: plan.items.length, bytes: done, seconds: (performance.now() - start) / 1000, files: [...files],
    missing: plan.missing, unexpected: plan.unexpected, mismatched: plan.mismatched,
  };
}

/**
 * Loads safetensors files (one, or the shards of a checkpoint) into `module`: first checks every
 * key and shape from the headers (StateDictError listing all bad keys), then streams tensor by tensor.
 * A module built on 'meta' gets the file's data with no second copy; an allocated one is copied into.
 */
export function loadWeights(module: Module, weightFiles: string | string[], opts: LoadWeightsOptions = {}): LoadSummary {
  const gen = stream(module, weightFiles, opts);
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
  }
}

/** As loadWeights, yielding to the event loop between tensors (so progress bars and servers stay live). */
export async function loadWeightsAsync(module: Module, weightFiles: string | string[], opts: LoadWeightsOptions = {}): Promise<LoadSummary> {
  const gen = stream(module, weightFiles, opts);
  let last = performance.now();
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
    if (performance.now() - last > 20) {
      await new Promise((resolve) => setImmediate(resolve));
      last = performance.now();
    }
  }
}

/** What a build function receives besides the config: build on 'meta', in the load dtype. */
export interface BuildInit {
  device: 'meta';
  dtype: DType;
}

export type BuildFn<M extends Module> = (config: JsonObject, init: BuildInit) => M;

export interface LoadComponentOptions extends LoadWeightsOptions, ResolveOptions {}

export interface LoadedComponent<M extends Module> {
  module: M;
  config: JsonObject;
  files: ComponentFiles;
  summary: LoadSummary;
}

function prepare<M extends Module>(root: string, name: string, build: BuildFn<M>, opts: LoadComponentOptions) {
  const files = resolveComponent(root, name, opts);
  if (files.files.length === 0) {
    throw new CheckpointError(files.dir, `component '${name}' has no weights to load (${files.className ?? 'a config-only component'}: read its config with resolveComponent)`);
  }
  const module = build(files.config, { device: 'meta', dtype: opts.dtype ?? 'float32' });
  const loadOpts = { ...opts, source: opts.source ?? `${name} (${files.files.join(', ')})` };
  return { files, module, loadOpts };
}

/**
 * Resolves a component of a diffusers folder, builds its module on the meta device from its config,
 * and streams the weights in: { module, config, files, summary }.
 *
 *   const { module: unet } = loadComponent(root, 'unet', (c, init) => new UNet2DConditionModel(c, init), { dtype: 'float16', device: 'cuda' });
 */
export function loadComponent<M extends Module>(root: string, name: string, build: BuildFn<M>, opts: LoadComponentOptions = {}): LoadedComponent<M> {
  const { files, module, loadOpts } = prepare(root, name, build, opts);
  try {
    return { module, config: files.config, files, summary: loadWeights(module, files.files, loadOpts) };
  } catch (e) {
    module.dispose();
    throw e;
  }
}

export async function loadComponentAsync<M extends Module>(root: string, name: string, build: BuildFn<M>, opts: LoadComponentOptions = {}): Promise<LoadedComponent<M>> {
  const { files, module, loadOpts } = prepare(root, name, build, opts);
  try {
    return { module, config: files.config, files, summary: await loadWeightsAsync(module, files.files, loadOpts) };
  } catch (e) {
    module.dispose();
    throw e;
  }
}

/** One line for logs: "unet: 686 tensors, 3.44 GB in 2.10 s (1.64 GB/s)". */
export function formatSummary(s: LoadSummary, name = 'weights'): string {
  const gb = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);
  const rate = s.seconds > 0 ? ` (${gb(s.bytes / s.seconds)}/s)` : '';
  const left = s.missing.length + s.unexpected.length + s.mismatched.length;
  return `${name}: ${s.tensors} tensors, ${gb(s.bytes)} in ${s.seconds.toFixed(2)} s${rate}${left ? `, ${left} keys skipped` : ''}`;
}

function sameDevice(a: string, b: string): boolean {
  const norm = (d: string) => (d === 'cuda' ? 'cuda:0' : d);
  return norm(a) === norm(b);
}
