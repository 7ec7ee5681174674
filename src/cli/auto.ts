// `--eta auto` and `--metrics` for edit, render and compare: which files a render writes, rendering and
// scoring the candidates (pipelines/imagic/auto.ts), and the report (JSON, CSV, plot, the session's
// auto-choice.json, the table on the terminal).
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { dispose, type Tensor } from '../engine/index.js';
import { tensorToImage, writeFileAtomic, writePng, type RgbImage } from '../io/image.js';
import {
  embeddingTensors, AUTO_ETAS, AUTO_SEEDS, DEFAULT_AUTO_RULE, EditSession, INVERTED_SEED, autoChoose, invertedNoise, type Candidate, type CandidateScorer, type Embeddings,
} from '../pipelines/imagic/index.js';
import type { StableDiffusion } from '../pipelines/index.js';
import {
  RULE_DESCRIPTION, buildCandidates, candidateFile, formatScoreTable, metricsFiles, outputStem, writeMetricsReport,
  type ClipSource, type MetricsFiles, type MetricsReport,
} from './metrics.js';
import { checkOutputs, withSuffix } from './options.js';
export { loadSessionInput, saveSessionInput } from '../api/input.js';
import { stepProgress } from './progress.js';

/** --eta: numbers, or 'auto'. */
export type EtaSpec = number[] | 'auto';

export interface RenderPlan {
  auto: boolean;
  /** Scores are computed and reported (always with auto). */
  metrics: boolean;
  etas: number[];
  seeds: number[];
  /** The image (explicit single render), the contact sheet (sweep), or the chosen candidate (auto). */
  output: string;
  /** `${eta}/${seed}` -> file: every image of a sweep, or every candidate (auto). */
  files: Map<string, string>;
  /** The contact sheet of a sweep (not with auto). */
  sheet: string | null;
  /** <stem>-candidates/ (auto). */
  candidatesDir: string | null;
  report: MetricsFiles | null;
}

export const gridKey = (eta: number, seed: number) => `${eta}/${seed}`;

/**
 * The files a render writes: one image, or each eta x seed plus a sheet, or (auto) the choice and its
 * candidates, `autoEtas` (the preset's, in the session's settings) for each seed.
 */
export function planRender(output: string, etas: EtaSpec, seeds: number[] | undefined, metrics: boolean, autoEtas: readonly number[] = AUTO_ETAS): RenderPlan {
  const auto = etas === 'auto';
  const e = auto ? [...autoEtas] : etas;
  const s = seeds ?? (auto ? [...AUTO_SEEDS] : [0]);
  if (!auto && s.includes(INVERTED_SEED)) throw new Error("the seed 'inverted' (the input's own inverted noise) is a candidate of --eta auto only");
  const files = new Map<string, string>();
  const single = !auto && e.length === 1 && s.length === 1;
  for (const seed of s) {
    for (const eta of e) files.set(gridKey(eta, seed), auto ? candidateFile(output, eta, seed) : single ? output : withSuffix(output, `eta${eta.toFixed(2)}-seed${seed}`));
  }
  return {
    auto, metrics: auto || metrics, etas: e, seeds: s, output, files,
    sheet: auto || single ? null : output,
    candidatesDir: auto ? `${outputStem(output)}-candidates` : null,
    report: auto || metrics ? metricsFiles(output) : null,
  };
}

/** Refuses, before any work, outputs that exist (unless force) or whose folder does not. */
export function checkPlan(p: RenderPlan, force: boolean, extraPngs: string[] = []): void {
  const pngs = p.auto ? [p.output] : [...p.files.values(), ...(p.sheet ? [p.sheet] : [])];
  checkOutputs([...new Set([...pngs, ...extraPngs, ...(p.report ? [p.report.plot] : [])])], force);
  const others = [...(p.report ? [p.report.json, p.report.csv] : []), ...(p.auto ? p.files.values() : [])].filter((f) => existsSync(f));
  if (others.length > 0 && !force) throw new Error(`${others.length > 3 ? `${others.slice(0, 3).join(', ')} and ${others.length - 3} more` : others.join(', ')} already exist${others.length === 1 ? 's' : ''} (use --force to overwrite)`);
}

export interface ReportContext {
  command: MetricsReport['command'];
  target: string;
  inputFile: string;
  session: string;
  scorer: CandidateScorer;
  clip: ClipSource;
  steps: number;
  guidanceScale: number;
}

function baseReport(c: ReportContext): Omit<MetricsReport, 'rule' | 'choice' | 'candidates' | 'baselines'> {
  return {
    command: c.command, target: c.target, input: path.resolve(c.inputFile), session: path.resolve(c.session),
    metrics: { ...c.scorer.names }, clip: c.clip, sampling: { steps: c.steps, guidanceScale: c.guidanceScale },
  };
}

/**
 * --eta auto: renders every candidate eta for every seed (one batch per seed), scores them, chooses by
 * DEFAULT_AUTO_RULE, writes each candidate into <stem>-candidates/ and the chosen one to the output.
 */
export async function renderAuto(sd: StableDiffusion, emb: Embeddings, p: RenderPlan, c: ReportContext, input: Tensor, quiet?: boolean): Promise<{ report: MetricsReport; chosen: RgbImage }> {
  await mkdir(p.candidatesDir!, { recursive: true });
  // Candidates of an earlier run with other etas or seeds would sit beside these as if they were theirs.
  for (const f of readdirSync(p.candidatesDir!)) if (/^eta-?[\d.]+-(seed\d+|inverted)\.png$/.test(f)) rmSync(path.join(p.candidatesDir!, f), { force: true });
  const images = new Map<string, RgbImage>();
  // The input's own starting noise: DDIM inversion of the session's image latent through the fine-tuned UNet.
  let inverted: Tensor | null = null;
  if (p.seeds.includes(INVERTED_SEED)) {
    const e = EditSession.open(c.session).loadEmbeddings();
    dispose([...embeddingTensors(e), e.rngAfterA]);
    try {
      inverted = invertedNoise(sd, e.latent, emb.eOpt, c.steps, emb.xl);
    } finally {
      e.latent.dispose();
    }
  }
  const bar = stepProgress('candidates', p.seeds.length * c.steps, quiet);
  let result: Awaited<ReturnType<typeof autoChoose>>;
  try {
    result = await autoChoose(sd, emb, {
      etas: p.etas, seeds: p.seeds, steps: c.steps, guidanceScale: c.guidanceScale, target: c.target, input, scorer: c.scorer, rule: DEFAULT_AUTO_RULE,
      invertedNoise: inverted ?? undefined,
      onStep: (done) => bar.update(done),
      onImage: async (image, cand) => {
        const rgb = tensorToImage(image);
        image.dispose();
        images.set(gridKey(cand.eta, cand.seed), rgb);
        await writePng(p.files.get(gridKey(cand.eta, cand.seed))!, rgb);
      },
    });
  } finally {
    bar.stop();
    inverted?.dispose();
  }
  const { candidates, choice, inputAlignment } = result;
  const chosen = images.get(gridKey(choice.candidate.eta, choice.candidate.seed))!;
  await writePng(p.output, chosen);
  const k = choice.candidate;
  return {
    chosen,
    report: {
      ...baseReport(c),
      rule: { ...DEFAULT_AUTO_RULE, description: RULE_DESCRIPTION },
      inputAlignment,
      choice: { index: choice.index, threshold: choice.threshold, eta: k.eta, seed: k.seed, alignment: k.alignment, preservation: k.preservation, reason: choice.reason, output: p.output },
      candidates: buildCandidates(candidates, candidates.map((x) => p.files.get(gridKey(x.eta, x.seed))!), choice),
      baselines: [],
    },
  };
}

/** --metrics without auto: the rendered images' scores, no choice. */
export function metricsReport(c: ReportContext, scored: { candidate: Candidate; file: string }[]): MetricsReport {
  return { ...baseReport(c), rule: null, choice: null, candidates: buildCandidates(scored.map((s) => s.candidate), scored.map((s) => s.file), null), baselines: [] };
}

/** Scores one rendered image [1, 3, H, W] against the target text and the input. */
export function scoreImage(scorer: CandidateScorer, image: Tensor, target: string, input: Tensor, eta: number, seed: number): Candidate {
  return { eta, seed, alignment: scorer.alignment(image, target)[0]!, preservation: scorer.preservation(image, input)[0]! };
}

/** Writes the JSON, CSV and plot, the session's auto-choice.json (with a choice), and prints the table. */
export async function finishReport(p: RenderPlan, r: MetricsReport, log: (m: string) => void): Promise<string[]> {
  const files = p.report!;
  await writeMetricsReport(files, r);
  if (r.choice && existsSync(r.session)) {
    await writeFileAtomic(path.join(r.session, 'auto-choice.json'), Buffer.from(`${JSON.stringify({
      eta: r.choice.eta, seed: r.choice.seed, alignment: r.choice.alignment, preservation: r.choice.preservation, reason: r.choice.reason,
      rule: r.rule, metrics: r.metrics, clip: r.clip, sampling: r.sampling, etas: p.etas, seeds: p.seeds, output: path.resolve(r.choice.output),
      report: path.resolve(files.json), created: new Date().toISOString(),
    }, null, 2)}\n`));
  }
  log(formatScoreTable(r));
  return [files.json, files.csv, files.plot];
}
