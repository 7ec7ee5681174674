// Sessions, cancellation and comparisons, from JavaScript: train once into a session folder (stopping
// halfway with an AbortController, then resuming), render an eta sweep from the session without
// training again, score it, compare with the baselines, and lay everything out on one sheet.
//
//   node examples/sweep.mjs [output-folder]
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { compare, contactSheet, edit, generate, loadPipeline, render, writePng } from 'imagic';

const out = process.argv[2] ?? 'examples-output/sweep';
const session = path.join(out, 'circle.imagic');
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

const pipe = await loadPipeline(undefined, { threads: 2 });
try {
  const [input] = await generate(pipe, 'a large blue circle in the center on a black background', { steps: 25, seed: 3 });
  // Fewer training steps than the preset's (200 + 150), to keep the example quick.
  const settings = { stepsA: 100, stepsB: 80 };

  // Stop the training in stage B: edit() rejects with an AbortError and the session keeps every step done.
  const controller = new AbortController();
  try {
    await edit(pipe, input, 'a blue triangle', {
      session, settings, eta: 0.8, signal: controller.signal,
      onProgress: (p) => p.phase === 'stage B' && p.step === 40 && controller.abort(),
    });
  } catch (e) {
    if (e.name !== 'AbortError') throw e;
    console.log('stopped in stage B; the session is saved');
  }
  // The same call with the same session resumes where it stopped.
  let resumedAt = null;
  const first = await edit(pipe, input, 'a blue triangle', {
    session, settings, eta: 0.8, onProgress: (p) => p.phase === 'stage B' && (resumedAt ??= p.step),
  });
  console.log(`resumed at stage B step ${resumedAt}; eta 0.8 rendered`);

  // More etas from the same training, each scored: CLIP score to the text, and how much of the input is kept.
  const sweep = await render(pipe, session, { eta: [0.6, 0.8, 1.0, 1.2], seeds: [0, 1], scores: true });
  for (const r of sweep.images) {
    console.log(`eta ${r.eta.toFixed(1)} seed ${r.seed}: alignment ${r.alignment.toFixed(2)}, preservation ${r.preservation.toFixed(4)}`);
  }
  const rows = [0, 1].map((seed) => sweep.images.filter((r) => r.seed === seed).map((r) => r.image));
  await writePng(path.join(out, 'sweep.png'), await contactSheet(rows, { rowLabels: ['seed 0', 'seed 1'], colLabels: ['0.6', '0.8', '1.0', '1.2'].map((e) => `eta ${e}`) }));

  // Imagic next to SDEdit and DDIM inversion on the same input and text, all scored with the same CLIP.
  const c = await compare(pipe, input, 'a blue triangle', { session: path.join(out, 'compare.imagic'), settings, eta: 0.8, scores: true });
  for (const [name, m] of [['SDEdit', c.sdedit], ['DDIM inversion', c.ddimInversion]]) {
    console.log(`${name}: alignment ${m.alignment.toFixed(2)}, preservation ${m.preservation.toFixed(4)}`);
  }
  await writePng(path.join(out, 'compare.png'), await contactSheet([[c.input, c.imagic.image, c.sdedit.image, c.ddimInversion.image]], {
    colLabels: ['input', 'Imagic', 'SDEdit', 'DDIM inv.'],
  }));
  await writePng(path.join(out, 'first.png'), first.image);
  console.log(`wrote ${['first.png', 'sweep.png', 'compare.png'].map((f) => path.join(out, f)).join(', ')}`);
} finally {
  pipe.dispose();
}
