// Neural-network building blocks over the engine.
export { Module, ModuleList, StateDictError, type LoadOptions } from './module.js';
export { Linear, Conv2d, GroupNorm, LayerNorm, Embedding, uniformInit, type Adapter, type InitOptions, type Conv2dOptions } from './layers.js';
export { checkpointedBackward, type Segment } from './checkpoint.js';
export { LoRA, LORA_TARGETS, loraMergedWeightNames, type LoRAOptions, type LoRATargets } from './lora.js';
