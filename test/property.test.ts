// Property tests: 300 seeded random configurations (scripts/lib/property.mjs: every mode,
// causal or not, L, blocksize 8..128, threads 1..3, batch, heads, headDim 1..160, nCtx
// 1..3000, key lengths, custom layouts with empty block rows and token masks, imported as
// ONNX Runtime's or Flex's block lists, masks per pair or per block; on half of them the
// score modifiers softcap, ALiBi, sinks, scale and the lse output) on every
// CPU path against the float64 reference; inputs must stay unchanged and the output must
// alias none of them. A failure prints the seed and configuration; replay it with
// `node scripts/property.mjs --replay <seed> --budget 1e7 --mods`. The nightly-style run is
// `node scripts/property.mjs --cases 2000 --seed N`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lib from '../dist/index.js';
import { checkCase, makeCase } from '../scripts/lib/property.mjs';
import { type PathUnderTest, wasmPaths } from './backends.js';

const CASES = 300;
const SEED = 900_001;
const BUDGET = 1e7; // reference work per case: keeps the whole file at a few seconds

// One path per build (the case sets the thread count), forwardSync, and createTensor in/out.
const paths: (PathUnderTest & { resident?: boolean })[] = [
  ...wasmPaths()
    .filter((p) => p.sync || p.options.threads === 1)
    .map((p) => ({ ...p, name: p.name.replace(/ 1 thread$/, '') })),
  { name: 'wasm createTensor in/out', options: { backend: 'wasm' }, resident: true, atol: 1e-5, rtol: 1e-4 },
];

describe(`property: ${CASES} random configurations × ${paths.map((p) => p.name).join(', ')}`, () => {
  // Instances that keep each build's engine and 3-worker pool alive between cases.
  const keep: lib.SparseAttention[] = [];
  beforeAll(async () => {
    const one = { data: new Float32Array(4), shape: [1, 1, 4] };
    for (const p of paths.filter((p) => !p.sync)) {
      const a = new lib.SparseAttention(1, 'all', undefined, 8, { ...p.options, threads: 3 });
      await a.forward(one, one, one);
      keep.push(a);
    }
  });
  afterAll(() => keep.forEach((a) => a.dispose()));

  const seeds = Array.from({ length: CASES }, (_, i) => SEED + i);
  it.each(seeds)('seed %i', async (seed) => {
    const c = makeCase(seed, BUDGET, { mods: true });
    const failures = await checkCase(lib, c, paths);
    expect(failures, `replay: node scripts/property.mjs --replay ${seed} --budget ${BUDGET} --mods`).toEqual([]);
  });

  it('the configurations cover what they claim', () => {
    const cs = seeds.map((s) => makeCase(s, BUDGET, { mods: true }));
    const modes = new Set(cs.map((c) => `${c.mode}${c.mode === 'custom' ? '' : c.causal}`));
    expect(modes.size).toBe(9); // 4 modes × causal/bidirectional + custom
    expect(new Set(cs.map((c) => c.bs))).toEqual(new Set([8, 16, 32, 64, 128]));
    expect(new Set(cs.map((c) => c.threads))).toEqual(new Set([1, 2, 3]));
    expect(Math.max(...cs.map((c) => c.headDim))).toBeGreaterThanOrEqual(128);
    expect(Math.max(...cs.map((c) => c.nCtx))).toBeGreaterThanOrEqual(1000);
    expect(cs.some((c) => c.nCtx === 1)).toBe(true);
    expect(cs.some((c) => c.headDim % 4 !== 0)).toBe(true);
    expect(cs.some((c) => c.keyLengths?.includes(0))).toBe(true);
    expect(cs.some((c) => c.mode === 'custom' && c.emptyRows && c.tokenMask)).toBe(true);
    for (const form of ['onnx', 'flex']) expect(cs.some((c) => c.layoutForm === form && c.maskForm === 'blocks')).toBe(true);
    expect(cs.some((c) => c.batch > 1 && c.heads > 1)).toBe(true);
    for (const m of ['softcap', 'alibi', 'sinks', 'scale', 'lse'] as const) expect(cs.filter((c) => c[m]).length, m).toBeGreaterThan(30);
    expect(cs.some((c) => c.softcap && c.alibi && c.sinks && c.lse)).toBe(true);
  });
});
