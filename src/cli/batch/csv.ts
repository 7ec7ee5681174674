// The batch file of `imagic batch`: a CSV with an image and a target text per row (TEdBench's column
// names `img_name` and `target_text` as they are), optionally source_text, eta, seed and preset. Every
// problem is found before any work starts, and said with its row number.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { PRESETS, type PresetName } from '../../pipelines/imagic/index.js';
import type { BatchRow } from '../../queue/job.js';

export type { BatchRow };


const IMAGE_COLUMNS = ['image', 'img_name'];
const TEXT_COLUMNS = ['target_text'];

function slug(s: string, max: number): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, max).replace(/-+$/, '') || 'x';
}

/** Reads and checks the CSV; `allowOutside`: rows may name images outside the CSV's folder. */
export function readBatchCsv(file: string, o: { allowOutside?: boolean } = {}): BatchRow[] {
  let text: string;
  try {
    if (statSync(file).isDirectory()) throw new Error('it is a folder');
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read the batch file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
  }
  let records: Record<string, string>[];
  try {
    records = parse(text, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true }) as Record<string, string>[];
  } catch (e) {
    throw new Error(`${file} is not a valid CSV: ${(e as Error).message}`);
  }
  if (records.length === 0) throw new Error(`${file} has no rows (a header line, then one line per edit: image,target_text)`);
  const columns = Object.keys(records[0]!);
  const imageCol = IMAGE_COLUMNS.find((c) => columns.includes(c));
  const textCol = TEXT_COLUMNS.find((c) => columns.includes(c));
  if (!imageCol || !textCol) {
    const missing = [...(imageCol ? [] : ['image (or img_name)']), ...(textCol ? [] : ['target_text'])];
    throw new Error(`${file} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(' and ')} (its columns: ${columns.join(', ') || 'none'})`);
  }
  const dir = path.dirname(path.resolve(file));
  const errors: string[] = [];
  const keys = new Set<string>();
  const rows = records.map((r, index): BatchRow => {
    const line = `row ${index + 1}`;
    const imageName = r[imageCol] ?? '';
    const target = r[textCol] ?? '';
    if (imageName === '') errors.push(`${line}: no image`);
    if (target === '') errors.push(`${line}: no target_text`);
    const image = path.resolve(dir, imageName);
    const rel = path.relative(dir, image);
    if (imageName !== '' && !o.allowOutside && (rel.startsWith('..') || path.isAbsolute(rel))) {
      errors.push(`${line}: ${imageName} is outside the CSV's folder ${dir} (use --allow-outside to allow it)`);
    }
    const num = (col: string, check: (n: number) => boolean, what: string): number | undefined => {
      const v = r[col];
      if (v === undefined || v === '') return undefined;
      const n = Number(v);
      if (!check(n)) errors.push(`${line}: ${col} must be ${what}, got '${v}'`);
      return n;
    };
    const eta = num('eta', Number.isFinite, 'a number');
    const seed = num('seed', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0');
    const preset = r.preset === undefined || r.preset === '' ? undefined : r.preset as PresetName;
    if (preset !== undefined && !(preset in PRESETS)) errors.push(`${line}: unknown preset '${preset}' (${Object.keys(PRESETS).join(', ')})`);
    let key = `${String(index + 1).padStart(3, '0')}-${slug(path.basename(imageName, path.extname(imageName)), 24)}-${slug(target, 40)}`;
    while (keys.has(key)) key += '-';
    keys.add(key);
    return { index, key, image, imageName, target, source: r.source_text || undefined, eta, seed, preset };
  });
  if (errors.length > 0) {
    const shown = errors.length > 20 ? [...errors.slice(0, 20), `... and ${errors.length - 20} more`] : errors;
    throw new Error(`${file}: ${errors.length} problem${errors.length > 1 ? 's' : ''}:\n  ${shown.join('\n  ')}`);
  }
  return rows;
}
