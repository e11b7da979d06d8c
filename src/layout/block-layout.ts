// Block layouts in CSR form: for each query block, the key blocks it visits and, for
// blocks that are only partly allowed, a token mask. Pure TS, shared by every backend.
// see: openai/sparse_attention attention.py (get_blocksparse_obj, get_callback)

export interface BlockLayout {
  /** Tokens per block, on both axes. */
  readonly blockSize: number;
  readonly nQB: number;
  readonly nKB: number;
  /** Key blocks of query block qb: cols[rowPtr[qb] .. rowPtr[qb + 1]), ascending. */
  readonly rowPtr: Int32Array;
  readonly cols: Int32Array;
  /** Per entry: -1 when every pair of the block is allowed, else an index into masks. */
  readonly maskIds: Int32Array;
  /** Token masks, blockSize² bytes each, [qRow][kCol] row-major, 1 = allowed. */
  readonly masks: readonly Uint8Array[];
}

/** Collects entries row by row and de-duplicates identical token masks. */
export class LayoutBuilder {
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

  build(): BlockLayout {
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
export function countAllowedPairs(layout: BlockLayout, nQ: number, nK: number): number {
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
