// The Redis side of imagic's job queue (BullMQ): the queue's name, and connection options that retry
// forever with backoff and say so, for the batch command, its workers and the web editor.

export const QUEUE_NAME = 'imagic-rows';
/** A killed worker's row goes back to the queue this long after its last lock renewal. */
export const DEFAULT_LOCK_MS = 30_000;

/** The connection options for a redis:// URL: retries forever with backoff, saying so. */
export function redisConnection(url: string, log: (m: string) => void) {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--queue ${url} is not a URL (redis://host:port)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`--queue ${url}: not a redis:// URL`);
  // A client opens several connections: each attempt number is said once.
  let said = 0;
  return {
    url,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => {
      const ms = Math.min(500 * 2 ** Math.min(times - 1, 5), 10_000);
      if (times > said) log(`cannot reach Redis at ${url}; retrying in ${(ms / 1000).toFixed(1)} s (attempt ${times})`);
      said = Math.max(said, times);
      return ms;
    },
  };
}


/** A worker's progress report on a job: the training steps done since its last report. */
export interface QueueProgress {
  stage: 'A' | 'B';
  /** The last step done (1-based). */
  step: number;
  total: number;
  /** The losses of the steps step - losses.length + 1 .. step. */
  losses: number[];
}
