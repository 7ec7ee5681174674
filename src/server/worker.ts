// A compute worker: a child process of `imagic serve` that runs jobs (src/server/compute.ts) one at a
// time, so that training and rendering never block the server's event loop. Talks over Node's IPC channel.
import { CancelledError, Compute } from './compute.js';
import type { FromWorker, Job, ToWorker } from './protocol.js';

if (!process.send) {
  process.stderr.write('src/server/worker.js is started by `imagic serve`, not by hand\n');
  process.exit(2);
}

const send = (m: FromWorker) => process.send!(m);
const compute = new Compute(send);
let chain: Promise<void> = Promise.resolve();

async function run(job: Job): Promise<void> {
  try {
    const result = job.kind === 'train' ? await compute.train(job) : job.kind === 'render' ? await compute.render(job)
      : job.kind === 'compare' ? await compute.compare(job) : await compute.preload(job);
    send({ kind: 'done', jobId: job.jobId, result });
  } catch (e) {
    const message = e instanceof CancelledError ? 'cancelled' : e instanceof Error ? e.message : String(e);
    send({ kind: 'error', jobId: job.jobId, message });
  }
}

process.on('message', (m: ToWorker) => {
  if (m.kind === 'cancel') compute.cancel(m.jobId);
  else chain = chain.then(() => run(m));
});
// The server went away: nothing to work for.
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready' });
