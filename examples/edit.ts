// Edit a picture with Imagic on the embedded model, from TypeScript: load the model, make an input,
// edit it towards a sentence with live progress and a time limit, and save what came out.
//
//   npx tsc && node dist/examples/edit.js [output-folder]        (in a clone of the repository)
//   or, in your own project after `npm install imagic`, the same code with your own photo.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { edit, generate, loadPipeline, writePng, type Progress } from 'imagic';

const out = process.argv[2] ?? 'examples-output/edit';
await mkdir(out, { recursive: true });

// No argument: the embedded Shapes-64 model (64x64 pictures of one shape). Give a diffusers folder or a
// Hub repo id such as 'runwayml/stable-diffusion-v1-5' for real photos.
const pipe = await loadPipeline(undefined, { threads: 2 });
try {
  // An input picture: text-to-image on the same model (with a real model, pass a photo's path instead).
  const [input] = await generate(pipe, 'a large red circle on the left on a white background', { steps: 25, seed: 1 });
  await writePng(path.join(out, 'input.png'), input!);

  // Progress: one line per phase, rewritten in place on a terminal; every 50th step otherwise.
  let last = '';
  const onProgress = (p: Progress) => {
    if (p.phase === 'download') return;
    const line = `${p.phase} ${p.step}/${p.total}${'loss' in p ? ` loss ${p.loss.toFixed(4)}` : ''}`;
    if (process.stdout.isTTY) {
      process.stdout.write(`${p.phase !== last && last ? '\n' : ''}\r${line}   ${p.step === p.total ? '\n' : ''}`);
      last = p.phase;
    } else if (p.step % 50 === 0 || p.step === p.total) {
      console.log(line);
    }
  };

  // eta 'auto' (the default): the candidates at several etas and noises are scored with the model's
  // CLIP and the one that reaches the text while keeping most of the picture wins. The signal stops
  // the edit after ten minutes (an AbortError; with a `session` folder it resumes from there).
  const result = await edit(pipe, input!, 'a red square', { onProgress, signal: AbortSignal.timeout(10 * 60_000) });

  await writePng(path.join(out, 'output.png'), result.image);
  console.log(`chosen: eta ${result.eta}, ${result.seed === 'inverted' ? "the input's own noise" : `seed ${result.seed}`} of ${result.images.length} candidates`);
  console.log(`why: ${result.choice?.reason}`);
  console.log(`wrote ${path.join(out, 'input.png')} and ${path.join(out, 'output.png')}`);
} finally {
  pipe.dispose();
}
