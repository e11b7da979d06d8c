// The conformance cases: every mode × causal/bidirectional × nCtx around the block size
// (1, bs-1, bs, bs+1, 2bs+1, and one large) × head dims {1, 3, 16, 64, 80}, batch and
// heads > 1, every block size, custom and per-head layouts, key lengths.
import type { Case } from './helpers.js';

const HEAD_DIMS = [1, 3, 16, 64, 80];

export function conformanceCases(): Case[] {
  const cases: Case[] = [];
  const modes: [Case['mode'], number | undefined][] = [['all', undefined], ['local', 5], ['strided', 3], ['fixed', 32]];
  for (const [mode, L] of modes) {
    for (const causal of [true, false]) {
      const bs = mode === 'fixed' ? 16 : 16;
      const sizes = [1, bs - 1, bs, bs + 1, 2 * bs + 1];
      sizes.forEach((nCtx, i) => {
        const headDim = HEAD_DIMS[i % HEAD_DIMS.length];
        cases.push({ mode, L, bs, batch: 2, nCtx, heads: 2, headDim, options: { causal } });
      });
      // every head dim at one awkward length
      for (const headDim of HEAD_DIMS) cases.push({ mode, L, bs, batch: 1, nCtx: 2 * bs + 3, heads: 3, headDim, options: { causal } });
      // one large
      cases.push({ mode, L: mode === 'fixed' ? 64 : mode === 'local' ? 37 : mode === 'strided' ? 29 : undefined, bs: 32, batch: 1, nCtx: 1000, heads: 2, headDim: 24, options: { causal } });
    }
  }
  // every block size, window and stride larger / not multiples of the block
  for (const bs of [8, 16, 32, 64, 128]) {
    cases.push({ mode: 'all', bs, batch: 1, nCtx: 150, heads: 2, headDim: 8 });
    cases.push({ mode: 'local', L: 70, bs, batch: 1, nCtx: 150, heads: 2, headDim: 8 });
    cases.push({ mode: 'strided', L: 7, bs, batch: 1, nCtx: 150, heads: 2, headDim: 8 });
    cases.push({ mode: 'fixed', L: bs * 2, bs, batch: 1, nCtx: 150, heads: 2, headDim: 8 });
  }
  // 'fixed' with several summary patterns across heads
  cases.push({ mode: 'fixed', L: 64, bs: 16, batch: 2, nCtx: 130, heads: 4, headDim: 8, options: { numVerts: 2, vertsize: 2 } });
  cases.push({ mode: 'fixed', L: 64, bs: 16, batch: 1, nCtx: 130, heads: 4, headDim: 8, options: { numVerts: 4, vertsize: 1, causal: false } });
  // strided with L >= nCtx, local with L >= nCtx
  cases.push({ mode: 'strided', L: 50, bs: 16, batch: 1, nCtx: 20, heads: 2, headDim: 4 });
  cases.push({ mode: 'local', L: 50, bs: 16, batch: 1, nCtx: 20, heads: 2, headDim: 4, options: { causal: false } });
  // key lengths (padding), including a batch item with no keys at all
  cases.push({ mode: 'all', bs: 16, batch: 3, nCtx: 40, heads: 2, headDim: 8, keyLengths: [40, 17, 0] });
  cases.push({ mode: 'strided', L: 4, bs: 16, batch: 2, nCtx: 40, heads: 2, headDim: 8, keyLengths: [13, 40] });
  cases.push({ mode: 'local', L: 9, bs: 16, batch: 2, nCtx: 40, heads: 2, headDim: 8, keyLengths: [21, 2], options: { causal: false } });
  // regrouped 'strided' sequences longer than 64 rows (the GPU's 128-row tiles, Q read in place
  // at the regrouped stride), with key lengths
  cases.push({ mode: 'strided', L: 3, bs: 16, batch: 2, nCtx: 400, heads: 2, headDim: 8, keyLengths: [400, 251] });
  cases.push({ mode: 'strided', L: 2, bs: 16, batch: 1, nCtx: 300, heads: 2, headDim: 12, options: { causal: false } });
  // DeepSpeed's block patterns: longformer (global blocks and ranges), bigbird (global,
  // seeded random blocks, one random layout per head), causal and bidirectional
  for (const causal of [true, false]) {
    cases.push({ mode: 'longformer', bs: 16, batch: 2, nCtx: 100, heads: 2, headDim: 8, options: { causal, globalBlockIndices: [0, 4] } });
    cases.push({ mode: 'longformer', bs: 8, batch: 1, nCtx: 77, heads: 2, headDim: 5, options: { causal, numSlidingWindowBlocks: 5, globalBlockIndices: [2, 7], globalBlockEndIndices: [4, 8] } });
    cases.push({ mode: 'bigbird', bs: 16, batch: 1, nCtx: 130, heads: 2, headDim: 16, options: { causal, numRandomBlocks: 2, seed: 7 } });
    cases.push({ mode: 'bigbird', bs: 8, batch: 2, nCtx: 90, heads: 3, headDim: 4, options: { causal, numGlobalBlocks: 2, numRandomBlocks: 3, differentLayoutPerHead: true, seed: 1 } });
  }
  cases.push({ mode: 'longformer', bs: 16, batch: 2, nCtx: 60, heads: 2, headDim: 8, keyLengths: [60, 23] });
  // custom: shared layout, per-head layouts with an empty block row, function layout + token mask
  const shared = [
    [1, 0, 0, 0],
    [1, 1, 0, 0],
    [0, 1, 1, 0],
    [1, 0, 1, 1],
  ];
  cases.push({ mode: 'custom', bs: 16, batch: 2, nCtx: 60, heads: 2, headDim: 12, options: { layout: shared } });
  const perHead = [
    shared,
    [
      [0, 0, 0, 0],
      [1, 0, 1, 0],
      [1, 1, 1, 1],
      [0, 0, 0, 1],
    ],
  ];
  cases.push({ mode: 'custom', bs: 16, batch: 1, nCtx: 64, heads: 2, headDim: 5, options: { layout: perHead } });
  cases.push({
    mode: 'custom', bs: 8, batch: 1, nCtx: 45, heads: 2, headDim: 16,
    options: { layout: (h, qb, kb) => kb <= qb && (qb - kb) % (h + 2) !== 1, mask: (h, i, j) => (i + j + h) % 3 !== 0 },
  });
  // imported block lists (src/layout/custom.ts): ONNX Runtime's CSR, 2 layouts cycled over 4
  // heads (causal, a row without its diagonal block, nCtx past the last full block); Flex's
  // lists per head with full blocks and a token mask on the partial ones; block masks.
  const onnx = { blockRowIndices: [[0, 1, 3, 4, 6, 9], [0, 1, 2, 5, 6, 8]], blockColIndices: [[0, 0, 1, 1, 1, 3, 0, 3, 4], [0, 1, 0, 1, 2, 3, 1, 4, -1]] };
  cases.push({ mode: 'custom', bs: 16, batch: 2, nCtx: 70, heads: 4, headDim: 8, options: { layout: onnx } });
  const flex = {
    kvNumBlocks: Int32Array.of(1, 1, 2, 0, /* head 1 */ 0, 2, 1, 1),
    kvIndices: Int32Array.of(0, 9, 9, 9, 1, 9, 9, 9, 2, 0, 9, 9, 9, 9, 9, 9, /* head 1 */ 9, 9, 9, 9, 1, 3, 9, 9, 0, 9, 9, 9, 3, 9, 9, 9),
    fullKvNumBlocks: Int32Array.of(0, 1, 1, 3, /* head 1 */ 1, 0, 1, 1),
    fullKvIndices: Int32Array.of(9, 9, 9, 9, 0, 9, 9, 9, 1, 9, 9, 9, 0, 2, 3, 9, /* head 1 */ 2, 9, 9, 9, 9, 9, 9, 9, 3, 9, 9, 9, 0, 9, 9, 9),
    shape: [1, 2, 4, 4],
  };
  cases.push({ mode: 'custom', bs: 16, batch: 1, nCtx: 60, heads: 2, headDim: 12, options: { layout: flex, mask: (h, i, j) => (i * 7 + j + h) % 5 !== 0 } });
  const stripes = Uint8Array.from({ length: 64 }, (_, t) => ((t >> 3) + (t & 7)) % 3 === 0 ? 0 : 1);
  const lower = Uint8Array.from({ length: 64 }, (_, t) => ((t & 7) <= t >> 3 ? 1 : 0));
  cases.push({
    mode: 'custom', bs: 8, batch: 1, nCtx: 45, heads: 2, headDim: 16,
    options: {
      layout: (h, qb, kb) => kb <= qb && (qb - kb) % (h + 2) !== 1,
      mask: { blocks: [stripes, lower, new Uint8Array(64)], select: (h, qb, keyBlocks, ids) => keyBlocks.forEach((kb, t) => { ids[t] = kb === qb ? 1 : (kb + h) % 3 === 0 ? 0 : (kb + qb) % 4 === 1 ? 2 : -1; }) },
    },
  });
  return cases;
}
