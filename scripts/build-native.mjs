// Builds the Node-API addon (build/Release/imagic.node) against libtorch with g++, incrementally
// and in parallel; `--bench` also builds the C++ benchmark (build/Release/engine-bench).
// No node-gyp: a Node-API addon does not link against node, so node's headers are all it needs.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch } from './libtorch.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.join(root, 'native', 'src');
const objDir = path.join(root, 'build', 'obj');
const outDir = path.join(root, 'build', 'Release');
const quiet = process.argv.includes('--quiet');
const withBench = process.argv.includes('--bench');
const log = (msg) => quiet || console.log(`[build:native] ${msg}`);

function napiIncludes() {
  const dirs = [];
  if (process.env.NAPI_INCLUDE) dirs.push(...process.env.NAPI_INCLUDE.split(':'));
  dirs.push(path.join(path.dirname(process.execPath), '..', 'include', 'node'));
  try {
    const require = createRequire(path.join(root, 'package.json'));
    dirs.push(require('node-addon-api').include_dir.replace(/^"|"$/g, ''));
  } catch {
    // the device machine carries node-addon-api's headers in NAPI_INCLUDE instead
  }
  const ok = dirs.filter((d) => existsSync(d));
  if (!ok.some((d) => existsSync(path.join(d, 'node_api.h')))) {
    throw new Error(`node_api.h not found in ${dirs.join(', ')}; set NAPI_INCLUDE`);
  }
  if (!ok.some((d) => existsSync(path.join(d, 'napi.h')))) {
    throw new Error('napi.h (node-addon-api) not found: run `npm install` or set NAPI_INCLUDE');
  }
  return ok;
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} failed (exit ${code}):\n${err.slice(-6000)}`)),
    );
  });
}

async function pool(tasks, n) {
  const queue = [...tasks];
  const workers = Array.from({ length: Math.max(1, n) }, async () => {
    while (queue.length > 0) await queue.shift()();
  });
  await Promise.all(workers);
}

const mtime = (f) => (existsSync(f) ? statSync(f).mtimeMs : -1);

async function main() {
  const torch = findLibtorch();
  if (!torch) {
    throw new Error(
      'libtorch not found. Set LIBTORCH to a libtorch folder, or install torch for python3 ' +
        '(`python3 -m pip install torch==2.13.0`; `npm run setup` does this).',
    );
  }
  const cudaInclude = '/usr/local/cuda/include';
  const cflags = [
    '-O2', '-std=c++17', '-fPIC', '-fvisibility=hidden', '-Wno-deprecated-declarations',
    `-D_GLIBCXX_USE_CXX11_ABI=${torch.abi}`, '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    ...(torch.cuda ? ['-DIMAGIC_CUDA', ...(existsSync(cudaInclude) ? [`-I${cudaInclude}`] : [])] : []),
    ...napiIncludes().map((d) => `-I${d}`),
    ...torch.includeDirs.map((d) => `-isystem${d}`),
  ];
  const libs = ['-ltorch', '-ltorch_cpu', '-lc10', ...(torch.cuda ? ['-ltorch_cuda', '-lc10_cuda'] : [])];
  const ldflags = [
    ...torch.libDirs.flatMap((d) => [`-L${d}`, `-Wl,-rpath,${d}`]),
    // Bind every symbol at load: a libtorch of another version or C++ ABI then fails the require with
    // 'undefined symbol' (which the engine explains) instead of killing the process at the first call.
    '-Wl,-z,now', '-Wl,--no-as-needed', ...libs,
  ];
  const cxx = process.env.CXX || 'g++';
  const signature = createHash('sha256').update(JSON.stringify([cxx, cflags, ldflags])).digest('hex');
  mkdirSync(objDir, { recursive: true });
  mkdirSync(outDir, { recursive: true });
  const sigFile = path.join(objDir, 'flags.sha256');
  const flagsChanged = !existsSync(sigFile) || readFileSync(sigFile, 'utf8') !== signature;
  const headerTime = Math.max(...readdirSync(srcDir).filter((f) => f.endsWith('.h')).map((f) => mtime(path.join(srcDir, f))));

  const sources = readdirSync(srcDir).filter((f) => f.endsWith('.cc')).sort();
  const stale = sources.filter((f) => {
    const obj = path.join(objDir, f.replace(/\.cc$/, '.o'));
    return flagsChanged || mtime(obj) < Math.max(mtime(path.join(srcDir, f)), headerTime);
  });
  const addon = path.join(outDir, 'imagic.node');
  if (stale.length > 0) log(`libtorch: ${torch.source}${torch.cuda ? ' (CUDA)' : ''}; compiling ${stale.length} file(s)`);
  const jobs = Number(process.env.JOBS) || os.availableParallelism();
  await pool(
    stale.map((f) => async () => {
      const obj = path.join(objDir, f.replace(/\.cc$/, '.o'));
      const t0 = Date.now();
      await run(cxx, [...cflags, '-c', path.join(srcDir, f), '-o', `${obj}.tmp`]);
      renameSync(`${obj}.tmp`, obj);
      log(`  ${f} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }),
    jobs,
  );
  writeFileSync(sigFile, signature);
  const objs = sources.map((f) => path.join(objDir, f.replace(/\.cc$/, '.o')));
  if (stale.length > 0 || mtime(addon) < Math.max(...objs.map(mtime))) {
    await run(cxx, ['-shared', ...objs, '-o', `${addon}.tmp`, ...ldflags]);
    renameSync(`${addon}.tmp`, addon);
    log(`built ${path.relative(root, addon)}`);
  }
  if (withBench) {
    const benchSrc = path.join(root, 'native', 'bench', 'engine-bench.cc');
    const bench = path.join(outDir, 'engine-bench');
    if (flagsChanged || mtime(bench) < mtime(benchSrc)) {
      log('compiling the C++ benchmark');
      const benchFlags = cflags.filter((f) => f !== '-fPIC' && f !== '-fvisibility=hidden');
      await run(cxx, [...benchFlags, benchSrc, '-o', `${bench}.tmp`, ...ldflags]);
      renameSync(`${bench}.tmp`, bench);
    }
  }
  writeFileSync(path.join(outDir, 'libtorch.json'), JSON.stringify(torch, null, 2));
}

// One build at a time per checkout (parallel `npm test` runs, helpers): a lock folder, waited on.
async function withLock(fn) {
  const lock = path.join(root, 'build', '.lock');
  mkdirSync(path.dirname(lock), { recursive: true });
  for (let waited = 0; ; waited += 500) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (waited > 600_000) throw new Error(`build lock ${lock} held for 10 minutes; remove it if no build runs`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const release = () => rmSync(lock, { recursive: true, force: true });
  process.on('exit', release);
  try {
    return await fn();
  } finally {
    release();
  }
}

withLock(main).catch((e) => {
  console.error(`[build:native] ${e.message}`);
  process.exit(1);
});
