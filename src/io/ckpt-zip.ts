// A minimal zip reader for torch.save archives: the central directory (zip64 included: SD
// checkpoints are over 4 GB), and the data offsets of STORED entries. Nothing is decompressed:
// torch writes every entry uncompressed, so a compressed entry is refused. Data is read by
// position from the file descriptor, never the whole archive.
import { readSync } from 'node:fs';

/** One archive member: where its bytes are in the file. */
export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is refused when read. */
  method: number;
  size: number;
  /** Offset of the member's local header. */
  headerOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Reads exactly `n` bytes at `position`, or throws `fail('...')` (truncated file). */
export function readAt(fd: number, position: number, n: number, fail: (msg: string) => never, what: string): Buffer {
  const buf = Buffer.alloc(n);
  let done = 0;
  while (done < n) {
    const got = readSync(fd, buf, done, n - done, position + done);
    if (got === 0) fail(`unexpected end of file while reading ${what} (truncated?)`);
    done += got;
  }
  return buf;
}

function u64(b: Buffer, at: number, fail: (msg: string) => never): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a zip64 field (${v}) is out of range`);
  return Number(v);
}

/** The central directory of the zip at `fd` (file `size` bytes), by member name. */
export function readZipDirectory(fd: number, size: number, fail: (msg: string) => never): Map<string, ZipEntry> {
  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  const tailLen = Math.min(size, 22 + 65535);
  const tail = readAt(fd, size - tailLen, tailLen, fail, 'the end of the zip archive');
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no zip end-of-central-directory record (truncated download?)');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locAt = size - tailLen + eocd - 20;
    const loc = locAt >= 0 ? readAt(fd, locAt, 20, fail, 'the zip64 locator') : null;
    if (loc === null || loc.readUInt32LE(0) !== EOCD64_LOCATOR) fail('zip64 archive without a zip64 end-of-central-directory locator');
    const rec = readAt(fd, u64(loc, 8, fail), 56, fail, 'the zip64 end-of-central-directory record');
    if (rec.readUInt32LE(0) !== EOCD64) fail('bad zip64 end-of-central-directory record');
    count = u64(rec, 32, fail);
    cdSize = u64(rec, 40, fail);
    cdOffset = u64(rec, 48, fail);
  }
  if (cdOffset + cdSize > size) fail(`the central directory (bytes ${cdOffset}..${cdOffset + cdSize}) is past the end of the ${size}-byte file (truncated?)`);
  const cd = readAt(fd, cdOffset, cdSize, fail, 'the zip central directory');
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) fail(`bad central directory entry ${i}`);
    const method = cd.readUInt16LE(p + 10);
    let size32: number = cd.readUInt32LE(p + 24);
    let offset: number = cd.readUInt32LE(p + 42);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const compressed32 = cd.readUInt32LE(p + 20);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 extra field (id 1): the 64-bit values of the fields that are 0xFFFFFFFF, in order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 1) {
        let q = x + 4;
        const next = (): number => {
          if (q + 8 > x + 4 + len) fail(`entry '${name}': short zip64 extra field`);
          const v = u64(cd, q, fail);
          q += 8;
          return v;
        };
        if (size32 === 0xffffffff) size32 = next();
        if (compressed32 === 0xffffffff) next();
        if (offset === 0xffffffff) offset = next();
      }
      x += 4 + len;
    }
    entries.set(name, { name, method, size: size32, headerOffset: offset });
    p = xEnd + commentLen;
  }
  return entries;
}

/** Byte offset of a STORED entry's data (after its local header), checked to lie inside the file. */
export function entryDataOffset(fd: number, fileSize: number, e: ZipEntry, fail: (msg: string) => never): number {
  if (e.method !== 0) {
    fail(`archive member '${e.name}' is compressed (zip method ${e.method}); imagic reads only stored (uncompressed) members, which is what torch.save writes`);
  }
  const h = readAt(fd, e.headerOffset, 30, fail, `the local header of '${e.name}'`);
  if (h.readUInt32LE(0) !== LOCAL) fail(`bad local header for '${e.name}'`);
  const start = e.headerOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
  if (start + e.size > fileSize) fail(`member '${e.name}' ends at byte ${start + e.size} but the file has ${fileSize} (truncated download?)`);
  return start;
}
