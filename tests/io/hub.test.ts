// Hub downloads against a local fake Hub (tests/io/hub-server.ts, 127.0.0.1 only): the huggingface_hub
// cache layout, no re-download, offline mode, resume, patterns, gated/missing repos, redirects, faults.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { HubError, cliProgressReporter, filterRepoFiles, formatBytes, hfHubDownload, hubFileUrl, snapshotDownload, tryLoadFromCache, type HubProgress } from '../../src/io/hub.js';
import { fixturePath } from '../fixtures.js';
import { FakeHub, etagOf } from './hub-server.js';

const TINY = fixturePath(path.join('golden', 'tiny-sd'));
const TOKEN = 'hf_test_secret_0123456789';
const REPOS = { 'test/tiny-sd': { dir: TINY }, 'test/gated-sd': { dir: TINY, token: TOKEN } };
const UNET = 'unet/diffusion_pytorch_model.safetensors';
const ENV = ['HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'HF_HUB_OFFLINE', 'HF_ENDPOINT', 'XDG_CACHE_HOME'];

let hub: FakeHub; // LFS files redirect to itself
let cdnHub: FakeHub; // LFS files redirect to `cdn`, another origin
let cdn: FakeHub;
let home: string;
const savedEnv: Record<string, string | undefined> = {};
const fast = { retryDelayMs: 5, connectTimeoutMs: 2000 };

before(async () => {
  for (const k of ENV) savedEnv[k] = process.env[k];
  hub = await FakeHub.start(REPOS);
  cdn = await FakeHub.start(REPOS);
  cdnHub = await FakeHub.start(REPOS, cdn.url);
});
after(async () => {
  await Promise.all([hub.close(), cdn.close(), cdnHub.close()]);
  for (const k of ENV) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});
beforeEach(() => {
  for (const k of ENV) delete process.env[k];
  home = mkdtempSync(path.join(os.tmpdir(), 'imagic-hub-'));
  process.env.HF_HOME = home;
  process.env.HF_ENDPOINT = hub.url; // every request of these tests goes to 127.0.0.1
  for (const h of [hub, cdn, cdnHub]) h.requests.length = 0;
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const repoDir = (repoId: string): string => path.join(home, 'hub', `models--${repoId.replace('/', '--')}`);
const blobRequests = (h: FakeHub): string[] => h.requests.filter((r) => r.method === 'GET' && !r.path.startsWith('/api/')).map((r) => r.path);

/** Every served file is a relative symlink to blobs/{etag} and byte-identical to the fixture. */
function assertSnapshot(repoId: string, snapshot: string, files: string[]): void {
  assert.equal(snapshot, path.join(repoDir(repoId), 'snapshots', hub.commitOf(repoId)));
  for (const name of files) {
    const f = hub.file(repoId, name);
    const p = path.join(snapshot, ...name.split('/'));
    assert.ok(lstatSync(p).isSymbolicLink(), `${name} is a symlink`);
    const depth = name.split('/').length;
    assert.equal(readlinkSync(p), path.join(...Array<string>(depth + 1).fill('..'), 'blobs', etagOf(f)), `${name} link target`);
    assert.ok(readFileSync(p).equals(f.data), `${name} is byte-identical`);
  }
}

test('snapshotDownload builds the huggingface_hub cache layout; a second call downloads nothing', async () => {
  const last = new Map<string, HubProgress>();
  const snap = await snapshotDownload('test/tiny-sd', { onProgress: (p) => last.set(p.file, p) });
  const all = hub.files('test/tiny-sd');
  assert.equal(all.length, 8);
  assertSnapshot('test/tiny-sd', snap, all.map((f) => f.rfilename));
  assert.deepEqual(readdirSync(path.join(snap, 'unet')).sort(), ['config.json', 'diffusion_pytorch_model.safetensors']);
  assert.equal(readFileSync(path.join(repoDir('test/tiny-sd'), 'refs', 'main'), 'utf8'), hub.commitOf('test/tiny-sd'));
  assert.deepEqual(readdirSync(path.join(repoDir('test/tiny-sd'), 'blobs')).sort(), all.map(etagOf).sort());
  for (const f of all) assert.deepEqual(last.get(f.rfilename), { file: f.rfilename, downloaded: f.data.length, total: f.data.length });
  assert.equal(blobRequests(hub).length, 8);

  hub.requests.length = 0;
  assert.equal(await snapshotDownload('test/tiny-sd'), snap);
  assert.deepEqual(hub.requests.map((r) => r.path), ['/api/models/test/tiny-sd/revision/main']);

  // hf_hub_download of a cached file: one HEAD for the commit, no body
  hub.requests.length = 0;
  const p = await hfHubDownload('test/tiny-sd', 'unet/config.json');
  assert.equal(p, path.join(snap, 'unet', 'config.json'));
  assert.deepEqual(hub.requests.map((r) => r.method), ['HEAD']);
  // by commit hash: not even that
  hub.requests.length = 0;
  assert.equal(await hfHubDownload('test/tiny-sd', UNET, { revision: hub.commitOf('test/tiny-sd') }), path.join(snap, ...UNET.split('/')));
  assert.equal(hub.requests.length, 0);
  assert.equal(tryLoadFromCache('test/tiny-sd', 'vae/config.json'), path.join(snap, 'vae', 'config.json'));
  assert.equal(tryLoadFromCache('test/tiny-sd', 'nope.json'), undefined);
});

test('an existing blob is reused: a new snapshot pointer, no body download', async () => {
  await hfHubDownload('test/tiny-sd', 'unet/config.json');
  rmSync(path.join(repoDir('test/tiny-sd'), 'snapshots'), { recursive: true });
  hub.requests.length = 0;
  const p = await hfHubDownload('test/tiny-sd', 'unet/config.json');
  assert.ok(readFileSync(p).equals(hub.file('test/tiny-sd', 'unet/config.json').data));
  assert.deepEqual(hub.requests.map((r) => r.method), ['HEAD']);
});

test('hfHubDownload to an explicit cacheDir', async () => {
  const cacheDir = path.join(home, 'elsewhere');
  const p = await hfHubDownload('test/tiny-sd', UNET, { cacheDir, endpoint: hub.url });
  assert.equal(p, path.join(cacheDir, 'models--test--tiny-sd', 'snapshots', hub.commitOf('test/tiny-sd'), 'unet', 'diffusion_pytorch_model.safetensors'));
  assert.ok(readFileSync(p).equals(hub.file('test/tiny-sd', UNET).data));
  assert.equal(readlinkSync(p), path.join('..', '..', '..', 'blobs', hub.file('test/tiny-sd', UNET).sha256));
});

test('offline: answers from the cache without any request, and says clearly what is not cached', async () => {
  const snap = await snapshotDownload('test/tiny-sd', { allowPatterns: ['unet/*', '*.json'] });
  hub.requests.length = 0;
  process.env.HF_HUB_OFFLINE = '1';
  assert.equal(await snapshotDownload('test/tiny-sd'), snap);
  assert.equal(await hfHubDownload('test/tiny-sd', UNET), path.join(snap, ...UNET.split('/')));
  await assert.rejects(snapshotDownload('test/not-downloaded'), (e: unknown) => {
    assert.ok(e instanceof HubError && e.code === 'NotCached');
    assert.match(e.message, /'test\/not-downloaded'/);
    assert.ok(e.message.includes(path.join(home, 'hub')), e.message);
    assert.match(e.message, /offline/);
    return true;
  });
  await assert.rejects(hfHubDownload('test/tiny-sd', 'vae/diffusion_pytorch_model.safetensors'), /'vae\/diffusion_pytorch_model.safetensors' of 'test\/tiny-sd' .*not in the Hub cache/);
  delete process.env.HF_HUB_OFFLINE;
  await assert.rejects(snapshotDownload('test/tiny-sd', { offline: true, revision: 'v2' }), /revision 'v2' is not in the Hub cache/);
  assert.equal(hub.requests.length, 0);
});

test('an unreachable Hub falls back to the cache, else a clear error', async () => {
  const snap = await snapshotDownload('test/tiny-sd', { allowPatterns: 'unet/' });
  const closed = await FakeHub.start({});
  const deadUrl = closed.url;
  await closed.close();
  const o = { endpoint: deadUrl, maxRetries: 1, retryDelayMs: 5 };
  assert.equal(await snapshotDownload('test/tiny-sd', o), snap);
  assert.equal(await hfHubDownload('test/tiny-sd', 'unet/config.json', o), path.join(snap, 'unet', 'config.json'));
  await assert.rejects(hfHubDownload('test/tiny-sd', 'vae/config.json', o), (e: unknown) =>
    e instanceof HubError && e.code === 'NotCached' && /cannot be reached/.test(e.message) && e.message.includes('127.0.0.1'));
});

test('a dropped connection is resumed with a Range request in the same call', async () => {
  const f = hub.file('test/tiny-sd', UNET);
  hub.dropNext(3_000_000, f.sha256);
  const p = await hfHubDownload('test/tiny-sd', UNET, fast);
  assert.ok(readFileSync(p).equals(f.data));
  const gets = hub.requests.filter((r) => r.path === `/lfs/${f.sha256}`);
  assert.deepEqual(gets.map((r) => r.headers.range), [undefined, 'bytes=3000000-']);
  assert.ok(!existsSync(path.join(repoDir('test/tiny-sd'), 'blobs', `${f.sha256}.incomplete`)));
});

test('an interrupted download leaves blobs/{etag}.incomplete; the next call resumes from its size', async () => {
  const f = hub.file('test/tiny-sd', UNET);
  const partial = path.join(repoDir('test/tiny-sd'), 'blobs', `${f.sha256}.incomplete`);
  hub.dropNext(1_234_567, f.sha256);
  await assert.rejects(hfHubDownload('test/tiny-sd', UNET, { ...fast, maxRetries: 0 }), (e: unknown) => e instanceof HubError && e.code === 'Network');
  assert.equal(statSync(partial).size, 1_234_567);
  assert.equal(tryLoadFromCache('test/tiny-sd', UNET), undefined);
  hub.requests.length = 0;
  const seen: number[] = [];
  const p = await hfHubDownload('test/tiny-sd', UNET, { onProgress: (e) => seen.push(e.downloaded) });
  assert.ok(readFileSync(p).equals(f.data));
  assert.equal(hub.requests.find((r) => r.method === 'GET')?.headers.range, 'bytes=1234567-');
  assert.equal(seen[0], 1_234_567);
  assert.equal(seen.at(-1), f.data.length);
  assert.ok(!existsSync(partial));
});

test('abort through the signal keeps the partial file for the next call', async () => {
  const f = hub.file('test/tiny-sd', UNET);
  const partial = path.join(repoDir('test/tiny-sd'), 'blobs', `${f.sha256}.incomplete`);
  const ac = new AbortController();
  await assert.rejects(
    snapshotDownload('test/tiny-sd', { allowPatterns: 'unet/*', signal: ac.signal, onProgress: (p) => { if (p.downloaded > 2_000_000) ac.abort(); } }),
    (e: unknown) => (e as Error).name === 'AbortError');
  const have = statSync(partial).size;
  assert.ok(have > 2_000_000 && have < f.data.length, `partial size ${have}`);
  hub.requests.length = 0;
  const snap = await snapshotDownload('test/tiny-sd', { allowPatterns: 'unet/*' });
  assertSnapshot('test/tiny-sd', snap, ['unet/config.json', UNET]);
  assert.equal(hub.requests.find((r) => r.path === `/lfs/${f.sha256}`)?.headers.range, `bytes=${have}-`);
});

test('a server that ignores Range (200) restarts the file from byte 0', async () => {
  const f = hub.file('test/tiny-sd', UNET);
  hub.dropNext(500_000, f.sha256);
  await assert.rejects(hfHubDownload('test/tiny-sd', UNET, { ...fast, maxRetries: 0 }));
  hub.ignoreRangeNext();
  hub.requests.length = 0;
  const p = await hfHubDownload('test/tiny-sd', UNET);
  assert.ok(readFileSync(p).equals(f.data));
  assert.deepEqual(hub.requests.filter((r) => r.method === 'GET').map((r) => r.headers.range), ['bytes=500000-']);
});

test('content that does not match the etag (sha256 / git sha1) is rejected and deleted', async () => {
  for (const name of [UNET, 'unet/config.json']) {
    const f = hub.file('test/tiny-sd', name);
    hub.corruptNext(f.lfs ? f.sha256 : 'unet/config.json');
    await assert.rejects(hfHubDownload('test/tiny-sd', name), (e: unknown) =>
      e instanceof HubError && e.code === 'Integrity' && e.message.includes(`expected ${etagOf(f)}`));
    assert.ok(!readdirSync(path.join(repoDir('test/tiny-sd'), 'blobs')).some((b) => b.startsWith(etagOf(f))), 'no blob, no .incomplete');
    assert.ok(readFileSync(await hfHubDownload('test/tiny-sd', name)).equals(f.data));
  }
});

test('a renamed repo: relative redirects are followed, for the HEAD too', async () => {
  hub.rename('test/old-name', 'test/tiny-sd');
  const p = await hfHubDownload('test/old-name', UNET);
  assert.ok(readFileSync(p).equals(hub.file('test/tiny-sd', UNET).data));
  assert.ok(p.includes('models--test--old-name'));
  const snap = await snapshotDownload('test/old-name', { allowPatterns: '*.json' });
  assert.ok(readFileSync(path.join(snap, 'vae', 'config.json')).equals(hub.file('test/tiny-sd', 'vae/config.json').data));
});

test('5xx answers are retried a bounded number of times', async () => {
  hub.failNext(2, 503);
  const p = await hfHubDownload('test/tiny-sd', 'vae/config.json', fast);
  assert.ok(readFileSync(p).equals(hub.file('test/tiny-sd', 'vae/config.json').data));
  assert.equal(hub.requests.length, 4); // 503, 503, HEAD, GET

  hub.requests.length = 0;
  hub.failNext(100, 502);
  await assert.rejects(hfHubDownload('test/tiny-sd', 'unet/config.json', { ...fast, maxRetries: 2 }), (e: unknown) =>
    e instanceof HubError && e.status === 502 && /HTTP 502/.test(e.message));
  assert.equal(hub.requests.length, 3);
  hub.failNext(0);
});

test('a server that does not answer times out', async () => {
  hub.hangNext();
  const t0 = Date.now();
  await assert.rejects(hfHubDownload('test/tiny-sd', 'unet/config.json', { connectTimeoutMs: 150, maxRetries: 0 }), /no answer from http:\/\/127\.0\.0\.1:\d+ within 150 ms/);
  assert.ok(Date.now() - t0 < 2000);
});

test('allow and ignore patterns select files as huggingface_hub (fnmatch)', async () => {
  const unetOnly = await snapshotDownload('test/tiny-sd', { allowPatterns: 'unet/*' });
  assert.deepEqual(readdirSync(unetOnly).sort(), ['unet']);
  assertSnapshot('test/tiny-sd', unetOnly, ['unet/config.json', UNET]);
  const home2 = path.join(home, 'cache2');
  const configs = await snapshotDownload('test/tiny-sd', { cacheDir: home2, ignorePatterns: ['*.safetensors'] });
  assert.deepEqual(readdirSync(path.join(configs, 'unet')), ['config.json']);
  assert.ok(existsSync(path.join(configs, 'model_index.json')) && existsSync(path.join(configs, 'scheduler', 'scheduler_config.json')));

  const files = ['model_index.json', 'unet/config.json', UNET, 'vae/config.json', 'text_encoder/model.safetensors'];
  assert.deepEqual(filterRepoFiles(files, 'unet/'), ['unet/config.json', UNET]);
  assert.deepEqual(filterRepoFiles(files, '*.json'), ['model_index.json', 'unet/config.json', 'vae/config.json']); // '*' crosses '/'
  assert.deepEqual(filterRepoFiles(files, ['[uv]*/config.json']), ['unet/config.json', 'vae/config.json']);
  assert.deepEqual(filterRepoFiles(files, undefined, ['*.safetensors', 'vae/*']), ['model_index.json', 'unet/config.json']);
  assert.deepEqual(filterRepoFiles(files, 'model_index.jso?'), ['model_index.json']);
});

test('gated repo: a clear error without a token, success with HF_TOKEN or the token file', async () => {
  await assert.rejects(snapshotDownload('test/gated-sd'), (e: unknown) => {
    assert.ok(e instanceof HubError && e.code === 'GatedRepo' && e.status === 401);
    assert.match(e.message, /gated or private/);
    assert.match(e.message, /HF_TOKEN/);
    assert.ok(e.message.includes(`${hub.url}/test/gated-sd`));
    return true;
  });
  await assert.rejects(hfHubDownload('test/gated-sd', 'model_index.json', { token: 'hf_wrong_secret' }), (e: unknown) => {
    assert.ok(e instanceof HubError && e.code === 'GatedRepo' && e.status === 403);
    assert.match(e.message, /token in use does not give access/);
    assert.ok(!e.message.includes('hf_wrong_secret'));
    return true;
  });
  process.env.HF_TOKEN = TOKEN;
  hub.requests.length = 0;
  const snap = await snapshotDownload('test/gated-sd', { allowPatterns: ['unet/*', 'model_index.json'] });
  assertSnapshot('test/gated-sd', snap, ['model_index.json', 'unet/config.json', UNET]);
  assert.ok(hub.requests.filter((r) => r.path.includes('gated')).every((r) => r.headers.authorization === `Bearer ${TOKEN}`));
  delete process.env.HF_TOKEN;
  writeFileSync(path.join(home, 'token'), `${TOKEN}\n`);
  assert.ok(existsSync(await hfHubDownload('test/gated-sd', 'vae/config.json')));
  await assert.rejects(hfHubDownload('test/gated-sd', 'text_encoder/config.json', { token: false }), /no token was sent/);
});

test('404s say which of repo, revision or file is missing', async () => {
  await assert.rejects(snapshotDownload('test/missing'), (e: unknown) =>
    e instanceof HubError && e.code === 'RepoNotFound' && /repository 'test\/missing' not found/.test(e.message));
  await assert.rejects(snapshotDownload('test/tiny-sd', { revision: 'v9' }), (e: unknown) =>
    e instanceof HubError && e.code === 'RevisionNotFound' && /revision 'v9' not found in 'test\/tiny-sd'/.test(e.message));
  await assert.rejects(hfHubDownload('test/tiny-sd', 'unet/nope.bin'), (e: unknown) =>
    e instanceof HubError && e.code === 'EntryNotFound' && /file 'unet\/nope.bin' not found in 'test\/tiny-sd' at revision 'main'/.test(e.message));
  await assert.rejects(hfHubDownload('test/missing', 'model_index.json'), (e: unknown) => e instanceof HubError && e.code === 'RepoNotFound');
  await assert.rejects(hfHubDownload('../etc', 'x'), (e: unknown) => e instanceof HubError && e.code === 'InvalidArgument');
  await assert.rejects(hfHubDownload('test/tiny-sd', '../../x'), (e: unknown) => e instanceof HubError && e.code === 'InvalidArgument');
  assert.ok(!existsSync(repoDir('test/missing')) || readdirSync(path.join(repoDir('test/missing'))).length === 0);
});

test('Authorization is not forwarded to a CDN on another origin', async () => {
  process.env.HF_TOKEN = TOKEN;
  const snap = await snapshotDownload('test/gated-sd', { endpoint: cdnHub.url });
  assertSnapshot('test/gated-sd', snap, hub.files('test/gated-sd').map((f) => f.rfilename));
  const lfs = cdn.requests.filter((r) => r.path.startsWith('/lfs/'));
  assert.equal(lfs.length, 3);
  assert.ok(lfs.every((r) => r.headers.authorization === undefined), 'no Authorization at the CDN');
  assert.equal(cdnHub.requests.filter((r) => r.path.startsWith('/lfs/')).length, 0);
  assert.ok(cdnHub.requests.length > 0 && cdnHub.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`));
  assert.equal(hub.requests.length, 0);
});

test('URLs, byte formatting and the cli-progress reporter', () => {
  assert.equal(hubFileUrl('org/m', 'unet/a b.json', 'refs/pr/1', 'https://hub.example/'), 'https://hub.example/org/m/resolve/refs%2Fpr%2F1/unet/a%20b.json');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(8_714_088), '8.71 MB');
  assert.equal(formatBytes(3_438_167_536), '3.44 GB');
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const r = cliProgressReporter({ stream: out, noTTYOutput: true, notTTYSchedule: 10, fps: 1000, hideCursor: false });
  r.onProgress({ file: 'unet/diffusion_pytorch_model.safetensors', downloaded: 0, total: 8_714_088 });
  r.onProgress({ file: 'vae/config.json', downloaded: 762, total: 762 });
  r.onProgress({ file: 'unet/diffusion_pytorch_model.safetensors', downloaded: 4_000_000, total: 8_714_088 });
  r.stop();
  assert.match(text, /unet\/diffusion_pytorch_model\.safetensors .* 45% +4\.00 MB\/8\.71 MB/);
  assert.match(text, /vae\/config\.json .*100% +762 B\/762 B .* done/);
  assert.match(text, /total .* 4\.00 MB\/8\.71 MB/);
});
