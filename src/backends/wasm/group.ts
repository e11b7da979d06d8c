// GQA/MQA on the CPU kernel: the G = heads / kvHeads query heads that share a K/V head run
// as one sequence whose rows are (query row, head) pairs, row r = query row ⌊r / G⌋ of head
// r mod G (abi.ts SEQ qHeads). A tile of BLOCK rows then holds every head of the group, so
// each K/V block is read and packed once per group instead of once per query head, and a
// decode step's single query row fills G lanes instead of one. The block layout of such a
// sequence is derived from the plan's layout (query positions) by expanding each query row
// G times: a row's allowed keys are those of its query position, its mask that row's mask.
import type { Plan } from '../../plan.js';
import { type BlockLayout, LayoutBuilder } from '../../layout/block-layout.js';

/**
 * Query heads per kernel sequence: heads / kvHeads when the heads of every group share
 * one block layout (always for the built-in modes; per-head custom layouts or 'fixed'
 * patterns may differ within a group, and then run a head per sequence), else 1.
 */
export function qHeadsOf(plan: Pick<Plan, 'heads' | 'kvHeads' | 'headLayout'>): number {
  const G = plan.heads / plan.kvHeads;
  if (G <= 1) return 1;
  for (let h = 0; h < plan.heads; h++) {
    if (plan.headLayout[h] !== plan.headLayout[h - (h % G)]) return 1;
  }
  return G;
}

const expanded = new WeakMap<BlockLayout, Map<string, BlockLayout>>();

/**
 * The layout of a grouped sequence: nQ query rows of `base` (blocks of base.blockSize
 * positions), each repeated G times, cut into blocks of the same size. A grouped block
 * visits the union of its positions' key blocks; an entry is full when every live row's
 * position has it full, else it carries the rows' masks (rows without the entry: none).
 */
export function groupedLayout(base: BlockLayout, G: number, nQ: number): BlockLayout {
  if (G === 1) return base;
  let byShape = expanded.get(base);
  if (!byShape) expanded.set(base, (byShape = new Map()));
  const key = `${G}:${nQ}`;
  let out = byShape.get(key);
  if (out) return out;
  const bs = base.blockSize;
  const rowsTotal = nQ * G;
  const nQB = Math.ceil(rowsTotal / bs);
  const builder = new LayoutBuilder(bs, nQB, base.nKB, base.cols.length * G + 1, 'a grouped (GQA) block layout');
  for (let qb = 0; qb < nQB; qb++) {
    const r0 = qb * bs;
    const r1 = Math.min(r0 + bs, rowsTotal);
    const pb0 = Math.floor(Math.floor(r0 / G) / bs);
    const pb1 = Math.floor(Math.floor((r1 - 1) / G) / bs);
    // The base rows' entries merged by key block (each row's cols ascend): cursors walk them once.
    const cursor = Int32Array.from({ length: pb1 - pb0 + 1 }, (_, i) => base.rowPtr[pb0 + i]);
    const entries = new Int32Array(pb1 - pb0 + 1);
    for (;;) {
      let kb = Infinity;
      for (let pb = pb0; pb <= pb1; pb++) if (cursor[pb - pb0] < base.rowPtr[pb + 1]) kb = Math.min(kb, base.cols[cursor[pb - pb0]]);
      if (kb === Infinity) break;
      let full = true;
      for (let pb = pb0; pb <= pb1; pb++) {
        const i = pb - pb0;
        const e = cursor[i] < base.rowPtr[pb + 1] && base.cols[cursor[i]] === kb ? cursor[i]++ : -1;
        entries[i] = e;
        // a base block with this entry masked, or without it, and with a position of this tile
        if (e < 0 || base.maskIds[e] >= 0) {
          const lo = Math.max(pb * bs, Math.floor(r0 / G));
          const hi = Math.min(pb * bs + bs - 1, Math.floor((r1 - 1) / G));
          if (lo <= hi) full = false;
        }
      }
      if (full) {
        builder.add(kb, null);
        continue;
      }
      // Rows past the last live one are left fully allowed: they are computed, never stored.
      const mask = new Uint8Array(bs * bs).fill(1);
      for (let r = r0; r < r1; r++) {
        const p = Math.floor(r / G);
        const e = entries[Math.floor(p / bs) - pb0];
        const row = mask.subarray((r - r0) * bs, (r - r0 + 1) * bs);
        if (e < 0) row.fill(0);
        else if (base.maskIds[e] >= 0) row.set(base.masks[base.maskIds[e]].subarray((p % bs) * bs, (p % bs + 1) * bs));
      }
      builder.add(kb, mask);
    }
    builder.endRow();
  }
  out = builder.build();
  byShape.set(key, out);
  return out;
}
