// CLIP for Stable Diffusion v1: the BPE tokenizer, the text encoder, and the full CLIPModel for the CLIP score.
export * from './config.js';
export { CLIPTokenizer, CLIPTokenizerError, cleanText, readVocab, readMerges, type CLIPTokenizerOptions, type CallOptions, type Encoding } from './tokenizer.js';
export { CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPEncoder, CLIPInputError, applyActivation, type CLIPBuildOptions, type CLIPEncoderOutput, type AttentionMasking } from './encoder.js';
export { CLIPTextModel, CLIPTextEmbeddings, CLIP_TEXT_IGNORE_KEYS, CLIP_TEXT_LEGACY_PREFIX, clipTextCheckpointKey, gatherRows, type CLIPTextModelOutput, type CLIPTextForwardOptions } from './text-model.js';
export { CLIPTextModelWithProjection, type CLIPTextModelWithProjectionOutput } from './text-model-with-projection.js';
export { CLIPVisionModel, CLIPVisionEmbeddings, CLIP_VISION_IGNORE_KEYS, type CLIPVisionModelOutput } from './vision-model.js';
export { CLIPModel, CLIP_MODEL_IGNORE_KEYS, normalize, type CLIPModelOutput } from './clip-model.js';
export { loadCLIPTextModel, loadCLIPTextModelWithProjection, loadCLIPModel, readConfigJson, type FromPretrainedOptions } from './pretrained.js';
