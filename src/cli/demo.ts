// `imagic demo` (npm run demo): an Imagic edit on the embedded Shapes-64 model, end to end. Renders
// an input (a large red circle on the left, on white), edits it to "a red square" with the same code
// as `imagic edit`, writes the input, the output and an eta contact sheet, and prints what the
// domain's evaluator reads in the input and the output.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { readImage, writePng } from '../io/image.js';
import { captionOf, checkEdit, nominalSpec, readAttributes, renderShape, type ReadResult, type ShapeAttributes } from '../shapes/index.js';
import { resolveSettings } from '../pipelines/imagic/index.js';
import { edit } from './edit.js';
import { logger } from './model.js';

export interface DemoArgs {
  model: string;
  outputDir: string;
  target: string;
  input: ShapeAttributes;
  device: string;
  threads?: number;
  quiet?: boolean;
}

export const DEMO_INPUT: ShapeAttributes = { shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' };
export const DEMO_TARGET = 'a red square';
export const DEMO_ETAS = [0.6, 0.8, 1.0, 1.2, 1.4];

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
    sheet: path.join(a.outputDir, 'etas.png'),
    session: path.join(a.outputDir, 'session.imagic'),
  };
  await writePng(files.input, renderShape(nominalSpec(a.input)));
  const settings = resolveSettings('shapes');
  log(`imagic demo: "${captionOf(a.input)}" -> "${a.target}" on the embedded Shapes-64 model (${settings.stepsA} stage A + ${settings.stepsB} stage B steps, then etas ${DEMO_ETAS.join(', ')})`);
  const r = await edit(files.input, a.target, {
    model: a.model, dtype: 'float32', device: a.device, threads: a.threads, quiet: a.quiet,
    preset: 'shapes', output: files.sheet, etas: DEMO_ETAS, seeds: [0], session: files.session, force: true, restart: true,
  });
  if (r.interrupted) return { ok: false, files };
  const chosen = r.outputs.find((f) => f.includes(`eta${settings.eta.toFixed(2)}-`))!;
  copyFileSync(chosen, files.output);

  const input = readAttributes(await readImage(files.input));
  const output = readAttributes(await readImage(files.output));
  const check = checkEdit(input, output, a.target);
  const out = (m: string) => process.stdout.write(`${m}\n`);
  out('');
  out(`evaluator, input:   ${describe(input)}`);
  out(`evaluator, output:  ${describe(output)}   (eta ${settings.eta})`);
  out(`edit "${a.target}": ${check.success ? 'succeeded' : `failed (${check.failed.join(', ') || check.reason})`}; ${check.preserved ? 'the rest preserved' : `changed: ${check.changed.join(', ') || check.reason}`}`);
  for (const f of r.outputs.filter((o) => o !== files.sheet)) {
    const eta = /eta([\d.]+)-/.exec(f)?.[1];
    const c = checkEdit(input, readAttributes(await readImage(f)), a.target);
    out(`  eta ${eta}: ${c.success ? 'success' : 'no edit'}, ${c.preserved ? 'preserved' : `changed ${c.changed.join(', ')}`}`);
  }
  out('');
  out(`input:         ${files.input}`);
  out(`output:        ${files.output}`);
  out(`eta sheet:     ${files.sheet} (each eta also as ${path.join(a.outputDir, 'etas-eta*.png')})`);
  out(`session:       ${files.session} (imagic render ${files.session} --eta 1.0,1.2 -o more.png)`);
  out(`demo took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { ok: check.success && check.preserved, files };
}
