// mergeAttention and the reference's logsumexp: parts computed by the float64 reference over
// disjoint key subsets (a custom layout that keeps only the subset's key blocks, or
// keyLengths for a prefix) must merge into the reference over all keys within 1e-6
// relative, rows without keys in a part (or in every part) included. The kernels do not emit
// lse yet; these hold the merge and the reference's lse to their definitions.
import { describe, expect, it } from 'vitest';
import { ArgumentError, attentionReference, mergeAttention } from '../dist/index.js';
import { randomTensor } from './helpers.js';

const within = (a: ArrayLike<number>, r: ArrayLike<number>, rel: number, what: string) => {
  expect(a.length).toBe(r.length);
  for (let i = 0; i < r.length; i++) {
    if (r[i] === a[i]) continue; // equal, infinities included
    if (!(Math.abs(a[i] - r[i]) <= rel * Math.max(1, Math.abs(r[i])))) throw new Error(`${what}: index ${i} expected ${r[i]} got ${a[i]}`);
  }
};

describe("the reference's lse", () => {
  it('is ln Σ exp(s) over the allowed keys, −Infinity for a row with none', () => {
    const [heads, d, nCtx] = [2, 4, 9];
    const shape: [number, number, number] = [2, nCtx, heads * d];
    const [q, k, v] = [1, 2, 3].map((s) => randomTensor(shape, s, 2));
    const ref = attentionReference(q, k, v, heads, 'local', 3, 8, {}, { keyLengths: [9, 0] });
    expect(ref.lse.length).toBe(2 * heads * nCtx);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < nCtx; i++) {
        let sum = 0;
        for (let j = Math.max(0, i - 2); j <= i; j++) {
          let s = 0;
          for (let t = 0; t < d; t++) s += q.data[i * heads * d + h * d + t] * k.data[j * heads * d + h * d + t];
          sum += Math.exp(s / Math.sqrt(d));
        }
        expect(ref.lse[h * nCtx + i]).toBeCloseTo(Math.log(sum), 12);
        expect(ref.lse[(heads + h) * nCtx + i]).toBe(-Infinity); // batch item 1 has no keys
      }
    }
  });
});

describe('mergeAttention', () => {
  const [heads, d, bs, nCtx] = [3, 5, 8, 40];
  const nB = nCtx / bs;
  const shape: [number, number, number] = [2, nCtx, heads * d];
  const [q, k, v] = [4, 5, 6].map((s) => randomTensor(shape, s, 3));
  const full = attentionReference(q, k, v, heads, 'all', undefined, bs, { causal: false });
  /** The reference over the key blocks `keep` only (a custom layout listing them in every row). */
  const over = (keep: (kb: number) => boolean) =>
    attentionReference(q, k, v, heads, 'custom', undefined, bs, { layout: Array.from({ length: nB }, () => Array.from({ length: nB }, (_, kb) => (keep(kb) ? 1 : 0))) });

  it('merging parts over disjoint key blocks gives the result over all keys (≤ 1e-6 relative), in any order', () => {
    const parts = [over((kb) => kb % 3 === 0), over((kb) => kb % 3 === 1), over((kb) => kb % 3 === 2)];
    for (const order of [[0, 1, 2], [2, 0, 1]]) {
      const merged = mergeAttention(order.map((p) => ({ out: parts[p], lse: parts[p].lse })), heads);
      expect(merged.out.shape).toEqual(shape);
      expect(merged.out.data).toBeInstanceOf(Float64Array);
      within(merged.out.data, full.data, 1e-6, 'out');
      within(merged.lse, full.lse, 1e-6, 'lse');
    }
  });

  it('a part with no key for some rows (−Infinity) weighs nothing; rows no part covers stay zeros, lse −Infinity', () => {
    // Causal: the key blocks after a row's own contribute nothing to it, so the part of the
    // last blocks has no key for the first rows.
    const causal = (keep: (kb: number) => boolean) =>
      attentionReference(q, k, v, heads, 'custom', undefined, bs, {
        layout: Array.from({ length: nB }, (_, qb) => Array.from({ length: nB }, (_, kb) => (kb <= qb && keep(kb) ? 1 : 0))),
      });
    const whole = causal(() => true);
    const parts = [causal((kb) => kb < 2), causal((kb) => kb >= 2)];
    expect(parts[1].lse[0]).toBe(-Infinity);
    const merged = mergeAttention(parts.map((p) => ({ out: p, lse: p.lse })), heads);
    within(merged.out.data, whole.data, 1e-6, 'out');
    within(merged.lse, whole.lse, 1e-6, 'lse');
    // Neither part has keys for batch 1 (keyLengths 0): zeros, −Infinity.
    const none = attentionReference(q, k, v, heads, 'all', undefined, bs, { causal: false }, { keyLengths: [nCtx, 0] });
    const empty = mergeAttention([{ out: none, lse: none.lse }, { out: none, lse: none.lse }], heads);
    const half = nCtx * heads * d;
    expect(Array.from(empty.out.data.subarray(half)).every((x) => x === 0)).toBe(true);
    expect(Array.from(empty.lse.subarray(heads * nCtx)).every((x) => x === -Infinity)).toBe(true);
  });

  it('float32 parts give float32 results, still within float32 rounding of the exact merge', () => {
    const parts = [over((kb) => kb < 3), over((kb) => kb >= 3)].map((p) => ({
      out: { data: Float32Array.from(p.data), shape: p.shape },
      lse: Float32Array.from(p.lse),
    }));
    const merged = mergeAttention(parts, heads);
    expect(merged.out.data).toBeInstanceOf(Float32Array);
    expect(merged.lse).toBeInstanceOf(Float32Array);
    within(merged.out.data, full.data, 1e-5, 'out');
    within(merged.lse, full.lse, 1e-6, 'lse');
  });

  it('NaN in a part propagates', () => {
    const p = over(() => true);
    const lse = Float64Array.from(p.lse);
    lse[1] = NaN;
    const merged = mergeAttention([{ out: p, lse }, { out: p, lse: p.lse }], heads);
    expect(merged.lse[1]).toBeNaN();
    expect(merged.out.data[heads * d + 0]).toBeNaN(); // row 1, head 0
  });

  it('bad parts are clear errors', () => {
    const p = { out: full, lse: full.lse };
    const cases: [unknown, unknown, RegExp][] = [
      [[], heads, /parts must be a non-empty array of \{ out, lse \}/],
      [[p], 0, /heads must be a positive integer/],
      [[p], 4, /heads must be a divisor of nEmbd \(15\) \(got 4\)/],
      [[p, { out: { data: full.data, shape: [2, nCtx - 1, heads * d] }, lse: full.lse }], heads, /parts\[1\]\.out\.shape must be \[2, 40, 15\] \(the shape of parts\[0\]\.out\)/],
      [[{ out: full, lse: full.lse.subarray(1) }], heads, /parts\[0\]\.lse\.length must be batch · heads · nQ = 240 \(got 239\)/],
      [[{ out: { data: [1], shape: [1, 1, 1] }, lse: full.lse }], heads, /parts\[0\]\.out must be a tensor \{ data: Float32Array \| Float64Array/],
      [[{ out: full, lse: [0] }], heads, /parts\[0\]\.lse must be a Float32Array or Float64Array/],
      [[{ out: { data: full.data.subarray(1), shape: full.shape }, lse: full.lse }], heads, /parts\[0\]\.out\.data\.length must be 1200/],
    ];
    for (const [parts, h, message] of cases) {
      expect(() => mergeAttention(parts as never, h as never)).toThrow(ArgumentError);
      expect(() => mergeAttention(parts as never, h as never)).toThrow(message);
    }
  });
});
