// The routes of `imagic serve` (the API of src/server/api.ts and the page's static files), on Hono.
// Every failure is a JSON { error } with a 4xx (the request) or 5xx (the server) status.
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { streamSSE } from 'hono/streaming';
import * as tar from 'tar';
import { ImageError, readImage, writeFileAtomic, writePng } from '../io/image.js';
import { PRESETS, TRAIN_MODES, defaultPreset, resolveClipSource, resolveSettings, type PresetName, type TrainMode } from '../pipelines/imagic/index.js';
import type { ApiError, EditSettings, NewSession, Options, ServerEvent, Upload } from './api.js';
import type { ExampleImage } from './examples.js';
import { ConflictError, type Jobs } from './jobs.js';
import { ID_PATTERN, sessionFiles } from './paths.js';
import { guard } from './security.js';
import { RECORD_VERSION, Store, type SessionRecord } from './store.js';
import { compareState, detail, namedFile, summary } from './views.js';

/** A request error with its HTTP status. */
export class HttpError extends Error {
  constructor(readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface AppOptions {
  store: Store;
  jobs: Jobs;
  examples: Map<string, ExampleImage>;
  defaultModel: string;
  maxUploadBytes: number;
  /** The bundled page (dist/web). */
  webDir: string;
  loopback: boolean;
  token: string | null;
}

const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** The first bytes of the accepted formats: the upload's content decides, not its name or type. */
export function sniffImage(b: Uint8Array): 'png' | 'jpeg' | 'webp' | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG' && b[4] === 0x0d && b[5] === 0x0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return null;
}


/** A model the server can try: a diffusers folder (with model_index.json), a Hub repo id, or the default model (a single file too). */
function checkModel(model: string, defaultModel: string): void {
  if (model === defaultModel) return;
  if (existsSync(model)) {
    if (statSync(model).isFile()) throw new HttpError(400, `${model} is a file: a single-file checkpoint can be the server's default model (imagic serve -m file.safetensors with its --config / --tokenizer), or be converted to a folder with imagic convert`);
    if (!existsSync(path.join(model, 'model_index.json'))) throw new HttpError(400, `${model} is not a diffusers model folder (it has no model_index.json)`);
    return;
  }
  if (model.startsWith('/') || model.startsWith('.') || !/^[\w.-]+\/[\w.-]+$/.test(model)) {
    throw new HttpError(400, `no such model folder: ${model} (give a diffusers folder on the server, or a Hub repo id such as runwayml/stable-diffusion-v1-5)`);
  }
}

function number(v: unknown, name: string, o: { int?: boolean; min?: number; max?: number }): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    throw new HttpError(400, `${name} must be ${o.int ? 'an integer' : 'a number'}${o.min !== undefined ? ` from ${o.min}` : ''}${o.max !== undefined ? ` to ${o.max}` : ''}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function parseSettings(s: EditSettings | undefined) {
  if (s !== undefined && (typeof s !== 'object' || s === null || Array.isArray(s))) throw new HttpError(400, 'settings must be an object');
  const x = (s ?? {}) as Record<string, unknown>;
  const known = ['stepsA', 'stepsB', 'lrA', 'lrB', 'train', 'seed', 'steps', 'guidanceScale', 'auto'];
  const unknown = Object.keys(x).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new HttpError(400, `unknown settings: ${unknown.join(', ')} (known: ${known.join(', ')})`);
  if (x.auto !== undefined && typeof x.auto !== 'boolean') throw new HttpError(400, 'settings.auto must be true or false');
  if (x.train !== undefined && !TRAIN_MODES.includes(x.train as TrainMode)) throw new HttpError(400, 'settings.train must be "lora", "all" or "attention"');
  return {
    overrides: {
      stepsA: number(x.stepsA, 'stepsA', { int: true, min: 0, max: 100_000 }), stepsB: number(x.stepsB, 'stepsB', { int: true, min: 0, max: 100_000 }),
      lrA: number(x.lrA, 'lrA', { min: 1e-9, max: 1 }), lrB: number(x.lrB, 'lrB', { min: 1e-12, max: 1 }),
      seed: number(x.seed, 'seed', { int: true, min: 0, max: 2 ** 31 - 1 }), steps: number(x.steps, 'steps', { int: true, min: 1, max: 1000 }),
      guidanceScale: number(x.guidanceScale, 'guidanceScale', { min: 0, max: 50 }),
      train: x.train as TrainMode | undefined,
    },
    auto: (x.auto as boolean | undefined) ?? true,
  };
}

/** Reads and drops up to `max` bytes of a refused body, so that the client reads the answer instead of a reset connection. */
async function drain(body: ReadableStream<Uint8Array> | null, max: number): Promise<void> {
  if (!body) return;
  const reader = body.getReader();
  try {
    for (let n = 0; n < max; ) {
      const { done, value } = await reader.read();
      if (done) return;
      n += value.length;
    }
    await reader.cancel();
  } catch {
    // the client went away
  }
}

async function json<T>(c: Context): Promise<T> {
  try {
    return (await c.req.json()) as T;
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
}

export function createApp(o: AppOptions): Hono {
  const { store, jobs } = o;
  const app = new Hono();

  app.onError((e, c) => {
    if (e instanceof HttpError) return c.json<ApiError>({ error: e.message }, e.status);
    if (e instanceof ConflictError) return c.json<ApiError>({ error: e.message }, 409);
    return c.json<ApiError>({ error: `internal error: ${e.message}` }, 500);
  });
  app.notFound((c) => c.json<ApiError>({ error: `no such route: ${c.req.method} ${c.req.path}` }, 404));
  app.use('*', guard({ loopback: o.loopback, token: o.token }));
  app.use('*', secureHeaders({
    contentSecurityPolicy: { defaultSrc: ["'self'"], imgSrc: ["'self'", 'blob:', 'data:'], styleSrc: ["'self'", "'unsafe-inline'"], connectSrc: ["'self'"], objectSrc: ["'none'"], frameAncestors: ["'none'"] },
    crossOriginEmbedderPolicy: false,
  }));

  const record = (id: string): SessionRecord => {
    const r = store.get(id);
    if (!r || jobs.isDeleting(id)) throw new HttpError(404, `no session ${JSON.stringify(id)}`);
    return r;
  };
  const png = (c: Context, bytes: Buffer, headers: Record<string, string> = {}) =>
    c.body(new Uint8Array(bytes), 200, { 'content-type': 'image/png', 'cache-control': 'private, max-age=3600', ...headers });
  const file = async (f: string) => {
    try {
      return await readFile(f);
    } catch {
      throw new HttpError(404, `not there yet: ${path.basename(f)}`);
    }
  };

  app.get('/api/status', (c) => c.json(jobs.status()));

  app.get('/api/options', (c) => {
    const presets = PRESET_NAMES.map((name) => {
      const p = PRESETS[name];
      return { name, stepsA: p.stepsA, stepsB: p.stepsB, lrA: p.lrA, lrB: p.lrB, train: p.train, steps: p.steps, guidanceScale: p.guidanceScale, eta: p.eta, autoEtas: [...p.autoEtas] };
    });
    const examples = [...o.examples.values()].map((e) => ({ name: e.name, caption: e.caption, suggestion: e.suggestion, url: `/api/examples/${e.name}.png` }));
    return c.json<Options>({ defaultModel: o.defaultModel, defaultPreset: defaultPreset(o.defaultModel), presets, examples, maxUploadBytes: o.maxUploadBytes });
  });

  app.get('/api/examples/:file', (c) => {
    const e = o.examples.get(c.req.param('file').replace(/\.png$/, ''));
    if (!e) throw new HttpError(404, `no example ${c.req.param('file')}`);
    return png(c, e.png);
  });

  app.post('/api/uploads', bodyLimit({
    maxSize: o.maxUploadBytes,
    onError: async (c) => {
      await drain(c.req.raw.body, 64 * 2 ** 20);
      return c.json<ApiError>({ error: `the upload is larger than the limit of ${(o.maxUploadBytes / 2 ** 20).toFixed(1)} MiB (imagic serve --max-upload-mb)` }, 413);
    },
  }), async (c) => {
    const bytes = Buffer.from(await c.req.arrayBuffer());
    if (bytes.length === 0) throw new HttpError(400, 'the upload is empty');
    const format = sniffImage(bytes);
    if (!format) throw new HttpError(415, 'not a PNG, JPEG or WebP image (judged by its content, not its name)');
    let img;
    try {
      img = await readImage(bytes, { name: 'the upload', maxPixels: 50_000_000 });
    } catch (e) {
      if (e instanceof ImageError) throw new HttpError(422, e.message);
      throw e;
    }
    const id = Store.newId();
    await writePng(store.uploadFile(id), img);
    return c.json<Upload>({ id, width: img.width, height: img.height, format }, 201);
  });

  app.post('/api/sessions', async (c) => {
    const body = await json<NewSession>(c);
    if (typeof body !== 'object' || body === null) throw new HttpError(400, 'the request body must be a JSON object');
    const text = typeof body.text === 'string' ? body.text.trim() : '';
    if (text === '') throw new HttpError(400, 'the target text is empty');
    if (text.length > 1000) throw new HttpError(400, 'the target text is longer than 1000 characters');
    const model = body.model === undefined || body.model === '' ? o.defaultModel : String(body.model);
    checkModel(model, o.defaultModel);
    const preset = body.preset ?? defaultPreset(model);
    if (!PRESET_NAMES.includes(preset)) throw new HttpError(400, `unknown preset ${JSON.stringify(preset)} (${PRESET_NAMES.join(', ')})`);
    const { overrides, auto } = parseSettings(body.settings);
    let settings;
    try {
      settings = resolveSettings(preset, overrides);
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    if (auto) {
      try {
        resolveClipSource(model, undefined, true);
      } catch (e) {
        throw new HttpError(400, `${(e as Error).message.split(';')[0]}; turn off the automatic choice`);
      }
    }
    // The input: an example, or an upload (moved into the session).
    const input = typeof body.input === 'string' ? body.input : '';
    let example: ExampleImage | undefined;
    let upload: string | undefined;
    if (input.startsWith('example:')) {
      example = o.examples.get(input.slice(8));
      if (!example) throw new HttpError(404, `no example ${JSON.stringify(input.slice(8))}`);
    } else {
      if (!ID_PATTERN.test(input)) throw new HttpError(400, 'input must be an upload id (POST /api/uploads) or example:<name>');
      upload = store.uploadFile(input);
      if (!existsSync(upload)) throw new HttpError(404, `no upload ${input} (uploads are used once; upload the image again)`);
    }
    const id = Store.newId();
    const dir = store.dir(id);
    await mkdir(dir, { recursive: true });
    const f = sessionFiles(dir);
    if (example) await writeFileAtomic(f.upload, example.png);
    else await rename(upload!, f.upload).catch(() => copyFile(upload!, f.upload));
    const now = new Date().toISOString();
    const r: SessionRecord = {
      version: RECORD_VERSION, id, revision: 0, text, model, preset, settings, auto, status: 'queued', error: null, created: now, updated: now,
      progress: { stage: null, step: 0, total: 0, stageStartedAt: null, stageStartStep: 0 }, losses: { A: [], B: [] },
      choice: null, candidates: [], inputAlignment: null, threshold: null, clip: null, compare: { status: 'none', error: null, strength: null, seed: null },
    };
    await store.add(r);
    await jobs.enqueue(r);
    return c.json(detail(r, dir), 201);
  });

  app.get('/api/sessions', (c) => c.json(store.list().filter((r) => !jobs.isDeleting(r.id)).map(summary)));
  app.get('/api/sessions/:id', (c) => {
    const r = record(c.req.param('id'));
    jobs.preload(r.id); // the page opens it: its renders come next
    return c.json(detail(r, store.dir(r.id)));
  });

  app.delete('/api/sessions/:id', async (c) => {
    const id = record(c.req.param('id')).id;
    await jobs.delete(id);
    return c.body(null, 204);
  });

  app.post('/api/sessions/:id/cancel', async (c) => {
    const r = record(c.req.param('id'));
    await jobs.cancel(r.id);
    return c.json(detail(r, store.dir(r.id)), 202);
  });

  app.post('/api/sessions/:id/resume', async (c) => {
    const r = record(c.req.param('id'));
    await jobs.resume(r.id);
    return c.json(detail(r, store.dir(r.id)), 202);
  });

  app.get('/api/sessions/:id/render', async (c) => {
    const r = record(c.req.param('id'));
    const q = (k: string) => c.req.query(k);
    const eta = number(q('eta'), 'eta', { min: -1, max: 3 }) ?? r.choice?.eta ?? r.settings.eta;
    const seed = number(q('seed'), 'seed', { int: true, min: -1, max: 2 ** 31 - 1 }) ?? r.choice?.seed ?? 0;
    const steps = number(q('steps'), 'steps', { int: true, min: 1, max: 1000 }) ?? r.settings.steps;
    const guidance = number(q('guidance'), 'guidance', { min: 0, max: 50 }) ?? r.settings.guidanceScale;
    // Rounded as the cache keys are: eta to 0.001.
    const out = await jobs.render(r.id, { eta: Math.round(eta * 1000) / 1000, seed, steps, guidance });
    return png(c, await file(out.file), { 'x-render-ms': out.ms.toFixed(1), 'x-cache': out.cache, 'access-control-expose-headers': 'x-render-ms, x-cache' });
  });

  app.post('/api/sessions/:id/compare', async (c) => {
    const r = record(c.req.param('id'));
    const body = c.req.header('content-type')?.includes('json') ? await json<{ strength?: number }>(c) : {};
    const strength = number(body?.strength, 'strength', { min: 0, max: 1 }) ?? 0.5;
    await jobs.compare(r.id, strength);
    return c.json(compareState(r, store.dir(r.id)), 202);
  });
  app.get('/api/sessions/:id/compare', (c) => {
    const r = record(c.req.param('id'));
    return c.json(compareState(r, store.dir(r.id)));
  });

  app.get('/api/sessions/:id/files/:name', async (c) => {
    const r = record(c.req.param('id'));
    const f = namedFile(r, store.dir(r.id), c.req.param('name'));
    if (!f) throw new HttpError(404, `no file ${JSON.stringify(c.req.param('name'))} (files: upload.png, input.png, output.png, compare-sdedit.png, compare-ddim-inversion.png)`);
    return png(c, await file(f));
  });

  app.get('/api/sessions/:id/download', (c) => {
    const r = record(c.req.param('id'));
    const stream = tar.c({ gzip: true, cwd: store.sessionsDir, portable: true }, [r.id]);
    const body = Readable.toWeb(Readable.from(stream)) as ReadableStream;
    return c.body(body, 200, { 'content-type': 'application/gzip', 'content-disposition': `attachment; filename="imagic-session-${r.id}.tar.gz"` });
  });

  app.get('/api/events', (c) => streamSSE(c, async (stream) => {
    const send = (ev: ServerEvent) => void stream.writeSSE({ event: ev.type, data: JSON.stringify(ev) }).catch(() => {});
    send({ type: 'status', status: jobs.status() });
    jobs.on('event', send);
    const beat = setInterval(() => void stream.write(': keep-alive\n\n').catch(() => {}), 15_000);
    await new Promise<void>((resolve) => stream.onAbort(resolve));
    clearInterval(beat);
    jobs.off('event', send);
  }));

  // The page.
  if (!existsSync(path.join(o.webDir, 'index.html'))) {
    app.get('*', (c) => c.text(`the page is not built (${o.webDir} has no index.html): run npm run build:web`, 500));
  } else {
    app.use('/*', serveStatic({ root: path.relative(process.cwd(), o.webDir) || '.' }));
  }
  return app;
}

