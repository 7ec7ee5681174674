// Scheduler configs: diffusers defaults, a PNDM config (what SD v1 checkpoints ship) read as DDIM, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DDIMScheduler, DDIM_DEFAULTS, loadDDIMConfig, parseDDIMConfig, parseDDPMConfig, SD_V1_DDIM_CONFIG, SchedulerConfigError,
} from '../../src/schedulers/index.js';
import { fixturePath } from '../fixtures.js';
import { golden, goldenJson, maxAbsDiff } from './golden.js';

// CompVis/stable-diffusion-v1-4 scheduler/scheduler_config.json, as published on the Hub
const PNDM_SD_V1 = {
  _class_name: 'PNDMScheduler', _diffusers_version: '0.7.0.dev0', beta_end: 0.012, beta_schedule: 'scaled_linear',
  beta_start: 0.00085, num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1,
  trained_betas: null,
};

test('the tiny-sd DDIM scheduler_config.json reads without warnings and gives the SD v1 schedule', () => {
  const { config, className, warnings } = loadDDIMConfig(fixturePath('golden/tiny-sd'));
  assert.equal(className, 'DDIMScheduler');
  assert.deepEqual(warnings, []);
  assert.deepEqual(config, { ...SD_V1_DDIM_CONFIG });
  const s = DDIMScheduler.fromPretrained(fixturePath('golden/tiny-sd/scheduler'));
  s.setTimesteps(50);
  assert.deepEqual(s.timesteps, goldenJson.ddim_timesteps_50);
});

test('a PNDMScheduler config is read as DDIM with a warning, and samples with the golden schedule', () => {
  const { config, className, warnings } = parseDDIMConfig(PNDM_SD_V1);
  assert.equal(className, 'PNDMScheduler');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /PNDMScheduler config read as a DDIMScheduler config/);
  assert.equal(config.clip_sample, false, 'PNDM never clips: a missing clip_sample is false, not DDIM\'s true');
  assert.deepEqual(config, { ...SD_V1_DDIM_CONFIG });
  const seen: string[] = [];
  const s = DDIMScheduler.fromConfig(PNDM_SD_V1, (w) => seen.push(w));
  assert.equal(seen.length, 1);
  assert.ok(maxAbsDiff(s.alphasCumprod, golden('sched.alphas_cumprod')) <= 1e-7);
  s.setTimesteps(10);
  assert.deepEqual(s.timesteps, goldenJson.ddim_timesteps_10);
  // from a folder laid out like a Hub checkpoint
  const dir = mkdtempSync(path.join(tmpdir(), 'imagic-sched-'));
  try {
    mkdirSync(path.join(dir, 'scheduler'));
    writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(PNDM_SD_V1));
    const r = loadDDIMConfig(dir);
    assert.equal(r.className, 'PNDMScheduler');
    assert.match(r.warnings[0]!, /scheduler_config\.json: PNDMScheduler/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown class is read as DDIM with a warning; missing keys take diffusers defaults', () => {
  const r = parseDDIMConfig({ _class_name: 'EulerDiscreteScheduler', beta_schedule: 'scaled_linear', clip_sample: true, use_karras_sigmas: true });
  assert.match(r.warnings[0]!, /EulerDiscreteScheduler/);
  assert.equal(r.config.clip_sample, true, 'an explicit value is kept');
  const d = parseDDIMConfig({});
  assert.deepEqual(d.config, { ...DDIM_DEFAULTS });
  assert.equal(d.config.clip_sample, true);
  assert.equal(d.config.set_alpha_to_one, true);
  assert.equal(d.config.beta_schedule, 'linear');
  assert.equal(parseDDPMConfig({}).config.variance_type, 'fixed_small');
  assert.equal(parseDDIMConfig({ prediction_type: null }).config.prediction_type, 'epsilon', 'JSON null is the default');
});

test('bad configs give clear errors', () => {
  assert.throws(() => parseDDIMConfig({ beta_schedule: 'sigmoid' }), /beta_schedule must be one of linear, scaled_linear, squaredcos_cap_v2, got "sigmoid"/);
  assert.throws(() => parseDDIMConfig({ num_train_timesteps: -3 }), /num_train_timesteps must be a positive integer/);
  assert.throws(() => parseDDIMConfig({ timestep_spacing: 'even' }), /timestep_spacing must be one of/);
  assert.throws(() => parseDDIMConfig({ prediction_type: 'x0' }), /prediction_type must be one of/);
  assert.throws(() => parseDDIMConfig({ set_alpha_to_one: 'no' }), /set_alpha_to_one must be true or false/);
  assert.throws(() => parseDDIMConfig({ beta_start: 0.5, beta_end: 0.1 }), /0 < beta_start <= beta_end < 1/);
  assert.throws(() => parseDDIMConfig([1, 2]), SchedulerConfigError);
  assert.throws(() => loadDDIMConfig('/nonexistent/scheduler_config.json'), /cannot read scheduler config/);
  const dir = mkdtempSync(path.join(tmpdir(), 'imagic-sched-'));
  try {
    writeFileSync(path.join(dir, 'scheduler_config.json'), '{not json');
    assert.throws(() => loadDDIMConfig(dir), /not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
