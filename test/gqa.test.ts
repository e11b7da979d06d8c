// GQA/MQA on the CPU kernel (issue 17): the query heads of one K/V head run as one sequence
// of (query row, head) rows (src/backends/wasm/group.ts). Every mode (the band modes, 'fixed',
// the named patterns, custom layouts shared or per head, a token mask), GQA ratios 1, 2, 3, 4,
// 8 and MQA, head dims around the vector width, sizes around the block edges, key lengths,
// on every wasm build, thread count and forwardSync, against the float64 reference; the
// grouped block layout row by row against its source layout.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseAttention, attentionReference, type SparseAttentionOptions } from '../dist/index.js';
import { groupedLayout, qHeadsOf } from '../src/backends/wasm/group.js';
import { bandLayout } from '../src/layout/band.js';
import type { BlockLayout } from '../src/layout/block-layout.js';
import { wasmPaths } from './backends.js';
import { expectClose, randomTensor } from './helpers.js';

type Mode = 'all' | 'local' | 'strided' | 'fixed' | 'longformer' | 'bigbird' | 'custom';
interface GqaCase {
  mode: Mode;
  L?: number;
  bs: number;
  batch: number;
  nQ: number;
  nK: number;
  heads: number;
  kvHeads: number;
  d: number;
  options?: SparseAttentionOptions;
  keyLengths?: number[];
}

const shared = [
  [1, 0, 0, 0],
  [1, 1, 0, 0],
  [0, 1, 1, 0],
  [1, 0, 1, 1],
];
const other = [
  [0, 0, 0, 0],
  [1, 0, 1, 0],
  [1, 1, 1, 1],
  [0, 0, 0, 1],
];

const cases: GqaCase[] = [];
// Ratios 1, 2, 3 (not a divisor of the 8-row tile), 4, 8 and MQA; head dims 3, 4, 5, 8, 9.
const ratios: [number, number, number][] = [[2, 2, 4], [4, 2, 5], [6, 2, 3], [8, 2, 8], [8, 1, 9], [16, 2, 4], [3, 1, 4]];
for (const [mode, L] of [['all', undefined], ['local', 6], ['strided', 5]] as const) {
  for (const causal of [true, false]) {
    for (const [nQ, nK] of [[1, 1], [1, 41], [3, 19], [9, 9], [17, 17], [7, 40]]) {
      for (const [heads, kvHeads, d] of ratios) {
        cases.push({ mode, L, bs: 16, batch: 1, nQ, nK, heads, kvHeads, d, options: { causal } });
      }
    }
  }
  cases.push({ mode, L, bs: 16, batch: 2, nQ: 33, nK: 33, heads: 6, kvHeads: 2, d: 7, keyLengths: [33, 20] });
}
for (const causal of [true, false]) {
  cases.push({ mode: 'fixed', L: 32, bs: 8, batch: 2, nQ: 41, nK: 41, heads: 4, kvHeads: 2, d: 5, options: { causal } });
  // numVerts 2: heads 0, 1 of a group have different patterns: one head per sequence, K/V packed once
  cases.push({ mode: 'fixed', L: 32, bs: 8, batch: 1, nQ: 50, nK: 50, heads: 4, kvHeads: 2, d: 4, options: { causal, numVerts: 2, vertsize: 1 } });
  cases.push({ mode: 'longformer', bs: 8, batch: 1, nQ: 40, nK: 40, heads: 4, kvHeads: 1, d: 6, options: { causal } });
  cases.push({ mode: 'bigbird', bs: 8, batch: 1, nQ: 45, nK: 45, heads: 6, kvHeads: 3, d: 8, options: { causal, numRandomBlocks: 2, differentLayoutPerHead: true, seed: 3 } });
}
cases.push({ mode: 'custom', bs: 16, batch: 2, nQ: 60, nK: 60, heads: 4, kvHeads: 2, d: 12, options: { layout: shared } });
cases.push({ mode: 'custom', bs: 16, batch: 1, nQ: 64, nK: 64, heads: 4, kvHeads: 2, d: 5, options: { layout: [shared, shared, other, other] } });
cases.push({ mode: 'custom', bs: 16, batch: 1, nQ: 64, nK: 64, heads: 4, kvHeads: 2, d: 5, options: { layout: [shared, other, other, shared] } });
cases.push({
  mode: 'custom', bs: 8, batch: 1, nQ: 45, nK: 45, heads: 4, kvHeads: 1, d: 9,
  options: { layout: (h, qb, kb) => kb <= qb && (qb - kb) % (h + 2) !== 1, mask: (h, i, j) => (i + j + h) % 3 !== 0 },
});

const name = (c: GqaCase) =>
  `${c.mode}${c.L ? ` L=${c.L}` : ''}${c.options?.causal === false ? ' bidir' : ''} [${c.batch}, ${c.nQ} q x ${c.nK} k] ${c.heads}/${c.kvHeads} heads d${c.d}` +
  `${c.keyLengths ? ` lens=${c.keyLengths}` : ''}${c.options?.numVerts ? ` numVerts=${c.options.numVerts}` : ''}${typeof c.options?.layout === 'function' ? ' fn+mask' : Array.isArray((c.options?.layout as ArrayLike<ArrayLike<unknown>> | undefined)?.[0]?.[0]) ? ' per-head' : ''}`;

describe.each(wasmPaths())('$name', (path) => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const options = { ...c.options, kvHeads: c.kvHeads };
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...options, ...path.options });
    instances.push(attn);
    const q = randomTensor([c.batch, c.nQ, c.heads * c.d], 1, 2);
    const k = randomTensor([c.batch, c.nK, c.kvHeads * c.d], 2, 2);
    const v = randomTensor([c.batch, c.nK, c.kvHeads * c.d], 3);
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, options, { keyLengths: c.keyLengths });
    const out = path.sync ? attn.forwardSync(q, k, v, { keyLengths: c.keyLengths }) : await attn.forward(q, k, v, { keyLengths: c.keyLengths });
    expectClose(out.data, ref.data, path.atol, path.rtol, `${path.name} ${name(c)}`);
  });
});

describe('grouped block layouts', () => {
  /** Allowed (row, key) of a layout as a set of "row,key", rows < nRows, keys < nK. */
  function allowed(l: BlockLayout, nRows: number, nK: number, rowOf: (r: number) => number = (r) => r): Set<string> {
    const out = new Set<string>();
    const bs = l.blockSize;
    for (let r = 0; r < nRows; r++) {
      const p = rowOf(r);
      const qb = Math.floor(p / bs);
      for (let e = l.rowPtr[qb]; e < l.rowPtr[qb + 1]; e++) {
        const kb = l.cols[e];
        for (let c = 0; c < bs && kb * bs + c < nK; c++) {
          if (l.maskIds[e] < 0 || l.masks[l.maskIds[e]][(p % bs) * bs + c]) out.add(`${r},${kb * bs + c}`);
        }
      }
    }
    return out;
  }

  it.each([
    [1, 8, 1, 64, 0, 0],
    [4, 8, 1, 4097, 0, 4096],
    [3, 8, 5, 20, -7, 15],
    [4, 16, 33, 33, -Infinity, 0],
    [8, 8, 9, 30, -4, 21],
    [2, 16, 40, 40, -5, 5],
  ])('G %i, block %i: %i query rows against %i keys, band [%s, %s]: row r allows what query row r / G does', (G, bs, nQ, nK, lo, hi) => {
    const base = bandLayout(nQ, bs, lo, hi, 64, undefined, nK);
    const g = groupedLayout(base, G, nQ);
    expect(g.nQB).toBe(Math.ceil((nQ * G) / bs));
    expect(allowed(g, nQ * G, nK)).toEqual(allowed(base, nQ * G, nK, (r) => Math.floor(r / G)));
    // cached: the same object for the same base and shape
    expect(groupedLayout(base, G, nQ)).toBe(g);
  });

  it('a decode step of 4 heads a K/V head is one block of 8 rows over every key block, all full but the last', () => {
    const base = bandLayout(1, 8, -Infinity, 4096, 64, undefined, 4097);
    const g = groupedLayout(base, 4, 1);
    expect(g.nQB).toBe(1);
    expect(g.rowPtr[1]).toBe(Math.ceil(4097 / 8));
    expect([...g.maskIds].filter((m) => m >= 0).length).toBeLessThanOrEqual(1);
  });

  it('query heads share a sequence only when every head of a group has the same layout', () => {
    expect(qHeadsOf({ heads: 8, kvHeads: 2, headLayout: new Int32Array(8) })).toBe(4);
    expect(qHeadsOf({ heads: 8, kvHeads: 8, headLayout: new Int32Array(8) })).toBe(1);
    expect(qHeadsOf({ heads: 4, kvHeads: 2, headLayout: Int32Array.of(0, 0, 1, 1) })).toBe(2);
    expect(qHeadsOf({ heads: 4, kvHeads: 2, headLayout: Int32Array.of(0, 1, 0, 1) })).toBe(1);
  });
});
