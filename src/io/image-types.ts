// The decoded image type shared by image reading, resizing, tensor conversion and writing,
// and the error every image function throws for a bad file or bad input.

/** A decoded 8-bit sRGB image, rows top to bottom, pixels interleaved: data is [H, W, 3] uint8. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An image that could not be read, prepared or written; `file` is the path (or a description). */
export class ImageError extends Error {
  constructor(readonly file: string, message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

/** Checks that `image` is a well-formed RgbImage, naming `what` in the error. */
export function checkImage(image: RgbImage, what = 'image'): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError(what, `${what}: bad image size ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3) {
    throw new ImageError(what, `${what}: image data must be a Uint8Array of ${width}x${height}x3 = ${width * height * 3} bytes (got ${data?.length})`);
  }
}
