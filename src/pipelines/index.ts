// Pipelines: loading a Stable Diffusion checkpoint, and what is built on it.
export * from './stable-diffusion.js';
export * from './text2img.js';
export * as imagic from './imagic/index.js';
export * from './img2img.js';
export * from './ddim-inversion.js';
