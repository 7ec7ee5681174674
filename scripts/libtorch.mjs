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
