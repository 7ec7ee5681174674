// Images to and from the [-1, 1] tensors the VAE takes and returns, as diffusers' VaeImageProcessor
// (normalize: 2x - 1; postprocess: (x/2 + 0.5).clamp(0, 1), then numpy_to_pil's (x * 255).round()).
import { fromTypedArray, isFloating, tidy, type DType, type Device, type Tensor } from '../engine/index.js';
import { checkImage, ImageError, type RgbImage } from './image-types.js';

export interface ImageToTensorOptions {
  /** Default float32. */
  dtype?: DType;
  /** Default 'cpu'. */
  device?: Device;
}

/**
 * An RgbImage as a [1, 3, H, W] tensor in [-1, 1]: x / 127.5 - 1, computed in float64 and rounded
 * once to float32 (bit-identical to torch's float32 x / 127.5 - 1 for every byte; diffusers' float32
 * 2 * (x / 255) - 1 differs by 1 ulp for half of the bytes). 0 -> -1, 255 -> 1, 128 -> 1/255.
 */
export function imageToTensor(image: RgbImage, opts: ImageToTensorOptions = {}): Tensor {
  checkImage(image);
  const { width: W, height: H, data } = image;
  const plane = W * H;
  const out = new Float32Array(3 * plane); // [3, H, W]
  for (let i = 0; i < plane; i++) {
    out[i] = data[3 * i]! / 127.5 - 1;
    out[plane + i] = data[3 * i + 1]! / 127.5 - 1;
    out[2 * plane + i] = data[3 * i + 2]! / 127.5 - 1;
  }
  return fromTypedArray(out, [1, 3, H, W], { dtype: opts.dtype ?? 'float32', device: opts.device });
}

/** numpy's round (half to even) of a value already in [0, 255]. */
function toByte(v: number): number {
  if (Number.isNaN(v)) return 0; // numpy's uint8 cast of NaN gives 0 on x86; a NaN image is black, not an exception
  const s = Math.fround(v * 255); // float32 multiply, as numpy on a float32 array
  let r = Math.round(s);
  if (r - s === 0.5 && r % 2 !== 0) r -= 1;
  return r;
}

/**
 * A batch [B, 3, H, W] of [-1, 1] tensors as B RgbImages. x / 2 + 0.5 and the clamp run in the
 * tensor's own dtype and device (as diffusers does), then * 255 in float32 and round half to even
 * (numpy_to_pil). Values outside [-1, 1] are clamped; NaN becomes 0.
 */
export function tensorToImages(t: Tensor): RgbImage[] {
  const shape = t.shape;
  if (shape.length !== 4 || shape[1] !== 3) {
    throw new ImageError('<tensor>', `tensorToImages: expected a [B, 3, H, W] tensor, got [${shape.join(', ')}]`);
  }
  if (!isFloating(t.dtype)) throw new ImageError('<tensor>', `tensorToImages: expected a floating tensor in [-1, 1], got ${t.dtype}`);
  const [B, , H, W] = shape as [number, number, number, number];
  const vals = tidy(() => t.detach().div(2).add(0.5).clamp(0, 1).float().toTypedArray()) as Float32Array;
  const plane = H * W;
  const images: RgbImage[] = [];
  for (let b = 0; b < B; b++) {
    const data = new Uint8Array(3 * plane); // [H, W, 3]
    const base = b * 3 * plane;
    for (let i = 0; i < plane; i++) {
      data[3 * i] = toByte(vals[base + i]!);
      data[3 * i + 1] = toByte(vals[base + plane + i]!);
      data[3 * i + 2] = toByte(vals[base + 2 * plane + i]!);
    }
    images.push({ width: W, height: H, data });
  }
  return images;
}

/** One [1, 3, H, W] or [3, H, W] tensor in [-1, 1] as an RgbImage (see tensorToImages). */
export function tensorToImage(t: Tensor): RgbImage {
  const shape = t.shape;
  if (shape.length === 3 && shape[0] === 3) return tidy(() => tensorToImages(t.unsqueeze(0))[0]!);
  if (shape.length === 4 && shape[0] === 1 && shape[1] === 3) return tensorToImages(t)[0]!;
  throw new ImageError('<tensor>', `tensorToImage: expected [1, 3, H, W] or [3, H, W], got [${shape.join(', ')}]` +
    (shape.length === 4 && shape[1] === 3 ? ' (use tensorToImages for a batch)' : ''));
}
