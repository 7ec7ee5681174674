// Test helpers for `imagic serve`: a server on an ephemeral loopback port with a fresh data folder, and
// small JSON/wait helpers. The compute workers are real (the embedded Shapes-64 model).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SessionDetail } from '../../src/server/api.js';
import { startServer, type RunningServer, type ServeOptions } from '../../src/server/index.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MODEL = path.join(ROOT, 'models', 'shapes-64');
export const WEB_DIR = path.join(ROOT, 'dist', 'web');

/** Training this short still runs every stage; renders of 10 steps. */
export const FAST = { stepsA: 5, stepsB: 5, steps: 10, auto: false };

export type TestServer = Omit<RunningServer, 'close'> & { base: string; logs: string[]; close(keep?: boolean): Promise<void> };

export async function testServer(o: Partial<ServeOptions> = {}): Promise<TestServer> {
  const logs: string[] = [];
  const own = o.dataDir === undefined ? mkdtempSync(path.join(os.tmpdir(), 'imagic-serve-')) : null;
  const s = await startServer({
    host: '127.0.0.1', port: 0, dataDir: o.dataDir ?? own!, defaultModel: MODEL, device: 'cpu',
    threads: 1, maxUploadBytes: 1 << 20, webDir: WEB_DIR, version: 'test', log: (m) => logs.push(m), ...o,
  });
  // A data folder made here goes with the server, unless `keep` (another server reopens it).
  return {
    ...s, base: s.url.replace(/\/$/, ''), logs,
    close: async (keep = false) => {
      await s.close();
      if (own && !keep) rmSync(own, { recursive: true, force: true });
    },
  };
}

export async function api<T = unknown>(base: string, route: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: T; headers: Headers }> {
  const { json, ...rest } = init;
  const r = await fetch(`${base}${route}`, json === undefined ? rest : { ...rest, method: rest.method ?? 'POST', headers: { 'content-type': 'application/json', ...rest.headers }, body: JSON.stringify(json) });
  const type = r.headers.get('content-type') ?? '';
  const body = (type.includes('json') ? await r.json() : Buffer.from(await r.arrayBuffer())) as T;
  return { status: r.status, body, headers: r.headers };
}

/** Polls the session until `done` says so (or fails after `timeoutMs`). */
export async function waitFor(base: string, id: string, done: (s: SessionDetail) => boolean, timeoutMs = 120_000): Promise<SessionDetail> {
  const t0 = Date.now();
  for (;;) {
    const { status, body } = await api<SessionDetail>(base, `/api/sessions/${id}`);
    if (status !== 200) throw new Error(`GET session ${id}: ${status} ${JSON.stringify(body)}`);
    if (done(body)) return body;
    if (body.status === 'failed' && !done(body)) throw new Error(`session ${id} failed: ${body.error}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`session ${id} still ${body.status} (${JSON.stringify(body.progress)}) after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
