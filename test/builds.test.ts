// The scalar and SIMD kernel builds are one code (assembly/block.ts, generic over the lane
// type): without FMA they round alike, so the scalar build gives the SIMD build's results
// bit for bit, on every mode, mask shape, head dim and key length, NaN inputs included.
// (The relaxed build fuses multiply-adds and differs in the last bits; it is not compared.)
import { describe, expect, it } from 'vitest';
import { SparseAttention, wasmVariants } from '../dist/index.js';
import { describeCase, inputs, type Case } from './helpers.js';

const CASES: Case[] = [
  { mode: 'all', bs: 32, batch: 2, nCtx: 300, heads: 3, headDim: 20 },
  { mode: 'all', bs: 8, batch: 1, nCtx: 17, heads: 1, headDim: 1, options: { causal: false } },
  { mode: 'local', L: 50, bs: 16, batch: 1, nCtx: 513, heads: 2, headDim: 64, options: { causal: false } },
  { mode: 'local', L: 9, bs: 8, batch: 1, nCtx: 50, heads: 3, headDim: 3 },
  { mode: 'strided', L: 7, bs: 32, batch: 2, nCtx: 400, heads: 2, headDim: 5, keyLengths: [400, 123] },
  { mode: 'fixed', L: 64, bs: 16, batch: 1, nCtx: 333, heads: 4, headDim: 16, options: { numVerts: 2, vertsize: 2 } },
  {
    mode: 'custom', bs: 8, batch: 1, nCtx: 100, heads: 2, headDim: 7,
    options: { layout: (h, qb, kb) => (qb * 7 + kb * 3 + h) % 4 !== 0, mask: (h, i, j) => (i * j + h) % 5 !== 1 },
  },
];

/** Index of the first element that differs (NaN equals NaN), or -1. */
function firstDiff(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return a.length === b.length ? -1 : a.length;
}

function run(c: Case, variant: 'simd' | 'scalar', poison: boolean): Float32Array {
  const { q, k, v } = inputs(c, 7);
  if (poison) {
    q.data[5] = NaN; // one NaN query row
    v.data[v.data.length - 1] = Infinity;
  }
  const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', wasmVariant: variant, ...c.options });
  try {
    return attn.forwardSync(q, k, v, { keyLengths: c.keyLengths }).data;
  } finally {
    attn.dispose();
  }
}

describe.runIf(wasmVariants().includes('simd') && wasmVariants().includes('scalar'))('scalar build = SIMD build', () => {
  it.each(CASES.flatMap((c) => [[describeCase(c), c, false], [`${describeCase(c)} NaN/Inf inputs`, c, true]] as const))(
    '%s: bit-identical',
    (name, c, poison) => {
      const simd = run(c, 'simd', poison);
      const scalar = run(c, 'scalar', poison);
      const i = firstDiff(simd, scalar);
      expect(i, i < 0 ? '' : `${name}: element ${i}: simd ${simd[i]}, scalar ${scalar[i]}`).toBe(-1);
    },
  );
});
