// Deterministic memory release: tidy scopes, keep, dispose, and the addon's live-tensor counter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, tidy, keep, unkeep, dispose, liveTensors, Tensor, Generator, optim, scopeDepth, zeros } from '../../src/engine/index.js';

test('10,000 iterations of a small op loop inside scopes leave the live-tensor count flat', () => {
  const w = tensor([[0.5, -0.25], [0.125, 1]], { requiresGrad: true });
  const x = randn([8, 2], { generator: new Generator(3) });
  const before = liveTensors();
  for (let i = 0; i < 10_000; i++) {
    tidy(() => {
      const y = x.matmul(w).tanh().add(1).mul(0.5);
      const loss = y.square().mean();
      loss.backward();
      w.grad = null;
    });
  }
  assert.equal(liveTensors(), before);
  dispose([w, x]);
  assert.equal(liveTensors(), before - 2);
});

test('tidy disposes intermediates and returns results to the enclosing scope', () => {
  const before = liveTensors();
  let inner: Tensor | undefined;
  const outer = tidy(() => {
    const kept = tidy(() => {
      inner = tensor([1, 2, 3]).mul(2);
      return { value: inner.add(1), list: [inner.sum()] };
    });
    assert.equal(inner!.isDisposed, true, 'intermediate freed at the end of the inner scope');
    assert.deepEqual(kept.value.toFlatArray(), [3, 5, 7]);
    assert.equal(kept.list[0]!.item(), 12);
    return kept.value;
  });
  assert.equal(outer.isDisposed, false);
  assert.deepEqual(outer.toFlatArray(), [3, 5, 7]);
  assert.equal(liveTensors(), before + 1, 'only the returned tensor survives');
  outer.dispose();
  assert.equal(liveTensors(), before);
});

test('keep() survives scopes; unkeep() hands a tensor back to a scope', () => {
  const before = liveTensors();
  let k: Tensor | undefined;
  tidy(() => {
    k = keep(tensor([1]));
    tensor([2]);
  });
  assert.equal(k!.isDisposed, false);
  assert.equal(liveTensors(), before + 1);
  tidy(() => {
    unkeep(k!);
  });
  assert.equal(k!.isDisposed, true);
  assert.equal(liveTensors(), before);
});

test('a throwing scope frees what it created and rethrows', () => {
  const before = liveTensors();
  assert.throws(() => tidy(() => {
    tensor([1, 2]).add(1);
    throw new Error('boom');
  }), /boom/);
  assert.equal(liveTensors(), before);
  assert.equal(scopeDepth(), 0);
});

test('an async function in tidy is refused and its tensors are freed', () => {
  const before = liveTensors();
  assert.throws(() => tidy((async () => tensor([1])) as unknown as () => Tensor), /must be synchronous/);
  assert.equal(liveTensors(), before);
});

test('views keep their base alive after the base handle is disposed', () => {
  const base = tensor([[1, 2], [3, 4]]);
  const row = base.select(0, 1);
  base.dispose();
  assert.deepEqual(row.toFlatArray(), [3, 4]);
  row.dispose();
});

test('dispose() is idempotent; a disposed tensor cannot be used again', () => {
  const t = zeros([2]);
  t.dispose();
  t.dispose();
  assert.equal(t.isDisposed, true);
  assert.throws(() => t.add(1), (e: Error & { code?: string }) => /disposed tensor/.test(e.message) && e.code === 'ERR_IMAGIC_ARG');
  assert.throws(() => t.shape, /disposed/);
});

test('the garbage collector releases unreferenced handles (safety net)', { skip: typeof globalThis.gc !== 'function' && 'run node with --expose-gc' }, async () => {
  const before = liveTensors();
  for (let i = 0; i < 1000; i++) tensor([i]);
  assert.ok(liveTensors() >= before + 1000);
  for (let i = 0; i < 5; i++) {
    globalThis.gc!();
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(liveTensors() < before + 1000, `finalizers ran (${liveTensors() - before} left)`);
});

test('optimizer state is kept even when created inside a scope', () => {
  const p = tensor([1, 2], { requiresGrad: true });
  const opt = new optim.Adam([p], { lr: 0.1 });
  tidy(() => {
    p.square().sum().backward();
    opt.step();
  });
  const state = opt.stateDict().tensors;
  assert.equal(state['exp_avg.0']!.isDisposed, false);
  opt.disposeState();
  assert.equal(state['exp_avg.0']!.isDisposed, true);
});
