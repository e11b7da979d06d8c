// Determinism: the same inputs on the same path give bit-identical outputs, call after
// call, and — because each output row is computed by one thread in a fixed order whatever
// the task split — across thread counts 1..3 too (per kernel build; forwardSync runs the
// single-threaded build of the same kernel).
import { describe, expect, it } from 'vitest';
import { SparseAttention, wasmVariants } from '../dist/index.js';
import { describeCase, inputs, type Case } from './helpers.js';

const CASES: Case[] = [
  { mode: 'all', bs: 32, batch: 2, nCtx: 300, heads: 3, headDim: 20 },
  { mode: 'local', L: 50, bs: 16, batch: 1, nCtx: 513, heads: 2, headDim: 64, options: { causal: false } },
  { mode: 'strided', L: 7, bs: 32, batch: 2, nCtx: 400, heads: 2, headDim: 5, keyLengths: [400, 123] },
  { mode: 'fixed', L: 64, bs: 16, batch: 1, nCtx: 333, heads: 4, headDim: 16, options: { numVerts: 2, vertsize: 2 } },
  {
    mode: 'custom', bs: 8, batch: 1, nCtx: 100, heads: 2, headDim: 7,
    options: { layout: (h, qb, kb) => (qb * 7 + kb * 3 + h) % 4 !== 0, mask: (h, i, j) => (i * j + h) % 5 !== 1 },
  },
];

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Index of the first element whose bits differ, or -1. */
function firstDiff(a: Float32Array, b: Float32Array): number {
  const x = bits(a);
  const y = bits(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return x.length === y.length ? -1 : x.length;
}

describe.each(wasmVariants())('wasm %s', (variant) => {
  it.each(CASES.map((c) => [describeCase(c), c] as const))('%s: bit-identical over 3 calls × threads 1, 2, 3', async (name, c) => {
    const { q, k, v } = inputs(c, 42);
    const fo = { keyLengths: c.keyLengths };
    let first: Float32Array | null = null;
    for (const threads of [1, 2, 3]) {
      const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', wasmVariant: variant, threads, ...c.options });
      for (let rep = 0; rep < 3; rep++) {
        const out = (await attn.forward(q, k, v, fo)).data;
        first ??= out;
        const at = firstDiff(out, first);
        expect(at, `${variant} ${name}: threads ${threads} call ${rep} differs at ${at}: ${out[at]} vs ${first[at]}`).toBe(-1);
      }
      attn.dispose();
    }
    // forwardSync: same kernel source, single-threaded build
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', wasmVariant: variant, ...c.options });
    for (let rep = 0; rep < 2; rep++) {
      const out = attn.forwardSync(q, k, v, fo).data;
      const at = firstDiff(out, first!);
      expect(at, `${variant} ${name}: forwardSync call ${rep} differs at ${at}: ${out[at]} vs ${first![at]}`).toBe(-1);
    }
    attn.dispose();
  });
});
