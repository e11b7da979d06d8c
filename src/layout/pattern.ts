// Block-pattern layouts: OpenAI's 'fixed' pattern and user-given custom layouts. Both are
// defined on blocks, so unlike the band modes their result depends on blockSize.
// see: openai/sparse_attention attention.py (get_blocksparse_obj, attn_mode == 'fixed')
import { type BlockLayout, LayoutBuilder } from './block-layout.js';

/** Block (qb, kb) enabled? */
export type BlockPredicate = (qb: number, kb: number) => boolean;
/** Token pair (i, j) of one head allowed inside an enabled block? */
export type TokenPredicate = (i: number, j: number) => boolean;

/**
 * Builds a layout over nB × nB blocks from a block predicate and an optional token
 * predicate (evaluated only inside enabled blocks).
 */
export function patternLayout(
  nB: number,
  blockSize: number,
  enabled: BlockPredicate,
  token: TokenPredicate | null,
): BlockLayout {
  const bs = blockSize;
  const builder = new LayoutBuilder(bs, nB, nB);
  const mask = new Uint8Array(bs * bs);
  for (let qb = 0; qb < nB; qb++) {
    for (let kb = 0; kb < nB; kb++) {
      if (!enabled(qb, kb)) continue;
      if (!token) {
        builder.add(kb, null);
        continue;
      }
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

/** OpenAI's 'fixed' pattern for one head over nB blocks. */
export function fixedLayout(nB: number, blockSize: number, head: number, p: FixedParams): BlockLayout {
  const stride = p.localAttnCtx / blockSize;
  const summary = new Set(fixedSummaryColumns(stride, p.vertsize, p.numVerts, head));
  const enabled: BlockPredicate = (qb, kb) => {
    if (p.causal && kb > qb) return false;
    // Same stride window as the query block, or a summary column of this head.
    return Math.floor(kb / stride) === Math.floor(qb / stride) || summary.has(kb % stride);
  };
  // Causal inside diagonal blocks only (OpenAI's mask callback: tril on qry_idx == key_idx).
  const bs = blockSize;
  const token: TokenPredicate | null = p.causal
    ? (i, j) => Math.floor(i / bs) !== Math.floor(j / bs) || j <= i
    : null;
  return patternLayout(nB, blockSize, enabled, token);
}
