// Plan: what one forward call computes, independent of the backend. Turns the config and
// a tensor shape into sequences (one per batch × head, or batch × head × group for
// 'strided'), their block layouts, and the useful work (allowed pairs, FLOPs).
// see: openai/sparse_attention attention.py (strided_transpose, get_blocksparse_obj)
import type { Config } from './config.js';
import { DisposedError, argError } from './errors.js';
import { bandLayout } from './layout/band.js';
import { type BlockLayout, countAllowedPairs } from './layout/block-layout.js';
import { fixedLayout, patternLayout } from './layout/pattern.js';

/** Block layouts for one nCtx; cached per instance. */
export interface Geometry {
  /** Sequence rows are the tokens g, g + regroup, g + 2·regroup… ('strided'); else 0. */
  readonly regroup: number;
  /** Rows of the longest sequence: nCtx, or ceil(nCtx / L) for 'strided'. */
  readonly seqLen: number;
  readonly blockSize: number;
  readonly layouts: readonly BlockLayout[];
  /** Index into layouts for each head. */
  readonly headLayout: Int32Array;
}

export interface Plan extends Geometry {
  readonly batch: number;
  readonly nCtx: number;
  readonly nEmbd: number;
  readonly heads: number;
  readonly headDim: number;
  readonly mode: Config['mode'];
  readonly causal: boolean;
  readonly keyLengths: Int32Array | null;
  /** Allowed (query, key) pairs over every batch item and head. */
  readonly allowedPairs: number;
  /** 4 · headDim · allowedPairs: the multiply-adds of Q·Kᵀ and P·V, counted as 2 FLOPs each. */
  readonly usefulFlops: number;
  /** 4 · headDim · blockSize² · visited block pairs: the work of a kernel that computes whole blocks. */
  readonly visitedFlops: number;
  /** allowedPairs / (batch · heads · nCtx²). */
  readonly density: number;
}

/** One (batch, head[, group]) attention problem. */
export interface Sequence {
  b: number;
  h: number;
  /** Token index of the sequence's first row. */
  token0: number;
  /** Token distance between consecutive rows (1, or L for 'strided'). */
  step: number;
  nQ: number;
  nK: number;
  layout: number;
}

/**
 * Block size of the layout the kernels run for the band modes, whose result does not
 * depend on it. The user's blocksize is kept between 16 and 64: smaller tiles starve the
 * SIMD register tiles, larger ones overflow L1 with the 64 KiB score tile (measured on the
 * 2-core Xeon: bs 16/32/64 within 10% of each other for W1/W2, bs 128 slower).
 */
export function bandBlockSize(blocksize: number, seqLen: number): number {
  const bs = Math.min(64, Math.max(16, blocksize));
  // A sequence shorter than one block (regrouped 'strided') gets a tile that just covers it.
  return Math.max(8, Math.min(bs, Math.ceil(seqLen / 8) * 8));
}

/**
 * Block layouts for one nCtx. `bandBlock` fixes the block size of the band modes (the GPU
 * kernel runs them at 64); by default bandBlockSize() chooses it for the CPU kernel.
 */
export function buildGeometry(config: Config, nCtx: number, bandBlock?: number): Geometry {
  const { mode, causal, heads } = config;
  const L = config.localAttnCtx;
  const one = new Int32Array(heads);
  if (mode === 'all' || mode === 'local' || mode === 'strided') {
    const seqLen = mode === 'strided' ? Math.ceil(nCtx / L) : nCtx;
    const bs = bandBlock ?? bandBlockSize(config.blocksize, seqLen);
    let lo = -Infinity;
    let hi = causal ? 0 : Infinity;
    if (mode === 'local') {
      lo = -(L - 1);
      if (!causal) hi = L - 1;
    }
    // 'strided' regrouped: each group is a plain causal (or full) attention.
    return { regroup: mode === 'strided' ? L : 0, seqLen, blockSize: bs, layouts: [bandLayout(seqLen, bs, lo, hi)], headLayout: one };
  }
  const bs = config.blocksize;
  const nB = Math.ceil(nCtx / bs);
  if (mode === 'fixed') {
    const layouts: BlockLayout[] = [];
    for (let h = 0; h < config.numVerts; h++) {
      layouts.push(fixedLayout(nB, bs, h, { localAttnCtx: L, numVerts: config.numVerts, vertsize: config.vertsize, causal }));
    }
    const headLayout = Int32Array.from({ length: heads }, (_, h) => h % config.numVerts);
    return { regroup: 0, seqLen: nCtx, blockSize: bs, layouts, headLayout };
  }
  // custom
  if (nB > config.customBlockCount) {
    throw argError(
      'nCtx',
      `at most ${config.customBlockCount * bs} (the custom layout covers ${config.customBlockCount} blocks of ${bs})`,
      nCtx,
    );
  }
  const blocks = config.customBlocks!;
  const mask = config.mask;
  const perHead = config.customPerHead || mask !== null;
  const layouts: BlockLayout[] = [];
  for (let h = 0; h < (perHead ? heads : 1); h++) {
    layouts.push(
      patternLayout(nB, bs, (qb, kb) => blocks(h, qb, kb), mask ? (i, j) => Boolean(mask(h, i, j)) : null),
    );
  }
  const headLayout = perHead ? Int32Array.from({ length: heads }, (_, h) => h) : one;
  return { regroup: 0, seqLen: nCtx, blockSize: bs, layouts, headLayout };
}

export function buildPlan(
  config: Config,
  geometry: Geometry,
  shape: readonly [number, number, number],
  keyLengths: Int32Array | null,
): Plan {
  const [batch, nCtx, nEmbd] = shape;
  const heads = config.heads;
  const base = {
    ...geometry,
    batch,
    nCtx,
    nEmbd,
    heads,
    headDim: nEmbd / heads,
    mode: config.mode,
    causal: config.causal,
    keyLengths,
    allowedPairs: 0,
    usefulFlops: 0,
    visitedFlops: 0,
    density: 0,
  };
  let pairs = 0;
  let blocks = 0;
  const memo = new Map<string, [number, number]>();
  forEachSequence(base, (s) => {
    const key = `${s.layout}:${s.nQ}:${s.nK}`;
    let n = memo.get(key);
    if (n === undefined) {
      const layout = geometry.layouts[s.layout];
      n = [countAllowedPairs(layout, s.nQ, s.nK), countVisitedBlocks(layout, s.nQ, s.nK)];
      memo.set(key, n);
    }
    pairs += n[0];
    blocks += n[1];
  });
  const bs = geometry.blockSize;
  return {
    ...base,
    allowedPairs: pairs,
    usefulFlops: 4 * base.headDim * pairs,
    visitedFlops: 4 * base.headDim * blocks * bs * bs,
    density: pairs / (batch * heads * nCtx * nCtx),
  };
}

/** Block pairs a kernel visits for one sequence of nQ queries and nK keys. */
function countVisitedBlocks(layout: BlockLayout, nQ: number, nK: number): number {
  const bs = layout.blockSize;
  const nKB = Math.ceil(nK / bs);
  let n = 0;
  for (let qb = 0; qb < Math.min(layout.nQB, Math.ceil(nQ / bs)); qb++) {
    for (let e = layout.rowPtr[qb]; e < layout.rowPtr[qb + 1]; e++) if (layout.cols[e] < nKB) n++;
  }
  return n;
}

/** Calls fn for every non-empty sequence of the plan, in (b, h, group) order. */
export function forEachSequence(
  plan: Pick<Plan, 'batch' | 'heads' | 'nCtx' | 'regroup' | 'headLayout' | 'keyLengths'>,
  fn: (s: Sequence) => void,
): void {
  const { batch, heads, nCtx, regroup, headLayout, keyLengths } = plan;
  const groups = regroup > 0 ? Math.min(regroup, nCtx) : 1;
  const step = regroup > 0 ? regroup : 1;
  const rowsFrom = (len: number, g: number) => Math.max(0, Math.ceil((len - g) / step));
  for (let b = 0; b < batch; b++) {
    const len = keyLengths ? keyLengths[b] : nCtx;
    for (let h = 0; h < heads; h++) {
      for (let g = 0; g < groups; g++) {
        fn({ b, h, token0: g, step, nQ: rowsFrom(nCtx, g), nK: rowsFrom(len, g), layout: headLayout[h] });
      }
    }
  }
}

export function checkNotDisposed(disposed: boolean): void {
  if (disposed) throw new DisposedError();
}
