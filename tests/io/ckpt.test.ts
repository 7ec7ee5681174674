// PyTorch .ckpt reading with the restricted unpickler: exact values of every dtype, views and
// shared storages against safetensors written by torch (tests/fixtures/ckpt/make_ckpt_fixtures.py),
// pickle protocols 2 and 4, zip64, and the refusals: code-running globals (without running them),
// unknown classes, legacy, compressed and truncated files.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { liveTensors, toBytes } from '../../src/engine/index.js';
import { CkptError, loadCkpt, PyObject, readCkpt, readCkptHeader } from '../../src/io/ckpt.js';
import { CheckpointError } from '../../src/io/diffusers.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { fixturePath } from '../fixtures.js';
import { errorOf } from '../helpers.js';

const MARKER = '/tmp/imagic-ckpt-fixture-was-executed'; // what the malicious fixtures would create
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-ckpt-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const fx = (name: string): string => fixturePath(path.join('ckpt', name));

const expected = loadSafetensors(fx('sd-like-expected.safetensors'));
after(() => {
  for (const t of expected.values()) t.dispose();
});

for (const name of ['sd-like.ckpt', 'sd-like-p4.ckpt', 'sd-like-zip64.ckpt']) {
  test(`${name}: every tensor equals torch's, bit for bit`, () => {
    const live = liveTensors();
    const { tensors, other } = readCkpt(fx(name));
    try {
      assert.deepEqual([...tensors.keys()].sort(), [...expected.keys()].sort());
      for (const [k, want] of expected) {
        const got = tensors.get(k)!;
        assert.equal(got.dtype, want.dtype, k);
        assert.deepEqual(got.shape, want.shape, k);
        assert.deepEqual(toBytes(got), toBytes(want), k);
      }
      assert.deepEqual(other, {
        global_step: 5, epoch: 1, lr: 0.5, name: 'tiny', nothing: null, steps: [1, 2, 3], big: 2n ** 70n, nested: { a: [1, 'b'] },
      });
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    assert.equal(liveTensors(), live);
  });
}

test('the header describes views without reading data; keys and dtype conversion', () => {
  const h = readCkptHeader(fx('sd-like.ckpt'));
  const tr = h.tensors.get('transposed')!;
  assert.deepEqual([tr.dtype, tr.shape, tr.stride, tr.offset], ['float32', [4, 2, 3], [1, 12, 4], 0]);
  const a = h.tensors.get('shared_a')!;
  const b = h.tensors.get('shared_b')!;
  assert.equal(a.storageKey, b.storageKey);
  assert.deepEqual([b.shape, b.stride, b.offset], [[7, 1], [1, 1], 3]);
  const sub = loadCkpt(fx('sd-like.ckpt'), { keys: ['shared_b', 'f16', 'i64'], dtype: 'float32' }, h);
  try {
    assert.deepEqual([...sub.keys()], ['shared_b', 'f16', 'i64']);
    assert.deepEqual(sub.get('shared_b')!.toArray(), [[1.5], [2], [2.5], [3], [3.5], [4], [4.5]]);
    assert.equal(sub.get('f16')!.dtype, 'float32'); // floats converted
    assert.equal(sub.get('i64')!.dtype, 'int64'); // integers keep theirs
  } finally {
    for (const t of sub.values()) t.dispose();
  }
  assert.match(errorOf(() => loadCkpt(fx('sd-like.ckpt'), { keys: ['nope'] })).message, /no tensor named 'nope'/);
});

test('a top-level state dict (no state_dict key)', () => {
  const { tensors, other } = readCkpt(fx('bare.pt'));
  assert.deepEqual([...tensors.keys()], ['w']);
  assert.deepEqual(tensors.get('w')!.toArray(), [[1, 1], [1, 1]]);
  assert.deepEqual(other, { step: 3 });
  for (const t of tensors.values()) t.dispose();
});

for (const [name, global] of [['malicious-os-system.ckpt', 'os.system'], ['malicious-eval.ckpt', 'builtins.eval']]) {
  test(`${name} is refused, naming ${global}, and nothing runs`, () => {
    rmSync(MARKER, { force: true });
    for (const unknownGlobals of ['refuse', 'placeholder'] as const) {
      const e = errorOf(() => readCkpt(fx(name), { unknownGlobals }));
      assert.ok(e instanceof CkptError && e instanceof CheckpointError);
      assert.equal((e as CkptError).refused, true);
      assert.ok(e.message.includes(`refused: unpickling it would call ${global}, which can run arbitrary code`), e.message);
      assert.match(e.message, /safetensors/);
    }
    assert.equal(existsSync(MARKER), false, 'the malicious pickle ran');
  });
}

test('an unknown class (a Lightning callback) is refused by name, or left inert as a placeholder', () => {
  const e = errorOf(() => readCkpt(fx('lightning-like.ckpt')));
  assert.ok(e instanceof CkptError && e.refused);
  assert.ok(e.message.includes('it needs pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint, a class imagic does not rebuild'), e.message);
  assert.match(e.message, /--allow-ckpt-objects \(API: \{ unknownGlobals: 'placeholder' \}\)/);

  const { tensors, other } = readCkpt(fx('lightning-like.ckpt'), { unknownGlobals: 'placeholder' });
  assert.deepEqual(tensors.get('w')!.toArray(), [0, 1, 2]);
  for (const t of tensors.values()) t.dispose();
  assert.equal(other.global_step, 7);
  const cb = (other.callbacks as Record<string, unknown>).cb;
  assert.ok(cb instanceof PyObject);
  assert.equal(cb.qualname, 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint');
  assert.deepEqual(cb.state, new Map<string, unknown>([['monitor', 'val/loss'], ['best_model_score', null]]));
});

test('numpy scalars decode to numbers; an unsupported dtype is named', () => {
  const { tensors, other } = readCkpt(fx('numpy-scalars.ckpt'));
  for (const t of tensors.values()) t.dispose();
  assert.deepEqual(other, { global_step: 840000, big: 2n ** 60n, lr: 0.5, loss: 0.125, flag: true, u: 200 });
  assert.match(errorOf(() => readCkpt(fx('uint16.ckpt'))).message, /dtype torch\.uint16, which imagic does not support/);
});

test('legacy, compressed, truncated and foreign files: clear errors', () => {
  assert.match(errorOf(() => readCkpt(fx('legacy.pt'))).message, /legacy \(pre-1\.6, non-zip\) torch\.save file.*re-save it with a recent torch.*safetensors/);
  assert.match(errorOf(() => readCkpt(fx('compressed.ckpt'))).message, /'sd-like\/[\w.]+' is compressed \(zip method 8\).*stored \(uncompressed\)/);

  const full = statSync(fx('sd-like.ckpt')).size;
  for (const [cut, want] of [[full - 10, /end-of-central-directory.*truncated/], [3000, /truncated/], [10, /truncated/]] as const) {
    const f = path.join(tmp, `cut-${cut}.ckpt`);
    copyFileSync(fx('sd-like.ckpt'), f);
    truncateSync(f, cut);
    const e = errorOf(() => readCkpt(f));
    assert.ok(e instanceof CkptError, String(e));
    assert.match(e.message, want);
  }
  const st = path.join(tmp, 'renamed.ckpt');
  copyFileSync(fx('sd-like-expected.safetensors'), st);
  assert.match(errorOf(() => readCkpt(st)).message, /looks like a safetensors file/);
  const junk = path.join(tmp, 'junk.ckpt');
  writeFileSync(junk, 'hello world, this is not a checkpoint at all');
  assert.match(errorOf(() => readCkpt(junk)).message, /not a PyTorch checkpoint/);
  assert.match(errorOf(() => readCkpt(path.join(tmp, 'missing.ckpt'))).message, /cannot open/);
});
