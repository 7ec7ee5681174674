// The Shapes-64 domain (docs/shapes-64.md): spec, renderer, captions, evaluator, tokenizer, quality.
export * from './spec.js';
export * from './render.js';
export * from './captions.js';
export * from './evaluate.js';
export * from './tokenizer.js';
export * from './quality.js';
export * from './domain.js';
