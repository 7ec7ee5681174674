// Batches spread over machines through a BullMQ queue in Redis: `imagic batch --queue` puts one job per
// row and follows them; `imagic worker --queue` (any number, on any machine that reaches Redis and the
// out dir) takes rows and runs them. A worker killed mid-row loses its lock; BullMQ gives the row to
// another worker, which resumes it from the row's session in the shared out dir. Results travel back
// as job return values and are written once, by the submitting command.
import { existsSync } from 'node:fs';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { checkRowJob, MalformedJobError, type RowJob } from '../../queue/job.js';
import { DEFAULT_LOCK_MS, QUEUE_NAME, redisConnection, type QueueProgress } from '../../queue/redis.js';

export { DEFAULT_LOCK_MS, QUEUE_NAME };
import { rowResult, runRow, type RowEnv, type RowResult } from './run-row.js';

export const jobId = (j: RowJob) => `${j.batchId}.${j.row.key}`;

/** A row the queue gave up on (its attempts spent, or refused): its result, with the reason. */
function failedResult(j: RowJob, why: string): RowResult {
  return { ...rowResult(j, 'queue', ''), status: 'failed', error: why };
}

/** Puts the rows on the queue (a row already there is not added twice) and calls onResult once per row as they finish. */
export async function runQueue(url: string, jobs: RowJob[], onResult: (r: RowResult) => void | Promise<void>, log: (m: string) => void, o: { pollMs?: number; attempts?: number } = {}): Promise<void> {
  const queue = new Queue(QUEUE_NAME, { connection: redisConnection(url, log) });
  queue.on('error', () => {}); // connection errors are said by retryStrategy
  try {
    const outstanding = new Map(jobs.map((j) => [jobId(j), j]));
    for (const j of jobs) {
      const existing = await queue.getJob(jobId(j));
      const state = existing ? await existing.getState() : null;
      if (state === 'failed') await existing!.retry();
      else if (state === null || state === 'unknown') {
        await queue.add('row', j, { jobId: jobId(j), attempts: o.attempts ?? 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false });
      }
    }
    log(`queued ${jobs.length} row${jobs.length === 1 ? '' : 's'} on ${url} (queue ${QUEUE_NAME}); waiting for workers (imagic worker --queue ${url})`);
    while (outstanding.size > 0) {
      for (const [id, j] of [...outstanding]) {
        const job = await queue.getJob(id);
        if (!job) continue;
        const state = await job.getState();
        if (state === 'completed') {
          outstanding.delete(id);
          const rv = job.returnvalue as RowResult | string;
          await onResult(typeof rv === 'string' ? JSON.parse(rv) as RowResult : rv);
        } else if (state === 'failed') {
          outstanding.delete(id);
          await onResult(failedResult(j, `${job.failedReason} (after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'})`));
        }
      }
      if (outstanding.size > 0) await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
    }
  } finally {
    await queue.close();
  }
}

export interface WorkerOptions extends RowEnv {
  lockMs?: number;
  log: (m: string) => void;
}

/** Takes rows until stopped; resolves with a close function. */
export function startWorker(url: string, o: WorkerOptions): { worker: Worker; close: () => Promise<void> } {
  const processor = async (job: Job) => {
    let spec: RowJob;
    try {
      spec = checkRowJob(job.data);
    } catch (e) {
      if (e instanceof MalformedJobError) throw new UnrecoverableError(e.message);
      throw e;
    }
    if (!existsSync(spec.outDir)) {
      throw new UnrecoverableError(`the out dir ${spec.outDir} is not reachable from this worker: every worker needs the batch's out dir at the same path (a shared folder)`);
    }
    o.log(`row ${spec.row.key} (batch ${spec.batchId}, attempt ${job.attemptsMade + 1})`);
    // Training progress for whoever follows the job (the web editor): the losses since the last update,
    // at most 4 updates a second, and at every stage's end.
    let last = 0;
    let losses: number[] = [];
    const r = await runRow(spec, o, (stage, step, total, loss) => {
      losses.push(loss);
      if (Date.now() - last < 250 && step < total) return;
      last = Date.now();
      const p: QueueProgress = { stage, step, total, losses };
      losses = [];
      void job.updateProgress(p as unknown as object).catch(() => {});
    });
    o.log(`row ${spec.row.key}: ${r.status}${r.error ? ` (${r.error.split('\n')[0]})` : ''} in ${r.seconds} s`);
    return r;
  };
  const lockDuration = o.lockMs ?? DEFAULT_LOCK_MS;
  const worker = new Worker(QUEUE_NAME, processor, {
    connection: redisConnection(url, o.log), concurrency: 1, lockDuration, stalledInterval: lockDuration, maxStalledCount: 3,
  });
  let lastError = '';
  worker.on('error', (e) => {
    // Connection failures are said by retryStrategy; anything else once per kind.
    const msg = e.message;
    if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|Connection is closed/.test(msg) || msg === lastError) return;
    lastError = msg;
    o.log(`worker error: ${msg}`);
  });
  worker.on('failed', (job, e) => {
    if (job) o.log(`row job ${job.id} failed: ${e.message}`);
  });
  return { worker, close: () => worker.close() };
}
