// The programs in examples/ run as a user runs them, against the package's public entry points.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readImage } from '../src/io/image.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('examples/', { timeout: 600_000 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-examples-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (script: string, out: string) => spawnSync(process.execPath, [script, out], { cwd: root, encoding: 'utf8', timeout: 400_000 });

  it('edit.ts: an edit with progress and a time limit, the choice explained', async () => {
    const out = path.join(dir, 'edit');
    const r = run(path.join(root, 'dist', 'examples', 'edit.js'), out);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /stage A 200\/200 loss \d/);
    assert.match(r.stdout, /stage B 150\/150 loss \d/);
    assert.match(r.stdout, /chosen: eta \d(\.\d+)?, .* of 45 candidates/);
    assert.match(r.stdout, /why: the input scores/);
    const img = await readImage(path.join(out, 'output.png'));
    assert.deepEqual([img.width, img.height], [64, 64]);
  });

  it('sweep.mjs: a session stopped and resumed, an eta sweep with scores, the baselines', () => {
    const out = path.join(dir, 'sweep');
    const r = run(path.join(root, 'examples', 'sweep.mjs'), out);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /stopped in stage B; the session is saved/);
    const resumed = Number(/resumed at stage B step (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(resumed > 1 && resumed <= 80, `resumed at ${resumed}`);
    assert.equal(r.stdout.match(/^eta \d\.\d seed \d: alignment \d+\.\d\d, preservation -?\d\.\d{4}$/gm)?.length, 8);
    assert.match(r.stdout, /SDEdit: alignment \d/);
    assert.match(r.stdout, /DDIM inversion: alignment \d/);
    for (const f of ['first.png', 'sweep.png', 'compare.png']) assert.ok(existsSync(path.join(out, f)), f);
  });
});
