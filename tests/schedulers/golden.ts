// Shared loading of the scheduler goldens (tests/fixtures/golden, made by make_golden.py with diffusers).
import { readFileSync } from 'node:fs';
import { keep, type Tensor } from '../../src/engine/index.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { fixturePath } from '../fixtures.js';

let cache: Map<string, Tensor> | undefined;

/** golden.safetensors tensors by key (loaded once, kept for the whole test file). */
export function golden(key: string): Tensor {
  if (cache === undefined) {
    cache = loadSafetensors(fixturePath('golden/golden.safetensors'), {
      keys: ['sched.alphas_cumprod', 'ddim.step_sample', 'ddim.step_eps', 'ddim.step_t981_prev', 'ddim.step_t1_prev', 'add_noise.noise', 'add_noise.t500'],
    });
    for (const t of cache.values()) keep(t);
  }
  const t = cache.get(key);
  if (t === undefined) throw new Error(`no golden tensor ${key}`);
  return t;
}

export const goldenJson = JSON.parse(readFileSync(fixturePath('golden/golden.json'), 'utf8')) as {
  ddim_timesteps_50: number[];
  ddim_timesteps_10: number[];
  ddpm_timesteps_10: number[];
  tiny_configs: { scheduler: Record<string, unknown> };
};

/** max |a - b| over all elements. */
export function maxAbsDiff(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const x = 'toFlatArray' in a ? a.toFlatArray() : Array.from(a);
  const y = 'toFlatArray' in b ? b.toFlatArray() : Array.from(b);
  if (x.length !== y.length) throw new Error(`length ${x.length} != ${y.length}`);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}
