// What both metrics share: their errors (a weight file that does not match the model throws nn's StateDictError
// instead, listing every bad key) and how a model is named: a local path, or a Hugging Face Hub repo id.
import { existsSync, statSync } from 'node:fs';
import { type HubDownloadOptions, type HubProgress } from '../io/hub.js';

/** A model folder, config or weight file the metric cannot use; `where` is the path (or repo id). */
export class MetricLoadError extends Error {
  constructor(readonly where: string, message: string, options?: { cause?: unknown }) {
    super(`${where}: ${message}`, options);
    this.name = 'MetricLoadError';
  }
}

/** Images or texts a metric cannot score (shapes, sizes, counts, dtypes), saying what was expected. */
export class MetricInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricInputError';
  }
}

/** Hub options, for a repo id (see io/hub.ts: the cache is huggingface_hub's). */
export interface MetricHubOptions {
  revision?: string;
  token?: string;
  /** The cache only, no network (default HF_HUB_OFFLINE). */
  offline?: boolean;
  cacheDir?: string;
  /** Default HF_ENDPOINT, then https://huggingface.co. */
  endpoint?: string;
  onDownload?: (p: HubProgress) => void;
}

export function hubOptions(o: MetricHubOptions): HubDownloadOptions {
  return { revision: o.revision, token: o.token, offline: o.offline, cacheDir: o.cacheDir, endpoint: o.endpoint, onProgress: o.onDownload };
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/**
 * 'folder' for an existing path, 'hub' for something shaped like a repo id ('org/name') that is no path
 * here; anything else (a missing './x', '/x/y', 'a/b/c', a file where a folder is wanted) is a MetricLoadError.
 */
export function sourceKind(source: string, want: 'folder' | 'file'): 'folder' | 'file' | 'hub' {
  if (existsSync(source)) {
    const isDir = statSync(source).isDirectory();
    if (want === 'folder' && !isDir) throw new MetricLoadError(source, 'is a file; expected a model folder (config.json, model.safetensors, ...)');
    if (want === 'file' && isDir) throw new MetricLoadError(source, 'is a folder; expected a .safetensors file');
    return want;
  }
  if (REPO_ID.test(source) && !source.startsWith('.')) return 'hub';
  throw new MetricLoadError(source, `no such ${want}${want === 'folder' ? ', and not a Hub repo id like \'org/name\'' : ''}`);
}
