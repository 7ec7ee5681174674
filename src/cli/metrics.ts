// Scores for Imagic's candidates in the CLI (--eta auto, --metrics): which CLIP scores them (--clip-model,
// the model's own clip/ folder, or CLIP ViT-L/14 from the Hub), loaded as the library's CandidateScorer,
// and the report files: <stem>-metrics.json, -metrics.csv and the plot -metrics.png.
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { cliProgressReporter } from '../io/hub.js';
import { writeFileAtomic } from '../io/image.js';
import { writePlot, type PlotSeries } from '../io/plot.js';
import { CLIPScorer } from '../metrics/index.js';
import { clipCandidateScorer, INVERTED_SEED, type AutoRule, type Candidate, type CandidateScorer, type Choice, type PreservationMetric } from '../pipelines/imagic/index.js';
import { clipHint, resolveClipSource, type ClipSource } from '../pipelines/imagic/clip-source.js';

export { DEFAULT_HUB_CLIP, clipHint, resolveClipSource, type ClipSource } from '../pipelines/imagic/clip-source.js';

/** 'seed 3', or 'inverted noise' for the input's own DDIM-inverted starting noise. */
export const seedText = (seed: number) => (seed === INVERTED_SEED ? 'inverted noise' : `seed ${seed}`);

/**
 * Loads the CLIP (downloading a repo id once, unless offline) as the library's CandidateScorer
 * (alignment: CLIP score to the text; preservation: `metric` to the input). Any failure becomes one
 * error that names --clip-model.
 */
export async function loadCandidateScorer(a: { model: string; clipModel?: string; device: string; offline?: boolean; quiet?: boolean }, metric: PreservationMetric, auto: boolean, log: (m: string) => void): Promise<{ scorer: CandidateScorer & { dispose(): void }; clip: ClipSource }> {
  const clip = resolveClipSource(a.model, a.clipModel, auto);
  const where = { option: 'given by --clip-model', model: "the model's own", 'hub-default': 'the default for models without a clip/ folder' }[clip.origin];
  const download = a.quiet || !process.stderr.isTTY ? undefined : cliProgressReporter();
  try {
    const s = await CLIPScorer.load(clip.source, { device: a.device, offline: a.offline, onDownload: download?.onProgress });
    log(`loaded CLIP ${clip.name} for the metrics (${where})`);
    return { scorer: { ...clipCandidateScorer(s, clip.name, metric), dispose: () => s.dispose() }, clip };
  } catch (e) {
    const lines = (e instanceof Error ? e.message : String(e)).split('\n');
    const msg = lines.length > 12 ? [...lines.slice(0, 12), `  ... (${lines.length - 12} more lines)`] : lines;
    throw new Error(`cannot load the CLIP that scores the candidates, ${clip.source} (${where}):\n  ${msg.join('\n  ')}\n${clipHint(auto)}`, { cause: e });
  } finally {
    download?.stop();
  }
}

export interface ScoredCandidate extends Candidate {
  /** 'seed 3', or 'inverted noise' (seed INVERTED_SEED = -1: the input's own DDIM-inverted noise). */
  noise: string;
  /** The candidate's image. */
  file: string;
  /** Passed the rule's alignment cut (auto only). */
  eligible: boolean;
  chosen: boolean;
}

export interface ScoredBaseline {
  method: 'SDEdit' | 'DDIM inversion';
  seed: number;
  alignment: number;
  preservation: number;
  file: string;
}

export interface MetricsReport {
  command: 'edit' | 'render' | 'compare';
  target: string;
  input: string;
  session: string;
  /** What alignment and preservation are. */
  metrics: { alignment: string; preservation: string };
  clip: ClipSource;
  sampling: { steps: number; guidanceScale: number };
  /** The automatic choice (null: --metrics with etas given). */
  rule: (AutoRule & { description: string }) | null;
  /** The input's own alignment to the text: the rule's floor (auto only). */
  inputAlignment?: number;
  choice: { index: number; threshold: number; eta: number; seed: number; alignment: number; preservation: number; reason: string; output: string } | null;
  candidates: ScoredCandidate[];
  baselines: ScoredBaseline[];
}

export const RULE_DESCRIPTION = 'edited: alignment at least inputAlignment + gain * (best alignment - inputAlignment); of those, the one with the highest preservation; ties to the smaller eta, then the smaller seed (the inverted noise, seed -1, first)';

/** 'dir/out.png' -> 'dir/out' */
export function outputStem(output: string): string {
  const ext = path.extname(output);
  return output.slice(0, output.length - ext.length);
}

export interface MetricsFiles {
  json: string;
  csv: string;
  plot: string;
}

export function metricsFiles(output: string): MetricsFiles {
  const s = outputStem(output);
  return { json: `${s}-metrics.json`, csv: `${s}-metrics.csv`, plot: `${s}-metrics.png` };
}

/** A candidate's file in `<stem>-candidates/`: eta0.70-seed1.png, or eta0.70-inverted.png for INVERTED_SEED. */
export function candidateFile(output: string, eta: number, seed: number): string {
  return path.join(`${outputStem(output)}-candidates`, `eta${eta.toFixed(2)}-${seed === INVERTED_SEED ? 'inverted' : `seed${seed}`}.png`);
}

/** The report with the choice marked; `choice` null for plain --metrics. */
export function buildCandidates(cands: Candidate[], files: string[], choice: Choice | null): ScoredCandidate[] {
  const eligible = new Set(choice?.eligible ?? []);
  return cands.map((c, i) => ({ eta: c.eta, seed: c.seed, noise: seedText(c.seed), alignment: c.alignment, preservation: c.preservation, file: files[i]!, eligible: eligible.has(i), chosen: choice?.index === i }));
}

/** Paths in the report are written relative to the report's folder (input and session stay absolute). */
function relativeTo(dir: string, r: MetricsReport): MetricsReport {
  const rel = (f: string) => path.relative(dir, path.resolve(f)) || '.';
  return {
    ...r,
    choice: r.choice ? { ...r.choice, output: rel(r.choice.output) } : null,
    candidates: r.candidates.map((c) => ({ ...c, file: rel(c.file) })),
    baselines: r.baselines.map((b) => ({ ...b, file: rel(b.file) })),
  };
}

export function metricsCsv(r: MetricsReport): string {
  const rows: (string | number | boolean)[][] = [['method', 'eta', 'seed', 'noise', 'alignment', 'preservation', 'eligible', 'chosen', 'file']];
  for (const c of r.candidates) rows.push(['Imagic', c.eta, c.seed, c.noise, c.alignment, c.preservation, c.eligible, c.chosen, c.file]);
  for (const b of r.baselines) rows.push([b.method, '', b.seed, seedText(b.seed), b.alignment, b.preservation, '', '', b.file]);
  // booleans as true/false (csv-stringify's default writes 1 and an empty cell)
  return stringify(rows, { cast: { boolean: (v) => String(v) } });
}

/** Alignment against preservation: one curve per seed (points labelled with their eta), baselines as their own markers, the choice ringed. */
export async function writeMetricsPlot(file: string, r: MetricsReport): Promise<void> {
  const seeds = [...new Set(r.candidates.map((c) => c.seed))];
  const series: PlotSeries[] = seeds.map((seed) => {
    const pts = r.candidates.filter((c) => c.seed === seed).sort((a, b) => a.eta - b.eta);
    return { name: `Imagic, ${seedText(seed)}`, line: pts.length > 1, points: pts.map((c) => ({ x: c.preservation, y: c.alignment, label: formatEta(c.eta) })) };
  });
  const style = { SDEdit: { marker: 'square', color: '#000000' }, 'DDIM inversion': { marker: 'diamond', color: '#7f7f7f' } } as const;
  for (const b of r.baselines) series.push({ name: `${b.method}, seed ${b.seed}`, ...style[b.method], size: 6, points: [{ x: b.preservation, y: b.alignment }] });
  const c = r.choice;
  await writePlot(file, series, {
    title: `"${r.target}": ${r.candidates.length} Imagic candidate${r.candidates.length === 1 ? '' : 's'}${r.baselines.length ? ' and the baselines' : ''}`,
    xLabel: `preservation: ${r.metrics.preservation}`,
    yLabel: `alignment: ${r.metrics.alignment} to the text`,
    highlights: c ? [{ x: c.preservation, y: c.alignment, name: `chosen: eta ${formatEta(c.eta)}, ${seedText(c.seed)}` }] : [],
  });
}

/** Writes the JSON, the CSV (paths relative to their folder) and the plot. */
export async function writeMetricsReport(files: MetricsFiles, r: MetricsReport): Promise<void> {
  const rel = relativeTo(path.dirname(path.resolve(files.json)), r);
  await writeFileAtomic(files.json, Buffer.from(`${JSON.stringify(rel, null, 2)}\n`));
  await writeFileAtomic(files.csv, Buffer.from(metricsCsv(rel)));
  await writeMetricsPlot(files.plot, r);
}

/** 1 -> '1.0', 0.75 -> '0.75' */
export const formatEta = (eta: number) => (Number.isInteger(eta) ? eta.toFixed(1) : String(eta));

/**
 * The scores as a table: a row per eta, a column per seed, each cell 'alignment / preservation'
 * ('*' the chosen one, '+' past the rule's alignment cut), then the baselines and the reason.
 */
export function formatScoreTable(r: MetricsReport): string {
  const etas = [...new Set(r.candidates.map((c) => c.eta))].sort((a, b) => a - b);
  const seeds = [...new Set(r.candidates.map((c) => c.seed))];
  const cell = (c: ScoredCandidate | undefined) => (c ? `${c.alignment.toFixed(2).padStart(6)} / ${c.preservation.toFixed(4)}${c.chosen ? ' *' : c.eligible ? ' +' : '  '}` : '');
  const w = 20;
  const lines = [`scores: ${r.metrics.alignment} to the text / preservation: ${r.metrics.preservation}${r.choice ? ' (* chosen, + past the rule\'s alignment cut)' : ''}`];
  lines.push(`  ${'eta'.padEnd(6)}${seeds.map((s) => seedText(s).padEnd(w)).join('')}`.trimEnd());
  for (const eta of etas) {
    lines.push(`  ${formatEta(eta).padEnd(6)}${seeds.map((s) => cell(r.candidates.find((c) => c.eta === eta && c.seed === s)).padEnd(w)).join('')}`.trimEnd());
  }
  for (const b of r.baselines) lines.push(`  ${`${b.method} (seed ${b.seed})`.padEnd(24)}${b.alignment.toFixed(2).padStart(6)} / ${b.preservation.toFixed(4)}`);
  if (r.choice) lines.push(`chosen: eta ${formatEta(r.choice.eta)}, ${seedText(r.choice.seed)} -> ${r.choice.output}`, `why: ${r.choice.reason}`);
  return lines.join('\n');
}
