// Hugging Face Hub downloads into the cache huggingface_hub uses (hf_hub_download, snapshot_download
// in file_download.py / _snapshot_download.py), so Python and imagic share downloaded checkpoints.
//
// Why our own client and not @huggingface/hub (the Hub's JavaScript library; 2.17.5 reviewed on
// 2026-12-01 against this module's tests and local Hub server): it downloads into the same cache
// layout for whole snapshots, but it lacks what checkpoints of gigabytes need, so nothing of it is
// adopted. Point by point, what this client does and @huggingface/hub 2.17.5 does not:
// - resume: a dropped or aborted download continues from its *.incomplete part with a Range request
//   (theirs truncates and starts over);
// - integrity: size, then sha256 (LFS) or git sha1 against the etag; a mismatch is deleted (theirs
//   caches whatever arrived);
// - offline: HF_HUB_OFFLINE / `offline`, and refs resolved from the cache when the Hub is unreachable
//   (theirs needs the network unless given a commit hash);
// - refs: a single file at a branch is filed under the repo's head commit with refs/<branch> written,
//   as huggingface_hub does (theirs uses the file's last commit and writes no ref, so Python misses it);
// - token: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH or HF_HOME/token (theirs: a parameter);
// - allow/ignore patterns with fnmatch semantics, which variant selection (fp16) relies on (theirs
//   fetches the whole repo), and 8 files at once (theirs: one after another);
// - per-file byte progress, AbortSignal, connect and read timeouts, retries on 5xx and 429;
// - HF_ENDPOINT (theirs: a parameter only).
// It has what we lack: Xet chunked downloads and dataset/space repos. Revisit when it resumes,
// verifies and reports progress.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  COMMIT_HASH, DEFAULT_REVISION, HubError, cachedCommit, filterRepoFiles, hubCacheDir, hubEndpoint, isOfflineEnv, linkPointer,
  repoCache, resolveToken, validateRepoFilename, validateRepoId, validateRevision, writeRef, type RepoCache,
} from './hub-cache.js';
import { downloadBlob, type HubProgress } from './hub-download.js';
import { abortError, hubHttpError, request, withRetries, type HttpSettings, type HubContext } from './hub-http.js';

export { HubError, hubCacheDir, repoFolderName, filterRepoFiles, type HubErrorCode } from './hub-cache.js';
export type { HubProgress } from './hub-download.js';
export { cliProgressReporter, formatBytes, type ProgressBarOptions, type ProgressReporter } from './hub-progress.js';

/** Options of hfHubDownload() and snapshotDownload(): revision, token, cache, offline mode, progress, timeouts. */
export interface HubDownloadOptions {
  revision?: string; // branch, tag or commit hash; default 'main'
  token?: string | false; // default HF_TOKEN, then HF_HOME/token; false: send none
  endpoint?: string; // default HF_ENDPOINT, then https://huggingface.co
  cacheDir?: string; // default HF_HUB_CACHE, then HF_HOME/hub
  offline?: boolean; // default HF_HUB_OFFLINE; no network at all, the cache only
  onProgress?: (p: HubProgress) => void; // per received chunk of each downloaded file
  signal?: AbortSignal; // aborting leaves *.incomplete files that the next call resumes
  connectTimeoutMs?: number; // default 10 s until response headers
  readTimeoutMs?: number; // default 60 s of silence while a body streams
  maxRetries?: number; // default 5, after connection errors and 5xx (a dropped download resumes)
  retryDelayMs?: number; // default 500, doubled per retry
}

/** Options of snapshotDownload(): which of the repo's files to fetch, and how many at once. */
export interface SnapshotDownloadOptions extends HubDownloadOptions {
  allowPatterns?: string | string[]; // fnmatch patterns, e.g. 'unet/*'; a trailing '/' means the whole folder
  ignorePatterns?: string | string[];
  maxWorkers?: number; // files downloaded at once, default 8
}

interface Resolved {
  revision: string;
  endpoint: string;
  cacheDir: string;
  cache: RepoCache;
  token: string | undefined;
  offline: boolean;
  http: HttpSettings;
}

function resolveOptions(repoId: string, o: HubDownloadOptions): Resolved {
  validateRepoId(repoId);
  const revision = o.revision ?? DEFAULT_REVISION;
  validateRevision(revision);
  const cacheDir = hubCacheDir(o.cacheDir);
  return {
    revision, cacheDir, cache: repoCache(cacheDir, repoId), endpoint: hubEndpoint(o.endpoint),
    token: resolveToken(o.token), offline: o.offline ?? isOfflineEnv(),
    http: {
      connectTimeoutMs: o.connectTimeoutMs ?? 10_000, readTimeoutMs: o.readTimeoutMs ?? 60_000,
      maxRetries: o.maxRetries ?? 5, retryDelayMs: o.retryDelayMs ?? 500, signal: o.signal,
    },
  };
}

const enc = (s: string): string => s.split('/').map(encodeURIComponent).join('/');

/** {endpoint}/{repo_id}/resolve/{revision}/{filename}, the revision quoted whole (refs/pr/1 -> refs%2Fpr%2F1). */
export function hubFileUrl(repoId: string, filename: string, revision = DEFAULT_REVISION, endpoint?: string): string {
  return `${hubEndpoint(endpoint)}/${repoId}/resolve/${encodeURIComponent(revision)}/${enc(filename)}`;
}

function authHeaders(r: Resolved): Record<string, string> {
  return r.token ? { Authorization: `Bearer ${r.token}` } : {};
}

/** The cached path of a repo file at a revision, or undefined; never touches the network. */
export function tryLoadFromCache(repoId: string, filename: string, opts: { revision?: string; cacheDir?: string } = {}): string | undefined {
  validateRepoId(repoId);
  validateRepoFilename(filename);
  const cache = repoCache(hubCacheDir(opts.cacheDir), repoId);
  const commit = cachedCommit(cache, opts.revision ?? DEFAULT_REVISION);
  const p = commit && cache.pointer(commit, filename);
  return p && existsSync(p) ? p : undefined;
}

function notCached(repoId: string, r: Resolved, what: string, why: string): HubError {
  return new HubError('NotCached', `${what} of '${repoId}' at revision '${r.revision}' is not in the Hub cache (${r.cacheDir}) and ${why}`);
}

const offlineWhy = 'offline mode is on (HF_HUB_OFFLINE or offline: true): download it once with a network connection, or point HF_HUB_CACHE/HF_HOME at a cache that has it';

interface FileMetadata {
  commit: string;
  etag: string;
  size: number | undefined;
  location: string; // where the bytes are: the file URL, or its CDN redirect
}

const normalizeEtag = (v: string | string[] | undefined): string | undefined =>
  typeof v === 'string' ? v.replace(/^W\//, '').replace(/^"+|"+$/g, '') : undefined;

/** HEAD on the file URL, as huggingface_hub's get_hf_file_metadata: only relative redirects are followed. */
async function fileMetadata(url: string, r: Resolved, ctx: HubContext): Promise<FileMetadata> {
  return withRetries(r.http, async () => {
    const res = await request('HEAD', url, authHeaders(r), r.http, true);
    res.body.resume();
    if (res.status >= 400) throw hubHttpError(res, ctx);
    const h = res.headers;
    const commit = h['x-repo-commit'] as string | undefined;
    const etag = normalizeEtag(h['x-linked-etag'] ?? h.etag);
    const sizeHeader = (h['x-linked-size'] ?? h['content-length']) as string | undefined;
    if (!commit || !COMMIT_HASH.test(commit) || !etag || !/^[\w.-]+$/.test(etag)) {
      throw new HubError('Http', `${ctx.endpoint} answered for '${ctx.filename}' without a commit (X-Repo-Commit) or ETag: is HF_ENDPOINT a Hugging Face Hub?`);
    }
    const location = res.status >= 300 && h.location ? new URL(h.location, res.url).href : res.url;
    return { commit, etag, size: sizeHeader !== undefined ? Number(sizeHeader) : undefined, location };
  });
}

// One download per blob in this process, even when two repo files share content.
const inFlight = new Map<string, Promise<void>>();

/**
 * Downloads one repo file into the cache (unless it is there) and returns its path,
 * snapshots/{commit}/{filename}. Offline, or when the Hub cannot be reached, answers from the cache.
 */
export async function hfHubDownload(repoId: string, filename: string, opts: HubDownloadOptions = {}): Promise<string> {
  return downloadFile(repoId, filename, resolveOptions(repoId, opts), opts.onProgress);
}

async function downloadFile(repoId: string, filename: string, r: Resolved, onProgress?: (p: HubProgress) => void): Promise<string> {
  validateRepoFilename(filename);
  const { cache } = r;
  if (COMMIT_HASH.test(r.revision) && existsSync(cache.pointer(r.revision, filename))) return cache.pointer(r.revision, filename);
  const fromCache = (): string | undefined => {
    const commit = cachedCommit(cache, r.revision);
    return commit && existsSync(cache.pointer(commit, filename)) ? cache.pointer(commit, filename) : undefined;
  };
  if (r.offline) return fromCache() ?? (() => { throw notCached(repoId, r, `'${filename}'`, offlineWhy); })();

  const ctx: HubContext = { repoId, revision: r.revision, filename, endpoint: r.endpoint, hasToken: !!r.token };
  let meta: FileMetadata;
  try {
    meta = await fileMetadata(hubFileUrl(repoId, filename, r.revision, r.endpoint), r, ctx);
  } catch (e) {
    const cached = e instanceof HubError && e.code === 'Network' ? fromCache() : undefined;
    if (cached) return cached; // no connection: the cached copy, as huggingface_hub does
    if (e instanceof HubError && e.code === 'Network') throw notCached(repoId, r, `'${filename}'`, `the Hub cannot be reached: ${e.message}`);
    throw e;
  }
  mkdirSync(cache.root, { recursive: true });
  writeRef(cache, r.revision, meta.commit);
  const pointer = cache.pointer(meta.commit, filename);
  if (existsSync(pointer)) return pointer;
  const blob = cache.blob(meta.etag);
  if (!existsSync(blob)) {
    let job = inFlight.get(blob);
    if (!job) {
      mkdirSync(path.dirname(blob), { recursive: true });
      // The token goes to the Hub only, never to the CDN an LFS file redirects to.
      const sameOrigin = new URL(meta.location).origin === new URL(r.endpoint).origin;
      const headers = sameOrigin ? authHeaders(r) : {};
      job = downloadBlob({ url: meta.location, headers, dest: blob, etag: meta.etag, size: meta.size, ctx, http: r.http, onProgress })
        .finally(() => inFlight.delete(blob));
      inFlight.set(blob, job);
    }
    await job;
  }
  return linkPointer(cache, meta.commit, filename, meta.etag);
}

interface RepoListing {
  sha: string;
  files: string[];
}

/** GET {endpoint}/api/models/{repo_id}/revision/{revision}: the commit and the file names (siblings). */
async function listRepo(repoId: string, r: Resolved): Promise<RepoListing> {
  const url = `${r.endpoint}/api/models/${repoId}/revision/${encodeURIComponent(r.revision)}`;
  const ctx: HubContext = { repoId, revision: r.revision, endpoint: r.endpoint, hasToken: !!r.token };
  return withRetries(r.http, async () => {
    const res = await request('GET', url, { ...authHeaders(r), Accept: 'application/json' }, r.http);
    if (res.status !== 200) throw hubHttpError(res, ctx);
    const chunks: Buffer[] = [];
    try {
      for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
    } catch {
      if (r.http.signal?.aborted) throw abortError(r.http.signal);
      throw new HubError('Network', `connection dropped while listing '${repoId}'`);
    }
    let info: { sha?: unknown; siblings?: { rfilename?: unknown }[] };
    try {
      info = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof info;
    } catch {
      throw new HubError('Http', `${r.endpoint} sent a file list for '${repoId}' that is not JSON: is HF_ENDPOINT a Hugging Face Hub?`);
    }
    const sha = typeof info.sha === 'string' ? info.sha : '';
    if (!COMMIT_HASH.test(sha) || !Array.isArray(info.siblings)) {
      throw new HubError('Http', `the file list of '${repoId}' from ${r.endpoint} has no commit sha or siblings`);
    }
    const files = info.siblings.map((s) => String(s.rfilename));
    files.forEach(validateRepoFilename);
    return { sha, files };
  });
}

/**
 * Downloads the files of a repo revision (those the patterns select) into the cache and returns the
 * snapshot folder, snapshots/{commit}. Files already cached cost no request; offline, or when the
 * Hub cannot be reached, the cached snapshot of refs/{revision} is returned.
 */
export async function snapshotDownload(repoId: string, opts: SnapshotDownloadOptions = {}): Promise<string> {
  const r = resolveOptions(repoId, opts);
  const fromCache = (): string | undefined => {
    const commit = cachedCommit(r.cache, r.revision);
    return commit && existsSync(r.cache.snapshot(commit)) ? r.cache.snapshot(commit) : undefined;
  };
  if (r.offline) return fromCache() ?? (() => { throw notCached(repoId, r, 'a snapshot', offlineWhy); })();
  let listing: RepoListing;
  try {
    listing = await listRepo(repoId, r);
  } catch (e) {
    const cached = e instanceof HubError && e.code === 'Network' ? fromCache() : undefined;
    if (cached) return cached;
    if (e instanceof HubError && e.code === 'Network') throw notCached(repoId, r, 'a snapshot', `the Hub cannot be reached: ${e.message}`);
    throw e;
  }
  mkdirSync(r.cache.snapshot(listing.sha), { recursive: true });
  writeRef(r.cache, r.revision, listing.sha);
  const files = filterRepoFiles(listing.files, opts.allowPatterns, opts.ignorePatterns);

  // A failure stops the other workers (their partial files stay for the next call).
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const byCommit: Resolved = { ...r, revision: listing.sha, http: { ...r.http, signal: stop.signal } };
  let next = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (next < files.length && !stop.signal.aborted) {
      const file = files[next++]!;
      try {
        await downloadFile(repoId, file, byCommit, opts.onProgress);
      } catch (e) {
        firstError ??= e;
        stop.abort(e);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.maxWorkers ?? 8, files.length)) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (firstError !== undefined) throw firstError;
  if (opts.signal?.aborted) throw abortError(opts.signal);
  return r.cache.snapshot(listing.sha);
}
