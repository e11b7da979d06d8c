// The layout and plan code as it was before the closed-form counts (main at 371e1bb:
// src/layout/block-layout.ts, band.ts, pattern.ts and the counting half of src/plan.ts),
// kept verbatim apart from imports and names, as the oracle for test/large-shapes.test.ts:
// it builds every block and counts per (batch item, head, group), so only small shapes.
import type { Config } from '../../src/config.js';

export interface OldBlockLayout {
  readonly blockSize: number;
  readonly nQB: number;
  readonly nKB: number;
  readonly rowPtr: Int32Array;
  readonly cols: Int32Array;
  readonly maskIds: Int32Array;
  readonly masks: readonly Uint8Array[];
}

/** Collects entries row by row and de-duplicates identical token masks. */
class LayoutBuilder {
  private readonly rowPtr: number[] = [0];
  private readonly cols: number[] = [];
  private readonly maskIds: number[] = [];
  private readonly masks: Uint8Array[] = [];
  private readonly maskIndex = new Map<string, number[]>();

  constructor(readonly blockSize: number, readonly nQB: number, readonly nKB: number) {}

  /** Adds key block kb to the current query row; mask null means fully allowed. */
  add(kb: number, mask: Uint8Array | null): void {
    this.cols.push(kb);
    this.maskIds.push(mask === null ? -1 : this.internMask(mask));
  }

  endRow(): void {
    this.rowPtr.push(this.cols.length);
  }

  build(): OldBlockLayout {
    return {
      blockSize: this.blockSize,
      nQB: this.nQB,
      nKB: this.nKB,
      rowPtr: Int32Array.from(this.rowPtr),
      cols: Int32Array.from(this.cols),
      maskIds: Int32Array.from(this.maskIds),
      masks: this.masks,
    };
  }

  private internMask(mask: Uint8Array): number {
    const key = hashBytes(mask);
    const bucket = this.maskIndex.get(key);
    if (bucket) {
      for (const id of bucket) if (equalBytes(this.masks[id], mask)) return id;
    }
    const id = this.masks.length;
    this.masks.push(mask.slice());
    if (bucket) bucket.push(id);
    else this.maskIndex.set(key, [id]);
    return id;
  }
}

function hashBytes(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${bytes.length}:${h >>> 0}`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Number of allowed (query, key) pairs with query < nQ and key < nK. */
export function countAllowedPairs(layout: OldBlockLayout, nQ: number, nK: number): number {
  const bs = layout.blockSize;
  const maskCounts = new Map<number, number>();
  let total = 0;
  const nQB = Math.min(layout.nQB, Math.ceil(nQ / bs));
  for (let qb = 0; qb < nQB; qb++) {
    const rows = Math.min(bs, nQ - qb * bs);
    for (let e = layout.rowPtr[qb]; e < layout.rowPtr[qb + 1]; e++) {
      const kb = layout.cols[e];
      const colsValid = Math.min(bs, nK - kb * bs);
      if (colsValid <= 0) continue;
      const id = layout.maskIds[e];
      if (id < 0) {
        total += rows * colsValid;
      } else if (rows === bs && colsValid === bs) {
        let n = maskCounts.get(id);
        if (n === undefined) {
          n = countOnes(layout.masks[id], bs, bs, bs);
          maskCounts.set(id, n);
        }
        total += n;
      } else {
        total += countOnes(layout.masks[id], bs, rows, colsValid);
      }
    }
  }
  return total;
}

function countOnes(mask: Uint8Array, bs: number, rows: number, cols: number): number {
  let n = 0;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) n += mask[r * bs + c];
  return n;
}

export function oldBandLayout(seqLen: number, blockSize: number, lo: number, hi: number): OldBlockLayout {
  const bs = blockSize;
  const nB = Math.ceil(seqLen / bs);
  const builder = new LayoutBuilder(bs, nB, nB);
  // A block pair's mask depends only on its diagonal offset kb - qb: one mask per offset.
  const maskByOffset = new Map<number, Uint8Array>();
  for (let qb = 0; qb < nB; qb++) {
    // Candidate key blocks only; the exact test below decides.
    const kbLo = lo === -Infinity ? 0 : Math.max(0, qb + Math.floor((lo - bs + 1) / bs));
    const kbHi = hi === Infinity ? nB - 1 : Math.min(nB - 1, qb + Math.ceil((hi + bs - 1) / bs));
    for (let kb = kbLo; kb <= kbHi; kb++) {
      const base = (kb - qb) * bs; // j - i at row 0, column 0
      const dMin = base - (bs - 1);
      const dMax = base + (bs - 1);
      if (dMax < lo || dMin > hi) continue;
      if (dMin >= lo && dMax <= hi) {
        builder.add(kb, null);
        continue;
      }
      let mask = maskByOffset.get(kb - qb);
      if (!mask) {
        mask = new Uint8Array(bs * bs);
        for (let r = 0; r < bs; r++) {
          for (let c = 0; c < bs; c++) {
            const d = base + c - r;
            mask[r * bs + c] = d >= lo && d <= hi ? 1 : 0;
          }
        }
        maskByOffset.set(kb - qb, mask);
      }
      builder.add(kb, mask);
    }
    builder.endRow();
  }
  return builder.build();
}

/** Block (qb, kb) enabled? */
export type BlockPredicate = (qb: number, kb: number) => boolean;
/** Token pair (i, j) of one head allowed inside an enabled block? */
export type TokenPredicate = (i: number, j: number) => boolean;

/**
 * Builds a layout over nB × nB blocks from a block predicate and an optional token
 * predicate (evaluated only inside enabled blocks).
 */
export function oldPatternLayout(
  nB: number,
  blockSize: number,
  enabled: BlockPredicate,
  token: TokenPredicate | null,
): OldBlockLayout {
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
function fixedSummaryColumns(stride: number, vertsize: number, numVerts: number, head: number): number[] {
  const row = head % numVerts;
  const cols: number[] = [];
  for (let t = 0; t < vertsize; t++) cols.push(stride - 1 - (row * vertsize + t));
  return cols;
}

/** OpenAI's 'fixed' pattern for one head over nB blocks. */
export function oldFixedLayout(nB: number, blockSize: number, head: number, p: FixedParams): OldBlockLayout {
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
  return oldPatternLayout(nB, blockSize, enabled, token);
}

export interface OldGeometry {
  regroup: number;
  seqLen: number;
  blockSize: number;
  layouts: OldBlockLayout[];
  headLayout: Int32Array;
}

/** main's buildGeometry (the custom nCtx check left out: the callers stay inside the layout). */
export function oldBuildGeometry(config: Config, nCtx: number, bandBlockSize: (bs: number, seqLen: number) => number, bandBlock?: number): OldGeometry {
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
    return { regroup: mode === 'strided' ? L : 0, seqLen, blockSize: bs, layouts: [oldBandLayout(seqLen, bs, lo, hi)], headLayout: one };
  }
  const bs = config.blocksize;
  const nB = Math.ceil(nCtx / bs);
  if (mode === 'fixed') {
    const layouts: OldBlockLayout[] = [];
    for (let h = 0; h < config.numVerts; h++) {
      layouts.push(oldFixedLayout(nB, bs, h, { localAttnCtx: L, numVerts: config.numVerts, vertsize: config.vertsize, causal }));
    }
    const headLayout = Int32Array.from({ length: heads }, (_, h) => h % config.numVerts);
    return { regroup: 0, seqLen: nCtx, blockSize: bs, layouts, headLayout };
  }
  const blocks = config.customBlocks!;
  const mask = config.mask;
  const perHead = config.customPerHead || mask !== null;
  const layouts: OldBlockLayout[] = [];
  for (let h = 0; h < (perHead ? heads : 1); h++) {
    layouts.push(oldPatternLayout(nB, bs, (qb, kb) => blocks(h, qb, kb), mask ? (i, j) => Boolean(mask(h, i, j)) : null));
  }
  const headLayout = perHead ? Int32Array.from({ length: heads }, (_, h) => h) : one;
  return { regroup: 0, seqLen: nCtx, blockSize: bs, layouts, headLayout };
}

/** main's buildPlan counts and the facade's blocksVisited, per sequence. */
export function oldCounts(config: Config, geometry: OldGeometry, shape: readonly [number, number, number], keyLengths: Int32Array | null) {
  const [batch, nCtx, nEmbd] = shape;
  const heads = config.heads;
  const headDim = nEmbd / heads;
  let pairs = 0;
  let blocks = 0;
  const memo = new Map<string, [number, number]>();
  const groups = geometry.regroup > 0 ? Math.min(geometry.regroup, nCtx) : 1;
  const step = geometry.regroup > 0 ? geometry.regroup : 1;
  const rowsFrom = (len: number, g: number) => Math.max(0, Math.ceil((len - g) / step));
  for (let b = 0; b < batch; b++) {
    const len = keyLengths ? keyLengths[b] : nCtx;
    for (let h = 0; h < heads; h++) {
      for (let g = 0; g < groups; g++) {
        const s = { nQ: rowsFrom(nCtx, g), nK: rowsFrom(len, g), layout: geometry.headLayout[h] };
        const key = `${s.layout}:${s.nQ}:${s.nK}`;
        let n = memo.get(key);
        if (n === undefined) {
          const layout = geometry.layouts[s.layout];
          n = [countAllowedPairs(layout, s.nQ, s.nK), countVisitedBlocks(layout, s.nQ, s.nK)];
          memo.set(key, n);
        }
        pairs += n[0];
        blocks += n[1];
      }
    }
  }
  let blocksVisited = 0;
  for (let h = 0; h < heads; h++) blocksVisited += geometry.layouts[geometry.headLayout[h]].cols.length;
  const bs = geometry.blockSize;
  return {
    allowedPairs: pairs,
    usefulFlops: 4 * headDim * pairs,
    visitedFlops: 4 * headDim * blocks * bs * bs,
    density: pairs / (batch * heads * nCtx * nCtx),
    blocksVisited: blocksVisited * (geometry.regroup > 0 ? groups : 1),
  };
}

/** Block pairs a kernel visits for one sequence of nQ queries and nK keys. */
function countVisitedBlocks(layout: OldBlockLayout, nQ: number, nK: number): number {
  const bs = layout.blockSize;
  const nKB = Math.ceil(nK / bs);
  let n = 0;
  for (let qb = 0; qb < Math.min(layout.nQB, Math.ceil(nQ / bs)); qb++) {
    for (let e = layout.rowPtr[qb]; e < layout.rowPtr[qb + 1]; e++) if (layout.cols[e] < nKB) n++;
  }
  return n;
}
