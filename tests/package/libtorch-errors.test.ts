// When libtorch is missing or does not match: the install script's one message with the three ways
// to provide it, and the engine's explanation of an addon that cannot load (a libtorch of the other
// C++ ABI, a libtorch that is gone), each a clear error in a process that exits normally.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LIBTORCH_WAYS, explainLoadError } from '../../src/engine/native.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const scripts = path.join(root, 'scripts');
type Found = { includeDirs: string[]; libDirs: string[]; abi: number; source: string } | null;
const libtorch = (await import(pathToFileURL(path.join(scripts, 'libtorch.mjs')).href)) as {
  findLibtorch(): Found; LIBTORCH_WAYS: string[];
};

describe('installing without libtorch', () => {
  let pkg: string;
  before(() => {
    // The install script as it sits in an installed package (no src/: not a clone).
    pkg = mkdtempSync(path.join(os.tmpdir(), 'imagic-install-'));
    mkdirSync(path.join(pkg, 'scripts'));
    for (const f of ['install.mjs', 'libtorch.mjs']) copyFileSync(path.join(scripts, f), path.join(pkg, 'scripts', f));
  });
  after(() => rmSync(pkg, { recursive: true, force: true }));

  const install = (env: Record<string, string>) =>
    spawnSync(process.execPath, [path.join(pkg, 'scripts', 'install.mjs')], { encoding: 'utf8', env: { ...process.env, LIBTORCH: '', ...env } });

  it('stops with one message that lists the three ways to provide it', (t) => {
    if (existsSync('/usr/local/include/ATen/ATen.h') || existsSync('/usr/include/ATen/ATen.h')) return t.skip('this machine has a system libtorch');
    const r = install({ PYTHON: path.join(pkg, 'no-such-python') });
    assert.equal(r.status, 1);
    assert.equal(r.signal, null);
    assert.match(r.stderr, /imagic needs libtorch \(PyTorch's C\+\+ library\) and found none: none found, and there is no .*no-such-python to install torch with/);
    for (const way of libtorch.LIBTORCH_WAYS) assert.ok(r.stderr.includes(way), `the message lacks: ${way}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace');
  });

  it('says so when installing torch is turned off', (t) => {
    if (existsSync('/usr/local/include/ATen/ATen.h') || existsSync('/usr/include/ATen/ATen.h')) return t.skip('this machine has a system libtorch');
    const r = install({ PYTHON: path.join(pkg, 'no-such-python'), IMAGIC_INSTALL_TORCH: '0' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /installing one was turned off \(IMAGIC_INSTALL_TORCH=0\)/);
  });

  it('refuses a LIBTORCH that is no libtorch folder, with the three ways', () => {
    const r = install({ LIBTORCH: pkg });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /LIBTORCH=.* does not look like a libtorch folder \(no include\/ATen\/ATen.h\)/);
    assert.ok(r.stderr.includes(libtorch.LIBTORCH_WAYS[1]!));
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('the engine lists the same three ways as the install script', () => {
    assert.equal(LIBTORCH_WAYS, libtorch.LIBTORCH_WAYS.join('\n  '));
  });
});

describe('an addon that does not match its libtorch', { timeout: 240_000 }, () => {
  const torch = libtorch.findLibtorch()!;
  let dir: string;
  const nodeInclude = path.join(path.dirname(process.execPath), '..', 'include', 'node');
  // A Node-API module that calls into libtorch with a std::string: its symbol's name depends on the C++ ABI.
  const source = [
    '#include <c10/core/Device.h>',
    '#include <node_api.h>',
    'static napi_value Init(napi_env env, napi_value exports) { c10::Device d(std::string("cpu")); (void)d; return exports; }',
    'NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)',
  ].join('\n');
  const compile = (out: string, abi: number, libDir: string) =>
    execFileSync(process.env.CXX || 'g++', [
      '-shared', '-fPIC', '-std=c++17', `-D_GLIBCXX_USE_CXX11_ABI=${abi}`, `-I${nodeInclude}`, ...torch.includeDirs.map((d) => `-isystem${d}`),
      path.join(dir, 'tiny.cc'), '-o', out, `-L${libDir}`, `-Wl,-rpath,${libDir}`, '-Wl,-z,now', '-Wl,--no-as-needed', '-lc10',
    ], { stdio: 'pipe' });
  const load = (addon: string) => spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(path.join(root, 'dist', 'src', 'engine', 'index.js')).href)})`], {
    encoding: 'utf8', env: { ...process.env, IMAGIC_ADDON: addon },
  });

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-abi-'));
    writeFileSync(path.join(dir, 'tiny.cc'), source);
    // The addon's own build info, where the explanation says what it was built against.
    writeFileSync(path.join(dir, 'libtorch.json'), JSON.stringify(torch));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('of the other C++ ABI is explained at load, not a crash at the first call', () => {
    const addon = path.join(dir, 'wrong-abi.node');
    compile(addon, 1 - torch.abi, torch.libDirs[0]!);
    const r = load(addon);
    assert.equal(r.signal, null, 'the process was killed');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /imagic: the addon does not match the libtorch it loads \(undefined symbol _ZN3c106Device\w+/);
    assert.match(r.stderr, new RegExp(`It was built against ${torch.source.replace(/[.+$()]/g, '\\$&')}`));
    assert.match(r.stderr, /npm rebuild imagic/);
    assert.match(r.stderr, /LIBTORCH_CXX11_ABI=0/);
  });

  it('whose libtorch is gone is explained, with the three ways', () => {
    const libDir = path.join(dir, 'lib');
    mkdirSync(libDir);
    const c10 = readdirSync(torch.libDirs[0]!).find((f) => f === 'libc10.so')!;
    copyFileSync(path.join(torch.libDirs[0]!, c10), path.join(libDir, c10));
    const addon = path.join(dir, 'gone.node');
    compile(addon, torch.abi, libDir);
    rmSync(path.join(libDir, c10));
    const r = load(addon);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /imagic: libtorch is gone: the addon .*gone\.node was built against .*, and libc10\.so cannot be found there any more/);
    assert.ok(r.stderr.includes(libtorch.LIBTORCH_WAYS[0]!));
  });

  it('explains other load failures by what the loader said', () => {
    const elf = explainLoadError('/x/imagic.node', '/x/imagic.node: invalid ELF header');
    assert.match(elf, /is not a loadable addon for this machine \(\/x\/imagic.node: invalid ELF header\)\. To fix: rebuild it with `npm rebuild imagic`/);
    const sym = explainLoadError('/x/imagic.node', '/x/imagic.node: undefined symbol: _ZN3c1019UndefinedTensorImpl10_singletonE');
    assert.match(sym, /undefined symbol _ZN3c1019UndefinedTensorImpl10_singletonE\)/);
    assert.doesNotMatch(sym, /-ABI name/);
    const abi = explainLoadError('/x/imagic.node', 'undefined symbol: _ZN3c106DeviceC1ERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE');
    assert.match(abi, /a cxx11-ABI name/);
  });
});
