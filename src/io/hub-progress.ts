// A ready-made terminal reporter for Hub downloads on cli-progress: one bar per file and a total bar,
// each with bytes, speed and ETA. Pass `reporter.onProgress` as the download's onProgress, then stop().
import { MultiBar, type Options, type Params, type SingleBar } from 'cli-progress';
import type { HubProgress } from './hub-download.js';

/** The cli-progress options the reporter passes on (declared here so that imagic's types do not need cli-progress's). */
export interface ProgressBarOptions {
  /** Where to draw (default process.stderr). */
  stream?: NodeJS.WritableStream;
  /** Draw even when the stream is not a terminal. */
  noTTYOutput?: boolean;
  /** Milliseconds between redraws when not a terminal. */
  notTTYSchedule?: number;
  /** Redraws per second. */
  fps?: number;
  hideCursor?: boolean;
}

/** A progress reporter for downloads: pass onProgress to the download, call stop() after. */
export interface ProgressReporter {
  onProgress: (p: HubProgress) => void;
  stop: () => void;
}

/** 1536 -> '1.5 kB' (powers of 1000, as huggingface_hub's tqdm bars). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

function formatEta(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mmss = `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

interface Track {
  bar: SingleBar;
  start: number; // ms
  startBytes: number; // bytes already on disk when this run began (a resumed part)
  downloaded: number;
  total: number;
}

interface Payload {
  name: string;
  speed: number; // bytes/s
}

const NAME_WIDTH = 46; // fits 'unet/diffusion_pytorch_model.fp16.safetensors'

function render(options: Options, params: Params, payload: Payload): string {
  const size = options.barsize ?? 30;
  const frac = params.total > 0 ? Math.min(1, params.value / params.total) : 0;
  const full = Math.round(frac * size);
  const bar = '█'.repeat(full) + '░'.repeat(size - full);
  const name = payload.name.length > NAME_WIDTH ? '…' + payload.name.slice(-(NAME_WIDTH - 1)) : payload.name.padEnd(NAME_WIDTH);
  const total = params.total > 0 ? formatBytes(params.total) : '?';
  const eta = payload.speed > 0 && params.total > 0 ? (params.total - params.value) / payload.speed : Infinity;
  const tail = params.total > 0 && params.value >= params.total ? 'done ' : `ETA ${formatEta(eta)}`;
  return `${name} ${bar} ${String(Math.floor(frac * 100)).padStart(3)}% ${formatBytes(params.value).padStart(8)}/${total.padEnd(8)} `
    + `${(formatBytes(payload.speed) + '/s').padStart(10)} ${tail}`;
}

/**
 * A cli-progress MultiBar on stderr (nothing is drawn when it is not a terminal, unless
 * `noTTYOutput`): a line per downloaded file and a 'total' line summing them.
 */
export function cliProgressReporter(options: ProgressBarOptions = {}): ProgressReporter {
  const multi = new MultiBar({ hideCursor: true, clearOnComplete: false, fps: 10, barsize: 30, ...options, format: render as Options['format'] });
  const files = new Map<string, Track>();
  let totalBar: Track | undefined;
  const speed = (t: Track, now: number): number => {
    const dt = (now - t.start) / 1000;
    return dt > 0.05 ? (t.downloaded - t.startBytes) / dt : 0;
  };
  return {
    onProgress(p: HubProgress): void {
      const now = Date.now();
      totalBar ??= { bar: multi.create(0, 0, { name: 'total', speed: 0 }), start: now, startBytes: 0, downloaded: 0, total: 0 };
      let t = files.get(p.file);
      if (!t) {
        const total = p.total ?? 0;
        t = { bar: multi.create(total, p.downloaded, { name: p.file, speed: 0 }), start: now, startBytes: p.downloaded, downloaded: p.downloaded, total };
        files.set(p.file, t);
        totalBar.total += total;
        totalBar.startBytes += p.downloaded;
        totalBar.downloaded += p.downloaded;
        totalBar.bar.setTotal(totalBar.total);
      }
      if (p.total !== undefined && p.total !== t.total) {
        totalBar.total += p.total - t.total;
        t.total = p.total;
        t.bar.setTotal(p.total);
        totalBar.bar.setTotal(totalBar.total);
      }
      totalBar.downloaded += p.downloaded - t.downloaded;
      t.downloaded = p.downloaded;
      t.bar.update(t.downloaded, { speed: speed(t, now) });
      totalBar.bar.update(totalBar.downloaded, { speed: speed(totalBar, now) });
    },
    stop(): void {
      multi.stop();
    },
  };
}
