// Reading and writing checkpoints and configs: safetensors, diffusers folders, streaming loads.
export * from './safetensors.js';
export * from './config.js';
export * from './diffusers.js';
export * from './load.js';
export * from './sheet.js';
