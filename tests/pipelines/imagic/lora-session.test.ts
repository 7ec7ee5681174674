// Stage B with LoRA through edit sessions: the session keeps only the adapters, renders the same
// bytes after a reload, resumes an interrupted stage B exactly, and refuses another base model.
// And the sync-free training loop: the same losses and weights as a loop that reads every loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Generator, noGrad, optim, tidy, type Tensor } from '../../../src/engine/index.js';
import { loadSafetensors } from '../../../src/io/index.js';
import { loadStableDiffusion, disposeStableDiffusion, encodePrompt, imagic, type StableDiffusion } from '../../../src/pipelines/index.js';
import { fixturePath } from '../../fixtures.js';

const { EditSession, openForRender, renderEdit, resolveSettings, runEdit } = imagic;

async function withModel<R>(fn: (sd: StableDiffusion, G: (k: string) => Tensor) => Promise<R>): Promise<R> {
  const g = loadSafetensors(fixturePath('golden/golden.safetensors'));
  const sd = await loadStableDiffusion(fixturePath('golden/tiny-sd'));
  try {
    return await fn(sd, (k) => g.get(`imagic.${k}`) ?? g.get(k)!);
  } finally {
    disposeStableDiffusion(sd);
  }
}

const settings = (o: Partial<imagic.ImagicSettings> = {}) => resolveSettings('fast', { stepsA: 4, stepsB: 6, lrB: 1e-2, train: 'lora', loraRank: 2, checkpointEvery: 0, steps: 4, ...o });

function inputs(G: (k: string) => Tensor) {
  return {
    image: G('image'), imageSource: 'golden', modelSource: 'tiny-sd',
    target: G('target_ids').toArray() as number[][], uncondIds: G('uncond_ids').toArray() as number[][],
  };
}

async function render(sd: StableDiffusion, emb: imagic.Embeddings): Promise<number[]> {
  const r = await renderEdit(sd, emb, { eta: 0.7, guidanceScale: 7.5, steps: 4, seed: 3 });
  const bytes = r.image.toFlatArray();
  r.image.dispose();
  r.latent.dispose();
  return bytes;
}

test('a LoRA session stores only the adapters and renders the same bytes after a reload; another base model is refused', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'imagic-lora-'));
  try {
    await withModel(async (sd, G) => {
      const base = new Map(sd.unet.namedParameters().map(([k, t]) => [k, noGrad(() => t.clone())]));
      const r = await runEdit(sd, path.join(dir, 's'), inputs(G), settings());
      assert.equal(r.interrupted, false);
      const files = readdirSync(path.join(dir, 's'));
      assert.ok(files.includes('lora.safetensors') && !files.includes('unet-finetuned.safetensors') && !files.includes('stage-b-checkpoint.safetensors'), files.join(' '));
      const session = EditSession.open(path.join(dir, 's'));
      assert.deepEqual(session.json.trained, imagic.stageBChangedWeights(sd, session.json.settings));
      // Only the adapters' weights changed in the UNet (merged), and those did.
      const changed = sd.unet.namedParameters().filter(([k, t]) => noGrad(() => t.sub(base.get(k)!).abs().amax().item()) > 0).map(([k]) => k);
      assert.ok(changed.length > 0);
      assert.ok(changed.every((k) => session.json.trained.includes(k)), changed.join(' '));
      const adapters = loadSafetensors(path.join(dir, 's', 'lora.safetensors'));
      assert.ok([...adapters.keys()].every((k) => /^unet\..*\.attn[12]\.(to_q|to_k|to_v|to_out\.0)\.lora_[AB]\.weight$/.test(k)));
      const fullBytes = sd.unet.numParameters() * 4;
      assert.ok(statSync(path.join(dir, 's', 'lora.safetensors')).size < fullBytes / 5, 'the adapters are a fraction of the UNet');
      const before = await render(sd, r.embeddings!);

      // Reload onto the base weights: the same bytes.
      noGrad(() => { for (const [k, p] of sd.unet.namedParameters()) p.copy_(base.get(k)!); });
      const opened = openForRender(sd, path.join(dir, 's'));
      assert.deepEqual(await render(sd, opened.embeddings), before);

      // Another base model (one weight of the fingerprint differs): refused with the reason.
      noGrad(() => { for (const [k, p] of sd.unet.namedParameters()) p.copy_(base.get(k)!); });
      noGrad(() => sd.unet.conv_in.weight.add_(0.5));
      assert.throws(() => openForRender(sd, path.join(dir, 's')), /different model/);
      assert.throws(() => EditSession.open(path.join(dir, 's')).loadFinetuned(sd), /LoRA adapters were trained on another base model.*load tiny-sd/);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an interrupted LoRA stage B resumes from its checkpoint to the same adapters as an uninterrupted one', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'imagic-lora-'));
  try {
    await withModel(async (sd, G) => {
      const base = new Map(sd.unet.namedParameters().map(([k, t]) => [k, noGrad(() => t.clone())]));
      const restore = () => noGrad(() => { for (const [k, p] of sd.unet.namedParameters()) p.copy_(base.get(k)!); });
      await runEdit(sd, path.join(dir, 'whole'), inputs(G), settings({ checkpointEvery: 2 }));
      restore();
      // shouldStop is asked before every step (losses, and so onStep, come in batches): stop before stage B's 4th.
      let inB = false;
      let asked = 0;
      const stopAt = 3;
      const r = await runEdit(sd, path.join(dir, 'split'), inputs(G), settings({ checkpointEvery: 2 }), {
        onStage: (stage) => { inB = stage === 'B'; },
        shouldStop: () => inB && asked++ >= stopAt,
      });
      assert.equal(r.interrupted, true);
      assert.equal(EditSession.open(path.join(dir, 'split')).json.progress.stageB, stopAt);
      restore();
      const again = await runEdit(sd, path.join(dir, 'split'), inputs(G), settings({ checkpointEvery: 2 }));
      assert.equal(again.interrupted, false);
      const a = loadSafetensors(path.join(dir, 'whole', 'lora.safetensors'));
      const b = loadSafetensors(path.join(dir, 'split', 'lora.safetensors'));
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      for (const [k, t] of a) assert.deepEqual(b.get(k)!.toFlatArray(), t.toFlatArray(), k);
      // Other LoRA settings cannot resume this session.
      await assert.rejects(() => runEdit(sd, path.join(dir, 'split'), inputs(G), settings({ loraRank: 3 })), /loraRank: 2 in the session, 3 now/);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stage B\'s sync-free loop gives the same losses and weights, bit for bit, as a loop that reads each loss', async () => {
  await withModel(async (sd, G) => {
    const latent = imagic.encodeImage(sd, G('image'));
    const eOpt = encodePrompt(sd, G('target_ids').toArray() as number[][]);
    const base = new Map(sd.unet.namedParameters().map(([k, t]) => [k, noGrad(() => t.clone())]));
    const steps = 5, lr = 1e-3;

    // The reference: one loss.item() per step (the loop before losses stayed on the device).
    sd.unet.requiresGrad_(true);
    sd.unet.train();
    const opt = new optim.Adam(sd.unet.parameters(), { lr });
    const noise = imagic.generatorNoise(new Generator(11), latent);
    const expected: number[] = [];
    for (let i = 0; i < steps; i++) {
      expected.push(tidy(() => {
        const { timestep, noise: n } = noise.next(i);
        opt.zeroGrad();
        const l = imagic.denoisingStep(sd, latent, eOpt, timestep, n, {});
        opt.step();
        return l.item();
      }));
    }
    opt.zeroGrad();
    opt.disposeState();
    sd.unet.eval();
    sd.unet.requiresGrad_(false);
    const reference = new Map(sd.unet.namedParameters().map(([k, t]) => [k, noGrad(() => t.clone())]));

    noGrad(() => { for (const [k, p] of sd.unet.namedParameters()) p.copy_(base.get(k)!); });
    const seen: [number, number][] = [];
    const b = await imagic.stageB(sd, latent, eOpt, { steps, lr, noise: imagic.generatorNoise(new Generator(11), latent), lossReadMs: 1e9, onStep: (s, l) => seen.push([s, l]) });
    assert.deepEqual(b.losses, expected);
    assert.deepEqual(seen, expected.map((l, i) => [i + 1, l]), 'every step reported, in order, once read');
    for (const [k, p] of sd.unet.namedParameters()) assert.deepEqual(p.toFlatArray(), reference.get(k)!.toFlatArray(), k);
  });
});
