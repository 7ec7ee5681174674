// The LDM inference YAML (v1-inference.yaml, v2-inference-v.yaml, ...) that describes a single-file
// checkpoint: the settings its weights leave open (attention heads, v-prediction, the text layer used).
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** A YAML that is not a usable LDM config (names the file and the field). */
export class LdmConfigError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'LdmConfigError';
  }
}

/** What this project reads from an LDM YAML; absent fields are undefined (the weights or defaults decide). */
export interface LdmYaml {
  file: string;
  /** model.target, e.g. 'ldm.models.diffusion.ddpm.LatentDiffusion'. */
  target?: string;
  /** 'eps' (default in LDM) or 'v' (SD 2.x 768). */
  parameterization: 'eps' | 'x0' | 'v';
  /** Latent size (model.params.image_size: 64 for SD v1, 96 for SD 2.x 768). */
  imageSize?: number;
  scaleFactor?: number;
  linearStart?: number;
  linearEnd?: number;
  timesteps?: number;
  unet: {
    inChannels?: number;
    outChannels?: number;
    modelChannels?: number;
    channelMult?: number[];
    numResBlocks?: number;
    attentionResolutions?: number[];
    /** One depth, or one per level (sgm); levels without attention are not checked. */
    transformerDepth?: number | number[];
    contextDim?: number;
    /** v1: heads per attention layer. */
    numHeads?: number;
    /** v2: channels per head (the head count is then channels / this). */
    numHeadChannels?: number;
    useLinearInTransformer?: boolean;
  };
  vae: {
    ch?: number;
    chMult?: number[];
    numResBlocks?: number;
    zChannels?: number;
    embedDim?: number;
    inChannels?: number;
    outCh?: number;
  };
  /** cond_stage_config.target, e.g. 'ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder'. */
  condStageTarget?: string;
  /** cond_stage_config.params.layer: 'penultimate' skips OpenCLIP's last layer. */
  layer?: 'last' | 'penultimate';
  /** SDXL (sgm) configs only: what the conditioner and the UNet's added conditioning say. */
  sgm?: LdmYamlSgm;
}

/** The SDXL parts of an sgm config (model.target sgm.models.diffusion.DiffusionEngine). */
export interface LdmYamlSgm {
  /** network_config.params.adm_in_channels: the added-conditioning width (pooled + 6 x time embedding). */
  admInChannels?: number;
  /** The ConcatTimestepEmbedderND outdim (each of the 6 size/crop numbers gets this many channels). */
  timeEmbedDim?: number;
  /** conditioner emb_models targets that embed text, in order (FrozenCLIPEmbedder, FrozenOpenCLIPEmbedder2). */
  textEmbedders: { target: string; layer?: string; layerIdx?: number }[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads and checks an LDM inference YAML file. */
export function readLdmYaml(file: string): LdmYaml {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LdmConfigError(file, `cannot read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new LdmConfigError(file, `not valid YAML (${(e as Error).message})`);
  }
  return parseLdmYaml(doc, file);
}

/** Checks a parsed LDM YAML document (`model: {target, params: {...}}`). */
export function parseLdmYaml(doc: unknown, file = 'LDM config'): LdmYaml {
  const fail = (m: string): never => {
    throw new LdmConfigError(file, m);
  };
  if (!isObj(doc) || !isObj(doc.model)) return fail("expected an LDM inference config with a 'model:' section (model.target, model.params.unet_config, ...)");
  const model = doc.model;
  const params = isObj(model.params) ? model.params : {};
  const sub = (o: Obj, key: string, where: string): Obj => {
    const v = o[key];
    if (v === undefined || v === null) return {};
    if (!isObj(v)) fail(`${where}.${key} must be a mapping`);
    return v as Obj;
  };
  const num = (o: Obj, key: string, where: string, int = true): number | undefined => {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (int && (!Number.isInteger(v) || v <= 0))) {
      fail(`${where}.${key} must be ${int ? 'a positive integer' : 'a number'}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const ints = (o: Obj, key: string, where: string): number[] | undefined => {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x > 0)) fail(`${where}.${key} must be a list of positive integers, got ${JSON.stringify(v)}`);
    return v as number[];
  };
  // LDM (SD v1 / 2.x) names the UNet unet_config; sgm (SDXL) network_config, with the same fields.
  const sgm = /DiffusionEngine|^sgm\./.test(typeof model.target === 'string' ? model.target : '') || params.network_config !== undefined;
  const unetName = sgm ? 'network_config' : 'unet_config';
  const unetCfg = sub(params, unetName, 'model.params');
  const up = sub(unetCfg, 'params', `model.params.${unetName}`);
  const firstCfg = sub(params, 'first_stage_config', 'model.params');
  const dd = sub(sub(firstCfg, 'params', 'model.params.first_stage_config'), 'ddconfig', 'model.params.first_stage_config.params');
  const condCfg = sub(params, 'cond_stage_config', 'model.params');
  const condParams = sub(condCfg, 'params', 'model.params.cond_stage_config');
  const U = `model.params.${unetName}.params`;
  const D = 'model.params.first_stage_config.params.ddconfig';
  const parameterization = sgm ? sgmParameterization(params, fail) : params.parameterization ?? 'eps';
  if (parameterization !== 'eps' && parameterization !== 'v' && parameterization !== 'x0') {
    fail(`model.params.parameterization must be eps, x0 or v, got ${JSON.stringify(parameterization)}`);
  }
  const layer = condParams.layer;
  if (layer !== undefined && layer !== 'last' && layer !== 'penultimate') {
    fail(`model.params.cond_stage_config.params.layer must be 'last' or 'penultimate', got ${JSON.stringify(layer)}`);
  }
  let numHeads = up.num_heads;
  let numHeadChannels = up.num_head_channels;
  if (numHeads === -1) numHeads = undefined; // LDM's "unset"
  if (numHeadChannels === -1) numHeadChannels = undefined;
  const useLinear = up.use_linear_in_transformer;
  if (useLinear !== undefined && typeof useLinear !== 'boolean') fail(`${U}.use_linear_in_transformer must be true or false`);
  const depth = up.transformer_depth;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const y: LdmYaml = {
    file,
    target: str(model.target),
    parameterization: parameterization as LdmYaml['parameterization'],
    imageSize: num(params, 'image_size', 'model.params'),
    scaleFactor: num(params, 'scale_factor', 'model.params', false),
    linearStart: num(params, 'linear_start', 'model.params', false),
    linearEnd: num(params, 'linear_end', 'model.params', false),
    timesteps: num(params, 'timesteps', 'model.params'),
    unet: {
      inChannels: num(up, 'in_channels', U),
      outChannels: num(up, 'out_channels', U),
      modelChannels: num(up, 'model_channels', U),
      channelMult: ints(up, 'channel_mult', U),
      numResBlocks: num(up, 'num_res_blocks', U),
      attentionResolutions: ints(up, 'attention_resolutions', U),
      transformerDepth: Array.isArray(depth) ? ints(up, 'transformer_depth', U) : num(up, 'transformer_depth', U),
      contextDim: num(up, 'context_dim', U),
      numHeads: num({ numHeads }, 'numHeads', `${U}.num_heads`),
      numHeadChannels: num({ numHeadChannels }, 'numHeadChannels', `${U}.num_head_channels`),
      useLinearInTransformer: useLinear as boolean | undefined,
    },
    vae: {
      ch: num(dd, 'ch', D),
      chMult: ints(dd, 'ch_mult', D),
      numResBlocks: num(dd, 'num_res_blocks', D),
      zChannels: num(dd, 'z_channels', D),
      embedDim: num(sub(firstCfg, 'params', 'model.params.first_stage_config'), 'embed_dim', 'model.params.first_stage_config.params'),
      inChannels: num(dd, 'in_channels', D),
      outCh: num(dd, 'out_ch', D),
    },
    condStageTarget: str(condCfg.target),
    layer: layer as LdmYaml['layer'],
  };
  if (sgm) y.sgm = sgmParts(params, up, U, num, fail);
  return y;
}

/** sgm's denoiser scaling decides the prediction: EpsScaling -> eps, VScaling -> v; EDM variants are not DDPM models. */
function sgmParameterization(params: Obj, fail: (m: string) => never): string {
  const den = isObj(params.denoiser_config) ? params.denoiser_config : {};
  const dp = isObj(den.params) ? den.params : {};
  const sc = isObj(dp.scaling_config) ? dp.scaling_config : {};
  const t = typeof sc.target === 'string' ? sc.target : '';
  if (t === '' || /\.EpsScaling$/.test(t)) return 'eps';
  if (/\.VScaling$/.test(t)) return 'v';
  return fail(`model.params.denoiser_config.params.scaling_config.target '${t}' is not supported (EpsScaling or VScaling: DDPM epsilon or v-prediction)`);
}

function sgmParts(params: Obj, up: Obj, U: string, num: (o: Obj, key: string, where: string) => number | undefined, fail: (m: string) => never): LdmYamlSgm {
  const cond = isObj(params.conditioner_config) ? params.conditioner_config : {};
  const cp = isObj(cond.params) ? cond.params : {};
  const models = cp.emb_models ?? [];
  if (!Array.isArray(models)) fail('model.params.conditioner_config.params.emb_models must be a list');
  const textEmbedders: LdmYamlSgm['textEmbedders'] = [];
  let timeEmbedDim: number | undefined;
  (models as unknown[]).forEach((m, i) => {
    const where = `model.params.conditioner_config.params.emb_models[${i}]`;
    if (!isObj(m)) fail(`${where} must be a mapping`);
    const mm = m as Obj;
    const target = typeof mm.target === 'string' ? mm.target : '';
    const p = isObj(mm.params) ? mm.params : {};
    if (/ConcatTimestepEmbedderND$/.test(target)) {
      const d = num(p, 'outdim', `${where}.params`);
      if (timeEmbedDim !== undefined && d !== timeEmbedDim) fail(`${where}.params.outdim ${d} differs from the other size/crop embedders' ${timeEmbedDim}`);
      timeEmbedDim = d;
    } else if (/CLIPEmbedder/.test(target)) {
      textEmbedders.push({ target, layer: typeof p.layer === 'string' ? p.layer : undefined, layerIdx: typeof p.layer_idx === 'number' ? p.layer_idx : undefined });
    } else fail(`${where}.target '${target}' is not supported (SDXL base: FrozenCLIPEmbedder, FrozenOpenCLIPEmbedder2, ConcatTimestepEmbedderND)`);
  });
  return { admInChannels: num(up, 'adm_in_channels', U), timeEmbedDim, textEmbedders };
}
