// Noise schedulers (engine-only dependencies): DDIM for sampling and inversion, DDPM for ancestral sampling.
export * from './config.js';
export { DDIMScheduler, type DDIMStepOptions, type SchedulerStepOutput } from './ddim.js';
export { DDPMScheduler, type DDPMStepOptions } from './ddpm.js';
export { SchedulerError, makeBetas, cumprodAlphas, inferenceTimesteps, roundHalfEven } from './schedule.js';
