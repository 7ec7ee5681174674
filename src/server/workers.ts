// The server's side of a compute worker: forks src/server/worker.js, sends it jobs, routes its progress
// messages, and turns a crash (out of memory, a native abort) into an error for the jobs it had,
// forking a fresh worker for the next job.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromWorker, Job, ToWorker } from './protocol.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

type Progress = Exclude<FromWorker, { kind: 'ready' } | { kind: 'done' } | { kind: 'error' }>;
type JobInput = Job extends infer J ? (J extends Job ? Omit<J, 'jobId'> : never) : never;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: (m: Progress) => void;
}

export class WorkerProcess {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(readonly name: string, private readonly log: (line: string) => void, private readonly env: NodeJS.ProcessEnv = process.env) {}

  /** Jobs sent and not yet answered. */
  get busy(): number {
    return this.pending.size;
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    // execArgv: none of the parent's (a test runner's --test, an inspector port).
    const child = fork(WORKER, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: this.env, execArgv: [] });
    const forward = (b: Buffer) => {
      for (const line of b.toString().split('\n')) if (line.trim()) this.log(`[${this.name}] ${line}`);
    };
    child.stdout!.on('data', forward);
    child.stderr!.on('data', forward);
    child.on('message', (m: FromWorker) => this.onMessage(m));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      const why = signal ? `was killed (${signal}${signal === 'SIGKILL' ? ': out of memory?' : ''})` : `exited with code ${code}`;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new Error(`the ${this.name} worker ${why}; the job can be started again`));
      }
    });
    this.child = child;
    return child;
  }

  private onMessage(m: FromWorker): void {
    if (m.kind === 'ready') return;
    const p = this.pending.get(m.jobId);
    if (!p) return;
    if (m.kind === 'done') {
      this.pending.delete(m.jobId);
      p.resolve(m.result);
    } else if (m.kind === 'error') {
      this.pending.delete(m.jobId);
      p.reject(new Error(m.message));
    } else {
      if (m.kind === 'log') this.log(`[${this.name}] ${m.message}`);
      p.onProgress?.(m);
    }
  }

  /** Sends a job; resolves with its result. `started` receives the job's id (to cancel it). */
  run<R>(job: JobInput, onProgress?: (m: Progress) => void, started?: (jobId: number) => void): Promise<R> {
    const jobId = this.nextId++;
    const child = this.start();
    started?.(jobId);
    return new Promise<R>((resolve, reject) => {
      this.pending.set(jobId, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      child.send({ ...job, jobId } as ToWorker);
    });
  }

  cancel(jobId: number): void {
    if (this.pending.has(jobId)) this.child?.send({ kind: 'cancel', jobId } satisfies ToWorker);
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
  }
}
