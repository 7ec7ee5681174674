// `imagic demo` (npm run demo): an Imagic edit on the embedded Shapes-64 model, end to end. Renders
// an input (a large red circle on the left, on white), edits it to "a red square" with the same code
// as `imagic edit` (the automatic choice of eta and seed by CLIP score and CLIP-I, with the model's
// own CLIP), writes the input, the output, the candidates and their scores, and prints what the
// domain's evaluator reads in the input, the output and every candidate.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { readImage, writePng } from '../io/image.js';
import { contactSheet } from '../io/sheet.js';
import { captionOf, checkEdit, nominalSpec, readAttributes, renderShape, type ReadResult, type ShapeAttributes } from '../shapes/index.js';
import { AUTO_SEEDS, resolveSettings, seedLabel } from '../pipelines/imagic/index.js';
import { edit } from './edit.js';
import { formatEta, formatScoreTable, seedText } from './metrics.js';
import { logger } from './model.js';

export interface DemoArgs {
  model: string;
  outputDir: string;
  target: string;
  input: ShapeAttributes;
  device: string;
  threads?: number;
  quiet?: boolean;
  /** Default: the model's own clip/. */
  clipModel?: string;
}

export const DEMO_INPUT: ShapeAttributes = { shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' };
export const DEMO_TARGET = 'a red square';

function describe(r: ReadResult): string {
  if (r.attributes === null) return `unreadable (${r.reason})`;
  const c = r.measured.centre;
  return `${captionOf(r.attributes)}  [side ${r.measured.side} px, centre (${c?.x.toFixed(1)}, ${c?.y.toFixed(1)}), fill ${r.measured.fillRatio.toFixed(2)}]`;
}

export async function demo(a: DemoArgs): Promise<{ ok: boolean; files: Record<string, string> }> {
  const log = logger(a.quiet);
  if (!existsSync(path.join(a.model, 'model_index.json'))) throw new Error(`the embedded model is missing at ${a.model} (expected a diffusers folder): is this a complete checkout?`);
  const t0 = Date.now();
  mkdirSync(a.outputDir, { recursive: true });
  const files = {
    input: path.join(a.outputDir, 'input.png'),
    output: path.join(a.outputDir, 'output.png'),
    sheet: path.join(a.outputDir, 'candidates.png'),
    session: path.join(a.outputDir, 'session.imagic'),
  };
  await writePng(files.input, renderShape(nominalSpec(a.input)));
  const settings = resolveSettings('shapes');
  log(`imagic demo: "${captionOf(a.input)}" -> "${a.target}" on the embedded Shapes-64 model (${settings.stepsA} stage A + ${settings.stepsB} stage B steps, then the automatic choice among etas ${settings.autoEtas.join(',')} x seeds ${AUTO_SEEDS.map(seedLabel).join(',')})`);
  // The same path as `imagic edit` (--eta auto, the default).
  const r = await edit(files.input, a.target, {
    model: a.model, dtype: 'float32', device: a.device, threads: a.threads, quiet: a.quiet,
    preset: 'shapes', output: files.output, session: files.session, force: true, restart: true, clipModel: a.clipModel,
  });
  if (r.interrupted || !r.report?.choice) return { ok: false, files };
  const report = r.report;
  const choice = report.choice!;
  const out = (m: string) => process.stdout.write(`${m}\n`);
  if (a.quiet) out(formatScoreTable(report)); // otherwise edit printed it

  // The candidates as a sheet: rows seeds, columns etas.
  const etas = [...new Set(report.candidates.map((c) => c.eta))].sort((x, y) => x - y);
  const seeds = [...new Set(report.candidates.map((c) => c.seed))];
  const byKey = new Map(report.candidates.map((c) => [`${c.eta}/${c.seed}`, c]));
  const rows = await Promise.all(seeds.map((s) => Promise.all(etas.map((e) => readImage(byKey.get(`${e}/${s}`)!.file)))));
  await writePng(files.sheet, await contactSheet(rows, { rowLabels: seeds.map(seedText), colLabels: etas.map((e) => `eta ${formatEta(e)}`) }));

  const input = readAttributes(await readImage(files.input));
  const output = readAttributes(await readImage(files.output));
  const check = checkEdit(input, output, a.target);
  out('');
  out(`evaluator, input:   ${describe(input)}`);
  out(`evaluator, output:  ${describe(output)}   (eta ${formatEta(choice.eta)}, ${seedText(choice.seed)}: ${report.metrics.alignment} ${choice.alignment.toFixed(2)}, ${report.metrics.preservation} ${choice.preservation.toFixed(4)})`);
  out(`edit "${a.target}": ${check.success ? 'succeeded' : `failed (${check.failed.join(', ') || check.reason})`}; ${check.preserved ? 'the rest preserved' : `changed: ${check.changed.join(', ') || check.reason}`}`);
  // What the evaluator reads in every candidate: how often the rule's pick could have done better.
  const perEta = etas.map((e) => ({ e, n: 0, ok: 0, kept: 0 }));
  for (const c of report.candidates) {
    const k = checkEdit(input, readAttributes(await readImage(c.file)), a.target);
    const row = perEta.find((p) => p.e === c.eta)!;
    row.n++;
    if (k.success) row.ok++;
    if (k.success && k.preserved) row.kept++;
  }
  const total = perEta.reduce((t, p) => ({ ok: t.ok + p.ok, kept: t.kept + p.kept }), { ok: 0, kept: 0 });
  out(`evaluator, all ${report.candidates.length} candidates: ${total.ok} edited, ${total.kept} edited with the rest preserved; by eta (edited / also preserved, of ${seeds.length} noises): ${perEta.map((p) => `${formatEta(p.e)} ${p.ok}/${p.kept}`).join(', ')}`);
  out('');
  out(`input:         ${files.input}`);
  out(`output:        ${files.output} (the automatic choice)`);
  out(`candidates:    ${files.sheet} (rows: seeds, columns: etas; each also in ${path.join(a.outputDir, 'output-candidates')})`);
  out(`scores:        ${r.outputs.filter((f) => f !== files.output).join(', ')}`);
  out(`session:       ${files.session} (more candidates: imagic render ${files.session} --eta auto --seeds inverted,0:7 -o more.png)`);
  out(`demo took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { ok: check.success && check.preserved, files };
}
