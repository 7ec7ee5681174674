// Installs and builds whatever is missing, idempotently: npm packages, libtorch (the CPU torch
// wheel for python3 when no libtorch is found), the native addon, the TypeScript build.
// Run by `npm test` and `npm run bench` before they start; `npm run setup` runs it alone.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (msg) => console.log(`[setup] ${msg}`);

function step(what, cmd, args, opts = {}) {
  say(what);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error || r.status !== 0) {
    console.error(`[setup] FAILED: ${what}\n[setup] command: ${cmd} ${args.join(' ')}` + (r.error ? `\n[setup] ${r.error.message}` : ''));
    process.exit(1);
  }
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  console.error(`[setup] Node.js ${process.versions.node} is too old: imagic needs Node.js 20 or newer.`);
  process.exit(1);
}

// 1. npm packages
const need = ['node-addon-api', 'typescript', '@types/node', 'sharp', 'commander', 'cli-progress', 'hono', '@hono/node-server', 'tar', 'esbuild', 'puppeteer-core', 'bullmq', 'ioredis', 'csv-parse', 'csv-stringify', 'yaml', 'node-html-parser', 'typedoc', 'typedoc-plugin-markdown'];
if (need.some((p) => !existsSync(path.join(root, 'node_modules', p, 'package.json')))) {
  step('installing npm packages (npm install)', 'npm', ['install', '--no-audit', '--no-fund']);
}

// 2. libtorch
const { ensureLibtorch, LIBTORCH_WAYS } = await import('./libtorch.mjs');
const { torch, why } = ensureLibtorch({ say });
if (!torch) {
  console.error(`[setup] no libtorch: ${why}. Provide it in one of three ways, then run this again:\n  ${LIBTORCH_WAYS.join('\n  ')}`);
  process.exit(1);
}
if (!quiet) say(`libtorch: ${torch.source}${torch.cuda ? ' (CUDA)' : ''}`);

// 3. the addon (incremental), 4. TypeScript (incremental)
const bench = process.argv.includes('--bench') ? ['--bench'] : [];
step(quiet ? 'native addon' : 'building the native addon (first time: about a minute)', process.execPath,
  [path.join(root, 'scripts', 'build-native.mjs'), ...(quiet ? ['--quiet'] : []), ...bench]);
step('compiling TypeScript', process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')]);
step(quiet ? 'web page' : 'bundling the web page (esbuild)', process.execPath, [path.join(root, 'scripts', 'build-web.mjs'), ...(quiet ? ['--quiet'] : [])]);

// 5. Debian programs the tests drive: chromium (the page), redis-server (the batch queue); npm test only
if (process.argv.includes('--browser')) {
  const { TOOLS, ensureTool, toolVersion } = await import('./apt.mjs');
  for (const t of Object.values(TOOLS)) {
    const c = ensureTool(t, say);
    if (c.path) {
      if (!quiet) say(`${t.pkg}: ${c.path} (${toolVersion(c.path)})`);
    } else {
      say(`${t.for} will be skipped: ${c.why}`);
    }
  }
}
if (!quiet) say('ready');
