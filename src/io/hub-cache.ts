// The huggingface_hub cache layout (models--{org}--{name}/{blobs,snapshots,refs}), its environment
// variables and repo-file filtering, as in huggingface_hub's constants.py and file_download.py.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** Why a Hub operation failed; `code` follows the Hub's X-Error-Code names where one applies. */
export type HubErrorCode = 'RepoNotFound' | 'RevisionNotFound' | 'EntryNotFound' | 'GatedRepo' | 'NotCached'
  | 'Network' | 'Integrity' | 'InvalidArgument' | 'Http';

/** A Hub download that failed, with a code saying why (not found, gated, offline, ...). */
export class HubError extends Error {
  constructor(readonly code: HubErrorCode, message: string, readonly status?: number) {
    super(message);
    this.name = 'HubError';
  }
}

const envValue = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
};
const expandHome = (p: string): string => (p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p);

/** HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(): string {
  const home = envValue('HF_HOME');
  if (home) return expandHome(home);
  return path.join(expandHome(envValue('XDG_CACHE_HOME') ?? '~/.cache'), 'huggingface');
}

/** The hub cache folder: explicit, else HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else HF_HOME/hub. */
export function hubCacheDir(explicit?: string): string {
  if (explicit) return expandHome(explicit);
  const env = envValue('HF_HUB_CACHE') ?? envValue('HUGGINGFACE_HUB_CACHE');
  return env ? expandHome(env) : path.join(hfHome(), 'hub');
}

export function hubEndpoint(explicit?: string): string {
  return (explicit ?? envValue('HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** HF_HUB_OFFLINE accepts 1/true/yes/on, as huggingface_hub does. */
export function isOfflineEnv(): boolean {
  return ['1', 'true', 'yes', 'on'].includes((envValue('HF_HUB_OFFLINE') ?? '').toLowerCase());
}

/**
 * The token to send: `explicit` (false: none at all), else HF_TOKEN (or the older
 * HUGGING_FACE_HUB_TOKEN), else the file HF_TOKEN_PATH or HF_HOME/token that `huggingface-cli login` writes.
 */
export function resolveToken(explicit?: string | false): string | undefined {
  if (explicit === false) return undefined;
  if (explicit) return explicit;
  const env = envValue('HF_TOKEN') ?? envValue('HUGGING_FACE_HUB_TOKEN');
  if (env) return env.trim();
  const file = expandHome(envValue('HF_TOKEN_PATH') ?? path.join(hfHome(), 'token'));
  try {
    const t = readFileSync(file, 'utf8').trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

/** Rejects ids and names that could escape the cache folder or that the Hub refuses. */
export function validateRepoId(repoId: string): void {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repoId) || repoId.includes('--') || repoId.includes('..') || repoId.length > 96) {
    throw new HubError('InvalidArgument', `invalid Hub repo id '${repoId}': expected 'org/name' (letters, digits, '-', '_', '.'; no '--' or '..')`);
  }
}

export function validateRevision(revision: string): void {
  if (!revision || revision.split('/').some((s) => s === '' || s === '.' || s === '..') || revision.includes('\\')) {
    throw new HubError('InvalidArgument', `invalid revision '${revision}'`);
  }
}

/** A repo file name must stay inside the snapshot folder. */
export function validateRepoFilename(filename: string): void {
  const parts = filename.split('/');
  if (!filename || filename.startsWith('/') || filename.includes('\\') || parts.some((s) => s === '' || s === '.' || s === '..')) {
    throw new HubError('InvalidArgument', `invalid repo file name '${filename}'`);
  }
}

/** models--{org}--{name}, as huggingface_hub's repo_folder_name. */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

export interface RepoCache {
  root: string; // <cache>/models--org--name
  blob(etag: string): string;
  snapshot(commit: string): string;
  pointer(commit: string, filename: string): string;
  ref(revision: string): string;
}

export function repoCache(cacheDir: string, repoId: string): RepoCache {
  const root = path.join(cacheDir, repoFolderName(repoId));
  return {
    root,
    blob: (etag) => path.join(root, 'blobs', etag),
    snapshot: (commit) => path.join(root, 'snapshots', commit),
    pointer: (commit, filename) => path.join(root, 'snapshots', commit, ...filename.split('/')),
    ref: (revision) => path.join(root, 'refs', ...revision.split('/')),
  };
}

/** The commit a revision points to in the cache: itself for a commit hash, else refs/{revision}. */
export function cachedCommit(cache: RepoCache, revision: string): string | undefined {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const c = readFileSync(cache.ref(revision), 'utf8').trim();
    return COMMIT_HASH.test(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Records revision -> commit in refs/, only when it changed (the cache may be read-only otherwise). */
export function writeRef(cache: RepoCache, revision: string, commit: string): void {
  if (revision === commit) return;
  const file = cache.ref(revision);
  try {
    if (readFileSync(file, 'utf8') === commit) return;
  } catch {
    // absent: write it
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, commit);
}

/**
 * Points snapshots/{commit}/{filename} at blobs/{etag} with a RELATIVE symlink, as huggingface_hub
 * does (../../blobs/x, one more ../ per folder level in filename); copies where symlinks are refused.
 */
export function linkPointer(cache: RepoCache, commit: string, filename: string, etag: string): string {
  const pointer = cache.pointer(commit, filename);
  const blob = cache.blob(etag);
  mkdirSync(path.dirname(pointer), { recursive: true });
  rmSync(pointer, { force: true });
  try {
    symlinkSync(path.relative(path.dirname(pointer), blob), pointer);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && existsSync(pointer)) return pointer; // linked concurrently
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    copyFileSync(blob, pointer); // e.g. Windows without developer mode
  }
  return pointer;
}

/** Python fnmatch semantics: '*' matches anything (slashes too), '?' one character, [seq] a class. */
function fnmatchRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
      } else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** huggingface_hub's filter_repo_objects: keep files matching any allow pattern and no ignore pattern. */
export function filterRepoFiles(files: string[], allow?: string | string[], ignore?: string | string[]): string[] {
  const compile = (p?: string | string[]): RegExp[] | undefined =>
    p === undefined ? undefined : (Array.isArray(p) ? p : [p]).map((s) => fnmatchRegex(s.endsWith('/') ? s + '*' : s));
  const allowRe = compile(allow), ignoreRe = compile(ignore);
  return files.filter((f) => (!allowRe || allowRe.some((r) => r.test(f))) && !(ignoreRe && ignoreRe.some((r) => r.test(f))));
}
