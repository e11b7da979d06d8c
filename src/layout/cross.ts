// Cross-attention and the KV cache for the block-pattern modes ('fixed', 'longformer',
// 'bigbird', custom): their layouts are defined on blocks of positions 0 … nK − 1, while a
// call of nQ < nK queries (a prefill chunk, a decode step) has its rows at positions
// off = nK − nQ and on, aligned bottom-right; with nQ > nK (bidirectional) the first rows sit
// before position 0, where the layout has no row: they attend to nothing (zeros).
// The kernels read layouts by query tile (rows t·bs … t·bs + bs − 1 of the call) and key
// block. With off a multiple of bs a tile is one layout row; otherwise it straddles two: its
// first bs − s rows are rows s … bs − 1 of layout row A + t, its last s rows rows 0 … s − 1 of
// row A + t + 1 (A = floor(off / bs), s = off mod bs). The tile's key blocks are the union of
// the two rows, each carrying a mask made of the two halves. Only the layout rows the call's
// tiles cover are generated: a decode step costs the entries of one or two rows, not nK.
import { type BlockLayout, Layout, LayoutBuilder, countAllowedPairs, countVisitedBlocks } from './block-layout.js';

/** A block layout over positions, one row at a time (rows 0 … nB − 1). */
export interface PositionRows {
  readonly nB: number;
  /** Calls add for each key block of row qb, ascending; mask null: the whole block. */
  row(qb: number, add: (kb: number, mask: Uint8Array | null) => void): void;
}

/** A row's entries: key blocks ascending and their masks (null: whole block). */
interface Row {
  cols: number[];
  masks: (Uint8Array | null)[];
}

const EMPTY: Row = { cols: [], masks: [] };

/**
 * The layout in query tiles of nQ queries against nK keys (off = nK − nQ) of a layout over
 * positions. Its counts walk the tile CSR, built on first use: its size follows the call's
 * query tiles and the blocks they visit.
 */
export class CrossLayout extends Layout {
  private tiles: BlockLayout | null = null;

  constructor(private readonly rows: PositionRows, readonly nQ: number, readonly nK: number, blockSize: number, label: string) {
    super(blockSize, Math.ceil(nQ / blockSize), Math.ceil(nK / blockSize), label);
  }

  get entries(): bigint {
    return BigInt(this.tileCsr().cols.length);
  }

  get maskCount(): number {
    return this.tileCsr().masks.length;
  }

  countPairs(nQ: number, nK: number): bigint {
    return BigInt(countAllowedPairs(this.tileCsr(), nQ, nK));
  }

  countBlocks(nQ: number, nK: number): bigint {
    return BigInt(countVisitedBlocks(this.tileCsr(), nQ, nK));
  }

  protected build(): BlockLayout {
    return this.tileCsr();
  }

  private tileCsr(): BlockLayout {
    if (!this.tiles) this.tiles = tileLayout(this.rows, this.nQ, this.nK, this.blockSize, this.label);
    return this.tiles;
  }
}

/** The tile CSR (see the file comment). */
export function tileLayout(rows: PositionRows, nQ: number, nK: number, bs: number, label?: string): BlockLayout {
  const off = nK - nQ;
  const nQB = Math.ceil(nQ / bs);
  const nKB = Math.ceil(nK / bs);
  const A = Math.floor(off / bs);
  const s = off - A * bs;
  const builder = new LayoutBuilder(bs, nQB, nKB, 64, label);
  const area = bs * bs;
  // Layout rows by index, each generated once (a tile's second row is the next tile's first).
  const cache = new Map<number, Row>();
  const rowAt = (qb: number): Row => {
    if (qb < 0 || qb >= rows.nB) return EMPTY;
    let row = cache.get(qb);
    if (!row) {
      const r: Row = { cols: [], masks: [] };
      rows.row(qb, (kb, mask) => {
        if (kb < nKB) {
          r.cols.push(kb);
          r.masks.push(mask);
        }
      });
      row = r;
      cache.set(qb, row);
      cache.delete(qb - 2);
    }
    return row;
  };
  // Composed masks by the pair of halves: a mask object's number, 'f' whole, 'a' absent.
  const maskNo = new Map<Uint8Array, number>();
  const keyOf = (m: Uint8Array | null | undefined) => {
    if (m === undefined) return 'a';
    if (m === null) return 'f';
    let n = maskNo.get(m);
    if (n === undefined) maskNo.set(m, (n = maskNo.size));
    return String(n);
  };
  const composed = new Map<string, number>(); // builder mask id, -1 whole, -2 empty
  const bytes = new Uint8Array(area);
  // Rows r >= valid (past the last query: positions >= nK) are left out, so that a tile visits
  // exactly the blocks its queries need.
  const compose = (top: Uint8Array | null | undefined, bot: Uint8Array | null | undefined, valid: number): number => {
    const key = `${keyOf(top)}|${keyOf(bot)}|${valid}`;
    let id = composed.get(key);
    if (id === undefined) {
      let ones = 0;
      bytes.fill(0);
      for (let r = 0; r < valid; r++) {
        // tile row r: row s + r of the first layout row, or row r − (bs − s) of the second
        const [src, sr] = r < bs - s ? [top, s + r] : [bot, r - (bs - s)];
        for (let c = 0; c < bs; c++) ones += bytes[r * bs + c] = src === undefined ? 0 : src === null ? 1 : src[sr * bs + c];
      }
      id = ones === area ? -1 : ones === 0 ? -2 : builder.intern(bytes);
      composed.set(key, id);
    }
    return id;
  };
  for (let t = 0; t < nQB; t++) {
    const valid = Math.min(bs, nQ - t * bs);
    const top = rowAt(A + t);
    if (s === 0 && valid === bs) {
      for (let e = 0; e < top.cols.length; e++) builder.add(top.cols[e], top.masks[e]);
      builder.endRow();
      continue;
    }
    const bot = s === 0 ? EMPTY : rowAt(A + t + 1);
    let i = 0;
    let j = 0;
    while (i < top.cols.length || j < bot.cols.length) {
      const kt = i < top.cols.length ? top.cols[i] : Infinity;
      const kbot = j < bot.cols.length ? bot.cols[j] : Infinity;
      const kb = Math.min(kt, kbot);
      const mt = kt === kb ? top.masks[i++] : undefined;
      const mb = kbot === kb ? bot.masks[j++] : undefined;
      const id = mt === null && mb === null && valid === bs ? -1 : compose(mt, mb, valid);
      if (id !== -2) builder.addId(kb, id);
    }
    builder.endRow();
  }
  return builder.build();
}

/** Rows of a built block layout over positions (its CSR), as PositionRows. */
export function csrRows(layout: BlockLayout): PositionRows {
  return {
    nB: layout.nQB,
    row(qb, add) {
      for (let e = layout.rowPtr[qb]; e < layout.rowPtr[qb + 1]; e++) {
        const id = layout.maskIds[e];
        add(layout.cols[e], id < 0 ? null : layout.masks[id]);
      }
    },
  };
}
