// AutoencoderKL against diffusers (tiny-sd/vae and golden.safetensors from make_golden.py), the full-size
// SD v1 key/shape manifest, and loading of checkpoints with legacy attention keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Generator, keep, liveTensors, noGrad, randn, tidy, type Tensor } from '../../../src/engine/index.js';
import { StateDictError } from '../../../src/nn/index.js';
import { loadSafetensors, saveSafetensors } from '../../../src/io/safetensors.js';
import { AutoencoderKL, SD_V1_VAE_CONFIG, loadAutoencoderKLConfig, type AutoencoderKLConfig } from '../../../src/models/vae/index.js';
import { assertClose } from '../../helpers.js';
import { fixturePath } from '../../fixtures.js';

const TINY = fixturePath('golden/tiny-sd');
const WEIGHTS = path.join(TINY, 'vae', 'diffusion_pytorch_model.safetensors');

const G = loadSafetensors(fixturePath('golden/golden.safetensors'), {
  keys: ['vae.image', 'vae.latent_mean', 'vae.latent_std', 'vae.decoded_from_mean'],
});
for (const t of G.values()) keep(t);
const g = (k: string) => G.get(k)!;

let tiny: AutoencoderKL | undefined;
const model = () => (tiny ??= AutoencoderKL.fromPretrained(TINY));

function maxAbs(a: Tensor, b: Tensor): number {
  return tidy(() => a.sub(b).abs().max().item());
}

test('encode(vae.image) gives diffusers latent_mean and latent_std (<= 1e-4)', () => {
  const vae = model();
  noGrad(() => tidy(() => {
    const dist = vae.encode(g('vae.image'));
    assert.deepEqual(dist.mean.shape, [1, 4, 8, 8]);
    console.log(`# vae latent_mean max|diff| ${maxAbs(dist.mean, g('vae.latent_mean')).toExponential(2)}, latent_std ${maxAbs(dist.std, g('vae.latent_std')).toExponential(2)}`);
    assertClose(dist.mean, g('vae.latent_mean'), 1e-4, 1e-4, 'latent_mean');
    assertClose(dist.std, g('vae.latent_std'), 1e-4, 1e-4, 'latent_std');
    assertClose(dist.mode(), g('vae.latent_mean'), 1e-4, 1e-4, 'mode');
    // sample = mean + std * noise, the noise drawn from the generator as randn(mean.shape)
    const s = dist.sample(new Generator(3));
    const noise = randn([1, 4, 8, 8], { generator: new Generator(3) });
    assertClose(s, dist.mean.add(dist.std.mul(noise)), 1e-6, 1e-6, 'sample');
  }));
});

test('decode(latent_mean) gives diffusers decoded_from_mean (<= 1e-4)', () => {
  const vae = model();
  noGrad(() => tidy(() => {
    const x = vae.decode(g('vae.latent_mean'));
    assert.deepEqual(x.shape, [1, 3, 64, 64]);
    console.log(`# vae decoded_from_mean max|diff| ${maxAbs(x, g('vae.decoded_from_mean')).toExponential(2)}`);
    assertClose(x, g('vae.decoded_from_mean'), 1e-4, 1e-4, 'decoded_from_mean');
  }));
});

test('encode and decode free their intermediates (no tidy needed around them)', () => {
  const vae = model();
  noGrad(() => {
    const before = liveTensors();
    const dist = vae.encode(g('vae.image'));
    const z = dist.sample(new Generator(0));
    const x = vae.decode(z);
    assert.equal(liveTensors(), before + 5, 'only mean, logvar, std, the sample and the image are alive');
    dist.dispose();
    z.dispose();
    x.dispose();
    assert.equal(liveTensors(), before);
  });
});

test('a model built from the full-size SD v1 config has exactly the 248 keys and shapes of diffusers', () => {
  const manifest = JSON.parse(readFileSync(fixturePath('golden/sd-v1-manifest.json'), 'utf8')) as {
    configs: { vae: Partial<AutoencoderKLConfig> };
    state_dict_shapes: { vae: Record<string, number[]> };
  };
  const expected = Object.entries(manifest.state_dict_shapes.vae);
  assert.equal(expected.length, 248);
  for (const vae of [new AutoencoderKL(manifest.configs.vae, { device: 'meta' }), new AutoencoderKL(SD_V1_VAE_CONFIG, { device: 'meta' })]) {
    const got = Object.entries(vae.stateDict()).map(([k, t]) => [k, t.shape] as [string, number[]]);
    const missing = expected.filter(([k]) => !got.some(([g2]) => g2 === k)).map(([k]) => k);
    const extra = got.filter(([k]) => !(k in manifest.state_dict_shapes.vae)).map(([k]) => k);
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
    assert.deepEqual(got, expected, 'same shapes, in the same order');
    assert.equal(vae.downscaleFactor, 8);
    assert.equal(vae.encoder.conv_in.weight.device, 'meta');
  }
});

/** The tiny checkpoint with its mid-block attention keys renamed to the legacy names, weights as 1x1 convs. */
function legacyStateDict(): Map<string, Tensor> {
  const sd = loadSafetensors(WEIGHTS);
  const legacy = new Map<string, Tensor>();
  const names: Record<string, string> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
  for (const [k, t] of sd) {
    const m = /^(.*\.attentions\.0\.)(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(k);
    if (m === null) legacy.set(k, t);
    else legacy.set(`${m[1]}${names[m[2]!]}.${m[3]}`, m[3] === 'weight' ? t.reshape([...t.shape, 1, 1]) : t);
  }
  return legacy;
}

test('legacy attention keys (query/key/value/proj_attn, [C, C, 1, 1]) load and decode like the current ones', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'imagic-vae-'));
  try {
    tidy(() => {
      const legacy = legacyStateDict();
      assert.ok(legacy.has('decoder.mid_block.attentions.0.proj_attn.weight'));
      assert.deepEqual(legacy.get('encoder.mid_block.attentions.0.query.weight')!.shape, [16, 16, 1, 1]);
      // a plain strict load refuses them, naming the keys
      const fresh = new AutoencoderKL(loadAutoencoderKLConfig(TINY), { device: 'meta' });
      assert.throws(() => fresh.loadStateDict(legacy), (e: unknown) => e instanceof StateDictError
        && e.unexpected.includes('encoder.mid_block.attentions.0.query.weight')
        && e.missing.includes('encoder.mid_block.attentions.0.to_q.weight'));
      // fromPretrained renames and reshapes them
      mkdirSync(path.join(dir, 'vae'));
      copyFileSync(path.join(TINY, 'vae', 'config.json'), path.join(dir, 'vae', 'config.json'));
      saveSafetensors(path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'), legacy);
    });
    const vae = AutoencoderKL.fromPretrained(dir);
    noGrad(() => tidy(() => {
      assertClose(vae.decode(g('vae.latent_mean')), g('vae.decoded_from_mean'), 1e-4, 1e-4, 'decode with converted legacy weights');
      assertClose(vae.encode(g('vae.image')).mean, g('vae.latent_mean'), 1e-4, 1e-4, 'encode with converted legacy weights');
    }));
    vae.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('strict loading lists every bad key; bad inputs give clear errors', () => {
  const vae = model();
  tidy(() => {
    const sd = loadSafetensors(WEIGHTS);
    sd.delete('decoder.conv_out.bias');
    sd.set('decoder.extra.weight', sd.get('quant_conv.bias')!);
    sd.set('quant_conv.weight', sd.get('post_quant_conv.weight')!);
    const target = new AutoencoderKL(loadAutoencoderKLConfig(TINY), { device: 'meta' });
    assert.throws(() => target.loadStateDict(sd), (e: unknown) => e instanceof StateDictError
      && e.missing.join() === 'decoder.conv_out.bias' && e.unexpected.join() === 'decoder.extra.weight'
      && e.mismatched.length === 1 && e.mismatched[0]!.key === 'quant_conv.weight');
    const img = randn([1, 4, 64, 64]);
    assert.throws(() => vae.encode(img), /expected an image \[B, 3, H, W\], got \[1, 4, 64, 64\]/);
    assert.throws(() => vae.encode(randn([3, 64, 64])), /expected an image/);
    assert.throws(() => vae.decode(randn([1, 3, 8, 8])), /expected a latent \[B, 4, h, w\], got \[1, 3, 8, 8\]/);
  });
  assert.throws(() => AutoencoderKL.fromPretrained(path.join(tmpdir(), 'no-such-vae-folder')), /not a folder/);
});
