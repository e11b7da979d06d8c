// The kernel's mask records, built once per layout from its token masks (row-major
// [bs][bs] 0/1, see layout/block-layout.ts). A record (abi.ts MASK_RANGE_FIELDS) holds,
// per tile of MASK_TILE_ROWS query rows, [cLo, cHi, fLo, fHi] i32 — the columns with any
// allowed key and the longest run of columns allowed for every row of the tile — then
// [kCol][qRow] i32 with -1 = allowed: key-major, so that the kernel reads a key's mask
// for 4 query rows as one vector.
import type { BlockLayout } from '../../layout/block-layout.js';
import { MASK_RANGE, MASK_RANGE_WORDS, MASK_TILE_ROWS } from './abi.js';

const records = new WeakMap<BlockLayout, Int32Array>();

/** i32 words of one mask record: a range entry per tile, then [bs][bs]. */
export function maskRecordWords(bs: number): number {
  return (bs / MASK_TILE_ROWS) * MASK_RANGE_WORDS + bs * bs;
}

/** The layout's mask records, maskRecordWords(bs) each, in mask id order. */
export function maskRecords(layout: BlockLayout): Int32Array {
  let out = records.get(layout);
  if (out) return out;
  const bs = layout.blockSize;
  const words = maskRecordWords(bs);
  out = new Int32Array(layout.masks.length * words);
  layout.masks.forEach((mask, id) => writeRecord(out!, id * words, mask, bs));
  records.set(layout, out);
  return out;
}

function writeRecord(out: Int32Array, base: number, mask: ArrayLike<number>, bs: number): void {
  const rows = MASK_TILE_ROWS;
  const body = base + (bs / rows) * MASK_RANGE_WORDS;
  for (let t = 0; t < bs / rows; t++) {
    let lo = bs;
    let hi = 0;
    let runLo = 0;
    let bestLo = 0;
    let bestLen = 0;
    for (let c = 0; c < bs; c++) {
      let all = true;
      for (let r = t * rows; r < (t + 1) * rows; r++) {
        if (mask[r * bs + c]) {
          lo = Math.min(lo, c);
          hi = Math.max(hi, c + 1);
        } else {
          all = false;
        }
      }
      if (!all) runLo = c + 1;
      else if (c + 1 - runLo > bestLen) {
        bestLo = runLo;
        bestLen = c + 1 - runLo;
      }
    }
    const e = base + t * MASK_RANGE_WORDS;
    out[e + MASK_RANGE.cLo] = Math.min(lo, hi);
    out[e + MASK_RANGE.cHi] = hi;
    out[e + MASK_RANGE.fLo] = bestLo;
    out[e + MASK_RANGE.fHi] = bestLo + bestLen;
  }
  for (let r = 0; r < bs; r++) for (let c = 0; c < bs; c++) out[body + c * bs + r] = mask[r * bs + c] ? -1 : 0;
}
