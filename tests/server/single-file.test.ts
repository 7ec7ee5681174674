// `imagic serve` with a single-file default model (its YAML, tokenizer and head count given at start):
// the workers load it as told, an edit trains and renders; another single file in a request is refused.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import type { CompareState, SessionDetail } from '../../src/server/api.js';
import { fixturePath } from '../fixtures.js';
import { makeTinyXLModel, writeTinyTokenizer } from '../cli/tiny-model.js';
import { FAST, api, testServer, waitFor } from './serve.js';

describe('imagic serve with a single-file model', () => {
  let s: Awaited<ReturnType<typeof testServer>>;
  let dir: string;
  const file = fixturePath('golden/single-file/tiny-sd1-ldm.safetensors');
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-serve-single-'));
    writeTinyTokenizer(path.join(dir, 'tok'));
    s = await testServer({
      defaultModel: file,
      defaultModelLoad: { config: fixturePath('golden/single-file/tiny-sd1-ldm.yaml'), tokenizer: path.join(dir, 'tok'), textEncoderHeads: 4 },
    });
  });
  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an edit on the default single file trains and renders; another single file is refused with what to do', async () => {
    const created = await api<SessionDetail>(s.base, '/api/sessions', { json: { input: 'example:red-circle', text: 'a red square', settings: { ...FAST, stepsA: 2, stepsB: 2, steps: 3 } } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const ready = await waitFor(s.base, created.body.id, (d) => d.status === 'ready');
    assert.equal(ready.losses.A.length, 2);
    const r = await api<Buffer>(s.base, `/api/sessions/${created.body.id}/render?eta=0.7&seed=1&steps=3&guidance=7.5`);
    assert.equal(r.status, 200);
    const meta = await sharp(r.body).metadata();
    assert.deepEqual([meta.width, meta.height], [64, 64]);
    const other = path.join(dir, 'other.safetensors');
    copyFileSync(file, other);
    const refused = await api<{ error: string }>(s.base, '/api/sessions', { json: { input: 'example:red-circle', text: 'a red square', model: other, settings: FAST } });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /is a file: a single-file checkpoint can be the server's default model .*imagic convert/);
  });

  test('an SDXL folder (with tokenizer/ and tokenizer_2/) as a request\'s model: trains with text, renders, baselines', async () => {
    const xl = makeTinyXLModel(dir);
    const created = await api<SessionDetail>(s.base, '/api/sessions', { json: { input: 'example:red-circle', text: 'a red square', model: xl, settings: { ...FAST, stepsA: 2, stepsB: 2, steps: 3 } } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const ready = await waitFor(s.base, created.body.id, (d) => d.status === 'ready');
    assert.equal(ready.losses.B.length, 2);
    const session = JSON.parse(readFileSync(path.join(s.store.sessionsDir, created.body.id, 'session.json'), 'utf8')) as { model: { family: string } };
    assert.equal(session.model.family, 'sdxl');
    const r = await api<Buffer>(s.base, `/api/sessions/${created.body.id}/render?eta=0.7&seed=1&steps=3&guidance=7.5`);
    assert.equal(r.status, 200);
    const meta = await sharp(r.body).metadata();
    assert.deepEqual([meta.width, meta.height], [64, 64]);
    const inverted = await api<Buffer>(s.base, `/api/sessions/${created.body.id}/render?eta=0.7&seed=-1&steps=3&guidance=7.5`);
    assert.equal(inverted.status, 200, 'from the input\'s inverted noise (DDIM inversion with the pooled embedding)');
    const cmp = await api<CompareState>(s.base, `/api/sessions/${created.body.id}/compare`, { json: { strength: 0.6 } });
    assert.equal(cmp.status, 202);
    let state: CompareState = cmp.body;
    for (let i = 0; i < 600 && state.status !== 'ready' && state.status !== 'failed'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      state = (await api<CompareState>(s.base, `/api/sessions/${created.body.id}/compare`)).body;
    }
    assert.equal(state.status, 'ready', state.error ?? '');
  });
});
