// `imagic serve`: starts the local web editor (src/server/) and prints where to open it; Ctrl-C stops it,
// saving a running training so that the next start resumes it.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { modelLoadRecord } from '../pipelines/imagic/index.js';
import { fileURLToPath } from 'node:url';
import { startServer } from '../server/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ServeArgs {
  host: string;
  port: number;
  model: string;
  /** A single-file --model: its LDM / sgm YAML, tokenizer, text-encoder heads. */
  config?: string;
  tokenizer?: string;
  textEncoderHeads?: number;
  device: string;
  data?: string;
  threads?: number;
  offline?: boolean;
  token?: string;
  maxUploadMb: number;
  queue?: string;
  quiet?: boolean;
}

/** $IMAGIC_HOME, else $XDG_DATA_HOME/imagic, else ~/.local/share/imagic. */
export function defaultDataDir(): string {
  if (process.env.IMAGIC_HOME) return path.join(process.env.IMAGIC_HOME, 'serve');
  return path.join(process.env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share'), 'imagic', 'serve');
}

export async function serveCommand(a: ServeArgs): Promise<void> {
  const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const dataDir = path.resolve(a.data ?? defaultDataDir());
  const log = (m: string) => {
    if (!a.quiet) process.stderr.write(`${m}\n`);
  };
  const s = await startServer({
    host: a.host, port: a.port, dataDir, defaultModel: a.model, defaultModelLoad: modelLoadRecord(a), device: a.device, threads: a.threads, offline: a.offline,
    token: a.token ?? process.env.IMAGIC_TOKEN, maxUploadBytes: Math.round(a.maxUploadMb * 2 ** 20), webDir: path.join(root, 'dist', 'web'), version, log, queue: a.queue,
  });
  process.stdout.write(`imagic ${version} serving on ${s.url}\n`);
  if (s.token) process.stdout.write(`open (with the access token):\n    ${s.openUrl}\n`);
  if (a.queue) log(`trainings go to the queue ${a.queue} for imagic worker processes (they need ${dataDir} at the same path)`);
  log(`sessions in ${dataDir}; model ${a.model} on ${a.device}${s.resumed.length ? `; resuming ${s.resumed.length} unfinished training${s.resumed.length > 1 ? 's' : ''}` : ''}`);
  log('Ctrl-C stops (a running training is saved and resumes at the next start)');
  await new Promise<void>((resolve) => {
    const stop = () => {
      log('stopping: saving the running training...');
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void s.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
