// `imagic batch <edits.csv> -o <out>`: an Imagic edit per CSV row, in this process, in `--jobs N` child
// processes, or through a Redis queue (`--queue`) for `imagic worker`s on other machines; resumable
// (finished rows are skipped, interrupted ones resume from their sessions), with report.html.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelLoadRecord, type PresetName, type TrainMode } from '../../pipelines/imagic/index.js';
import { logger } from '../model.js';
import { stepProgress } from '../progress.js';
import { readBatchCsv, type BatchRow } from './csv.js';
import { JOB_VERSION, type BatchSettings, type RowJob } from '../../queue/job.js';
import { runQueue } from './queue.js';
import { writeReport } from './report.js';
import { appendResult, batchFiles, batchId, claimOutDir, readResults, type BatchJson } from './results.js';
import { runRow, type RowEnv, type RowResult } from './run-row.js';

export interface BatchArgs {
  output: string;
  model: string;
  /** A single-file --model: its LDM / sgm YAML, tokenizer, text-encoder heads. */
  config?: string;
  tokenizer?: string;
  textEncoderHeads?: number;
  /** The CLIP that scores rows (default: the model's clip/, else openai/clip-vit-large-patch14). */
  clipModel?: string;
  preset?: PresetName;
  stepsA?: number;
  stepsB?: number;
  train?: TrainMode;
  steps?: number;
  guidance?: number;
  checkpointEvery?: number;
  baselines?: boolean;
  strength: number;
  jobs: number;
  device: string;
  /** One per job slot, round-robin (e.g. cuda:0,cuda:1). */
  devices?: string[];
  threads?: number;
  offline?: boolean;
  queue?: string;
  force?: boolean;
  allowOutside?: boolean;
  quiet?: boolean;
}

export interface BatchSummary {
  rows: number;
  skipped: number;
  ok: number;
  failed: number;
  report: string;
  outDir: string;
}

const ROW_PROCESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'row-process.js');

/** Runs `jobs` in up to `n` child processes (one row each at a time); device i % devices.length for slot i. */
async function runPool(jobs: RowJob[], n: number, env: (slot: number) => RowEnv, onResult: (r: RowResult) => Promise<void>): Promise<void> {
  const queue = [...jobs];
  const slot = async (i: number) => {
    let child: ChildProcess | null = null;
    try {
      for (let job = queue.shift(); job; job = queue.shift()) {
        child ??= fork(ROW_PROCESS, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
        const c = child;
        const msg = await new Promise<{ result?: RowResult; error?: string }>((resolve) => {
          const onExit = (code: number | null, signal: string | null) => resolve({ error: `the row's process ended (${signal ?? `code ${code}`})` });
          c.once('exit', onExit);
          c.once('message', (m: { result?: RowResult; error?: string }) => {
            c.off('exit', onExit);
            resolve(m);
          });
          c.send({ job, env: env(i) });
        });
        if (msg.error === 'interrupted') throw new Error('interrupted');
        if (msg.error) {
          child = null; // a crashed process: a fresh one for the next row; this row stays unfinished
          throw new Error(`row ${job.row.key}: ${msg.error}`);
        }
        await onResult(msg.result!);
      }
    } finally {
      child?.kill();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, (_, i) => slot(i)));
}

export async function batch(csv: string, a: BatchArgs): Promise<BatchSummary> {
  const log = logger(a.quiet);
  const rows: BatchRow[] = readBatchCsv(csv, { allowOutside: a.allowOutside });
  if (!Number.isInteger(a.jobs) || a.jobs < 1) throw new RangeError(`--jobs must be an integer >= 1, got ${a.jobs}`);
  const settings: BatchSettings = {
    model: a.model, preset: a.preset, stepsA: a.stepsA, stepsB: a.stepsB, train: a.train, steps: a.steps, guidance: a.guidance, checkpointEvery: a.checkpointEvery,
    baselines: a.baselines ?? false, strength: a.strength, ...modelLoadRecord(a),
    ...(a.clipModel !== undefined ? { clipModel: existsSync(a.clipModel) ? path.resolve(a.clipModel) : a.clipModel } : {}),
  };
  const outDir = path.resolve(a.output);
  const b: BatchJson = { version: 1, id: batchId(csv, outDir, rows, settings), csv: path.resolve(csv), rows: rows.length, settings, created: new Date().toISOString() };
  const claim = claimOutDir(outDir, b, a.force ?? false);
  if (claim === 'resumed') b.created = (JSON.parse(readFileSync(batchFiles(outDir).batch, 'utf8')) as BatchJson).created;
  const results = readResults(outDir);
  const pending = rows.filter((r) => !results.has(r.key));
  const skipped = rows.length - pending.length;
  log(`${rows.length} rows in ${csv}: ${skipped} done earlier${claim === 'replaced' ? ' (the out dir\'s other batch was cleared)' : ''}, ${pending.length} to do; out dir ${outDir}`);
  const jobs: RowJob[] = pending.map((row) => ({ version: JOB_VERSION, batchId: b.id, outDir, row, settings }));
  const bar = stepProgress('rows', rows.length, a.quiet);
  bar.update(skipped);
  let done = skipped;
  let reportAt = 0;
  const onResult = async (r: RowResult) => {
    if (results.has(r.key)) return; // reported once only
    r = { ...r, receivedAt: new Date().toISOString() };
    results.set(r.key, r);
    appendResult(outDir, r);
    bar.update(++done);
    if (r.status === 'failed') log(`\nrow ${r.key} failed: ${r.error}`);
    if (Date.now() - reportAt > 5000) {
      reportAt = Date.now();
      await writeReport(outDir, b, rows, results);
    }
  };
  const devices = a.devices && a.devices.length > 0 ? a.devices : [a.device];
  const threads = a.threads ?? (a.jobs > 1 ? Math.max(1, Math.floor(os.availableParallelism() / a.jobs)) : undefined);
  try {
    if (a.queue) await runQueue(a.queue, jobs, onResult, (m) => log(m));
    else if (a.jobs > 1) await runPool(jobs, a.jobs, (slot) => ({ device: devices[slot % devices.length]!, threads, offline: a.offline }), onResult);
    else for (const job of jobs) await onResult(await runRow(job, { device: devices[0]!, threads, offline: a.offline }));
  } finally {
    bar.stop();
    const report = await writeReport(outDir, b, rows, results);
    log(`report: ${report}`);
  }
  const all = rows.map((r) => results.get(r.key)).filter((r): r is RowResult => r !== undefined);
  return { rows: rows.length, skipped, ok: all.filter((r) => r.status === 'ok').length, failed: all.filter((r) => r.status === 'failed').length, report: path.join(outDir, 'report.html'), outDir };
}
