// The Shapes-64 edit benchmark (src/shapes/edit-benchmark.ts): 100 single-attribute edits with
// Imagic (the 'shapes' preset; every eta of a sweep from one training per edit), SDEdit and DDIM
// inversion. Results are appended per edit to a JSONL file, so an interrupted run resumes.
// Usage: node dist/bench/shapes-edits.js [--model dir] [--per-kind 20] [--results file.jsonl]
//   [--etas 0.5,...] [--steps-a n] [--steps-b n] [--lr-b x] [--json summary.json]
//   [--shard i/n --threads 1]: run every n-th edit (one process per core is faster than one process
//   with n threads for these small models); then --summary-only prints the table.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { keep, noGrad, setNumThreads } from '../src/engine/index.js';
import { loadStableDiffusion } from '../src/pipelines/index.js';
import { resolveSettings } from '../src/pipelines/imagic/presets.js';
import { editBenchmarkCases, runEditCase, summarize, type CaseResult } from '../src/shapes/edit-benchmark.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  model: { type: 'string', default: path.join(root, 'models', 'shapes-64') },
  'per-kind': { type: 'string', default: '20' },
  results: { type: 'string', default: path.join(root, 'bench', 'results', 'shapes-edits.jsonl') },
  etas: { type: 'string', default: '0.6,0.8,1.0,1.2,1.4' },
  'steps-a': { type: 'string' },
  'steps-b': { type: 'string' },
  'lr-a': { type: 'string' },
  'lr-b': { type: 'string' },
  strength: { type: 'string', default: '0.6' },
  json: { type: 'string' },
  fresh: { type: 'boolean', default: false },
  shard: { type: 'string', default: '0/1' },
  threads: { type: 'string' },
  'summary-only': { type: 'boolean', default: false },
} });
if (a.threads) setNumThreads(Number(a.threads));
const [shard, shards] = a.shard!.split('/').map(Number) as [number, number];
const imagic = resolveSettings('shapes', {
  stepsA: a['steps-a'] ? Number(a['steps-a']) : undefined,
  stepsB: a['steps-b'] ? Number(a['steps-b']) : undefined,
  lrA: a['lr-a'] ? Number(a['lr-a']) : undefined,
  lrB: a['lr-b'] ? Number(a['lr-b']) : undefined,
});
const etas = a.etas!.split(',').map(Number);
if (!etas.some((e) => e.toFixed(2) === imagic.eta.toFixed(2))) etas.push(imagic.eta);
etas.sort((x, y) => x - y);
const settings = { imagic, etas, sdeditStrength: Number(a.strength), steps: imagic.steps, guidanceScale: imagic.guidanceScale, seed: 0 };
const key = JSON.stringify({ model: path.resolve(a.model!), settings });

const sd = await loadStableDiffusion(a.model!);
const original = new Map(sd.unet.namedParameters().map(([k, t]) => [k, keep(noGrad(() => t.clone()))]));
const cases = editBenchmarkCases(Number(a['per-kind']));
const done = new Map<number, CaseResult>();
if (existsSync(a.results!) && !a.fresh) {
  for (const line of readFileSync(a.results!, 'utf8').split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as { key: string; result: CaseResult };
    if (r.key === key) done.set(r.result.id, r.result);
  }
}
if (done.size > 0) console.error(`resuming: ${done.size} of ${cases.length} edits already in ${a.results}`);
const t0 = Date.now();
for (const c of cases) {
  if (done.has(c.id) || c.id % shards !== shard || a['summary-only']) continue;
  const r = await runEditCase(sd, c, settings, original);
  done.set(c.id, r);
  appendFileSync(a.results!, `${JSON.stringify({ key, result: r })}\n`);
  const best = Object.entries(r.imagic).filter(([, o]) => o.success && o.preserved).map(([e]) => e);
  console.error(`${done.size}/${cases.length} ${c.kind.padEnd(10)} "${c.target}": imagic ok at [${best.join(' ')}], sdedit ${r.sdedit.success ? 'S' : '-'}${r.sdedit.preserved ? 'P' : '-'}, ddim-inv ${r.ddimInversion.success ? 'S' : '-'}${r.ddimInversion.preserved ? 'P' : '-'} (${r.seconds.imagic.toFixed(1)} s)`);
}
// With shards, each process runs its share; the summary waits for every edit.
if (cases.some((c) => !done.has(c.id))) {
  console.error(`shard ${shard}/${shards} done; ${cases.length - done.size} edits of other shards are not in ${a.results} yet (summarize with --summary-only once all are)`);
  process.exit(0);
}
const results = cases.map((c) => done.get(c.id)!);
const s = summarize(results, imagic.eta, etas);
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
console.log(`\n${s.cases} edits, model ${a.model}; Imagic ${imagic.stepsA} A (lr ${imagic.lrA}) + ${imagic.stepsB} B (lr ${imagic.lrB}) steps, ${imagic.steps} DDIM steps, guidance ${imagic.guidanceScale}; SDEdit strength ${settings.sdeditStrength}; this run ${((Date.now() - t0) / 60000).toFixed(1)} min\n`);
console.log('| method | success | preserved | both | both, per kind (color / shape / size / position / background) |');
console.log('| --- | --- | --- | --- | --- |');
for (const [m, r] of Object.entries(s.methods)) {
  console.log(`| ${m} | ${pct(r.success)} | ${pct(r.preserved)} | ${pct(r.both)} | ${Object.values(r.perKind).map((k) => pct(k.both)).join(' / ')} |`);
}
console.log(`\nImagic, both, by eta: ${Object.entries(s.imagicByEta).map(([e, v]) => `${e}: ${pct(v)}`).join(', ')}`);
if (a.json) writeFileSync(a.json, `${JSON.stringify({ settings, ...s }, null, 2)}\n`);
