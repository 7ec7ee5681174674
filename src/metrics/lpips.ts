// LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"),
// the `lpips` package's layout and math, on torchvision's AlexNet or VGG16 `features` as the trunk.
import { existsSync } from 'node:fs';
import { Tensor, cat, maxPool2d, noGrad, tensor, tidy, type DType, type Device } from '../engine/index.js';
import { hfHubDownload } from '../io/hub.js';
import { imageToTensor } from '../io/image-tensor.js';
import { checkImage, type RgbImage } from '../io/image-types.js';
import { loadWeights } from '../io/load.js';
import { readSafetensorsHeader } from '../io/safetensors.js';
import { Conv2d, Module } from '../nn/index.js';
import { MetricInputError, MetricLoadError, hubOptions, sourceKind, type MetricHubOptions } from './common.js';

/** LPIPS's trunk: 'alex' (the paper's default) or 'vgg'. */
export type LPIPSNet = 'alex' | 'vgg';

/** One layer of torchvision's `features` Sequential, at its index there. */
type Layer = { index: number; conv: { kernel: number; stride: number; padding: number } } | { index: number; relu: true } | { index: number; pool: { kernel: number; stride: number } };

interface TrunkSpec {
  layers: Layer[];
  /** lpips' slices end after these indices (exclusive ends: features[0:2], [2:5], ...): the five taps. */
  tapEnds: number[];
  /** torchvision's channel widths of the five taps (the defaults when a weight file lacks a layer). */
  widths: number[];
}

function sequence(ops: ('relu' | 'pool' | [number, number, number])[], pool: [number, number]): Layer[] {
  return ops.map((op, index) => op === 'relu' ? { index, relu: true as const }
    : op === 'pool' ? { index, pool: { kernel: pool[0], stride: pool[1] } }
      : { index, conv: { kernel: op[0], stride: op[1], padding: op[2] } });
}

const C3: [number, number, number] = [3, 1, 1];
/** torchvision alexnet().features (up to the last ReLU) and vgg16().features (up to relu5_3). */
export const LPIPS_TRUNKS: Record<LPIPSNet, TrunkSpec> = {
  alex: {
    layers: sequence([[11, 4, 2], 'relu', 'pool', [5, 1, 2], 'relu', 'pool', C3, 'relu', C3, 'relu', C3, 'relu'], [3, 2]),
    tapEnds: [2, 5, 8, 10, 12], // relu1 .. relu5
    widths: [64, 192, 384, 256, 256],
  },
  vgg: {
    layers: sequence([C3, 'relu', C3, 'relu', 'pool', C3, 'relu', C3, 'relu', 'pool', C3, 'relu', C3, 'relu', C3, 'relu', 'pool',
      C3, 'relu', C3, 'relu', C3, 'relu', 'pool', C3, 'relu', C3, 'relu', C3, 'relu'], [2, 2]),
    tapEnds: [4, 9, 16, 23, 30], // relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    widths: [64, 128, 256, 512, 512],
  },
};

function trunkSpec(net: LPIPSNet): TrunkSpec {
  if (!Object.hasOwn(LPIPS_TRUNKS, net)) throw new MetricInputError(`LPIPS net must be 'alex' or 'vgg', got ${JSON.stringify(net)}`);
  return LPIPS_TRUNKS[net];
}

/** ScalingLayer: (x - shift) / scale on [-1, 1] inputs. */
const SHIFT = [-0.030, -0.088, -0.188];
const SCALE = [0.458, 0.448, 0.450];

/**
 * Checkpoint key -> model key: `features.N.*` as torchvision names them, `alexnet.N.*` (the golden file),
 * `net.sliceK.N.*` (an lpips.LPIPS state dict); lpips' constant `scaling_layer.*` buffers are dropped.
 */
export function lpipsCheckpointKey(key: string): string | null {
  if (key === 'scaling_layer.shift' || key === 'scaling_layer.scale') return null;
  const slice = /^net\.slice\d\.(\d+\.(?:weight|bias))$/.exec(key);
  if (slice) return `features.${slice[1]}`;
  if (key.startsWith('alexnet.')) return `features.${key.slice('alexnet.'.length)}`;
  return key;
}

/** Children named by their torchvision index, so keys read `features.3.weight`. */
class Features extends Module {
  constructor(convs: Map<number, Conv2d>) {
    super();
    for (const [i, c] of convs) this.module(String(i), c);
  }
}

/** lpips' NetLinLayer.model: Sequential(Dropout (`0`, identity in eval), Conv2d(C, 1, 1, bias=False) (`1`)). */
class LinModel extends Module {
  constructor(readonly conv: Conv2d) {
    super();
    this.module('1', conv);
  }
}

/** lpips' NetLinLayer: keys `linK.model.1.weight` [1, C, 1, 1]. */
class NetLinLayer extends Module {
  readonly model: LinModel;
  constructor(channels: number, o: { device?: Device; dtype?: DType }) {
    super();
    this.model = this.module('model', new LinModel(new Conv2d(channels, 1, 1, { bias: false, ...o })));
  }
}

/** Where LPIPS weights come from and where it runs. */
export interface LPIPSLoadOptions extends MetricHubOptions {
  net: LPIPSNet;
  /** safetensors files: the trunk and the heads (lin0..lin4), in one file or several; file names in `repo` if given. */
  weights: string | string[];
  /** A Hub repo id holding the weight files. */
  repo?: string;
  device?: Device;
  dtype?: DType;
  /** Image pairs per forward pass (default 16). */
  batchSize?: number;
}

/** LPIPS (Zhang et al. 2018), the learned perceptual distance between images, with the AlexNet or VGG trunk. */
export class LPIPS extends Module {
  /** @internal the trunk (AlexNet or VGG16 features) */
  readonly features: Features;
  /** @internal the per-layer 1x1 weightings */
  readonly lins: NetLinLayer[];
  /** @internal */
  readonly spec: TrunkSpec;
  batchSize = 16;
  private readonly convs: Map<number, Conv2d>;

  /** Built on 'meta' (or allocated with random weights); `widths` are the five taps' channels. */
  constructor(readonly net: LPIPSNet, widths?: number[], o: { device?: Device; dtype?: DType } = {}) {
    super();
    this.spec = trunkSpec(net);
    const w = widths ?? this.spec.widths;
    this.convs = new Map();
    let cin = 3;
    for (const l of this.spec.layers) {
      if (!('conv' in l)) continue;
      const tap = this.spec.tapEnds.findIndex((e) => l.index < e);
      const cout = w[tap]!;
      this.convs.set(l.index, new Conv2d(cin, cout, l.conv.kernel, { stride: l.conv.stride, padding: l.conv.padding, ...o }));
      cin = cout;
    }
    this.features = this.module('features', new Features(this.convs));
    this.lins = w.map((c, k) => this.module(`lin${k}`, new NetLinLayer(c, o)));
  }

  /** The tap widths a checkpoint's trunk has (the last conv before each tap), torchvision's where a layer is absent. */
  static widthsOf(net: LPIPSNet, files: string[]): number[] {
    const spec = trunkSpec(net);
    const shapes = new Map<string, number[]>();
    for (const f of files) for (const [k, info] of readSafetensorsHeader(f).tensors) shapes.set(lpipsCheckpointKey(k) ?? k, info.shape);
    return spec.tapEnds.map((end, k) => {
      const last = spec.layers.filter((l) => 'conv' in l && l.index < end).at(-1)!;
      return shapes.get(`features.${last.index}.weight`)?.[0] ?? spec.widths[k]!;
    });
  }

  /** From local safetensors files, strictly: every missing, unexpected or mis-shaped key is listed (StateDictError). */
  static fromFiles(net: LPIPSNet, files: string | string[], o: { device?: Device; dtype?: DType } = {}): LPIPS {
    const list = typeof files === 'string' ? [files] : files;
    if (list.length === 0) throw new MetricInputError('LPIPS: no weight files given');
    for (const f of list) sourceKind(f, 'file');
    const model = new LPIPS(net, LPIPS.widthsOf(net, list), { device: 'meta', dtype: o.dtype ?? 'float32' });
    try {
      loadWeights(model, list, { dtype: o.dtype ?? 'float32', device: o.device, rename: lpipsCheckpointKey });
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model.eval();
  }

  /** Local files, or file names in a Hub repo (`repo`), downloaded into the huggingface_hub cache. */
  static async load(opts: LPIPSLoadOptions): Promise<LPIPS> {
    const names = typeof opts.weights === 'string' ? [opts.weights] : opts.weights;
    const files = opts.repo === undefined ? names : await Promise.all(names.map((n) => hfHubDownload(opts.repo!, n, hubOptions(opts))));
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length) throw new MetricLoadError(missing.join(', '), `no such weight file${missing.length > 1 ? 's' : ''}`);
    const model = LPIPS.fromFiles(opts.net, files, { device: opts.device, dtype: opts.dtype });
    if (opts.batchSize !== undefined) model.batchSize = opts.batchSize;
    return model;
  }

  /** The five tap activations of a scaled batch [N, 3, H, W]: [N, C_k, H_k, W_k]. */
  taps(x: Tensor): Tensor[] {
    const out: Tensor[] = [];
    let h = x;
    for (const l of this.spec.layers) {
      h = 'conv' in l ? this.convs.get(l.index)!.forward(h) : 'relu' in l ? h.relu() : maxPool2d(h, l.pool.kernel, l.pool.stride);
      if (this.spec.tapEnds.includes(l.index + 1)) out.push(h);
    }
    return out;
  }

  /** LPIPS of each pair: img0, img1 [B, 3, H, W] in [-1, 1] -> [B] (float32, with autograd if enabled). */
  forward(img0: Tensor, img1: Tensor): Tensor {
    this.checkPair(img0, img1);
    return tidy(() => {
      const p = this.features.namedParameters()[0]![1];
      const o = { device: p.device, dtype: p.dtype };
      const shift = tensor(SHIFT).view(1, 3, 1, 1).to(o), scale = tensor(SCALE).view(1, 3, 1, 1).to(o);
      const x = cat([img0, img1]).to(o).sub(shift).div(scale); // [2B, 3, H, W]: one trunk pass for both
      const b = img0.size(0);
      const per = this.taps(x).map((f, k) => {
        const unit = f.div(f.square().sum(1, { keepdim: true }).sqrt().add(1e-10)); // [2B, C_k, h, w]
        const diff = unit.narrow(0, 0, b).sub(unit.narrow(0, b, b)).square(); // [B, C_k, h, w]
        return this.lins[k]!.model.conv.forward(diff).mean([2, 3]); // [B, 1]: spatial average
      });
      return per.reduce((s, d) => s.add(d)).flatten().float(); // [B]
    });
  }

  /** LPIPS per pair, as numbers: tensors [B, 3, H, W] in [-1, 1], or uint8 images (each pair the same size). */
  distance(img0: Tensor | RgbImage | RgbImage[], img1: Tensor | RgbImage | RgbImage[]): number[] {
    if (img0 instanceof Tensor && img1 instanceof Tensor) {
      this.checkPair(img0, img1);
      const out: number[] = [];
      for (let i = 0; i < img0.size(0); i += this.batchSize) {
        const m = Math.min(this.batchSize, img0.size(0) - i);
        out.push(...tidy(() => noGrad(() => this.forward(img0.narrow(0, i, m), img1.narrow(0, i, m)).toFlatArray())));
      }
      return out;
    }
    if (img0 instanceof Tensor || img1 instanceof Tensor) throw new MetricInputError('LPIPS: give two tensors or two sets of images, not one of each');
    const a = Array.isArray(img0) ? img0 : [img0], b = Array.isArray(img1) ? img1 : [img1];
    if (a.length !== b.length) throw new MetricInputError(`LPIPS pairs images one to one: got ${a.length} and ${b.length}`);
    return a.map((im, i) => {
      checkImage(im, `image ${i}`);
      checkImage(b[i]!, `image ${i}`);
      return tidy(() => noGrad(() => this.forward(imageToTensor(im), imageToTensor(b[i]!)).item()));
    });
  }

  private checkPair(img0: Tensor, img1: Tensor): void {
    const s0 = img0.shape, s1 = img1.shape;
    if (s0.length !== 4 || s0[1] !== 3 || !['float32', 'float16', 'bfloat16', 'float64'].includes(img0.dtype)) {
      throw new MetricInputError(`LPIPS takes floating [B, 3, H, W] images in [-1, 1], got ${img0.dtype} [${s0.join(', ')}]`);
    }
    if (s0.join(',') !== s1.join(',')) {
      throw new MetricInputError(`LPIPS compares images of one size: got [${s0.join(', ')}] and [${s1.join(', ')}]`);
    }
    // every layer must leave at least one pixel (torchvision's layers, no ceil_mode)
    let h = s0[2]!, w = s0[3]!;
    for (const l of this.spec.layers) {
      if ('conv' in l) [h, w] = [h, w].map((v) => Math.floor((v + 2 * l.conv.padding - l.conv.kernel) / l.conv.stride) + 1) as [number, number];
      if ('pool' in l) [h, w] = [h, w].map((v) => Math.floor((v - l.pool.kernel) / l.pool.stride) + 1) as [number, number];
      if (h < 1 || w < 1) throw new MetricInputError(`LPIPS (${this.net}): ${s0[2]}x${s0[3]} images are too small for the trunk (nothing left after features.${l.index})`);
    }
  }
}
