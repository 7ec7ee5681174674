// The UNet's down, mid and up blocks with their skip-connection bookkeeping, as diffusers'
// models/unets/unet_2d_blocks.py (CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn,
// UpBlock2D, CrossAttnUpBlock2D). Each block is its own callable module (a unit for checkpointing).
import { cat, tidy, type Tensor } from '../../engine/index.js';
import { Module, ModuleList, type InitOptions } from '../../nn/index.js';
import { Transformer2DModel } from './attention.js';
import { initOf, type ActivationName } from './config.js';
import { Downsample2D, ResnetBlock2D, Upsample2D } from './resnet.js';

/** What every block shares (from the UNet config). */
export interface BlockOptions extends InitOptions {
  tembChannels: number;
  numLayers: number;
  resnetEps: number;
  resnetGroups: number;
  resnetActFn: ActivationName;
  resnetTimeScaleShift: 'default' | 'scale_shift';
  dropout: number;
}

/** What the blocks with attention add. */
export interface CrossAttnOptions {
  crossAttentionDim: number;
  /** The head count (diffusers' num_attention_heads; attention_head_dim in SD v1 configs). */
  numAttentionHeads: number;
  transformerLayersPerBlock: number;
  useLinearProjection: boolean;
  onlyCrossAttention: boolean;
  upcastAttention: boolean;
}

/** A down block's result: the downsampled map and every map it adds to the skip connections. */
export interface DownBlockOutput {
  hiddenStates: Tensor;
  resSamples: Tensor[];
}

export interface DownBlock {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;
  forward(hiddenStates: Tensor, temb: Tensor, encoderHiddenStates: Tensor | null): DownBlockOutput;
}
export interface UpBlock {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;
  forward(hiddenStates: Tensor, resSamples: Tensor[], temb: Tensor, encoderHiddenStates: Tensor | null, upsampleSize?: [number, number] | null): Tensor;
}

function resnet(o: BlockOptions, inChannels: number, outChannels: number, outputScaleFactor = 1): ResnetBlock2D {
  return new ResnetBlock2D({
    ...initOf(o), inChannels, outChannels, tembChannels: o.tembChannels, groups: o.resnetGroups, eps: o.resnetEps,
    dropout: o.dropout, nonLinearity: o.resnetActFn, timeEmbeddingNorm: o.resnetTimeScaleShift, outputScaleFactor,
  });
}

function transformer(o: BlockOptions & CrossAttnOptions, channels: number): Transformer2DModel {
  return new Transformer2DModel({
    ...initOf(o), numAttentionHeads: o.numAttentionHeads, attentionHeadDim: channels / o.numAttentionHeads, inChannels: channels,
    numLayers: o.transformerLayersPerBlock, dropout: o.dropout, normNumGroups: o.resnetGroups,
    crossAttentionDim: o.crossAttentionDim, useLinearProjection: o.useLinearProjection,
    onlyCrossAttention: o.onlyCrossAttention, upcastAttention: o.upcastAttention,
  });
}

function checkHeads(where: string, channels: number, heads: number): void {
  if (!Number.isInteger(heads) || heads <= 0 || channels % heads !== 0) {
    throw new Error(`${where}: ${channels} channels do not split into ${heads} attention heads`);
  }
}

export interface DownBlockOptions extends BlockOptions {
  inChannels: number;
  outChannels: number;
  addDownsample: boolean;
  downsamplePadding: number;
}

/** numLayers resnets (the first changes the width), then an optional stride-2 downsampler. */
export class DownBlock2D extends Module implements DownBlock {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;
  constructor(o: DownBlockOptions) {
    super();
    const resnets = Array.from({ length: o.numLayers }, (_, i) => resnet(o, i === 0 ? o.inChannels : o.outChannels, o.outChannels));
    this.resnets = this.module('resnets', new ModuleList(resnets));
    this.downsamplers = o.addDownsample
      ? this.module('downsamplers', new ModuleList([new Downsample2D(o.outChannels, o.outChannels, o.downsamplePadding, initOf(o))])) : null;
  }
  /** x [B, Cin, H, W] -> [B, Cout, H/2, W/2], with numLayers (+1) skip maps. */
  forward(hiddenStates: Tensor, temb: Tensor): DownBlockOutput {
    let h = hiddenStates;
    const resSamples: Tensor[] = [];
    for (const r of this.resnets) {
      h = r.forward(h, temb);
      resSamples.push(h);
    }
    if (this.downsamplers !== null) {
      for (const d of this.downsamplers) h = d.forward(h);
      resSamples.push(h);
    }
    return { hiddenStates: h, resSamples };
  }
}

/** As DownBlock2D, with a spatial transformer after each resnet. */
export class CrossAttnDownBlock2D extends Module implements DownBlock {
  readonly attentions: ModuleList<Transformer2DModel>;
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;
  constructor(o: DownBlockOptions & CrossAttnOptions) {
    super();
    checkHeads('CrossAttnDownBlock2D', o.outChannels, o.numAttentionHeads);
    const resnets = Array.from({ length: o.numLayers }, (_, i) => resnet(o, i === 0 ? o.inChannels : o.outChannels, o.outChannels));
    const attentions = Array.from({ length: o.numLayers }, () => transformer(o, o.outChannels));
    // registration order as diffusers (attentions, resnets, downsamplers): state-dict order matches
    this.attentions = this.module('attentions', new ModuleList(attentions));
    this.resnets = this.module('resnets', new ModuleList(resnets));
    this.downsamplers = o.addDownsample
      ? this.module('downsamplers', new ModuleList([new Downsample2D(o.outChannels, o.outChannels, o.downsamplePadding, initOf(o))])) : null;
  }
  forward(hiddenStates: Tensor, temb: Tensor, encoderHiddenStates: Tensor | null): DownBlockOutput {
    let h = hiddenStates;
    const resSamples: Tensor[] = [];
    for (let i = 0; i < this.resnets.length; i++) {
      h = this.resnets.at(i).forward(h, temb);
      h = this.attentions.at(i).forward(h, encoderHiddenStates);
      resSamples.push(h);
    }
    if (this.downsamplers !== null) {
      for (const d of this.downsamplers) h = d.forward(h);
      resSamples.push(h);
    }
    return { hiddenStates: h, resSamples };
  }
}

export interface MidBlockOptions extends BlockOptions {
  inChannels: number;
  outputScaleFactor: number;
}

/** resnet, then (transformer, resnet) x numLayers, all at the innermost width and resolution. */
export class UNetMidBlock2DCrossAttn extends Module {
  readonly attentions: ModuleList<Transformer2DModel>;
  readonly resnets: ModuleList<ResnetBlock2D>;
  constructor(o: MidBlockOptions & CrossAttnOptions) {
    super();
    checkHeads('UNetMidBlock2DCrossAttn', o.inChannels, o.numAttentionHeads);
    const c = o.inChannels;
    const resnets = [resnet(o, c, c, o.outputScaleFactor)];
    const attentions: Transformer2DModel[] = [];
    for (let i = 0; i < o.numLayers; i++) {
      attentions.push(transformer(o, c));
      resnets.push(resnet(o, c, c, o.outputScaleFactor));
    }
    this.attentions = this.module('attentions', new ModuleList(attentions));
    this.resnets = this.module('resnets', new ModuleList(resnets));
  }
  /** [B, C, h, w] -> [B, C, h, w] */
  forward(hiddenStates: Tensor, temb: Tensor, encoderHiddenStates: Tensor | null): Tensor {
    let h = this.resnets.at(0).forward(hiddenStates, temb);
    for (let i = 0; i < this.attentions.length; i++) {
      h = this.attentions.at(i).forward(h, encoderHiddenStates);
      h = this.resnets.at(i + 1).forward(h, temb);
    }
    return h;
  }
}

export interface UpBlockOptions extends BlockOptions {
  /** Width of the skip map the last resnet consumes (the down block input's width). */
  inChannels: number;
  outChannels: number;
  /** Width coming from the previous (deeper) up block. */
  prevOutputChannel: number;
  addUpsample: boolean;
}

/** Input width of resnet i: the running map (prev width, then out) + the skip map it pops. */
function upResnets(o: UpBlockOptions): ResnetBlock2D[] {
  return Array.from({ length: o.numLayers }, (_, i) => {
    const skip = i === o.numLayers - 1 ? o.inChannels : o.outChannels;
    const running = i === 0 ? o.prevOutputChannel : o.outChannels;
    return resnet(o, running + skip, o.outChannels);
  });
}

/** Pops the last skip map and concatenates it to h on channels. */
function popSkip(h: Tensor, resSamples: Tensor[], where: string): Tensor {
  const skip = resSamples.pop();
  if (skip === undefined) throw new Error(`${where}: ran out of skip connections`);
  if (skip.shape[2] !== h.shape[2] || skip.shape[3] !== h.shape[3]) {
    throw new Error(`${where}: skip map [${skip.shape.join(', ')}] does not match the hidden states [${h.shape.join(', ')}]`);
  }
  return cat([h, skip], 1); // [B, C + Cskip, H, W]
}

/**
 * numLayers resnets, each on cat(h, skip), then an optional x2 upsampler (to `upsampleSize` when
 * the down path rounded an odd size up). Consumes its skip maps from the end of `resSamples`.
 */
export class UpBlock2D extends Module implements UpBlock {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;
  constructor(o: UpBlockOptions) {
    super();
    this.resnets = this.module('resnets', new ModuleList(upResnets(o)));
    this.upsamplers = o.addUpsample ? this.module('upsamplers', new ModuleList([new Upsample2D(o.outChannels, o.outChannels, initOf(o))])) : null;
  }
  forward(hiddenStates: Tensor, resSamples: Tensor[], temb: Tensor, _encoderHiddenStates?: Tensor | null, upsampleSize?: [number, number] | null): Tensor {
    const skips = resSamples.slice();
    let h = hiddenStates;
    for (const r of this.resnets) h = tidy(() => r.forward(popSkip(h, skips, 'UpBlock2D'), temb));
    if (this.upsamplers !== null) for (const u of this.upsamplers) h = u.forward(h, upsampleSize);
    return h;
  }
}

/** As UpBlock2D, with a spatial transformer after each resnet. */
export class CrossAttnUpBlock2D extends Module implements UpBlock {
  readonly attentions: ModuleList<Transformer2DModel>;
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;
  constructor(o: UpBlockOptions & CrossAttnOptions) {
    super();
    checkHeads('CrossAttnUpBlock2D', o.outChannels, o.numAttentionHeads);
    const resnets = upResnets(o);
    const attentions = Array.from({ length: o.numLayers }, () => transformer(o, o.outChannels));
    this.attentions = this.module('attentions', new ModuleList(attentions));
    this.resnets = this.module('resnets', new ModuleList(resnets));
    this.upsamplers = o.addUpsample ? this.module('upsamplers', new ModuleList([new Upsample2D(o.outChannels, o.outChannels, initOf(o))])) : null;
  }
  forward(hiddenStates: Tensor, resSamples: Tensor[], temb: Tensor, encoderHiddenStates: Tensor | null, upsampleSize?: [number, number] | null): Tensor {
    const skips = resSamples.slice();
    let h = hiddenStates;
    for (let i = 0; i < this.resnets.length; i++) {
      h = tidy(() => this.resnets.at(i).forward(popSkip(h, skips, 'CrossAttnUpBlock2D'), temb));
      h = this.attentions.at(i).forward(h, encoderHiddenStates);
    }
    if (this.upsamplers !== null) for (const u of this.upsamplers) h = u.forward(h, upsampleSize);
    return h;
  }
}
