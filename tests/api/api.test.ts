// The public API ('imagic') on the embedded Shapes-64 model: edit() and render() with fixed etas,
// the pipeline's weights restored after each call, sessions that render and resume bit-identically,
// AbortSignal, eta 'auto', generate(), compare() and the scorer, and bad input. Small settings
// throughout (20 + 12 training steps, 5 sampling steps): the numbers are checked, not the quality.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  compare, ddimInversion, edit, generate, loadPipeline, loadScorer, render, sdedit,
  type EditOutput, type Pipeline, type Progress, type RgbImage,
} from 'imagic';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { renderShape } from '../../src/shapes/render.js';

let pipe: Pipeline;
let dir: string;
/** The base UNet's every parameter, copied right after loading. */
let base: Map<string, Float32Array>;

/** A large red circle on the left, on white: an image of the model's own domain. */
const input: RgbImage = renderShape({ shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white', side: 28, cx: 16, cy: 32 });
const target = 'a large red square on the left';
/** The training of every edit here (the render steps are recorded in the session, so render() defaults to them). */
const settings = { stepsA: 20, stepsB: 12, steps: 5 };

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-api-test-'));
  // One libtorch thread: on a shared 2-core machine, two threads wait on each other whenever one is descheduled.
  pipe = await loadPipeline(undefined, { threads: 1 });
  base = weights(pipe);
});
after(() => {
  pipe?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function weights(p: Pipeline): Map<string, Float32Array> {
  return new Map(p.sd.unet.namedParameters().map(([n, t]) => [n, new Float32Array(t.toTypedArray() as Float32Array)]));
}

/** Names of the UNet parameters whose values differ (bit for bit) from `ref`. */
function changedWeights(p: Pipeline, ref: Map<string, Float32Array>): string[] {
  const out: string[] = [];
  for (const [n, t] of p.sd.unet.namedParameters()) {
    const a = t.toTypedArray() as Float32Array;
    const b = ref.get(n)!;
    if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) !== 0) out.push(n);
  }
  return out;
}

function assertBaseWeights(what: string): void {
  const changed = changedWeights(pipe, base);
  assert.deepEqual(changed.slice(0, 5), [], `${what}: ${changed.length} UNet parameters differ from the base model's`);
}

/** How many bytes of the two images differ. */
function diffBytes(a: RgbImage, b: RgbImage): number {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let n = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) n++;
  return n;
}

function assertSameImage(a: RgbImage, b: RgbImage, what: string): void {
  const n = diffBytes(a, b);
  assert.equal(n, 0, `${what}: ${n} of ${a.data.length} bytes differ`);
}

function assertRgb64(img: RgbImage, what = 'image'): void {
  assert.equal(img.width, 64, `${what} width`);
  assert.equal(img.height, 64, `${what} height`);
  assert.ok(img.data instanceof Uint8Array && img.data.length === 64 * 64 * 3, `${what} data`);
  // Not a blank image: a trained model's output has several colors.
  assert.ok(new Set(img.data).size > 8, `${what} is nearly uniform`);
}

const sessionDirs = () => new Set(readdirSync(os.tmpdir()).filter((f) => f.startsWith('imagic-session-')));

/** edit() makes its temporary session folder before its first await: the folders that appeared during the call. */
function startAndFindTemp<T>(start: () => Promise<T>): { promise: Promise<T>; created: string[] } {
  const before = sessionDirs();
  const promise = start();
  const created = [...sessionDirs()].filter((f) => !before.has(f)).map((f) => path.join(os.tmpdir(), f));
  return { promise, created };
}

async function rejectsAbort(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.equal(e.name, 'AbortError', `${what}: ${e.name}: ${e.message}`);
    return true;
  });
}

// The reference edit: eta 0.8, seed 0, its session kept. Several tests compare with it.
let reference: Promise<EditOutput> | undefined;
const referenceSession = () => path.join(dir, 'reference.imagic');
function referenceEdit(): Promise<EditOutput> {
  reference ??= edit(pipe, input, target, { eta: 0.8, seeds: [0], settings, session: referenceSession() });
  return reference;
}

test('edit() with a fixed eta: 64x64 images, one per eta and seed, no session kept, the base weights back after, and the same pixels as a kept session', async () => {
  const phases: string[] = [];
  let stageBChanged = 0;
  let sawSessionJson = false;
  const { promise, created } = startAndFindTemp(() => edit(pipe, input, target, {
    eta: [0.8, 1.2], seeds: [0, 3], settings,
    onProgress: (p: Progress) => {
      if (phases.at(-1) !== p.phase) phases.push(p.phase);
      if (p.phase === 'stage A' && p.step === 1) sawSessionJson = created.some((d) => existsSync(path.join(d, 'session.json')));
      // The fine-tuning really changes the pipeline's UNet while it trains.
      if (p.phase === 'stage B' && p.step === p.total) stageBChanged = changedWeights(pipe, base).length;
    },
  }));
  assert.equal(created.length, 1, `one temporary session folder, got ${created.join(', ')}`);
  const r = await promise;
  assert.ok(sawSessionJson, 'the temporary session folder holds the session while it trains');
  assert.ok(!existsSync(created[0]!), 'the temporary session folder is removed');
  assert.deepEqual(phases, ['stage A', 'stage B', 'render']);
  assert.ok(stageBChanged > 0, 'stage B changed the UNet');
  assertBaseWeights('after edit()');

  assert.equal(r.session, null);
  assert.equal(r.choice, null);
  assert.equal(r.settings.stepsA, 20);
  assert.equal(r.settings.stepsB, 12);
  assert.deepEqual(r.images.map((i) => [i.eta, i.seed]), [[0.8, 0], [1.2, 0], [0.8, 3], [1.2, 3]], 'each eta for each seed, seed by seed');
  for (const i of r.images) {
    assertRgb64(i.image, `eta ${i.eta} seed ${i.seed}`);
    assert.equal(i.alignment, undefined, 'not scored without a CLIP');
  }
  assert.equal(r.image, r.images[0]!.image, 'the first image');
  assert.deepEqual([r.eta, r.seed], [0.8, 0]);
  assert.ok(diffBytes(r.images[0]!.image, r.images[1]!.image) > 0, 'another eta, another image');
  assert.ok(diffBytes(r.images[0]!.image, r.images[2]!.image) > 0, 'another seed, another image');
  assert.ok(diffBytes(r.images[0]!.image, input) > 0, 'the edit changed the input');

  // The same edit with its session kept (trained again from the restored base) gives the same pixels.
  const kept = await referenceEdit();
  assert.equal(kept.session, referenceSession());
  assertSameImage(kept.image, r.images[0]!.image, 'a kept session vs a temporary one');
  assertBaseWeights('after the second edit()');
});

test('render() from a kept session reproduces the edit exactly, differs across etas, and restores the base weights', async () => {
  const ref = await referenceEdit();
  const s = referenceSession();
  const json = JSON.parse(readFileSync(path.join(s, 'session.json'), 'utf8'));
  assert.deepEqual(json.progress, { stageA: true, stageB: 12, stageBDone: true });
  assert.equal(json.target, target);
  // The session holds weights that differ from the base model's.
  const tuned = loadSafetensors(path.join(s, 'unet-finetuned.safetensors'));
  let differing = 0;
  for (const [n, t] of tuned) {
    const a = t.toTypedArray() as Float32Array;
    if (a.some((v, i) => v !== base.get(n)![i])) differing++;
    t.dispose();
  }
  assert.ok(differing > 0, 'the fine-tuned weights differ from the base');

  let changedDuringRender = -1;
  const again = await render(pipe, s, {
    eta: 0.8, seeds: [0],
    onProgress: (p) => { if (p.phase === 'render' && p.step === 1) changedDuringRender = changedWeights(pipe, base).length; },
  });
  assert.ok(changedDuringRender > 0, 'render() runs on the session\'s fine-tuned weights');
  assertBaseWeights('after render()');
  assert.equal(again.session, s);
  assert.equal(again.images.length, 1);
  assertSameImage(again.image, ref.image, 'render() vs edit()');

  const two = await render(pipe, s, { eta: [0.6, 1.0], seeds: [0] });
  assert.deepEqual(two.images.map((i) => [i.eta, i.seed]), [[0.6, 0], [1.0, 0]]);
  assert.ok(diffBytes(two.images[0]!.image, two.images[1]!.image) > 0, 'eta 0.6 and 1.0 differ');
  assert.ok(diffBytes(two.images[0]!.image, ref.image) > 0, 'eta 0.6 differs from 0.8');
  // Without eta or seeds: the session's eta (the preset's 0.8) and seed 0, with the session's 5 steps.
  const defaults = await render(pipe, s);
  assert.deepEqual([defaults.eta, defaults.seed, defaults.images.length], [0.8, 0, 1]);
  assertSameImage(defaults.image, ref.image, 'render() with the session\'s defaults');
  assertBaseWeights('after three renders');
});

test('AbortSignal: an edit stopped in stage B keeps its session, resumes where it stopped, and ends with the uninterrupted edit\'s pixels', async () => {
  const s = path.join(dir, 'aborted.imagic');
  // Stage B's progress comes in batches (its losses are read every 250 ms, here every 2-3 steps), so
  // the abort lands at the first report of step 5 or later, well before step 12 (stage B steps take
  // ~130 ms on one CPU thread).
  const ac = new AbortController();
  let abortedAt = 0;
  await rejectsAbort(edit(pipe, input, target, {
    eta: 0.8, seeds: [0], settings, session: s, signal: ac.signal,
    onProgress: (p) => {
      if (p.phase === 'stage B' && p.step >= 5 && !ac.signal.aborted) {
        abortedAt = p.step;
        ac.abort();
      }
    },
  }), 'edit aborted in stage B');
  assert.ok(abortedAt >= 5);
  assertBaseWeights('after an aborted edit()');
  const json = JSON.parse(readFileSync(path.join(s, 'session.json'), 'utf8'));
  assert.equal(json.progress.stageA, true, 'stage A done');
  assert.equal(json.progress.stageBDone, false);
  assert.ok(json.progress.stageB >= 5 && json.progress.stageB < 12, `stopped in stage B at ${json.progress.stageB}`);
  assert.ok(existsSync(path.join(s, 'embeddings.safetensors')));
  assert.ok(existsSync(path.join(s, 'stage-b-checkpoint.safetensors')));
  await assert.rejects(render(pipe, s, { eta: 0.8 }), /not trained to the end/);

  const seen: Progress[] = [];
  const resumed = await edit(pipe, input, target, { eta: 0.8, seeds: [0], settings, session: s, onProgress: (p) => seen.push(p) });
  assert.ok(!seen.some((p) => p.phase === 'stage A'), 'stage A is not run again');
  const stageB = seen.filter((p) => p.phase === 'stage B') as Extract<Progress, { loss: number }>[];
  const firstB = stageB[0];
  assert.ok(firstB && firstB.step > 1, `stage B resumes (first step reported: ${firstB?.step})`);
  assert.equal(firstB.step, json.progress.stageB + 1, 'from the step after the saved one');
  assert.equal(stageB.at(-1)!.step, 12);
  assertBaseWeights('after the resumed edit()');
  const ref = await referenceEdit();
  assertSameImage(resumed.image, ref.image, 'resumed vs uninterrupted edit');
});

test('AbortSignal: an aborted signal rejects at once, and generate() stops mid-way', async () => {
  let progressed = false;
  const onProgress = () => { progressed = true; };
  const signal = AbortSignal.abort();
  const { promise, created } = startAndFindTemp(() => edit(pipe, input, target, { eta: 0.8, settings, signal, onProgress }));
  await rejectsAbort(promise, 'edit with an aborted signal');
  assert.deepEqual(created, [], 'no session folder made');
  await rejectsAbort(generate(pipe, 'a red circle', { steps: 5, signal, onProgress }), 'generate with an aborted signal');
  await rejectsAbort(render(pipe, referenceSession(), { eta: 0.8, signal, onProgress }), 'render with an aborted signal');
  await rejectsAbort(sdedit(pipe, input, target, { steps: 5, signal, onProgress }), 'sdedit with an aborted signal');
  assert.equal(progressed, false, 'no progress before rejecting');

  const ac = new AbortController();
  const steps: number[] = [];
  await rejectsAbort(generate(pipe, 'a red circle', {
    steps: 10, signal: ac.signal,
    onProgress: (p) => { if (p.phase === 'sampling') { steps.push(p.step); if (p.step === 3) ac.abort(new Error('enough')); } },
  }), 'generate aborted at step 3');
  assert.deepEqual(steps, [1, 2, 3], 'stopped right after the step that aborted');
  // The pipeline still works after an aborted call.
  const [img] = await generate(pipe, 'a red circle', { steps: 3 });
  assertRgb64(img!);
});

test("eta 'auto': every candidate scored, the chosen one among them, with a reason", async () => {
  const phases = new Set<string>();
  const r = await edit(pipe, input, target, {
    eta: 'auto', seeds: ['inverted', 0], settings: { stepsA: 20, stepsB: 12 }, steps: 5,
    onProgress: (p) => phases.add(p.phase),
  });
  for (const ph of ['stage A', 'stage B', 'candidates']) assert.ok(phases.has(ph), `progress phase ${ph} (saw ${[...phases]})`);
  assertBaseWeights("after edit() with eta 'auto'");
  const etas = r.settings.autoEtas;
  assert.deepEqual(etas, [0.4, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4], "the shapes preset's candidate etas");
  assert.equal(r.images.length, etas.length * 2);
  assert.deepEqual(new Set(r.images.map((i) => `${i.eta}/${i.seed}`)), new Set(['inverted', 0].flatMap((s) => etas.map((e) => `${e}/${s}`))));
  for (const i of r.images) {
    assertRgb64(i.image, `candidate eta ${i.eta} seed ${i.seed}`);
    assert.ok(Number.isFinite(i.alignment) && i.alignment! >= 0 && i.alignment! <= 100, `alignment ${i.alignment}`);
    assert.ok(Number.isFinite(i.preservation), `preservation ${i.preservation}`);
  }
  assert.ok(r.choice && r.choice.reason.length > 0, 'a reason');
  assert.ok(Number.isFinite(r.choice.threshold) && Number.isFinite(r.choice.inputAlignment));
  const chosen = r.images.filter((i) => i.eta === r.eta && i.seed === r.seed);
  assert.equal(chosen.length, 1);
  assert.equal(r.image, chosen[0]!.image);
  assert.match(r.choice.reason, new RegExp(`eta ${r.eta} seed ${r.seed}`));
  // The inverted noise and seed 0 start from different noises.
  const inv = r.images.find((i) => i.seed === 'inverted' && i.eta === 1.0)!, s0 = r.images.find((i) => i.seed === 0 && i.eta === 1.0)!;
  assert.ok(diffBytes(inv.image, s0.image) > 0);
});

test('generate(): count, and the same seed gives the same pixels', async () => {
  const two = await generate(pipe, 'a small blue square at the top', { steps: 5, count: 2, seed: 7 });
  assert.equal(two.length, 2);
  for (const i of two) assertRgb64(i);
  assert.ok(diffBytes(two[0]!, two[1]!) > 0, 'the two images of one call differ');
  const a = await generate(pipe, 'a large green triangle in the center', { steps: 5, seed: 11 });
  const b = await generate(pipe, 'a large green triangle in the center', { steps: 5, seed: 11 });
  const c = await generate(pipe, 'a large green triangle in the center', { steps: 5, seed: 12 });
  assert.equal(a.length, 1);
  assertSameImage(a[0]!, b[0]!, 'same seed');
  assert.ok(diffBytes(a[0]!, c[0]!) > 0, 'another seed, another image');
  assertBaseWeights('after generate()');
});

test('compare() with a fixed eta and scores; loadScorer()', async () => {
  const ref = await referenceEdit();
  // The reference session is fully trained: compare()'s edit only renders from it.
  const phases = new Set<string>();
  const r = await compare(pipe, input, target, { eta: 0.8, seeds: [0], settings, session: referenceSession(), scores: true, onProgress: (p) => phases.add(p.phase) });
  assert.ok(!phases.has('stage A') && !phases.has('stage B'), 'no training again');
  assert.ok(phases.has('sdedit') && phases.has('ddim-inversion'));
  assertSameImage(r.imagic.image, ref.image, "compare()'s Imagic vs edit()");
  assert.ok(Number.isFinite(r.imagic.images[0]!.alignment) && Number.isFinite(r.imagic.images[0]!.preservation));
  assertSameImage(r.input, input, 'the input at the model resolution (already 64x64)');
  for (const [name, m] of [['sdedit', r.sdedit], ['ddimInversion', r.ddimInversion]] as const) {
    assertRgb64(m.image, name);
    assert.ok(Number.isFinite(m.alignment) && m.alignment! >= 0 && m.alignment! <= 100, `${name} alignment ${m.alignment}`);
    assert.ok(Number.isFinite(m.preservation), `${name} preservation ${m.preservation}`);
  }
  // The baselines are the standalone calls with the session's sampling settings and the first seed.
  assertSameImage(r.sdedit.image, await sdedit(pipe, input, target, { steps: 5, seed: 0 }), 'compare().sdedit vs sdedit()');
  assertSameImage(r.ddimInversion.image, await ddimInversion(pipe, input, target, { steps: 5, seed: 0 }), 'compare().ddimInversion vs ddimInversion()');
  assertBaseWeights('after compare()');

  const scorer = await loadScorer(pipe);
  try {
    const right = scorer.alignment(input, 'a large red circle on the left');
    const wrong = scorer.alignment(input, 'a small blue triangle in the bottom right');
    for (const v of [right, wrong]) assert.ok(typeof v === 'number' && v >= 0 && v <= 100, `alignment ${v}`);
    assert.ok(right > wrong, `the caption of the image scores higher (${right}) than another (${wrong})`);
    assert.ok(Math.abs(scorer.alignment(r.sdedit.image, target) - r.sdedit.alignment!) < 1e-4, 'the same score as compare()');
    const self = scorer.preservation(input, input);
    const other = scorer.preservation(r.sdedit.image, input);
    assert.ok(self > other, `the input preserves itself best (${self} vs ${other})`);
    assert.ok(Math.abs(other - r.sdedit.preservation!) < 1e-4, 'the same preservation as compare()');
    assert.ok(scorer.names.alignment.length > 0 && scorer.names.preservation.length > 0);
  } finally {
    scorer.dispose();
  }
});

test('bad input is refused with a clear error, before any training', async () => {
  await referenceEdit();
  const before = sessionDirs();
  let progressed = false;
  const o = { settings, onProgress: () => { progressed = true; } };
  await assert.rejects(edit(pipe, input, '', { ...o, eta: 0.8 }), /target text is empty/);
  await assert.rejects(edit(pipe, input, '   ', { ...o, eta: 0.8 }), /target text is empty/);
  await assert.rejects(edit(pipe, input, target, { ...o, eta: [] }), RangeError);
  await assert.rejects(edit(pipe, input, target, { ...o, eta: NaN }), RangeError);
  await assert.rejects(edit(pipe, input, target, { ...o, eta: [0.5, NaN] }), RangeError);
  await assert.rejects(edit(pipe, input, target, { ...o, eta: 0.8, seeds: ['inverted'] }), (e: Error) => e instanceof RangeError && /inverted/.test(e.message));
  await assert.rejects(edit(pipe, input, target, { ...o, eta: 0.8, seeds: [-1] }), RangeError);
  await assert.rejects(edit(pipe, Buffer.from('not an image'), target, { ...o, eta: 0.8 }), (e: Error) => e.name === 'ImageError' && /not an image/.test(e.message));
  await assert.rejects(generate(pipe, ''), /prompt is empty/);
  await assert.rejects(render(pipe, path.join(dir, 'no-such-session'), { eta: 0.8 }), (e: Error) => e.name === 'SessionError' && /no-such-session/.test(e.message) && /no session\.json/.test(e.message));
  await assert.rejects(render(pipe, referenceSession(), { eta: 0.8, seeds: ['inverted'] }), RangeError);
  assert.equal(progressed, false);
  const leaked = [...sessionDirs()].filter((f) => !before.has(f));
  assert.deepEqual(leaked, [], 'no temporary session folder left behind');

  const other = await loadPipeline();
  other.dispose();
  other.dispose(); // twice is harmless
  await assert.rejects(edit(other, input, target, { eta: 0.8, settings }), /disposed/);
  await assert.rejects(generate(other, 'a red circle', { steps: 2 }), /disposed/);
  await assert.rejects(render(other, referenceSession()), /disposed/);
  await assert.rejects(loadScorer(other), /disposed/);
  // The first pipeline is untouched.
  assertBaseWeights('after disposing another pipeline');
});
