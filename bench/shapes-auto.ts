// Calibrates and checks the automatic choice of eta and seed (src/pipelines/imagic/auto.ts) on the
// candidates kept by bench/shapes-sweep.ts: scores every candidate with the domain CLIP (alignment:
// CLIP score to the target text; preservation: CLIP-I to the input, or the CLIP feature distance),
// applies the rule at several tolerances, and counts how often the chosen candidate is an edit the
// domain evaluator accepts (success and preservation). The evaluator only grades; the rule never sees it.
// Usage: node dist/bench/shapes-auto.js --sweep runs/sweep/NAME [--clip models/shapes-64/clip] [--seeds 0,1,2,3] [--etas ...]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dispose, setNumThreads, tidy } from '../src/engine/index.js';
import { loadSafetensors } from '../src/io/safetensors.js';
import { CLIPScorer } from '../src/metrics/index.js';
import { chooseCandidate, type Candidate } from '../src/pipelines/imagic/auto.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  sweep: { type: 'string', multiple: true },
  clip: { type: 'string', default: path.join(root, 'models', 'shapes-64', 'clip') },
  seeds: { type: 'string' },
  etas: { type: 'string' },
  tolerances: { type: 'string', default: '0,1,2,3,4,5,6,8,10,15,100' },
  threads: { type: 'string' },
} });
if (a.threads) setNumThreads(Number(a.threads));
const clip = await CLIPScorer.load(a.clip!);
const tolerances = a.tolerances!.split(',').map(Number);
const gains = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
/** The rule's earlier form, for comparison: within `tol` points of the best alignment; of those, the most preserving. */
function chooseByTolerance<C extends Candidate>(cands: C[], tol: number): { index: number } {
  const best = Math.max(...cands.map((c) => c.alignment));
  const idx = cands.map((_, i) => i).filter((i) => cands[i]!.alignment >= best - tol);
  return { index: idx.sort((i, j) => cands[j]!.preservation - cands[i]!.preservation || cands[i]!.eta - cands[j]!.eta || cands[i]!.seed - cands[j]!.seed)[0]! };
}
/** The rule as auto.ts has it (chooseCandidate), at gain g. */
function chooseByGain<C extends Candidate>(cands: C[], g: number, inAlign: number): C {
  return cands[chooseCandidate(cands, inAlign, { gain: g }).index]!;
}

const PRES = ['clipI', 'feature', 'pixel'] as const;
type Scored = Candidate & { good: boolean; pres: Record<(typeof PRES)[number], number> };
for (const sweep of a.sweep ?? []) {
  const rows = readFileSync(path.join(sweep, 'results.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: number; kind: string; target: string; etas: number[]; seeds: number[]; ok: Record<string, [boolean, boolean]> });
  const wantSeeds = a.seeds ? a.seeds.split(',').map(Number) : null;
  const wantEtas = a.etas ? a.etas.split(',').map(Number) : null;
  const hits = new Map<string, number>();
  const kindHits = new Map<string, number>();
  let oracle = 0;
  const kinds = new Map<string, number>();
  for (const r of rows) {
    const t = loadSafetensors(path.join(sweep, `case-${r.id}.safetensors`));
    const cand = t.get('candidates')!; // [S, E, 64, 64, 3] uint8
    const input = tidy(() => t.get('input')!.permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1));
    const cands: Scored[] = [];
    r.seeds.forEach((seed, si) => {
      if (wantSeeds && !wantSeeds.includes(seed)) return;
      const imgs = tidy(() => cand.select(0, si).permute(0, 3, 1, 2).float().div(127.5).sub(1));
      const n = imgs.size(0);
      const rep = input.expand(n, -1, -1, -1);
      const al = clip.clipScore(imgs, Array<string>(n).fill(r.target));
      const ci = clip.clipI(imgs, rep), fd = clip.featureDistance(imgs, rep);
      const px = tidy(() => imgs.sub(rep).square().mean([1, 2, 3]).toFlatArray());
      r.etas.forEach((eta, ei) => {
        if (wantEtas && !wantEtas.some((e) => Math.abs(e - eta) < 1e-9)) return;
        const ok = r.ok[`${eta.toFixed(2)}/${seed}`]!;
        cands.push({ eta, seed, alignment: al[ei]!, preservation: 0, good: ok[0] && ok[1], pres: { clipI: ci[ei]!, feature: -fd[ei]!, pixel: -px[ei]! } });
      });
      dispose([imgs, rep]);
    });
    const inAlign = clip.clipScore(input, [r.target])[0]!;
    dispose([...t.values(), input]);
    if (cands.some((c) => c.good)) oracle++;
    for (const p of PRES) {
      for (const g of gains) {
        const ch = chooseByGain(cands.map((c) => ({ ...c, preservation: c.pres[p] })), g, inAlign);
        hits.set(`gain-${p}/${g}`, (hits.get(`gain-${p}/${g}`) ?? 0) + (ch.good ? 1 : 0));
        kindHits.set(`gain-${p}/${g}/${r.kind}`, (kindHits.get(`gain-${p}/${g}/${r.kind}`) ?? 0) + (ch.good ? 1 : 0));
      }
    }
    kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
    for (const p of PRES) {
      for (const tol of tolerances) {
        const ch = chooseByTolerance(cands.map((c) => ({ ...c, preservation: c.pres[p] })), tol);
        const good = cands[ch.index]!.good ? 1 : 0;
        hits.set(`${p}/${tol}`, (hits.get(`${p}/${tol}`) ?? 0) + good);
        kindHits.set(`${p}/${tol}/${r.kind}`, (kindHits.get(`${p}/${tol}/${r.kind}`) ?? 0) + good);
      }
    }
  }
  const n = rows.length;
  for (const p of PRES) {
    console.log(`  gain rule, preservation = ${p}: ${gains.map((g) => `${g}: ${hits.get(`gain-${p}/${g}`)}`).join(', ')}`);
    const best = gains.reduce((b, g) => ((hits.get(`gain-${p}/${g}`) ?? 0) > (hits.get(`gain-${p}/${b}`) ?? 0) ? g : b));
    console.log(`    best gain ${best} by kind: ${[...kinds].map(([k, m]) => `${k} ${kindHits.get(`gain-${p}/${best}/${k}`) ?? 0}/${m}`).join(', ')}`);
  }
  console.log(`${sweep}: ${n} edits; some candidate right (oracle): ${oracle}/${n}`);
  for (const p of PRES) {
    console.log(`  preservation = ${p}: ${tolerances.map((tol) => `tol ${tol}: ${hits.get(`${p}/${tol}`)}`).join(', ')}`);
    const best = tolerances.reduce((b, tol) => ((hits.get(`${p}/${tol}`) ?? 0) > (hits.get(`${p}/${b}`) ?? 0) ? tol : b));
    console.log(`    best tol ${best} by kind: ${[...kinds].map(([k, m]) => `${k} ${kindHits.get(`${p}/${best}/${k}`) ?? 0}/${m}`).join(', ')}`);
  }
}
