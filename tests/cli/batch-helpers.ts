// Shared by the batch tests: the model, fast settings, Shapes-64 inputs, results.jsonl.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { BatchArgs } from '../../src/cli/batch/index.js';
import type { RowResult } from '../../src/cli/batch/run-row.js';
import { nominalSpec, renderShape, type ShapeAttributes } from '../../src/shapes/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MODEL = path.join(ROOT, 'models', 'shapes-64');
/** Every stage runs; a row takes a few seconds. */
export const FAST: Omit<BatchArgs, 'output'> = { model: MODEL, stepsA: 5, stepsB: 5, steps: 10, strength: 0.6, jobs: 1, device: 'cpu', quiet: true };

export async function writeShape(file: string, a: ShapeAttributes): Promise<void> {
  const img = renderShape(nominalSpec(a));
  await sharp(img.data, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(file);
}

export function readJsonl(file: string): RowResult[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as RowResult);
}

