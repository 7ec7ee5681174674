// imagic: text-based editing of real photos with diffusion models, on libtorch from TypeScript.
export * as engine from './engine/index.js';
