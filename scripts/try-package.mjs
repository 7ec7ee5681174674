// Packs imagic and installs the tarball into a new, empty project, as a user would, without the
// network: `node scripts/try-package.mjs <project-dir> [--json]`.
//
// Offline works because the new project gets a package-lock.json derived from this repository's: the
// same versions of imagic's dependencies (the lock's non-dev entries, with their integrity hashes),
// and imagic itself from the tarball. `npm ci --offline` then needs only the tarballs, which this
// repository's own `npm install` left in npm's cache (~/.npm/_cacache); no registry metadata is read.
// imagic's install script runs as in any install: it finds libtorch and compiles the addon.
// Prints what it measured (tarball size, unpacked size, install time) as JSON with --json.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const dir = path.resolve(args.find((a) => !a.startsWith('--')) ?? path.join(root, 'out', 'try-package'));
const log = (m) => json || console.log(`[try-package] ${m}`);

function run(cmd, argv, cwd, env = {}) {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (exit ${r.status}):\n${(r.stdout ?? '').slice(-4000)}\n${(r.stderr ?? '').slice(-4000)}`);
  return r.stdout;
}

function duBytes(p) {
  const s = statSync(p);
  if (!s.isDirectory()) return s.size;
  return readdirSync(p).reduce((n, f) => n + duBytes(path.join(p, f)), 0);
}

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

// 1. The tarball, from the built tree (dist/ and dist/web must be built: npm run setup).
log('npm pack');
const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root))[0];
const tarball = path.join(dir, packed.filename);

// 2. The project: imagic from the tarball, its dependencies pinned as this repository's lock has them.
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
const project = path.join(dir, 'project');
mkdirSync(project);
const spec = `file:${path.relative(project, tarball)}`;
const packages = {
  '': { name: 'try-imagic', version: '1.0.0', dependencies: { imagic: spec } },
  'node_modules/imagic': {
    version: pkg.version, resolved: spec, integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
    hasInstallScript: true, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines,
  },
};
for (const [key, entry] of Object.entries(lock.packages)) {
  if (key === '' || entry.dev || key.startsWith('node_modules/imagic/')) continue;
  const { devOptional, ...rest } = entry;
  packages[key] = rest;
}
// A TypeScript project on Node has Node's types (imagic's declarations use Buffer and AbortSignal).
const typesNode = lock.packages['node_modules/@types/node'];
packages[''].devDependencies = { '@types/node': `^${typesNode.version}` };
for (const key of ['node_modules/@types/node', 'node_modules/undici-types']) packages[key] = lock.packages[key];
writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ name: 'try-imagic', version: '1.0.0', private: true, type: 'module', dependencies: { imagic: spec }, devDependencies: packages[''].devDependencies }, null, 2)}\n`);
writeFileSync(path.join(project, 'package-lock.json'), `${JSON.stringify({ name: 'try-imagic', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);

// 3. The install, offline, with imagic's install script's output shown.
log(`npm ci --offline in ${project} (compiles the addon: a few minutes on 2 cores)`);
const t0 = Date.now();
const out = run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], project);
const installSeconds = (Date.now() - t0) / 1000;
const result = {
  project, tarball, tarballBytes: statSync(tarball).size, unpackedBytes: packed.unpackedSize, files: packed.entryCount,
  installedBytes: duBytes(path.join(project, 'node_modules', 'imagic')), nodeModulesBytes: duBytes(path.join(project, 'node_modules')), installSeconds,
  installLog: out.split('\n').filter((l) => l.startsWith('[imagic]')),
};
if (json) console.log(JSON.stringify(result));
else {
  for (const l of result.installLog) log(l);
  log(`tarball ${(result.tarballBytes / 1e6).toFixed(1)} MB (${result.files} files, ${(result.unpackedBytes / 1e6).toFixed(1)} MB unpacked); installed imagic ${(result.installedBytes / 1e6).toFixed(1)} MB, node_modules ${(result.nodeModulesBytes / 1e6).toFixed(1)} MB; npm ci took ${installSeconds.toFixed(0)} s`);
  log(`try it: cd ${project} && npx imagic demo`);
}
