// Concurrency: 200 forward() calls in flight at once, on one instance and spread over
// several instances (mixed modes, shapes, thread counts and kernel builds, so some share
// an engine and some do not), interleaved with forwardSync: every result is the right one
// for its own inputs (no buffer interleaving), and all settle (no deadlock).
import { describe, expect, it } from 'vitest';
import { SparseAttention, wasmVariants } from '../dist/index.js';
import { describeCase, expectClose, inputs, reference, type Case } from './helpers.js';

const SHAPES: Case[] = [
  { mode: 'all', bs: 16, batch: 2, nCtx: 37, heads: 2, headDim: 8 },
  { mode: 'all', bs: 16, batch: 1, nCtx: 130, heads: 2, headDim: 4 },
  { mode: 'all', bs: 16, batch: 3, nCtx: 5, heads: 2, headDim: 17 },
  { mode: 'all', bs: 16, batch: 1, nCtx: 64, heads: 2, headDim: 32, keyLengths: [20] },
];

/** Calls in flight at once, each with its own seeded inputs; resolves with the failures. */
async function flood(calls: { attn: SparseAttention; c: Case; seed: number; sync?: boolean }[]): Promise<string[]> {
  const failures: string[] = [];
  const pending = calls.map(({ attn, c, seed, sync }, i) => {
    const { q, k, v } = inputs(c, seed);
    const check = (data: Float32Array) => {
      try {
        expectClose(data, reference(c, seed), 1e-5, 1e-4, `call ${i} seed ${seed} ${describeCase(c)}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    };
    if (sync) {
      check(attn.forwardSync(q, k, v, { keyLengths: c.keyLengths }).data);
      return Promise.resolve();
    }
    return attn.forward(q, k, v, { keyLengths: c.keyLengths }).then((o) => check(o.data));
  });
  await Promise.all(pending);
  return failures;
}

describe('200 calls in flight', () => {
  it('on one instance (3 threads), mixed shapes and seeds', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'wasm', threads: 3 });
    const calls = Array.from({ length: 200 }, (_, i) => ({ attn, c: SHAPES[i % SHAPES.length], seed: 1000 + i }));
    expect(await flood(calls)).toEqual([]); // a deadlock is caught by the test's timeout, not by timing
    attn.dispose();
  });

  it('across 8 instances: modes, threads 1..3, every kernel build, forwardSync in between', async () => {
    const variants = wasmVariants();
    const configs: [Case, number][] = [
      [{ mode: 'local', L: 9, bs: 16, batch: 2, nCtx: 70, heads: 2, headDim: 8 }, 1],
      [{ mode: 'strided', L: 5, bs: 16, batch: 1, nCtx: 90, heads: 3, headDim: 6 }, 2],
      [{ mode: 'fixed', L: 32, bs: 16, batch: 1, nCtx: 100, heads: 2, headDim: 8, options: { causal: false } }, 3],
      [{ mode: 'all', bs: 32, batch: 2, nCtx: 50, heads: 1, headDim: 3 }, 2],
      [{ mode: 'custom', bs: 8, batch: 1, nCtx: 30, heads: 2, headDim: 5, options: { layout: [[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0], [0, 1, 0, 1]] } }, 3],
      [{ mode: 'local', L: 40, bs: 64, batch: 1, nCtx: 200, heads: 4, headDim: 16, options: { causal: false } }, 3],
      [{ mode: 'strided', L: 3, bs: 8, batch: 3, nCtx: 25, heads: 2, headDim: 2, keyLengths: [25, 0, 11] }, 1],
      [{ mode: 'all', bs: 16, batch: 1, nCtx: 33, heads: 2, headDim: 12, options: { causal: false } }, 2],
    ];
    const instances = configs.map(([c, threads], i) =>
      new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads, wasmVariant: variants[i % variants.length], ...c.options }));
    const calls = Array.from({ length: 200 }, (_, i) => {
      const j = (i * 5) % configs.length;
      return { attn: instances[j], c: configs[j][0], seed: 5000 + i, sync: i % 10 === 9 };
    });
    expect(await flood(calls)).toEqual([]);
    instances.forEach((a) => a.dispose());
  });
});
