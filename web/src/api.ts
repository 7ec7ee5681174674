// Fetch wrappers for the HTTP API of `imagic serve` (src/server/api.ts): every failure becomes an
// ApiFailure whose message is the server's `{error}`, or says that the server could not be reached.
import type {
  ApiError, CompareState, NewSession, Options, SessionDetail, SessionSummary, Status, Upload,
} from '../../src/server/api.js';

export class ApiFailure extends Error {
  /** The HTTP status, or 0 when no response came. */
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'ApiFailure';
    this.status = status;
  }
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError';
}

function isApiError(v: unknown): v is ApiError {
  return typeof v === 'object' && v !== null && typeof (v as { error?: unknown }).error === 'string';
}

async function failureOf(res: Response): Promise<ApiFailure> {
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body: unknown = await res.json();
    if (isApiError(body)) message = body.error;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiFailure(message, res.status);
}

/** fetch() that throws ApiFailure on a network error or a 4xx/5xx (AbortError passes through). */
export async function request(url: string, init?: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    if (isAbort(e)) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new ApiFailure(`Network error: the server could not be reached (${why})`, 0);
  }
  if (!res.ok) throw await failureOf(res);
  return res;
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await request(url, init);
  return (await res.json()) as T;
}

function post<T>(url: string, body?: unknown): Promise<T> {
  return json<T>(url, {
    method: 'POST',
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

const session = (id: string): string => `/api/sessions/${encodeURIComponent(id)}`;

export const getStatus = (): Promise<Status> => json('/api/status');
export const getOptions = (): Promise<Options> => json('/api/options');
export const listSessions = (): Promise<SessionSummary[]> => json('/api/sessions');
export const getSession = (id: string): Promise<SessionDetail> => json(session(id));
export const createSession = (body: NewSession): Promise<SessionDetail> => post('/api/sessions', body);
export const cancelSession = (id: string): Promise<SessionDetail> => post(`${session(id)}/cancel`);
export const resumeSession = (id: string): Promise<SessionDetail> => post(`${session(id)}/resume`);
export const getCompare = (id: string): Promise<CompareState> => json(`${session(id)}/compare`);
export const startCompare = (id: string, strength: number | undefined): Promise<CompareState> =>
  post(`${session(id)}/compare`, strength === undefined ? {} : { strength });

export async function deleteSession(id: string): Promise<void> {
  await request(session(id), { method: 'DELETE' });
}

/** Uploads the file's raw bytes (not multipart). */
export function uploadFile(file: File): Promise<Upload> {
  return json('/api/uploads', {
    method: 'POST',
    headers: { 'content-type': file.type || 'application/octet-stream' },
    body: file,
  });
}

export const downloadUrl = (id: string): string => `${session(id)}/download`;
export const fileUrl = (id: string, name: string): string => `${session(id)}/files/${encodeURIComponent(name)}`;

export interface RenderParams {
  eta: number;
  seed: number;
  steps: number;
  guidance: number;
}

export function renderUrl(id: string, p: RenderParams): string {
  const q = new URLSearchParams({
    eta: p.eta.toFixed(2), seed: String(p.seed), steps: String(p.steps), guidance: String(p.guidance),
  });
  return `${session(id)}/render?${q}`;
}

export interface Rendered {
  blob: Blob;
  /** The x-render-ms header: the worker's render time, 0 on a cache hit. */
  serverMs: string;
  /** The x-cache header: 'hit' or 'miss'. */
  cache: string;
}

export async function fetchRender(url: string, signal: AbortSignal): Promise<Rendered> {
  const res = await request(url, { signal });
  const blob = await res.blob();
  return { blob, serverMs: res.headers.get('x-render-ms') ?? '', cache: res.headers.get('x-cache') ?? '' };
}
