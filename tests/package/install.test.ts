// The package as users get it: `npm pack`, installed into a new empty project offline (see
// scripts/try-package.mjs for how: a lockfile derived from this repository's, so npm needs only the
// tarballs its own install cached), its install script compiling the addon against the libtorch it
// finds; then each entry point imported from JavaScript and TypeScript, `npx imagic --version`, a
// fast edit through the public API, and `npx imagic demo`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

interface Installed {
  project: string;
  tarballBytes: number;
  unpackedBytes: number;
  installedBytes: number;
  installSeconds: number;
  installLog: string[];
}

function run(cmd: string, args: string[], cwd: string, timeout = 300_000) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, IMAGIC_ADDON: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('the npm package, installed into an empty project', { timeout: 900_000 }, () => {
  let dir: string;
  let p: Installed;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-package-'));
    const r = run(process.execPath, [path.join(root, 'scripts', 'try-package.mjs'), dir, '--json'], root, 900_000);
    assert.equal(r.code, 0, `try-package failed:\n${r.out}\n${r.err}`);
    p = JSON.parse(r.out.trim().split('\n').pop()!) as Installed;
    console.log(`package: tarball ${(p.tarballBytes / 1e6).toFixed(1)} MB, unpacked ${(p.unpackedBytes / 1e6).toFixed(1)} MB, installed ${(p.installedBytes / 1e6).toFixed(1)} MB; npm ci --offline ${p.installSeconds.toFixed(0)} s`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('says at install where libtorch came from and how to point elsewhere, and builds the addon', () => {
    const text = p.installLog.join('\n');
    assert.match(text, /\[imagic\] libtorch: (python3 torch|\$LIBTORCH|system libtorch)/);
    assert.match(text, /LIBTORCH=\/path\/to\/libtorch or PYTHON=/);
    assert.match(text, /\[imagic\] ready in \d+ s: libtorch \d+\.\d+/);
    assert.ok(existsSync(path.join(p.project, 'node_modules', 'imagic', 'build', 'Release', 'imagic.node')));
    // What the package ships, and what it does not.
    const pkgDir = path.join(p.project, 'node_modules', 'imagic');
    for (const f of ['models/shapes-64/unet/diffusion_pytorch_model.safetensors', 'dist/web/index.html', 'dist/src/index.d.ts', 'CHANGELOG.md', 'LICENSE']) {
      assert.ok(existsSync(path.join(pkgDir, f)), `the package lacks ${f}`);
    }
    for (const f of ['dist/tests', 'src', 'tests', 'bench', 'scripts/setup.mjs']) assert.ok(!existsSync(path.join(pkgDir, f)), `the package ships ${f}`);
    assert.ok(p.tarballBytes < 30e6, `tarball ${p.tarballBytes} bytes`);
  });

  it('runs `npx imagic --version` and `npx imagic --help`', () => {
    const v = run('npx', ['--offline', 'imagic', '--version'], p.project);
    assert.equal(v.code, 0, v.err);
    assert.equal(v.out.trim(), version);
    const h = run('npx', ['--offline', 'imagic', '--help'], p.project);
    assert.equal(h.code, 0, h.err);
    assert.match(h.out, /Usage: imagic/);
    assert.match(h.out, /edit/);
  });

  it('imports each entry point from JavaScript, and nothing else', () => {
    writeFileSync(path.join(p.project, 'entries.mjs'), [
      "import * as main from 'imagic';",
      "import * as engine from 'imagic/engine';",
      "import * as models from 'imagic/models';",
      "let blocked = '';",
      "try { await import('imagic/dist/src/io/hub.js'); } catch (e) { blocked = e.code; }",
      "const t = engine.tensor([1, 2, 3]).mul(2);",
      'console.log(JSON.stringify({ version: main.VERSION, load: typeof main.loadPipeline, edit: typeof main.edit, unet: typeof models.UNet2DConditionModel, sum: t.sum().item(), blocked }));',
    ].join('\n'));
    const r = run(process.execPath, ['entries.mjs'], p.project);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), { version, load: 'function', edit: 'function', unet: 'function', sum: 12, blocked: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
  });

  it('type-checks a TypeScript user of the three entry points against the shipped declarations', () => {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    writeFileSync(path.join(p.project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: false, lib: ['ES2023'] }, include: ['use.ts'] }));
    const good = [
      "import { loadPipeline, edit, type EditOutput, type Progress } from 'imagic';",
      "import { tensor, type Tensor } from 'imagic/engine';",
      "import { UNet2DConditionModel } from 'imagic/models';",
      'export async function run(signal: AbortSignal): Promise<number> {',
      '  const pipe = await loadPipeline(undefined, { threads: 1 });',
      "  const out: EditOutput = await edit(pipe, 'in.png', 'a red square', { signal, eta: 0.8, onProgress: (p: Progress) => void p.phase });",
      '  const t: Tensor = tensor([out.eta]);',
      '  void UNet2DConditionModel;',
      '  return t.item() as number;',
      '}',
    ].join('\n');
    writeFileSync(path.join(p.project, 'use.ts'), good);
    const ok = run(process.execPath, [tsc, '-p', 'tsconfig.json'], p.project);
    assert.equal(ok.code, 0, `${ok.out}${ok.err}`);
    // The declarations are really checked: a wrong option type is an error.
    writeFileSync(path.join(p.project, 'use.ts'), good.replace("eta: 0.8", "eta: 'high'"));
    const bad = run(process.execPath, [tsc, '-p', 'tsconfig.json'], p.project);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /use\.ts.*error TS2322/);
  });

  it('edits a picture on the embedded model through the public API', () => {
    writeFileSync(path.join(p.project, 'edit.mjs'), [
      "import { loadPipeline, edit } from 'imagic';",
      'const pipe = await loadPipeline(undefined, { threads: 2 });',
      'const input = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(255) };',
      'for (let y = 20; y < 44; y++) for (let x = 8; x < 32; x++) input.data.set([220, 30, 30], (y * 64 + x) * 3);',
      'const phases = new Set();',
      "const out = await edit(pipe, input, 'a red square', { settings: { stepsA: 10, stepsB: 5 }, steps: 5, eta: 0.8, onProgress: (p) => phases.add(p.phase) });",
      'let red = 0;',
      'for (let i = 0; i < out.image.data.length; i += 3) if (out.image.data[i] > 150 && out.image.data[i + 1] < 100) red++;',
      'console.log(JSON.stringify({ w: out.image.width, h: out.image.height, eta: out.eta, red, phases: [...phases] }));',
      'pipe.dispose();',
    ].join('\n'));
    const r = run(process.execPath, ['edit.mjs'], p.project);
    assert.equal(r.code, 0, r.err);
    const o = JSON.parse(r.out) as { w: number; h: number; eta: number; red: number; phases: string[] };
    assert.deepEqual([o.w, o.h, o.eta], [64, 64, 0.8]);
    assert.deepEqual(o.phases, ['stage A', 'stage B', 'render']);
    assert.ok(o.red > 100, `the output has ${o.red} red pixels: the shape is gone`);
  });

  it('runs `npx imagic demo`', () => {
    const r = run('npx', ['--offline', 'imagic', 'demo', '--threads', '2'], p.project, 600_000);
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    assert.match(r.out, /demo took/);
    assert.ok(existsSync(path.join(p.project, 'demo-output', 'output.png')));
  });
});
