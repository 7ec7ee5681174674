// Module: checkpoint-key names, strict loading, meta-device building, in-place moves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, zeros, Generator, liveTensors, type Tensor } from '../../src/engine/index.js';
import { Module, ModuleList, Linear, Conv2d, GroupNorm, LayerNorm, Embedding, StateDictError } from '../../src/nn/index.js';
import { assertClose } from '../helpers.js';

class Block extends Module {
  readonly norm: GroupNorm;
  readonly conv: Conv2d;
  constructor(device?: string) {
    super();
    this.norm = this.module('norm', new GroupNorm(2, 4, 1e-5, true, { device }));
    this.conv = this.module('conv', new Conv2d(4, 4, 3, { padding: 1, device }));
  }
}
class Net extends Module {
  readonly embed: Embedding;
  readonly blocks: ModuleList<Block>;
  readonly proj: Linear;
  readonly ln: LayerNorm;
  constructor(device?: string) {
    super();
    const o = { device, generator: new Generator(0) };
    this.embed = this.module('embed', new Embedding(10, 4, o));
    this.blocks = this.module('blocks', new ModuleList([new Block(device), new Block(device)]));
    this.proj = this.module('proj', new Linear(4, 3, false, o));
    this.ln = this.module('ln', new LayerNorm(3, 1e-5, o));
  }
}

test('parameter names are the dotted checkpoint keys, in registration order', () => {
  const net = new Net();
  assert.deepEqual(net.namedParameters().map(([k, t]) => `${k}:${t.shape.join('x')}`), [
    'embed.weight:10x4',
    'blocks.0.norm.weight:4', 'blocks.0.norm.bias:4', 'blocks.0.conv.weight:4x4x3x3', 'blocks.0.conv.bias:4',
    'blocks.1.norm.weight:4', 'blocks.1.norm.bias:4', 'blocks.1.conv.weight:4x4x3x3', 'blocks.1.conv.bias:4',
    'proj.weight:3x4', 'ln.weight:3', 'ln.bias:3',
  ]);
  assert.equal(net.numParameters(), 40 + 2 * (8 + 144 + 4) + 12 + 6);
});

test('building layers leaves exactly their parameters alive (no temporaries leak)', () => {
  const live = liveTensors();
  const lin = new Linear(8, 4, true, { generator: new Generator(2) });
  const conv = new Conv2d(2, 3, 3);
  assert.equal(liveTensors(), live + 4);
  lin.dispose();
  conv.dispose();
  assert.equal(liveTensors(), live);
});

test('default initialization follows PyTorch: uniform(+-1/sqrt(fan_in)), norms at 1 and 0', () => {
  const lin = new Linear(16, 32, true, { generator: new Generator(1) });
  const w = lin.weight.toFlatArray();
  assert.ok(w.every((v) => Math.abs(v) <= 0.25));
  assert.ok(Math.max(...w) > 0.2 && Math.min(...w) < -0.2, 'the whole range is used');
  const ln = new LayerNorm(3);
  assert.deepEqual(ln.weight.toFlatArray(), [1, 1, 1]);
  assert.deepEqual(ln.bias.toFlatArray(), [0, 0, 0]);
  const again = new Linear(16, 32, true, { generator: new Generator(1) });
  assert.deepEqual(again.weight.toFlatArray(), w, 'same generator seed, same weights');
});

test('loadStateDict copies values; the forward pass uses them', () => {
  const lin = new Linear(2, 2);
  lin.loadStateDict({ weight: tensor([[1, 2], [3, 4]]), bias: tensor([0.5, -0.5]) });
  assertClose(lin.forward(tensor([[1, 1]])), [3.5, 6.5]);
});

test('strict loading lists every missing, unexpected and mis-shaped key at once', () => {
  const net = new Net();
  const sd: Record<string, Tensor> = { ...net.stateDict() };
  delete sd['blocks.1.conv.bias'];
  delete sd['ln.weight'];
  sd['blocks.0.extra.weight'] = zeros([1]);
  sd['proj.weight'] = zeros([4, 3]);
  sd['text_model.embeddings.position_ids'] = zeros([1, 77]);
  let err: StateDictError | undefined;
  try {
    net.loadStateDict(sd, { ignore: ['text_model.embeddings.position_ids'], source: 'test checkpoint' });
  } catch (e) {
    err = e as StateDictError;
  }
  assert.ok(err instanceof StateDictError);
  assert.deepEqual(err.missing, ['blocks.1.conv.bias', 'ln.weight']);
  assert.deepEqual(err.unexpected, ['blocks.0.extra.weight']);
  assert.deepEqual(err.mismatched, [{ key: 'proj.weight', expected: [3, 4], got: [4, 3] }]);
  assert.match(err.message, /^test checkpoint does not match the model:/);
  assert.match(err.message, /proj.weight: model \[3, 4\], checkpoint \[4, 3\]/);
});

test('a model built on the meta device allocates nothing and materializes on load', () => {
  const live = liveTensors();
  const meta = new Net('meta');
  assert.equal(liveTensors(), live + 12);
  assert.ok(meta.parameters().every((p) => p.device === 'meta'));
  const real = new Net();
  meta.loadStateDict(real.stateDict());
  assert.ok(meta.parameters().every((p) => p.device === 'cpu'));
  assert.deepEqual(meta.proj.weight.toFlatArray(), real.proj.weight.toFlatArray());
});

test('to() converts in place: the same Tensor objects now hold the new dtype', () => {
  const lin = new Linear(3, 2);
  const w = lin.weight;
  const before = w.toFlatArray();
  lin.to({ dtype: 'float64' });
  assert.equal(lin.weight, w);
  assert.equal(w.dtype, 'float64');
  assertClose(w.toFlatArray(), before, 0, 0);
  lin.requiresGrad_(true);
  lin.forward(tensor([[1, 2, 3]], { dtype: 'float64' })).sum().backward();
  assert.deepEqual(w.grad!.toArray(), [[1, 2, 3], [1, 2, 3]]);
});
