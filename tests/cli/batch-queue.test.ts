// `imagic batch --queue` with a real Redis (Debian's redis-server on a loopback port, started and stopped
// here) and real `imagic worker` processes: two workers share a batch, one is killed with SIGKILL in the
// middle of a row, and every row still ends exactly once (the killed row resumed from its checkpoint); a
// worker started while Redis is down says so, retries, and works once Redis is up; a malformed job
// payload is refused without running. Skipped, saying why, where no redis-server could be had.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { batch } from '../../src/cli/batch/index.js';
import { QUEUE_NAME } from '../../src/cli/batch/queue.js';
import { FAST, readJsonl, writeShape } from './batch-helpers.js';
import { freePort, REDIS, startRedis, startWorker, stop } from './redis.js';
import type { SessionDetail } from '../../src/server/api.js';
import { api, testServer, waitFor } from '../server/serve.js';

async function until(what: string, f: () => boolean, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('imagic batch --queue (Redis, BullMQ)', { skip: REDIS ? false : 'no redis-server (apt-get install redis-server, or set REDIS_SERVER)' }, () => {
  let dir: string;
  const procs: ChildProcess[] = [];
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-queue-'));
    await writeShape(path.join(dir, 'circle.png'), { shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' });
    await writeShape(path.join(dir, 'square.png'), { shape: 'square', color: 'blue', size: 'small', position: 'center', background: 'black' });
    await writeShape(path.join(dir, 'triangle.png'), { shape: 'triangle', color: 'green', size: 'large', position: 'top-right', background: 'gray' });
  });
  after(async () => {
    await Promise.all(procs.map(stop));
    rmSync(dir, { recursive: true, force: true });
  });

  test('two workers, one killed mid-row: every row ends exactly once, the killed one resumed from its checkpoint', async () => {
    const port = await freePort();
    procs.push(await startRedis(port));
    const a = startWorker(port), b = startWorker(port);
    procs.push(a.p, b.p);
    const csv = path.join(dir, 'edits.csv');
    writeFileSync(csv, 'image,target_text,eta\ncircle.png,a red square,0.8\nsquare.png,a large blue square,0.8\ntriangle.png,a yellow triangle,0.8\ncircle.png,a blue circle,0.8\n');
    const out = path.join(dir, 'out');
    const done = batch(csv, { ...FAST, output: out, stepsB: 60, checkpointEvery: 10, queue: `redis://127.0.0.1:${port}` });
    // Worker A's first row: kill A once that row's stage B has a checkpoint.
    let key = '';
    await until('worker A to take a row', () => {
      key = /row (\d{3}-[a-z0-9-]+) \(batch/.exec(a.log())?.[1] ?? '';
      return key !== '';
    });
    const sessionJson = path.join(out, 'rows', key, 'session', 'session.json');
    const stageB = () => (existsSync(sessionJson) ? (JSON.parse(readFileSync(sessionJson, 'utf8')) as { progress: { stageB: number } }).progress.stageB : 0);
    await until(`row ${key} to checkpoint stage B`, () => stageB() >= 10);
    a.p.kill('SIGKILL');
    const killedAt = stageB();
    const r = await done;
    assert.deepEqual([r.rows, r.ok, r.failed], [4, 4, 0]);
    const lines = readJsonl(path.join(out, 'results.jsonl'));
    assert.equal(lines.length, 4, 'every row reported once');
    assert.equal(new Set(lines.map((l) => l.key)).size, 4);
    const killed = lines.find((l) => l.key === key)!;
    assert.notEqual(killed.worker.split(':')[1], String(a.p.pid), 'finished by the other worker');
    assert.ok(killed.resumedFrom !== null && killed.resumedFrom.stageA && killed.resumedFrom.stageB >= killedAt, `resumed from ${JSON.stringify(killed.resumedFrom)}, killed at ${killedAt}`);
    assert.ok(killed.resumedFrom!.stageB > 0);
    await stop(b.p);
  });

  test('a worker started while Redis is down says so, retries with backoff, and works once Redis is up', async () => {
    const port = await freePort();
    const w = startWorker(port);
    procs.push(w.p);
    await until('the worker to say Redis is unreachable twice', () => (w.log().match(/cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+; retrying in/g) ?? []).length >= 2, 30_000);
    assert.match(w.log(), /retrying in 0\.5 s \(attempt 1\)[\s\S]*retrying in 1\.0 s \(attempt 2\)/);
    procs.push(await startRedis(port));
    const csv = path.join(dir, 'late.csv');
    writeFileSync(csv, 'image,target_text,eta\nsquare.png,a red square,0.8\n');
    const r = await batch(csv, { ...FAST, output: path.join(dir, 'late'), queue: `redis://127.0.0.1:${port}` });
    assert.deepEqual([r.ok, r.failed], [1, 0]);
    await stop(w.p);
  });

  test('the web editor hands its training to the queue: a worker trains the session, the editor renders it', async () => {
    const port = await freePort();
    procs.push(await startRedis(port));
    const w = startWorker(port);
    procs.push(w.p);
    const s = await testServer({ queue: `redis://127.0.0.1:${port}` });
    try {
      const created = await api<SessionDetail>(s.base, '/api/sessions', { json: { input: 'example:red-circle', text: 'a red square', settings: { stepsA: 5, stepsB: 5, steps: 10, auto: true } } });
      assert.equal(created.status, 201);
      const id = created.body.id;
      const d = await waitFor(s.base, id, (x) => x.status === 'ready', 120_000);
      assert.match(w.log(), new RegExp(`row 000-${id} \\(batch`), 'the worker trained it');
      // Progress came through Redis: every loss of both stages.
      assert.equal(d.losses.A.length, 5);
      assert.equal(d.losses.B.length, 5);
      assert.ok([...d.losses.A, ...d.losses.B].every((l) => Number.isFinite(l) && l > 0));
      // The worker's automatic choice, its candidates in the editor's render cache.
      assert.equal(d.candidates.length, d.settings.autoEtas.length * 5);
      assert.ok(d.choice);
      const chosen = await api<Buffer>(s.base, d.thumbnail);
      assert.equal(chosen.headers.get('x-cache'), 'hit');
      // A new eta: rendered by the editor from the session the worker wrote.
      const other = await api<Buffer>(s.base, `/api/sessions/${id}/render?eta=0.55&seed=0&steps=10&guidance=7.5`);
      assert.equal(other.status, 200);
      assert.equal(other.headers.get('x-cache'), 'miss');
    } finally {
      await s.close();
      await stop(w.p);
    }
  });

  test('a malformed job payload is refused, not run, and not retried', async () => {
    const port = await freePort();
    procs.push(await startRedis(port));
    const w = startWorker(port);
    procs.push(w.p);
    const q = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port } });
    try {
      const job = await q.add('row', { version: 1, batchId: '0123456789abcdef', outDir: '/tmp', row: { key: '../../etc/passwd' } }, { attempts: 3 });
      await until('the job to fail', () => w.log().includes(`row job ${job.id} failed`), 30_000);
      const j = (await q.getJob(job.id!))!;
      assert.equal(await j.getState(), 'failed');
      assert.match(j.failedReason, /malformed job: row\.key/);
      assert.equal(j.attemptsMade, 1);
      assert.doesNotMatch(w.log(), /row \.\.\/\.\.\/etc/, 'nothing of it ran');
    } finally {
      await q.close();
      await stop(w.p);
    }
  });
});
