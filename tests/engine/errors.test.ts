// Every error becomes a JavaScript exception naming the op, with libtorch's text; the process lives on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, zeros, full, conv2d, cat, randn, liveTensors, Generator, autocast, fromTypedArray, type Tensor } from '../../src/engine/index.js';

type Coded = Error & { code?: string };
const is = (op: string, re: RegExp, code: string) => (e: Coded) => {
  assert.match(e.message, new RegExp(`^${op}: `), `message names the op: ${e.message}`);
  assert.match(e.message, re);
  assert.equal(e.code, code);
  return true;
};

test('shape mismatch', () => {
  const a = zeros([2, 3]), b = zeros([4, 5]);
  assert.throws(() => a.matmul(b), is('matmul', /cannot be multiplied \(2x3 and 4x5\)/, 'ERR_IMAGIC_TORCH'));
  assert.throws(() => a.add(zeros([4])), is('binary', /size of tensor a \(3\) must match the size of tensor b \(4\)/, 'ERR_IMAGIC_TORCH'));
  assert.throws(() => a.view(4), is('view', /shape '\[4\]' is invalid for input of size 6/, 'ERR_IMAGIC_TORCH'));
  assert.throws(() => cat([a, zeros([2, 2, 2])], 0), is('cat', /Tensors must have same number of dimensions/, 'ERR_IMAGIC_TORCH'));
  assert.throws(() => conv2d(zeros([1, 3, 8, 8]), zeros([4, 2, 3, 3])), is('conv2d', /expected input\[1, 3, 8, 8\] to have 2 channels/, 'ERR_IMAGIC_TORCH'));
});

test('dtype mismatch', () => {
  const f = zeros([2, 2]), i = zeros([2, 2], { dtype: 'int64' });
  assert.throws(() => f.matmul(i), is('matmul', /expected .*same dtype|expected m1 and m2 to have the same dtype/, 'ERR_IMAGIC_TORCH'));
  assert.throws(() => zeros([2], { dtype: 'float16x' as 'float16' }), is('full', /unknown dtype 'float16x'/, 'ERR_IMAGIC_ARG'));
  assert.throws(() => fromTypedArray(new Float32Array(3), [2, 2]), is('fromBuffer', /12 bytes but shape \[2, 2\] of float32 needs 16/, 'ERR_IMAGIC_ARG'));
});

test('unknown device and CUDA asked for where it is absent', () => {
  assert.throws(() => zeros([2], { device: 'tpu' }), is('full', /unknown device 'tpu': Expected one of cpu, cuda/, 'ERR_IMAGIC_ARG'));
  assert.throws(() => zeros([2]).to('gpu:0'), is('to', /unknown device 'gpu:0'/, 'ERR_IMAGIC_ARG'));
  if (!tensor([0]).device.startsWith('cuda') && !process.env.IMAGIC_TEST_DEVICE) {
    assert.throws(() => zeros([2], { device: 'cuda' }), is('full', /'cuda' was asked for, but CUDA is not available/, 'ERR_IMAGIC_ARG'));
    assert.throws(() => zeros([2]).to('cuda:0'), is('to', /CUDA is not available/, 'ERR_IMAGIC_ARG'));
    assert.throws(() => new Generator(0, 'cuda'), is('Generator', /CUDA is not available/, 'ERR_IMAGIC_ARG'));
    assert.throws(() => autocast({ deviceType: 'cuda' }, () => 0), is('autocastEnter', /CUDA is not available/, 'ERR_IMAGIC_ARG'));
  }
});

test('out of memory is an exception, not a crash', () => {
  const live = liveTensors();
  assert.throws(() => zeros([1e12]), is('full', /can't allocate memory/, 'ERR_IMAGIC_OOM'));
  assert.throws(() => randn([4e6, 1e6]), (e: Coded) => e.code === 'ERR_IMAGIC_OOM');
  assert.equal(liveTensors(), live, 'nothing leaked');
  assert.equal(full([2], 3).sum().item(), 6, 'the engine still works');
});

test('a disposed tensor used again', () => {
  const t = tensor([1, 2]);
  const u = tensor([3, 4]);
  t.dispose();
  assert.throws(() => u.add(t), is('binary', /'b' is a disposed tensor/, 'ERR_IMAGIC_ARG'));
  assert.throws(() => cat([u, t]), is('cat', /disposed tensor/, 'ERR_IMAGIC_ARG'));
});

test('bad arguments: wrong types, non-integers, item() of many elements', () => {
  const t = tensor([1, 2, 3]);
  assert.throws(() => t.reshape(1.5), is('reshape', /expected an integer/, 'ERR_IMAGIC_ARG'));
  assert.throws(() => t.item(), is('item', /exactly one element, this one has 3/, 'ERR_IMAGIC_ARG'));
  assert.throws(() => t.add('x' as unknown as Tensor), is('binary', /expected a tensor for 'b'/, 'ERR_IMAGIC_ARG'));
  assert.throws(() => t.backward(), is('backward', /scalar output/, 'ERR_IMAGIC_ARG'));
  assert.throws(() => t.sum().backward(), is('backward', /does not require grad/, 'ERR_IMAGIC_TORCH'));
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
});
