// Candidate scoring with the Shapes-64 domain CLIP (models/shapes-64/clip): CLIP score of 64x64
// images to a text, and CLIP-I to the input, as src/pipelines/imagic/auto.ts wants them.
import { noGrad, tidy, type Tensor } from '../engine/index.js';
import { CLIPTokenizer, loadCLIPModel, normalize } from '../models/clip/index.js';
import type { CandidateScorer } from '../pipelines/imagic/auto.js';
import { shapesClipPixels } from './train/clip.js';

export function loadShapesClipScorer(dir: string): CandidateScorer & { dispose(): void } {
  const model = loadCLIPModel(dir);
  const tok = CLIPTokenizer.fromDir(dir);
  const embed = (images: Tensor) => normalize(model.getImageFeatures(shapesClipPixels(images)));
  return {
    names: { alignment: 'CLIP score (shapes-64 CLIP)', preservation: 'CLIP-I to the input (shapes-64 CLIP)' },
    alignment: (images, text) => noGrad(() => tidy(() => {
      const t = normalize(model.getTextFeatures(tok.call([text]).inputIds)); // [1, P]
      return embed(images).matmul(t.transpose(0, 1)).squeeze(1).clamp(0, null).mul(100).toArray() as number[];
    })),
    preservation: (images, input) => noGrad(() => tidy(() => embed(images).matmul(embed(input).transpose(0, 1)).squeeze(1).toArray() as number[])),
    dispose: () => model.dispose(),
  };
}
