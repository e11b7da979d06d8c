// Band layouts: every mode whose rule is "lo <= j - i <= hi" on token indices of one
// sequence. 'all' causal is (-inf, 0], 'local' causal is [-(L-1), 0], bidirectional
// 'local' is [-(L-1), L-1]; 'strided' becomes 'all' inside each regrouped sequence.
// Counts are closed forms (count.ts); the CSR is built only when a kernel runs.
import { type BlockLayout, Layout, LayoutBuilder } from './block-layout.js';
import { bandBlockOffsets, bandCount, bandFullOffsets } from './count.js';

export class BandLayout extends Layout {
  readonly entries: bigint;
  readonly maskCount: number;
  /** Block offsets kb - qb visited: [oLo, oHi]. */
  private readonly offsets: [number, number];

  /**
   * `seqLen` query rows against `keyLen` key columns (a square band by default; cross-
   * attention shifts the band: query row r at position nK − nQ + r has lo, hi raised by nK − nQ).
   */
  constructor(readonly seqLen: number, blockSize: number, readonly lo: number, readonly hi: number, label: string, readonly keyLen = seqLen) {
    const nQB = Math.ceil(seqLen / blockSize);
    const nKB = Math.ceil(keyLen / blockSize);
    super(blockSize, nQB, nKB, label);
    this.offsets = bandBlockOffsets(blockSize, lo, hi);
    const [oLo, oHi] = this.offsets;
    this.entries = bandCount(nQB, nKB, oLo, oHi);
    // One mask per partly allowed offset present (kb - qb in [-(nQB - 1), nKB - 1]): offsets in
    // [oLo, oHi] outside the wholly allowed [fLo, fHi]. Masks of distinct offsets differ (each
    // cuts the band at a different place), so none is de-duplicated.
    const [fLo, fHi] = bandFullOffsets(blockSize, lo, hi);
    const size = (a: number, b: number) => Math.max(0, Math.min(b, nKB - 1) - Math.max(a, -(nQB - 1)) + 1);
    this.maskCount = size(oLo, oHi) - size(Math.max(fLo, oLo), Math.min(fHi, oHi));
  }

  countPairs(nQ: number, nK: number): bigint {
    return bandCount(nQ, nK, this.lo, this.hi);
  }

  countBlocks(nQ: number, nK: number): bigint {
    const bs = this.blockSize;
    return bandCount(Math.ceil(nQ / bs), Math.ceil(nK / bs), this.offsets[0], this.offsets[1]);
  }

  protected build(): BlockLayout {
    return bandLayout(this.seqLen, this.blockSize, this.lo, this.hi, Number(this.entries), this.label, this.keyLen);
  }
}

/** The CSR of a band layout; `entries` (when known) sizes its arrays exactly. */
export function bandLayout(seqLen: number, blockSize: number, lo: number, hi: number, entries = 64, label?: string, keyLen = seqLen): BlockLayout {
  const bs = blockSize;
  const nB = Math.ceil(seqLen / bs);
  const nKB = Math.ceil(keyLen / bs);
  const builder = new LayoutBuilder(bs, nB, nKB, entries, label);
  // A block pair's mask depends only on its diagonal offset kb - qb: one mask per offset.
  const maskByOffset = new Map<number, Uint8Array>();
  for (let qb = 0; qb < nB; qb++) {
    // Candidate key blocks only; the exact test below decides.
    const kbLo = lo === -Infinity ? 0 : Math.max(0, qb + Math.floor((lo - bs + 1) / bs));
    const kbHi = hi === Infinity ? nKB - 1 : Math.min(nKB - 1, qb + Math.ceil((hi + bs - 1) / bs));
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
