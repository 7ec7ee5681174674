// Finds a program from Debian that the tests drive (chromium for the page, redis-server for the batch
// queue), and installs its package with apt-get when missing and this process may (root, or sudo
// without a password). Says what happened either way.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const TOOLS = {
  chromium: { pkg: 'chromium', env: 'CHROMIUM_PATH', paths: ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'], for: 'the browser tests' },
  redis: { pkg: 'redis-server', env: 'REDIS_SERVER', paths: ['/usr/bin/redis-server', '/usr/local/bin/redis-server'], for: 'the batch queue tests' },
};

export function findTool(t) {
  if (process.env[t.env]) return existsSync(process.env[t.env]) ? process.env[t.env] : null;
  return t.paths.find((p) => existsSync(p)) ?? null;
}

const can = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** Returns { path } or { why }. */
export function ensureTool(t, say) {
  const found = findTool(t);
  if (found) return { path: found };
  if (process.env[t.env]) return { why: `${t.env} is ${process.env[t.env]}, which does not exist` };
  if (!can('sh', ['-c', 'command -v apt-get'])) return { why: `no ${t.pkg}, and no apt-get to install it (set ${t.env} to its executable)` };
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? [] : can('sudo', ['-n', 'true']) ? ['sudo', '-n'] : null;
  if (sudo === null) return { why: `no ${t.pkg}, and installing it needs root: run \`sudo apt-get install ${t.pkg}\` (or set ${t.env})` };
  const run = (args) => {
    const [cmd, ...rest] = [...sudo, ...args];
    return spawnSync(cmd, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  };
  say(`installing ${t.pkg} for ${t.for} (apt-get install ${t.pkg})`);
  if (!run(['apt-get', 'install', '-y', '--no-install-recommends', t.pkg])) {
    run(['apt-get', 'update']);
    if (!run(['apt-get', 'install', '-y', '--no-install-recommends', t.pkg])) return { why: `apt-get install ${t.pkg} failed (see above); set ${t.env} to its executable` };
  }
  const p = findTool(t);
  return p ? { path: p } : { why: `apt-get installed ${t.pkg}, but no executable was found at the usual paths` };
}

export function toolVersion(p) {
  try {
    return execFileSync(p, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0];
  } catch {
    return 'unknown version';
  }
}
