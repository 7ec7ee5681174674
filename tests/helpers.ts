// Test helpers: numeric comparison and a finite-difference gradient check (as torch.autograd.gradcheck).
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { Tensor, tensor, noGrad, tidy } from '../src/engine/index.js';
import type { Module } from '../src/nn/index.js';

/** Asserts |actual - expected| <= atol + rtol * |expected| elementwise, naming the first bad index. */
export function assertClose(actual: Tensor | ArrayLike<number>, expected: ArrayLike<number> | Tensor, atol = 1e-5, rtol = 1e-5, what = 'value'): void {
  const a = actual instanceof Tensor ? actual.toFlatArray() : Array.from(actual);
  const e = expected instanceof Tensor ? expected.toFlatArray() : Array.from(expected);
  assert.equal(a.length, e.length, `${what}: length ${a.length} != expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - e[i]!);
    if (!(d <= atol + rtol * Math.abs(e[i]!)) && !(Number.isNaN(a[i]) && Number.isNaN(e[i]))) {
      assert.fail(`${what}[${i}]: got ${a[i]}, expected ${e[i]} (|diff| ${d.toExponential(3)} > ${atol} + ${rtol}*|expected|)`);
    }
  }
}

/** Deterministic pseudo-random values in [-1, 1) for test inputs (no libtorch RNG involved). */
export function pseudoRandom(n: number, seed = 1): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s / 2 ** 31 - 1);
  }
  return out;
}

/** A float64 tensor of the given shape filled with pseudoRandom values (scaled, shifted). */
export function randomTensor(shape: number[], seed = 1, scale = 1, shift = 0): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(pseudoRandom(n, seed).map((v) => v * scale + shift), { dtype: 'float64' }).reshape(shape);
}

/**
 * Checks the analytic gradient of sum(f(inputs) * probe) with respect to every input against
 * central finite differences in float64. Inputs must be float64 leaf tensors.
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; atol?: number; rtol?: number; name?: string } = {}): void {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-6, rtol = opts.rtol ?? 1e-4;
  for (const x of inputs) assert.equal(x.dtype, 'float64', 'gradcheck needs float64 inputs');
  tidy(() => {
    const leaves = inputs.map((x) => x.detach().clone().requiresGrad_(true));
    const out0 = f(...leaves);
    const probe = randomTensor(out0.shape, 7).to(out0.dtype);
    const objective = (...xs: Tensor[]) => f(...xs).mul(probe).sum();
    objective(...leaves).backward();
    leaves.forEach((leaf, k) => {
      const analytic = leaf.grad;
      assert.ok(analytic !== null, `${opts.name ?? 'gradcheck'}: input ${k} got no gradient`);
      const base = leaf.detach().toFlatArray();
      const numeric: number[] = [];
      noGrad(() => {
        for (let i = 0; i < base.length; i++) {
          const eval1 = (delta: number) => tidy(() => {
            const v = base.slice();
            v[i]! += delta;
            const xs = leaves.map((l, j) => (j === k ? tensor(v, { dtype: 'float64' }).reshape(l.shape) : l.detach()));
            return objective(...xs).item();
          });
          numeric.push((eval1(eps) - eval1(-eps)) / (2 * eps));
        }
      });
      assertClose(analytic!, numeric, atol, rtol, `${opts.name ?? 'gradcheck'} d/dinput${k}`);
    });
  });
}

/**
 * Collects garbage and lets Node run pending finalizers, so that liveTensors() counts only what is
 * still referenced (handles dropped without dispose() are otherwise freed at an unpredictable turn).
 * Needs node --expose-gc (the test runner passes it); a no-op without it.
 */
export async function settleHandles(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The error fn throws (the test fails if it throws none). */
export function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected an error');
}

/** Asserts that a model's parameters carry exactly the manifest's keys and shapes (`position_ids` buffers aside). */
export function assertKeysMatch(what: string, params: [string, Tensor][], manifest: Record<string, number[]>): void {
  const want = Object.fromEntries(Object.entries(manifest).filter(([k]) => !k.endsWith('position_ids')));
  const got = Object.fromEntries(params.map(([k, t]) => [k, t.shape]));
  const missing = Object.keys(want).filter((k) => !(k in got));
  const extra = Object.keys(got).filter((k) => !(k in want));
  const shaped = Object.keys(want).filter((k) => k in got && got[k]!.join() !== want[k]!.join());
  assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5), shaped: shaped.slice(0, 5) }, { missing: [], extra: [], shaped: [] }, what);
}

/** Writes a copy of a safetensors file with its header edited (tensor data kept). */
export function editSafetensorsHeader(src: string, dst: string, edit: (h: Record<string, unknown>) => void): void {
  const buf = readFileSync(src);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  edit(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = openSync(dst, 'w');
  writeSync(fd, len);
  writeSync(fd, Buffer.from(json));
  writeSync(fd, buf.subarray(8 + n));
  closeSync(fd);
}

/** max |a - b| over every element (the temporaries freed). */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return noGrad(() => tidy(() => a.sub(b).abs().max().item()));
}

/** Every parameter and buffer of `a` equals `b`'s exactly: same keys, shapes, dtypes, max |diff| 0. Returns how many were compared. */
export function assertSameWeights(a: Module, b: Module, what: string): number {
  const sa = a.stateDict();
  const sb = b.stateDict();
  assert.deepEqual(Object.keys(sa).sort(), Object.keys(sb).sort(), `${what}: key sets differ`);
  for (const [k, t] of Object.entries(sa)) {
    assert.deepEqual(t.shape, sb[k]!.shape, `${what}.${k}: shape`);
    assert.equal(t.dtype, sb[k]!.dtype, `${what}.${k}: dtype`);
    const d = maxAbsDiff(t, sb[k]!);
    assert.equal(d, 0, `${what}.${k}: max |diff| ${d}`);
  }
  return Object.keys(sa).length;
}
