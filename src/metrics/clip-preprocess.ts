// CLIP image preprocessing as transformers' CLIPImageProcessor (image_processing_backends.py): resize the
// shortest edge, center crop, rescale by 1/255, normalize. Resizing follows either backend bit for bit:
// 'pil' (CLIPImageProcessorPil: Pillow's two-pass fixed-point resampling of the uint8 image, Resample.c) or
// 'torchvision' (the default class when torchvision is installed: antialiased interpolate, rounded to uint8).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cat, fromTypedArray, interpolate, isFloating, pad, tensor, tidy, type Tensor } from '../engine/index.js';
import { tensorToImages } from '../io/image-tensor.js';
import { checkImage, type RgbImage } from '../io/image-types.js';
import { MetricInputError, MetricLoadError } from './common.js';

export type ResizeBackend = 'pil' | 'torchvision';
export type PilFilter = 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';
/** PIL.Image.Resampling codes, as preprocessor_config.json's `resample` gives them (0, nearest, is not supported). */
const PIL_RESAMPLE: Record<number, PilFilter> = { 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

/** OPENAI_CLIP_MEAN / OPENAI_CLIP_STD of transformers' image_utils. */
export const OPENAI_CLIP_MEAN: readonly number[] = Object.freeze([0.48145466, 0.4578275, 0.40821073]);
export const OPENAI_CLIP_STD: readonly number[] = Object.freeze([0.26862954, 0.26130258, 0.27577711]);

export interface CLIPImageProcessorConfig {
  doResize: boolean;
  /** Shortest edge to this many pixels (aspect kept, long edge truncated as int()), or a fixed size. */
  size: { shortestEdge: number } | { height: number; width: number };
  resample: PilFilter;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: number[];
  imageStd: number[];
}

/** CLIPImageProcessor's defaults for a vision tower of `imageSize` pixels. */
export function defaultProcessorConfig(imageSize: number): CLIPImageProcessorConfig {
  return {
    doResize: true, size: { shortestEdge: imageSize }, resample: 'bicubic', doCenterCrop: true,
    cropSize: { height: imageSize, width: imageSize }, doRescale: true, rescaleFactor: 1 / 255,
    doNormalize: true, imageMean: [...OPENAI_CLIP_MEAN], imageStd: [...OPENAI_CLIP_STD],
  };
}

/** A preprocessor_config.json object over the defaults; the output must be imageSize x imageSize. */
export function parseProcessorConfig(json: unknown, imageSize: number, where = 'preprocessor_config.json'): CLIPImageProcessorConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new MetricLoadError(where, 'must hold a JSON object');
  const j = json as Record<string, unknown>;
  const c = defaultProcessorConfig(imageSize);
  const bad = (key: string, what: string): never => { throw new MetricLoadError(where, `'${key}' ${what} (got ${JSON.stringify(j[key])})`); };
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  const bool = (key: string, d: boolean) => (j[key] === undefined ? d : typeof j[key] === 'boolean' ? j[key] as boolean : bad(key, 'must be true or false'));
  const hw = (key: string): { height: number; width: number } | { shortestEdge: number } => {
    const v = j[key];
    if (posInt(v)) return key === 'size' ? { shortestEdge: v as number } : { height: v as number, width: v as number };
    const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
    if (key === 'size' && posInt(o.shortest_edge) && o.longest_edge === undefined) return { shortestEdge: o.shortest_edge as number };
    if (posInt(o.height) && posInt(o.width)) return { height: o.height as number, width: o.width as number };
    return bad(key, key === 'size' ? 'must be {shortest_edge}, {height, width} or an integer' : 'must be {height, width} or an integer');
  };
  const triple = (key: string, d: number[]) => {
    const v = j[key];
    if (v === undefined) return d;
    if (typeof v === 'number' && Number.isFinite(v)) return [v, v, v];
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) return v as number[];
    return bad(key, 'must be a number or 3 numbers');
  };
  c.doResize = bool('do_resize', c.doResize);
  if (j.size !== undefined) c.size = hw('size');
  if (j.resample !== undefined) c.resample = PIL_RESAMPLE[j.resample as number] ?? bad('resample', 'must be a PIL resampling code 1-5 (lanczos, bilinear, bicubic, box, hamming)');
  c.doCenterCrop = bool('do_center_crop', c.doCenterCrop);
  if (j.crop_size !== undefined) c.cropSize = hw('crop_size') as { height: number; width: number };
  c.doRescale = bool('do_rescale', c.doRescale);
  if (j.rescale_factor !== undefined) c.rescaleFactor = typeof j.rescale_factor === 'number' && j.rescale_factor > 0 ? j.rescale_factor : bad('rescale_factor', 'must be a positive number');
  c.doNormalize = bool('do_normalize', c.doNormalize);
  c.imageMean = triple('image_mean', c.imageMean);
  c.imageStd = triple('image_std', c.imageStd);
  if (c.imageStd.some((s) => s === 0)) bad('image_std', 'must not be 0');
  const out = c.doCenterCrop ? c.cropSize : c.doResize && 'height' in c.size ? c.size : null;
  if (out === null || out.height !== imageSize || out.width !== imageSize) {
    throw new MetricLoadError(where, `the processed images would not be ${imageSize}x${imageSize}, the vision model's image_size `
      + `(crop_size ${JSON.stringify(j.crop_size ?? null)}, size ${JSON.stringify(j.size ?? null)}, do_center_crop ${c.doCenterCrop})`);
  }
  return c;
}

/** A folder's preprocessor_config.json (errors name the file), or the defaults where it has none. */
export function readProcessorConfig(dir: string, imageSize: number): CLIPImageProcessorConfig {
  const file = path.join(dir, 'preprocessor_config.json');
  if (!existsSync(file)) return defaultProcessorConfig(imageSize);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MetricLoadError(file, `not valid JSON: ${(e as Error).message}`);
  }
  return parseProcessorConfig(json, imageSize, file);
}

/** get_resize_output_image_size(default_to_square=False): [height, width] after the resize step. */
export function resizedSize(height: number, width: number, size: CLIPImageProcessorConfig['size']): [number, number] {
  if ('height' in size) return [size.height, size.width];
  const s = size.shortestEdge;
  const long = Math.trunc((s * Math.max(height, width)) / Math.min(height, width)); // Python int(s * long / short)
  return width <= height ? [long, s] : [s, long];
}

// ---- Pillow's resampling (libImaging/Resample.c), 8 bits per channel

interface Filter { support: number; f: (x: number) => number }
const sinc = (x: number) => (x === 0 ? 1 : Math.sin(x * Math.PI) / (x * Math.PI));
const FILTERS: Record<PilFilter, Filter> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, f: (x) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0) },
  hamming: {
    support: 1,
    f: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      return (Math.sin(x) / x) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(x)); // 0.54f, 0.46f in C
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

/** precompute_coeffs + normalize_coeffs_8bpc: per output pixel the first input index, the tap count, fixed-point weights. */
function coefficients(inSize: number, outSize: number, filter: Filter): { bounds: Int32Array; kk: Int32Array; ksize: number } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.f((x + xmin - center + 0.5) / filterscale);
      ww += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

const clip8 = (ss: number) => (ss >= ONE * 256 ? 255 : ss <= 0 ? 0 : Math.floor(ss / ONE));

/**
 * PIL's Image.resize of an RGB image (no box, no reducing_gap): a horizontal pass into a uint8 image of
 * the rows the vertical pass needs, then the vertical pass, each rounding to uint8. Same size: a copy.
 */
export function pilResize(image: RgbImage, width: number, height: number, filter: PilFilter = 'bicubic'): RgbImage {
  checkImage(image);
  const { width: W, height: H } = image;
  if (W === width && H === height) return { width, height, data: image.data.slice() };
  const f = FILTERS[filter];
  const horiz = coefficients(W, width, f);
  const vert = coefficients(H, height, f);
  let src = image.data, srcW = W;
  if (width !== W) {
    const first = vert.bounds[0]!;
    const rows = vert.bounds[2 * height - 2]! + vert.bounds[2 * height - 1]! - first;
    const tmp = new Uint8Array(rows * width * 3); // [rows, width, 3]
    for (let y = 0; y < rows; y++) {
      const rowBase = (y + first) * W;
      for (let xx = 0; xx < width; xx++) {
        const xmin = horiz.bounds[2 * xx]!, n = horiz.bounds[2 * xx + 1]!, k = xx * horiz.ksize;
        for (let c = 0; c < 3; c++) {
          let ss = ONE / 2;
          for (let x = 0; x < n; x++) ss += src[(rowBase + xmin + x) * 3 + c]! * horiz.kk[k + x]!;
          tmp[(y * width + xx) * 3 + c] = clip8(ss);
        }
      }
    }
    for (let i = 0; i < height; i++) vert.bounds[2 * i] -= first; // rows of tmp, not of the image
    src = tmp;
    srcW = width;
  }
  if (height === H) return { width, height, data: src === image.data ? src.slice() : src };
  const out = new Uint8Array(height * width * 3);
  for (let yy = 0; yy < height; yy++) {
    const ymin = vert.bounds[2 * yy]!, n = vert.bounds[2 * yy + 1]!, k = yy * vert.ksize;
    for (let xx = 0; xx < width; xx++) {
      for (let c = 0; c < 3; c++) {
        let ss = ONE / 2;
        for (let y = 0; y < n; y++) ss += src[((ymin + y) * srcW + xx) * 3 + c]! * vert.kk[k + y]!;
        out[(yy * width + xx) * 3 + c] = clip8(ss);
      }
    }
  }
  return { width, height, data: out };
}

/** Row (column) offset of a center crop: numpy's (size - crop) // 2, whose zero padding falls where it lands; torchvision pads (crop - size) // 2 first. */
function cropOffset(size: number, crop: number, backend: ResizeBackend): number {
  return size >= crop || backend === 'pil' ? Math.floor((size - crop) / 2) : -Math.floor((crop - size) / 2);
}

/**
 * Pixel values [B, 3, S, S] (float32, CPU) for CLIP's vision tower from uint8 images, or from a [B, 3, H, W]
 * tensor in [-1, 1] (the pipelines' output), first rounded to uint8 exactly as it is saved (tensorToImages),
 * so that a tensor and its PNG score the same. An image already at the target size is not resampled.
 */
export function clipPixelValues(images: RgbImage[] | Tensor, cfg: CLIPImageProcessorConfig, backend: ResizeBackend = 'pil'): Tensor {
  if (!Array.isArray(images)) {
    const s = images.shape;
    if (s.length !== 4 || s[1] !== 3 || !isFloating(images.dtype)) {
      throw new MetricInputError(`images must be RgbImages or a floating [B, 3, H, W] tensor in [-1, 1], got ${images.dtype} [${s.join(', ')}]`);
    }
    if (backend === 'pil') return clipPixelValues(tensorToImages(images), cfg, backend);
    return tidy(() => torchvisionPath(images.detach().div(2).add(0.5).clamp(0, 1).float().mul(255).round(), cfg));
  }
  if (images.length === 0) throw new MetricInputError('no images given');
  images.forEach((im, i) => checkImage(im, `image ${i}`));
  if (backend === 'torchvision') {
    return tidy(() => cat(images.map((im) => torchvisionPath(
      fromTypedArray(im.data, [1, im.height, im.width, 3], { dtype: 'float32' }).permute(0, 3, 1, 2), cfg))));
  }
  const { height: ch, width: cw } = cfg.doCenterCrop ? cfg.cropSize : { height: 0, width: 0 };
  const planes: Float32Array[] = images.map((im) => {
    const [rh, rw] = cfg.doResize ? resizedSize(im.height, im.width, cfg.size) : [im.height, im.width];
    const r = cfg.doResize ? pilResize(im, rw, rh, cfg.resample) : im;
    const [oh, ow] = cfg.doCenterCrop ? [ch, cw] : [rh, rw];
    const top = cfg.doCenterCrop ? cropOffset(rh, ch, 'pil') : 0, left = cfg.doCenterCrop ? cropOffset(rw, cw, 'pil') : 0;
    const out = new Float32Array(3 * oh * ow); // [3, oh, ow]
    const mean = cfg.imageMean.map(Math.fround), std = cfg.imageStd.map(Math.fround);
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const sy = y + top, sx = x + left;
        const inside = sy >= 0 && sy < rh && sx >= 0 && sx < rw;
        for (let c = 0; c < 3; c++) {
          let v = inside ? r.data[(sy * rw + sx) * 3 + c]! : 0;
          if (cfg.doRescale) v = Math.fround(v * cfg.rescaleFactor); // numpy: float64 multiply, then float32
          if (cfg.doNormalize) v = Math.fround(Math.fround(v - mean[c]!) / std[c]!); // float32 arithmetic
          out[(c * oh + y) * ow + x] = v;
        }
      }
    }
    return out;
  });
  const [oh, ow] = cfg.doCenterCrop ? [ch, cw] : resizedSize(images[0]!.height, images[0]!.width, cfg.size);
  const n = 3 * oh * ow;
  if (planes.some((p) => p.length !== n)) throw new MetricInputError('the processed images differ in size: enable do_center_crop or a fixed size');
  const all = new Float32Array(images.length * n);
  planes.forEach((p, i) => all.set(p, i * n));
  return fromTypedArray(all, [images.length, 3, oh, ow]);
}

/** torchvision backend on [B, 3, H, W] float32 holding uint8 values: tvF.resize, center_crop, fused rescale+normalize. */
function torchvisionPath(x: Tensor, cfg: CLIPImageProcessorConfig): Tensor {
  const [, , H, W] = x.shape as [number, number, number, number];
  if (cfg.doResize) {
    const [rh, rw] = resizedSize(H, W, cfg.size);
    if (cfg.resample !== 'bicubic' && cfg.resample !== 'bilinear') {
      throw new MetricInputError(`the torchvision backend resizes with bilinear or bicubic only, not ${cfg.resample} (use the pil backend)`);
    }
    if (rh !== H || rw !== W) { // torchvision returns the image itself at the same size
      x = interpolate(x, { size: [rh, rw], mode: cfg.resample, antialias: true }).clamp(0, 255).round();
    }
  }
  if (cfg.doCenterCrop) {
    const [, , h, w] = x.shape as [number, number, number, number];
    const { height: ch, width: cw } = cfg.cropSize;
    const top = cropOffset(h, ch, 'torchvision'), left = cropOffset(w, cw, 'torchvision');
    x = pad(x, [-left, left + cw - w, -top, top + ch - h]); // negative pads crop, positive ones add zeros
  }
  // mean / rescale_factor and std / rescale_factor in float32, then (x - m) / s: transformers' fused form
  const scale = (v: number) => Math.fround(Math.fround(v) * Math.fround(1 / cfg.rescaleFactor));
  if (cfg.doNormalize) {
    const m = cfg.doRescale ? cfg.imageMean.map(scale) : cfg.imageMean;
    const s = cfg.doRescale ? cfg.imageStd.map(scale) : cfg.imageStd;
    return x.sub(tensor(m).view(1, 3, 1, 1)).div(tensor(s).view(1, 3, 1, 1));
  }
  return cfg.doRescale ? x.mul(Math.fround(cfg.rescaleFactor)) : x;
}
