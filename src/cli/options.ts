// Option parsers shared by the commands: validated numbers, eta and seed lists, output checks.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { INVERTED_SEED } from '../pipelines/imagic/index.js';

export function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

export function num(name: string, opts: { positive?: boolean } = {}) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got '${v}'`);
    if (opts.positive && n <= 0) throw new InvalidArgumentError(`${name} must be positive, got '${v}'`);
    return n;
  };
}

function parseNumber(s: string, what: string): number {
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${what}: '${s}' is not a number`);
  return n;
}

/** 'auto' (choose among candidates by their scores), '0.7', '0.5,0.6,0.7', or a range 'start:end:step' with the end included: '0.4:0.9:0.1'. */
export function parseEtas(spec: string): number[] | 'auto' {
  const s = spec.trim();
  if (s.toLowerCase() === 'auto') return 'auto';
  if (s.includes(':')) {
    const parts = s.split(':');
    if (parts.length !== 3) throw new InvalidArgumentError(`eta range must be start:end:step, got '${spec}'`);
    const [a, b, st] = parts.map((p) => parseNumber(p, 'eta range')) as [number, number, number];
    if (st <= 0) throw new InvalidArgumentError(`eta range step must be positive, got '${spec}'`);
    if (b < a) throw new InvalidArgumentError(`eta range end must not be below its start, got '${spec}'`);
    const n = Math.floor((b - a) / st + 1e-9);
    if (n > 1000) throw new InvalidArgumentError(`eta range '${spec}' has ${n + 1} values; at most 1000`);
    return Array.from({ length: n + 1 }, (_, i) => Number((a + i * st).toFixed(10)));
  }
  const list = s.split(',').map((p) => parseNumber(p, 'eta'));
  if (list.length === 0) throw new InvalidArgumentError('no eta given');
  return list;
}

/**
 * '3', '0,1,2', an inclusive range '0:4', or a list of those ('inverted,0:3'); 'inverted' (INVERTED_SEED)
 * is the input's own inverted noise, a candidate of --eta auto.
 */
export function parseSeeds(spec: string): number[] {
  const one = (p: string) => {
    const n = Number(p);
    if (p.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`seed must be an integer >= 0 or 'inverted', got '${p}'`);
    return n;
  };
  const out: number[] = [];
  for (const item of spec.trim().split(',').map((p) => p.trim())) {
    if (item.toLowerCase() === 'inverted') {
      out.push(INVERTED_SEED);
    } else if (item.includes(':')) {
      const parts = item.split(':');
      if (parts.length !== 2) throw new InvalidArgumentError(`seed range must be first:last, got '${item}'`);
      const [a, b] = parts.map(one) as [number, number];
      if (b < a || b - a >= 1000) throw new InvalidArgumentError(`seed range '${item}' must go up and hold at most 1000 seeds`);
      for (let i = a; i <= b; i++) out.push(i);
    } else {
      out.push(one(item));
    }
  }
  if (out.length > 1000) throw new InvalidArgumentError(`'${spec}' names ${out.length} seeds; at most 1000`);
  if (new Set(out).size !== out.length) throw new InvalidArgumentError(`'${spec}' names a seed twice`);
  return out;
}

/** Refuses to overwrite existing files (unless force) and output folders that do not exist. Checked before any work. */
export function checkOutputs(files: string[], force: boolean): void {
  for (const f of files) {
    if (path.extname(f).toLowerCase() !== '.png') throw new Error(`output must be a .png file, got '${f}'`);
    const dir = path.dirname(path.resolve(f));
    if (!existsSync(dir)) throw new Error(`the output folder ${dir} does not exist`);
  }
  const existing = files.filter((f) => existsSync(f));
  if (existing.length > 0 && !force) throw new Error(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''} (use --force to overwrite)`);
}

/** 'out.png' -> 'out-<suffix>.png' */
export function withSuffix(file: string, suffix: string): string {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}-${suffix}${ext || '.png'}`;
}

/** Ctrl-C handling for long work: the first press asks to stop at the next step, the second quits at once. */
export function interruptFlag(log: (m: string) => void): { stopped: () => boolean; dispose: () => void } {
  let stop = false;
  const handler = () => {
    if (stop) process.exit(130);
    stop = true;
    log('\nstopping after this step (progress is saved; Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', handler);
  return { stopped: () => stop, dispose: () => process.off('SIGINT', handler) };
}
