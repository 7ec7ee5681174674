// The SD-size benchmark (bench/sd.ts) in its reduced form, end to end, so that it cannot rot: one
// Stage A and one LoRA Stage B step of the full-size SD v1 UNet at 256x256 in our code and in the
// PyTorch reference (bench/sd_reference.py, skipped with the reason where python3 lacks torch); the
// reference's math against diffusers' golden outputs (bench/sd_reference_golden.py); the memory
// estimate that picks stageB-full's size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseFullSize, findTorch, fullFineTuneEstimate, manifestParams, planCases, type SdBenchResult } from '../../bench/sd.js';
import { readManifest, type CaseResult } from '../../bench/sd-case.js';
import { fixturePath, repoRoot } from '../fixtures.js';

const manifest = readManifest(fixturePath('golden/sd-v1-manifest.json'));
const torch = findTorch();
const noTorch = 'skip' in torch ? torch.skip : false;
const GB = 1e9;

test('full fine-tuning memory estimate: 16 bytes per UNet parameter plus the measured activations; the size that fits', () => {
  const p = manifestParams(manifest, 'unet');
  assert.equal(p, 859_520_964); // SD v1's UNet
  const e512 = fullFineTuneEstimate(manifest, 512), e256 = fullFineTuneEstimate(manifest, 256);
  assert.equal(e512.weights, 4 * p);
  assert.equal(e512.weights + e512.grads + e512.adam, 16 * p); // 13.75 GB
  // activations 8.07 MB + 454 867 B per latent pixel: 4096 latent pixels at 512, 1024 at 256
  assert.ok(Math.abs(e512.activations - 1.8712e9) < 1e6, `${e512.activations}`);
  assert.ok(Math.abs(e256.activations - 0.4739e9) < 1e6, `${e256.activations}`);
  assert.ok(Math.abs(e512.total - 16.124e9) < 0.01e9 && Math.abs(e256.total - 14.727e9) < 0.01e9, `${e512.total} ${e256.total}`);
  // 80% of 24 GiB = 20.6 GB holds 512; 80% of 20 GB = 16.0 GB holds only 256; 80% of 16 GiB holds neither
  assert.equal(chooseFullSize(manifest, 512, 24 * 2 ** 30).size, 512);
  assert.equal(chooseFullSize(manifest, 512, 20 * GB).size, 256);
  const none = chooseFullSize(manifest, 512, 16 * 2 ** 30);
  assert.equal(none.size, 256);
  assert.match(none.why, /no size fits/);
  assert.equal(chooseFullSize(manifest, 512, 16 * 2 ** 30, 512).size, 512); // --full-size wins
  // stageB-lora also runs at stageB-full's size when that differs, for a like-for-like comparison
  assert.deepEqual(planCases(['stageA', 'stageB-full', 'stageB-lora'], 512, 256),
    [{ case: 'stageA', size: 512 }, { case: 'stageB-full', size: 256 }, { case: 'stageB-lora', size: 512 }, { case: 'stageB-lora', size: 256 }]);
  assert.deepEqual(planCases(['stageB-lora', 'vae-decode'], 512, 256), [{ case: 'stageB-lora', size: 512 }, { case: 'vae-decode', size: 512 }]);
});

test('the PyTorch reference computes what diffusers and transformers computed (tiny-sd golden outputs)', { skip: noTorch }, () => {
  const r = spawnSync(torch.python, [path.join(repoRoot, 'bench', 'sd_reference_golden.py'), fixturePath('golden')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { golden } = JSON.parse(r.stdout.trim()) as { golden: Record<string, number | boolean> };
  console.log(`  max |reference - golden|: ${JSON.stringify(golden)}`);
  assert.equal(golden.ddim_timesteps_50, true);
  for (const k of ['unet.out', 'te.last_hidden_state', 'te.pooler_output', 'vae.decoded_from_mean', 'sched.alphas_cumprod', 'ddim.step_t981_prev', 'ddim.step_t1_prev', 'add_noise.t500']) {
    assert.ok(typeof golden[k] === 'number' && (golden[k] as number) <= 1e-4, `${k}: ${golden[k]}`);
  }
});

test('reduced SD benchmark (stage A and LoRA stage B, full-size UNet, 256x256): times, peak memory, adapter size, keys', { timeout: 20 * 60_000 }, (t) => {
  if (noTorch) t.diagnostic(`PyTorch side skipped: ${noTorch}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imagic-sd-bench-'));
  try {
    const json = path.join(dir, 'sd.json');
    const args = [path.join(repoRoot, 'dist', 'bench', 'sd.js'), '--reduced', '--json', json, ...(noTorch ? ['--no-torch'] : [])];
    const t0 = Date.now();
    const run = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    console.log(run.stdout);
    console.log(`  reduced run: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    assert.equal(run.status, 0, 'the reduced benchmark failed');
    const r = JSON.parse(readFileSync(json, 'utf8')) as SdBenchResult;

    // our models' keys equal the manifest's (checked on meta before anything runs)
    const manifestKeys = Object.fromEntries(Object.entries(manifest.state_dict_shapes).map(([k, v]) => [k, Object.keys(v).length]));
    assert.deepEqual(Object.fromEntries(Object.entries(r.keys).map(([k, v]) => [k, v.keys])), manifestKeys);
    assert.deepEqual(Object.values(manifestKeys), [686, 248, 196]);

    assert.deepEqual(r.rows.map((c) => [c.case, c.size, c.iters, c.warmup]), [['stageA', 256, 1, 0], ['stageB-lora', 256, 1, 0]]);
    const unetBytes = manifestParams(manifest, 'unet') * 4;
    assert.equal(r.unetBytes, unetBytes);
    for (const row of r.rows) {
      const sides = [row.ts, ...(noTorch ? [] : [row.torch])];
      for (const s of sides) {
        assert.ok(s !== null && !('error' in s), `${row.case}: ${JSON.stringify(s)}`);
        const c = s as CaseResult;
        assert.equal(c.samples_ms.length, 1);
        for (const ms of c.samples_ms) assert.ok(Number.isFinite(ms) && ms > 0, `${c.impl} ${row.case}: ${ms} ms`);
        assert.equal(c.params, manifestParams(manifest, 'unet'));
        // the process holds the UNet's float32 weights at least: peak RSS (KB) above them, and above the RSS once built
        assert.ok(c.maxrss_kb * 1024 > unetBytes, `${c.impl} ${row.case}: peak RSS ${c.maxrss_kb} KB <= the weights' ${unetBytes} B`);
        assert.ok(c.rss_built_kb * 1024 > unetBytes && c.maxrss_kb >= c.rss_built_kb, `${c.impl} ${row.case}: RSS built ${c.rss_built_kb} KB, peak ${c.maxrss_kb} KB`);
        assert.ok(c.losses !== undefined && c.losses.length === 1 && Number.isFinite(c.losses[0]) && c.losses[0]! > 0, `${c.impl} ${row.case} losses ${c.losses}`);
        assert.ok(c.threads >= 1);
        if (c.impl === 'torch') {
          // the reference asserted its three models' keys and shapes against the manifest: it says how many
          assert.equal(c.keys_total, 686 + 248 + 196);
          assert.deepEqual(c.keys, manifestKeys);
        }
      }
      if (!noTorch) assert.ok(row.ratio !== null && Number.isFinite(row.ratio) && row.ratio > 0, `${row.case}: ratio ${row.ratio}`);
    }

    // the adapters: rank 4 on attn1/attn2 to_q, to_k, to_v, to_out.0: 4 * (in + out) floats per layer
    const targets = Object.entries(manifest.state_dict_shapes.unet).filter(([k]) => /\.attn[12]\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(k));
    assert.equal(targets.length, 128);
    const adapterData = targets.reduce((a, [, s]) => a + 4 * (s[0]! + s[1]!) * 4, 0);
    const lora = r.rows[1]!.ts as CaseResult;
    assert.equal(lora.adapter_tensors, 2 * targets.length);
    assert.ok(lora.adapter_bytes! > adapterData && lora.adapter_bytes! < adapterData + 100_000, `adapters ${lora.adapter_bytes} B, data ${adapterData} B`);
    assert.ok(lora.session_bytes! > lora.adapter_bytes! && lora.session_bytes! < 50e6, `session ${lora.session_bytes} B`);
    assert.deepEqual(r.goals.find((g) => g.name === 'LoRA session under 50 MB')?.met, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
