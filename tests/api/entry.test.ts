// The package's entry points ('imagic', 'imagic/engine', 'imagic/models' through the exports map,
// nothing else) and the `imagic` executable's answers that need no model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../fixtures.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const bin = path.join(repoRoot, 'dist', 'src', 'cli', 'bin.js');

test("'imagic', 'imagic/engine' and 'imagic/models' load and expose the API", async () => {
  const main = await import('imagic');
  for (const name of ['loadPipeline', 'edit', 'render', 'compare', 'sdedit', 'ddimInversion', 'generate', 'loadScorer', 'toRgbImage', 'readImage', 'writePng', 'encodePng', 'ImageError', 'EditSession', 'SessionError', 'resolveSettings']) {
    assert.equal(typeof (main as Record<string, unknown>)[name], 'function', `imagic exports ${name}`);
  }
  assert.equal(main.VERSION, pkg.version);
  assert.match(main.VERSION, /^\d+\.\d+\.\d+/);
  assert.equal(main.PRESETS.shapes.eta, 0.8);
  assert.ok(main.EMBEDDED_MODEL.endsWith(path.join('models', 'shapes-64')));
  assert.equal(main.EMBEDDED_MODEL, path.join(repoRoot, 'models', 'shapes-64'));

  const engine = await import('imagic/engine');
  assert.equal(typeof engine.tensor, 'function');
  const t = engine.tensor([1, 2, 3]).mul(2);
  assert.deepEqual(t.toFlatArray(), [2, 4, 6]);
  t.dispose();

  const models = await import('imagic/models');
  assert.equal(typeof models.UNet2DConditionModel, 'function');
  assert.equal(typeof models.loadSafetensors, 'function');
});

test('a module outside the exports map is refused', async () => {
  const spec = 'imagic/dist/src/io/hub.js';
  await assert.rejects(import(spec), (e: NodeJS.ErrnoException) => e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED');
  // './package.json' is exported (a variable specifier: tsc would copy an imported JSON into dist/).
  const json = 'imagic/package.json';
  const pkgJson = (await import(json, { with: { type: 'json' } })) as { default: { version: string } };
  assert.equal(pkgJson.default.version, pkg.version);
});

test('imagic --version prints the package version', () => {
  for (const flag of ['--version', '-V']) {
    const r = spawnSync(process.execPath, [bin, flag], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${pkg.version}\n`);
    assert.equal(r.stderr, '');
  }
});

test('an addon that cannot load: one line on stderr, exit code 1, no stack trace', () => {
  const r = spawnSync(process.execPath, [bin, 'demo'], { encoding: 'utf8', env: { ...process.env, IMAGIC_ADDON: '/nonexistent.node' } });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^imagic: the native addon /);
  assert.match(r.stderr, /\/nonexistent\.node/);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.ok(!r.stderr.includes('    at '), r.stderr);
  assert.equal(r.stdout, '');
});
