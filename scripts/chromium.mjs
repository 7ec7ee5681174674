// Finds a Chromium for the browser tests (Debian's `chromium` package, driven by puppeteer-core), and
// installs it with apt-get when missing and this process may (root, or sudo without a password).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

export function findChromium() {
  if (process.env.CHROMIUM_PATH) return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : null;
  return CANDIDATES.find((p) => existsSync(p)) ?? null;
}

function can(cmd, args) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** Returns { path } or { why } (what happened, for the log). */
export function ensureChromium(say) {
  const found = findChromium();
  if (found) return { path: found };
  if (process.env.CHROMIUM_PATH) return { why: `CHROMIUM_PATH is ${process.env.CHROMIUM_PATH}, which does not exist` };
  if (!can('sh', ['-c', 'command -v apt-get'])) return { why: 'no chromium, and no apt-get to install it (set CHROMIUM_PATH to a Chromium or Chrome executable)' };
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? [] : can('sudo', ['-n', 'true']) ? ['sudo', '-n'] : null;
  if (sudo === null) return { why: 'no chromium, and installing it needs root: run `sudo apt-get install chromium` (or set CHROMIUM_PATH)' };
  const run = (args) => {
    const [cmd, ...rest] = [...sudo, ...args];
    return spawnSync(cmd, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  };
  say('installing chromium for the browser tests (apt-get install chromium)');
  if (!run(['apt-get', 'install', '-y', '--no-install-recommends', 'chromium'])) {
    run(['apt-get', 'update']);
    if (!run(['apt-get', 'install', '-y', '--no-install-recommends', 'chromium'])) return { why: 'apt-get install chromium failed (see above); set CHROMIUM_PATH to a Chromium or Chrome executable' };
  }
  const p = findChromium();
  return p ? { path: p } : { why: 'apt-get installed chromium, but no executable was found at the usual paths' };
}

export function chromiumVersion(p) {
  try {
    return execFileSync(p, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown version';
  }
}
