// Block-pattern layouts: OpenAI's 'fixed' pattern and user-given custom layouts. Both are
// defined on blocks, so unlike the band modes their result depends on blockSize. 'fixed' is
// counted in closed form (count.ts) and its CSR generated row by row when a kernel runs;
// a custom layout is evaluated (and stored) when planned, at a bounded number of calls.
// see: openai/sparse_attention attention.py (get_blocksparse_obj, attn_mode == 'fixed')
import { MemoryLimitError } from '../errors.js';
import { type BlockLayout, Layout, LayoutBuilder } from './block-layout.js';
import { type FixedShape, fixedBlockCount, fixedPairCount } from './count.js';
import type { PositionRows } from './cross.js';

/** Block (qb, kb) enabled? */
export type BlockPredicate = (qb: number, kb: number) => boolean;
/** Token pair (i, j) of one head allowed inside an enabled block? */
export type TokenPredicate = (i: number, j: number) => boolean;

/**
 * Most calls of the user's functions (layout and mask together) that planning one nCtx may
 * make: 2^26. A function layout is called for every block pair of every head (nBlocks²
 * each), a mask for every token pair of the visited blocks; past this a plan is refused, not
 * left to run for minutes. Measured on the 2-core dev machine (Node 20, loaded): 2^26 calls
 * of a trivial layout function 0.14 s, of a trivial mask ~0.8 s (12 ns a call with the mask
 * building). A layout given as matrices or block lists, and a mask given per block
 * ({ blocks, select }, src/layout/custom.ts), are not limited: they cost O(entries).
 */
export const CUSTOM_CALLS_MAX = 2 ** 26;

/** Counts calls of the user's functions against CUSTOM_CALLS_MAX for one plan. */
export class CallBudget {
  used = 0;
  constructor(readonly what: string, readonly limit = CUSTOM_CALLS_MAX) {}

  spend(n: number): void {
    this.used += n;
    if (this.used > this.limit) {
      throw new MemoryLimitError(
        `${this.what} needs more than ${this.limit} calls of options.layout / options.mask to build (a function ` +
          `layout is called for each of nBlocks² block pairs per head, a mask for each token pair of the visited ` +
          `blocks): use a shorter nCtx, a larger blocksize, the layout as matrices or block lists, the mask as block masks { blocks, select }`,
        this.used,
        this.limit,
      );
    }
  }
}

/**
 * Builds a layout over nB × nB blocks from a block predicate and an optional token
 * predicate (evaluated only inside enabled blocks). `budget` counts predicate calls.
 */
export function patternLayout(
  nB: number,
  blockSize: number,
  enabled: BlockPredicate,
  token: TokenPredicate | null,
  budget: CallBudget | null = null,
  label?: string,
): BlockLayout {
  const bs = blockSize;
  const builder = new LayoutBuilder(bs, nB, nB, 64, label);
  const mask = new Uint8Array(bs * bs);
  for (let qb = 0; qb < nB; qb++) {
    for (let kb = 0; kb < nB; kb++) {
      if (!enabled(qb, kb)) continue;
      if (!token) {
        builder.add(kb, null);
        continue;
      }
      budget?.spend(bs * bs);
      let ones = 0;
      for (let r = 0; r < bs; r++) {
        for (let c = 0; c < bs; c++) {
          const ok = token(qb * bs + r, kb * bs + c) ? 1 : 0;
          mask[r * bs + c] = ok;
          ones += ok;
        }
      }
      if (ones === bs * bs) builder.add(kb, null);
      else if (ones > 0) builder.add(kb, mask);
    }
    builder.endRow();
  }
  return builder.build();
}

export interface FixedParams {
  /** Stride of the pattern in tokens (OpenAI's local_attn_ctx); a multiple of blockSize. */
  localAttnCtx: number;
  numVerts: number;
  vertsize: number;
  causal: boolean;
}

/**
 * Key-block columns that head h attends to as "summary" columns, modulo the stride:
 * OpenAI's `indices = range(stride-1, -1, -1).reshape([-1, vertsize])[h % num_verts]`.
 */
export function fixedSummaryColumns(stride: number, vertsize: number, numVerts: number, head: number): number[] {
  const row = head % numVerts;
  const cols: number[] = [];
  for (let t = 0; t < vertsize; t++) cols.push(stride - 1 - (row * vertsize + t));
  return cols;
}

/**
 * OpenAI's 'fixed' pattern for one head's summary pattern over nB blocks: query block qb
 * visits the key blocks of its own stride window and, in every window, this head's summary
 * columns (a contiguous run [s0, s0 + vertsize) of each window); causal: only kb <= qb, and
 * diagonal blocks are lower-triangular (OpenAI's mask callback: tril where qry_idx == key_idx).
 */
export class FixedLayout extends Layout {
  readonly entries: bigint;
  readonly maskCount: number;
  readonly shape: FixedShape;

  constructor(nB: number, blockSize: number, head: number, p: FixedParams, label: string) {
    super(blockSize, nB, nB, label);
    const s = p.localAttnCtx / blockSize;
    this.shape = { s, s0: s - ((head % p.numVerts) + 1) * p.vertsize, vs: p.vertsize, causal: p.causal };
    this.entries = fixedBlockCount(this.shape, nB, nB);
    this.maskCount = p.causal && nB > 0 ? 1 : 0;
  }

  countPairs(nQ: number, nK: number): bigint {
    return fixedPairCount(this.shape, this.blockSize, nQ, nK);
  }

  countBlocks(nQ: number, nK: number): bigint {
    const bs = this.blockSize;
    return fixedBlockCount(this.shape, Math.ceil(nQ / bs), Math.ceil(nK / bs));
  }

  /** Rows in ascending key order: summaries of earlier windows, the window, (bidirectional) later summaries. */
  protected build(): BlockLayout {
    const bs = this.blockSize;
    const nB = this.nQB;
    const builder = new LayoutBuilder(bs, nB, nB, Number(this.entries), this.label);
    const rows = fixedRows(this.shape, nB, bs);
    const add = (kb: number, mask: Uint8Array | null) => builder.add(kb, mask);
    for (let qb = 0; qb < nB; qb++) {
      rows.row(qb, add);
      builder.endRow();
    }
    return builder.build();
  }
}

/** The rows of a 'fixed' pattern over nB blocks of bs, one at a time (see FixedLayout). */
export function fixedRows(shape: FixedShape, nB: number, bs: number): PositionRows {
  const { s, s0, vs, causal } = shape;
  const tril = lowerTriangle(bs);
  return {
    nB,
    row(qb, add) {
      const w0 = Math.floor(qb / s) * s;
      for (let w = 0; w < w0; w += s) for (let x = s0; x < s0 + vs; x++) add(w + x, null);
      const end = causal ? qb + 1 : Math.min(w0 + s, nB);
      for (let kb = w0; kb < end; kb++) add(kb, causal && kb === qb ? tril : null);
      if (!causal) {
        for (let w = w0 + s; w < nB; w += s) {
          for (let x = s0; x < s0 + vs && w + x < nB; x++) add(w + x, null);
        }
      }
    },
  };
}

/** The bs × bs mask of j <= i inside a diagonal block. */
export function lowerTriangle(bs: number): Uint8Array {
  const tril = new Uint8Array(bs * bs);
  for (let r = 0; r < bs; r++) tril.fill(1, r * bs, r * bs + r + 1);
  return tril;
}
