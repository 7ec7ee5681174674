// PyTorch .ckpt / .pt / .pth / .bin checkpoints (what torch.save writes since PyTorch 1.6: a zip
// of `<archive>/data.pkl`, a pickle, and `<archive>/data/<key>` raw little-endian storages), read
// with a restricted unpickler that rebuilds only tensors and plain containers. No Python, and no
// code from the file, ever runs: the only globals it accepts are the tensor rebuild functions,
// storage types, dtypes and OrderedDict, implemented here; anything else refuses the file.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { DTYPE_BYTES, fromBytes, noGrad, type DType, type Tensor } from '../engine/index.js';
import { CheckpointError } from './diffusers.js';
import { entryDataOffset, readAt, readZipDirectory, type ZipEntry } from './ckpt-zip.js';
import { describe, NUMPY, PyCallable, PyObject, unpickle } from './ckpt-pickle.js';
import type { LoadTensorsOptions } from './safetensors.js';

export { PyObject } from './ckpt-pickle.js';

/** A checkpoint that is malformed, or refused (`refused`: it names globals imagic will not rebuild). */
export class CkptError extends CheckpointError {
  constructor(readonly file: string, message: string, readonly refused = false) {
    super(file, message);
    this.name = 'CkptError';
  }
}

/** A tensor of the checkpoint, not yet read: a view of a storage (`data/<storageKey>` in the zip). */
export interface CkptTensorInfo {
  dtype: DType;
  shape: number[];
  /** In elements; contiguous row-major unless the tensor was saved as a view. */
  stride: number[];
  /** Element offset into the storage. */
  offset: number;
  storageKey: string;
}

export interface CkptHeader {
  file: string;
  /** The state dict, flattened: `state_dict` if the top level has one, else the top level's tensors. */
  tensors: Map<string, CkptTensorInfo>;
  /**
   * Everything else (global_step, epoch, ...), as plain values: dicts with string keys become
   * objects (other dicts stay Maps), tuples become arrays, tensors become CkptTensorInfo, and
   * (with `unknownGlobals: 'placeholder'`) unknown objects become inert PyObjects.
   */
  other: Record<string, unknown>;
}

export interface CkptOptions extends LoadTensorsOptions {
  /**
   * 'refuse' (default): any global that is not a tensor, storage, dtype or OrderedDict refuses the
   * file. 'placeholder': classes imagic does not know (pytorch_lightning callbacks, numpy scalars)
   * become inert PyObjects in `other`, still never called; code-running globals (os, builtins,
   * subprocess, ...) refuse the file in both modes.
   */
  unknownGlobals?: 'refuse' | 'placeholder';
}

const STORAGES: Record<string, DType> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};
/** torch.<dtype> globals (how a torch.dtype pickles), with their aliases. */
const DTYPE_NAMES: Record<string, DType> = {
  float32: 'float32', float: 'float32', float16: 'float16', half: 'float16', bfloat16: 'bfloat16', float64: 'float64',
  double: 'float64', int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16',
  int8: 'int8', uint8: 'uint8', bool: 'bool',
};
const BYTES = DTYPE_BYTES;
/** Modules whose globals only make sense to run code: refused even with placeholders. */
const CODE_MODULES = /^(os|posix|nt|subprocess|sys|builtins|__builtin__|shutil|socket|runpy|importlib|pickle|_pickle|marshal|ctypes|code|codeop|pty|webbrowser|commands|operator|functools|types|asyncio|multiprocessing|torch\.(hub|load|serialization|jit|_ops|ops))(\.|$)/;

class StorageType { constructor(readonly name: string, readonly dtype: DType | null) {} }
class DTypeRef { constructor(readonly name: string, readonly dtype: DType | null) {} }
class StorageRef { constructor(readonly key: string, readonly dtype: DType | null, readonly nbytes: number, readonly dataOffset: number) {} }
class TensorRef implements CkptTensorInfo {
  constructor(readonly storage: StorageRef, readonly dtype: DType, readonly shape: number[], readonly stride: number[], readonly offset: number) {}
  get storageKey(): string { return this.storage.key; }
}

/** Parses the archive and the pickle (no tensor data is read): names, dtypes, shapes and the rest. */
export function readCkptHeader(file: string, opts: Pick<CkptOptions, 'unknownGlobals'> = {}): CkptHeader {
  const fd = openFile(file);
  try {
    return parse(file, fd, opts);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the checkpoint's tensors one at a time (each copied once from the file into libtorch; a
 * view saved with its storage is copied out contiguously; tensors sharing a storage become
 * separate tensors). Mirrors loadSafetensors: returns them by name, not kept.
 */
export function loadCkpt(file: string, opts: CkptOptions = {}, header?: CkptHeader): Map<string, Tensor> {
  const fd = openFile(file);
  const out = new Map<string, Tensor>();
  try {
    const h = header ?? parse(file, fd, opts);
    const fail: Fail = failFor(file);
    for (const key of opts.keys ? [...opts.keys] : h.tensors.keys()) {
      const info = h.tensors.get(key);
      if (!(info instanceof TensorRef)) fail(`no tensor named '${key}'`);
      const t = fromBytes(tensorBytes(fd, info, fail, key), info.shape, info.dtype);
      const dtype = opts.dtype !== undefined && ['float32', 'float16', 'bfloat16', 'float64'].includes(info.dtype) ? opts.dtype : undefined;
      if ((dtype === undefined || dtype === info.dtype) && (opts.device === undefined || opts.device === 'cpu')) {
        out.set(key, t);
        continue;
      }
      out.set(key, noGrad(() => t.to({ dtype, device: opts.device })));
      t.dispose();
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * The tensors of a .ckpt (the flattened state dict) and its other entries:
 *
 *   const { tensors, other } = readCkpt('v1-5-pruned-emaonly.ckpt');
 *   tensors.get('model.diffusion_model.input_blocks.0.0.weight'); // [320, 4, 3, 3] float32
 *   other.global_step; // 840000
 */
export function readCkpt(file: string, opts: CkptOptions = {}): { tensors: Map<string, Tensor>; other: Record<string, unknown>; header: CkptHeader } {
  const header = readCkptHeader(file, opts);
  return { tensors: loadCkpt(file, opts, header), other: header.other, header };
}

function openFile(file: string): number {
  try {
    return openSync(file, 'r');
  } catch (e) {
    throw new CkptError(file, `cannot open: ${(e as Error).message}`);
  }
}

type Fail = (msg: string) => never;

function failFor(file: string): Fail {
  return (msg: string) => {
    throw new CkptError(file, msg);
  };
}

const CONVERT = 'convert it to safetensors with Python you trust (safetensors.torch.save_file(torch.load(f, weights_only=True)["state_dict"], out))';

function parse(file: string, fd: number, opts: Pick<CkptOptions, 'unknownGlobals'>): CkptHeader {
  const fail: Fail = failFor(file);
  const refuse: Fail = (msg: string): never => {
    throw new CkptError(file, msg, true);
  };
  const size = fstatSync(fd).size;
  const head = readAt(fd, 0, Math.min(size, 9), fail, 'the first bytes');
  if (size < 22 || head.readUInt32LE(0) !== 0x04034b50) {
    if (head[0] === 0x80) fail(`a legacy (pre-1.6, non-zip) torch.save file, which imagic does not read: re-save it with a recent torch (torch.save(torch.load(f), f)) or ${CONVERT}`);
    if (size >= 9 && head[8] === 0x7b) fail('this looks like a safetensors file: give it a .safetensors name');
    fail(`not a PyTorch checkpoint (no zip signature; ${size} bytes)${size < 22 ? ' (truncated?)' : ''}`);
  }
  const entries = readZipDirectory(fd, size, fail);
  const pkl = [...entries.values()].filter((e) => /^[^/]+\/data\.pkl$/.test(e.name)).sort((a, b) => a.headerOffset - b.headerOffset)[0];
  if (pkl === undefined) fail('a zip archive without <archive>/data.pkl: not a torch.save checkpoint');
  const prefix = pkl.name.slice(0, -'data.pkl'.length);
  const torchscript = entries.has(`${prefix}constants.pkl`);
  const order = entries.get(`${prefix}byteorder`);
  if (order !== undefined && order.size < 16) {
    const bo = readAt(fd, entryDataOffset(fd, size, order, fail), order.size, fail, 'byteorder').toString('latin1');
    if (bo !== 'little') fail(`storages are '${bo}'-endian; imagic reads little-endian checkpoints only`);
  }
  if (pkl.size > 2 ** 30) fail(`data.pkl is ${pkl.size} bytes (not a checkpoint's pickle)`);
  const pickle = readAt(fd, entryDataOffset(fd, size, pkl, fail), pkl.size, fail, 'data.pkl');

  const placeholders = opts.unknownGlobals === 'placeholder';
  const storages = new Map<string, StorageRef>();
  const rebuildV2 = (args: unknown[]): TensorRef => {
    const [storage, offset, shape, stride] = args;
    if (!(storage instanceof StorageRef) || storage.dtype === null) fail(`_rebuild_tensor_v2 of a ${describe(storage)}, not a typed storage`);
    return tensorRef(storage, storage.dtype, offset, shape, stride, fail);
  };
  const allowed: Record<string, unknown> = {
    'torch._utils._rebuild_tensor_v2': new PyCallable('torch._utils._rebuild_tensor_v2', rebuildV2),
    'torch._utils._rebuild_tensor': new PyCallable('torch._utils._rebuild_tensor', rebuildV2),
    'torch._utils._rebuild_tensor_v3': new PyCallable('torch._utils._rebuild_tensor_v3', (args) => {
      const [storage, offset, shape, stride, , , dt] = args;
      if (!(storage instanceof StorageRef)) fail(`_rebuild_tensor_v3 of a ${describe(storage)}, not a storage`);
      if (!(dt instanceof DTypeRef)) fail(`_rebuild_tensor_v3 with dtype ${describe(dt)}`);
      if (dt.dtype === null) fail(`a tensor has dtype torch.${dt.name}, which imagic does not support (supported: ${Object.keys(BYTES).join(', ')})`);
      return tensorRef(storage, dt.dtype, offset, shape, stride, fail);
    }),
    'torch._utils._rebuild_parameter': new PyCallable('torch._utils._rebuild_parameter', (args) => args[0]),
    'torch._utils._rebuild_parameter_with_state': new PyCallable('torch._utils._rebuild_parameter_with_state', (args) => args[0]),
    'collections.OrderedDict': new PyCallable('collections.OrderedDict', (args) => {
      const d = new Map<unknown, unknown>();
      for (const kv of (args[0] ?? []) as unknown[]) {
        if (!Array.isArray(kv) || kv.length !== 2) fail('OrderedDict() of something other than pairs');
        d.set(kv[0], kv[1]);
      }
      return d;
    }),
    'torch.UntypedStorage': new StorageType('UntypedStorage', null),
    'torch.storage.UntypedStorage': new StorageType('UntypedStorage', null),
    ...NUMPY,
  };
  const findGlobal = (module: string, name: string): unknown => {
    const q = `${module}.${name}`;
    if (q in allowed) return allowed[q];
    if (module === 'torch' && name in STORAGES) return new StorageType(name, STORAGES[name]!);
    if (module === 'torch' && name in DTYPE_NAMES) return new DTypeRef(name, DTYPE_NAMES[name]!);
    if (module === 'torch' && /^(float8_\w+|float4_\w+|uint(16|32|64)|complex\d+|c(half|float|double)|bits\w+|q(u)?int\w+)$/.test(name)) return new DTypeRef(name, null);
    if (module === 'torch' && name.endsWith('Storage')) {
      fail(`a tensor uses storage type torch.${name}, which imagic does not support (supported: ${Object.keys(STORAGES).join(', ')})`);
    }
    if (CODE_MODULES.test(module)) {
      refuse(`refused: unpickling it would call ${q}, which can run arbitrary code (a pickle runs whatever it names when Python loads it). ` +
        `imagic never runs code from a checkpoint and reads only tensors and plain containers; if you trust the file's source, ${CONVERT}`);
    }
    if (placeholders) return new PyCallable(q, (args) => new PyObject(q, args));
    refuse(`refused: it needs ${q}, a class imagic does not rebuild (imagic reads only tensors and plain containers from ` +
      `.ckpt files and never runs code from them)${torchscript ? '; this is a TorchScript archive (torch.jit.save), not a state dict' : ''}. ` +
      `To load the tensors with such objects left inert (never run), pass --allow-ckpt-objects (API: { unknownGlobals: 'placeholder' }), or ${CONVERT}`);
  };
  const persistentLoad = (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) fail(`unknown persistent id ${describe(pid)}`);
    const [, type, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
    if (!(type instanceof StorageType)) fail(`persistent id with storage type ${describe(type)}`);
    if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) fail('malformed storage persistent id');
    const known = storages.get(key);
    const nbytes = type.dtype === null ? numel : numel * BYTES[type.dtype];
    if (known !== undefined && known.dtype === type.dtype && known.nbytes === nbytes) return known;
    const entry: ZipEntry | undefined = entries.get(`${prefix}data/${key}`);
    if (entry === undefined) fail(`storage '${key}' is missing from the archive (${prefix}data/${key})`);
    if (entry.size < nbytes) fail(`storage '${key}' has ${entry.size} bytes, ${nbytes} expected`);
    const ref = new StorageRef(key, type.dtype, nbytes, entryDataOffset(fd, size, entry, fail));
    storages.set(key, ref);
    return ref;
  };
  const root = unpickle(pickle, { findGlobal, persistentLoad, fail });

  if (!(root instanceof Map)) fail(`the checkpoint holds a ${describe(root)}, not a dict of tensors`);
  const sd = root.get('state_dict');
  const dict = sd instanceof Map ? sd : root;
  const tensors = new Map<string, CkptTensorInfo>();
  const other: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of dict) {
    if (v instanceof TensorRef && typeof k === 'string') tensors.set(k, v);
    else rest[String(k)] = plain(v);
  }
  if (dict === root) Object.assign(other, rest);
  else {
    for (const [k, v] of root) if (k !== 'state_dict') other[String(k)] = plain(v);
    if (Object.keys(rest).length > 0) other.state_dict = rest;
  }
  return { file, tensors, other };
}

function tensorRef(storage: StorageRef, dtype: DType, offset: unknown, shape: unknown, stride: unknown, fail: (msg: string) => never): TensorRef {
  const ints = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
  if (!ints(shape) || !ints(stride) || shape.length !== stride.length || !Number.isSafeInteger(offset) || (offset as number) < 0) {
    fail(`a tensor of storage '${storage.key}' has a malformed size/stride/offset`);
  }
  const numel = shape.reduce((a, d) => a * d, 1);
  const last = numel === 0 ? 0 : shape.reduce((a, d, i) => a + (d - 1) * stride[i]!, offset as number) + 1;
  if (last * BYTES[dtype] > storage.nbytes) {
    fail(`a tensor [${shape}] (stride [${stride}], offset ${offset}) reaches past the end of storage '${storage.key}' (${storage.nbytes} bytes)`);
  }
  return new TensorRef(storage, dtype, [...shape], [...stride], offset as number);
}

/** The tensor's bytes, row-major: one read if contiguous, else a read of its span and a gather. */
function tensorBytes(fd: number, t: TensorRef, fail: (msg: string) => never, key: string): Uint8Array {
  const es = BYTES[t.dtype];
  const n = t.shape.reduce((a, d) => a * d, 1);
  if (n === 0) return new Uint8Array(0);
  let expect = 1;
  let contiguous = true;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expect) contiguous = false;
    expect *= t.shape[i]!;
  }
  const base = t.storage.dataOffset + t.offset * es;
  if (contiguous) return readAt(fd, base, n * es, fail, `'${key}'`);
  const span = t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i]!, 0) + 1;
  const src = readAt(fd, base, span * es, fail, `'${key}'`);
  const out = new Uint8Array(n * es);
  const idx = new Array<number>(t.shape.length).fill(0);
  let at = 0;
  for (let o = 0; o < n; o++) {
    out.set(src.subarray(at * es, at * es + es), o * es);
    for (let d = t.shape.length - 1; d >= 0; d--) { // next row-major index; `at` follows the strides
      idx[d]!++;
      at += t.stride[d]!;
      if (idx[d]! < t.shape[d]!) break;
      at -= t.shape[d]! * t.stride[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** Pickled values as plain JavaScript for `other`. */
function plain(v: unknown, depth = 0): unknown {
  if (depth > 50) return '[too deep]';
  if (v instanceof TensorRef) return { dtype: v.dtype, shape: v.shape, stride: v.stride, offset: v.offset, storageKey: v.storageKey } satisfies CkptTensorInfo;
  if (Array.isArray(v)) return v.map((x) => plain(x, depth + 1));
  if (v instanceof Map) {
    if ([...v.keys()].every((k) => typeof k === 'string')) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x, depth + 1)]));
    return new Map([...v].map(([k, x]) => [k, plain(x, depth + 1)]));
  }
  if (v instanceof StorageType || v instanceof DTypeRef) return `torch.${v.name}`;
  if (v instanceof PyCallable) return `<${v.qualname}>`;
  if (v instanceof StorageRef) return `<storage ${v.key}>`;
  return v;
}
