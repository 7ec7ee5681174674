// The addon in worker threads, and SIGINT during a long native op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../fixtures.js';

const engineUrl = new URL(`file://${path.join(repoRoot, 'dist', 'src', 'engine', 'index.js')}`).href;

test('the addon loads and computes in several worker threads at once, and in the main thread after', async () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then((E) => {
      const x = E.tensor([[1, 2], [3, 4]]).mul(workerData.k);
      const w = E.tensor([1, 1], { requiresGrad: true });
      x.matmul(w).sum().backward();
      parentPort.postMessage({ y: x.sum().item(), g: w.grad.toFlatArray(), live: E.liveTensors() });
    });`;
  const run = (k: number) => new Promise<{ y: number; g: number[] }>((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { url: engineUrl, k } });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const results = await Promise.all([1, 2, 3].map(run));
  assert.deepEqual(results.map((r) => r.y), [10, 20, 30]);
  assert.deepEqual(results.map((r) => r.g), [[4, 6], [8, 12], [12, 18]]);
  const E = await import(engineUrl);
  assert.equal(E.tensor([2]).mul(21).item(), 42);
});

test('SIGINT during a long native op: the op completes intact, then the handler runs', async () => {
  // The child starts a multi-second matmul loop in one synchronous call, gets SIGINT in the middle,
  // and checks that its result is exactly right before its SIGINT handler reports.
  const code = `
    import(${JSON.stringify(engineUrl)}).then((E) => {
      let interrupted = false;
      process.on('SIGINT', () => { interrupted = true; });
      const a = E.full([600, 600], 1 / 600);
      process.stdout.write('ready\\n');
      const t0 = Date.now();
      let x = E.full([600, 600], 1);
      for (let i = 0; i < 250; i++) { const y = x.matmul(a); x.dispose(); x = y; }
      const elapsed = Date.now() - t0;
      const ok = x.amin().item() === x.amax().item() && Math.abs(x.mean().item() - 1) < 1e-4;
      setTimeout(() => process.stdout.write(JSON.stringify({ interrupted, ok, elapsed }) + '\\n'), 100);
    });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let sent = false;
  child.stdout.on('data', (d) => {
    out += d;
    if (out.startsWith('ready\n') && !sent) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), 150);
    }
  });
  const code_ = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code_, 0, out);
  const report = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!);
  assert.equal(report.ok, true, 'the result of the interrupted op is intact');
  assert.equal(report.interrupted, true, 'the SIGINT handler ran after the op');
  assert.ok(report.elapsed > 150, `the op was still running when the signal came (${report.elapsed} ms)`);
});
