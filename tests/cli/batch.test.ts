// `imagic batch` on one machine: a few fast Shapes-64 edits, results.jsonl and report.html checked row by
// row (every image link resolves), a rerun that skips everything, a corrupt image that fails alone, and
// the batch file's and the out dir's refusals.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseHtml } from 'node-html-parser';
import { batch } from '../../src/cli/batch/index.js';
import { readBatchCsv } from '../../src/cli/batch/csv.js';
import { checkRowJob } from '../../src/queue/job.js';
import type { RowResult } from '../../src/cli/batch/run-row.js';

import { FAST, MODEL, readJsonl, writeShape } from './batch-helpers.js';

describe('imagic batch (one machine)', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-batch-'));
    await writeShape(path.join(dir, 'circle.png'), { shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' });
    await writeShape(path.join(dir, 'square.png'), { shape: 'square', color: 'blue', size: 'small', position: 'center', background: 'black' });
    writeFileSync(path.join(dir, 'corrupt.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(100, 1)]));
    // TEdBench's column names, and a row with its own eta and seed.
    writeFileSync(path.join(dir, 'edits.csv'), 'img_name,target_text,eta,seed\ncircle.png,a red square,,\nsquare.png,a large blue square,0.9,1\ncorrupt.png,a red circle,,\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every row edited or failed with its reason; results.jsonl and report.html say so; a rerun skips everything', async () => {
    const out = path.join(dir, 'out');
    const r = await batch(path.join(dir, 'edits.csv'), { ...FAST, output: out });
    assert.deepEqual([r.rows, r.ok, r.failed, r.skipped], [3, 2, 1, 0]);
    const lines = readJsonl(path.join(out, 'results.jsonl'));
    assert.deepEqual(lines.map((l) => [l.index, l.status]), [[0, 'ok'], [1, 'ok'], [2, 'failed']]);
    const [auto, fixed, bad] = lines as [RowResult, RowResult, RowResult];
    // The automatic choice (the model's CLIP) for the first row; the row's own eta and seed for the second.
    assert.ok(auto.eta !== null && auto.alignment !== null && auto.preservation !== null);
    assert.deepEqual([fixed.eta, fixed.seed], [0.9, 1]);
    assert.ok(fixed.alignment! > 0);
    assert.match(bad.error!, /corrupt\.png/);
    assert.match(bad.error!, /not an image or corrupt/);
    // The domain's evaluator read the input as the CSV's picture.
    assert.deepEqual(auto.evaluator!.input, { shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' });
    for (const l of [auto, fixed]) {
      for (const f of [l.files.input!, l.files.output!]) assert.ok(statSync(path.join(out, f)).size > 0, f);
      assert.ok(existsSync(path.join(out, l.files.session, 'unet-finetuned.safetensors')));
    }

    // The report: one row per CSV row, every picture link resolves from the out dir.
    const html = parseHtml(readFileSync(r.report, 'utf8'));
    const trs = html.querySelectorAll('#rows tbody tr');
    assert.equal(trs.length, 3);
    assert.deepEqual(trs.map((t) => t.getAttribute('data-status')), ['ok', 'ok', 'failed']);
    const imgs = html.querySelectorAll('#rows img');
    assert.equal(imgs.length, 4); // input and output of the two good rows
    for (const i of imgs) assert.ok(existsSync(path.join(out, i.getAttribute('src')!)), i.getAttribute('src')!);
    assert.match(trs[2]!.text, /not an image or corrupt/);
    assert.match(html.querySelector('#summary')!.text, /3 rows: 2 done, 1 failed, 0 not yet/);
    assert.equal(html.querySelectorAll('svg circle').length, 2); // the plot: one point per scored row

    // Rerun: nothing to do, nothing written twice.
    const before = readFileSync(path.join(out, 'results.jsonl'), 'utf8');
    const again = await batch(path.join(dir, 'edits.csv'), { ...FAST, output: out });
    assert.deepEqual([again.skipped, again.ok, again.failed], [3, 2, 1]);
    assert.equal(readFileSync(path.join(out, 'results.jsonl'), 'utf8'), before);
  });

  test('an interrupted row resumes from its session: stage A is not run again', async () => {
    const out = path.join(dir, 'resume');
    const csv = path.join(dir, 'one.csv');
    writeFileSync(csv, 'image,target_text,eta\ncircle.png,a red square,0.8\n');
    // A first run that got through stage A and part of stage B, as a killed run leaves it.
    await batch(csv, { ...FAST, output: out, stepsB: 8, checkpointEvery: 4 });
    const key = readJsonl(path.join(out, 'results.jsonl'))[0]!.key;
    const session = path.join(out, 'rows', key, 'session');
    const json = JSON.parse(readFileSync(path.join(session, 'session.json'), 'utf8')) as { progress: { stageA: boolean; stageB: number; stageBDone: boolean } };
    assert.equal(json.progress.stageBDone, true);
    // Forget the result and roll the session back to its stage B checkpoint at step 4.
    writeFileSync(path.join(out, 'results.jsonl'), '');
    json.progress = { stageA: true, stageB: 4, stageBDone: false };
    writeFileSync(path.join(session, 'session.json'), JSON.stringify(json));
    // Stage A would write its file again (same bytes: it is deterministic), so its identity tells.
    const embeddings = statSync(path.join(session, 'embeddings.safetensors'));
    // (no stage B checkpoint file: stage B starts again from the base weights, stage A is kept)
    const r = await batch(csv, { ...FAST, output: out, stepsB: 8, checkpointEvery: 4 });
    assert.equal(r.ok, 1);
    const line = readJsonl(path.join(out, 'results.jsonl'))[0]!;
    assert.deepEqual(line.resumedFrom, { stageA: true, stageB: 4 });
    const after = statSync(path.join(session, 'embeddings.safetensors'));
    assert.deepEqual([after.ino, after.mtimeMs], [embeddings.ino, embeddings.mtimeMs], 'stage A was not run again');
  });

  test('bad batch files and out dirs are refused before any work, saying why', async () => {
    const csv = (name: string, text: string) => {
      const f = path.join(dir, name);
      writeFileSync(f, text);
      return f;
    };
    assert.throws(() => readBatchCsv(csv('cols.csv', 'picture,caption\na.png,x\n')), /lacks the columns image \(or img_name\) and target_text \(its columns: picture, caption\)/);
    assert.throws(() => readBatchCsv(csv('text.csv', 'image,prompt\na.png,x\n')), /lacks the column target_text/);
    assert.throws(() => readBatchCsv(path.join(dir, 'nope.csv')), /cannot read the batch file .*nope\.csv: no such file/);
    assert.throws(() => readBatchCsv(dir), /cannot read the batch file .*: it is a folder/);
    assert.throws(() => readBatchCsv(csv('quote.csv', 'image,target_text\n"a.png,x\n')), /is not a valid CSV/);
    assert.throws(() => readBatchCsv(csv('empty.csv', 'image,target_text\n')), /has no rows/);
    assert.throws(() => readBatchCsv(csv('vals.csv', 'image,target_text,eta,seed,preset\na.png,,x,-1,turbo\n')),
      (e: Error) => /row 1: no target_text/.test(e.message) && /eta must be a number/.test(e.message) && /seed must be an integer >= 0/.test(e.message) && /unknown preset 'turbo'/.test(e.message));
    // Outside the CSV's folder: refused unless allowed.
    mkdirSync(path.join(dir, 'sub'), { recursive: true });
    const outside = csv('sub/outside.csv', 'image,target_text\n../circle.png,a red square\n/etc/passwd,a red square\n');
    assert.throws(() => readBatchCsv(outside), (e: Error) => /row 1: \.\.\/circle\.png is outside the CSV's folder/.test(e.message) && /row 2: \/etc\/passwd is outside/.test(e.message) && /--allow-outside/.test(e.message));
    assert.equal(readBatchCsv(outside, { allowOutside: true })[0]!.image, path.join(dir, 'circle.png'));

    // An out dir of another batch: refused without --force; with it, replaced.
    const other = csv('other.csv', 'image,target_text,eta\ncircle.png,a blue circle,0.7\n');
    const out = path.join(dir, 'taken');
    await batch(other, { ...FAST, output: out });
    const mine = csv('mine.csv', 'image,target_text,eta\ncircle.png,a green circle,0.7\n');
    await assert.rejects(batch(mine, { ...FAST, output: out }), /belongs to another batch \(.*other\.csv, 1 rows/);
    const r = await batch(mine, { ...FAST, output: out, force: true });
    assert.equal(r.skipped, 0);
    const lines = readJsonl(path.join(out, 'results.jsonl'));
    assert.deepEqual(lines.map((l) => l.target), ['a green circle']);
  });

  test('a job payload that is not a row is refused before anything runs', () => {
    const good = { version: 1, batchId: '0123456789abcdef', outDir: '/tmp/x', row: { index: 0, key: '001-a-b', image: '/tmp/a.png', imageName: 'a.png', target: 'a cat' }, settings: { model: MODEL, baselines: false, strength: 0.6 } };
    assert.equal(checkRowJob(good).row.key, '001-a-b');
    for (const [bad, why] of [
      [null, /not an object/], [{ ...good, version: 9 }, /version/], [{ ...good, outDir: 'relative' }, /outDir/],
      [{ ...good, row: { ...good.row, key: '../../etc' } }, /row\.key/], [{ ...good, row: { ...good.row, image: 'a.png' } }, /row\.image/],
      [{ ...good, settings: { ...good.settings, stepsA: 'many' } }, /settings\.stepsA/], [{ foo: 1 }, /malformed job/],
    ] as [unknown, RegExp][]) assert.throws(() => checkRowJob(bad), why);
  });
});
