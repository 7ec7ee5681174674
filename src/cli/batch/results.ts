// A batch's out dir: batch.json says which batch it belongs to (so that another batch is not mixed in),
// results.jsonl holds one line per finished row (the rerun skips those), written by one process only.
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BatchRow } from './csv.js';
import type { BatchSettings } from '../../queue/job.js';
import type { RowResult } from './run-row.js';

export interface BatchJson {
  version: 1;
  /** A hash of the CSV's rows and the shared settings: the same command gives the same id. */
  id: string;
  csv: string;
  rows: number;
  settings: BatchSettings;
  created: string;
}

/** Also names the batch's jobs on a shared queue, so the out dir is part of it. */
export function batchId(csv: string, outDir: string, rows: BatchRow[], settings: BatchSettings): string {
  return createHash('sha256').update(JSON.stringify({ csv: path.resolve(csv), outDir: path.resolve(outDir), rows, settings })).digest('hex').slice(0, 16);
}

export const batchFiles = (outDir: string) => ({
  batch: path.join(outDir, 'batch.json'),
  results: path.join(outDir, 'results.jsonl'),
  report: path.join(outDir, 'report.html'),
  rows: path.join(outDir, 'rows'),
});

/** Claims the out dir for this batch: a new or same-batch dir is fine; another batch's needs `force` (which clears it). */
export function claimOutDir(outDir: string, b: BatchJson, force: boolean): 'new' | 'resumed' | 'replaced' {
  const f = batchFiles(outDir);
  mkdirSync(outDir, { recursive: true });
  if (existsSync(f.batch)) {
    let other: BatchJson | null = null;
    try {
      other = JSON.parse(readFileSync(f.batch, 'utf8')) as BatchJson;
    } catch {
      // unreadable: treated as another batch's
    }
    if (other?.id === b.id) return 'resumed';
    if (!force) {
      throw new Error(`${outDir} belongs to another batch (${other ? `${other.csv}, ${other.rows} rows, started ${other.created}` : 'its batch.json is unreadable'}): choose another out dir, or --force to replace its results`);
    }
    for (const p of [f.results, f.report, f.rows]) rmSync(p, { recursive: true, force: true });
    writeFileSync(f.batch, `${JSON.stringify(b, null, 2)}\n`);
    return 'replaced';
  }
  writeFileSync(f.batch, `${JSON.stringify(b, null, 2)}\n`);
  return 'new';
}

/** The finished rows by key (a key written twice counts once: the first). A torn last line is ignored. */
export function readResults(outDir: string): Map<string, RowResult> {
  const file = batchFiles(outDir).results;
  const out = new Map<string, RowResult>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as RowResult;
      if (!out.has(r.key)) out.set(r.key, r);
    } catch {
      // an interrupted append
    }
  }
  return out;
}

export function appendResult(outDir: string, r: RowResult): void {
  const file = batchFiles(outDir).results;
  // After a torn last line (a killed writer), start on a line of its own: only the last byte tells.
  let torn = false;
  if (existsSync(file)) {
    const size = statSync(file).size;
    if (size > 0) {
      const fd = openSync(file, 'r');
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      closeSync(fd);
      torn = last[0] !== 0x0a;
    }
  }
  appendFileSync(file, `${torn ? '\n' : ''}${JSON.stringify(r)}\n`);
}
