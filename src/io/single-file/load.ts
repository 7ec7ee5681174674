// Loading a single-file SD v1 / SD 2.x / SDXL checkpoint (LDM / sgm layout) into our models: every stored key
// is mapped, skipped on purpose, or an error; every model weight must come from the file; tensors
// are streamed one by one (each read once) into models built on the meta device.
import { isFloating, noGrad, type DType, type Device, type Tensor } from '../../engine/index.js';
import { StateDictError, type Module } from '../../nn/index.js';
import { CLIPTextModel, CLIPTextModelWithProjection, parseCLIPTextConfig } from '../../models/clip/index.js';
import { UNet2DConditionModel } from '../../models/unet/index.js';
import { AutoencoderKL, parseAutoencoderKLConfig } from '../../models/vae/index.js';
import { detectLdmArchitecture, SingleFileError, type LdmArchitecture } from './detect.js';
import {
  CLIP_PREFIX, clipKey, OPENCLIP_PREFIX, openClipTargets, skipReason, transformedShape, UNET_PREFIX, unetKey,
  VAE_PREFIX, vaeKey, XL_CLIP_PREFIX, XL_OPENCLIP_PREFIX, type LdmComponent, type LdmTransform,
} from './keys.js';
import { openTensorSource, type TensorSource } from './source.js';
import { readLdmYaml, type LdmYaml } from './yaml-config.js';

/** One model weight and the stored tensor it comes from. */
export interface SingleFileItem {
  component: LdmComponent;
  /** The model's key, e.g. 'down_blocks.0.attentions.0.proj_in.weight'. */
  key: string;
  /** The stored key, e.g. 'model.diffusion_model.input_blocks.1.1.proj_in.weight'. */
  source: string;
  transform: LdmTransform;
  /** The shape after the transform. */
  shape: number[];
}

export interface SingleFilePlan {
  file: string;
  arch: LdmArchitecture;
  items: SingleFileItem[];
  /** Stored keys left out on purpose, with why. */
  skipped: { key: string; reason: string }[];
}

/** Maps every stored key (no data read); throws SingleFileError naming the keys it cannot place. */
export function planSingleFile(file: string, tensors: ReadonlyMap<string, { shape: number[] }>, arch: LdmArchitecture): SingleFilePlan {
  const items: SingleFileItem[] = [];
  const skipped: SingleFilePlan['skipped'] = [];
  const unexpected: string[] = [];
  const badShape: string[] = [];
  const lpb = arch.unet.layers_per_block as number;
  const vaeLevels = (arch.vae.block_out_channels as number[]).length;
  const clipRoot = arch.family === 'sdxl' ? XL_CLIP_PREFIX : CLIP_PREFIX;
  const clipPrefix = [...tensors.keys()].some((k) => k.startsWith(`${clipRoot}text_model.`)) ? `${clipRoot}text_model.` : clipRoot;
  const layers2 = (arch.textEncoder2?.num_hidden_layers as number | undefined) ?? 0;
  for (const [key, info] of tensors) {
    const why = skipReason(key);
    if (why !== null) {
      skipped.push({ key, reason: why });
      continue;
    }
    let targets: { component: LdmComponent; key: string; transform: LdmTransform }[] | null = null;
    if (key.startsWith(UNET_PREFIX)) {
      const k = unetKey(key.slice(UNET_PREFIX.length), lpb);
      targets = k === null ? null : [{ component: 'unet', key: k, transform: 'none' }];
    } else if (key.startsWith(VAE_PREFIX)) {
      const t = vaeKey(key.slice(VAE_PREFIX.length), vaeLevels);
      targets = t === null ? null : [{ component: 'vae', ...t }];
    } else if (arch.family !== 'sd2' && key.startsWith(clipPrefix)) {
      targets = [{ component: 'text_encoder', key: clipKey(key.slice(clipPrefix.length)), transform: 'none' }];
    } else if (arch.family === 'sd2' && key.startsWith(OPENCLIP_PREFIX)) {
      const t = openClipTargets(key.slice(OPENCLIP_PREFIX.length), arch.textLayers);
      if (t !== null && t.length === 0) {
        skipped.push({ key, reason: `OpenCLIP layer beyond the ${arch.textLayers} used ('layer: penultimate')` });
        continue;
      }
      targets = t === null ? null : t.map((x) => ({ component: 'text_encoder' as const, ...x }));
    } else if (arch.family === 'sdxl' && key.startsWith(XL_OPENCLIP_PREFIX)) {
      const t = openClipTargets(key.slice(XL_OPENCLIP_PREFIX.length), layers2, true);
      targets = t === null || t.length === 0 ? null : t.map((x) => ({ component: 'text_encoder_2' as const, ...x }));
    }
    if (targets === null) {
      unexpected.push(key);
      continue;
    }
    for (const t of targets) {
      const shape = transformedShape(info.shape, t.transform);
      if (shape === null) badShape.push(`${key} [${info.shape.join(', ')}]`);
      else items.push({ ...t, source: key, shape });
    }
  }
  if (unexpected.length || badShape.length) {
    const list = (xs: string[]) => xs.slice(0, 20).join(', ') + (xs.length > 20 ? `, ... (${xs.length} in all)` : '');
    const parts = [];
    if (unexpected.length) parts.push(`${unexpected.length} unexpected key(s) for ${arch.variant}: ${list(unexpected)}`);
    if (badShape.length) parts.push(`tensors whose shape cannot be converted: ${list(badShape)}`);
    throw new SingleFileError(file, parts.join('; '));
  }
  return { file, arch, items, skipped };
}

export interface SingleFileOptions {
  /** The LDM inference YAML (a path, or one already read): head counts, v-prediction, image size. */
  config?: string | LdmYaml;
  /** Text-encoder heads when the width is not a multiple of 64 (tiny test models). */
  textEncoderHeads?: number;
  /** Floating-point weights end up in this dtype (default float32). */
  dtype?: DType;
  device?: Device;
  /** Called after each stored tensor with bytes done, total and the key. */
  onProgress?: (done: number, total: number, key: string) => void;
  /**
   * .ckpt files: 'placeholder' loads the tensors of a pickle that also holds other objects (PyTorch
   * Lightning's callbacks in old SD 1.x files), leaving them inert (nothing runs; globals of code-running
   * modules stay refused). Default 'refuse'.
   */
  unknownGlobals?: 'refuse' | 'placeholder';
}

export interface SingleFileModels {
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  textEncoder: CLIPTextModel;
  /** SDXL: the second text encoder (OpenCLIP, with its projection). */
  textEncoder2?: CLIPTextModelWithProjection;
  arch: LdmArchitecture;
  skipped: SingleFilePlan['skipped'];
  summary: { tensors: number; bytes: number; seconds: number };
}

/** Reads the YAML (if any), the file's header, and works out the architecture and the key plan. */
export function inspectSingleFile(file: string, opts: Pick<SingleFileOptions, 'config' | 'textEncoderHeads' | 'unknownGlobals'> = {}): SingleFilePlan {
  const src = openTensorSource(file, { unknownGlobals: opts.unknownGlobals });
  try {
    return planFrom(src, opts);
  } finally {
    src.close();
  }
}

function planFrom(src: TensorSource, opts: Pick<SingleFileOptions, 'config' | 'textEncoderHeads'>): SingleFilePlan {
  const yaml = typeof opts.config === 'string' ? readLdmYaml(opts.config) : opts.config;
  const arch = detectLdmArchitecture(src.file, src.tensors, { yaml, textEncoderHeads: opts.textEncoderHeads });
  return planSingleFile(src.file, src.tensors, arch);
}

/**
 * Loads the UNet, VAE and text encoder of a single-file checkpoint, exactly the weights the file
 * holds (1x1-conv VAE attention reshaped, OpenCLIP's fused q/k/v split), checked key by key first.
 *
 *   const { unet, vae, textEncoder, arch } = loadSingleFile('v1-5-pruned-emaonly.safetensors', { config: 'v1-inference.yaml' });
 */
export function loadSingleFile(file: string, opts: SingleFileOptions = {}): SingleFileModels {
  const start = performance.now();
  const src = openTensorSource(file, { unknownGlobals: opts.unknownGlobals });
  const built: Module[] = [];
  try {
    const plan = planFrom(src, opts);
    const { arch } = plan;
    const init = { device: 'meta' as const, dtype: opts.dtype ?? 'float32' };
    const unet = new UNet2DConditionModel(arch.unet, init);
    built.push(unet);
    const vae = new AutoencoderKL(parseAutoencoderKLConfig(arch.vae, `${file} (vae)`), init);
    built.push(vae);
    const textEncoder = new CLIPTextModel(parseCLIPTextConfig(arch.textEncoder, `${file} (text encoder)`), init);
    built.push(textEncoder);
    const modules: Partial<Record<LdmComponent, Module>> = { unet, vae, text_encoder: textEncoder };
    let textEncoder2: CLIPTextModelWithProjection | undefined;
    if (arch.textEncoder2) {
      textEncoder2 = new CLIPTextModelWithProjection(parseCLIPTextConfig(arch.textEncoder2, `${file} (text encoder 2)`), init);
      built.push(textEncoder2);
      modules.text_encoder_2 = textEncoder2;
    }
    const params = matchParams(file, plan, modules);
    const { tensors, bytes } = stream(src, plan, params, opts);
    return {
      unet: unet.eval(), vae: vae.eval(), textEncoder: textEncoder.eval(), ...(textEncoder2 ? { textEncoder2: textEncoder2.eval() } : {}),
      arch, skipped: plan.skipped,
      summary: { tensors, bytes, seconds: (performance.now() - start) / 1000 },
    };
  } catch (e) {
    for (const m of built) m.dispose();
    throw e;
  } finally {
    src.close();
  }
}

/** Each plan item's parameter; a StateDictError per component lists missing, unexpected and mis-shaped keys. */
function matchParams(file: string, plan: SingleFilePlan, modules: Partial<Record<LdmComponent, Module>>): Map<SingleFileItem, Tensor> {
  const out = new Map<SingleFileItem, Tensor>();
  for (const [component, module] of Object.entries(modules) as [LdmComponent, Module][]) {
    const own = new Map<string, Tensor>([...module.namedParameters(), ...module.namedBuffers()]);
    const seen = new Set<string>();
    const unexpected: string[] = [];
    const mismatched: { key: string; expected: number[]; got: number[] }[] = [];
    for (const it of plan.items) {
      if (it.component !== component) continue;
      const p = own.get(it.key);
      if (p === undefined || seen.has(it.key)) {
        unexpected.push(`${it.key} (from ${it.source})`);
        continue;
      }
      seen.add(it.key);
      if (p.shape.join(',') !== it.shape.join(',')) mismatched.push({ key: `${it.key} (from ${it.source})`, expected: p.shape, got: it.shape });
      else out.set(it, p);
    }
    const missing = [...own.keys()].filter((k) => !seen.has(k));
    if (missing.length || unexpected.length || mismatched.length) {
      throw new StateDictError(missing, unexpected, mismatched, `${file} (${component}, read as ${plan.arch.variant})`);
    }
  }
  return out;
}

/** Reads each stored tensor once, in file order, and puts it (transformed) into its parameter(s). */
function stream(src: TensorSource, plan: SingleFilePlan, params: Map<SingleFileItem, Tensor>, opts: SingleFileOptions): { tensors: number; bytes: number } {
  const bySource = new Map<string, SingleFileItem[]>();
  for (const it of plan.items) bySource.set(it.source, [...(bySource.get(it.source) ?? []), it]);
  const order = src.order([...bySource.keys()]);
  const total = order.reduce((n, k) => n + src.bytes(k), 0);
  let done = 0;
  for (const key of order) {
    const raw = src.read(key);
    try {
      noGrad(() => {
        for (const it of bySource.get(key)!) assign(params.get(it)!, transform(raw, it.transform), raw, opts);
      });
    } finally {
      raw.dispose();
    }
    done += src.bytes(key);
    opts.onProgress?.(done, total, key);
  }
  return { tensors: order.length, bytes: done };
}

/** [C, C, 1, 1] -> [C, C] (a view); row block i of n (a copy, so q/k/v do not share the fused storage); [D, P] -> [P, D] (a copy). */
function transform(raw: Tensor, t: LdmTransform): Tensor {
  if (t === 'none') return raw;
  if (t === 'transpose') {
    const view = raw.transpose(0, 1);
    const copy = view.contiguous();
    view.dispose();
    return copy;
  }
  if (t === 'squeeze') return raw.shape.length === 4 ? raw.reshape([raw.shape[0]!, raw.shape[1]!]) : raw;
  const rows = raw.shape[0]! / t.of;
  const view = raw.narrow(0, t.chunk * rows, rows);
  const copy = view.clone();
  view.dispose();
  return copy;
}

/** The parameter takes the value's storage (converted to the load dtype/device first when needed). */
function assign(p: Tensor, value: Tensor, raw: Tensor, opts: SingleFileOptions): void {
  const dtype: DType = isFloating(p.dtype) && opts.dtype !== undefined ? opts.dtype : p.dtype;
  const device: Device = opts.device ?? 'cpu';
  const needs = value.dtype !== dtype || !(device === 'cpu');
  const converted = needs ? value.to({ dtype, device }) : value;
  p.assign_(converted);
  if (converted !== value) converted.dispose();
  if (value !== raw) value.dispose();
}
