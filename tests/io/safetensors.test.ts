// safetensors: exact round trips of every dtype, the on-disk layout of the spec, header validation
// errors, and values of the golden file written by Python (safetensors.torch.save_file).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, closeSync, copyFileSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tensor, fromTypedArray, liveTensors, type Tensor } from '../../src/engine/index.js';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors, SafetensorsError, SafetensorsReader } from '../../src/io/safetensors.js';
import { fixturePath } from '../fixtures.js';
import { errorOf } from '../helpers.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-st-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A file with the given header JSON (or raw header bytes) and data bytes. */
function craft(name: string, header: unknown, data: Buffer | number = 0, declaredLength?: number): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  const file = path.join(tmp, name);
  writeFileSync(file, Buffer.concat([len, json, typeof data === 'number' ? Buffer.alloc(data) : data]));
  return file;
}

test('every dtype round-trips with exact values', () => {
  const f16 = [0, 1, -2, 0.5, 65504, -0.333251953125, 6.103515625e-5, 5.960464477539063e-8]; // exactly representable in float16
  const bf16 = [0, 1, -2, 3.140625, -9.5367431640625e-7, 3.3895313892515355e38];
  const tensors: Record<string, Tensor> = {
    f32: fromTypedArray(new Float32Array([0, -1.5, 3.25, 1e-30, -3.4028234663852886e38, Math.fround(0.1), NaN, -Infinity]), [2, 4]),
    f16: tensor(f16, { dtype: 'float16' }),
    bf16: tensor(bf16, { dtype: 'bfloat16' }),
    f64: fromTypedArray(new Float64Array([Math.PI, -1e300, 5e-324, 0.1]), [4]),
    i64: fromTypedArray(new BigInt64Array([9007199254740993n, -9223372036854775808n, 9223372036854775807n, -1n]), [2, 2]),
    i32: fromTypedArray(new Int32Array([-2147483648, 2147483647, 0, -1]), [4]),
    i16: fromTypedArray(new Int16Array([-32768, 32767, 1]), [3]),
    i8: fromTypedArray(new Int8Array([-128, 127, 0]), [3]),
    u8: fromTypedArray(new Uint8Array([0, 255, 128]), [3]),
    bool: tensor([[true, false], [false, true]]),
    scalar: tensor(7.5),
    empty: fromTypedArray(new Float32Array(0), [0, 3]),
  };
  const file = path.join(tmp, 'all.safetensors');
  saveSafetensors(file, tensors, { format: 'pt', note: 'round trip' });
  const header = readSafetensorsHeader(file);
  assert.deepEqual(header.metadata, { format: 'pt', note: 'round trip' });
  const loaded = loadSafetensors(file);
  assert.deepEqual([...loaded.keys()].sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const back = loaded.get(name)!;
    assert.equal(back.dtype, t.dtype, name);
    assert.deepEqual(back.shape, t.shape, name);
    assert.deepEqual(back.toTypedArray(), t.toTypedArray(), name);
  }
  assert.deepEqual(loaded.get('f16')!.toFlatArray(), f16);
  assert.deepEqual(loaded.get('bf16')!.toFlatArray(), bf16);
  assert.deepEqual(loaded.get('i64')!.toTypedArray(), new BigInt64Array([9007199254740993n, -9223372036854775808n, 9223372036854775807n, -1n]));
  assert.deepEqual(loaded.get('bool')!.toFlatArray(), [1, 0, 0, 1]);
  assert.equal(loaded.get('scalar')!.item(), 7.5);
  for (const t of [...Object.values(tensors), ...loaded.values()]) t.dispose();
});

test('the written file follows the spec byte for byte (header, sorted offsets, little-endian data)', () => {
  const file = path.join(tmp, 'spec.safetensors');
  const b = tensor([1, -2], { dtype: 'float16' });
  const a = tensor([[1, 2]], { dtype: 'bfloat16' });
  const c = fromTypedArray(new Int32Array([258]), [1]);
  saveSafetensors(file, new Map([['b', b], ['a', a], ['c', c]]));
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  assert.deepEqual(header, {
    a: { dtype: 'BF16', shape: [1, 2], data_offsets: [0, 4] },
    b: { dtype: 'F16', shape: [2], data_offsets: [4, 8] },
    c: { dtype: 'I32', shape: [1], data_offsets: [8, 12] },
  });
  // bf16 1.0 = 0x3F80, 2.0 = 0x4000; f16 1.0 = 0x3C00, -2.0 = 0xC000; int32 258 = 0x00000102
  assert.deepEqual([...bytes.subarray(8 + n)], [0x80, 0x3f, 0x00, 0x40, 0x00, 0x3c, 0x00, 0xc0, 0x02, 0x01, 0x00, 0x00]);
  assert.equal(statSync(file).size, 8 + n + 12);
  for (const t of [a, b, c]) t.dispose();
});

test('saving is atomic: a failed write leaves no file and no temporary', () => {
  const dir = mkdtempSync(path.join(tmp, 'atomic-'));
  const file = path.join(dir, 'x.safetensors');
  const t = tensor([1, 2, 3]);
  saveSafetensors(file, { x: t });
  const before = readFileSync(file);
  const meta = tensor([1]).to({ device: 'meta' });
  assert.throws(() => saveSafetensors(file, { x: t, y: meta }));
  assert.deepEqual(readFileSync(file), before, 'the old file is untouched');
  assert.deepEqual(readdirSync(dir), ['x.safetensors'], 'no temporary file is left behind');
  t.dispose();
  meta.dispose();
});

test('a truncated download is reported as truncated (the golden tiny-sd unet cut short)', () => {
  const file = path.join(tmp, 'cut.safetensors');
  copyFileSync(fixturePath('golden/tiny-sd/unet/diffusion_pytorch_model.safetensors'), file);
  chmodSync(file, 0o644);
  const full = statSync(file).size;
  const fd = openSync(file, 'r+');
  ftruncateSync(fd, full - 1000);
  closeSync(fd);
  const e = errorOf(() => readSafetensorsHeader(file));
  assert.ok(e instanceof SafetensorsError);
  assert.match(e.message, /cut\.safetensors: not a valid safetensors file: tensor '.+' ends at byte \d+ but the file has \d+ \(truncated download\?\)/);
  // cut inside the header itself
  const fd2 = openSync(file, 'r+');
  ftruncateSync(fd2, 100);
  closeSync(fd2);
  assert.match(errorOf(() => readSafetensorsHeader(file)).message, /the header needs \d+ bytes but the file has 100 \(truncated\?\)/);
});

test('header validation: garbage, length beyond the file, overlaps, unknown dtypes, bad offsets', () => {
  let seed = 12345;
  const garbage = Buffer.alloc(4096, 0).map(() => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff);
  writeFileSync(path.join(tmp, 'garbage.safetensors'), garbage);
  assert.match(errorOf(() => readSafetensorsHeader(path.join(tmp, 'garbage.safetensors'))).message, /not a valid safetensors file: header length \d+ is beyond/);
  writeFileSync(path.join(tmp, 'tiny.safetensors'), Buffer.from([1, 2, 3]));
  assert.match(errorOf(() => readSafetensorsHeader(path.join(tmp, 'tiny.safetensors'))).message, /only 3 bytes/);
  assert.match(errorOf(() => readSafetensorsHeader(craft('notjson.safetensors', '{"a": nope}'))).message, /the header is not JSON/);
  assert.match(errorOf(() => readSafetensorsHeader(craft('text.safetensors', 'hello world'))).message, /does not start with '\{'/);
  assert.match(errorOf(() => readSafetensorsHeader(craft('long.safetensors', '{}', 0, 5000))).message,
    /the header needs 5008 bytes but the file has 10/);
  const overlap = craft('overlap.safetensors', {
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
  }, 24);
  assert.match(errorOf(() => readSafetensorsHeader(overlap)).message, /tensors 'a' and 'b' overlap/);
  const unknown = craft('dtype.safetensors', { a: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2);
  assert.match(errorOf(() => readSafetensorsHeader(unknown)).message, /tensor 'a' has unsupported dtype 'F8_E4M3' \(supported: F32, F16, BF16/);
  const size = craft('size.safetensors', { a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, 16);
  assert.match(errorOf(() => readSafetensorsHeader(size)).message, /tensor 'a' has 16 bytes for shape \[2,3\] of float32/);
  const negative = craft('neg.safetensors', { a: { dtype: 'U8', shape: [4], data_offsets: [-4, 0] } }, 4);
  assert.match(errorOf(() => readSafetensorsHeader(negative)).message, /tensor 'a' has bad data_offsets \[-4, 0\]/);
  const shape = craft('shape.safetensors', { a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } });
  assert.match(errorOf(() => readSafetensorsHeader(shape)).message, /tensor 'a' has a bad shape/);
  const meta = craft('meta.safetensors', { __metadata__: { n: 3 } });
  assert.match(errorOf(() => readSafetensorsHeader(meta)).message, /__metadata__ is not a map of strings/);
  assert.match(errorOf(() => readSafetensorsHeader(path.join(tmp, 'absent.safetensors'))).message, /absent\.safetensors: cannot open/);
  // a zero-length tensor at the offset where the next one starts is not an overlap
  const zero = craft('zero.safetensors', {
    a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
    e: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
  }, 4);
  assert.equal(readSafetensorsHeader(zero).tensors.size, 2);
});

test('golden.safetensors (written by Python): values and dtypes as torch reads them', () => {
  const file = fixturePath('golden/golden.safetensors');
  const header = readSafetensorsHeader(file);
  assert.equal(header.tensors.get('sched.alphas_cumprod')!.dtype, 'float32');
  assert.deepEqual(header.tensors.get('imagic.A_timesteps')!.shape, [20]);
  const t = loadSafetensors(file, { keys: ['sched.alphas_cumprod', 'imagic.A_timesteps'] });
  const alphas = t.get('sched.alphas_cumprod')!.toFlatArray();
  // torch: safetensors.torch.load_file(...)['sched.alphas_cumprod'][:2].tolist()
  assert.equal(alphas[0], 0.9991499781608582);
  assert.equal(alphas[1], 0.9982960224151611);
  assert.equal(alphas[999], 0.00466009508818388);
  // and the scaled_linear schedule they come from, computed here in float64
  let prod = 1;
  for (let i = 0; i < 1000; i++) {
    const beta = (Math.sqrt(0.00085) + (i / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085))) ** 2;
    prod *= 1 - beta;
    assert.ok(Math.abs(alphas[i]! - prod) <= 2e-6 * Math.max(prod, 1e-3), `alphas_cumprod[${i}]`);
  }
  const ts = t.get('imagic.A_timesteps')!;
  assert.equal(ts.dtype, 'int64');
  assert.deepEqual(ts.toFlatArray().slice(0, 5), [818, 138, 43, 406, 594]);
  for (const x of t.values()) x.dispose();
});

test('loadSafetensors converts floats only; the reader reuses one buffer and leaks nothing', async () => {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setImmediate(resolve));
  const file = fixturePath('golden/golden.safetensors');
  const live = liveTensors();
  const t = loadSafetensors(file, { keys: ['sched.alphas_cumprod', 'imagic.A_timesteps'], dtype: 'float64' });
  assert.equal(t.get('sched.alphas_cumprod')!.dtype, 'float64');
  assert.equal(t.get('sched.alphas_cumprod')!.toFlatArray()[0], 0.9991499781608582);
  assert.equal(t.get('imagic.A_timesteps')!.dtype, 'int64');
  for (const x of t.values()) x.dispose();
  const r = new SafetensorsReader(file);
  try {
    const first = r.read('sched.alphas_cumprod', { dtype: 'float16' });
    assert.equal(first.dtype, 'float16');
    assert.equal(first.toFlatArray()[0], 0.9990234375); // the float16 nearest 0.99914998 (spacing 2^-11 below 1)
    first.dispose();
    assert.match(errorOf(() => r.read('nope')).message, /no tensor named 'nope'/);
  } finally {
    r.close();
  }
  assert.match(errorOf(() => r.read('sched.alphas_cumprod')).message, /closed/);
  assert.equal(liveTensors(), live);
});
