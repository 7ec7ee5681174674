// A real Redis and real `imagic worker` processes for the batch queue's tests and benchmark: a free
// loopback port, Debian's redis-server there (no persistence), workers, and stopping them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** Debian's redis-server ($REDIS_SERVER to choose another), or undefined. */
export const REDIS = [process.env.REDIS_SERVER, '/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => p && existsSync(p));

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRedis(port: number): Promise<ChildProcess> {
  const p = spawn(REDIS!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    p.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    p.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  return p;
}

export interface Worker {
  p: ChildProcess;
  log: () => string;
}

/** An `imagic worker` on one thread; its stderr kept. */
export function startWorker(port: number, lockMs = 2000): Worker {
  const p = spawn(process.execPath, [CLI, 'worker', '--queue', `redis://127.0.0.1:${port}`, '--threads', '1', '--lock-ms', String(lockMs)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  p.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  return { p, log: () => log };
}

/** SIGKILL, resolved once it has exited. */
export const stop = (p: ChildProcess) => new Promise<void>((resolve) => {
  if (p.exitCode !== null || p.signalCode !== null) return resolve();
  p.once('exit', () => resolve());
  p.kill('SIGKILL');
});

