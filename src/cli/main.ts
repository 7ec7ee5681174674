#!/usr/bin/env node
// The imagic command line: thin argument parsing over the pipelines.
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { generate } from './generate.js';
import { edit, render } from './edit.js';
import { compare } from './compare.js';
import { convert } from './convert.js';
import { trainShapesCommand } from './train-shapes.js';
import { trainShapesClipCommand } from './train-shapes-clip.js';
import { DEFAULT_CLIP_TRAIN_SETTINGS } from '../shapes/train/clip.js';
import { demo, DEMO_INPUT, DEMO_TARGET } from './demo.js';
import { defaultDataDir, serveCommand } from './serve.js';
import { batch } from './batch/index.js';
import { DEFAULT_LOCK_MS, startWorker } from './batch/queue.js';
import { DEFAULT_TRAIN_SETTINGS } from '../shapes/train/index.js';
import { int, num, parseEtas, parseSeeds } from './options.js';
import { DEFAULT_HUB_CLIP } from './metrics.js';
import { AUTO_SEEDS, DEFAULT_AUTO_RULE, DEFAULT_PRESERVATION, PRESETS, TRAIN_MODES, seedLabel } from '../pipelines/imagic/index.js';
import { LORA_TARGETS } from '../nn/index.js';
import { EMBEDDED_MODEL } from '../api/pipeline.js';
import { VERSION } from '../version.js';


const DEFAULT_STEPS = { vae: DEFAULT_TRAIN_SETTINGS.vae.steps, unet: DEFAULT_TRAIN_SETTINGS.unet.steps };

const program = new Command()
  .name('imagic')
  .description('Text-based editing of real photos with diffusion models (Imagic on Stable Diffusion v1.x), on libtorch.')
  .version(`${VERSION}`, '-V, --version', 'print the version of imagic')
  .showHelpAfterError('(run with --help for usage)');

program
  .command('generate')
  .summary('text-to-image')
  .description('Generate images from a text prompt (text-to-image with classifier-free guidance and DDIM).')
  .argument('<prompt>', 'what to draw, e.g. "a red circle on the left"')
  .requiredOption('-o, --output <file.png>', 'where to write the image (several images: file-0.png, file-1.png, ...)')
  .option('-m, --model <dir|repo-id|file>', 'a diffusers folder, a Hub repo id downloaded into the Hugging Face cache, or a single-file SD v1 / SD 2.x / SDXL checkpoint (.safetensors or .ckpt, LDM layout) (default: the embedded model)')
  .option('-n, --negative <prompt>', 'negative prompt: what to steer away from (default: empty)')
  .option('-s, --seed <n>', 'random seed; the same seed gives the same image on the same machine', int('seed', 0), 0)
  .option('--steps <n>', 'DDIM sampling steps', int('steps', 1), 50)
  .option('-g, --guidance <scale>', 'classifier-free guidance scale (1 disables guidance)', num('guidance'), 7.5)
  .option('--width <px>', 'image width, a multiple of 8 (default: the model\'s size)', int('width', 8))
  .option('--height <px>', 'image height, a multiple of 8 (default: the model\'s size)', int('height', 8))
  .option('-b, --batch <n>', 'images to generate', int('batch', 1), 1)
  .option('--eta <eta>', 'DDIM eta: 0 is deterministic, 1 is DDPM-like', num('eta'), 0)
  .addOption(new Option('--dtype <dtype>', 'weights and compute precision').choices(['float32', 'float16', 'bfloat16']).default('float32'))
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--variant <name>', "read '<weights>.<variant>.safetensors' files, e.g. fp16")
  .option('--revision <rev>', 'Hub branch, tag or commit (with a repo id)', 'main')
  .option('--offline', 'never use the network: the model must be a folder or already in the cache')
  .option('--config <file.yaml>', 'with a single-file --model: its LDM inference YAML (v1-inference.yaml, v2-inference-v.yaml, sd_xl_base.yaml, ...): attention heads, v-prediction, text layer')
  .option('--tokenizer <dir|repo-id>', 'a CLIP tokenizer folder, a model folder with tokenizer/ (and tokenizer_2/ for SDXL), or a Hub repo id (single files carry none; without it prompts must be token ids)')
  .option('--text-encoder-heads <n>', 'with a single-file --model whose text encoder is not 64-wide per head: its head count', int('text-encoder-heads', 1))
  .option('--threads <n>', 'CPU threads for libtorch', int('threads', 1))
  .option('-f, --force', 'overwrite existing output files')
  .option('-q, --quiet', 'print nothing but errors')
  .action(async (prompt: string, o) => {
    await generate(prompt, { ...o, model: resolveModel(o.model) });
  });

/** Options every model-loading command takes. */
function modelOptions(cmd: Command, withModel = true): Command {
  if (withModel) cmd.option('-m, --model <dir|repo-id|file>', 'a diffusers folder, a Hub repo id downloaded into the Hugging Face cache, or a single-file SD v1 / SD 2.x / SDXL checkpoint (.safetensors or .ckpt, LDM layout) (default: the embedded model)');
  return cmd
    .addOption(new Option('--dtype <dtype>', 'weights and compute precision').choices(['float32', 'float16', 'bfloat16']).default('float32'))
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .option('--variant <name>', "read '<weights>.<variant>.safetensors' files, e.g. fp16")
    .option('--revision <rev>', 'Hub branch, tag or commit (with a repo id)', 'main')
    .option('--offline', 'never use the network: the model must be a folder or already in the cache')
    .option('--config <file.yaml>', 'with a single-file --model: its LDM inference YAML (v1-inference.yaml, v2-inference-v.yaml, sd_xl_base.yaml, ...): attention heads, v-prediction, text layer')
    .option('--tokenizer <dir|repo-id>', 'a CLIP tokenizer folder, a model folder with tokenizer/ (and tokenizer_2/ for SDXL), or a Hub repo id (single files carry none; without it prompts must be token ids)')
    .option('--text-encoder-heads <n>', 'with a single-file --model whose text encoder is not 64-wide per head: its head count', int('text-encoder-heads', 1))
    .option('--allow-ckpt-objects', 'with a .ckpt --model whose pickle also holds objects other than tensors (PyTorch Lightning\'s training state in old SD 1.x files): load its tensors and leave those objects inert (nothing is ever run; code-running globals stay refused)')
    .option('--threads <n>', 'CPU threads for libtorch', int('threads', 1))
    .option('-q, --quiet', 'print nothing but errors');
}

/** The rendering options; `etaDefault` says what happens without --eta. */
function renderOptions(cmd: Command, etaDefault: 'auto' | 'session'): Command {
  return cmd
    .option('--eta <spec>', `interpolation weight of the target text: auto, one value, a list (0.6,0.7) or a range start:end:step (0.4:0.9:0.1); values outside [0, 1] extrapolate. auto: render the candidate etas for each of --seeds, score them, keep one (see "Automatic eta" below) (default: ${etaDefault === 'auto' ? 'auto' : "the session's eta"})`, parseEtas)
    .option('--seeds <spec>', `sampling seeds: one, a list (0,1,2), a range first:last (0:3) or both (0,5:7); each seed's starting noise is shared by every eta (default 0). With --eta auto, the candidates' noises (default ${AUTO_SEEDS.map(seedLabel).join(',')}; 'inverted' is the input's own DDIM-inverted noise)`, parseSeeds)
    .option('--steps <n>', 'DDIM sampling steps (default: the preset\'s)', int('steps', 1))
    .option('-g, --guidance <scale>', 'classifier-free guidance scale (default: the preset\'s 7.5)', num('guidance'))
    .option('--metrics', 'score every image rendered (alignment: CLIP score to the text; preservation, see --preservation), into <output>-metrics.json, -metrics.csv and the plot -metrics.png (always on with --eta auto)')
    .option('--clip-model <dir|repo-id>', `the CLIP for the scores: a transformers CLIPModel folder or a Hub repo id (default: the model's clip/ folder, which the embedded model ships; otherwise ${DEFAULT_HUB_CLIP}, downloaded once)`)
    .addOption(new Option('--preservation <metric>', "how much of the input an image keeps: feature-distance (minus the CLIP feature distance, LPIPS-style on the image tower's patch tokens: sees moves and resizes) or clip-i (cosine of the pooled image embeddings)").choices(['feature-distance', 'clip-i']).default(DEFAULT_PRESERVATION))
    .option('-f, --force', 'overwrite existing output files')
    .addHelpText('after', AUTO_HELP);
}

const AUTO_HELP = `
Automatic eta (--eta auto):
  From the trained session (no retraining), the preset's candidate etas (default, thorough, fast:
  ${PRESETS.default.autoEtas.join(',')}; shapes: ${PRESETS.shapes.autoEtas.join(',')}) are rendered
  from each starting noise of --seeds (default ${AUTO_SEEDS.map(seedLabel).join(',')}: the input's own DDIM-inverted noise,
  which keeps its layout, and four fresh seeds), and every candidate is scored with a CLIP:
    alignment     CLIP score to the target text: 100 * max(cos(image, text), 0)
    preservation  --preservation: minus the CLIP feature distance to the input (default), or CLIP-I
                  to the input (cosine of the image embeddings)
  The rule: a candidate counts as edited when its alignment gets ${DEFAULT_AUTO_RULE.gain} of the way from the
  input's own alignment (the floor) to the best candidate's (the ceiling); of those, the one most like
  the input (highest preservation) wins; ties go to the smaller eta, then the inverted noise, then the
  smaller seed. Alignment alone would pick over-edited images; preservation alone, the unedited input.
  It writes: <output> (the chosen image); <stem>-candidates/eta0.70-seed1.png, eta0.70-inverted.png
  (every candidate); <stem>-metrics.json (each candidate's eta, seed, alignment, preservation and
  whether it was chosen; the rule and why it chose; the metrics' names; the CLIP); <stem>-metrics.csv;
  <stem>-metrics.png (alignment against preservation: a curve per noise, a point per eta, the choice
  ringed; compare adds SDEdit and DDIM inversion as their own markers); auto-choice.json in the
  session folder. It prints a table of the scores and why the candidate won. --metrics with etas
  given writes the same report without a choice.
  The CLIP: --clip-model, else the model folder's clip/, else ${DEFAULT_HUB_CLIP}
  (from the Hub; --offline uses the cache only). When none can be loaded, the command stops before
  training: give --clip-model, or an eta (e.g. --eta 0.7) to skip the automatic choice.`;

function resolveModel(model: string | undefined): string {
  const m = model ?? (existsSync(EMBEDDED_MODEL) ? EMBEDDED_MODEL : undefined);
  if (m === undefined) throw new Error('no --model given, and the embedded model (models/shapes-64) is not in this checkout yet');
  return m;
}

/** Imagic's training options, shared by edit and compare. */
function trainingOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--preset <name>', 'training preset: default (500 A + 1000 B steps), thorough (1500 + 1500), fast (100 + 200), shapes (for the embedded Shapes-64 model; its default there)').choices(['default', 'thorough', 'fast', 'shapes']))
    .option('--steps-a <n>', 'stage A steps (embedding optimization)', int('steps-a', 0))
    .option('--steps-b <n>', 'stage B steps (UNet fine-tuning)', int('steps-b', 0))
    .option('--lr-a <lr>', 'stage A learning rate (default 1e-3)', num('lr-a', { positive: true }))
    .option('--lr-b <lr>', 'stage B learning rate (default: the preset\'s for what stage B trains, e.g. 2e-6 for all weights, 1e-4 for LoRA)', num('lr-b', { positive: true }))
    .addOption(new Option('--train <what>', 'what stage B trains: all UNet weights, the attention layers, or LoRA adapters on a frozen UNet (the session keeps megabytes instead of the UNet; far less memory to train)').choices([...TRAIN_MODES]))
    .option('--lora-rank <r>', 'rank of the LoRA adapters (default 4)', int('lora-rank', 1))
    .addOption(new Option('--lora-targets <layers>', 'which layers get LoRA adapters: the attention projections (to_q, to_k, to_v, to_out), or those and the resnets\' convolutions').choices([...LORA_TARGETS]))
    .addOption(new Option('--mixed-precision <mode>', 'autocast for training, with fp32 master weights').choices(['no', 'bf16', 'fp16']))
    .option('--seed <n>', 'training seed: fixes the timesteps and noise of stages A and B', int('seed', 0))
    .option('--sample-latent', 'encode the image as a sample of the VAE posterior instead of its mean')
    .option('--checkpoint-every <n>', 'save resumable stage B progress every n steps (default 100)', int('checkpoint-every', 0))
    .option('--gradient-checkpointing', 'recompute UNet activations during backward: less memory for stages A and B (the SDXL pooled embedding included), about a third more compute, same results')
    .option('--session <dir>', 'the session folder (default: <output without .png>.imagic)')
    .option('--restart', 'discard an existing session with other settings and train again');
}

modelOptions(renderOptions(trainingOptions(program
  .command('edit')
  .summary('edit a real image to match a text with Imagic (trains, saves a session, renders)')
  .description([
    'Edit a real image to match a text with Imagic: (A) optimize the text embedding to reconstruct the image, (B) fine-tune the UNet at it, (C) sample from eta * e_target + (1 - eta) * e_optimized.',
    'Training is saved in a session folder (default: <output>.imagic/). An interrupted edit (Ctrl-C) resumes from its last step when run again, and `imagic render` makes more etas and seeds without training.',
    'By default (--eta auto) it renders candidates at several etas and seeds, scores them with a CLIP and writes the one the rule picks, with every candidate and the scores beside it (see "Automatic eta" below).',
    'With several etas or seeds given, each image is written as <output>-eta<eta>-seed<seed>.png and <output> is a labelled contact sheet (rows: seeds, columns: etas).',
  ].join('\n\n'))
  .argument('<image>', 'the input image (PNG, JPEG or WebP)')
  .argument('<text>', 'the target text, e.g. "a dog sitting"')
  .requiredOption('-o, --output <file.png>', 'where to write the edited image (the chosen one with --eta auto; the contact sheet of a sweep)')), 'auto'))
  .action(async (image: string, text: string, o) => {
    const r = await edit(image, text, { ...o, etas: o.eta, model: resolveModel(o.model) });
    if (r.interrupted) process.exitCode = 130;
  });

modelOptions(renderOptions(trainingOptions(program
  .command('compare')
  .summary('Imagic next to the baselines SDEdit and DDIM inversion, side by side')
  .description('Run Imagic and the two baselines, SDEdit (img2img) and DDIM inversion, on one image and text, and write a labelled side-by-side sheet: input | Imagic | SDEdit | DDIM inversion (each result also as <output>-imagic.png, -sdedit.png, -ddim-inversion.png). Imagic\'s column is the automatic choice by default (--eta auto), else the first eta and seed given; the baselines use the first seed. With --eta auto or --metrics, the baselines are scored too, in the report and on its plot.')
  .argument('<image>', 'the input image (PNG, JPEG or WebP)')
  .argument('<text>', 'the target text')
  .requiredOption('-o, --output <file.png>', 'where to write the comparison sheet')
  .option('--strength <s>', "SDEdit's noise strength in [0, 1]", num('strength'), 0.6)
  .option('--source-text <text>', "DDIM inversion's caption of the input (default: the empty prompt)")), 'auto'))
  .action(async (image: string, text: string, o) => {
    const r = await compare(image, text, { ...o, etas: o.eta, model: resolveModel(o.model) });
    if (r.interrupted) process.exitCode = 130;
  });

modelOptions(renderOptions(program
  .command('render')
  .summary('render more etas and seeds from an edit session, without training')
  .description('Render more images from a finished edit session, without training: every eta for every seed, and a contact sheet for a sweep; or, with --eta auto, the automatic choice among candidates (see below). Without --eta, the session\'s eta.')
  .argument('<session>', 'an edit session folder made by `imagic edit`')
  .requiredOption('-o, --output <file.png>', 'where to write the image (or the contact sheet of a sweep)')
  .option('-m, --model <dir|repo-id>', "the session's base model (default: the one recorded in the session)"), 'session'), false)
  .action(async (session: string, o) => {
    await render(session, { ...o, etas: o.eta });
  });

program
  .command('demo')
  .summary('an Imagic edit on the embedded Shapes-64 model, end to end (about a minute on a CPU)')
  .description('Render a large red circle on the left (white background) and edit it with Imagic to "a red square" on the embedded model, as `imagic edit` does: train, render candidates at the shapes preset\'s etas from the input\'s inverted noise and seeds 0-3, score them with the model\'s own CLIP (CLIP score to the text, the CLIP feature distance to the input) and keep the one the rule picks (see `imagic edit --help`). Writes the input, the output, a contact sheet of the candidates, the scores (JSON, CSV, plot), and prints the scores and what the domain\'s evaluator reads in the input, the output and the candidates.')
  .option('-o, --output-dir <dir>', 'where to write the files', 'demo-output')
  .option('--target <text>', 'the target text', DEMO_TARGET)
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--threads <n>', 'CPU threads for libtorch', int('threads', 1))
  .option('--clip-model <dir|repo-id>', "the CLIP that scores the candidates (default: the embedded model's own, models/shapes-64/clip)")
  .option('-q, --quiet', 'print only the results')
  .action(async (o) => {
    await demo({ model: resolveModel(undefined), outputDir: o.outputDir, target: o.target, input: DEMO_INPUT, device: o.device, threads: o.threads, quiet: o.quiet, clipModel: o.clipModel });
  });

program
  .command('serve')
  .summary('the local web editor: upload, train with live progress, an eta slider, compare, past sessions')
  .description([
    'Serve the web editor on http://127.0.0.1:7860/ (open it in a browser): upload a picture (or take an example), type the target text, and watch stages A and B train with their losses; then move the eta slider and change the seed to render other edits from the same training (sampling only, cached), see every candidate of the automatic choice and their scores, compare with SDEdit and DDIM inversion, and reopen, download or delete past sessions.',
    'Training runs in a worker process, one at a time (others queue); renders run in a second worker meanwhile. Sessions live in the data folder; a training stopped by Ctrl-C resumes at the next start.',
    'On any host but a loopback one, every request needs the access token printed at start (or given by --token / $IMAGIC_TOKEN).',
  ].join('\n\n'))
  .option('-p, --port <n>', 'port (0: any free one)', int('port', 0), 7860)
  .option('--host <host>', 'address to bind; anything but 127.0.0.1 / localhost / ::1 requires the access token', '127.0.0.1')
  .option('-m, --model <dir|repo-id|file>', 'the default model of new edits: a diffusers folder, a Hub repo id, or a single-file SD v1 / SD 2.x / SDXL checkpoint (default: the embedded model)')
  .option('--config <file.yaml>', 'with a single-file --model: its LDM / sgm inference YAML')
  .option('--tokenizer <dir|repo-id>', 'a tokenizer folder (or a model folder with tokenizer/ and tokenizer_2/) or a Hub repo id, for a single-file --model')
  .option('--text-encoder-heads <n>', 'with a single-file --model whose text encoder is not 64-wide per head: its head count', int('text-encoder-heads', 1))
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--data <dir>', `where sessions and uploads are kept (default: ${defaultDataDir()})`)
  .option('--token <token>', 'the access token (default: $IMAGIC_TOKEN, else a random one, printed at start)')
  .option('--max-upload-mb <n>', 'the largest upload accepted, in MiB', num('max-upload-mb', { positive: true }), 20)
  .option('--threads <n>', 'CPU threads for libtorch in each worker', int('threads', 1))
  .option('--offline', 'never use the network: models must be folders or already in the Hugging Face cache')
  .option('--queue <redis-url>', 'hand trainings to the Redis queue of imagic batch for `imagic worker` processes (same job format); they must see --data at the same path')
  .option('-q, --quiet', 'print only the URL')
  .action(async (o) => {
    await serveCommand({ ...o, model: resolveModel(o.model) });
  });

program
  .command('batch')
  .summary('edit many images from a CSV (TEdBench-style), resumable, with an HTML report; locally or through a Redis queue')
  .description([
    'Run an Imagic edit (the same code as `imagic edit`; with --baselines, as `imagic compare`) for every row of a CSV with the columns image (or img_name) and target_text, and optionally source_text, eta, seed and preset. Image paths are relative to the CSV\'s folder.',
    'Each row writes into <out>/rows/<row>/ (its output, its session); <out>/results.jsonl gets a line per finished row (settings, timings, scores, errors) and <out>/report.html shows them all (it opens from disk). Running the same command again skips finished rows and resumes interrupted ones from their sessions; a row whose image is missing or corrupt is recorded as failed and the batch goes on.',
    'With --queue redis://host:port the rows go on a BullMQ queue in Redis instead, for `imagic worker --queue ...` processes on any machine that reaches Redis and sees the out dir at the same path (a shared folder: results come back through Redis, files through the folder). This command follows them and writes the results and the report. A worker killed mid-row loses the row to another worker, which resumes it from its last stage B checkpoint.',
  ].join('\n\n'))
  .argument('<edits.csv>', 'the batch file')
  .requiredOption('-o, --output <dir>', 'the out dir (created; a dir of another batch is refused without --force)')
  .option('-m, --model <dir|repo-id|file>', 'a diffusers folder, a Hub repo id, or a single-file SD v1 / SD 2.x / SDXL checkpoint (default: the embedded model)')
  .option('--config <file.yaml>', 'with a single-file --model: its LDM / sgm inference YAML')
  .option('--tokenizer <dir|repo-id>', 'a tokenizer folder (or a model folder with tokenizer/ and tokenizer_2/) or a Hub repo id, for a single-file --model')
  .option('--text-encoder-heads <n>', 'with a single-file --model whose text encoder is not 64-wide per head: its head count', int('text-encoder-heads', 1))
  .option('--clip-model <dir|repo-id>', "the CLIP that scores every row (default: the model folder's clip/, else openai/clip-vit-large-patch14 from the Hub)")
  .addOption(new Option('--preset <name>', 'training preset for rows without their own (default: shapes on the embedded model, else default)').choices(['default', 'thorough', 'fast', 'shapes']))
  .option('--steps-a <n>', 'stage A steps', int('steps-a', 0))
  .option('--steps-b <n>', 'stage B steps', int('steps-b', 0))
  .addOption(new Option('--train <what>', 'what stage B trains (default: the preset\'s): LoRA adapters (small sessions), all UNet weights, or the attention weights').choices([...TRAIN_MODES]))
  .option('--steps <n>', 'sampling steps', int('steps', 1))
  .option('-g, --guidance <scale>', 'classifier-free guidance scale', num('guidance'))
  .option('--checkpoint-every <n>', 'save resumable stage B progress every n steps (default 100)', int('checkpoint-every', 0))
  .option('--baselines', 'also run SDEdit and DDIM inversion on every row (as imagic compare)')
  .option('--strength <s>', "SDEdit's strength with --baselines", num('strength'), 0.6)
  .option('-j, --jobs <n>', 'rows at once, each in its own process (a many-core CPU, several GPUs)', int('jobs', 1), 1)
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--devices <list>', 'devices for the --jobs processes in turn, e.g. cuda:0,cuda:1', (v: string) => v.split(',').map((d) => d.trim()).filter(Boolean))
  .option('--threads <n>', 'CPU threads for libtorch per process (default: all, divided among --jobs)', int('threads', 1))
  .option('--queue <redis-url>', 'put the rows on a Redis queue (BullMQ) for imagic worker processes, e.g. redis://127.0.0.1:6379')
  .option('--allow-outside', "allow rows whose image lies outside the CSV's folder")
  .option('-f, --force', 'replace the results of another batch in the out dir')
  .option('--offline', 'never use the network: the model must be a folder or already in the cache')
  .option('-q, --quiet', 'print only errors and the summary')
  .action(async (csv: string, o) => {
    const r = await batch(csv, { ...o, model: resolveModel(o.model) });
    process.stdout.write(`${r.rows} rows: ${r.ok} done, ${r.failed} failed (${r.skipped} from an earlier run); report ${r.report}\n`);
    if (r.failed > 0) process.exitCode = 3;
  });

program
  .command('worker')
  .summary('take rows of `imagic batch --queue` from Redis and run them (any number of workers, on any machine)')
  .description('Connect to the Redis of `imagic batch --queue` and run the rows it holds, one at a time, until stopped (Ctrl-C stops at the next step; the row goes back to the queue). The batch\'s out dir must be reachable at the same path (a shared folder). While Redis cannot be reached the worker says so and retries with backoff. A worker killed without warning (kill -9) holds its row until its lock expires (--lock-ms), then another worker resumes it from its session.')
  .requiredOption('--queue <redis-url>', 'the Redis of the batch, e.g. redis://127.0.0.1:6379')
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--threads <n>', 'CPU threads for libtorch', int('threads', 1))
  .option('--lock-ms <n>', 'how long a row stays locked without a sign of life from its worker', int('lock-ms', 1000), DEFAULT_LOCK_MS)
  .option('--offline', 'never use the network: models must be folders or already in the cache')
  .option('-q, --quiet', 'print nothing but errors')
  .action(async (o) => {
    const log = (m: string) => {
      if (!o.quiet) process.stderr.write(`[worker ${process.pid}] ${m}\n`);
    };
    const w = startWorker(o.queue, { device: o.device, threads: o.threads, offline: o.offline, lockMs: o.lockMs, log });
    log(`taking rows from ${o.queue} on ${o.device}; Ctrl-C stops`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        log('stopping (a row in progress stops at its next step and goes back to the queue)...');
        void w.close().then(resolve);
        // Redis unreachable, or a row that does not stop: do not hang.
        setTimeout(() => process.exit(130), 15_000).unref();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  });

program
  .command('convert')
  .summary('convert a single-file SD v1 / SD 2.x / SDXL checkpoint to a diffusers folder')
  .description('Write a single-file checkpoint in the original LDM layout (SD 1.x, 2.x) or sgm layout (SDXL base), as model sites distribute them (.safetensors or .ckpt), as a diffusers folder: model_index.json, unet/, vae/, text_encoder/ (and text_encoder_2/ for SDXL), scheduler/ (and tokenizer/, tokenizer_2/ with --tokenizer). Written to a temporary folder, then renamed into place.')
  .argument('<file>', 'the single-file checkpoint (.safetensors, or .ckpt: read by a restricted reader that runs nothing)')
  .argument('<out-dir>', 'the diffusers folder to write')
  .option('--config <file.yaml>', 'its LDM inference YAML (v1-inference.yaml, v2-inference-v.yaml, sd_xl_base.yaml, ...): attention heads, v-prediction, text layer; needed where the weights leave them open')
  .option('--tokenizer <dir>', 'a CLIP tokenizer folder (vocab.json, merges.txt) to copy into tokenizer/, or a model folder with tokenizer/ (and tokenizer_2/ for SDXL)')
  .option('--text-encoder-heads <n>', 'the text encoder\'s head count when it is not 64 wide per head', int('text-encoder-heads', 1))
  .option('--allow-ckpt-objects', 'with a .ckpt whose pickle also holds objects other than tensors (PyTorch Lightning\'s training state in old SD 1.x files): convert its tensors and leave those objects inert (nothing is ever run)')
  .addOption(new Option('--dtype <dtype>', 'dtype of the written weights (default: float32)').choices(['float32', 'float16', 'bfloat16']))
  .option('-f, --force', 'replace an existing output folder')
  .option('-q, --quiet', 'print nothing but errors')
  .action((file: string, outDir: string, o) => {
    convert(file, outDir, o);
  });

program
  .command('train-shapes')
  .summary('train the embedded Shapes-64 model from scratch (resumable), and export it')
  .description([
    'Train the embedded Shapes-64 text-to-image model from scratch on rendered data (docs/shapes-64.md): first the VAE (64x64 -> 8x8x4), then the text encoder and UNet together on its latents, with caption dropout and partial captions.',
    'The run folder holds run.json, resumable checkpoints and log.jsonl (mean loss every 50 steps). Ctrl-C saves a checkpoint; running the same command again resumes, with the same result as an uninterrupted run. A larger --unet-steps continues a finished run (the learning-rate schedule is then re-planned over the new total).',
    'With --export, the trained weights (EMA, fp16) are written as a diffusers folder that every imagic command loads with --model.',
  ].join('\n\n'))
  .argument('[run-dir]', 'the training run folder', 'runs/shapes-64')
  .option('--vae-steps <n>', `VAE training steps (default ${DEFAULT_STEPS.vae})`, int('vae-steps', 1))
  .option('--unet-steps <n>', `text encoder + UNet training steps (default ${DEFAULT_STEPS.unet})`, int('unet-steps', 1))
  .option('--seed <n>', 'seed of the data, noise and initialization (default 0)', int('seed', 0))
  .option('--dataset <n>', `renders encoded once for the UNet phase (default ${DEFAULT_TRAIN_SETTINGS.unet.dataset})`, int('dataset', 1))
  .option('--checkpoint-every <n>', 'save a resumable checkpoint every n steps', int('checkpoint-every', 1), 500)
  .option('--export <dir>', 'write the trained model as a diffusers folder here (e.g. models/shapes-64)')
  .option('--export-only', 'only export the run as it is (no training)')
  .option('-f, --force', 'replace an existing export folder (its README.md model card is kept)')
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--threads <n>', 'CPU threads for libtorch', int('threads', 1))
  .option('-q, --quiet', 'print nothing but errors')
  .action(async (dir: string, o) => {
    const r = await trainShapesCommand(dir, o);
    if (r.interrupted) process.exitCode = 130;
  });

program
  .command('train-shapes-clip')
  .summary('train the Shapes-64 domain CLIP (the metrics of --eta auto on the embedded model), and export it')
  .description([
    'Train a small CLIP (transformers CLIPModel layout) on Shapes-64 renders and their full and partial captions, contrastively (a partial caption matches every image that has what it names, so the loss counts every true match). It is what `--eta auto` scores candidates with on the embedded model (models/shapes-64/clip).',
    'Batches come in groups: a random picture and variants that each change one attribute, so the fine differences are learned. The run folder holds state.json and checkpoint.safetensors (saved every 500 steps and at Ctrl-C); running the same command again resumes. At the end it prints the zero-shot reading of each attribute on 600 fresh renders.',
  ].join('\n\n'))
  .argument('[run-dir]', 'the training run folder', 'runs/shapes-clip')
  .option('--steps <n>', `training steps (default ${DEFAULT_CLIP_TRAIN_SETTINGS.steps})`, int('steps', 1))
  .option('--lr <lr>', `peak learning rate (default ${DEFAULT_CLIP_TRAIN_SETTINGS.lr})`, num('lr', { positive: true }))
  .option('--warmup <n>', `warm-up steps (default ${DEFAULT_CLIP_TRAIN_SETTINGS.warmup})`, int('warmup', 0))
  .option('--group-size <n>', `pictures per group of one-attribute variants; 1: random batches (default ${DEFAULT_CLIP_TRAIN_SETTINGS.groupSize})`, int('group-size', 1))
  .option('--variants <list>', 'the attributes a variant may change, e.g. shape,shape,size,position,color,background (repeat one to weight it)')
  .option('--init <checkpoint>', "start from another run's checkpoint.safetensors instead of a random initialization")
  .option('--seed <n>', 'seed of the data and initialization (default 0)', int('seed', 0))
  .option('--export <dir>', 'write the trained CLIP as a CLIPModel folder here (e.g. models/shapes-64/clip)')
  .option('-f, --force', 'replace an existing export folder')
  .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
  .option('--threads <n>', 'CPU threads for libtorch', int('threads', 1))
  .option('-q, --quiet', 'print nothing but errors')
  .action(async (dir: string, o) => {
    const r = await trainShapesClipCommand(dir, o);
    if (r.interrupted) process.exitCode = 130;
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`imagic: ${e.message}\n`);
  process.exitCode = 1;
});
