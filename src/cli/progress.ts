// Progress for long synchronous loops: a cli-progress bar on a terminal (redrawn during update,
// so it moves while libtorch keeps the event loop busy), plain lines otherwise.
import { SingleBar } from 'cli-progress';

export interface StepProgress {
  update(step: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

function eta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function formatExtra(extra: Record<string, string | number>): string {
  return Object.entries(extra).map(([k, v]) => ` | ${k} ${v}`).join('');
}

/** A bar labelled `label` over `total` steps, on stderr. `quiet` draws nothing. */
export function stepProgress(label: string, total: number, quiet = false): StepProgress {
  const start = Date.now();
  if (quiet) return { update() {}, stop() {} };
  if (!process.stderr.isTTY) {
    // Not a terminal (a log file, CI): a line at each tenth of the way.
    let lastTenth = -1;
    let lastStep = -1;
    return {
      update(step, extra = {}) {
        const tenth = Math.floor((step / total) * 10);
        if (tenth > lastTenth || (step === total && lastStep !== total)) {
          lastTenth = tenth;
          lastStep = step;
          const el = (Date.now() - start) / 1000;
          process.stderr.write(`${label}: ${step}/${total}${formatExtra(extra)} (${el.toFixed(1)} s, ETA ${eta((el / Math.max(step, 1)) * (total - step))})\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new SingleBar({
    format: `${label.padEnd(10)} {bar} {value}/{total}{extra} | {rate} | elapsed {elapsedFmt} | ETA {etaFmt}`,
    barCompleteChar: '█', barIncompleteChar: '░', hideCursor: true, stream: process.stderr, synchronousUpdate: true, fps: 10,
  });
  bar.start(total, 0, { extra: '', rate: '', elapsedFmt: '00:00', etaFmt: '--:--' });
  return {
    update(step, extra = {}) {
      const el = (Date.now() - start) / 1000;
      const perStep = el / Math.max(step, 1);
      bar.update(step, { extra: formatExtra(extra), rate: perStep >= 1 ? `${perStep.toFixed(2)} s/step` : `${(1 / perStep).toFixed(1)} steps/s`, elapsedFmt: eta(el), etaFmt: eta(perStep * (total - step)) });
    },
    stop() {
      bar.stop();
    },
  };
}
