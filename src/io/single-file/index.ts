// Single-file Stable Diffusion checkpoints (LDM layout for SD v1 and SD 2.x, sgm layout for SDXL base): detection, loading, conversion.
export { detectLdmArchitecture, SingleFileError, type DetectOptions, type LdmArchitecture, type ShapeMap } from './detect.js';
export { readLdmYaml, parseLdmYaml, LdmConfigError, type LdmYaml } from './yaml-config.js';
export { inspectSingleFile, loadSingleFile, planSingleFile, type SingleFileItem, type SingleFileModels, type SingleFileOptions, type SingleFilePlan } from './load.js';
export { convertSingleFile, type ConvertOptions, type ConvertResult } from './convert.js';
export { isSingleFileCheckpoint, openTensorSource, SINGLE_FILE_EXTENSIONS, type TensorSource } from './source.js';
export { skipReason, SCHEDULE_BUFFERS, type LdmComponent, type LdmTransform } from './keys.js';
