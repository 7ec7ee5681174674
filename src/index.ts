/**
 * imagic: text-based editing of real photos with diffusion models (Imagic on Stable Diffusion v1.x),
 * on libtorch from TypeScript. This is the package's main entry point (`import ... from 'imagic'`):
 * loading a model, Imagic edits with progress and cancellation, renders from a saved session, the
 * baselines, text-to-image, scores, and images in and out. Tensors are in 'imagic/engine'; the
 * models, schedulers and lower-level pipelines in 'imagic/models'.
 *
 * @module imagic
 */
export { VERSION } from './version.js';
export { EMBEDDED_MODEL, Pipeline, loadPipeline, type LoadOptions, type Progress, type RunOptions } from './api/pipeline.js';
export { edit, render, type EditOptions, type EditOutput, type EditedImage, type RenderChoices, type Seed } from './api/edit.js';
export { compare, ddimInversion, sdedit, type BaselineOptions, type CompareOptions, type CompareOutput, type MethodResult } from './api/baselines.js';
export { generate, type GenerateOptions } from './api/generate.js';
export { loadScorer, type Scorer, type ScorerOptions } from './api/scores.js';
export { toRgbImage, type ImageSource } from './api/input.js';
export { ImageError, encodePng, prepareImage, readImage, writePng, type PrepareMode, type PrepareOptions, type ReadImageOptions, type RgbImage, type WritePngOptions } from './io/image.js';
export { contactSheet, type ContactSheetOptions, type SheetColor } from './io/sheet.js';
export { CLIPScorer, LPIPS, type CLIPScorerOptions, type ImageInput, type LPIPSLoadOptions, type LPIPSNet, type MetricHubOptions } from './metrics/index.js';
export type { CLIPImageProcessorConfig, PilFilter, ResizeBackend } from './metrics/clip-preprocess.js';
export { PRESETS, TRAIN_MODES, resolveSettings, type ImagicSettings, type PresetName, type TrainMode } from './pipelines/imagic/presets.js';
export { EditSession, SessionError } from './pipelines/imagic/session.js';
export type { PreservationMetric } from './pipelines/imagic/auto.js';
export { HubError, hfHubDownload, snapshotDownload, type HubErrorCode, type HubDownloadOptions, type HubProgress, type SnapshotDownloadOptions } from './io/hub.js';
