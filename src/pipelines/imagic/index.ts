// Imagic: text-based editing of a real image (Kawar et al., CVPR 2023) on Stable Diffusion.
export * from './presets.js';
export * from './stages.js';
export * from './session.js';
export * from './edit.js';
export * from './auto.js';
export * from './clip-source.js';
