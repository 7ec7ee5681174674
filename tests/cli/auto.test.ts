// `--eta auto` and `--metrics` end to end on the tiny checkpoint with a tiny random CLIP: the files
// written, scores recomputed here from the written images, the choice re-derived from the JSON by
// chooseCandidate, determinism, the baselines' scores, and a missing, corrupt or mismatched CLIP
// refused before any training.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Generator, manualSeed, setNumThreads } from '../../src/engine/index.js';
import { readImage } from '../../src/io/image.js';
import { CLIPScorer } from '../../src/metrics/index.js';
import { CLIPModel, parseCLIPConfig } from '../../src/models/clip/index.js';
import { AUTO_SEEDS, chooseCandidate, DEFAULT_AUTO_RULE, INVERTED_SEED, resolveSettings } from '../../src/pipelines/imagic/index.js';
import { exportShapesClip, shapesClipTokenizer, shapesClipConfig } from '../../src/shapes/train/clip.js';
import { makeTinyModel, runCli, writeRedBlueImage } from './tiny-model.js';

let dir: string;
let model: string;
let input: string;
let clip: string;
/** No network, and an empty Hub cache: the default CLIP (a Hub repo) cannot be had. */
let env: Record<string, string>;
const fast = ['--steps-a', '4', '--steps-b', '4', '--steps', '3', '--threads', '1'];
/** One libtorch thread: these runs share the cores with others. */
const t1 = ['--threads', '1'];
const p = (name: string) => path.join(dir, name);
const target = 'a blue square';
/** The tiny model is no Shapes-64 model: the default preset's candidate etas. */
const AUTO_ETAS = resolveSettings('default').autoEtas;

interface Report {
  command: string;
  target: string;
  metrics: { alignment: string; preservation: string };
  clip: { source: string; name: string; origin: string };
  rule: { gain: number; description: string } | null;
  inputAlignment?: number;
  choice: { index: number; threshold: number; eta: number; seed: number; alignment: number; preservation: number; reason: string; output: string } | null;
  candidates: { eta: number; seed: number; noise: string; alignment: number; preservation: number; file: string; eligible: boolean; chosen: boolean }[];
  baselines: { method: string; seed: number; alignment: number; preservation: number; file: string }[];
}
const readJson = <T = Report>(f: string) => JSON.parse(readFileSync(f, 'utf8')) as T;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-auto-'));
  model = makeTinyModel(dir);
  input = p('input.png');
  await writeRedBlueImage(input);
  // A random domain-sized CLIP (0.5 M parameters), from the first generator seed whose CLIP score of
  // the input to the target is positive, so that the rule has numbers to work on.
  setNumThreads(1);
  manualSeed(0);
  clip = p('tiny-clip');
  const inputImage = await readImage(input);
  for (let seed = 0; ; seed++) {
    const m = new CLIPModel(parseCLIPConfig(shapesClipConfig()), { generator: new Generator(seed) });
    const probe = CLIPScorer.fromModel(m, shapesClipTokenizer());
    const score = probe.clipScore(inputImage, [target])[0]!;
    if (score > 5 || seed > 50) {
      exportShapesClip(m, clip, {});
      probe.dispose();
      break;
    }
    probe.dispose();
  }
  env = { HF_HOME: p('hf-home'), HF_HUB_CACHE: p('hf-home/hub'), HF_HUB_OFFLINE: '1' };
  mkdirSync(p('hf-home/hub'), { recursive: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('edit without --eta chooses automatically: the chosen image, every candidate, JSON, CSV, plot, auto-choice.json', async () => {
  const r = runCli(['edit', input, target, '-m', model, ...fast, '--clip-model', clip, '-o', p('auto.png')], env);
  assert.equal(r.code, 0, r.err);
  // the default noises: the input's own inverted noise, then seeds 0-3
  const seeds = [...AUTO_SEEDS];
  assert.deepEqual(seeds, [INVERTED_SEED, 0, 1, 2, 3]);
  const names = seeds.flatMap((s) => AUTO_ETAS.map((e) => `eta${e.toFixed(2)}-${s === INVERTED_SEED ? 'inverted' : `seed${s}`}.png`)).sort();
  assert.deepEqual(readdirSync(p('auto-candidates')).sort(), names);
  const j = readJson(p('auto-metrics.json'));
  assert.equal(j.command, 'edit');
  assert.equal(j.target, target);
  assert.deepEqual(j.metrics, { alignment: 'CLIP score (tiny-clip)', preservation: 'minus the CLIP feature distance to the input (tiny-clip)' });
  assert.deepEqual(j.clip, { source: clip, name: 'tiny-clip', origin: 'option' });
  const n = AUTO_ETAS.length * seeds.length;
  assert.equal(j.candidates.length, n);
  assert.deepEqual(j.candidates.map((c) => `${c.eta}/${c.seed}`), seeds.flatMap((s) => AUTO_ETAS.map((e) => `${e}/${s}`)));
  // The choice is the rule applied to the JSON's own numbers.
  const again = chooseCandidate(j.candidates, j.inputAlignment!, j.rule!);
  assert.deepEqual(j.rule, { ...DEFAULT_AUTO_RULE, description: j.rule!.description });
  assert.equal(j.choice!.index, again.index);
  assert.equal(j.choice!.threshold, again.threshold);
  assert.equal(j.choice!.reason, again.reason);
  assert.deepEqual(j.candidates.map((c) => [c.chosen, c.eligible]), j.candidates.map((_, i) => [i === again.index, again.eligible.includes(i)]));
  assert.deepEqual([j.choice!.eta, j.choice!.seed], [again.candidate.eta, again.candidate.seed]);
  assert.equal(j.choice!.output, 'auto.png', 'paths relative to the report');
  const chosenFile = p(j.candidates[again.index]!.file);
  assert.deepEqual(readFileSync(p('auto.png')), readFileSync(chosenFile), 'the output is the chosen candidate');
  // Scores recomputed here from the written PNGs and the input, with the same CLIP.
  const scorer = await CLIPScorer.load(clip);
  try {
    const ref = await readImage(input);
    for (const i of [0, Math.floor(n / 2), again.index, n - 1]) {
      const c = j.candidates[i]!;
      const im = await readImage(p(c.file));
      assert.ok(Math.abs(scorer.clipScore(im, [target])[0]! - c.alignment) < 1e-3, `alignment of ${c.file}`);
      assert.ok(Math.abs(-scorer.featureDistance(im, ref)[0]! - c.preservation) < 1e-5, `preservation of ${c.file}`);
    }
    assert.ok(Math.abs(scorer.clipScore(ref, [target])[0]! - j.inputAlignment!) < 1e-3, 'the input\'s own alignment, the rule\'s floor');
  } finally {
    scorer.dispose();
  }
  assert.deepEqual([...new Set(j.candidates.map((c) => c.noise))], ['inverted noise', 'seed 0', 'seed 1', 'seed 2', 'seed 3']);
  assert.ok(j.candidates.some((c) => c.alignment > 0), 'some alignment above 0 (the CLIP seed was picked for it)');
  // CSV: a header and a row per candidate, the same numbers.
  const csv = readFileSync(p('auto-metrics.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'method,eta,seed,noise,alignment,preservation,eligible,chosen,file');
  assert.equal(csv.length, n + 1);
  csv.slice(1).forEach((line, i) => {
    const [method, eta, seed, noise, a, pr, , chosen, file] = line.split(',');
    const c = j.candidates[i]!;
    assert.deepEqual([method, Number(eta), Number(seed), noise, Number(a), Number(pr), chosen === 'true', file], ['Imagic', c.eta, c.seed, c.noise, c.alignment, c.preservation, c.chosen, c.file]);
  });
  const plot = await sharp(p('auto-metrics.png')).metadata();
  assert.deepEqual([plot.format, plot.width, plot.height], ['png', 800, 560]);
  const session = readJson<{ eta: number; seed: number; alignment: number; report: string }>(p('auto.imagic/auto-choice.json'));
  assert.deepEqual([session.eta, session.seed, session.alignment], [j.choice!.eta, j.choice!.seed, j.choice!.alignment]);
  assert.equal(session.report, p('auto-metrics.json'));
  assert.ok(existsSync(p('auto.imagic/input.png')));
  assert.match(r.err, /scores: CLIP score \(tiny-clip\) to the text \/ preservation: minus the CLIP feature distance to the input \(tiny-clip\)/);
  assert.match(r.err, new RegExp(`chosen: eta ${j.choice!.eta === 1 ? '1.0' : j.choice!.eta}, ${j.candidates[again.index]!.noise}`));
  assert.match(r.err, new RegExp(`why: (the input scores [\\d.]+ and the best candidate [\\d.]+; \\d+ of ${n} candidates reach [\\d.]+ \\(${DEFAULT_AUTO_RULE.gain} of the way\\)|no candidate aligns with the text better than the input)`));
});

test('the same session gives the same candidates, scores and choice (edit again, and render --eta auto)', () => {
  const first = readJson(p('auto-metrics.json'));
  const out = readFileSync(p('auto.png'));
  const r = runCli(['edit', input, target, '-m', model, ...fast, '--clip-model', clip, '-o', p('auto.png'), '--force'], env);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /training already complete/);
  const second = readJson(p('auto-metrics.json'));
  assert.deepEqual(second.candidates, first.candidates);
  assert.deepEqual(second.choice, first.choice);
  assert.deepEqual(readFileSync(p('auto.png')), out);
  const rr = runCli(['render', p('auto.imagic'), '--eta', 'auto', '--clip-model', clip, '-o', p('again.png'), ...t1], env);
  assert.equal(rr.code, 0, rr.err);
  const third = readJson(p('again-metrics.json'));
  assert.equal(third.command, 'render');
  assert.deepEqual(third.candidates.map(({ file: _, ...c }) => c), first.candidates.map(({ file: _, ...c }) => c));
  assert.deepEqual(readFileSync(p('again.png')), out);
  // render without --eta keeps the session's eta, and says what the automatic choice was
  const plain = runCli(['render', p('auto.imagic'), '-o', p('plain.png'), ...t1], env);
  assert.equal(plain.code, 0, plain.err);
  assert.match(plain.err, new RegExp(`note: rendering the session's eta .*; its automatic choice was eta .*, ${first.candidates[first.choice!.index]!.noise}`));
});

test('--metrics with etas given: every image scored (here by CLIP-I), no choice', async () => {
  const r = runCli(['render', p('auto.imagic'), '--eta', '0.5,1.2', '--seeds', '0,3', '--metrics', '--preservation', 'clip-i', '--clip-model', clip, '-o', p('m.png'), ...t1], env);
  assert.equal(r.code, 0, r.err);
  for (const f of ['m.png', 'm-eta0.50-seed0.png', 'm-eta1.20-seed3.png', 'm-metrics.csv', 'm-metrics.png']) assert.ok(existsSync(p(f)), f);
  assert.ok(!existsSync(p('m-candidates')));
  const j = readJson(p('m-metrics.json'));
  assert.equal(j.rule, null);
  assert.equal(j.choice, null);
  assert.equal(j.metrics.preservation, 'CLIP-I to the input (tiny-clip)');
  assert.deepEqual(j.candidates.map((c) => [c.eta, c.seed, c.file, c.chosen]), [[0.5, 0, 'm-eta0.50-seed0.png', false], [1.2, 0, 'm-eta1.20-seed0.png', false], [0.5, 3, 'm-eta0.50-seed3.png', false], [1.2, 3, 'm-eta1.20-seed3.png', false]]);
  const scorer = await CLIPScorer.load(clip);
  try {
    const ref = await readImage(input);
    for (const c of j.candidates) {
      const im = await readImage(p(c.file));
      assert.ok(Math.abs(scorer.clipScore(im, [target])[0]! - c.alignment) < 1e-3, c.file);
      assert.ok(Math.abs(scorer.clipI(im, ref)[0]! - c.preservation) < 1e-5, c.file);
    }
  } finally {
    scorer.dispose();
  }
  assert.doesNotMatch(r.err, /chosen:/);
  const inv = runCli(['render', p('auto.imagic'), '--eta', '0.7', '--seeds', 'inverted', '-o', p('inv.png'), ...t1], env);
  assert.equal(inv.code, 1);
  assert.match(inv.err, /the seed 'inverted' .* is a candidate of --eta auto only/);
});

test('compare (auto by default) scores the baselines too, into the JSON and onto the plot', () => {
  // the baselines take the first fresh seed
  const r = runCli(['compare', input, target, '-m', model, ...fast, '--seeds', 'inverted,1', '--clip-model', clip, '--session', p('auto.imagic'), '-o', p('cmp.png')], env);
  assert.equal(r.code, 0, r.err);
  const j = readJson(p('cmp-metrics.json'));
  assert.equal(j.candidates.length, 2 * AUTO_ETAS.length);
  assert.deepEqual([...new Set(j.candidates.map((c) => c.seed))], [INVERTED_SEED, 1]);
  assert.deepEqual(j.baselines.map((b) => [b.method, b.seed, b.file]), [['SDEdit', 1, 'cmp-sdedit.png'], ['DDIM inversion', 1, 'cmp-ddim-inversion.png']]);
  for (const b of j.baselines) assert.ok(b.alignment >= 0 && b.alignment <= 100 && b.preservation >= -1 && b.preservation <= 1, JSON.stringify(b));
  assert.deepEqual(readFileSync(p('cmp-imagic.png')), readFileSync(p(j.candidates[j.choice!.index]!.file)));
  assert.equal(readFileSync(p('cmp-metrics.csv'), 'utf8').trim().split('\n').filter((l) => /^(SDEdit|DDIM inversion),/.test(l)).length, 2);
  assert.match(r.err, /SDEdit \(seed 1\)\s+[\d.]+ \/ [-\d.]+/);
});

test('no CLIP to be had: an error naming --clip-model, before any training', () => {
  const r = runCli(['edit', input, target, '-m', model, ...fast, '-o', p('none.png')], env);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /cannot load the CLIP that scores the candidates, openai\/clip-vit-large-patch14 \(the default for models without a clip\/ folder\)/);
  assert.match(r.err, /not in the Hub cache/);
  assert.match(r.err, /give a CLIP with --clip-model <dir\|repo-id>.*or choose eta yourself \(e\.g\. --eta 0\.7\)/);
  assert.doesNotMatch(r.err, /stage A/);
  assert.ok(!existsSync(p('none.imagic')), 'no session folder');
  assert.ok(!existsSync(p('none.png')) && !existsSync(p('none-candidates')));
  // --metrics alone says to leave it out instead
  const m = runCli(['edit', input, target, '-m', model, ...fast, '--eta', '0.7', '--metrics', '-o', p('none.png')], env);
  assert.equal(m.code, 1);
  assert.match(m.err, /--clip-model <dir\|repo-id>.*or leave out --metrics/);
  assert.ok(!existsSync(p('none.imagic')));
});

test('a corrupt CLIP folder, and one whose weights do not match its config: clear errors before any training', () => {
  const corrupt = p('clip-corrupt');
  cpSync(clip, corrupt, { recursive: true });
  writeFileSync(path.join(corrupt, 'model.safetensors'), readFileSync(path.join(clip, 'model.safetensors')).subarray(0, 5000));
  const mismatch = p('clip-mismatch');
  cpSync(clip, mismatch, { recursive: true });
  const cfg = JSON.parse(readFileSync(path.join(clip, 'config.json'), 'utf8'));
  cfg.text_config.num_hidden_layers = 3;
  writeFileSync(path.join(mismatch, 'config.json'), JSON.stringify(cfg));
  const badJson = p('clip-badjson');
  cpSync(clip, badJson, { recursive: true });
  writeFileSync(path.join(badJson, 'config.json'), '{ not json');
  const cases: [string, RegExp][] = [
    [corrupt, /not a valid safetensors file: the header needs \d+ bytes but the file has 5000 \(truncated\?\)/],
    [mismatch, /model\.safetensors does not match the model:\n\s+missing keys \(16\):\n\s+text_model\.encoder\.layers\.2\./],
    [badJson, /config\.json: not valid JSON/],
    [p('no-such-clip'), /no such folder/],
  ];
  for (const [c, re] of cases) {
    const r = runCli(['edit', input, target, '-m', model, ...fast, '--clip-model', c, '-o', p('bad.png')], env);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, new RegExp(`cannot load the CLIP that scores the candidates, ${c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(given by --clip-model\\)`));
    assert.match(r.err, re, c);
    assert.match(r.err, /--clip-model <dir\|repo-id>/);
    assert.doesNotMatch(r.err, /stage A/);
    assert.ok(!existsSync(p('bad.imagic')), `no session folder (${c})`);
  }
});
