// The package's install script (npm runs it after `npm install imagic`): finds libtorch (or installs
// the CPU torch wheel for python3), compiles the addon against it (build/Release/imagic.node), and
// loads it once, so that a libtorch of the wrong version or C++ ABI is reported here, not at first use.
// In a clone of the repository it does nothing: `npm run setup` (and npm test / npm run demo) build there.
// npm shows this script's output when it fails, or always with `npm install --foreground-scripts`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLibtorch, LIBTORCH_WAYS } from './libtorch.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg) => console.log(`[imagic] ${msg}`);
const fail = (msg) => {
  console.error(`[imagic] ${msg}`);
  process.exit(1);
};

if (existsSync(path.join(root, 'src', 'index.ts'))) process.exit(0); // a clone: npm run setup builds
if (process.env.IMAGIC_SKIP_BUILD === '1') {
  say('IMAGIC_SKIP_BUILD=1: the addon is not built now; build it later with `npm rebuild imagic`, or set IMAGIC_ADDON');
  process.exit(0);
}
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) fail(`Node.js ${process.versions.node} is too old: imagic needs Node.js 20 or newer.`);

const t0 = Date.now();
let found;
try {
  found = ensureLibtorch({ install: process.env.IMAGIC_INSTALL_TORCH !== '0', say });
} catch (e) {
  fail(`${e.message}\nlibtorch comes from, in this order:\n  ${LIBTORCH_WAYS.join('\n  ')}`); // e.g. a LIBTORCH that is no libtorch folder
}
const { torch, why, installed } = found;
if (!torch) {
  fail(`imagic needs libtorch (PyTorch's C++ library) and found none: ${why}.\n` +
    `Provide it in one of three ways, then install again (or run \`npm rebuild imagic\`):\n  ${LIBTORCH_WAYS.join('\n  ')}`);
}
say(`libtorch: ${torch.source}${torch.cuda ? ' (CUDA)' : ''}${installed ? ', just installed' : ''}, in ${torch.libDirs.join(', ')}`);
say('  (to use another: set LIBTORCH=/path/to/libtorch or PYTHON=/path/to/python, then `npm rebuild imagic`)');

say('compiling the native addon against it (a minute or two)');
const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' });
if (build.status !== 0) fail('compiling the addon failed (above). It needs a C++17 compiler (g++; set CXX for another) and Node.js headers.');

// Load it once in a fresh process: a mismatched libtorch is explained here.
const check = spawnSync(process.execPath, ['--input-type=module', '-e',
  `const m = await import(${JSON.stringify(new URL('../dist/src/engine/index.js', import.meta.url).href)}); console.log(JSON.stringify(m.buildInfo()));`],
{ encoding: 'utf8' });
if (check.status !== 0) fail(`the addon was built but does not load:\n${(check.stderr || '').trim().split('\n').filter((l) => l.includes('imagic')).join('\n') || check.stderr}`);
const info = JSON.parse(check.stdout.trim().split('\n').pop());
say(`ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: libtorch ${info.runtimeTorchVersion || info.torchVersion}${info.builtWithCuda ? ', CUDA' : ''}. Try: npx imagic demo`);
