// A local stand-in for the Hugging Face Hub on 127.0.0.1 (ephemeral port) for the download tests:
// the model-info API, /resolve/ with Hub headers and Range, LFS redirects, gated and missing repos, faults.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface RepoSpec {
  dir: string; // served as the repo's files
  token?: string; // when set, requests need 'Authorization: Bearer <token>' (a gated repo)
}

export interface ServedFile {
  rfilename: string;
  data: Buffer;
  sha256: string; // the LFS oid, the blob name for *.safetensors
  gitSha1: string; // git's blob id, the blob name for the other files
  lfs: boolean;
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

interface Repo {
  commit: string;
  token?: string;
  files: Map<string, ServedFile>;
}

function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir).sort().flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? walk(p, `${prefix}${f}/`) : [`${prefix}${f}`];
  });
}

export function serveFile(dir: string, rfilename: string): ServedFile {
  const data = readFileSync(path.join(dir, ...rfilename.split('/')));
  return {
    rfilename, data, lfs: rfilename.endsWith('.safetensors'),
    sha256: createHash('sha256').update(data).digest('hex'),
    gitSha1: createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex'),
  };
}

/** The blob name huggingface_hub gives a file: its sha256 when in LFS, else its git sha1. */
export const etagOf = (f: ServedFile): string => (f.lfs ? f.sha256 : f.gitSha1);

export class FakeHub {
  readonly requests: SeenRequest[] = [];
  private readonly repos = new Map<string, Repo>();
  private readonly blobs = new Map<string, ServedFile>(); // sha256 -> file, for /lfs/
  private readonly server: http.Server;
  private port = 0;
  private drop: { bytes: number; match: string } | undefined;
  private failures: { count: number; status: number } = { count: 0, status: 503 };
  private ignoreRange = false;
  private hang = false;
  private corrupt: string | undefined;
  private readonly renamed = new Map<string, string>();

  /** `lfsBase`: the origin LFS files redirect to (another FakeHub as a CDN); default this server. */
  constructor(repos: Record<string, RepoSpec>, private readonly lfsBase?: string) {
    for (const [id, spec] of Object.entries(repos)) {
      const files = new Map(walk(spec.dir).map((f) => [f, serveFile(spec.dir, f)] as const));
      for (const f of files.values()) this.blobs.set(f.sha256, f);
      const commit = createHash('sha1').update(`commit of ${id}`).digest('hex');
      this.repos.set(id, { commit, token: spec.token, files });
    }
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  static async start(repos: Record<string, RepoSpec>, lfsBase?: string): Promise<FakeHub> {
    const hub = new FakeHub(repos, lfsBase);
    await new Promise<void>((resolve) => hub.server.listen(0, '127.0.0.1', resolve));
    hub.port = (hub.server.address() as AddressInfo).port;
    return hub;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  commitOf(repoId: string): string {
    return this.repos.get(repoId)!.commit;
  }

  file(repoId: string, rfilename: string): ServedFile {
    return this.repos.get(repoId)!.files.get(rfilename)!;
  }

  files(repoId: string): ServedFile[] {
    return [...this.repos.get(repoId)!.files.values()];
  }

  /** The next body whose path contains `match` stops after `bytes` bytes (the connection closes). */
  dropNext(bytes: number, match: string): void {
    this.drop = { bytes, match };
  }

  /** The next `count` requests get `status`. */
  failNext(count: number, status = 503): void {
    this.failures = { count, status };
  }

  /** The next ranged request is answered 200 with the whole file, as servers without Range support do. */
  ignoreRangeNext(): void {
    this.ignoreRange = true;
  }

  /** The next body whose path contains `match` has its last byte flipped. */
  corruptNext(match: string): void {
    this.corrupt = match;
  }

  /** Requests for `from` redirect (307, relative Location) to `to`, as the Hub does for a renamed repo. */
  rename(from: string, to: string): void {
    this.renamed.set(from, to);
  }

  /** The next request is accepted but never answered. */
  hangNext(): void {
    this.hang = true;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push({ method: req.method ?? '', path: url.pathname, headers: req.headers });
    if (this.hang) {
      this.hang = false;
      return;
    }
    if (this.failures.count > 0) {
      this.failures.count--;
      return this.error(res, this.failures.status, 'ServerError', 'try again later');
    }
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (parts[0] === 'lfs' && parts.length === 2) {
      const f = this.blobs.get(parts[1]!);
      return f ? this.sendBody(req, res, url.pathname, f.data, { ETag: `"${f.sha256}"` }) : this.error(res, 404, 'EntryNotFound', 'no such blob');
    }
    const api = parts[0] === 'api' && parts[1] === 'models';
    const [org, name, verb, rev, ...rest] = api ? parts.slice(2) : parts;
    const repoId = `${org}/${name}`;
    const newId = this.renamed.get(repoId);
    if (newId) {
      res.writeHead(307, { Location: url.pathname.replace(`/${repoId}/`, `/${newId}/`), 'Content-Length': 0 });
      return void res.end();
    }
    const repo = this.repos.get(repoId);
    if ((api && verb !== 'revision') || (!api && verb !== 'resolve') || rev === undefined) return this.error(res, 404, '', 'not a Hub route');
    if (!repo) return this.error(res, 404, 'RepoNotFound', `Repository ${repoId} not found`);
    if (repo.token) {
      const auth = req.headers.authorization;
      if (!auth) return this.error(res, 401, 'GatedRepo', `Access to model ${repoId} is restricted.`);
      if (auth !== `Bearer ${repo.token}`) return this.error(res, 403, 'GatedRepo', `Access to model ${repoId} is restricted.`);
    }
    if (rev !== 'main' && rev !== repo.commit) return this.error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    if (api) {
      const body = Buffer.from(JSON.stringify({ id: repoId, sha: repo.commit, siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })) }));
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
      return void res.end(body);
    }
    const f = repo.files.get(rest.join('/'));
    if (!f) return this.error(res, 404, 'EntryNotFound', `${rest.join('/')} does not exist`);
    if (f.lfs) { // as the Hub: a redirect to the CDN, the real blob id and size in X-Linked-*
      res.writeHead(302, {
        Location: `${this.lfsBase ?? this.url}/lfs/${f.sha256}`, 'X-Repo-Commit': repo.commit,
        'X-Linked-Etag': `"${f.sha256}"`, 'X-Linked-Size': f.data.length, ETag: `"${createHash('sha1').update(f.sha256).digest('hex')}"`,
        'Content-Length': 0,
      });
      return void res.end();
    }
    // model_index.json gets a weak ETag, which clients must normalize
    const etag = f.rfilename === 'model_index.json' ? `W/"${f.gitSha1}"` : `"${f.gitSha1}"`;
    this.sendBody(req, res, url.pathname, f.data, { ETag: etag, 'X-Repo-Commit': repo.commit });
  }

  private error(res: ServerResponse, status: number, code: string, message: string): void {
    const body = Buffer.from(JSON.stringify({ error: message }));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...(code ? { 'X-Error-Code': code } : {}), 'X-Error-Message': message });
    res.end(body);
  }

  private sendBody(req: IncomingMessage, res: ServerResponse, urlPath: string, data: Buffer, headers: Record<string, string>): void {
    let status = 200;
    let body = data;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const extra: Record<string, string | number> = { 'Accept-Ranges': 'bytes' };
    if (range && this.ignoreRange) {
      this.ignoreRange = false;
    } else if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      if (start >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}`, 'Content-Length': 0 });
        return void res.end();
      }
      status = 206;
      body = data.subarray(start, end + 1);
      extra['Content-Range'] = `bytes ${start}-${end}/${data.length}`;
    }
    res.writeHead(status, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, ...extra, ...headers });
    if (req.method === 'HEAD') return void res.end();
    if (this.corrupt && urlPath.includes(this.corrupt)) {
      this.corrupt = undefined;
      body = Buffer.from(body);
      body[body.length - 1] ^= 0xff;
    }
    if (this.drop && urlPath.includes(this.drop.match) && body.length > this.drop.bytes) {
      const cut = this.drop.bytes;
      this.drop = undefined;
      // flush the first bytes, then close the connection mid-body
      res.write(body.subarray(0, cut), () => res.socket?.end());
      return;
    }
    res.end(body);
  }
}
