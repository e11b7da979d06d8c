// Packed variable-length batches on the CPU path (issue 17; the GPU path: test/webgpu-inference.test.ts): forward(q, k, v, { seqLengths })
// with batch 1 — each sequence attends only within itself, positions restarting at 0 — equal
// to the reference and to separate calls, for every mode, GQA, key lengths, lengths around
// the block edges (0 included), on every wasm path; and its bad input.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseAttention, attentionReference, type SparseAttentionOptions } from '../dist/index.js';
import { wasmPaths } from './backends.js';
import { expectClose, randomTensor } from './helpers.js';

type Mode = 'all' | 'local' | 'strided' | 'fixed' | 'longformer' | 'custom';
interface PackedCase {
  mode: Mode;
  L?: number;
  bs: number;
  lens: number[];
  heads: number;
  kvHeads: number;
  d: number;
  options?: SparseAttentionOptions;
  keyLength?: number;
}

const cases: PackedCase[] = [];
for (const [mode, L] of [['all', undefined], ['local', 6], ['strided', 4]] as const) {
  for (const causal of [true, false]) {
    cases.push({ mode, L, bs: 16, lens: [5, 0, 16, 17, 1, 33], heads: 2, kvHeads: 2, d: 5, options: { causal } });
    cases.push({ mode, L, bs: 16, lens: [40, 3, 15], heads: 4, kvHeads: 1, d: 8, options: { causal } });
  }
  cases.push({ mode, L, bs: 16, lens: [20, 9, 31], heads: 4, kvHeads: 2, d: 6, keyLength: 45 });
}
cases.push({ mode: 'fixed', L: 16, bs: 8, lens: [30, 8, 25], heads: 4, kvHeads: 2, d: 4 });
cases.push({ mode: 'longformer', bs: 8, lens: [24, 17], heads: 2, kvHeads: 1, d: 8 });
cases.push({ mode: 'custom', bs: 8, lens: [12, 20], heads: 2, kvHeads: 2, d: 4, options: { layout: [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1]] } });

const name = (c: PackedCase) =>
  `${c.mode}${c.L ? ` L=${c.L}` : ''}${c.options?.causal === false ? ' bidir' : ''} lens [${c.lens}] ${c.heads}/${c.kvHeads} heads d${c.d}${c.keyLength !== undefined ? ` keyLengths [${c.keyLength}]` : ''}`;

describe.each(wasmPaths())('$name', (path) => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  it.each(cases.map((c) => [name(c), c] as const))('%s = the reference', async (_n, c) => {
    const n = c.lens.reduce((a, b) => a + b, 0);
    const options = { ...c.options, kvHeads: c.kvHeads };
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...options, ...path.options });
    instances.push(attn);
    const q = randomTensor([1, n, c.heads * c.d], 1, 2);
    const k = randomTensor([1, n, c.kvHeads * c.d], 2, 2);
    const v = randomTensor([1, n, c.kvHeads * c.d], 3);
    const keyLengths = c.keyLength === undefined ? undefined : [c.keyLength];
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, options, { seqLengths: c.lens, keyLengths });
    const fo = { seqLengths: c.lens, keyLengths };
    const out = path.sync ? attn.forwardSync(q, k, v, fo) : await attn.forward(q, k, v, fo);
    expectClose(out.data, ref.data, path.atol, path.rtol, `${path.name} ${name(c)}`);
  });
});

describe('packed sequences', () => {
  it.each([['all', undefined], ['local', 7], ['strided', 5]] as const)('%s: one packed call equals separate calls per sequence', async (mode, L) => {
    const [heads, kvHeads, d] = [4, 2, 8];
    const lens = [50, 1, 16, 33];
    const n = lens.reduce((a, b) => a + b, 0);
    const attn = new SparseAttention(heads, mode, L, 16, { kvHeads, threads: 2 });
    const q = randomTensor([1, n, heads * d], 4, 2);
    const k = randomTensor([1, n, kvHeads * d], 5, 2);
    const v = randomTensor([1, n, kvHeads * d], 6);
    const packed = await attn.forward(q, k, v, { seqLengths: lens });
    let at = 0;
    for (const len of lens) {
      const part = (t: { data: Float32Array }, w: number) => ({ data: t.data.slice(at * w, (at + len) * w), shape: [1, len, w] });
      const alone = await attn.forward(part(q, heads * d), part(k, kvHeads * d), part(v, kvHeads * d));
      expectClose(packed.data.subarray(at * heads * d, (at + len) * heads * d), Float64Array.from(alone.data), 1e-6, 1e-5, `${mode} sequence at ${at} (${len} tokens)`);
      at += len;
    }
    expect(attn.lastRun?.backend).toBe('wasm');
    attn.dispose();
  });

  it('bad seqLengths: clear errors, the instance usable afterwards', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'wasm', threads: 1 });
    const t = (b: number, n: number) => randomTensor([b, n, 8], 1);
    const code = async (f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        return `${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(await code(() => attn.forward(t(1, 10), t(1, 10), t(1, 10), { seqLengths: [4, 5] }))).toMatch(/ERR_ARGUMENT: .*seqLengths must be lengths summing to nCtx \(10; they sum to 9\)/);
    expect(await code(() => attn.forward(t(2, 10), t(2, 10), t(2, 10), { seqLengths: [4, 6] }))).toMatch(/seqLengths must be used with batch 1/);
    expect(await code(() => attn.forward(t(1, 4), t(1, 10), t(1, 10), { seqLengths: [4] }))).toMatch(/seqLengths must be used with q and k of one length/);
    expect(await code(() => attn.forward(t(1, 10), t(1, 10), t(1, 10), { seqLengths: [4, -1, 7] }))).toMatch(/seqLengths\[1\] must be a non-negative integer \(got -1\)/);
    expect(await code(() => attn.forward(t(1, 10), t(1, 10), t(1, 10), { seqLengths: [4.5, 5.5] }))).toMatch(/seqLengths\[0\] must be a non-negative integer/);
    expect(await code(() => attn.forward(t(1, 10), t(1, 10), t(1, 10), { seqLengths: [] }))).toMatch(/seqLengths must be an array of sequence lengths/);
    expect(await code(() => attn.forwardSync(t(1, 10), t(1, 10), t(1, 10), { seqLengths: '10' as unknown as number[] }))).toMatch(/seqLengths must be an array/);
    const cache = attn.createCache({ batch: 1, capacity: 20 });
    expect(await code(() => attn.forward(t(1, 2), t(1, 2), t(1, 2), { cache, seqLengths: [2] }))).toMatch(/seqLengths must be undefined with a cache/);
    expect(cache.length).toBe(0);
    const ok = await attn.forward(t(1, 10), t(1, 10), t(1, 10), { seqLengths: [10] });
    expect(ok.shape).toEqual([1, 10, 8]);
    cache.dispose();
    attn.dispose();
  });
});
