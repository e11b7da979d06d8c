// 'longformer' and 'bigbird' (DeepSpeed's block patterns): the block layouts on small
// examples written out by hand from DeepSpeed's definitions, the seeded random draw, and
// option errors. Numerical conformance on every path is in the conformance suites.
import { describe, expect, it } from 'vitest';
import { SparseAttention, SparseAttentionError } from '../dist/index.js';
import { namedRow, randomBlocks, type NamedPatternParams } from '../src/layout/named.js';

const base: NamedPatternParams = {
  mode: 'longformer', numSlidingWindowBlocks: 3, globalBlockIndices: [0], globalBlockEndIndices: null,
  numGlobalBlocks: 1, numRandomBlocks: 1, seed: 0, causal: false,
};
const matrix = (p: NamedPatternParams, nB: number, head = 0) =>
  Array.from({ length: nB }, (_, qb) => {
    const row = new Set(namedRow(p, head, qb, nB));
    return Array.from({ length: nB }, (_, kb) => (row.has(kb) ? 1 : 0)).join('');
  });

describe('longformer blocks (DeepSpeed BSLongformerSparsityConfig)', () => {
  it('window 3, global block 0, bidirectional', () => {
    // row 0 is global (attends to all); column 0 is attended by all; a window of one block each side
    expect(matrix(base, 6)).toEqual(['111111', '111000', '111100', '101110', '100111', '100011']);
  });
  it('global ranges [2, 4) with window 1, causal', () => {
    const p = { ...base, numSlidingWindowBlocks: 1, globalBlockIndices: [2], globalBlockEndIndices: [4], causal: true };
    // window 1 = the diagonal block; rows 2, 3 global (cut at the diagonal); columns 2, 3 from row 2 on
    expect(matrix(p, 6)).toEqual(['100000', '010000', '111000', '111100', '001110', '001101']);
  });
});

describe('bigbird blocks (DeepSpeed BigBirdSparsityConfig)', () => {
  it('global, window and one seeded random block per row; causal draws from [0, qb]', () => {
    const p: NamedPatternParams = { ...base, mode: 'bigbird', numGlobalBlocks: 1, numRandomBlocks: 1, seed: 3, causal: true };
    for (let qb = 0; qb < 50; qb++) {
      const drawn = randomBlocks(p, 0, qb, 50);
      expect(drawn).toHaveLength(1);
      expect(drawn[0]).toBeLessThanOrEqual(qb);
      const row = namedRow(p, 0, qb, 50);
      expect(row).toContain(0);
      expect(row).toContain(qb);
      expect(row).toContain(drawn[0]);
      for (const kb of row) expect(kb).toBeLessThanOrEqual(qb);
    }
  });
  it('the draw is distinct, reproducible, and changes with seed and head', () => {
    const p: NamedPatternParams = { ...base, mode: 'bigbird', numRandomBlocks: 5, seed: 9 };
    const a = randomBlocks(p, 0, 10, 40);
    expect(new Set(a).size).toBe(5);
    expect(randomBlocks(p, 0, 10, 40)).toEqual(a);
    expect(randomBlocks({ ...p, seed: 10 }, 0, 10, 40)).not.toEqual(a);
    expect(randomBlocks(p, 1, 10, 40)).not.toEqual(a);
    expect(randomBlocks({ ...p, numRandomBlocks: 99 }, 0, 3, 4)).toEqual([0, 1, 2, 3]);
  });
});

describe('pattern options', () => {
  const bad: [string, () => unknown, RegExp][] = [
    ['window on all', () => new SparseAttention(2, 'all', undefined, 16, { numSlidingWindowBlocks: 3 }), /options\.numSlidingWindowBlocks must be undefined for mode 'all' \(it applies to 'longformer' and 'bigbird'\)/],
    ['random on longformer', () => new SparseAttention(2, 'longformer', undefined, 16, { numRandomBlocks: 1 }), /options\.numRandomBlocks must be undefined for mode 'longformer' \(it applies to 'bigbird'\)/],
    ['global index -1', () => new SparseAttention(2, 'longformer', undefined, 16, { globalBlockIndices: [-1] }), /options\.globalBlockIndices\[0\] must be a block index/],
    ['end before start', () => new SparseAttention(2, 'longformer', undefined, 16, { globalBlockIndices: [3], globalBlockEndIndices: [3] }), /options\.globalBlockEndIndices\[0\] must be greater than globalBlockIndices\[0\] \(3\)/],
    ['ends count', () => new SparseAttention(2, 'longformer', undefined, 16, { globalBlockIndices: [0, 5], globalBlockEndIndices: [2] }), /one end per start/],
    ['seed 1.5', () => new SparseAttention(2, 'bigbird', undefined, 16, { seed: 1.5 }), /options\.seed must be an integer 0 to 2\^32 - 1/],
    ['window 0', () => new SparseAttention(2, 'bigbird', undefined, 16, { numSlidingWindowBlocks: 0 }), /options\.numSlidingWindowBlocks must be a positive integer/],
    ['L given', () => new SparseAttention(2, 'bigbird', 32, 16), /localAttnCtx must be undefined for mode 'bigbird'/],
  ];
  it.each(bad)('%s', (_n, make, message) => {
    let err: unknown = null;
    try {
      make();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SparseAttentionError);
    expect((err as { code: string }).code).toBe('ERR_ARGUMENT');
    expect((err as Error).message).toMatch(message);
  });
  it('plan() counts the pattern: bigbird with one random block visits window + global + random blocks', () => {
    const attn = new SparseAttention(2, 'bigbird', undefined, 16, { causal: false, numRandomBlocks: 0, numGlobalBlocks: 0 });
    // 10 blocks, window 3 (1 each side): 3 per row, 2 at the ends; summed over the 2 heads
    expect(attn.plan([1, 160, 16]).blocksVisited).toBe(2 * (2 * 2 + 8 * 3));
    attn.dispose();
  });
});
