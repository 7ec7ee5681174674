// Where a single file's tensors come from: a safetensors file (read tensor by tensor), or a pickled
// .ckpt (through src/io/ckpt.ts's restricted reader). The loader only needs names, shapes and reads in order.
import { extname } from 'node:path';
import { DTYPE_BYTES, type DType, type Tensor } from '../../engine/index.js';
import { readSafetensorsHeader, SafetensorsReader } from '../safetensors.js';
import { loadCkpt, readCkptHeader, type CkptOptions } from '../ckpt.js';

/** The tensors of one checkpoint file: names and shapes up front, data on demand. */
export interface TensorSource {
  file: string;
  tensors: ReadonlyMap<string, { dtype: DType; shape: number[] }>;
  /** A read order for these keys that goes through the file front to back. */
  order(keys: string[]): string[];
  /** The stored tensor, on the CPU, in its stored dtype (the caller disposes it). */
  read(key: string): Tensor;
  /** Bytes a key occupies (for progress). */
  bytes(key: string): number;
  close(): void;
}

/** Extensions of single-file checkpoints: safetensors, and PyTorch pickles. */
export const SINGLE_FILE_EXTENSIONS = ['.safetensors', '.ckpt', '.pt', '.pth', '.bin'];

/** True for a path that names a single-file checkpoint by its extension. */
export function isSingleFileCheckpoint(file: string): boolean {
  return SINGLE_FILE_EXTENSIONS.includes(extname(file).toLowerCase());
}

/**
 * Opens a checkpoint file: a .safetensors file, or a PyTorch pickle (.ckpt, .pt, .pth, .bin) through
 * src/io/ckpt.ts's restricted reader, which rebuilds only tensors and plain containers and refuses a
 * file that asks for anything else (naming it), running nothing; with `unknownGlobals: 'placeholder'`
 * other objects (PyTorch Lightning's training state in old SD 1.x files) are left inert instead.
 */
export function openTensorSource(file: string, opts: Pick<CkptOptions, 'unknownGlobals'> = {}): TensorSource {
  const ext = extname(file).toLowerCase();
  if (ext === '.ckpt' || ext === '.pt' || ext === '.pth' || ext === '.bin') {
    const header = readCkptHeader(file, opts);
    const tensors = new Map([...header.tensors].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]));
    return {
      file,
      tensors,
      order: (keys) => [...keys],
      read: (key) => loadCkpt(file, { keys: [key] }, header).get(key)!,
      bytes: (key) => {
        const t = header.tensors.get(key)!;
        return t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
      },
      close: () => {},
    };
  }
  const header = readSafetensorsHeader(file); // validates offsets: a truncated file fails here
  const reader = new SafetensorsReader(file, header);
  return {
    file,
    tensors: header.tensors,
    order: (keys) => [...keys].sort((a, b) => header.tensors.get(a)!.begin - header.tensors.get(b)!.begin),
    read: (key) => reader.read(key),
    bytes: (key) => {
      const i = header.tensors.get(key)!;
      return i.end - i.begin;
    },
    close: () => reader.close(),
  };
}
