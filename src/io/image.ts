// Image input/output for the pipelines, through sharp (libvips): decode to 8-bit sRGB RGB, resize to
// the model resolution (diffusers' legacy img2img preprocess: PIL LANCZOS resize), write PNG atomically.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { Tensor } from '../engine/index.js';
import { tensorToImage } from './image-tensor.js';
import { checkImage, ImageError, type RgbImage } from './image-types.js';

export { imageToTensor, tensorToImage, tensorToImages, type ImageToTensorOptions } from './image-tensor.js';
export { checkImage, ImageError, type RgbImage } from './image-types.js';

/** The formats readImage accepts by default (sharp's names, as metadata().format reports them). */
export const IMAGE_FORMATS: readonly string[] = ['png', 'jpeg', 'webp'];

/** Limits and formats readImage() accepts. */
export interface ReadImageOptions {
  /** Refuse images narrower or shorter than this (default 8: the VAE downsamples by 8). */
  minSize?: number;
  /** Refuse images with more pixels than this, from the header, before decoding (default 100 MP). */
  maxPixels?: number;
  /** Refuse files larger than this many bytes without reading them (default 256 MiB). */
  maxBytes?: number;
  /** Accepted formats (default IMAGE_FORMATS); anything else sharp can read is refused by name. */
  formats?: readonly string[];
  /** The name used in errors for Buffer input (default '<buffer>'). */
  name?: string;
}

const DEFAULT_MAX_PIXELS = 100_000_000;
const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
const WHITE = { r: 255, g: 255, b: 255 };

const mp = (n: number) => `${(n / 1e6).toFixed(1)} megapixels`;
const detail = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e));

/**
 * Reads a PNG, JPEG or WebP file (or Buffer) into 8-bit sRGB RGB: EXIF orientation applied, alpha
 * flattened onto white (libvips: c' = floor((c*a + 255*(255-a)) / 255)), grayscale, CMYK and 16-bit
 * converted (16-bit to 8-bit is libvips' v >> 8), embedded ICC profiles converted to sRGB.
 * The header is checked first, so a huge image is refused without decoding its pixels.
 */
export async function readImage(input: string | Buffer, opts: ReadImageOptions = {}): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : opts.name ?? '<buffer>';
  const minSize = opts.minSize ?? 8;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const formats = opts.formats ?? IMAGE_FORMATS;
  const bytes = typeof input === 'string' ? await readBytes(input, opts.maxBytes ?? DEFAULT_MAX_BYTES) : input;

  // The header only; no pixel limit here so that the error below can give the size.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError(name, `not an image or corrupt: ${name} (${detail(e)})`);
  }
  const format = String(meta.format);
  if (!formats.includes(format)) {
    throw new ImageError(name, `unsupported image format '${format}': ${name} (supported: ${formats.join(', ')})`);
  }
  const { width, height } = meta;
  if (!width || !height) throw new ImageError(name, `not an image or corrupt: ${name} (no size in the header)`);
  if (width * height > maxPixels) {
    throw new ImageError(name, `image too large: ${name} is ${width}x${height} = ${mp(width * height)}, the limit is ${mp(maxPixels)} (option maxPixels)`);
  }
  if (width < minSize || height < minSize) {
    throw new ImageError(name, `image too small: ${name} is ${width}x${height}, the minimum is ${minSize}x${minSize}`);
  }

  try {
    // failOn 'error': refuse truncated or broken pixel data, tolerate benign decoder warnings.
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', autoOrient: true })
      .flatten({ background: WHITE })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw new ImageError(name, `not an image or corrupt: ${name} (${detail(e)})`);
  }
}

/** The file's bytes, read once, so that the header check and the decode see the same data. */
async function readBytes(file: string, maxBytes: number): Promise<Buffer> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new ImageError(file, `not a file: ${file}`);
    if (s.size > maxBytes) throw new ImageError(file, `file too large: ${file} is ${s.size} bytes, the limit is ${maxBytes} (option maxBytes)`);
    return await readFile(file);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ImageError(file, `no such file: ${file}`);
    throw new ImageError(file, `cannot read ${file}: ${detail(e)}`);
  }
}

export type PrepareMode = 'center-crop' | 'resize' | 'pad';

/** Options of prepareImage(): the target size and how the image is fitted to it. */
export interface PrepareOptions {
  /** Target size in pixels, positive multiples of 8 (SD v1: 512; the embedded test model: 64). */
  width: number;
  height: number;
  /**
   * 'center-crop' (default): scale so the image covers the target, crop the long side centered.
   * 'resize': stretch to the target, aspect ratio not kept.
   * 'pad': scale so the image fits inside, pad the rest (centered) with `background`.
   */
  mode?: PrepareMode;
  /** Padding colour for 'pad' (default white, as readImage flattens alpha onto white). */
  background?: { r: number; g: number; b: number };
}

/**
 * Resizes an image to the model resolution. The filter is Lanczos3 (sharp's default kernel), as
 * diffusers' legacy img2img/Imagic preprocess (PIL LANCZOS): it widens with the scale factor when
 * downsampling, so it antialiases (libvips may box-shrink by an integer factor first on large
 * reductions); unlike PIL, libvips extends edges by copying, so border pixels can differ. Sizes
 * are rounded to the nearest pixel; the crop/pad offset is floor((resized - target) / 2).
 * An image already at the target size is returned unchanged (a copy).
 */
export async function prepareImage(image: RgbImage, opts: PrepareOptions): Promise<RgbImage> {
  checkImage(image);
  const { width: W, height: H } = opts;
  const mode = opts.mode ?? 'center-crop';
  if (!Number.isInteger(W) || !Number.isInteger(H) || W < 8 || H < 8 || W % 8 !== 0 || H % 8 !== 0) {
    throw new ImageError('<image>', `prepareImage: width and height must be positive multiples of 8 (got ${W}x${H})`);
  }
  if (!['center-crop', 'resize', 'pad'].includes(mode)) {
    throw new ImageError('<image>', `prepareImage: unknown mode '${mode}' (center-crop, resize or pad)`);
  }
  const { width: w, height: h } = image;
  if (w === W && h === H) return { width: W, height: H, data: image.data.slice() };

  let rw = W, rh = H; // the resized size before cropping or padding
  if (mode !== 'resize') {
    const scale = mode === 'center-crop' ? Math.max(W / w, H / h) : Math.min(W / w, H / h);
    const clampTo = mode === 'center-crop' ? Math.max : Math.min;
    rw = clampTo(W, Math.max(1, Math.round(w * scale)));
    rh = clampTo(H, Math.max(1, Math.round(h * scale)));
  }
  let s = sharp(image.data, { raw: { width: w, height: h, channels: 3 } });
  if (rw !== w || rh !== h) s = s.resize(rw, rh, { fit: 'fill', kernel: 'lanczos3' });
  if (mode === 'center-crop' && (rw !== W || rh !== H)) {
    s = s.extract({ left: Math.floor((rw - W) / 2), top: Math.floor((rh - H) / 2), width: W, height: H });
  } else if (mode === 'pad' && (rw !== W || rh !== H)) {
    const left = Math.floor((W - rw) / 2), top = Math.floor((H - rh) / 2);
    s = s.extend({ left, right: W - rw - left, top, bottom: H - rh - top, background: opts.background ?? WHITE });
  }
  const { data, info } = await s.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.width !== W || info.height !== H || info.channels !== 3) {
    throw new Error(`prepareImage: internal error, got ${info.width}x${info.height}x${info.channels} for ${W}x${H}x3`);
  }
  return { width: W, height: H, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Options of writePng(). */
export interface WritePngOptions {
  /** Create missing parent folders (default false: a missing folder is an error). */
  mkdir?: boolean;
  /** zlib level 0-9 (default 6). */
  compressionLevel?: number;
}

/** The bytes of an 8-bit RGB PNG of the image (an RgbImage, or a tensor as writePng takes). */
export async function encodePng(image: RgbImage | Tensor, opts: Pick<WritePngOptions, 'compressionLevel'> = {}): Promise<Buffer> {
  const img = image instanceof Tensor ? tensorToImage(image) : image;
  checkImage(img, 'image');
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png({ compressionLevel: opts.compressionLevel ?? 6 })
    .toBuffer();
}

/**
 * Writes an RgbImage, or a [1, 3, H, W] / [3, H, W] tensor in [-1, 1] (see tensorToImage), as an
 * 8-bit RGB PNG. Atomic: the bytes go to a hidden temporary file in the same folder, are flushed,
 * then renamed over `file`; on any failure the temporary file is removed and `file` is untouched.
 */
export async function writePng(file: string, image: RgbImage | Tensor, opts: WritePngOptions = {}): Promise<void> {
  const img = image instanceof Tensor ? tensorToImage(image) : image;
  checkImage(img, file);
  const dir = path.dirname(path.resolve(file));
  if (opts.mkdir) {
    await mkdir(dir, { recursive: true }).catch((e) => {
      throw new ImageError(file, `cannot write ${file}: cannot create folder ${dir} (${detail(e)})`);
    });
  } else {
    const s = await stat(dir).catch(() => null);
    if (s === null) throw new ImageError(file, `cannot write ${file}: folder ${dir} does not exist (pass mkdir: true to create it)`);
    if (!s.isDirectory()) throw new ImageError(file, `cannot write ${file}: ${dir} is not a folder`);
  }
  const png = await encodePng(img, opts);
  try {
    await writeFileAtomic(file, png);
  } catch (e) {
    throw new ImageError(file, `cannot write ${file}: ${detail(e)}`);
  }
}

/**
 * Writes `data` to `file` through a hidden temporary file in the same folder (flushed, then renamed
 * over `file`), so that a reader never sees a partial file; the temporary is removed on failure.
 */
export async function writeFileAtomic(file: string, data: Buffer | Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
