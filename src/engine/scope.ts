// Deterministic memory release, in the spirit of tfjs `tidy`: every tensor created inside a scope is
// disposed when the scope ends, except the tensors it returns and those marked with keep(). GPU
// memory therefore never waits for JavaScript's garbage collector (whose finalizer is a safety net).

/** What a scope tracks: anything with a native resource. */
export interface Trackable {
  dispose(): void;
  /** Set by keep(): never disposed by a scope. */
  kept: boolean;
}

const stack: Trackable[][] = [];

/** Called by every Tensor constructor. */
export function track(t: Trackable): void {
  const top = stack[stack.length - 1];
  if (top !== undefined) top.push(t);
}

/** Marks tensors as owned by the caller: no scope will dispose them. Returns its argument. */
export function keep<X extends Trackable>(t: X): X {
  t.kept = true;
  return t;
}

/** Lets a scope dispose a tensor that was kept earlier. */
export function unkeep<X extends Trackable>(t: X): X {
  t.kept = false;
  track(t);
  return t;
}

function isTrackable(x: unknown): x is Trackable {
  return typeof x === 'object' && x !== null && typeof (x as Trackable).dispose === 'function' && 'kept' in x;
}

/** Every Trackable reachable from a returned value (arrays, Maps and plain objects, any depth). */
function collect(value: unknown, out: Set<Trackable>, seen = new Set<unknown>()): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  if (isTrackable(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, seen);
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except those it returns (found in arrays, Maps
 * and plain objects) and kept ones. Returned tensors move to the enclosing scope. If `fn` throws,
 * everything it created is disposed. `fn` must be synchronous: a tensor created after an `await`
 * would escape the scope, so a returned Promise is an error.
 *
 *   const y = tidy(() => x.mul(2).add(1));   // the intermediate x*2 is freed here
 */
export function tidy<R>(fn: () => R): R {
  const scope: Trackable[] = [];
  stack.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of scope) if (!t.kept) t.dispose();
    throw new Error('tidy(): the function must be synchronous (it returned a Promise); use tidy inside the async code');
  }
  const returned = new Set<Trackable>();
  collect(result, returned);
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (t.kept) continue;
    if (returned.has(t)) parent?.push(t);
    else t.dispose();
  }
  return result;
}

/**
 * Returns `next` after disposing `prev`, an intermediate that nothing reads any more, as PyTorch's
 * refcounting would free it: a chain of ops then holds two tensors at a time instead of all of them
 * until its scope ends (autograd keeps what it saved for the backward pass on its own). Only for
 * tensors the code itself created, never the caller's.
 */
export function release<T extends Trackable>(prev: Trackable, next: T): T {
  if ((prev as unknown) !== next && !prev.kept) prev.dispose();
  return next;
}

/** Disposes every Trackable found in `value` (a tensor, or arrays/objects of them). */
export function dispose(value: unknown): void {
  const found = new Set<Trackable>();
  collect(value, found);
  for (const t of found) t.dispose();
}

/** How deep the current scope nesting is (0 outside any tidy). */
export function scopeDepth(): number {
  return stack.length;
}
