// Process-wide runtime facts and knobs: live tensors, threads, CUDA devices.
import { native } from './native.js';

/** Native tensors currently alive (created and neither disposed nor collected). */
export function liveTensors(): number {
  return native.liveTensors();
}
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
export function buildInfo(): { torchVersion: string; runtimeTorchVersion: string; cuda: boolean; threads: number; builtWithCuda: boolean } {
  return native.buildInfo();
}

export const cuda = {
  isAvailable(): boolean {
    return native.cudaAvailable();
  },
  deviceCount(): number {
    return native.cudaDeviceCount();
  },
  /** Waits until all queued work on the device is done (for timing); a no-op without CUDA. */
  synchronize(device = 0): void {
    native.synchronize(device);
  },
};
