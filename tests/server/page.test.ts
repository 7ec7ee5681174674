/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The page of `imagic serve` end to end in a real headless Chromium: upload a Shapes-64 input, run a fast
// edit on the embedded model, move the eta slider and see the image change, open compare and the
// gallery; and the page's messages for bad input (a non-image, a missing model, a cancelled job).
// Skipped, saying why, where no Chromium could be found or installed (npm test's setup tries apt-get).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import sharp from 'sharp';
import { nominalSpec, renderShape } from '../../src/shapes/index.js';
import { chromiumPath, launch, openPage } from './browser.js';
import { testServer } from './serve.js';

const chromium = chromiumPath();
const skip = chromium ? false : 'no Chromium (install Debian\'s chromium, or set CHROMIUM_PATH)';
const shots = mkdtempSync(path.join(os.tmpdir(), 'imagic-page-'));

async function text(page: Page, sel: string): Promise<string> {
  return page.$eval(sel, (e) => (e as HTMLElement).innerText);
}

/** Fills the form for a fast edit (advanced settings: 5 + 5 training steps, 10 sampling steps, no automatic choice). */
async function fastSettings(page: Page, o: { stepsB?: number } = {}): Promise<void> {
  await page.$eval('#advanced', (d) => ((d as HTMLDetailsElement).open = true));
  const set = async (sel: string, v: string) => {
    await page.$eval(sel, (e) => ((e as HTMLInputElement).value = ''));
    await page.type(sel, v);
  };
  await set('#steps-a', '5');
  await set('#steps-b', String(o.stepsB ?? 5));
  await set('#steps', '10');
  if (await page.$eval('#auto', (e) => (e as HTMLInputElement).checked)) await page.click('#auto');
}

describe('imagic serve page (headless Chromium)', { skip }, () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let browser: Browser;
  before(async () => {
    server = await testServer();
    browser = await launch(chromium!);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    // IMAGIC_KEEP_SCREENSHOTS=1 keeps them for a look.
    if (!process.env.IMAGIC_KEEP_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
    else process.stderr.write(`screenshots in ${shots}\n`);
  });

  test('upload, train with progress, move the slider, compare, gallery', async () => {
    const { page, errors } = await openPage(browser, server.url);
    await page.waitForSelector('#examples button');
    // The input: a Shapes-64 picture, uploaded through the file picker.
    const png = path.join(shots, 'input.png');
    const img = renderShape(nominalSpec({ shape: 'circle', color: 'red', size: 'large', position: 'left', background: 'white' }));
    writeFileSync(png, await sharp(img.data, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer());
    const input = await page.$('#file-input');
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(png);
    await page.waitForFunction(() => /64\s*[x×]\s*64/i.test(document.querySelector('#upload-status')?.textContent ?? ''), { timeout: 10_000 });
    await page.type('#target-text', 'a red square');
    await fastSettings(page);
    // A second tab, open before the edit starts: it sees the session appear and finish, live.
    const other = await openPage(browser, server.url);
    await other.page.waitForSelector('#gallery-list');
    await page.bringToFront(); // a background tab's animation frames (waitForFunction's polling) stop
    await page.click('#start');

    // Training: the progress card, then the result.
    await page.waitForFunction(() => location.hash.includes('session='), { timeout: 10_000 });
    const id = await page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('session'));
    assert.match(id ?? '', /^[0-9a-f]{12}$/);
    await page.waitForFunction(() => (document.querySelector('#result-img') as HTMLImageElement | null)?.dataset.eta !== undefined, { timeout: 120_000 });
    assert.match(await text(page, '#status'), /ready/i);
    await other.page.waitForFunction((sid) => /ready/i.test(document.querySelector(`#gallery li[data-session="${sid}"] .badge`)?.textContent ?? ''), { timeout: 30_000, polling: 200 }, id);
    assert.deepEqual(other.errors, []);
    await other.page.close();
    const losses = await server.store.get(id!)!.losses;
    assert.equal(losses.B.length, 5);
    await page.screenshot({ path: path.join(shots, 'ready.png'), fullPage: true });

    // The slider: a new eta renders a new picture (sampling only) and shows it.
    const before = await page.$eval('#result-img', (e) => ({ src: (e as HTMLImageElement).src, eta: (e as HTMLImageElement).dataset.eta }));
    await page.focus('#eta-slider');
    for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowRight');
    // The first press renders at once; the presses during that render make one more render, of the last value.
    const want = (Number(before.eta) + 0.2).toFixed(2);
    await page.waitForFunction((v) => {
      const e = document.querySelector('#result-img') as HTMLImageElement;
      return e.dataset.eta === v && e.complete && e.naturalWidth > 0;
    }, { timeout: 30_000 }, want);
    const after = await page.$eval('#result-img', (e) => ({ ...(e as HTMLImageElement).dataset, src: (e as HTMLImageElement).src }) as Record<string, string | undefined>);
    assert.notEqual(after.src, before.src);
    assert.equal(after.cache, 'miss');
    assert.ok(Number(after.ms) > 0 && Number(after.serverMs) > 0);
    // The pixels differ too: read both back from the server's cache.
    const q = (eta: string) => `/api/sessions/${id}/render?eta=${Number(eta).toFixed(2)}&seed=${after.seed}&steps=10&guidance=7.5`;
    const [a, b] = await Promise.all([before.eta!, after.eta!].map(async (e) => Buffer.from(await (await fetch(server.base + q(e))).arrayBuffer())));
    assert.ok(!a!.equals(b!), 'another eta gives another image');

    // Without an automatic choice, a sweep of the preset's etas renders on demand.
    await page.click('#sweep-render');
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll<HTMLImageElement>('#sweep-grid img')];
      return imgs.length === 9 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    }, { timeout: 60_000 });

    // Compare: four labelled pictures.
    await page.click('#compare-run');
    await page.waitForFunction(() => document.querySelectorAll('#compare-images figure img').length === 4
      && [...document.querySelectorAll<HTMLImageElement>('#compare-images figure img')].every((i) => i.complete && i.naturalWidth > 0), { timeout: 60_000 });
    const labels = await page.$$eval('#compare-images figcaption', (fs) => fs.map((f) => f.textContent ?? ''));
    assert.deepEqual(labels.map((l) => l.split(' ')[0]), ['input', 'Imagic', 'SDEdit', 'DDIM']);
    await page.screenshot({ path: path.join(shots, 'compare.png'), fullPage: true });

    // The gallery lists the session; a reload reopens it from the URL.
    await page.waitForSelector(`#gallery li[data-session="${id}"]`);
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => (document.querySelector('#result-img') as HTMLImageElement | null)?.dataset.eta !== undefined, { timeout: 30_000 });
    await page.click(`#gallery li[data-session="${id}"] .open`);
    assert.deepEqual(errors, []);
  });

  test('bad input: a non-image, a model that is not there, a cancelled job: a message in the page, and it keeps working', async () => {
    const { page } = await openPage(browser, server.url);
    await page.waitForSelector('#examples button');
    const fake = path.join(shots, 'not-an-image.png');
    writeFileSync(fake, 'this is text, named .png');
    const input = await page.$('#file-input');
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(fake);
    await page.waitForFunction(() => /not a PNG, JPEG or WebP/.test(document.querySelector('#error')?.textContent ?? ''), { timeout: 10_000 });

    // Larger than the server takes (1 MiB here): refused before it is sent.
    const big = path.join(shots, 'big.png');
    writeFileSync(big, Buffer.alloc(2 << 20, 7));
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(big);
    await page.waitForFunction(() => /the largest upload is/.test(document.querySelector('#error')?.textContent ?? ''), { timeout: 10_000 });

    // An example instead, and a model folder that does not exist.
    await page.click('#examples button');
    await page.$eval('#target-text', (e) => ((e as HTMLInputElement).value = ''));
    await page.type('#target-text', 'a red square');
    await page.type('#model', '/no/such/model');
    await fastSettings(page, { stepsB: 100_000 });
    await page.click('#start');
    await page.waitForFunction(() => /no such model folder/.test(document.querySelector('#error')?.textContent ?? ''), { timeout: 10_000 });
    assert.equal(await page.$eval('#target-text', (e) => (e as HTMLInputElement).value), 'a red square', 'the text is kept');

    // The right model: a long training, cancelled from the page.
    await page.$eval('#model', (e) => ((e as HTMLInputElement).value = ''));
    await page.click('#start');
    await page.waitForFunction(() => /stage B/i.test(document.querySelector('#progress-text')?.textContent ?? ''), { timeout: 60_000 });
    await page.click('#cancel');
    await page.waitForFunction(() => /cancelled/i.test(document.querySelector('#status')?.textContent ?? ''), { timeout: 30_000 });
    await page.waitForSelector('#resume', { visible: true });
    await page.screenshot({ path: path.join(shots, 'cancelled.png'), fullPage: true });
    const st = await (await fetch(`${server.base}/api/status`)).json() as { training: string | null };
    assert.equal(st.training, null);

    // A model folder that fails to load: the job fails with the reason, shown in the page.
    const broken = path.join(server.store.root, 'broken-model');
    mkdirSync(broken, { recursive: true });
    writeFileSync(path.join(broken, 'model_index.json'), '{"_class_name": "StableDiffusionPipeline"}');
    await page.type('#model', broken);
    await page.click('#start');
    await page.waitForFunction(() => /failed/i.test(document.querySelector('#status')?.textContent ?? ''), { timeout: 60_000 }).catch(async (e) => {
      await page.screenshot({ path: path.join(shots, 'failed-model.png'), fullPage: true });
      throw new Error(`${(e as Error).message}; #status: ${await text(page, '#status')}; #error: ${await text(page, '#error')}; screenshot ${shots}/failed-model.png`);
    });
    assert.match(await text(page, '#status'), /broken-model|unet|config/i);
    await page.waitForSelector('#resume', { visible: true });

    // A session id in the URL is never a path.
    const traversal = await openPage(browser, `${server.url}#session=..%2F..%2Fserver.json`);
    await traversal.page.waitForFunction(() => /no session/.test(document.querySelector('#error')?.textContent ?? ''), { timeout: 10_000 });
    await traversal.page.close();
  });
});
