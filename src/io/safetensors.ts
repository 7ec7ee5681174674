// safetensors reading and writing (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then raw data.
// Reading is tensor by tensor, so a large checkpoint is never held twice in memory.
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { DTYPE_BYTES, fromBytes, noGrad, toBytes, type DType, type Device, type Tensor } from '../engine/index.js';

/** safetensors dtype names and ours. */
const FROM_ST: Record<string, DType> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32',
  I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const TO_ST: Record<DType, string> = Object.fromEntries(Object.entries(FROM_ST).map(([k, v]) => [v, k])) as Record<DType, string>;
const BYTES = DTYPE_BYTES;
const MAX_HEADER = 100 * 1024 * 1024;

export class SafetensorsError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** Reads and validates the header: dtypes, shapes, offsets inside the file and not overlapping. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new SafetensorsError(file, `cannot open: ${(e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const fail = (msg: string): never => {
      throw new SafetensorsError(file, `not a valid safetensors file: ${msg}`);
    };
    if (size < 8) fail(`only ${size} bytes`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER) fail(`header length ${headerLen} is beyond the ${MAX_HEADER}-byte limit (garbage bytes?)`);
    if (headerLen + 8 > size) fail(`the header needs ${headerLen + 8} bytes but the file has ${size} (truncated?)`);
    const headerBuf = Buffer.alloc(headerLen);
    readFully(fd, headerBuf, 8, file);
    if (headerBuf[0] !== 0x7b) fail('the header does not start with \'{\'');
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(headerBuf.toString('utf8'));
    } catch (e) {
      return fail(`the header is not JSON (${(e as Error).message})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('the header is not a JSON object');
    const dataStart = 8 + headerLen;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    const spans: [number, number, string][] = [];
    for (const [name, v] of Object.entries(json)) {
      if (name === '__metadata__') {
        if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
          fail('__metadata__ is not a map of strings');
        }
        metadata = v as Record<string, string>;
        continue;
      }
      const e = v as { dtype?: string; shape?: number[]; data_offsets?: number[] };
      const dtype = FROM_ST[e?.dtype ?? ''];
      if (dtype === undefined) fail(`tensor '${name}' has unsupported dtype '${e?.dtype}' (supported: ${Object.keys(FROM_ST).join(', ')})`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor '${name}' has a bad shape`);
      if (!Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) fail(`tensor '${name}' has bad data_offsets`);
      const [b, en] = e.data_offsets as [number, number];
      if (!Number.isSafeInteger(b) || !Number.isSafeInteger(en) || b < 0 || en < b) fail(`tensor '${name}' has bad data_offsets [${b}, ${en}]`);
      const numel = e.shape!.reduce((a, d) => a * d, 1);
      if (en - b !== numel * BYTES[dtype!]) fail(`tensor '${name}' has ${en - b} bytes for shape [${e.shape}] of ${dtype}`);
      if (dataStart + en > size) {
        fail(`tensor '${name}' ends at byte ${dataStart + en} but the file has ${size} (truncated download?)`);
      }
      tensors.set(name, { dtype: dtype!, shape: e.shape!, begin: dataStart + b, end: dataStart + en });
      spans.push([b, en, name]);
    }
    spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i]![0] < spans[i - 1]![1]) fail(`tensors '${spans[i - 1]![2]}' and '${spans[i]![2]}' overlap`);
    }
    return { file, tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

export interface LoadTensorsOptions {
  /** Convert floating-point tensors to this dtype (integer tensors keep theirs). */
  dtype?: DType;
  device?: Device;
  /** Only these keys (default: all). */
  keys?: Iterable<string>;
}

const FLOATS = new Set<DType>(['float32', 'float16', 'bfloat16', 'float64']);

/**
 * Reads tensors one at a time: each is copied once from the file into libtorch, converted and
 * moved, and its JavaScript buffer dropped before the next. Returns them by name (not kept:
 * dispose them, or let a scope do it, once they are loaded into a model).
 */
export function loadSafetensors(file: string, opts: LoadTensorsOptions = {}, header = readSafetensorsHeader(file)): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const keys = opts.keys ? [...opts.keys] : [...header.tensors.keys()];
  const reader = new SafetensorsReader(file, header);
  try {
    for (const key of keys) out.set(key, reader.read(key, opts));
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    reader.close();
  }
  return out;
}

/**
 * An open safetensors file for reading tensors one by one (what a streaming loader needs): one
 * file descriptor and one reused staging buffer, so reading allocates only the tensors themselves.
 *
 *   const r = new SafetensorsReader(file);
 *   try { const t = r.read('conv_in.weight'); ... } finally { r.close(); }
 */
export class SafetensorsReader {
  readonly header: SafetensorsHeader;
  private fd: number | null;
  private staging = new Uint8Array(0);

  constructor(readonly file: string, header?: SafetensorsHeader) {
    this.header = header ?? readSafetensorsHeader(file);
    try {
      this.fd = openSync(file, 'r');
    } catch (e) {
      throw new SafetensorsError(file, `cannot open: ${(e as Error).message}`);
    }
  }

  /** The tensor `key` as stored (on the CPU), or converted as `opts` asks (floats only change dtype). */
  read(key: string, opts: Omit<LoadTensorsOptions, 'keys'> = {}): Tensor {
    if (this.fd === null) throw new SafetensorsError(this.file, 'the reader is closed');
    const info = this.header.tensors.get(key);
    if (info === undefined) throw new SafetensorsError(this.file, `no tensor named '${key}'`);
    const n = info.end - info.begin;
    if (this.staging.length < n) this.staging = new Uint8Array(n);
    const bytes = this.staging.subarray(0, n);
    readFully(this.fd, bytes, info.begin, this.file, key);
    const t = fromBytes(bytes, info.shape, info.dtype);
    const dtype = opts.dtype !== undefined && FLOATS.has(info.dtype) ? opts.dtype : undefined;
    if ((dtype === undefined || dtype === info.dtype) && (opts.device === undefined || opts.device === 'cpu')) return t;
    const moved = noGrad(() => t.to({ dtype, device: opts.device }));
    t.dispose();
    return moved;
  }

  /** Closes the file and drops the staging buffer (safe to call twice). */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.staging = new Uint8Array(0);
  }
}

function readFully(fd: number, buf: Uint8Array, position: number, file: string, key?: string): void {
  let done = 0;
  while (done < buf.length) {
    const got = readSync(fd, buf, done, buf.length - done, position + done);
    if (got === 0) throw new SafetensorsError(file, `unexpected end of file while reading ${key === undefined ? 'the header' : `'${key}'`} (truncated?)`);
    done += got;
  }
}

/**
 * Writes tensors to `file` atomically (a temporary name, then rename), in name order, with
 * optional string metadata. Tensors are copied to the CPU one at a time.
 */
export function saveSafetensors(file: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>): void {
  const entries = [...(tensors instanceof Map ? tensors : new Map(Object.entries(tensors)))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  writeAtomically(file, entries.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), metadata, (i, write) => write(toBytes(entries[i]![1])));
}

/** One tensor to write: its name, dtype and shape up front, its data only when its turn comes. */
export interface StreamedTensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** The tensor (CPU, this dtype and shape); the writer disposes it. */
  data: () => Tensor;
}

/**
 * Writes a safetensors file one tensor at a time, in the given order (so only one tensor is ever in
 * memory: saveSafetensors needs them all at once), atomically (a temporary name, then rename).
 * Returns the bytes of tensor data written.
 */
export function writeSafetensorsStreamed(file: string, tensors: StreamedTensor[], metadata?: Record<string, string>): number {
  return writeAtomically(file, tensors, metadata, (i, write) => {
    const t = tensors[i]!;
    const x = t.data();
    try {
      if (x.dtype !== t.dtype || x.shape.join(',') !== t.shape.join(',')) {
        throw new Error(`${file}: tensor '${t.name}' is ${x.dtype} [${x.shape}], announced as ${t.dtype} [${t.shape}]`);
      }
      write(toBytes(x));
    } finally {
      x.dispose();
    }
  });
}

/**
 * The header of `specs` (in their order, data aligned to 8 bytes), then each tensor's bytes as
 * `writeData(i, write)` hands them over, into a temporary file renamed into place; removed on error.
 * Returns the bytes of tensor data.
 */
function writeAtomically(file: string, specs: { name: string; dtype: DType; shape: number[] }[], metadata: Record<string, string> | undefined,
  writeData: (i: number, write: (bytes: Uint8Array) => void) => void): number {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of specs) {
    if (t.name in header) throw new Error(`${file}: tensor '${t.name}' is listed twice`);
    const n = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    header[t.name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align the data to 8 bytes
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'utf8'));
    const write = (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
    };
    for (let i = 0; i < specs.length; i++) writeData(i, write);
    closeSync(fd);
    renameSync(tmp, file);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  return offset;
}
