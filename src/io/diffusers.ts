// Diffusers checkpoint folders: model_index.json and component folders, with weight files resolved
// as diffusers (ModelMixin.from_pretrained) and transformers do it: variants, sharded indexes.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { readConfig, type JsonObject } from './config.js';

export class CheckpointError extends Error {
  constructor(readonly where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = 'CheckpointError';
  }
}

export const MODEL_INDEX = 'model_index.json';
/** Weight file stems: diffusers models and transformers models. */
export const WEIGHT_STEMS = { diffusers: 'diffusion_pytorch_model', transformers: 'model' } as const;
export type Library = keyof typeof WEIGHT_STEMS;
/** Config file names, in the order they are looked for. Only `config.json` folders carry weights. */
const CONFIG_NAMES = ['config.json', 'scheduler_config.json', 'preprocessor_config.json', 'tokenizer_config.json'];
const PICKLED = /\.(bin|ckpt|pt|pth|pkl)$/;
const OTHER_FORMATS = /\.(msgpack|h5|onnx|gguf)$/;

/** diffusers' and transformers' `_add_variant`: the variant goes before the last extension. */
export function addVariant(name: string, variant?: string | null): string {
  if (!variant) return name;
  const dot = name.lastIndexOf('.');
  return `${name.slice(0, dot)}.${variant}${name.slice(dot)}`;
}

export interface PipelineComponentEntry {
  /** 'diffusers' or 'transformers' (null when model_index.json sets the component to null). */
  library: string | null;
  className: string | null;
}

export interface PipelineIndex {
  file: string;
  /** '_class_name', e.g. 'StableDiffusionPipeline'. */
  className: string | null;
  diffusersVersion: string | null;
  /** Components in file order: name -> [library, class]. */
  components: Map<string, PipelineComponentEntry>;
  raw: JsonObject;
}

/** Reads model_index.json: the entries that are [library, class] pairs are the components. */
export function readModelIndex(root: string): PipelineIndex {
  const file = path.join(root, MODEL_INDEX);
  const raw = readConfig(file);
  const components = new Map<string, PipelineComponentEntry>();
  for (const [name, v] of Object.entries(raw)) {
    if (name.startsWith('_') || !Array.isArray(v)) continue;
    if (v.length !== 2 || !v.every((x) => x === null || typeof x === 'string')) {
      throw new CheckpointError(file, `component '${name}' should be [library, class], got ${JSON.stringify(v)}`);
    }
    components.set(name, { library: v[0], className: v[1] });
  }
  const str = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : null);
  return { file, className: str('_class_name'), diffusersVersion: str('_diffusers_version'), components, raw };
}

/** True when `root` is a folder with a model_index.json. */
export function isDiffusersPipeline(root: string): boolean {
  return isFile(path.join(root, MODEL_INDEX));
}

export interface ComponentStatus extends PipelineComponentEntry {
  name: string;
  /** The component folder exists. */
  present: boolean;
}

/** Every component model_index.json lists, with whether its folder is there. */
export function listComponents(root: string): ComponentStatus[] {
  return [...readModelIndex(root).components].map(([name, e]) => ({ name, ...e, present: isDir(path.join(root, name)) }));
}

export interface ResolveOptions {
  /** A weight variant such as 'fp16' (diffusion_pytorch_model.fp16.safetensors). */
  variant?: string | null;
}

export interface WeightFiles {
  /** Absolute paths of the safetensors files, shards in order. */
  files: string[];
  /** For a sharded checkpoint: the index file and its weight_map (key -> shard file name). */
  index: { file: string; weightMap: Map<string, string> } | null;
  variant: string | null;
}

export interface ComponentFiles extends WeightFiles {
  name: string;
  dir: string;
  library: string | null;
  className: string | null;
  /** config.json, scheduler_config.json, ... (null for a tokenizer folder without tokenizer_config.json). */
  configFile: string | null;
  config: JsonObject;
  /** Every file name in the folder (vocab.json, merges.txt, ...), sorted. */
  entries: string[];
}

/**
 * A component of a pipeline folder (root/name), or `root` itself when it is a single component
 * folder (config.json + weights, as saved by save_pretrained). Models get their safetensors files;
 * schedulers and tokenizers get none.
 */
export function resolveComponent(root: string, name: string, opts: ResolveOptions = {}): ComponentFiles {
  if (!existsSync(root)) throw new CheckpointError(root, 'no such file or folder');
  if (!isDir(root)) {
    throw new CheckpointError(root, 'is a file, not a diffusers folder. A single-file checkpoint (.ckpt/.safetensors) can be converted with '
      + `python -c "from diffusers import StableDiffusionPipeline as P; P.from_single_file('${root}').save_pretrained('OUT_DIR')"`);
  }
  let dir: string;
  let entry: PipelineComponentEntry | undefined;
  if (isDiffusersPipeline(root)) {
    const index = readModelIndex(root);
    entry = index.components.get(name);
    const listed = [...index.components.keys()];
    const present = listed.filter((c) => isDir(path.join(root, c)));
    if (isDir(path.join(root, name))) {
      dir = path.join(root, name);
    } else if (entry === undefined) {
      throw new CheckpointError(root, `the pipeline has no component '${name}'; model_index.json lists ${listed.join(', ') || 'none'} `
        + `(folders present: ${present.join(', ') || 'none'})`);
    } else if (entry.library === null) {
      throw new CheckpointError(root, `component '${name}' is set to null in model_index.json (folders present: ${present.join(', ') || 'none'})`);
    } else {
      throw new CheckpointError(root, `component '${name}' (${entry.className}) is listed in model_index.json but its folder `
        + `${path.join(root, name)} is missing (folders present: ${present.join(', ') || 'none'})`);
    }
  } else if (isDir(path.join(root, name))) {
    dir = path.join(root, name); // a folder of component folders without model_index.json
  } else if (CONFIG_NAMES.some((c) => isFile(path.join(root, c))) || hasWeights(root)) {
    dir = root; // a single component
  } else {
    throw new CheckpointError(root, 'not a diffusers checkpoint: expected a pipeline folder with model_index.json '
      + '(and unet/, vae/, text_encoder/, tokenizer/, scheduler/ folders) or a component folder with config.json and '
      + `diffusion_pytorch_model.safetensors or model.safetensors; found ${describeFolder(root)}`);
  }
  return resolveComponentDir(dir, name, entry, opts);
}

function resolveComponentDir(dir: string, name: string, entry: PipelineComponentEntry | undefined, opts: ResolveOptions): ComponentFiles {
  const entries = readdirSync(dir).sort();
  const configName = CONFIG_NAMES.find((c) => entries.includes(c));
  const tokenizerFiles = entries.includes('vocab.json') || entries.includes('tokenizer.json');
  if (configName === undefined && !tokenizerFiles) {
    throw new CheckpointError(dir, `component '${name}' has no config.json (nor ${CONFIG_NAMES.slice(1).join(', ')}); found ${describeFolder(dir)}`);
  }
  const configFile = configName === undefined ? null : path.join(dir, configName);
  const config = configFile === null ? {} : readConfig(configFile);
  const className = entry?.className ?? (typeof config._class_name === 'string' ? config._class_name
    : Array.isArray(config.architectures) && typeof config.architectures[0] === 'string' ? config.architectures[0] : null);
  const library = entry?.library ?? guessLibrary(config);
  const base = { name, dir, library, className, configFile, config, entries };
  if (configName !== 'config.json') {
    return { ...base, files: [], index: null, variant: null }; // scheduler, tokenizer, feature extractor: no weights
  }
  return { ...base, ...resolveWeightFiles(dir, { ...opts, library }) };
}

function guessLibrary(config: JsonObject): Library | null {
  if ('_diffusers_version' in config || '_class_name' in config) return 'diffusers';
  if ('transformers_version' in config || 'architectures' in config || 'model_type' in config) return 'transformers';
  return null;
}

/**
 * The safetensors files of a model folder, looked for as the libraries do: diffusers tries the
 * shard index first (diffusion_pytorch_model.safetensors.index[.fp16].json), then the single file
 * (diffusion_pytorch_model[.fp16].safetensors); transformers the single file (model[.fp16].safetensors)
 * first, then model.safetensors.index[.fp16].json. A variant also finds the legacy shard layout
 * (the plain index naming *-00001-of-00002.fp16.safetensors shards).
 */
export function resolveWeightFiles(dir: string, opts: ResolveOptions & { library?: string | null } = {}): WeightFiles {
  const variant = opts.variant ?? null;
  const entries = readdirSync(dir).sort();
  const libs: Library[] = opts.library === 'transformers' ? ['transformers'] : opts.library === 'diffusers' ? ['diffusers'] : ['diffusers', 'transformers'];
  for (const lib of libs) {
    const stem = WEIGHT_STEMS[lib];
    const single = addVariant(`${stem}.safetensors`, variant);
    const indexName = addVariant(`${stem}.safetensors.index.json`, variant);
    const order = lib === 'diffusers' ? ['index', 'single'] : ['single', 'index'];
    for (const kind of order) {
      if (kind === 'single' && entries.includes(single)) return { files: [path.join(dir, single)], index: null, variant };
      if (kind === 'index' && entries.includes(indexName)) return { ...readShardIndex(path.join(dir, indexName)), variant };
    }
    if (variant !== null && entries.includes(`${stem}.safetensors.index.json`)) {
      const legacy = readShardIndex(path.join(dir, `${stem}.safetensors.index.json`), variant);
      if (legacy !== null) return { ...legacy, variant };
    }
  }
  throw new CheckpointError(dir, missingWeightsMessage(entries, libs, variant));
}

/** Reads a *.safetensors.index*.json; with `legacyVariant`, null unless its shards are named *.VARIANT.safetensors. */
function readShardIndex(file: string, legacyVariant: string): { files: string[]; index: WeightFiles['index'] } | null;
function readShardIndex(file: string): { files: string[]; index: WeightFiles['index'] };
function readShardIndex(file: string, legacyVariant?: string): { files: string[]; index: WeightFiles['index'] } | null {
  const raw = readConfig(file);
  const map = raw.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new CheckpointError(file, "not a shard index: expected a 'weight_map' object {key: shard file name}");
  }
  const weightMap = new Map(Object.entries(map as Record<string, string>));
  const shards = [...new Set(weightMap.values())].sort();
  if (legacyVariant !== undefined) {
    const re = new RegExp(`-\\d{5}-of-\\d{5}\\.${legacyVariant.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.safetensors$`);
    if (shards.length === 0 || !shards.every((s) => re.test(s))) return null;
  }
  const dir = path.dirname(file);
  const bad = shards.filter((s) => s !== path.basename(s) || s === '..');
  if (bad.length) throw new CheckpointError(file, `shard names must be file names in the same folder: ${bad.join(', ')}`);
  const missing = shards.filter((s) => !isFile(path.join(dir, s)));
  if (missing.length) {
    throw new CheckpointError(file, `the index lists ${shards.length} shards, ${missing.length} missing: ${missing.join(', ')} (incomplete download?)`);
  }
  return { files: shards.map((s) => path.join(dir, s)), index: { file, weightMap } };
}

function missingWeightsMessage(entries: string[], libs: Library[], variant: string | null): string {
  const wanted = libs.flatMap((lib) => {
    const stem = WEIGHT_STEMS[lib];
    return [addVariant(`${stem}.safetensors`, variant), addVariant(`${stem}.safetensors.index.json`, variant)];
  });
  const safetensors = entries.filter((e) => e.endsWith('.safetensors') || /\.safetensors\.index(\.[^.]+)?\.json$/.test(e));
  const pickled = entries.filter((e) => PICKLED.test(e));
  const other = entries.filter((e) => OTHER_FORMATS.test(e));
  const lines = [`no ${variant ? `'${variant}' variant ` : ''}weights: expected ${wanted.join(' or ')}`];
  if (safetensors.length) {
    const variants = [...new Set(safetensors.map(variantOf).filter((v) => v !== null))];
    lines.push(`found ${safetensors.join(', ')}`);
    const plain = safetensors.some((f) => variantOf(f) === null);
    const choices = [...(plain ? ['no variant'] : []), ...variants.map((v) => `variant '${v}'`)];
    if (choices.length) lines.push(`load it with ${choices.join(' or ')}`);
  } else if (pickled.length) {
    lines.push(`found only pickled PyTorch weights (${pickled.join(', ')}); imagic reads safetensors only. Convert them with`
      + ` python -c "import torch; from safetensors.torch import save_file; save_file(torch.load('${pickled[0]}', map_location='cpu', weights_only=True), '${wanted[0]}')"`
      + ' (or for a whole pipeline: DiffusionPipeline.from_pretrained(DIR).save_pretrained(OUT_DIR, safe_serialization=True))');
  } else if (other.length) {
    lines.push(`found only ${other.join(', ')}; imagic reads safetensors only`);
  } else {
    lines.push(`found ${entries.length ? entries.join(', ') : 'an empty folder'}`);
  }
  return lines.join('; ');
}

/** 'fp16' for diffusion_pytorch_model.fp16.safetensors, *.fp16-00001-of-00002.safetensors, *.index.fp16.json. */
function variantOf(file: string): string | null {
  const m = /^(?:diffusion_pytorch_model|model)\.([^.-]+)(?:-\d{5}-of-\d{5})?\.safetensors$/.exec(file)
    ?? /\.safetensors\.index\.([^.]+)\.json$/.exec(file)
    ?? /-\d{5}-of-\d{5}\.([^.]+)\.safetensors$/.exec(file);
  return m ? m[1]! : null;
}

function hasWeights(dir: string): boolean {
  return readdirSync(dir).some((e) => e.endsWith('.safetensors') || PICKLED.test(e));
}

function describeFolder(dir: string): string {
  const entries = readdirSync(dir).sort();
  if (entries.length === 0) return 'an empty folder';
  const shown = entries.slice(0, 20).map((e) => (isDir(path.join(dir, e)) ? `${e}/` : e));
  return shown.join(', ') + (entries.length > 20 ? `, ... (${entries.length} entries)` : '');
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
