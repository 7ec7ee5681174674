// Single-file LDM checkpoints (SD v1, SD 2.x): each tiny golden single file loads, with its YAML, to
// exactly the weights of its diffusers folder and the same outputs; convert writes a folder that
// loads identically; bad inputs fail clearly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { noGrad, randn, manualSeed } from '../../src/engine/index.js';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import { convertSingleFile, inspectSingleFile, loadSingleFile, SingleFileError, LdmConfigError } from '../../src/io/single-file/index.js';
import { disposeStableDiffusion, loadStableDiffusion, type StableDiffusion } from '../../src/pipelines/stable-diffusion.js';
import { fixturePath } from '../fixtures.js';
import { assertSameWeights, editSafetensorsHeader, maxAbsDiff } from '../helpers.js';

const dir = fixturePath('golden/single-file');
const CASES = [
  { name: 'sd1', file: path.join(dir, 'tiny-sd1-ldm.safetensors'), yaml: path.join(dir, 'tiny-sd1-ldm.yaml'), folder: path.join(dir, 'tiny-sd1-ldm-diffusers'), heads: 4 },
  { name: 'sd2', file: path.join(dir, 'tiny-sd2-ldm.safetensors'), yaml: path.join(dir, 'tiny-sd2-ldm.yaml'), folder: fixturePath('golden/tiny-sd2'), heads: 4 },
];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-single-file-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Same UNet and text-encoder outputs (token ids, since the tiny models have no tokenizer). */
function assertSameOutputs(a: StableDiffusion, b: StableDiffusion, what: string): void {
  const ids = [[998, 5, 17, 250, 999, ...Array(72).fill(999)]];
  const ea = a.textEncoder.forward(ids);
  const eb = b.textEncoder.forward(ids);
  assert.equal(maxAbsDiff(ea.lastHiddenState, eb.lastHiddenState), 0, `${what}: text encoder last hidden state`);
  assert.equal(maxAbsDiff(ea.poolerOutput, eb.poolerOutput), 0, `${what}: text encoder pooled output`);
  manualSeed(0);
  const x = randn([1, 4, 8, 8]);
  const ua = noGrad(() => a.unet.forward(x, 500, ea.lastHiddenState));
  const ub = noGrad(() => b.unet.forward(x, 500, eb.lastHiddenState));
  assert.equal(maxAbsDiff(ua, ub), 0, `${what}: UNet output`);
  for (const t of [ea.lastHiddenState, ea.poolerOutput, eb.lastHiddenState, eb.poolerOutput, x, ua, ub]) t.dispose();
}

function assertSameModel(a: StableDiffusion, b: StableDiffusion, what: string): void {
  assertSameWeights(a.unet, b.unet, `${what} unet`);
  assertSameWeights(a.vae, b.vae, `${what} vae`);
  assertSameWeights(a.textEncoder, b.textEncoder, `${what} text_encoder`);
  assert.deepEqual({ ...a.scheduler.config }, { ...b.scheduler.config }, `${what}: scheduler config`);
  assert.deepEqual(a.textEncoder.config, b.textEncoder.config, `${what}: text encoder config`);
  assert.deepEqual(a.unet.config, b.unet.config, `${what}: unet config`);
  assertSameOutputs(a, b, what);
}

for (const c of CASES) {
  test(`single file ${c.name}: loads with its YAML to exactly its folder's weights and outputs`, async () => {
    const warnings: string[] = [];
    const single = await loadStableDiffusion(c.file, { config: c.yaml, textEncoderHeads: c.heads, onWarning: (w) => warnings.push(w) });
    const folder = await loadStableDiffusion(c.folder);
    try {
      assert.equal(single.tokenizer, null);
      assert.ok(warnings.some((w) => /token ids/.test(w)), 'warns that prompts must be token ids');
      assertSameModel(single, folder, c.name);
    } finally {
      disposeStableDiffusion(single);
      disposeStableDiffusion(folder);
    }
  });

  test(`single file ${c.name}: convert writes a diffusers folder that loads identically`, async () => {
    const out = path.join(tmp, `converted-${c.name}`);
    const r = convertSingleFile(c.file, out, { config: c.yaml, textEncoderHeads: c.heads });
    assert.equal(r.outDir, out);
    assert.ok(!existsSync(`${out}.tmp-${process.pid}`), 'no temporary folder left');
    for (const [sub, f] of [['unet', 'diffusion_pytorch_model.safetensors'], ['vae', 'diffusion_pytorch_model.safetensors'], ['text_encoder', 'model.safetensors']]) {
      const mine = [...readSafetensorsHeader(path.join(out, sub!, f!)).tensors.keys()].sort();
      const theirs = [...readSafetensorsHeader(path.join(c.folder, sub!, f!)).tensors.keys()].sort();
      assert.deepEqual(mine, theirs, `${sub}: keys as diffusers writes them`);
    }
    const converted = await loadStableDiffusion(out);
    const folder = await loadStableDiffusion(c.folder);
    try {
      assertSameModel(converted, folder, `${c.name} converted`);
    } finally {
      disposeStableDiffusion(converted);
      disposeStableDiffusion(folder);
    }
    assert.throws(() => convertSingleFile(c.file, out, { config: c.yaml, textEncoderHeads: c.heads }), /exists and is not empty/);
  });
}

test('single file: the skipped keys are the known ones (schedule, EMA, OpenCLIP last layer, projection)', () => {
  const p1 = inspectSingleFile(CASES[0]!.file, { config: CASES[0]!.yaml, textEncoderHeads: 4 });
  assert.deepEqual(p1.skipped.map((s) => s.key).sort(), ['alphas_cumprod', 'alphas_cumprod_prev', 'betas', 'model_ema.decay', 'model_ema.num_updates',
    'sqrt_alphas_cumprod', 'sqrt_one_minus_alphas_cumprod'].filter((k) => readSafetensorsHeader(CASES[0]!.file).tensors.has(k)).sort());
  assert.ok(p1.skipped.some((s) => s.key === 'model_ema.decay'));
  const p2 = inspectSingleFile(CASES[1]!.file, { config: CASES[1]!.yaml, textEncoderHeads: 4 });
  const skipped2 = p2.skipped.map((s) => s.key);
  assert.ok(skipped2.includes('cond_stage_model.model.text_projection'));
  assert.ok(skipped2.includes('cond_stage_model.model.logit_scale'));
  assert.ok(skipped2.some((k) => k.startsWith('cond_stage_model.model.transformer.resblocks.2.')), 'the last OpenCLIP layer is skipped');
  assert.equal(p2.arch.textLayers, 2);
  assert.equal(p2.arch.scheduler.prediction_type, 'v_prediction');
  assert.equal(p1.arch.scheduler.prediction_type, 'epsilon');
});

test('single file: bad inputs fail clearly', async () => {
  const c = CASES[0]!;
  // truncated download
  const trunc = path.join(tmp, 'truncated.safetensors');
  copyFileSync(c.file, trunc);
  truncateSync(trunc, 1_000_000);
  assert.throws(() => loadSingleFile(trunc, { config: c.yaml, textEncoderHeads: 4 }), /truncated/);
  // an unexpected key is named
  const extra = path.join(tmp, 'extra.safetensors');
  editSafetensorsHeader(c.file, extra, (h) => {
    h['model.diffusion_model.mystery.weight'] = h['model_ema.decay'];
    delete h['model_ema.decay'];
  });
  assert.throws(() => loadSingleFile(extra, { config: c.yaml, textEncoderHeads: 4 }), (e: Error) => e instanceof SingleFileError && /unexpected key.*model\.diffusion_model\.mystery\.weight/.test(e.message));
  // a YAML that contradicts the weights
  const bad = path.join(tmp, 'contradicts.yaml');
  writeFileSync(bad, readFileSync(c.yaml, 'utf8').replace('context_dim: 32', 'context_dim: 768'));
  assert.throws(() => loadSingleFile(c.file, { config: bad, textEncoderHeads: 4 }), /contradicts the weights: context_dim is 768 in the YAML but 32/);
  const v2yaml = CASES[1]!.yaml;
  assert.throws(() => loadSingleFile(c.file, { config: v2yaml, textEncoderHeads: 4 }), /FrozenOpenCLIPEmbedder but the file holds a CLIP/);
  // not YAML / not an LDM config
  const notLdm = path.join(tmp, 'not-ldm.yaml');
  writeFileSync(notLdm, 'foo: [1, 2\n');
  assert.throws(() => loadSingleFile(c.file, { config: notLdm }), LdmConfigError);
  // heads cannot be told without the YAML for a non-standard model
  assert.throws(() => loadSingleFile(c.file, { textEncoderHeads: 4 }), /head count is not stored in the weights.*--config/);
  assert.throws(() => loadSingleFile(c.file, { config: c.yaml }), /text encoder's head count.*textEncoderHeads/);
  // unknown architecture: a diffusers file is not an LDM checkpoint
  assert.throws(() => loadSingleFile(path.join(c.folder, 'unet', 'diffusion_pytorch_model.safetensors')), /not an LDM Stable Diffusion checkpoint/);
  // two kinds of text encoder in one file
  const xl = path.join(tmp, 'xl.safetensors');
  editSafetensorsHeader(c.file, xl, (h) => {
    h['conditioner.embedders.0.transformer.text_model.final_layer_norm.weight'] = h['model_ema.decay'];
    delete h['model_ema.decay'];
  });
  assert.throws(() => loadSingleFile(xl), /more than one kind of text encoder: CLIP \(cond_stage_model\.transformer\.\*\) and SDXL/);
  // .ckpt: a file that is no torch archive, and a crafted pickle that would run code (nothing runs)
  const ckpt = path.join(tmp, 'model.ckpt');
  writeFileSync(ckpt, 'PK');
  await assert.rejects(loadStableDiffusion(ckpt), /ckpt|zip|archive/i);
  await assert.rejects(loadStableDiffusion(fixturePath('ckpt/malicious-os-system.ckpt')), /refused: unpickling it would call os\.system/);
  // a file that is not a checkpoint
  const txt = path.join(tmp, 'model.txt');
  writeFileSync(txt, 'hello');
  await assert.rejects(loadStableDiffusion(txt), /not a single-file checkpoint/);
});

test('single file sd1 as a .ckpt (torch.save of the same state dict): read by the restricted reader, the same model as the .safetensors', async (t) => {
  const c = CASES[0]!;
  const ckpt = path.join(tmp, 'tiny-sd1-ldm.ckpt');
  // torch writes it (python3 with torch: the project's setup installs it; skipped where libtorch came from elsewhere)
  const script = [
    'import json, struct, sys, torch',
    'raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; header = json.loads(raw[8:8 + n]); body = raw[8 + n:]',
    'dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}',
    'sd = {k: torch.frombuffer(bytearray(body[v["data_offsets"][0]:v["data_offsets"][1]]), dtype=dt[v["dtype"]]).reshape(v["shape"]) if v["data_offsets"][1] > v["data_offsets"][0] else torch.zeros(v["shape"], dtype=dt[v["dtype"]]) for k, v in header.items() if k != "__metadata__"}',
    'torch.save({"state_dict": sd, "global_step": 7}, sys.argv[2])',
    // As the original SD v1 .ckpt files: PyTorch Lightning's ModelCheckpoint under 'callbacks' (a stand-in class of that name).
    'import types',
    'names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]',
    'for n in names: sys.modules.setdefault(n, types.ModuleType(n))',
    'class ModelCheckpoint:',
    '    def __init__(self): self.monitor = "val/loss"',
    'ModelCheckpoint.__module__ = names[-1]',
    'sys.modules[names[-1]].ModelCheckpoint = ModelCheckpoint',
    'torch.save({"state_dict": sd, "global_step": 7, "callbacks": {"cb": ModelCheckpoint()}}, sys.argv[3])',
  ].join('\n');
  const lightning = path.join(tmp, 'tiny-sd1-lightning.ckpt');
  const r = spawnSync(process.env.PYTHON || 'python3', ['-c', script, c.file, ckpt, lightning], { encoding: 'utf8' });
  if (r.status !== 0) return t.skip(`python3 with torch is not available: ${(r.stderr || '').split('\n').slice(-2).join(' ')}`);
  const fromCkpt = await loadStableDiffusion(ckpt, { config: c.yaml, textEncoderHeads: c.heads });
  const fromSafetensors = await loadStableDiffusion(c.file, { config: c.yaml, textEncoderHeads: c.heads });
  try {
    assertSameModel(fromCkpt, fromSafetensors, 'sd1 .ckpt');
    // A Lightning object beside the weights: refused by default, naming it and the way out; loaded with it left inert.
    await assert.rejects(loadStableDiffusion(lightning, { config: c.yaml, textEncoderHeads: c.heads }),
      /needs pytorch_lightning\.callbacks\.model_checkpoint\.ModelCheckpoint.*--allow-ckpt-objects/);
    const inert = await loadStableDiffusion(lightning, { config: c.yaml, textEncoderHeads: c.heads, unknownGlobals: 'placeholder' });
    try {
      assertSameModel(inert, fromSafetensors, 'sd1 .ckpt with Lightning objects');
    } finally {
      disposeStableDiffusion(inert);
    }
  } finally {
    disposeStableDiffusion(fromCkpt);
    disposeStableDiffusion(fromSafetensors);
  }
});
