// The Shapes-64 edit benchmark (src/shapes/edit-benchmark.ts): 100 single-attribute edits with Imagic
// (the 'shapes' preset; one training per edit, every eta x seed candidate, and the automatic choice
// `imagic edit` makes by default), SDEdit at strengths 0.3-0.8 and DDIM inversion with and without the
// input's caption. Outputs are graded by the domain evaluator and scored with the domain CLIP
// (alignment: CLIP score to the target; preservation: CLIP-I to the input). Results are appended per
// edit to a JSONL file, so an interrupted run resumes.
// Usage: node dist/bench/shapes-edits.js [--model dir] [--clip dir] [--per-kind 20] [--results file.jsonl]
//   [--seeds=-1,0,1,2,3 (-1: the input's inverted noise)] [--preservation feature-distance|clip-i]
//   [--json summary.json] [--shard i/n --threads 1] [--summary-only]
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { keep, noGrad, setNumThreads } from '../src/engine/index.js';
import { CLIPScorer } from '../src/metrics/index.js';
import { writePlot } from '../src/io/plot.js';
import { loadStableDiffusion } from '../src/pipelines/index.js';
import { AUTO_SEEDS, clipCandidateScorer, DEFAULT_AUTO_RULE, DEFAULT_PRESERVATION, type PreservationMetric } from '../src/pipelines/imagic/auto.js';
import { resolveSettings, type TrainMode } from '../src/pipelines/imagic/presets.js';
import type { LoRATargets } from '../src/nn/index.js';
import { editBenchmarkCases, runEditCase, summarize, type BenchmarkSettings, type CaseResult } from '../src/shapes/edit-benchmark.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  model: { type: 'string', default: path.join(root, 'models', 'shapes-64') },
  clip: { type: 'string' },
  'per-kind': { type: 'string', default: '20' },
  'case-seed': { type: 'string', default: '2026' },
  results: { type: 'string', default: path.join(root, 'bench', 'results', 'shapes-edits.jsonl') },
  etas: { type: 'string' },
  seeds: { type: 'string', default: AUTO_SEEDS.join(',') },
  preservation: { type: 'string', default: DEFAULT_PRESERVATION },
  strengths: { type: 'string', default: '0.3,0.4,0.5,0.6,0.7,0.8' },
  gain: { type: 'string' },
  'steps-a': { type: 'string' }, 'lr-a': { type: 'string' }, 'steps-b': { type: 'string' }, 'lr-b': { type: 'string' },
  train: { type: 'string' }, 'lora-rank': { type: 'string' }, 'lora-targets': { type: 'string' },
  json: { type: 'string' },
  plot: { type: 'string' },
  fresh: { type: 'boolean', default: false },
  shard: { type: 'string', default: '0/1' },
  threads: { type: 'string' },
  'summary-only': { type: 'boolean', default: false },
} });
if (a.threads) setNumThreads(Number(a.threads));
const [shard, shards] = a.shard!.split('/').map(Number) as [number, number];
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const imagic = resolveSettings('shapes', {
  stepsA: num(a['steps-a']), lrA: num(a['lr-a']), stepsB: num(a['steps-b']), lrB: num(a['lr-b']),
  train: a.train as TrainMode | undefined, loraRank: num(a['lora-rank']), loraTargets: a['lora-targets'] as LoRATargets | undefined,
});
const list = (v: string) => v.split(',').map(Number);
const settings: BenchmarkSettings = {
  imagic, etas: a.etas ? list(a.etas) : [...imagic.autoEtas], seeds: list(a.seeds!), rule: a.gain ? { gain: Number(a.gain) } : DEFAULT_AUTO_RULE,
  sdeditStrengths: list(a.strengths!), steps: imagic.steps, guidanceScale: imagic.guidanceScale, seed: 0,
};
const clipDir = a.clip ?? path.join(a.model!, 'clip');
const key = JSON.stringify({ model: path.resolve(a.model!), clip: path.resolve(clipDir), settings, cases: a['case-seed'], preservation: a.preservation });

const cases = editBenchmarkCases(Number(a['per-kind']), Number(a['case-seed']));
const done = new Map<number, CaseResult>();
if (existsSync(a.results!) && !a.fresh) {
  for (const line of readFileSync(a.results!, 'utf8').split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as { key: string; result: CaseResult };
    if (r.key === key) done.set(r.result.id, r.result);
  }
}
if (done.size > 0) console.error(`resuming: ${done.size} of ${cases.length} edits already in ${a.results}`);
const scorerNames = clipCandidateScorer({ clipScore: () => [], clipI: () => [], featureDistance: () => [] }, path.basename(clipDir), a.preservation as PreservationMetric).names;
const t0 = Date.now();
if (!a['summary-only'] && cases.some((c) => !done.has(c.id) && c.id % shards === shard)) {
  const sd = await loadStableDiffusion(a.model!);
  const clip = await CLIPScorer.load(clipDir);
  const scorer = clipCandidateScorer(clip, path.basename(clipDir), a.preservation as PreservationMetric);
  const original = new Map(sd.unet.namedParameters().map(([k, t]) => [k, keep(noGrad(() => t.clone()))]));
  for (const c of cases) {
    if (done.has(c.id) || c.id % shards !== shard) continue;
    const r = await runEditCase(sd, c, settings, original, scorer);
    done.set(c.id, r);
    appendFileSync(a.results!, `${JSON.stringify({ key, result: r })}\n`);
    const flag = (o: { success: boolean; preserved: boolean }) => `${o.success ? 'S' : '-'}${o.preserved ? 'P' : '-'}`;
    const right = Object.entries(r.imagic).filter(([, o]) => o.success && o.preserved).length;
    const auto = r.imagic[`${r.auto.eta.toFixed(2)}/${r.auto.seed}`]!;
    console.error(`${done.size}/${cases.length} ${c.kind.padEnd(10)} "${c.target}": auto eta ${r.auto.eta} seed ${r.auto.seed} ${flag(auto)} (${right}/${Object.keys(r.imagic).length} candidates right), sdedit ${Object.values(r.sdedit).map(flag).join(' ')}, ddim-inv ${flag(r.ddimInversion.empty)} ${flag(r.ddimInversion.caption)} (train ${r.seconds.imagicTrain.toFixed(1)} s, render ${r.seconds.imagicRender.toFixed(1)} s)`);
  }
}
// With shards, each process runs its share; the summary waits for every edit.
if (cases.some((c) => !done.has(c.id))) {
  console.error(`shard ${shard}/${shards} done; ${cases.length - done.size} edits of other shards are not in ${a.results} yet (summarize with --summary-only once all are)`);
  process.exit(0);
}
const results = cases.map((c) => done.get(c.id)!);
const s = summarize(results, settings);
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const f = (x: number | undefined, d = 2) => (x === undefined ? '' : x.toFixed(d));
console.log(`\n${s.cases} edits, model ${path.relative(root, a.model!) || a.model}; Imagic ${imagic.stepsA} A (lr ${imagic.lrA}) + ${imagic.stepsB} B (lr ${imagic.lrB}) steps, ${imagic.steps} DDIM steps, guidance ${imagic.guidanceScale}; candidates: etas ${settings.etas.join(', ')} x seeds ${settings.seeds.join(', ')}; rule: gain ${settings.rule.gain}; metrics: CLIP score and ${a.preservation} of ${path.basename(clipDir)}\n`);
console.log('| method | success | preserved | both | both per kind: color / shape / size / position / background | CLIP score | preservation |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [m, r] of Object.entries(s.methods)) {
  console.log(`| ${m} | ${pct(r.success)} | ${pct(r.preserved)} | ${pct(r.both)} | ${Object.values(r.perKind).map((k) => pct(k.both)).join(' / ')} | ${f(r.alignment)} | ${f(r.preservation, 3)} |`);
}
console.log(`\nthe rule's hit rate (of the edits where some candidate is right, how often it picks a right one): ${pct(s.ruleHitRate)}`);
console.log(`Imagic by eta (both with the first noise, ${settings.seeds[0] === -1 ? 'the inverted one' : `seed ${settings.seeds[0]}`}; mean alignment / preservation over all noises): ${Object.entries(s.imagicByEta).map(([e, v]) => `${e}: ${pct(v.both)} (${f(v.alignment)} / ${f(v.preservation, 3)})`).join(', ')}`);
console.log(`SDEdit by strength: ${Object.entries(s.sdeditByStrength).map(([e, v]) => `${e}: ${pct(v.both)} (${f(v.alignment)} / ${f(v.preservation, 3)})`).join(', ')}`);
console.log(`DDIM inversion: empty prompt ${pct(s.ddimInversion.empty.both)} (${f(s.ddimInversion.empty.alignment)} / ${f(s.ddimInversion.empty.preservation, 3)}), input's caption ${pct(s.ddimInversion.caption.both)} (${f(s.ddimInversion.caption.alignment)} / ${f(s.ddimInversion.caption.preservation, 3)})`);
const sec = (k: keyof CaseResult['seconds']) => (results.reduce((acc, r) => acc + r.seconds[k], 0) / results.length).toFixed(1);
console.log(`mean seconds per edit: Imagic training ${sec('imagicTrain')}, candidates ${sec('imagicRender')}, SDEdit (all strengths) ${sec('sdedit')}, DDIM inversion (both) ${sec('ddimInversion')}; this run ${((Date.now() - t0) / 60000).toFixed(1)} min`);
if (a.json) writeFileSync(a.json, `${JSON.stringify({ settings, ...s }, null, 2)}\n`);
if (a.plot) {
  // The report's Figure 9 over the benchmark: mean alignment against mean preservation.
  const pt = (label: string, v: { alignment: number; preservation: number }) => ({ x: v.preservation, y: v.alignment, label });
  const auto = Object.entries(s.methods)[0]![1];
  await writePlot(a.plot, [
    { name: 'Imagic, fixed eta', points: Object.entries(s.imagicByEta).map(([e, v]) => pt(String(Number(e)), v)), line: true, marker: 'circle' },
    { name: 'SDEdit, by strength', points: Object.entries(s.sdeditByStrength).map(([st, v]) => pt(String(Number(st)), v)), line: true, marker: 'square' },
    { name: 'DDIM inversion', points: [pt('empty', s.ddimInversion.empty), pt('caption', s.ddimInversion.caption)], marker: 'triangle' },
    { name: 'Imagic, automatic', points: [pt('auto', { alignment: auto.alignment!, preservation: auto.preservation! })], marker: 'diamond', size: 9 },
  ], {
    title: `Shapes-64 edit benchmark (${s.cases} edits): edit strength vs fidelity`,
    xLabel: `preservation: ${scorerNames.preservation}`, yLabel: `alignment: ${scorerNames.alignment}`,
  });
  console.log(`wrote ${a.plot}`);
}
