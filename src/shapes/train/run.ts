// A training run's folder: run.json (settings, progress, time spent), written atomically, and
// log.jsonl (one line per logged interval: phase, step, mean loss, learning rate, time).
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TrainSettings } from './trainer.js';

export type TrainPhase = 'vae' | 'unet';

export interface RunJson {
  version: 1;
  settings: TrainSettings;
  progress: {
    /** Completed steps per phase. */
    vae: number;
    unet: number;
    /** 1 / std of the VAE's latents, measured once the VAE is done (null before). */
    scalingFactor: number | null;
    /** Wall-clock seconds spent training each phase, over all sessions of the run. */
    seconds: { vae: number; unet: number };
  };
  created: string;
  updated: string;
}

export function readRun(dir: string): RunJson | null {
  const file = path.join(dir, 'run.json');
  if (!existsSync(file)) return null;
  let json: RunJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as RunJson;
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}): not a training run folder, or a damaged one`);
  }
  if (json.version !== 1) throw new Error(`${file}: run format ${json.version} is not one this imagic reads (1)`);
  return json;
}

export function writeRun(dir: string, run: RunJson): void {
  run.updated = new Date().toISOString();
  const file = path.join(dir, 'run.json');
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, `${JSON.stringify(run, null, 2)}\n`);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function appendLog(dir: string, phase: TrainPhase, step: number, loss: number, lr: number): void {
  appendFileSync(path.join(dir, 'log.jsonl'), `${JSON.stringify({ phase, step, loss: Number(loss.toPrecision(6)), lr: Number(lr.toPrecision(4)), time: new Date().toISOString() })}\n`);
}
