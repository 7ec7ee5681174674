// Text-to-image quality of a Shapes-64 model (default: the embedded one): 300 random full captions,
// each image read back by the evaluator. Usage: node dist/bench/shapes-t2i.js [--model dir]
//   [--samples n] [--steps n] [--device cpu|cuda] [--json file]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadStableDiffusion } from '../src/pipelines/index.js';
import { textToImageQuality } from '../src/shapes/quality.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: a } = parseArgs({ options: {
  model: { type: 'string', default: path.join(root, 'models', 'shapes-64') },
  samples: { type: 'string', default: '300' },
  steps: { type: 'string', default: '25' },
  guidance: { type: 'string', default: '7.5' },
  device: { type: 'string', default: 'cpu' },
  json: { type: 'string' },
} });
const sd = await loadStableDiffusion(a.model!, { device: a.device });
const t0 = Date.now();
const q = await textToImageQuality(sd, {
  samples: Number(a.samples), steps: Number(a.steps), guidanceScale: Number(a.guidance),
  onProgress: (d, n) => process.stderr.write(`\r${d}/${n}`),
});
process.stderr.write('\n');
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(`text-to-image, ${q.samples} random full captions, ${a.steps} DDIM steps, guidance ${a.guidance}, model ${a.model} (${((Date.now() - t0) / 1000).toFixed(1)} s on ${a.device})`);
for (const [k, v] of Object.entries(q.perAttribute)) console.log(`  ${k.padEnd(10)} ${pct(v)}`);
console.log(`  all five   ${pct(q.all)}   (unreadable ${pct(q.unreadable)})`);
for (const m of q.misses.slice(0, 8)) console.log(`  miss: "${m.caption}" -> ${m.read ? JSON.stringify(m.read) : m.reason}`);
if (a.json) writeFileSync(a.json, `${JSON.stringify({ model: a.model, steps: Number(a.steps), guidance: Number(a.guidance), device: a.device, ...q }, null, 2)}\n`);
