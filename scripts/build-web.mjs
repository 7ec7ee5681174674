// Builds the page of `imagic serve` into dist/web/: bundles web/src/main.ts with esbuild into app.js
// (plus its source map) and copies web/index.html and web/style.css beside it. `--quiet`: silent on success.
import { build, formatMessages } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const outDir = path.join(root, 'dist', 'web');
const started = performance.now();

async function fail(what, err) {
  console.error(`[build-web] FAILED: ${what}`);
  if (err && Array.isArray(err.errors) && err.errors.length > 0) {
    const lines = await formatMessages(err.errors, { kind: 'error', color: process.stderr.isTTY });
    console.error(lines.join('').trimEnd());
  } else {
    console.error(`[build-web] ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exit(1);
}

try {
  await mkdir(outDir, { recursive: true });
} catch (err) {
  await fail(`cannot create ${path.relative(root, outDir)}`, err);
}

let result;
try {
  result = await build({
    absWorkingDir: root,
    entryPoints: ['web/src/main.ts'],
    outfile: 'dist/web/app.js',
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify: true,
    sourcemap: true,
    logLevel: 'silent',
  });
} catch (err) {
  await fail('bundling web/src/main.ts', err);
}

for (const name of ['index.html', 'style.css']) {
  try {
    await copyFile(path.join(root, 'web', name), path.join(outDir, name));
  } catch (err) {
    await fail(`copying web/${name}`, err);
  }
}

if (!quiet) {
  if (result.warnings.length > 0) {
    const lines = await formatMessages(result.warnings, { kind: 'warning', color: process.stderr.isTTY });
    console.error(lines.join('').trimEnd());
  }
  const ms = Math.round(performance.now() - started);
  console.log(`[build-web] dist/web/: app.js, app.js.map, index.html, style.css (${ms} ms)`);
}
