// Property tests on the WebGPU path: seeded random configurations (scripts/lib/property.mjs,
// as test/property.test.ts runs them on the CPU paths) against the float64 reference at the
// WebGPU tolerance, on whatever adapter this machine has (CI: lavapipe). The nightly-style
// run is `node scripts/property.mjs --gpu --cases 2000 --seed N`.
import { describe, expect, it } from 'vitest';
import * as lib from '../dist/index.js';
import { gpuPaths } from '../scripts/lib/paths.mjs';
import { checkCase, makeCase } from '../scripts/lib/property.mjs';
import { REQUIRE_GPU, probeAdapter } from './gpu-env.js';

const CASES = 100;
const SEED = 950_001;
const BUDGET = 1e7;
const adapter = probeAdapter();

describe.runIf(adapter.ok || REQUIRE_GPU)(`webgpu property: ${CASES} random configurations`, () => {
  const seeds = Array.from({ length: CASES }, (_, i) => SEED + i);
  it.each(seeds)('seed %i', async (seed) => {
    const failures = await checkCase(lib, makeCase(seed, BUDGET), gpuPaths());
    expect(failures, `replay: node scripts/property.mjs --gpu --replay ${seed} --budget ${BUDGET}`).toEqual([]);
  });
});
