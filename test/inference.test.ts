// Inference shapes on every CPU path (issue 17): grouped K/V heads (GQA ratios 1, 2, 4 and
// MQA) and cross-attention (nQ < nK, nQ = nK, and nQ > nK where the mode allows it),
// aligned bottom-right, with key lengths, against the float64 reference. The GPU path runs
// them in test/webgpu-inference.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseAttention, attentionReference } from '../dist/index.js';
import { wasmPaths } from './backends.js';
import { type InferenceCase, expectClose, randomTensor } from './helpers.js';

interface InfCase extends InferenceCase {
  mode: 'all' | 'local' | 'strided';
  d: number;
}

const cases: InfCase[] = [];
for (const [mode, L] of [['all', undefined], ['local', 9], ['strided', 4]] as const) {
  for (const causal of [true, false]) {
    for (const [nQ, nK] of [[1, 70], [17, 33], [33, 33], [5, 130], [40, 23]]) {
      if (mode === 'strided' && nQ > nK) continue;
      for (const [heads, kvHeads] of [[4, 4], [4, 2], [8, 2], [4, 1]]) {
        cases.push({ mode, L, causal, batch: 2, nQ, nK, heads, kvHeads, d: heads === 8 ? 4 : 6 });
      }
    }
  }
  cases.push({ mode, L, causal: true, batch: 2, nQ: 7, nK: 50, heads: 4, kvHeads: 2, d: 5, keyLengths: [50, 31] });
}
const name = (c: InfCase) =>
  `${c.mode}${c.L ? ` L=${c.L}` : ''}${c.causal ? '' : ' bidir'} [${c.batch}, ${c.nQ} q x ${c.nK} k] ${c.heads}/${c.kvHeads} heads d${c.d}${c.keyLengths ? ` lens=${c.keyLengths}` : ''}`;

function tensors(c: InfCase) {
  return {
    q: randomTensor([c.batch, c.nQ, c.heads * c.d], 1, 2),
    k: randomTensor([c.batch, c.nK, c.kvHeads * c.d], 2, 2),
    v: randomTensor([c.batch, c.nK, c.kvHeads * c.d], 3),
  };
}

describe.each(wasmPaths())('$name', (path) => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, 16, { causal: c.causal, kvHeads: c.kvHeads, ...path.options });
    instances.push(attn);
    const { q, k, v } = tensors(c);
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, 16, { causal: c.causal, kvHeads: c.kvHeads }, { keyLengths: c.keyLengths });
    const out = path.sync ? attn.forwardSync(q, k, v, { keyLengths: c.keyLengths }) : await attn.forward(q, k, v, { keyLengths: c.keyLengths });
    expect(out.shape).toEqual(q.shape);
    expectClose(out.data, ref.data, path.atol, path.rtol, `${path.name} ${name(c)}`);
  });
});

describe('shapes and paths', () => {
  it('plan() of a cross-attention shape counts the allowed pairs of the shifted band', () => {
    const attn = new SparseAttention(2, 'local', 4, 16, { backend: 'wasm' });
    // one query at position 99 against 100 keys: 4 keys (96..99) per head
    const p = attn.plan([1, 1, 16], { nK: 100 });
    expect(p.allowedPairs).toBe(2 * 4);
    attn.dispose();
  });
  it("'strided' needs nQ <= nK", async () => {
    const strided = new SparseAttention(2, 'strided', 4, 16, { backend: 'wasm' });
    const t = (n: number) => randomTensor([1, n, 8], n);
    await expect(strided.forward(t(10), t(5), t(5))).rejects.toThrow(/mode 'strided' with more queries \(10\) than keys \(5\) is not supported/);
    strided.dispose();
  });
  it('kvHeads must divide heads; k and v must carry kvHeads · headDim columns', async () => {
    expect(() => new SparseAttention(4, 'all', undefined, 16, { kvHeads: 3 })).toThrow(/options\.kvHeads must be a divisor of heads \(4\) \(got 3\)/);
    const attn = new SparseAttention(4, 'all', undefined, 16, { kvHeads: 2, backend: 'wasm' });
    const q = randomTensor([1, 8, 16], 1);
    await expect(attn.forward(q, q, q)).rejects.toThrow(/k\.shape must be \[1, nK, 8\] \(q's batch, any nK, kvHeads · headDim, 2 K\/V heads\) \(got \[1,8,16\]\)/);
    attn.dispose();
  });
});
