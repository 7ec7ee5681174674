// HTTP for the Hub client on node:http/https: timeouts, bounded redirects (Authorization is never
// forwarded to another origin), bounded retries with backoff, and the Hub's errors as clear messages.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { HubError } from './hub-cache.js';

export interface HttpSettings {
  connectTimeoutMs: number; // until the response headers arrive
  readTimeoutMs: number; // longest silence while a body streams
  maxRetries: number; // retries after connection errors and 5xx/429 answers
  retryDelayMs: number; // first backoff; doubles per retry, capped at 8 s
  signal?: AbortSignal;
}

export interface HubResponse {
  status: number;
  headers: IncomingHttpHeaders;
  url: string; // the URL that answered (after redirects)
  body: IncomingMessage; // consume or destroy it
}

const MAX_REDIRECTS = 10;
const USER_AGENT = `imagic/0.1.0; node/${process.versions.node}`;

export function abortError(signal?: AbortSignal): Error {
  const r: unknown = signal?.reason;
  return r instanceof Error ? r : new DOMException('The download was aborted', 'AbortError');
}

const where = (url: string): string => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`; // never the query: CDN links carry signatures
};

/** One request, no redirects followed. Connection failures and timeouts reject with a 'Network' HubError. */
export function requestOnce(method: string, url: string, headers: Record<string, string>, s: HttpSettings): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (s.signal?.aborted) return reject(abortError(s.signal));
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
    if (!mod) return reject(new HubError('InvalidArgument', `unsupported URL scheme in ${where(url)}`));
    const req = mod.request(u, { method, headers: { 'User-Agent': USER_AGENT, 'Accept-Encoding': 'identity', ...headers } });
    let res: IncomingMessage | undefined;
    const fail = (err: Error): void => {
      if (res) res.destroy(err);
      else req.destroy(err);
    };
    const onAbort = (): void => fail(abortError(s.signal));
    const cleanup = (): void => {
      clearTimeout(timer);
      s.signal?.removeEventListener('abort', onAbort);
    };
    const timer = setTimeout(() => fail(new HubError('Network', `no answer from ${u.origin} within ${s.connectTimeoutMs} ms`)), s.connectTimeoutMs);
    s.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      if (e instanceof HubError || e.name === 'AbortError' || s.signal?.aborted) reject(s.signal?.aborted ? abortError(s.signal) : e);
      else reject(new HubError('Network', `cannot reach ${u.origin}: ${e.code ?? e.message}`));
    });
    req.on('response', (r) => {
      res = r;
      clearTimeout(timer);
      req.setTimeout(s.readTimeoutMs, () => fail(new HubError('Network', `${where(url)} stalled for ${s.readTimeoutMs} ms`)));
      r.on('close', cleanup);
      // A body cut short surfaces as a plain 'aborted' error: make it a retriable network error.
      r.on('error', () => undefined);
      resolve(r);
    });
    req.end();
  });
}

const isRedirect = (status: number): boolean => [301, 302, 303, 307, 308].includes(status);

/**
 * A request that follows redirects: all of them, or (`relativeOnly`, as huggingface_hub's HEAD) only
 * those whose Location has no host, stopping at a redirect to a CDN. Authorization is dropped for
 * good once the chain leaves the origin of `url`.
 */
export async function request(method: string, url: string, headers: Record<string, string>, s: HttpSettings,
  relativeOnly = false): Promise<HubResponse> {
  const origin = new URL(url).origin;
  let h = { ...headers };
  for (let hop = 0; ; hop++) {
    const body = await requestOnce(method, url, h, s);
    const status = body.statusCode ?? 0;
    const location = body.headers.location;
    if (!isRedirect(status) || !location) return { status, headers: body.headers, url, body };
    if (relativeOnly && /^[a-z][a-z0-9+.-]*:|^\/\//i.test(location)) return { status, headers: body.headers, url, body };
    body.resume();
    if (hop >= MAX_REDIRECTS) throw new HubError('Network', `more than ${MAX_REDIRECTS} redirects from ${where(url)}`);
    url = new URL(location, url).href;
    if (new URL(url).origin !== origin) h = withoutAuthorization(h);
  }
}

export function withoutAuthorization(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'authorization'));
}

export function isRetriable(e: unknown): boolean {
  return e instanceof HubError && (e.code === 'Network' || (e.code === 'Http' && (e.status === 429 || (e.status ?? 0) >= 500)));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const backoffMs = (s: HttpSettings, retry: number): number => Math.min(s.retryDelayMs * 2 ** retry, 8000);

/** Runs `fn` again after retriable failures, at most `maxRetries` more times, with exponential backoff. */
export async function withRetries<T>(s: HttpSettings, fn: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await fn();
    } catch (e) {
      if (!isRetriable(e) || retry >= s.maxRetries || s.signal?.aborted) throw e;
      await sleep(backoffMs(s, retry), s.signal);
    }
  }
}

/** What a failed request was about, for the error message. */
export interface HubContext {
  repoId: string;
  revision: string;
  filename?: string; // absent for the file-listing API
  endpoint: string;
  hasToken: boolean;
}

/** Turns an error answer into a HubError that says what was not found or why access was refused. */
export function hubHttpError(res: HubResponse, ctx: HubContext): HubError {
  res.body.resume();
  const status = res.status;
  const code = String(res.headers['x-error-code'] ?? '');
  const serverMsg = String(res.headers['x-error-message'] ?? '').slice(0, 300);
  const repo = `'${ctx.repoId}'`;
  const page = `${ctx.endpoint}/${ctx.repoId}`;
  if (code === 'GatedRepo' || ((status === 401 || status === 403) && code !== 'RepoNotFound')) {
    const how = ctx.hasToken
      ? `the token in use does not give access to it: accept its conditions at ${page} with the account the token belongs to, or use another token`
      : 'no token was sent: accept its conditions at ' + page + ' and set HF_TOKEN (or run `huggingface-cli login`)';
    return new HubError('GatedRepo', `access to ${repo} was refused (HTTP ${status}): it is gated or private; ${how}`, status);
  }
  if (code === 'RepoNotFound' || (status === 401 && !ctx.filename)) {
    const tail = ctx.hasToken ? '' : ' If it is private or gated, set HF_TOKEN.';
    return new HubError('RepoNotFound', `repository ${repo} not found at ${ctx.endpoint} (HTTP ${status}).${tail}`, status);
  }
  if (code === 'RevisionNotFound') {
    return new HubError('RevisionNotFound', `revision '${ctx.revision}' not found in ${repo} (HTTP ${status})`, status);
  }
  if (code === 'EntryNotFound' || (status === 404 && ctx.filename)) {
    const file = ctx.filename ?? '?';
    return new HubError('EntryNotFound', `file '${file}' not found in ${repo} at revision '${ctx.revision}' (HTTP ${status})`, status);
  }
  if (status === 404) {
    return new HubError('RepoNotFound', `repository ${repo} or its revision '${ctx.revision}' not found at ${ctx.endpoint} (HTTP 404)`, status);
  }
  const what = ctx.filename ? `'${ctx.filename}' of ${repo}` : `the file list of ${repo}`;
  return new HubError('Http', `HTTP ${status} while fetching ${what} from ${where(res.url)}${serverMsg ? `: ${serverMsg}` : ''}`, status);
}
