// An Imagic edit as a job: what `imagic batch` runs itself or puts on the Redis queue, what the web
// editor hands to the queue (`imagic serve --queue`), and what `imagic worker` takes from it. A payload
// that is not one is refused before anything runs.
import { PRESETS, TRAIN_MODES, type PresetName, type TrainMode } from '../pipelines/imagic/index.js';

/** One row of a batch file (src/cli/batch/csv.ts), or one edit of the web editor. */
export interface BatchRow {
  /** 0-based position among the data rows. */
  index: number;
  /** Unique and file-name-safe: `003-cat-a-cat-wearing-a-hat`; the row's folder under <out>/rows/. */
  key: string;
  /** Absolute path of the input. */
  image: string;
  /** As the CSV names it. */
  imageName: string;
  target: string;
  source?: string;
  eta?: number;
  seed?: number;
  preset?: PresetName;
}

export const JOB_VERSION = 1;

/** Settings every row of the batch shares (a row's own eta, seed and preset win). */
export interface BatchSettings {
  model: string;
  /** A single-file model: its LDM / sgm YAML (absolute path), tokenizer (absolute path or repo id), text-encoder heads. */
  config?: string;
  tokenizer?: string;
  textEncoderHeads?: number;
  /** The CLIP that scores rows (a folder, absolute, or a Hub repo id); default: the model's clip/, else the Hub's ViT-L. */
  clipModel?: string;
  preset?: PresetName;
  stepsA?: number;
  stepsB?: number;
  lrA?: number;
  lrB?: number;
  /** What stage B trains (default: the preset's). */
  train?: TrainMode;
  /** The training seed (stages A and B). */
  trainSeed?: number;
  steps?: number;
  guidance?: number;
  checkpointEvery?: number;
  /** Also run SDEdit and DDIM inversion (imagic compare). */
  baselines: boolean;
  strength: number;
  /** Choose eta and seed automatically for rows without an eta (default: when the model has a CLIP). */
  auto?: boolean;
}

export interface RowJob {
  version: number;
  batchId: string;
  /** The batch's out dir: rows write into <outDir>/rows/<key>/ (a folder every worker reaches). */
  outDir: string;
  row: BatchRow;
  settings: BatchSettings;
  /** The session folder, when not <outDir>/rows/<key>/session (the web editor's own sessions). */
  session?: string;
}

export class MalformedJobError extends Error {
  constructor(why: string) {
    super(`malformed job: ${why}`);
    this.name = 'MalformedJobError';
  }
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const optNum = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isFinite(x));

/** The payload as a RowJob, or MalformedJobError saying what is wrong. */
export function checkRowJob(x: unknown): RowJob {
  if (!isObj(x)) throw new MalformedJobError('not an object');
  if (x.version !== JOB_VERSION) throw new MalformedJobError(`version ${JSON.stringify(x.version)}, this imagic reads ${JOB_VERSION}`);
  if (typeof x.batchId !== 'string' || !/^[0-9a-f]{16}$/.test(x.batchId)) throw new MalformedJobError('batchId');
  if (typeof x.outDir !== 'string' || !x.outDir.startsWith('/')) throw new MalformedJobError('outDir must be an absolute path');
  const r = x.row, s = x.settings;
  if (!isObj(r)) throw new MalformedJobError('row');
  if (typeof r.key !== 'string' || !/^[0-9]{3,}-[a-z0-9-]+$/.test(r.key)) throw new MalformedJobError('row.key');
  if (typeof r.image !== 'string' || !r.image.startsWith('/')) throw new MalformedJobError('row.image must be an absolute path');
  if (typeof r.target !== 'string' || r.target.trim() === '') throw new MalformedJobError('row.target');
  if (!Number.isInteger(r.index) || !optNum(r.eta) || !optNum(r.seed)) throw new MalformedJobError('row.index, row.eta or row.seed');
  if (r.preset !== undefined && !(typeof r.preset === 'string' && r.preset in PRESETS)) throw new MalformedJobError('row.preset');
  if (!isObj(s) || typeof s.model !== 'string' || typeof s.baselines !== 'boolean' || typeof s.strength !== 'number') throw new MalformedJobError('settings');
  for (const k of ['stepsA', 'stepsB', 'lrA', 'lrB', 'trainSeed', 'steps', 'guidance', 'checkpointEvery']) if (!optNum(s[k])) throw new MalformedJobError(`settings.${k}`);
  if (s.auto !== undefined && typeof s.auto !== 'boolean') throw new MalformedJobError('settings.auto');
  if (s.config !== undefined && !(typeof s.config === 'string' && s.config.startsWith('/'))) throw new MalformedJobError('settings.config must be an absolute path');
  if (s.tokenizer !== undefined && typeof s.tokenizer !== 'string') throw new MalformedJobError('settings.tokenizer');
  if (s.clipModel !== undefined && typeof s.clipModel !== 'string') throw new MalformedJobError('settings.clipModel');
  if (s.textEncoderHeads !== undefined && !(Number.isInteger(s.textEncoderHeads) && (s.textEncoderHeads as number) > 0)) throw new MalformedJobError('settings.textEncoderHeads');
  if (s.train !== undefined && !TRAIN_MODES.includes(s.train as TrainMode)) throw new MalformedJobError('settings.train');
  if (x.session !== undefined && !(typeof x.session === 'string' && x.session.startsWith('/'))) throw new MalformedJobError('session must be an absolute path');
  return x as unknown as RowJob;
}
