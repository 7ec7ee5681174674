// The recipe sweep for the shapes preset, on a development set of edits that is NOT the 100-edit
// benchmark (editBenchmarkCases with another seed): for one Imagic setting, trains each edit once and
// renders every eta x seed candidate, reads each back with the domain evaluator, and keeps the
// candidates (uint8, per edit) so that selection rules can be scored later without re-rendering.
// Usage: node dist/bench/shapes-sweep.js --name NAME [--steps-a n --lr-a x --steps-b n --lr-b x --train all|attention]
//   [--per-kind 4] [--case-seed 7] [--etas 0.4,...] [--seeds 0,1,2,3] (seed -1: the input's DDIM-inverted noise) [--guidance 7.5] [--shard i/n] [--threads 1]
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dispose, fromBytes, Generator, keep, noGrad, setNumThreads, stack, type Tensor } from '../src/engine/index.js';
import { imageToTensor, tensorToImages } from '../src/io/image-tensor.js';
import { saveSafetensors } from '../src/io/safetensors.js';
import { loadStableDiffusion, encodePrompt } from '../src/pipelines/index.js';
import { resolveSettings, type TrainMode } from '../src/pipelines/imagic/presets.js';
import type { LoRATargets } from '../src/nn/index.js';
import { encodeImage, fineTune, generatorNoise, invertedNoise, renderEtas, stageA } from '../src/pipelines/imagic/stages.js';
import { editBenchmarkCases } from '../src/shapes/edit-benchmark.js';
import { checkEdit, readAttributes } from '../src/shapes/evaluate.js';
import { renderShape } from '../src/shapes/render.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  name: { type: 'string', default: 'preset' },
  out: { type: 'string', default: path.join(root, 'runs', 'sweep') },
  model: { type: 'string', default: path.join(root, 'models', 'shapes-64') },
  'per-kind': { type: 'string', default: '4' },
  'case-seed': { type: 'string', default: '7' },
  etas: { type: 'string', default: '0.4,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.4' },
  seeds: { type: 'string', default: '0,1,2,3' },
  'steps-a': { type: 'string' }, 'lr-a': { type: 'string' }, 'steps-b': { type: 'string' }, 'lr-b': { type: 'string' },
  train: { type: 'string' }, 'lora-rank': { type: 'string' }, 'lora-targets': { type: 'string' }, guidance: { type: 'string' }, steps: { type: 'string' },
  shard: { type: 'string', default: '0/1' },
  threads: { type: 'string' },
} });
if (a.threads) setNumThreads(Number(a.threads));
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const s = resolveSettings('shapes', {
  stepsA: num(a['steps-a']), lrA: num(a['lr-a']), stepsB: num(a['steps-b']), lrB: num(a['lr-b']),
  train: a.train as TrainMode | undefined, loraRank: num(a['lora-rank']), loraTargets: a['lora-targets'] as LoRATargets | undefined, guidanceScale: num(a.guidance), steps: num(a.steps),
});
const etas = a.etas!.split(',').map(Number), seeds = a.seeds!.split(',').map(Number);
const [shard, shards] = a.shard!.split('/').map(Number) as [number, number];
const dir = path.join(a.out!, a.name!);
mkdirSync(dir, { recursive: true });
const results = path.join(dir, 'results.jsonl');
const done = new Set<number>(existsSync(results) ? readFileSync(results, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: number }).id) : []);
const sd = await loadStableDiffusion(a.model!);
const original = new Map(sd.unet.namedParameters().map(([k, t]) => [k, keep(noGrad(() => t.clone()))]));
const cases = editBenchmarkCases(Number(a['per-kind']), Number(a['case-seed']));
for (const c of cases) {
  if (done.has(c.id) || c.id % shards !== shard) continue;
  const t0 = Date.now();
  const input = renderShape(c.input);
  const image = imageToTensor(input);
  const latent = keep(encodeImage(sd, image));
  const eTgt = keep(encodePrompt(sd, [c.target])), eUncond = keep(encodePrompt(sd, ['']));
  const a0 = await stageA(sd, latent, eTgt, { steps: s.stepsA, lr: s.lrA, noise: generatorNoise(new Generator(s.seed), latent) });
  const tA = Date.now();
  await fineTune(sd, latent, a0.eOpt, s, { noise: generatorNoise(new Generator(s.seed + 1), latent) });
  const tB = Date.now();
  const ok: Record<string, [boolean, boolean]> = {};
  const all: Tensor[] = [];
  const inRead = readAttributes(input);
  const inverted = seeds.includes(-1) ? invertedNoise(sd, latent, a0.eOpt, s.steps) : undefined;
  for (const seed of seeds) {
    const imgs = await renderEtas(sd, { eTgt, eOpt: a0.eOpt, eUncond }, { etas, seed, steps: s.steps, guidanceScale: s.guidanceScale, noise: seed === -1 ? inverted : undefined });
    tensorToImages(imgs).forEach((im, i) => {
      const r = checkEdit(inRead, readAttributes(im), c.target);
      ok[`${etas[i]!.toFixed(2)}/${seed}`] = [r.success, r.preserved];
      all.push(fromBytes(im.data, [64, 64, 3], 'uint8'));
    });
    imgs.dispose();
  }
  const tC = Date.now();
  const pack = stack(all).view(seeds.length, etas.length, 64, 64, 3);
  saveSafetensors(path.join(dir, `case-${c.id}.safetensors`), { candidates: pack, input: fromBytes(input.data, [64, 64, 3], 'uint8') });
  dispose([pack, ...all, image, latent, eTgt, eUncond, a0.eOpt, ...(inverted ? [inverted] : [])]);
  noGrad(() => { for (const [k, p] of sd.unet.namedParameters()) p.copy_(original.get(k)!); });
  appendFileSync(results, `${JSON.stringify({ id: c.id, kind: c.kind, target: c.target, etas, seeds, ok, seconds: { A: (tA - t0) / 1000, B: (tB - tA) / 1000, C: (tC - tB) / 1000 }, settings: s })}\n`);
  const good = Object.entries(ok).filter(([, v]) => v[0] && v[1]).map(([k]) => k);
  console.error(`${a.name} #${c.id} ${c.kind} "${c.target}": ${good.length}/${etas.length * seeds.length} ok ${good.slice(0, 8).join(' ')} (A ${((tA - t0) / 1000).toFixed(1)} s, B ${((tB - tA) / 1000).toFixed(1)} s, C ${((tC - tB) / 1000).toFixed(1)} s)`);
}
