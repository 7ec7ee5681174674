// `imagic batch` measured on a 20-row Shapes-64 batch (4 edits of each kind from the edit benchmark's
// generator, seed 7: not the benchmark's own cases): one process with every core, against two
// `imagic worker`s with a core each through Redis (BullMQ); the queue's overhead per row (a worker's
// wait between two rows, and a result's trip back to the submitter) against a row's time; and the
// time lost when a worker is killed (SIGKILL) in the middle of a row.
// Usage: node dist/bench/batch.js [--json bench/results/batch.json] [--steps-a 100 --steps-b 75] [--lock-ms 5000]
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { batch, type BatchArgs } from '../src/cli/batch/index.js';
import type { RowResult } from '../src/cli/batch/run-row.js';
import { editBenchmarkCases } from '../src/shapes/edit-benchmark.js';
import { freePort, REDIS, startRedis, startWorker } from '../tests/cli/redis.js';
import { renderShape } from '../src/shapes/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  json: { type: 'string', default: path.join(root, 'bench', 'results', 'batch.json') },
  'steps-a': { type: 'string', default: '100' }, 'steps-b': { type: 'string', default: '75' },
  'lock-ms': { type: 'string', default: '5000' },
  modes: { type: 'string', default: 'local,queue,killed' },
} });
if (!REDIS) throw new Error('no redis-server (apt-get install redis-server, or set REDIS_SERVER)');

const dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-bench-batch-'));
const cases = editBenchmarkCases(4, 7);
const lines = ['image,target_text'];
for (const c of cases) {
  const img = renderShape(c.input);
  await sharp(img.data, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(path.join(dir, `case${c.id}.png`));
  lines.push(`case${c.id}.png,${c.target}`);
}
const csv = path.join(dir, 'edits.csv');
writeFileSync(csv, `${lines.join('\n')}\n`);
const base: Omit<BatchArgs, 'output'> = {
  model: path.join(root, 'models', 'shapes-64'), stepsA: Number(a['steps-a']), stepsB: Number(a['steps-b']), checkpointEvery: 25, strength: 0.6, jobs: 1, device: 'cpu', quiet: true,
};

const results = (out: string) => readFileSync(path.join(out, 'results.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RowResult);
const t = (s: string) => Date.parse(s);
const mean = (xs: number[]) => xs.reduce((p, c) => p + c, 0) / Math.max(1, xs.length);
const r2 = (x: number) => Math.round(x * 100) / 100;

function summarize(rs: RowResult[], wallS: number) {
  const byWorker = new Map<string, RowResult[]>();
  for (const r of rs) byWorker.set(r.worker, [...(byWorker.get(r.worker) ?? []), r]);
  const gaps: number[] = [];
  for (const list of byWorker.values()) {
    list.sort((p, q) => t(p.startedAt) - t(q.startedAt));
    for (let i = 1; i < list.length; i++) gaps.push((t(list[i]!.startedAt) - t(list[i - 1]!.finishedAt)) / 1000);
  }
  const delivery = rs.map((r) => (t(r.receivedAt!) - t(r.finishedAt)) / 1000);
  const rowS = mean(rs.map((r) => r.seconds));
  return {
    wallS: r2(wallS), rows: rs.length, ok: rs.filter((r) => r.status === 'ok').length, rowsPerMinute: r2((60 * rs.length) / wallS), meanRowS: r2(rowS),
    workers: byWorker.size, meanPickupGapS: r2(mean(gaps)), meanDeliveryS: r2(mean(delivery)),
    overheadPerRowPct: r2((100 * (mean(gaps) + mean(delivery))) / rowS),
    evaluatorBoth: rs.filter((r) => r.evaluator?.success && r.evaluator.preserved).length,
  };
}

const out: Record<string, unknown> = { machine: `${os.cpus()[0]?.model} x${os.cpus().length}`, date: new Date().toISOString(), rows: cases.length, settings: { stepsA: base.stepsA, stepsB: base.stepsB, steps: 25, eta: 'auto', lockMs: Number(a['lock-ms']) } };
const modes = a.modes!.split(',');
if (modes.includes('local')) {
  const o = path.join(dir, 'local');
  const t0 = Date.now();
  await batch(csv, { ...base, output: o, threads: 2 });
  out.oneProcess = summarize(results(o), (Date.now() - t0) / 1000);
  process.stderr.write(`one process: ${JSON.stringify(out.oneProcess)}\n`);
}
for (const mode of ['queue', 'killed'].filter((m) => modes.includes(m))) {
  const port = await freePort();
  const r = await startRedis(port);
  const w = [startWorker(port, Number(a['lock-ms'])), startWorker(port, Number(a['lock-ms']))];
  const o = path.join(dir, mode);
  const t0 = Date.now();
  const done = batch(csv, { ...base, output: o, queue: `redis://127.0.0.1:${port}` });
  let kill: { at: number; key: string; stageB: number } | null = null;
  if (mode === 'killed') {
    // Worker 0's third row, once its stage B has a checkpoint.
    let key = '';
    while (!key) {
      key = [...w[0]!.log().matchAll(/row (\d{3}-[a-z0-9-]+) \(batch/g)][2]?.[1] ?? '';
      await new Promise((res) => setTimeout(res, 100));
    }
    const sj = path.join(o, 'rows', key, 'session', 'session.json');
    const stageB = () => (existsSync(sj) ? (JSON.parse(readFileSync(sj, 'utf8')) as { progress: { stageB: number } }).progress.stageB : 0);
    while (stageB() < 25) await new Promise((res) => setTimeout(res, 100));
    await new Promise((res) => setTimeout(res, 1000)); // into the steps after the checkpoint
    w[0]!.p.kill('SIGKILL');
    kill = { at: Date.now(), key, stageB: stageB() };
  }
  await done;
  const wall = (Date.now() - t0) / 1000;
  const rs = results(o);
  const s: Record<string, unknown> = summarize(rs, wall);
  if (kill) {
    const row = rs.find((x) => x.key === kill!.key)!;
    s.killed = { row: kill.key, checkpointAtKill: kill.stageB, resumedFrom: row.resumedFrom, restartedAfterS: r2((t(row.startedAt) - kill.at) / 1000), rowSecondsAfterRestart: row.seconds };
  }
  out[mode === 'queue' ? 'twoWorkersRedis' : 'twoWorkersOneKilled'] = s;
  process.stderr.write(`${mode}: ${JSON.stringify(s)}\n`);
  for (const x of w) x.p.kill('SIGKILL');
  r.kill();
}
writeFileSync(a.json!, `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));
