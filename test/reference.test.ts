// The float64 reference states the inference contract (DESIGN.md §2) before the kernels
// run it; these tests tie its new dimensions to the old, plainly checkable ones:
// cross-attention rows are the last rows of the self-attention over the same keys (every
// causal mode: bottom-right alignment), grouped K/V heads equal K/V repeated per query
// head, and packed sequences equal separate calls.
import { describe, expect, it } from 'vitest';
import { attentionReference } from '../src/reference.js';
import { randomTensor } from './helpers.js';

const modes = [['all', undefined], ['local', 7], ['strided', 5], ['fixed', 16]] as const;
const near = (a: Float64Array, b: Float64Array) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-12 + 1e-12 * Math.abs(b[i]));
};

describe('reference: cross-attention (nQ < nK, bottom-right)', () => {
  it.each(modes)('%s: the rows of q against all keys are the last nQ rows of self-attention', (mode, L) => {
    const [batch, nK, nQ, heads, d] = [2, 45, 13, 2, 4];
    const k = randomTensor([batch, nK, heads * d], 2);
    const v = randomTensor([batch, nK, heads * d], 3);
    const qFull = randomTensor([batch, nK, heads * d], 1);
    const full = attentionReference(qFull, k, v, heads, mode, L, 8);
    const qData = new Float32Array(batch * nQ * heads * d);
    for (let b = 0; b < batch; b++) qData.set(qFull.data.subarray((b * nK + nK - nQ) * heads * d, (b + 1) * nK * heads * d), b * nQ * heads * d);
    const cross = attentionReference({ data: qData, shape: [batch, nQ, heads * d] }, k, v, heads, mode, L, 8);
    const want = new Float64Array(batch * nQ * heads * d);
    for (let b = 0; b < batch; b++) want.set(full.data.subarray((b * nK + nK - nQ) * heads * d, (b + 1) * nK * heads * d), b * nQ * heads * d);
    near(cross.data, want);
    expect(cross.shape).toEqual([batch, nQ, heads * d]);
  });
});

describe('reference: grouped K/V heads', () => {
  it.each([[8, 4], [8, 2], [8, 1], [6, 3]])('heads %i / kvHeads %i equals K/V repeated per query head', (heads, kvHeads) => {
    const [batch, n, d] = [1, 20, 3];
    const q = randomTensor([batch, n, heads * d], 1);
    const k = randomTensor([batch, n, kvHeads * d], 2);
    const v = randomTensor([batch, n, kvHeads * d], 3);
    const repeat = (t: { data: Float32Array }) => {
      const out = new Float32Array(batch * n * heads * d);
      for (let r = 0; r < batch * n; r++) {
        for (let h = 0; h < heads; h++) {
          const kvh = Math.floor((h * kvHeads) / heads);
          out.set(t.data.subarray(r * kvHeads * d + kvh * d, r * kvHeads * d + kvh * d + d), r * heads * d + h * d);
        }
      }
      return { data: out, shape: [batch, n, heads * d] };
    };
    const gqa = attentionReference(q, k, v, heads, 'local', 6, 8, { kvHeads });
    const rep = attentionReference(q, repeat(k), repeat(v), heads, 'local', 6, 8);
    near(gqa.data, rep.data);
  });
  it('kvHeads must divide heads; k, v must carry kvHeads·headDim columns', () => {
    const q = randomTensor([1, 4, 8], 1);
    expect(() => attentionReference(q, q, q, 4, 'all', undefined, 8, { kvHeads: 3 })).toThrow(/options\.kvHeads must be a divisor of heads \(4\) \(got 3\)/);
    expect(() => attentionReference(q, q, q, 4, 'all', undefined, 8, { kvHeads: 2 })).toThrow(/k\.shape must be \[1, 4, 4\]/);
  });
});

describe('reference: packed sequences', () => {
  it.each(modes)('%s: seqLengths equals separate calls', (mode, L) => {
    const lens = [9, 1, 17, 0, 6];
    const n = lens.reduce((a, b) => a + b);
    const [heads, d] = [2, 3];
    const [q, k, v] = [1, 2, 3].map((s) => randomTensor([1, n, heads * d], s));
    const packed = attentionReference(q, k, v, heads, mode, L, 8, {}, { seqLengths: lens });
    let at = 0;
    for (const len of lens) {
      if (len > 0) {
        const part = (t: { data: Float32Array }) => ({ data: t.data.slice(at * heads * d, (at + len) * heads * d), shape: [1, len, heads * d] });
        const one = attentionReference(part(q), part(k), part(v), heads, mode, L, 8);
        near(packed.data.subarray(at * heads * d, (at + len) * heads * d) as Float64Array, one.data);
      }
      at += len;
    }
  });
});
