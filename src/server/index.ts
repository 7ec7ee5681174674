// `imagic serve`: the local web editor's server. Starts the two compute workers, resumes the trainings
// a previous run left unfinished, and serves the API and the page.
import type { ModelLoadRecord } from '../pipelines/imagic/index.js';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { createApp } from './app.js';
import { renderExamples } from './examples.js';
import { Jobs } from './jobs.js';
import { isLoopback } from './security.js';
import { Store } from './store.js';

export * from './api.js';
export { sniffImage } from './app.js';

export interface ServeOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** Sessions and uploads live here. */
  dataDir: string;
  defaultModel: string;
  /** A single-file default model: its YAML, tokenizer, text-encoder heads. */
  defaultModelLoad?: ModelLoadRecord;
  device: string;
  threads?: number;
  offline?: boolean;
  /** Required on non-loopback hosts; generated when not given. Ignored on loopback unless `requireToken`. */
  token?: string;
  requireToken?: boolean;
  maxUploadBytes: number;
  webDir: string;
  /** Hand trainings to the Redis queue of `imagic worker`s (redis://...) instead of training here. */
  queue?: string;
  version: string;
  log: (m: string) => void;
}

export interface RunningServer {
  url: string;
  /** The URL to open (with the token, when there is one). */
  openUrl: string;
  token: string | null;
  port: number;
  jobs: Jobs;
  store: Store;
  /** Resumed at start: sessions a previous run left queued or training. */
  resumed: string[];
  close(): Promise<void>;
}

/** Uploads never used in a session are dropped after a day. */
function dropOldUploads(dir: string): void {
  for (const f of readdirSync(dir)) {
    const p = path.join(dir, f);
    if (Date.now() - statSync(p).mtimeMs > 86_400_000 || /\.tmp$/.test(f)) rmSync(p, { force: true });
  }
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const loopback = isLoopback(o.host);
  const token = !loopback || o.requireToken ? o.token ?? randomBytes(24).toString('hex') : null;
  const store = new Store(o.dataDir, o.log);
  dropOldUploads(store.uploadsDir);
  const modelLoads = o.defaultModelLoad ? { [o.defaultModel]: o.defaultModelLoad } : undefined;
  const jobs = new Jobs(store, { modelLoads, device: o.device, offline: o.offline, threads: o.threads, version: o.version, log: o.log, queue: o.queue, root: store.root });
  const app = createApp({ store, jobs, examples: await renderExamples(), defaultModel: o.defaultModel, maxUploadBytes: o.maxUploadBytes, webDir: o.webDir, loopback, token });
  const server: ServerType = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: o.host, port: o.port }, () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? `port ${o.port} is in use (choose another with --port, or 0 for any free one)`
        : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' ? `${o.host} is not an address of this machine (--host)`
        : e.code === 'EACCES' ? `not allowed to listen on port ${o.port} (ports below 1024 need privileges)` : e.message;
      reject(new Error(`cannot serve on ${o.host}:${o.port}: ${why}`));
    });
  }).catch(async (e: unknown) => {
    await jobs.close();
    throw e;
  });
  const port = (server.address() as AddressInfo).port;
  const shown = o.host.includes(':') ? `[${o.host}]` : o.host;
  const url = `http://${shown}:${port}/`;
  const resumed = jobs.resumeUnfinished();
  return {
    url, openUrl: token ? `${url}?token=${token}` : url, token, port, jobs, store, resumed,
    close: async () => {
      await jobs.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
