// Band layouts: every mode whose rule is "lo <= j - i <= hi" on token indices of one
// sequence. 'all' causal is (-inf, 0], 'local' causal is [-(L-1), 0], bidirectional
// 'local' is [-(L-1), L-1]; 'strided' becomes 'all' inside each regrouped sequence.
import { type BlockLayout, LayoutBuilder } from './block-layout.js';

export function bandLayout(seqLen: number, blockSize: number, lo: number, hi: number): BlockLayout {
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
