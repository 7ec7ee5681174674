// Trains the Shapes-64 domain CLIP (src/shapes/train/clip.ts) and measures it: zero-shot reading of
// each attribute from fresh renders, and from the embedded VAE's reconstructions of them.
// Usage: node dist/bench/shapes-clip.js [--run runs/shapes-clip] [--steps 2500] [--lr x] [--warmup n] [--group-size 4]
//   [--init other-run/checkpoint.safetensors] [--variants shape,shape,size,position,color,background] [--export models/shapes-64/clip] [--threads 1]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dispose, noGrad, setNumThreads, tidy } from '../src/engine/index.js';
import { loadStableDiffusion } from '../src/pipelines/index.js';
import { mulberry32, randomSpec, type AttributeName } from '../src/shapes/spec.js';
import { DEFAULT_CLIP_TRAIN_SETTINGS, exportShapesClip, shapesClipTokenizer, trainShapesClip, zeroShotAccuracy } from '../src/shapes/train/clip.js';
import { renderBatch } from '../src/shapes/train/data.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  run: { type: 'string', default: path.join(root, 'runs', 'shapes-clip') },
  steps: { type: 'string', default: String(DEFAULT_CLIP_TRAIN_SETTINGS.steps) },
  lr: { type: 'string' }, warmup: { type: 'string' }, 'group-size': { type: 'string' }, init: { type: 'string' }, variants: { type: 'string' }, loss: { type: 'string' },
  export: { type: 'string' },
  threads: { type: 'string' },
  model: { type: 'string', default: path.join(root, 'models', 'shapes-64') },
} });
if (a.threads) setNumThreads(Number(a.threads));
const settings = {
  ...DEFAULT_CLIP_TRAIN_SETTINGS, steps: Number(a.steps),
  ...(a.lr ? { lr: Number(a.lr) } : {}), ...(a.warmup ? { warmup: Number(a.warmup) } : {}),
  ...(a['group-size'] ? { groupSize: Number(a['group-size']) } : {}), ...(a.init ? { initFrom: path.resolve(a.init) } : {}),
  ...(a.loss ? { loss: a.loss as 'nce' | 'sigmoid' } : {}),
  ...(a.variants ? { variantAttributes: a.variants.split(',') as AttributeName[] } : {}),
};
const t0 = Date.now();
let last = Date.now();
const { model, step } = await trainShapesClip(a.run!, settings, {
  onLog: (m) => console.error(m),
  onStep: (s, n, loss) => {
    if (s % 50 === 0 || s === n) {
      console.error(`step ${s}/${n} loss ${loss.toFixed(4)} (${((Date.now() - last) / 50).toFixed(0)} ms/step)`);
      last = Date.now();
    }
  },
});
const minutes = (Date.now() - t0) / 60000;
const rng = mulberry32(424242);
const specs = Array.from({ length: 600 }, () => randomSpec(rng));
const images = renderBatch(specs);
const tok = shapesClipTokenizer();
const clean = zeroShotAccuracy(model, tok, images, specs);
const sd = await loadStableDiffusion(a.model!);
const rec = noGrad(() => tidy(() => sd.vae.decode(sd.vae.encode(images).mean).clamp(-1, 1)));
const viaVae = zeroShotAccuracy(model, tok, rec, specs);
const pct = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(', ');
console.log(`domain CLIP after ${step} steps (${minutes.toFixed(1)} min this run): zero-shot on 600 renders: ${pct(clean)}`);
console.log(`  on the same renders through the embedded VAE: ${pct(viaVae)}`);
if (a.export) {
  exportShapesClip(model, a.export, { trainedBy: 'imagic bench/shapes-clip', steps: step, settings, zeroShot: { renders: clean, vaeReconstructions: viaVae } });
  console.log(`exported to ${a.export}`);
}
dispose([images, rec]);
model.dispose();
