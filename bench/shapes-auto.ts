// Calibrates and checks the automatic choice of eta and seed (src/pipelines/imagic/auto.ts) on the
// candidates kept by bench/shapes-sweep.ts: scores every candidate with the domain CLIP (alignment:
// CLIP score to the target text; preservation: CLIP-I to the input), applies the rule at several
// tolerances, and counts how often the chosen candidate is an edit the domain evaluator accepts
// (success and preservation). The evaluator only grades; the rule never sees it.
// Usage: node dist/bench/shapes-auto.js --sweep runs/sweep/NAME [--clip models/shapes-64/clip] [--seeds 0,1,2,3] [--etas ...]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dispose, setNumThreads, tidy } from '../src/engine/index.js';
import { loadSafetensors } from '../src/io/safetensors.js';
import { CLIPScorer } from '../src/metrics/index.js';
import { chooseCandidate, clipCandidateScorer, type Candidate } from '../src/pipelines/imagic/auto.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  sweep: { type: 'string', multiple: true },
  clip: { type: 'string', default: path.join(root, 'models', 'shapes-64', 'clip') },
  seeds: { type: 'string' },
  etas: { type: 'string' },
  tolerances: { type: 'string', default: '0,1,2,3,4,5,6,8,10,15,20,100' },
  threads: { type: 'string' },
} });
if (a.threads) setNumThreads(Number(a.threads));
const scorer = clipCandidateScorer(await CLIPScorer.load(a.clip!), path.basename(a.clip!));
const tolerances = a.tolerances!.split(',').map(Number);
for (const sweep of a.sweep ?? []) {
  const rows = readFileSync(path.join(sweep, 'results.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: number; kind: string; target: string; etas: number[]; seeds: number[]; ok: Record<string, [boolean, boolean]> });
  const wantSeeds = a.seeds ? a.seeds.split(',').map(Number) : null;
  const wantEtas = a.etas ? a.etas.split(',').map(Number) : null;
  const hits = new Map<number, number>();
  const linHits = new Map<number, number>();
  const lambdas = [0.25, 0.5, 1, 2, 4, 8];
  let oracle = 0;
  const perKind = new Map<string, { n: number; hit: Map<number, number> }>();
  const byEta = new Map<string, number>();
  for (const r of rows) {
    const t = loadSafetensors(path.join(sweep, `case-${r.id}.safetensors`));
    const cand = t.get('candidates')!; // [S, E, 64, 64, 3] uint8
    const input = tidy(() => t.get('input')!.permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1));
    const cands: (Candidate & { good: boolean })[] = [];
    r.seeds.forEach((seed, si) => {
      if (wantSeeds && !wantSeeds.includes(seed)) return;
      const imgs = tidy(() => cand.select(0, si).permute(0, 3, 1, 2).float().div(127.5).sub(1));
      const al = scorer.alignment(imgs, r.target), pr = scorer.preservation(imgs, input);
      r.etas.forEach((eta, ei) => {
        if (wantEtas && !wantEtas.some((e) => Math.abs(e - eta) < 1e-9)) return;
        const ok = r.ok[`${eta.toFixed(2)}/${seed}`]!;
        cands.push({ eta, seed, alignment: al[ei]!, preservation: pr[ei]!, good: ok[0] && ok[1] });
        if (seed === (wantSeeds?.[0] ?? r.seeds[0]) && ok[0] && ok[1]) byEta.set(eta.toFixed(2), (byEta.get(eta.toFixed(2)) ?? 0) + 1);
      });
      imgs.dispose();
    });
    dispose([...t.values(), input]);
    if (cands.some((c) => c.good)) oracle++;
    const k = perKind.get(r.kind) ?? { n: 0, hit: new Map() };
    k.n++;
    for (const tol of tolerances) {
      const ch = chooseCandidate(cands, { tolerance: tol });
      const good = cands[ch.index]!.good ? 1 : 0;
      hits.set(tol, (hits.get(tol) ?? 0) + good);
      k.hit.set(tol, (k.hit.get(tol) ?? 0) + good);
    }
    // An alternative family, for comparison: the highest preservation + lambda * alignment / 100.
    for (const lam of lambdas) {
      const best = cands.reduce((b, c) => (c.preservation + (lam * c.alignment) / 100 > b.preservation + (lam * b.alignment) / 100 ? c : b));
      linHits.set(lam, (linHits.get(lam) ?? 0) + (best.good ? 1 : 0));
    }
    perKind.set(r.kind, k);
  }
  const n = rows.length;
  console.log(`${sweep}: ${n} edits; some candidate right (oracle): ${oracle}/${n}; first seed, fixed eta: ${[...byEta].sort().map(([e, v]) => `${e}: ${v}`).join(', ')}`);
  for (const tol of tolerances) {
    console.log(`  tolerance ${String(tol).padStart(4)}: chosen right ${hits.get(tol)}/${n}  (${[...perKind].map(([kind, k]) => `${kind} ${k.hit.get(tol)}/${k.n}`).join(', ')})`);
  }
  console.log(`  (preservation + lambda * alignment / 100: ${lambdas.map((l) => `lambda ${l}: ${linHits.get(l)}/${n}`).join(', ')})`);
}
