// The op families on the device under test (IMAGIC_TEST_DEVICE, default 'cpu'; 'cuda' on the GPU
// machine) in float32 and bfloat16, forward and backward, against float32 CPU results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator, randn, tidy, conv2d, groupNorm, layerNorm, linear, scaledDotProductAttention, interpolate, embedding,
  tensor, optim, autocast, mseLoss, type Tensor, type DType,
} from '../../src/engine/index.js';
import { assertClose } from '../helpers.js';

const device = process.env.IMAGIC_TEST_DEVICE ?? 'cpu';

interface Case {
  name: string;
  inputs: number[][]; // shapes; all get gradients
  f: (...xs: Tensor[]) => Tensor;
}

const cases: Case[] = [
  { name: 'linear', inputs: [[4, 8], [6, 8], [6]], f: (x, w, b) => linear(x!, w!, b!) },
  { name: 'conv2d stride/pad/groups', inputs: [[2, 4, 9, 9], [6, 2, 3, 3], [6]], f: (x, w, b) => conv2d(x!, w!, b!, { stride: 2, padding: 1, groups: 2 }) },
  { name: 'groupNorm + silu', inputs: [[2, 8, 5, 5], [8], [8]], f: (x, w, b) => groupNorm(x!, 4, w!, b!, 1e-5).silu() },
  { name: 'layerNorm + gelu', inputs: [[3, 5, 16], [16], [16]], f: (x, w, b) => layerNorm(x!, [16], w!, b!).gelu() },
  { name: 'attention', inputs: [[2, 3, 7, 8], [2, 3, 5, 8], [2, 3, 5, 8]], f: (q, k, v) => scaledDotProductAttention(q!, k!, v!) },
  { name: 'causal attention', inputs: [[1, 2, 6, 8], [1, 2, 6, 8], [1, 2, 6, 8]], f: (q, k, v) => scaledDotProductAttention(q!, k!, v!, { isCausal: true }) },
  { name: 'interpolate nearest x2 + bilinear', inputs: [[1, 3, 5, 6]], f: (x) => interpolate(interpolate(x!, { scaleFactor: 2 }), { size: [7, 9], mode: 'bilinear' }) },
  { name: 'softmax over matmul', inputs: [[2, 5, 6], [2, 6, 4]], f: (a, b) => a!.matmul(b!).softmax(-1) },
];

function run(c: Case, dev: string, dtype: DType): { out: number[]; grads: number[][] } {
  return tidy(() => {
    const gen = new Generator(1234);
    // Noise comes from a CPU generator, so both runs see the same inputs.
    const xs = c.inputs.map((s) => randn(s, { generator: gen, device: dev }).to(dtype).requiresGrad_(true));
    const y = c.f(...xs);
    const probe = randn(y.shape, { generator: gen, device: dev }).to(dtype);
    y.mul(probe).sum().backward();
    return { out: y.float().toFlatArray(), grads: xs.map((x) => x.grad!.float().toFlatArray()) };
  });
}

for (const c of cases) {
  for (const dtype of ['float32', 'bfloat16'] as DType[]) {
    test(`${c.name} on ${device} in ${dtype}: forward and gradients match float32 on the CPU`, () => {
      const ref = run(c, 'cpu', 'float32');
      const got = run(c, device, dtype);
      // bfloat16 keeps 8 mantissa bits: a few percent on sums of many products.
      const [atol, rtol] = dtype === 'float32' ? [2e-5, 1e-4] : [6e-2, 5e-2];
      assertClose(got.out, ref.out, atol, rtol, `${c.name} output`);
      got.grads.forEach((g, i) => assertClose(g, ref.grads[i]!, atol * 4, rtol, `${c.name} grad ${i}`));
    });
  }
}

test(`embedding on ${device}`, () => {
  const w = tensor([[0, 1], [2, 3], [4, 5]], { device });
  const ids = tensor([[2, 0], [1, 1]], { dtype: 'int64', device });
  assert.deepEqual(embedding(ids, w).toArray(), [[[4, 5], [0, 1]], [[2, 3], [2, 3]]]);
});

test(`a CPU generator gives the same noise on ${device}`, () => {
  const a = randn([1000], { generator: new Generator(7) });
  const b = randn([1000], { generator: new Generator(7), device });
  assert.equal(b.device.split(':')[0], device.split(':')[0]);
  assertClose(b, a, 0, 0);
});

test(`Adam on ${device} follows the CPU run; autocast on ${device}`, () => {
  const fit = (dev: string) => {
    const gen = new Generator(5);
    const w = randn([8, 4], { generator: gen, device: dev }).requiresGrad_(true);
    const x = randn([16, 4], { generator: gen, device: dev });
    const t = randn([16, 8], { generator: gen, device: dev });
    const opt = new optim.Adam([w], { lr: 1e-2 });
    for (let i = 0; i < 20; i++) tidy(() => {
      opt.zeroGrad();
      mseLoss(linear(x, w), t).backward();
      opt.step();
    });
    opt.disposeState();
    return w.toFlatArray();
  };
  assertClose(fit(device), fit('cpu'), 1e-5, 1e-4);
  const deviceType = device.startsWith('cuda') ? 'cuda' : 'cpu';
  const y = autocast({ deviceType, dtype: 'bfloat16' }, () => linear(randn([2, 4], { device }), randn([3, 4], { device })));
  assert.equal(y.dtype, 'bfloat16');
});
