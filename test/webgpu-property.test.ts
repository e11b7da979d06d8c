// Property tests on the WebGPU path: seeded random configurations (scripts/lib/property.mjs,
// as test/property.test.ts runs them on the CPU paths) against the float64 reference at the
// WebGPU tolerance, on whatever adapter this machine has (CI: lavapipe). `npm test` runs a
// fixed 20 seeds (60 with SPARSE_ATTENTION_GPU_FULL=1, as CI runs) on the default kernel and
// the Q_TILE kernel: random head dims, block sizes and inference shapes keep bringing new
// pipelines, each 2–7 CPU-seconds for lavapipe to compile on a fresh machine (the first 30
// seeds needed 19 when the inference dimensions joined the draws).
// SPARSE_ATTENTION_GPU_PROPERTY_CASES=N runs the first N instead; the nightly-style run is
// `node scripts/property.mjs --gpu --cases 2000 --seed N --mods`.
import { describe, expect, it, vi } from 'vitest';
import * as lib from '../dist/index.js';
import { gpuPaths } from '../scripts/lib/paths.mjs';
import { checkCase, makeCase } from '../scripts/lib/property.mjs';
import { GPU_TIMEOUT, REQUIRE_GPU, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { GPU_FULL } from './optional.js';

const CASES = Number(process.env.SPARSE_ATTENTION_GPU_PROPERTY_CASES ?? (GPU_FULL ? 60 : 20));
const SEED = 950_001;
const BUDGET = 1e7;
const adapter = probeAdapter();
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
// checkCase() creates and disposes an instance per path and case: the held device keeps
// the pipelines compiled from case to case.
holdSharedDevice(adapter.ok);

describe.runIf(adapter.ok || REQUIRE_GPU)(`webgpu property: ${CASES} random configurations`, () => {
  if (!Number.isInteger(CASES) || CASES < 1) throw new Error(`SPARSE_ATTENTION_GPU_PROPERTY_CASES must be a positive integer (got ${process.env.SPARSE_ATTENTION_GPU_PROPERTY_CASES})`);
  const seeds = Array.from({ length: CASES }, (_, i) => SEED + i);
  it.each(seeds)('seed %i', async (seed) => {
    const failures = await checkCase(lib, makeCase(seed, BUDGET), gpuPaths());
    expect(failures, `replay: node scripts/property.mjs --gpu --replay ${seed} --budget ${BUDGET}`).toEqual([]);
  });
});
