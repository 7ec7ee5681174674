// Training the embedded Shapes-64 model from scratch, and exporting it as a diffusers folder.
export * from './configs.js';
export * from './data.js';
export * from './trainer.js';
export * from './export.js';
export { readRun, type RunJson, type TrainPhase } from './run.js';
