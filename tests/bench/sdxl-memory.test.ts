// The SDXL memory benchmark's accounting (bench/sdxl-accounting.ts, bench/sdxl-memory.ts) on the tiny SDXL
// fixture: parameters counted on 'meta' equal the safetensors' shapes, LoRA's count equals the layers'
// shapes, the static terms follow stages.ts, the extrapolation is exact on linear data, and one small
// activation measurement runs in a child process as the benchmark runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { countParams, readConfigs, refusal, safetensorsParams, SETTINGS, staticMemory } from '../../bench/sdxl-accounting.js';
import { estimates, extrapolate, GPU_BYTES } from '../../bench/sdxl-memory.js';
import type { CaseMeasurement, MemoryCase } from '../../bench/sdxl-memory-case.js';
import { fixturePath, repoRoot } from '../fixtures.js';

const TINY = fixturePath('golden/tiny-sdxl');
const tiny = countParams(readConfigs(TINY));
const weightsFile = (c: string) => path.join(TINY, c, c.startsWith('text') ? 'model.safetensors' : 'diffusion_pytorch_model.safetensors');
const setting = (id: string) => SETTINGS.find((s) => s.id === id)!;

test('parameters counted on meta equal the tiny SDXL checkpoint, component by component', () => {
  for (const c of ['unet', 'text_encoder', 'text_encoder_2', 'vae'] as const) assert.equal(tiny[c], safetensorsParams(weightsFile(c)), c);
  assert.equal(tiny.total, tiny.unet + tiny.text_encoder + tiny.text_encoder_2 + tiny.vae);
  assert.equal(Object.values(tiny.unetBlocks).reduce((a, b) => a + b, 0), tiny.unet);
});

test('LoRA rank 4: the module built on the meta UNet counts what the target layers\' shapes give', () => {
  const header = JSON.parse((() => { const b = readFileSync(weightsFile('unet')); return b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8'); })()) as Record<string, { shape: number[] }>;
  const attn = Object.entries(header).filter(([k]) => /\.attn[12]\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(k));
  const convs = Object.entries(header).filter(([k]) => /\.resnets\.\d+\.conv[12]\.weight$/.test(k));
  const byHand = (e: [string, { shape: number[] }][]) => e.reduce((acc, [, { shape: s }]) => acc + (s.length === 2 ? 4 * (s[0]! + s[1]!) : 4 * s[1]! * s[2]! * s[3]! + s[0]! * 4), 0);
  const [a, ar] = tiny.lora;
  assert.equal(a!.layers, attn.length);
  assert.equal(a!.params, byHand(attn));
  assert.equal(a!.params, a!.paramsFromShapes);
  assert.equal(ar!.layers, attn.length + convs.length);
  assert.equal(ar!.params, byHand(attn) + byHand(convs));
  assert.equal(a!.mergedWeightParams, attn.reduce((acc, [, { shape }]) => acc + shape.reduce((x, y) => x * y, 1), 0));
});

test('static memory follows stages.ts: full fine-tuning 16 B per UNet parameter; LoRA 16 B per adapter; bf16 weights 2 B', () => {
  const sum = (r: Record<string, number>) => Object.values(r).reduce((x, y) => x + y, 0);
  assert.equal(sum(staticMemory(tiny, setting('B all fp32'))), 4 * tiny.total + 12 * tiny.unet);
  assert.equal(sum(staticMemory(tiny, setting('B LoRA bf16'))), 2 * tiny.total + 16 * tiny.lora[0]!.params);
  assert.equal(sum(staticMemory(tiny, setting('C bf16'))), 2 * tiny.total);
  assert.equal(sum(staticMemory(tiny, setting('A fp32 + mp'))), 4 * tiny.total + 16 * (77 * 2048 + 1280) + 2 * tiny.unetOnGradPathA);
  assert.match(refusal({ ...setting('B all fp32'), weights: 'bfloat16' })!, /float32/);
  // full size: the verdict on full fine-tuning needs no activation at all
  const full = countParams(readConfigs(fixturePath('golden/sdxl-manifest.json')));
  assert.equal(full.unet, 2_567_463_684);
  assert.equal(full.lora[0]!.params, 5_806_080);
  assert.ok(16 * full.unet > GPU_BYTES, 'weights + grads + Adam alone exceed 24 GiB');
});

test('extrapolation: exact on a line in latent pixels, and the estimate adds static, activations and the CUDA context', () => {
  const mk = (size: number, bytes: number): CaseMeasurement => ({ case: { kind: 'stageA', size, ckpt: false, dtype: 'float32' }, rss_built: 0, step_peak: bytes, step_peaks: [bytes], params: 0, step_ms: [1], retained: [0], live_tensors: 0 });
  const f = (px: number) => 50e6 + 1000 * px;
  const [e] = extrapolate([mk(16, f(256)), mk(32, f(1024)), mk(24, f(576))], [16, 32], 24);
  assert.ok(Math.abs(e!.a - 50e6) < 1 && Math.abs(e!.b - 1000) < 1e-6);
  assert.ok(Math.abs(e!.at1024_fp32 - f(16384)) < 1 && Math.abs(e!.check!.error) < 1e-9);
  const est = estimates(tiny, [e!]).find((x) => x.setting === 'A bf16')!;
  assert.ok(Math.abs(est.total - (2 * tiny.total + 16 * (77 * 2048 + 1280) + f(16384) / 2 + 1e9)) < 1);
});

test('one activation measurement on the tiny SDXL UNet runs in a child process (stage A at 32x32 latents)', () => {
  const c: MemoryCase = { kind: 'stageA', size: 32, ckpt: false, dtype: 'float32' };
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist/bench/sdxl-memory-case.js'), '--configs', TINY, '--case', JSON.stringify(c), '--steps', '1'], {
    encoding: 'utf8', env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' },
  });
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as CaseMeasurement;
  assert.equal(m.params, tiny.unet);
  assert.ok(Number.isFinite(m.loss) && m.loss! > 0);
  // the forward keeps more than the output alone ([1, 4, 32, 32] float32) and less than a GB
  assert.ok(m.saved_after_forward! > 4 * 32 * 32 * 4 && m.saved_after_forward! < 1e9, `${m.saved_after_forward}`);
  assert.ok(m.step_peak > 0 && m.step_peak < 1e9, `${m.step_peak}`);
  // no tensor leaked: the UNet's parameters plus latent, noise, time_ids, the embedding and the pooled one
  const unetKeys = Object.keys(JSON.parse((() => { const b = readFileSync(weightsFile('unet')); return b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8'); })()) as object).filter((k) => k !== '__metadata__').length;
  assert.equal(m.live_tensors, unetKeys + 5);
});
