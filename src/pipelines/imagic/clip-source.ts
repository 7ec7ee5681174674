// Which CLIP scores Imagic's candidates for a model: the one given, the model folder's own clip/, or
// CLIP ViT-L/14 from the Hub (the one Stable Diffusion v1's text encoder comes from). Used by the CLI and the server.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { isShapesModel } from '../../shapes/domain.js';

/** The CLIP for models that ship none: the one Stable Diffusion v1's text encoder comes from. */
export const DEFAULT_HUB_CLIP = 'openai/clip-vit-large-patch14';

export interface ClipSource {
  /** A folder or a Hub repo id. */
  source: string;
  /** Short, for tables and plots: 'shapes-64/clip', 'openai/clip-vit-large-patch14'. */
  name: string;
  /** 'option': --clip-model; 'model': the model folder's clip/; 'hub-default': DEFAULT_HUB_CLIP. */
  origin: 'option' | 'model' | 'hub-default';
}

function clipName(source: string): string {
  if (!existsSync(source)) return source; // a repo id
  const abs = path.resolve(source);
  const base = path.basename(abs);
  return base === 'clip' ? `${path.basename(path.dirname(abs))}/clip` : base;
}

/** Says what to do when no CLIP can be had (`auto`: the choice needs one; otherwise --metrics does). */
export function clipHint(auto: boolean): string {
  return `give a CLIP with --clip-model <dir|repo-id> (a transformers CLIPModel folder or a Hub repo id)${auto ? ', or choose eta yourself (e.g. --eta 0.7) to skip the automatic choice' : ', or leave out --metrics'}`;
}

/** --clip-model, else `<model>/clip` when the model folder has one, else DEFAULT_HUB_CLIP (not for Shapes-64: CLIP ViT-L knows nothing of it). */
export function resolveClipSource(model: string, clipModel: string | undefined, auto: boolean): ClipSource {
  if (clipModel !== undefined) return { source: clipModel, name: clipName(clipModel), origin: 'option' };
  const own = path.join(model, 'clip');
  if (existsSync(own) && statSync(own).isDirectory()) return { source: own, name: clipName(own), origin: 'model' };
  if (isShapesModel(model)) {
    throw new Error(`no CLIP to score the candidates: the Shapes-64 model at ${model} has no clip/ folder (an older export?), and a general CLIP would not know its pictures; ${clipHint(auto)}`);
  }
  return { source: DEFAULT_HUB_CLIP, name: DEFAULT_HUB_CLIP, origin: 'hub-default' };
}

