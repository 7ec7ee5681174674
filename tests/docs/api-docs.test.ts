// The API reference in docs/api/ is generated from the doc comments by TypeDoc (typedoc.json): this
// regenerates it into a temporary folder and checks that the committed copy matches it file by file,
// so a changed doc comment or export without `npm run docs` fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../fixtures.js';

const committed = path.join(repoRoot, 'docs', 'api');
const typedoc = path.join(repoRoot, 'node_modules', 'typedoc', 'bin', 'typedoc');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imagic-api-docs-'));
const fresh = path.join(tmp, 'api');
after(() => rmSync(tmp, { recursive: true, force: true }));

const REGENERATE = 'docs/api/ is out of date: run `npm run docs` and commit the result';

/** Every file under dir, as sorted '/'-separated paths relative to it. */
function listFiles(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) => {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      return e.isDirectory() ? listFiles(dir, p) : [p];
    })
    .sort();
}

before(async () => {
  assert.ok(existsSync(typedoc), `${typedoc} is missing: run npm install (typedoc is a devDependency)`);
  const child = spawn(process.execPath, [typedoc, '--out', fresh, '--logLevel', 'Error'], {
    cwd: repoRoot,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  assert.equal(code, 0, `typedoc failed (exit ${code}):\n${output.slice(-4000)}`);
}, { timeout: 180_000 });

test('docs/api/ matches the doc comments (same files, same contents)', () => {
  assert.ok(existsSync(committed), `docs/api/ is missing: ${REGENERATE}`);
  const want = listFiles(fresh);
  const have = listFiles(committed);
  const missing = want.filter((f) => !have.includes(f));
  const extra = have.filter((f) => !want.includes(f));
  assert.ok(
    missing.length === 0 && extra.length === 0,
    `${REGENERATE}\n  missing from docs/api/: ${missing.join(', ') || 'none'}\n  no longer generated: ${extra.join(', ') || 'none'}`,
  );
  const differ = want.filter((f) => readFileSync(path.join(fresh, f), 'utf8') !== readFileSync(path.join(committed, f), 'utf8'));
  assert.ok(differ.length === 0, `${REGENERATE}\n  ${differ.length} file(s) differ: ${differ.slice(0, 20).join(', ')}${differ.length > 20 ? ', ...' : ''}`);
});

test('the entry points are documented: imagic (loadPipeline, edit, render) and imagic/engine (Tensor)', () => {
  const main = readFileSync(path.join(fresh, 'imagic', 'README.md'), 'utf8');
  for (const name of ['loadPipeline', 'edit', 'render']) assert.match(main, new RegExp(`\\[${name}\\]\\(functions/${name}\\.md\\)`), `imagic's page lists ${name}`);
  const engine = readFileSync(path.join(fresh, 'imagic', 'engine', 'README.md'), 'utf8');
  assert.match(engine, /\[Tensor\]\(classes\/Tensor\.md\)/, "imagic/engine's page lists Tensor");
  const index = readFileSync(path.join(fresh, 'README.md'), 'utf8');
  for (const m of ['imagic', 'imagic/engine', 'imagic/models']) assert.ok(index.includes(`[${m}](`), `the index links ${m}`);
});
