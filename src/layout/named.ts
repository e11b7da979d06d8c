// Longformer and BigBird at block granularity, as DeepSpeed's BSLongformerSparsityConfig
// and BigBirdSparsityConfig define them (deepspeed/ops/sparse_attention/sparsity_config.py):
// - 'longformer': a sliding window of numSlidingWindowBlocks blocks centred on the query
//   block (w = floor(n / 2) on each side), and global blocks (globalBlockIndices, or the
//   ranges [globalBlockIndices[i], globalBlockEndIndices[i])) that every block attends to and
//   that attend to every block;
// - 'bigbird': the same window, the first numGlobalBlocks blocks global, and per query block
//   numRandomBlocks key blocks drawn at random (seeded, see randomBlocks()).
// Causal ('unidirectional'): the block layout is cut to kb <= qb, and inside the diagonal
// block a key is allowed when j <= i. Each row is generated in O(its entries).
import type { BlockLayout } from './block-layout.js';
import { LayoutBuilder } from './block-layout.js';
import type { PositionRows } from './cross.js';
import { lowerTriangle } from './pattern.js';

export interface NamedPatternParams {
  mode: 'longformer' | 'bigbird';
  numSlidingWindowBlocks: number;
  /** longformer: first block of each global range (a single block when no end is given). */
  globalBlockIndices: readonly number[];
  /** longformer: end (exclusive) of each global range; null: one block each. */
  globalBlockEndIndices: readonly number[] | null;
  /** bigbird: blocks 0 .. numGlobalBlocks - 1 are global. */
  numGlobalBlocks: number;
  /** bigbird: random key blocks per query block. */
  numRandomBlocks: number;
  seed: number;
  causal: boolean;
}

/** Whether key block kb is a global block of the pattern. */
export function isGlobalBlock(p: NamedPatternParams, kb: number): boolean {
  if (p.mode === 'bigbird') return kb < p.numGlobalBlocks;
  for (let i = 0; i < p.globalBlockIndices.length; i++) {
    const start = p.globalBlockIndices[i];
    const end = p.globalBlockEndIndices ? p.globalBlockEndIndices[i] : start + 1;
    if (kb >= start && kb < end) return true;
  }
  return false;
}

/**
 * The random key blocks of query block qb for layout head `head`: min(numRandomBlocks, n)
 * distinct blocks of [0, n), n = nB (bidirectional) or qb + 1 (causal), in ascending order,
 * drawn by a partial Fisher–Yates shuffle driven by xorshift32 seeded from (seed, head, qb).
 * The draw depends only on those and n, so the reference and both paths agree.
 */
export function randomBlocks(p: NamedPatternParams, head: number, qb: number, nB: number): number[] {
  const n = p.causal ? qb + 1 : nB;
  const k = Math.min(p.numRandomBlocks, n);
  if (k <= 0) return [];
  let s = (Math.imul(p.seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(head + 1, 0xc2b2ae35) ^ Math.imul(qb + 1, 0x27d4eb2f)) >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  // Partial Fisher–Yates over [0, n) with the swaps kept in a map (n may be large, k small).
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + (next() % (n - i));
    const vj = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out.push(vj);
  }
  return out.sort((a, b) => a - b);
}

/** Key blocks of query block qb, ascending, distinct. */
export function namedRow(p: NamedPatternParams, head: number, qb: number, nB: number): number[] {
  const last = p.causal ? qb : nB - 1;
  if (isGlobalBlock(p, qb)) return Array.from({ length: last + 1 }, (_, kb) => kb);
  const w = Math.floor(p.numSlidingWindowBlocks / 2);
  const cols = new Set<number>();
  for (let kb = Math.max(0, qb - w); kb <= Math.min(last, qb + w); kb++) cols.add(kb);
  if (p.mode === 'bigbird') {
    for (let kb = 0; kb < Math.min(p.numGlobalBlocks, last + 1); kb++) cols.add(kb);
    for (const kb of randomBlocks(p, head, qb, nB)) cols.add(kb);
  } else {
    for (let i = 0; i < p.globalBlockIndices.length; i++) {
      const start = p.globalBlockIndices[i];
      const end = p.globalBlockEndIndices ? p.globalBlockEndIndices[i] : start + 1;
      for (let kb = start; kb < Math.min(end, last + 1); kb++) cols.add(kb);
    }
  }
  return [...cols].sort((a, b) => a - b);
}

/** The CSR of a named pattern for one layout head over nB blocks of blockSize. */
export function namedLayout(p: NamedPatternParams, head: number, nB: number, blockSize: number, label?: string): BlockLayout {
  const bs = blockSize;
  const builder = new LayoutBuilder(bs, nB, nB, nB * (p.numSlidingWindowBlocks + 2), label);
  const tril = new Uint8Array(bs * bs);
  for (let r = 0; r < bs; r++) tril.fill(1, r * bs, r * bs + r + 1);
  for (let qb = 0; qb < nB; qb++) {
    for (const kb of namedRow(p, head, qb, nB)) builder.add(kb, p.causal && kb === qb ? tril : null);
    builder.endRow();
  }
  return builder.build();
}

/** The rows of a named pattern for one layout head over nB blocks of bs, one at a time. */
export function namedRows(p: NamedPatternParams, head: number, nB: number, bs: number): PositionRows {
  const tril = lowerTriangle(bs);
  return {
    nB,
    row(qb, add) {
      for (const kb of namedRow(p, head, qb, nB)) add(kb, p.causal && kb === qb ? tril : null);
    },
  };
}
