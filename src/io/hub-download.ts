// Resumable blob download for the Hub cache: blobs/{etag}.incomplete grows across tries (Range:
// bytes=N-), then is checked (size, and the sha256 / git-sha1 the etag names) and renamed into place.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, renameSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { HubError } from './hub-cache.js';
import { abortError, backoffMs, hubHttpError, isRetriable, request, sleep, type HttpSettings, type HubContext, type HubResponse } from './hub-http.js';

/** One progress report of a downloading file. */
export interface HubProgress {
  file: string; // the repo file name, e.g. 'unet/diffusion_pytorch_model.safetensors'
  downloaded: number; // bytes on disk so far, a resumed part included
  total: number | undefined; // undefined when the server did not say
}

export interface BlobRequest {
  url: string; // where to GET the bytes (the Hub URL or its CDN redirect)
  headers: Record<string, string>; // Authorization included when a token is in use
  dest: string; // blobs/{etag}
  etag: string;
  size: number | undefined; // expected size (X-Linked-Size / Content-Length of the HEAD)
  ctx: HubContext;
  http: HttpSettings;
  onProgress?: (p: HubProgress) => void;
}

const sizeOf = (p: string): number => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

/** 'bytes 100-199/1000' -> {start: 100, total: 1000} */
function contentRange(v: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(v ?? '');
  return m ? { start: Number(m[1]), total: m[2] === '*' ? undefined : Number(m[2]) } : undefined;
}

/** Downloads into dest (atomically), resuming dest.incomplete when one is there. */
export async function downloadBlob(b: BlobRequest): Promise<void> {
  const tmp = `${b.dest}.incomplete`;
  closeSync(openSync(tmp, 'a')); // create it, so that an interrupted first try leaves a trace
  for (let retry = 0; ; retry++) {
    if (retry > b.http.maxRetries + 2) { // restarts (wrong ranges) count too: the loop is bounded
      throw new HubError('Network', `gave up on '${b.ctx.filename}' of '${b.ctx.repoId}' after ${retry} tries`);
    }
    let have = sizeOf(tmp);
    if (b.size !== undefined && have > b.size) {
      truncateSync(tmp, 0);
      have = 0;
    }
    if (b.size !== undefined && have === b.size) {
      b.onProgress?.({ file: b.ctx.filename ?? '', downloaded: have, total: b.size });
      break;
    }
    try {
      if (await fetchInto(b, tmp, have)) break;
    } catch (e) {
      if (b.http.signal?.aborted) throw abortError(b.http.signal);
      if (!isRetriable(e) || retry >= b.http.maxRetries) throw e;
      await sleep(backoffMs(b.http, retry), b.http.signal);
    }
  }
  await verifyBlob(tmp, b);
  renameSync(tmp, b.dest);
}

/** One GET; true when the file is complete, false to go round again (a restart was needed). */
async function fetchInto(b: BlobRequest, tmp: string, have: number): Promise<boolean> {
  const headers = { ...b.headers, ...(have > 0 ? { Range: `bytes=${have}-` } : {}) };
  const res: HubResponse = await request('GET', b.url, headers, b.http);
  let start = 0;
  let total: number | undefined;
  if (res.status === 206) {
    const cr = contentRange(res.headers['content-range'] as string | undefined);
    if (!cr || cr.start !== have) { // not the range we asked for: start over
      res.body.destroy();
      truncateSync(tmp, 0);
      return false;
    }
    start = have;
    total = cr.total;
  } else if (res.status === 200) {
    total = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
  } else if (res.status === 416 && have > 0) { // our part is not a prefix the server knows: start over
    res.body.resume();
    truncateSync(tmp, 0);
    return false;
  } else {
    throw hubHttpError(res, b.ctx);
  }
  total = b.size ?? total;
  // 200 to a Range request (the server ignored it) also lands here: the file restarts from byte 0.
  const fd = openSync(tmp, start === 0 ? 'w' : 'a');
  let done = start;
  try {
    done = await drain(res.body, fd, start, (n) => b.onProgress?.({ file: b.ctx.filename ?? '', downloaded: n, total }));
  } catch (e) {
    if (b.http.signal?.aborted) throw abortError(b.http.signal);
    if (e instanceof HubError || !(e as NodeJS.ErrnoException).code) throw e; // a HubError, or from onProgress
    throw new HubError('Network', `connection to ${new URL(res.url).origin} dropped after ${sizeOf(tmp)} bytes of '${b.ctx.filename}'`);
  } finally {
    closeSync(fd);
  }
  if (total !== undefined && done < total) {
    throw new HubError('Network', `connection to ${new URL(res.url).origin} closed after ${done} of ${total} bytes of '${b.ctx.filename}'`);
  }
  return true;
}

/**
 * Appends the body to fd as it arrives, synchronously per chunk: every byte received before a
 * dropped connection is on disk (an async writer would lose what is still buffered), so the next
 * try resumes exactly there. Resolves with the bytes on disk.
 */
function drain(body: IncomingMessage, fd: number, start: number, progress: (n: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = start;
    progress(done);
    body.on('data', (chunk: Buffer) => {
      try {
        writeSync(fd, chunk);
        done += chunk.length;
        progress(done);
      } catch (e) {
        body.destroy(e as Error);
      }
    });
    body.on('end', () => resolve(done));
    body.on('error', reject);
    body.on('close', () => {
      if (!body.complete) reject(Object.assign(new Error('connection closed mid-body'), { code: 'ECONNRESET' }));
    });
  });
}

/** Size check, then the content hash the etag names: sha256 (LFS files, 64 hex) or git's blob sha1 (40 hex). */
async function verifyBlob(tmp: string, b: BlobRequest): Promise<void> {
  const size = sizeOf(tmp);
  const bad = (why: string): HubError => {
    rmSync(tmp, { force: true });
    return new HubError('Integrity', `'${b.ctx.filename}' of '${b.ctx.repoId}' is corrupt after download (${why}); it was deleted, try again`);
  };
  if (b.size !== undefined && size !== b.size) throw bad(`${size} bytes, expected ${b.size}`);
  let hash;
  if (/^[0-9a-f]{64}$/.test(b.etag)) hash = createHash('sha256');
  else if (/^[0-9a-f]{40}$/.test(b.etag)) hash = createHash('sha1').update(`blob ${size}\0`);
  else return;
  for await (const chunk of createReadStream(tmp, { highWaterMark: 1 << 20, signal: b.http.signal })) hash.update(chunk as Buffer);
  const got = hash.digest('hex');
  if (got !== b.etag) throw bad(`content hash ${got}, expected ${b.etag}`);
}
