// Image I/O: decoding (alpha, EXIF orientation, grey, 16-bit, CMYK), refusals with clear errors,
// center-crop/resize/pad, the [-1, 1] tensor conversion (diffusers' rounding) and atomic PNG writing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { fromTypedArray, liveTensors, tensor, tidy } from '../../src/engine/index.js';
import {
  imageToTensor, prepareImage, readImage, tensorToImage, tensorToImages, writePng, type RgbImage,
} from '../../src/io/image.js';
import { assertClose } from '../helpers.js';

let dir = '';
before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-image-')); });
after(() => rmSync(dir, { recursive: true, force: true }));
const p = (name: string) => path.join(dir, name);

type Rgb = [number, number, number];
/** Raw interleaved pixels [H, W, C] from a per-pixel function. */
function raw(w: number, h: number, c: number, f: (x: number, y: number) => number[]): Buffer {
  const b = Buffer.alloc(w * h * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f(x, y).forEach((v, k) => { b[(y * w + x) * c + k] = v; });
  return b;
}
const image = (w: number, h: number, f: (x: number, y: number) => Rgb): RgbImage => ({ width: w, height: h, data: new Uint8Array(raw(w, h, 3, f)) });
const px = (img: RgbImage, x: number, y: number): Rgb => {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
};
const near = (a: Rgb, e: Rgb, tol: number, what: string) => assertClose(a, e, tol, 0, what);

// A PNG written byte by byte (signature, IHDR, one IDAT, IEND), so its header can say anything.
const CRC = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
function crc32(b: Buffer): number { let c = 0xffffffff; for (const v of b) c = CRC[(c ^ v) & 0xff]! ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; }
function chunk(type: string, data: Buffer): Buffer {
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function craftPng(w: number, h: number, bitDepth: number, colorType: number, scanlines: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = bitDepth; ihdr[9] = colorType;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(scanlines)), chunk('IEND', Buffer.alloc(0))]);
}

describe('readImage', () => {
  test('alpha is flattened onto white with libvips\' formula floor((c*a + 255*(255-a)) / 255)', async () => {
    const rgba: number[][] = [[255, 0, 0, 128], [10, 20, 30, 200], [7, 99, 180, 129], [0, 0, 0, 0], [1, 2, 3, 255]];
    await sharp(raw(8, 8, 4, (x, y) => rgba[(y * 8 + x) % rgba.length]!), { raw: { width: 8, height: 8, channels: 4 } }).png().toFile(p('alpha.png'));
    const img = await readImage(p('alpha.png'));
    assert.equal(img.data.length, 8 * 8 * 3);
    assert.deepEqual(px(img, 0, 0), [255, 127, 127]); // half-transparent red: 255 * 127 / 255 = 127 in G and B
    rgba.forEach(([r, g, b, a], i) => {
      const blend = (c: number) => Math.floor((c * a! + 255 * (255 - a!)) / 255);
      assert.deepEqual(px(img, i, 0), [blend(r!), blend(g!), blend(b!)], `pixel ${i}`);
    });
    assert.deepEqual(px(img, 1, 0), [62, 70, 78]); // floor of 62.84, 70.69, 78.53: truncation, not rounding
  });

  test('JPEG with EXIF orientation 6 is rotated 90 degrees clockwise', async () => {
    // Stored 32x16: quadrants of 16x8 (aligned with JPEG blocks) red | green over blue | white.
    const q = (x: number, y: number): Rgb => (y < 8 ? (x < 16 ? [255, 0, 0] : [0, 255, 0]) : x < 16 ? [0, 0, 255] : [255, 255, 255]);
    await sharp(raw(32, 16, 3, q), { raw: { width: 32, height: 16, channels: 3 } })
      .jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).withMetadata({ orientation: 6 }).toFile(p('rot6.jpg'));
    const meta = await sharp(p('rot6.jpg')).metadata();
    assert.deepEqual([meta.width, meta.height, meta.orientation], [32, 16, 6]);
    const img = await readImage(p('rot6.jpg'));
    assert.deepEqual([img.width, img.height], [16, 32]);
    // Displayed (x', y') = (H - 1 - y, x): stored top-left goes to the top-right corner.
    near(px(img, 15, 0), [255, 0, 0], 4, 'top-right = stored top-left (red)');
    near(px(img, 0, 0), [0, 0, 255], 4, 'top-left = stored bottom-left (blue)');
    near(px(img, 15, 31), [0, 255, 0], 4, 'bottom-right = stored top-right (green)');
    near(px(img, 0, 31), [255, 255, 255], 4, 'bottom-left = stored bottom-right (white)');
  });

  test('lossless WebP and PNG decode to the exact pixels; a Buffer reads like a file', async () => {
    const src = image(16, 8, (x, y) => [(x * 16 + y) % 256, (x * 37 + y * 11) % 256, (255 - x * y) % 256]);
    const input = { raw: { width: 16, height: 8, channels: 3 as const } };
    await sharp(src.data, input).webp({ lossless: true }).toFile(p('a.webp'));
    const png = await sharp(src.data, input).png().toBuffer();
    assert.deepEqual(await readImage(p('a.webp')), src);
    assert.deepEqual(await readImage(png), src);
  });

  test('a grayscale PNG becomes three equal channels', async () => {
    const grey = raw(8, 8, 1, (x, y) => [x * 30 + y]);
    await sharp(grey, { raw: { width: 8, height: 8, channels: 1 } }).toColourspace('b-w').png().toFile(p('grey.png'));
    assert.equal((await sharp(p('grey.png')).metadata()).channels, 1);
    const img = await readImage(p('grey.png'));
    for (let i = 0; i < 64; i++) assert.deepEqual(px(img, i % 8, Math.floor(i / 8)), [grey[i], grey[i], grey[i]]);
  });

  test('a 16-bit PNG is reduced to 8 bits as libvips does (v >> 8)', async () => {
    const vals = [0x0000, 0xffff, 0x8080, 0x7fff, 0x10ff, 0x81ff, 0x0180, 0xff00];
    const rows = Buffer.alloc(8 * (1 + 8 * 6)); // 8 rows of [filter 0, 8 pixels x RGB16 big-endian]
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) {
      rows.writeUInt16BE(vals[(x + c + y) % 8]!, y * 49 + 1 + (x * 3 + c) * 2);
    }
    writeFileSync(p('deep.png'), craftPng(8, 8, 16, 2, rows));
    assert.equal((await sharp(p('deep.png')).metadata()).depth, 'ushort');
    const img = await readImage(p('deep.png'));
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) {
      assert.deepEqual(px(img, x, y), [0, 1, 2].map((c) => vals[(x + c + y) % 8]! >> 8), `pixel ${x},${y}`);
    }
    assert.equal(img.data[4 * 3], 0x10); // 0x10ff: 16 by truncation, where round(v / 257) would give 17
  });

  test('a CMYK JPEG is converted to sRGB', async () => {
    await sharp(raw(16, 8, 3, (x) => (x < 8 ? [255, 255, 255] : [0, 0, 0])), { raw: { width: 16, height: 8, channels: 3 } })
      .toColourspace('cmyk').jpeg({ quality: 100 }).toFile(p('cmyk.jpg'));
    assert.equal((await sharp(p('cmyk.jpg')).metadata()).space, 'cmyk');
    const img = await readImage(p('cmyk.jpg'));
    assert.equal(img.data.length, 16 * 8 * 3);
    near(px(img, 2, 4), [255, 255, 255], 3, 'white');
    near(px(img, 13, 4), [0, 0, 0], 20, 'black'); // the CMYK profile round trip is not exact
  });

  test('an embedded ICC profile (Display P3) is converted to sRGB', async () => {
    const p3 = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } }).withIccProfile('p3').png().toBuffer();
    const stored = await sharp(p3, { ignoreIcc: true }).raw().toBuffer();
    near([stored[0]!, stored[1]!, stored[2]!], [234, 51, 34], 3, 'sRGB red in P3 numbers');
    near(px(await readImage(p3), 4, 4), [255, 0, 0], 2, 'back in sRGB');
  });

  test('a 1x1 image and one under 8 pixels on a side are refused', async () => {
    await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } }).png().toFile(p('one.png'));
    await assert.rejects(readImage(p('one.png')), { message: `image too small: ${p('one.png')} is 1x1, the minimum is 8x8` });
    await sharp({ create: { width: 100, height: 7, channels: 3, background: '#fff' } }).png().toFile(p('thin.png'));
    await assert.rejects(readImage(p('thin.png')), /image too small: .*thin\.png is 100x7/);
    assert.equal((await readImage(p('thin.png'), { minSize: 4 })).height, 7);
  });

  test('a 20000x20000 image is refused from its header, before decoding', async () => {
    // A valid PNG header claiming 20000x20000 with only two scanlines of data: 220 bytes on disk.
    writeFileSync(p('huge.png'), craftPng(20000, 20000, 8, 2, Buffer.alloc(2 * 60001)));
    const t0 = performance.now();
    await assert.rejects(readImage(p('huge.png')),
      { message: `image too large: ${p('huge.png')} is 20000x20000 = 400.0 megapixels, the limit is 100.0 megapixels (option maxPixels)` });
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#fff' } }).png().toFile(p('small.png'));
    await assert.rejects(readImage(p('small.png'), { maxPixels: 4000 }), /image too large: .* is 64x64/);
    await assert.rejects(readImage(p('small.png'), { maxBytes: 10 }), /file too large: .*small\.png is \d+ bytes, the limit is 10/);
  });

  test('corrupt files and non-images are refused as "not an image or corrupt"', async () => {
    let s = 12345;
    writeFileSync(p('random.png'), Buffer.from(Array.from({ length: 4096 }, () => (s = (s * 1103515245 + 12345) % 2 ** 31) & 0xff)));
    writeFileSync(p('text.png'), 'this is a text file, not a picture\n');
    writeFileSync(p('empty.png'), '');
    const good = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#f00' } }).png().toBuffer();
    writeFileSync(p('truncated.png'), good.subarray(0, good.length - 30)); // the header is fine, the pixel data is cut
    const jpg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#f00' } }).jpeg().toBuffer();
    writeFileSync(p('truncated.jpg'), jpg.subarray(0, jpg.length >> 1));
    for (const f of ['random.png', 'text.png', 'empty.png', 'truncated.png', 'truncated.jpg']) {
      await assert.rejects(readImage(p(f)), (e: Error) => e.message.startsWith(`not an image or corrupt: ${p(f)}`), f);
    }
    await assert.rejects(readImage(Buffer.from('hello')), { message: /^not an image or corrupt: <buffer> \(/ });
    await assert.rejects(readImage(Buffer.from('hello'), { name: 'upload #3' }), /not an image or corrupt: upload #3/);
  });

  test('a missing path, a folder and an unsupported format are named in the error', async () => {
    await assert.rejects(readImage(p('nope.png')), { message: `no such file: ${p('nope.png')}` });
    await assert.rejects(readImage(p('nope/deeper.png')), { message: `no such file: ${p('nope/deeper.png')}` });
    await assert.rejects(readImage(dir), { message: `not a file: ${dir}` });
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#0f0' } }).gif().toFile(p('a.gif'));
    await assert.rejects(readImage(p('a.gif')), { message: `unsupported image format 'gif': ${p('a.gif')} (supported: png, jpeg, webp)` });
    near(px(await readImage(p('a.gif'), { formats: ['gif'] }), 3, 3), [0, 255, 0], 0, 'gif when allowed');
  });
});

describe('prepareImage', () => {
  // 100x60: 15 columns red | 70 green | 15 blue.
  const bands = image(100, 60, (x) => (x < 15 ? [255, 0, 0] : x < 85 ? [0, 255, 0] : [0, 0, 255]));

  test('center-crop scales the short side and keeps the middle of the long side', async () => {
    // Scale 64/60 -> 107x64, crop columns 21..84, i.e. source x in [19.7, 79.7]: all green.
    const out = await prepareImage(bands, { width: 64, height: 64, mode: 'center-crop' });
    assert.deepEqual([out.width, out.height, out.data.length], [64, 64, 64 * 64 * 3]);
    for (let y = 0; y < 64; y += 9) for (const x of [0, 1, 31, 62, 63]) assert.deepEqual(px(out, x, y), [0, 255, 0], `${x},${y}`);
    // Exact offsets where no resampling happens: 64x81 -> rows floor(17 / 2) = 8 .. 71.
    const tall = image(64, 81, (x, y) => [y, x, 7]);
    const cropped = await prepareImage(tall, { width: 64, height: 64 });
    assert.deepEqual(px(cropped, 0, 0), [8, 0, 7]);
    assert.deepEqual(px(cropped, 63, 63), [71, 63, 7]);
  });

  test('resize stretches and pad letterboxes with white', async () => {
    const stretched = await prepareImage(bands, { width: 64, height: 64, mode: 'resize' });
    assert.deepEqual(px(stretched, 0, 32), [255, 0, 0]);
    assert.deepEqual(px(stretched, 63, 32), [0, 0, 255]);
    assert.deepEqual(px(stretched, 32, 32), [0, 255, 0]);
    // Scale 0.64 -> 64x38, 13 white rows above and below.
    const padded = await prepareImage(bands, { width: 64, height: 64, mode: 'pad' });
    for (const y of [0, 12, 51, 63]) assert.deepEqual(px(padded, 32, y), [255, 255, 255], `row ${y}`);
    for (const y of [13, 32, 50]) assert.deepEqual(px(padded, 32, y), [0, 255, 0], `row ${y}`);
    assert.deepEqual(px(padded, 0, 32), [255, 0, 0]);
    const black = await prepareImage(bands, { width: 64, height: 64, mode: 'pad', background: { r: 0, g: 0, b: 0 } });
    assert.deepEqual(px(black, 32, 0), [0, 0, 0]);
  });

  test('downsampling uses Lanczos3, which antialiases; the target size is returned as is', async () => {
    const stripes = image(128, 128, (x) => (x % 2 ? [255, 255, 255] : [0, 0, 0]));
    const out = await prepareImage(stripes, { width: 64, height: 64 });
    // Interior columns average the 1-pixel stripes (nearest would give 0 or 255); the borders
    // differ because libvips extends edges by copying them.
    for (let x = 2; x < 62; x++) {
      const v = px(out, x, 32)[0];
      assert.ok(v >= 126 && v <= 129, `column ${x}: ${v}`);
    }
    const same = await prepareImage(stripes, { width: 128, height: 128 });
    assert.deepEqual(same, stripes);
    assert.notEqual(same.data, stripes.data);
  });

  test('sizes must be multiples of 8', async () => {
    await assert.rejects(prepareImage(bands, { width: 60, height: 64 }), /multiples of 8 \(got 60x64\)/);
    await assert.rejects(prepareImage(bands, { width: 0, height: 64 }), /multiples of 8/);
    await assert.rejects(prepareImage({ width: 4, height: 4, data: new Uint8Array(5) }, { width: 8, height: 8 }), /Uint8Array of 4x4x3 = 48 bytes/);
  });
});

describe('image <-> tensor', () => {
  test('imageToTensor gives [1, 3, H, W] float32 x / 127.5 - 1, channel planes first', () => {
    const img = image(8, 8, (x, y) => [(x + y * 8) * 4 % 256, 255, y === 0 && x === 1 ? 128 : 0]);
    const t = imageToTensor(img);
    assert.deepEqual(t.shape, [1, 3, 8, 8]);
    assert.equal(t.dtype, 'float32');
    const v = t.toTypedArray() as Float32Array;
    assert.equal(v[0], -1); // R of (0, 0) = 0
    assert.equal(v[64], 1); // G plane = 255
    assert.equal(v[128 + 1], Math.fround(1 / 255)); // B of (1, 0) = 128 -> 0.003921568859...
    assert.equal(v[128 + 1], 0.003921568859368563);
    for (let i = 0; i < 64; i++) assert.equal(v[i], Math.fround(img.data[3 * i]! / 127.5 - 1));
    t.dispose();
  });

  test('every byte survives image -> tensor -> image exactly, with no tensor left behind', () => {
    const img = image(16, 16, (x, y) => [y * 16 + x, 255 - (y * 16 + x), (x * 7 + y * 3) % 256]);
    const live = liveTensors();
    const t = imageToTensor(img);
    assert.deepEqual(tensorToImage(t), img);
    tidy(() => {
      assert.deepEqual(tensorToImage(t.squeeze(0)), img);
      assert.deepEqual(tensorToImage(t.half()), img);
    });
    t.dispose();
    assert.equal(liveTensors(), live);
  });

  test('tensorToImage rounds as diffusers: (x/2 + 0.5).clamp(0, 1), * 255 in float32, round half to even', () => {
    // 0 -> 127.5 -> 128 (even); HALF_DOWN -> exactly 126.5 -> 126 (even; Math.round would give 127).
    const HALF_DOWN = Math.fround(-0.00784311);
    assert.equal(Math.fround(Math.fround(Math.fround(HALF_DOWN / 2) + 0.5) * 255), 126.5);
    const vals = [1, -1, 0, HALF_DOWN, 1.5, -3, NaN, 0.5, -0.5, 0.999, 1 / 255, -1 + 1e-3];
    const expected = [255, 0, 128, 126, 255, 0, 0, 191, 64, 255, 128, 0];
    // 0.5 -> 191.25 -> 191; -0.5 -> 63.75 -> 64; 0.999 -> 254.87 -> 255; 1/255 -> 128.0; -0.999 -> 0.1275 -> 0
    const n = vals.length;
    const data = new Float32Array(3 * n);
    vals.forEach((v, i) => { data[i] = v; data[n + i] = v; data[2 * n + i] = -v; });
    const t = fromTypedArray(data, [1, 3, 1, n]);
    const img = tensorToImage(t);
    assert.deepEqual([img.width, img.height], [n, 1]);
    for (let i = 0; i < n; i++) {
      assert.equal(img.data[3 * i], expected[i], `R of ${vals[i]}`);
      assert.equal(img.data[3 * i + 1], expected[i], `G of ${vals[i]}`);
    }
    assert.equal(img.data[3 * 2 + 2], 128); // -0 -> 128
    assert.equal(img.data[3 * 4 + 2], 0); // -1.5 -> 0
    t.dispose();
  });

  test('tensorToImages splits a batch; tensorToImage refuses a batch and wrong shapes', () => {
    const a = image(8, 8, (x, y) => [x * 30, y * 30, 9]);
    const b = image(8, 8, (x, y) => [y * 30, 200, x * 30]);
    const ta = imageToTensor(a), tb = imageToTensor(b);
    const data = new Float32Array([...(ta.toTypedArray() as Float32Array), ...(tb.toTypedArray() as Float32Array)]);
    const batch = fromTypedArray(data, [2, 3, 8, 8]);
    assert.deepEqual(tensorToImages(batch), [a, b]);
    assert.throws(() => tensorToImage(batch), /use tensorToImages for a batch/);
    assert.throws(() => tensorToImages(tensor([[1, 2]])), /expected a \[B, 3, H, W\] tensor, got \[1, 2\]/);
    assert.throws(() => tensorToImage(tensor([1, 2, 3])), /got \[3\]/);
    for (const t of [ta, tb, batch]) t.dispose();
  });
});

describe('writePng', () => {
  test('round trip: the pixels read back are identical; no temporary file is left', async () => {
    const sub = p('out');
    mkdirSync(sub);
    const img = image(24, 16, (x, y) => [x * 10, y * 15, (x * y) % 256]);
    await writePng(path.join(sub, 'a.png'), img);
    assert.deepEqual(await readImage(path.join(sub, 'a.png')), img);
    const t = imageToTensor(img);
    await writePng(path.join(sub, 'b.png'), t);
    t.dispose();
    assert.deepEqual(await readImage(path.join(sub, 'b.png')), img);
    // Overwriting replaces the file as a whole.
    const other = image(8, 8, () => [1, 2, 3]);
    await writePng(path.join(sub, 'a.png'), other);
    assert.deepEqual(await readImage(path.join(sub, 'a.png')), other);
    assert.deepEqual(readdirSync(sub).sort(), ['a.png', 'b.png']);
  });

  test('a missing folder is an error naming the path unless mkdir is asked; failures leave nothing', async () => {
    const img = image(8, 8, () => [0, 0, 0]);
    const target = p('missing/sub/x.png');
    const before = readdirSync(dir).sort();
    await assert.rejects(writePng(target, img), {
      message: `cannot write ${target}: folder ${p('missing/sub')} does not exist (pass mkdir: true to create it)`,
    });
    assert.deepEqual(readdirSync(dir).sort(), before);
    await writePng(target, img, { mkdir: true });
    assert.deepEqual(readdirSync(p('missing/sub')), ['x.png']);
    // The target is a folder: the rename fails after the temporary file was written; it is removed.
    mkdirSync(p('isdir'));
    await assert.rejects(writePng(p('isdir'), img), (e: Error) => e.message.startsWith(`cannot write ${p('isdir')}: `));
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
    assert.ok(existsSync(p('isdir')));
    await assert.rejects(writePng(p('bad.png'), { width: 8, height: 8, data: new Uint8Array(3) }), /bad\.png: image data must be/);
    assert.ok(!existsSync(p('bad.png')));
  });
});
