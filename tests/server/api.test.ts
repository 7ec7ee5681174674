// The API of `imagic serve` against a real server on an ephemeral loopback port, with real compute
// workers on the embedded model: uploads and their checks, an edit from queue to renders, the render
// cache, the baselines, cancel / resume / delete, and the errors of bad requests.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { dispose } from '../../src/engine/index.js';
import { tensorToImage } from '../../src/io/image.js';
import { disposeStableDiffusion, loadStableDiffusion } from '../../src/pipelines/index.js';
import { openForRender, renderEtas } from '../../src/pipelines/imagic/index.js';
import type { CompareState, Options, SessionDetail, SessionSummary, Upload } from '../../src/server/api.js';
import { sniffImage } from '../../src/server/index.js';
import { FAST, MODEL, api, testServer, waitFor } from './serve.js';

type Server = Awaited<ReturnType<typeof testServer>>;

async function pngOf(rgb: { width: number; height: number; data: Uint8Array }): Promise<Buffer> {
  return sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } }).png().toBuffer();
}

async function pixels(png: Buffer): Promise<Uint8Array> {
  return new Uint8Array(await sharp(png).raw().toBuffer());
}

describe('imagic serve API', () => {
  let s: Server;
  let base: string;
  before(async () => {
    s = await testServer();
    base = s.base;
  });
  after(async () => {
    await s.close();
  });

  test('status and options describe the server, its presets and examples', async () => {
    const st = await api<{ device: string; training: null; queued: string[] }>(base, '/api/status');
    assert.equal(st.status, 200);
    assert.deepEqual([st.body.device, st.body.training, st.body.queued], ['cpu', null, []]);
    const o = await api<Options>(base, '/api/options');
    assert.equal(o.body.defaultModel, MODEL);
    assert.equal(o.body.defaultPreset, 'shapes');
    const shapes = o.body.presets.find((p) => p.name === 'shapes')!;
    assert.deepEqual([shapes.stepsA, shapes.stepsB, shapes.steps], [200, 150, 25]);
    assert.ok(o.body.examples.length >= 3);
    const ex = await api<Buffer>(base, o.body.examples[0]!.url);
    assert.equal(ex.headers.get('content-type'), 'image/png');
    const meta = await sharp(ex.body).metadata();
    assert.deepEqual([meta.width, meta.height], [64, 64]);
  });

  test('sniffImage judges by content', () => {
    assert.equal(sniffImage(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'png');
    assert.equal(sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), 'jpeg');
    assert.equal(sniffImage(Buffer.from('RIFF\x00\x00\x00\x00WEBPVP8 ', 'latin1')), 'webp');
    assert.equal(sniffImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')), null);
    assert.equal(sniffImage(Buffer.from('GIF89a......')), null);
  });

  test('uploads: an image is decoded and kept; a non-image, an oversized or a corrupt one is refused with a 4xx', async () => {
    const rgb = { width: 40, height: 30, data: new Uint8Array(40 * 30 * 3).map((_, i) => (i * 7) % 256) };
    const jpeg = await sharp(rgb.data, { raw: { width: 40, height: 30, channels: 3 } }).jpeg().toBuffer();
    const ok = await api<Upload>(base, '/api/uploads', { method: 'POST', body: jpeg, headers: { 'content-type': 'image/png' } });
    assert.equal(ok.status, 201);
    assert.deepEqual([ok.body.width, ok.body.height, ok.body.format], [40, 30, 'jpeg']);
    assert.match(ok.body.id, /^[0-9a-f]{12}$/);

    const text = await api<{ error: string }>(base, '/api/uploads', { method: 'POST', body: 'hello, not an image', headers: { 'content-type': 'image/png' } });
    assert.equal(text.status, 415);
    assert.match(text.body.error, /not a PNG, JPEG or WebP/);

    const big = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(2 << 20)]);
    const tooBig = await api<{ error: string }>(base, '/api/uploads', { method: 'POST', body: big });
    assert.equal(tooBig.status, 413);
    assert.match(tooBig.body.error, /larger than the limit of 1\.0 MiB/);

    const png = await pngOf(rgb);
    const corrupt = Buffer.from(png.subarray(0, 60));
    const bad = await api<{ error: string }>(base, '/api/uploads', { method: 'POST', body: corrupt });
    assert.equal(bad.status, 422);
    assert.match(bad.body.error, /corrupt/);
    assert.equal((await api(base, '/api/uploads', { method: 'POST', body: '' })).status, 400);
  });

  test('bad session requests: a 4xx with a message, and the server keeps serving', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ input: 'example:red-circle', text: '   ' }, 400, /target text is empty/],
      [{ input: 'example:red-circle', text: 'a red square', preset: 'turbo' }, 400, /unknown preset/],
      [{ input: 'example:red-circle', text: 'a red square', settings: { stepsA: -1 } }, 400, /stepsA must be an integer from 0/],
      [{ input: 'example:red-circle', text: 'a red square', settings: { lrB: 'fast' } }, 400, /lrB must be a number/],
      [{ input: 'example:red-circle', text: 'a red square', settings: { bogus: 1 } }, 400, /unknown settings: bogus/],
      [{ input: 'example:red-circle', text: 'a red square', model: '/no/such/model' }, 400, /no such model folder/],
      [{ input: 'example:red-circle', text: 'a red square', model: MODEL + '/unet' }, 400, /not a diffusers model folder/],
      [{ input: 'example:nope', text: 'a red square' }, 404, /no example/],
      [{ input: '0123456789ab', text: 'a red square' }, 404, /no upload/],
      [{ input: '../../etc/passwd', text: 'a red square' }, 400, /upload id/],
    ];
    for (const [body, status, msg] of cases) {
      const r = await api<{ error: string }>(base, '/api/sessions', { json: body });
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(r.body.error, msg);
    }
    const notJson = await api<{ error: string }>(base, '/api/sessions', { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } });
    assert.equal(notJson.status, 400);
    // Ids are never paths.
    for (const id of ['..%2F..%2Fetc', '..', 'ABCDEF012345', '0123456789ab']) {
      const r = await api<{ error: string }>(base, `/api/sessions/${id}`);
      assert.equal(r.status, 404, id);
      assert.equal((await api(base, `/api/sessions/${id}/files/upload.png`)).status, 404);
    }
    assert.equal((await api(base, '/api/sessions/0123456789ab/files/..%2Fserver.json')).status, 404);
    assert.equal((await api(base, '/api/status')).status, 200);
  });

  test('an edit: queued, trained with progress, then renders that match a render in this process, cached', async () => {
    const created = await api<SessionDetail>(base, '/api/sessions', { json: { input: 'example:red-circle', text: 'a red square', settings: FAST } });
    assert.equal(created.status, 201);
    const id = created.body.id;
    assert.equal(created.body.settings.stepsA, 5);
    assert.equal(created.body.settings.lrA, 3e-3); // the shapes preset's
    const ready = await waitFor(base, id, (d) => d.status === 'ready');
    assert.ok(ready.revision > created.body.revision, 'every change raises the revision');
    assert.equal(ready.losses.A.length, 5);
    assert.equal(ready.losses.B.length, 5);
    assert.ok(ready.losses.B.every((l) => Number.isFinite(l) && l > 0));
    assert.equal(ready.choice, null); // auto off

    const q = '?eta=0.70&seed=1&steps=10&guidance=7.5';
    const first = await api<Buffer>(base, `/api/sessions/${id}/render${q}`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cache'), 'miss');
    assert.ok(Number(first.headers.get('x-render-ms')) > 0);
    const again = await api<Buffer>(base, `/api/sessions/${id}/render${q}`);
    assert.equal(again.headers.get('x-cache'), 'hit');
    assert.ok(again.body.equals(first.body));

    // The same render in this process, from the session on disk.
    const sd = await loadStableDiffusion(MODEL, { dtype: 'float32' });
    try {
      const { embeddings } = openForRender(sd, path.join(s.store.sessionsDir, id));
      const img = await renderEtas(sd, embeddings, { etas: [0.7], seed: 1, steps: 10, guidanceScale: 7.5 });
      const want = tensorToImage(img).data;
      dispose([img, ...Object.values(embeddings)]);
      const got = await pixels(first.body);
      assert.equal(got.length, want.length);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      assert.ok(worst <= 2, `served render differs from the in-process render by ${worst} levels`);
    } finally {
      disposeStableDiffusion(sd);
    }
    // Another eta is another image.
    const other = await api<Buffer>(base, `/api/sessions/${id}/render?eta=1.20&seed=1&steps=10&guidance=7.5`);
    assert.ok(!other.body.equals(first.body));
    const badEta = await api<{ error: string }>(base, `/api/sessions/${id}/render?eta=abc`);
    assert.equal(badEta.status, 400);
    assert.match(badEta.body.error, /eta must be a number/);

    // Files: a fixed list.
    const input = await api<Buffer>(base, `/api/sessions/${id}/files/input.png`);
    assert.equal(input.status, 200);
    assert.equal((await api(base, `/api/sessions/${id}/files/session.json`)).status, 404);

    // The gallery lists it, newest first.
    const list = await api<SessionSummary[]>(base, '/api/sessions');
    assert.equal(list.body[0]!.id, id);

    // The baselines, on the same input.
    const cmp = await api<CompareState>(base, `/api/sessions/${id}/compare`, { json: { strength: 0.6 } });
    assert.equal(cmp.status, 202);
    let state: CompareState = cmp.body;
    for (let i = 0; i < 600 && state.status !== 'ready' && state.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = (await api<CompareState>(base, `/api/sessions/${id}/compare`)).body;
    }
    assert.equal(state.status, 'ready', state.error ?? '');
    assert.deepEqual(state.images.map((i) => i.label.split(' ')[0]), ['input', 'Imagic', 'SDEdit', 'DDIM']);
    const sdedit = await api<Buffer>(base, state.images[2]!.url);
    assert.equal(sdedit.status, 200);
    assert.ok(!sdedit.body.equals(input.body));

    // The session as an archive.
    const tgz = await api<Buffer>(base, `/api/sessions/${id}/download`);
    assert.equal(tgz.status, 200);
    assert.equal(tgz.body[0], 0x1f);
    assert.equal(tgz.body[1], 0x8b);
  });

  test('the automatic choice: candidates scored, the choice among them, its render cached', async () => {
    const created = await api<SessionDetail>(base, '/api/sessions', { json: { input: 'example:red-circle', text: 'a red square', settings: { ...FAST, auto: true } } });
    const d = await waitFor(base, created.body.id, (x) => x.status === 'ready');
    assert.equal(d.candidates.length, d.settings.autoEtas.length * 5);
    assert.ok(d.choice);
    const chosen = d.candidates.find((c) => c.eta === d.choice!.eta && c.seed === d.choice!.seed)!;
    assert.ok(chosen.alignment >= d.threshold!);
    // Every eligible candidate preserves no better than the choice (the rule).
    for (const c of d.candidates) if (c.alignment >= d.threshold!) assert.ok(c.preservation <= chosen.preservation + 1e-12);
    const r = await api<Buffer>(base, chosen.url);
    assert.equal(r.headers.get('x-cache'), 'hit');
    assert.equal(d.thumbnail, chosen.url);
  });

  test('cancel stops a training at a step (resumable), resume continues it, delete removes it', async () => {
    const created = await api<SessionDetail>(base, '/api/sessions', { json: { input: 'example:blue-square', text: 'a large blue square', settings: { ...FAST, stepsB: 100_000 } } });
    const id = created.body.id;
    await waitFor(base, id, (d) => d.progress.stage === 'B' && d.progress.step >= 3);
    assert.equal((await api(base, `/api/sessions/${id}/render?eta=0.5`)).status, 409);
    const c = await api(base, `/api/sessions/${id}/cancel`, { method: 'POST' });
    assert.equal(c.status, 202);
    const cancelled = await waitFor(base, id, (d) => d.status === 'cancelled');
    assert.equal(cancelled.error, null);
    assert.equal((await api(base, `/api/sessions/${id}/cancel`, { method: 'POST' })).status, 409);
    // Saved at the step it stopped: resuming starts stage B there.
    const stoppedAt = cancelled.progress.step;
    assert.equal((await api(base, `/api/sessions/${id}/resume`, { method: 'POST' })).status, 202);
    const resumed = await waitFor(base, id, (d) => d.progress.stage === 'B' && d.progress.step > stoppedAt);
    assert.equal(resumed.progress.stageStartStep, stoppedAt);
    const del = await api(base, `/api/sessions/${id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal((await api(base, `/api/sessions/${id}`)).status, 404);
    const dir = path.join(s.store.sessionsDir, id);
    for (let i = 0; i < 100 && existsSync(dir); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!existsSync(dir), 'the session folder is removed once its training stopped');
    assert.equal((await api<{ training: string | null }>(base, '/api/status')).body.training, null);
  });

  test('a model that fails to load fails its job with the reason; renders of it answer 409', async () => {
    const broken = path.join(s.store.root, 'broken-model');
    mkdirSync(broken, { recursive: true });
    writeFileSync(path.join(broken, 'model_index.json'), '{"_class_name": "StableDiffusionPipeline"}');
    const created = await api<SessionDetail>(base, '/api/sessions', { json: { input: 'example:red-circle', text: 'a red square', model: broken, settings: FAST } });
    assert.equal(created.status, 201);
    const failed = await waitFor(base, created.body.id, (d) => d.status === 'failed');
    assert.match(failed.error!, /broken-model|unet|config/i);
    const r = await api<{ error: string }>(base, `/api/sessions/${created.body.id}/render?eta=0.5`);
    assert.equal(r.status, 409);
    assert.match(r.body.error, /failed/);
    assert.equal((await api(base, '/api/status')).status, 200);
  });
});

describe('imagic serve security', () => {
  test('on a non-loopback bind every request needs the token; /?token= sets a cookie', async () => {
    const s = await testServer({ host: '0.0.0.0', token: 'secret-token-123' });
    try {
      const base = `http://127.0.0.1:${s.port}`;
      assert.equal(s.token, 'secret-token-123');
      const no = await api<{ error: string }>(base, '/api/status');
      assert.equal(no.status, 401);
      assert.match(no.body.error, /access token/);
      assert.equal((await api(base, '/api/status', { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await api(base, '/api/status', { headers: { authorization: 'Bearer secret-token-123' } })).status, 200);
      assert.equal((await api(base, '/api/status?token=secret-token-123')).status, 200);
      const page = await fetch(`${base}/?token=secret-token-123`);
      const cookie = page.headers.get('set-cookie') ?? '';
      assert.match(cookie, /imagic_token=secret-token-123/);
      assert.match(cookie, /HttpOnly/);
      assert.equal((await api(base, '/api/status', { headers: { cookie: cookie.split(';')[0]! } })).status, 200);
      assert.equal((await api(base, '/api/uploads', { method: 'POST', body: 'x' })).status, 401);
    } finally {
      await s.close();
    }
  });

  test('on loopback: other host names (DNS rebinding) and cross-site writes are refused', async () => {
    const s = await testServer();
    try {
      assert.equal(s.token, null);
      // fetch() will not send another Host: a raw request does, as a rebound DNS name makes a browser do.
      const rebind = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: s.port, path: '/api/status', headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        }).on('error', reject);
      });
      assert.equal(rebind, 403);
      const cross = await api<{ error: string }>(s.base, '/api/sessions', { json: { input: 'example:red-circle', text: 'x' }, headers: { origin: 'http://evil.example' } });
      assert.equal(cross.status, 403);
      assert.match(cross.body.error, /cross-site/);
      const same = await api(s.base, '/api/sessions', { json: { input: 'example:red-circle', text: '' }, headers: { origin: s.base } });
      assert.equal(same.status, 400); // passed the check, refused for the empty text
    } finally {
      await s.close();
    }
  });
});

describe('imagic serve restart', () => {
  test('a server stopped during a training saves it; the next start on the same data resumes it from its step', async () => {
    const s1 = await testServer();
    const dataDir = s1.store.root;
    let id: string;
    let stoppedAt: number;
    try {
      const created = await api<SessionDetail>(s1.base, '/api/sessions', { json: { input: 'example:green-triangle', text: 'a yellow triangle', settings: { ...FAST, stepsB: 100_000 } } });
      id = created.body.id;
      await waitFor(s1.base, id, (d) => d.progress.stage === 'B' && d.progress.step >= 3);
    } finally {
      await s1.close(true);
    }
    const s2 = await testServer({ dataDir });
    try {
      assert.deepEqual(s2.resumed, [id]);
      const before = s2.store.get(id)!;
      stoppedAt = before.progress.step;
      assert.ok(stoppedAt >= 3);
      const d = await waitFor(s2.base, id, (x) => x.status === 'training' && x.progress.stage === 'B' && x.progress.step > stoppedAt);
      assert.equal(d.progress.stageStartStep, stoppedAt, 'stage B restarts where it was saved, not from 0');
      assert.equal(d.losses.A.length, 5, 'stage A is not run again');
      assert.equal((await api(s2.base, `/api/sessions/${id}`, { method: 'DELETE' })).status, 204);
    } finally {
      await s2.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('imagic serve start', () => {
  test('a port in use is said plainly, and nothing is left running', async () => {
    const s = await testServer();
    try {
      await assert.rejects(testServer({ port: s.port }), /cannot serve on 127\.0\.0\.1:\d+: port \d+ is in use \(choose another with --port/);
    } finally {
      await s.close();
    }
  });
});
