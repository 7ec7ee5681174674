// A copy of the tiny golden checkpoint with a small byte-level tokenizer (ids within its 1000-token
// vocabulary), so that the CLI can be driven with text as a user would.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { fixturePath, repoRoot } from '../fixtures.js';

export const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Every letter and digit as a token, alone and word-final; bos/eos at the tiny model's 998/999; '!' at 0 (SDXL's tokenizer_2 pad). */
export function writeTinyTokenizer(folder: string, config?: Record<string, unknown>): void {
  mkdirSync(folder, { recursive: true });
  const vocab: Record<string, number> = { '!': 0 };
  let id = 1;
  for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789') {
    vocab[c] = id++;
    vocab[`${c}</w>`] = id++;
  }
  vocab['<|startoftext|>'] = 998;
  vocab['<|endoftext|>'] = 999;
  writeFileSync(path.join(folder, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(path.join(folder, 'merges.txt'), '#version: 0.2\n');
  if (config) writeFileSync(path.join(folder, 'tokenizer_config.json'), JSON.stringify(config));
}

/** Copies tiny-sdxl into `dir`/tiny-sdxl with tokenizer/ and tokenizer_2/ (pad '!', as SDXL base); returns the model folder. */
export function makeTinyXLModel(dir: string): string {
  const model = path.join(dir, 'tiny-sdxl');
  cpSync(fixturePath('golden/tiny-sdxl'), model, { recursive: true });
  writeTinyTokenizer(path.join(model, 'tokenizer'));
  writeTinyTokenizer(path.join(model, 'tokenizer_2'), { pad_token: '!' });
  return model;
}

/** Copies tiny-sd into `dir`/tiny-sd with a tokenizer; returns the model folder. */
export function makeTinyModel(dir: string): string {
  const model = path.join(dir, 'tiny-sd');
  cpSync(fixturePath('golden/tiny-sd'), model, { recursive: true });
  writeTinyTokenizer(path.join(model, 'tokenizer'));
  return model;
}

/** A PNG input for the tiny models: red on the left half, blue on the right (64x64 unless told). */
export async function writeRedBlueImage(file: string, width = 64, height = 64): Promise<void> {
  const px = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) px.set(i % width < width / 2 ? [220, 30, 30] : [30, 30, 220], i * 3);
  await sharp(px, { raw: { width, height, channels: 3 } }).png().toFile(file);
}

export function runCli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts the CLI and sends SIGINT once stderr matches `when`; resolves with the exit code and stderr. */
export function runCliInterrupted(args: string[], when: RegExp): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let err = '';
    let sent = false;
    child.stderr.on('data', (d) => {
      err += d;
      if (!sent && when.test(err)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('close', (code) => resolve({ code, err }));
  });
}
