// Mixed precision: autocast runs eligible ops (matmul, conv, linear, attention) in bfloat16 or
// float16 while parameters stay float32 (the master weights the optimizer updates), as torch.autocast.
import { native } from './native.js';

export interface AutocastOptions {
  /** 'cuda' (default) or 'cpu'. */
  deviceType?: 'cuda' | 'cpu';
  /** 'bfloat16' (default) or 'float16'. */
  dtype?: 'bfloat16' | 'float16';
  /** false runs fn as is, for code paths that make autocast optional. */
  enabled?: boolean;
}

/** Runs fn (synchronous) under autocast. Backward may run outside: it reuses the recorded dtypes. */
export function autocast<R>(opts: AutocastOptions, fn: () => R): R {
  if (opts.enabled === false) return fn();
  const deviceType = opts.deviceType ?? 'cuda';
  const [wasEnabled, prevDtype] = native.autocastEnter(deviceType, opts.dtype ?? 'bfloat16');
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('autocast(): the function must be synchronous');
    return r;
  } finally {
    native.autocastExit(deviceType, wasEnabled, prevDtype);
  }
}
