// Images in and out of the public API: what a call accepts as its input image, prepared at the
// model's resolution, and a session's own copy of it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Tensor } from '../engine/index.js';
import { checkImage, imageToTensor, prepareImage, readImage, tensorToImage, writePng, type RgbImage } from '../io/image.js';
import type { StableDiffusion } from '../pipelines/index.js';
import { EditSession, imageHash } from '../pipelines/imagic/index.js';
import { imageDomainWarning, isShapesModel } from '../shapes/domain.js';

/** An image: a file path, the bytes of a PNG / JPEG / WebP, or decoded RGB pixels. */
export type ImageSource = string | Buffer | Uint8Array | RgbImage;

function isRgb(x: ImageSource): x is RgbImage {
  return typeof x === 'object' && !(x instanceof Uint8Array) && 'data' in x && 'width' in x;
}

/** Decodes an ImageSource (files and bytes through sharp; EXIF orientation applied, alpha on white). */
export async function toRgbImage(source: ImageSource, name = 'image'): Promise<RgbImage> {
  if (isRgb(source)) {
    checkImage(source, name);
    return source;
  }
  if (typeof source === 'string') return readImage(source);
  return readImage(Buffer.isBuffer(source) ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength), { name });
}

/** The input at the model's resolution (center-cropped), [1, 3, H, W] in [-1, 1]. */
export async function loadInputImage(source: ImageSource, sd: StableDiffusion, log: (m: string) => void): Promise<Tensor> {
  const img = await toRgbImage(source, 'the input image');
  const size = (sd.unet.config.sample_size ?? 64) * 8;
  const name = typeof source === 'string' ? source : 'the input image';
  if (img.width !== size || img.height !== size) log(`note: ${name} is ${img.width}x${img.height}; resized and center-cropped to the model's ${size}x${size}`);
  const prepared = await prepareImage(img, { width: size, height: size, mode: 'center-crop' });
  if (isShapesModel(sd.root)) {
    const w = imageDomainWarning(prepared);
    if (w) log(`warning: ${w}`);
  }
  return imageToTensor(prepared);
}

/** Where the model saw the input: <session>/input.png (what a later render compares its candidates with). */
export async function saveSessionInput(dir: string, input: Tensor): Promise<void> {
  await writePng(path.join(dir, 'input.png'), tensorToImage(input));
}

/** The session's input [1, 3, H, W]: its input.png, else the recorded source image prepared again; checked against the recorded hash. */
export async function loadSessionInput(session: EditSession): Promise<Tensor> {
  const own = session.file('input.png');
  const { source, width, height, sha256 } = session.json.image;
  let img: RgbImage;
  if (existsSync(own)) img = await readImage(own);
  else if (existsSync(source)) img = await prepareImage(await readImage(source), { width, height, mode: 'center-crop' });
  else throw new Error(`session ${session.dir}: scoring compares with the input, but the session has no input.png and its input ${source} is gone`);
  const t = imageToTensor(img);
  if (imageHash(t) !== sha256) {
    t.dispose();
    throw new Error(`session ${session.dir}: ${existsSync(own) ? own : source} is not the image this session was trained on (its hash differs)`);
  }
  return t;
}
