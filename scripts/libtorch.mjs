// Finds libtorch, in the order the project documents: $LIBTORCH, the torch of python3 (the `tch`
// convention), then a system libtorch. Returns null when none is found.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

function withCuda(found) {
  const lib = found.libDirs[0];
  found.cuda = existsSync(path.join(lib, 'libtorch_cuda.so'));
  return found;
}

function fromLibtorchEnv() {
  const root = process.env.LIBTORCH;
  if (!root) return null;
  const include = path.join(root, 'include');
  if (!existsSync(path.join(include, 'ATen', 'ATen.h'))) {
    throw new Error(`LIBTORCH=${root} does not look like a libtorch folder (no include/ATen/ATen.h)`);
  }
  // Official libtorch downloads are cxx11-ABI builds since 2.x; LIBTORCH_CXX11_ABI=0 overrides.
  const abi = process.env.LIBTORCH_CXX11_ABI === '0' ? 0 : 1;
  return withCuda({
    source: `$LIBTORCH (${root})`,
    includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
    libDirs: [path.join(root, 'lib')],
    abi,
  });
}

export function fromPython(python = process.env.PYTHON || 'python3') {
  const script = [
    'import json, torch',
    'from torch.utils import cpp_extension as c',
    'print(json.dumps({"inc": c.include_paths(), "lib": c.library_paths(),',
    ' "abi": int(torch._C._GLIBCXX_USE_CXX11_ABI), "version": torch.__version__}))',
  ].join('\n');
  let out;
  try {
    out = execFileSync(python, ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
  const info = JSON.parse(out.trim().split('\n').pop());
  return withCuda({
    source: `python3 torch ${info.version}`,
    includeDirs: info.inc,
    libDirs: info.lib,
    abi: info.abi,
  });
}

function fromSystem() {
  for (const prefix of ['/usr/local', '/usr']) {
    const include = path.join(prefix, 'include');
    if (!existsSync(path.join(include, 'ATen', 'ATen.h'))) continue;
    const libDirs = [path.join(prefix, 'lib'), path.join(prefix, 'lib', 'x86_64-linux-gnu'), path.join(prefix, 'lib', 'aarch64-linux-gnu')]
      .filter((d) => existsSync(d) && readdirSync(d).some((f) => f.startsWith('libtorch_cpu.so')));
    if (libDirs.length === 0) continue;
    return withCuda({
      source: `system libtorch (${prefix})`,
      includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
      libDirs,
      abi: 1,
    });
  }
  return null;
}

export function findLibtorch() {
  return fromLibtorchEnv() ?? fromPython() ?? fromSystem();
}

export const TORCH_PIN = 'torch==2.13.0';

/** The three ways to provide libtorch, as the install script and the engine's errors list them. */
export const LIBTORCH_WAYS = [
  '1. LIBTORCH=/path/to/libtorch: a libtorch folder with include/ and lib/ (e.g. unzipped from pytorch.org; LIBTORCH_CXX11_ABI=0 for a pre-cxx11 build)',
  `2. the torch of python3 (or of $PYTHON): python3 -m pip install ${TORCH_PIN}`,
  '3. a system libtorch under /usr/local or /usr (include/ATen/ATen.h and lib/libtorch_cpu.so)',
];

/**
 * findLibtorch(), else (unless `install` is false) the CPU torch wheel installed for python3 with pip.
 * Returns { torch } or { torch: null, why } saying why none could be found or installed.
 */
export function ensureLibtorch({ install = true, say = () => {}, stdio = 'inherit' } = {}) {
  const found = findLibtorch();
  if (found) return { torch: found, installed: false };
  const python = process.env.PYTHON || 'python3';
  if (!install) return { torch: null, why: 'none found, and installing one was turned off (IMAGIC_INSTALL_TORCH=0)' };
  try {
    execFileSync(python, ['--version'], { stdio: 'ignore' });
  } catch {
    return { torch: null, why: `none found, and there is no ${python} to install torch with` };
  }
  say(`no libtorch found: installing the CPU build with pip (${python} -m pip install ${TORCH_PIN})`);
  try {
    execFileSync(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', TORCH_PIN], { stdio });
  } catch (e) {
    return { torch: null, why: `none found, and \`${python} -m pip install ${TORCH_PIN}\` failed (${String(e.message).split('\n')[0]})` };
  }
  const torch = findLibtorch();
  if (!torch) return { torch: null, why: `${TORCH_PIN} was installed, but ${python} still does not import it` };
  return { torch, installed: true };
}
