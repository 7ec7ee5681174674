// Metrics for edited and generated images: CLIP score and CLIP-I (torchmetrics' CLIPScore on transformers'
// CLIPModel and CLIPImageProcessor) and LPIPS v0.1 (Zhang et al.) on AlexNet or VGG16.
export { MetricLoadError, MetricInputError, sourceKind, type MetricHubOptions } from './common.js';
export {
  OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, clipPixelValues, defaultProcessorConfig, parseProcessorConfig, pilResize,
  readProcessorConfig, resizedSize, type CLIPImageProcessorConfig, type PilFilter, type ResizeBackend,
} from './clip-preprocess.js';
export { CLIPScorer, clipHubPatterns, loadCLIPTokenizer, type CLIPScorerOptions, type ImageInput } from './clip-score.js';
export { LPIPS, LPIPS_TRUNKS, lpipsCheckpointKey, type LPIPSLoadOptions, type LPIPSNet } from './lpips.js';
