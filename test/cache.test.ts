// The KV cache (issue 17) on the CPU path: prefill in chunks, decode one token at a time,
// truncate and continue — every row equal to the same row of the whole self-attention, for
// every band mode with grouped K/V heads (ratios 1, 2, 4) and batch 2 — and its misuse:
// clear errors, nothing appended, the cache and instance usable afterwards.
import { describe, expect, it } from 'vitest';
import { KvCache, SparseAttention, SparseAttentionError, attentionReference } from '../dist/index.js';
import { expectClose, randomTensor } from './helpers.js';

const TOL = [1e-5, 1e-4] as const;
const [B, N, D] = [2, 61, 8];

function rows(x: Float32Array, width: number, t0: number, t1: number): Float32Array {
  const out = new Float32Array(B * (t1 - t0) * width);
  for (let b = 0; b < B; b++) out.set(x.subarray((b * N + t0) * width, (b * N + t1) * width), b * (t1 - t0) * width);
  return out;
}

describe.each([
  ['all', undefined],
  ['local', 7],
  ['strided', 5],
] as const)('%s', (mode, L) => {
  it.each([[4, 4], [4, 2], [4, 1]])('heads %i / kvHeads %i: chunks, decode steps, truncate, more steps = rows of the whole attention', async (heads, kvHeads) => {
    const q = randomTensor([B, N, heads * D], 1, 2);
    const k = randomTensor([B, N, kvHeads * D], 2, 2);
    const v = randomTensor([B, N, kvHeads * D], 3);
    const full = attentionReference(q, k, v, heads, mode, L, 16, { kvHeads }).data;
    const attn = new SparseAttention(heads, mode, L, 16, { kvHeads, threads: 2 });
    const cache = attn.createCache({ batch: B, capacity: 100 });
    const step = async (t0: number, t1: number) => {
      const t = (x: { data: Float32Array }, w: number) => ({ data: rows(x.data, w, t0, t1), shape: [B, t1 - t0, w] });
      const out = await attn.forward(t(q, heads * D), t(k, kvHeads * D), t(v, kvHeads * D), { cache });
      expect(out.shape).toEqual([B, t1 - t0, heads * D]);
      expectClose(out.data, Float64Array.from(rows(Float32Array.from(full), heads * D, t0, t1)), ...TOL, `${mode} tokens ${t0}..${t1 - 1}`);
      expect(cache.length).toBe(t1);
    };
    await step(0, 10);
    await step(10, 23);
    for (let t = 23; t < 50; t++) await step(t, t + 1);
    cache.truncate(45);
    expect(cache.length).toBe(45);
    for (let t = 45; t < N; t++) await step(t, t + 1);
    expect(attn.lastRun!.backend).toBe('wasm');
    expect(attn.lastRun!.reason).toMatch(/KV cache call \(1 new of 61 tokens\)/);
    cache.dispose();
    attn.dispose();
  });
});

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(SparseAttentionError);
    return `${(e as { code: string }).code}: ${(e as Error).message}`;
  }
  return 'no error';
}

describe('misuse', () => {
  const t = (n: number, w: number, seed = 1) => randomTensor([1, n, w], seed);
  it('past capacity, another instance, a busy cache, wrong shapes, keyLengths: errors, nothing appended', async () => {
    const attn = new SparseAttention(2, 'local', 4, 16, { threads: 2 });
    const other = new SparseAttention(2, 'local', 4, 16, { threads: 2 });
    const cache = attn.createCache({ batch: 1, capacity: 8 });
    expect(cache).toBeInstanceOf(KvCache);
    await attn.forward(t(5, 8), t(5, 8), t(5, 8), { cache });
    expect(await code(attn.forward(t(4, 8), t(4, 8), t(4, 8), { cache }))).toMatch(/ERR_ARGUMENT: .*appending 4 tokens to 5 exceeds its capacity \(8\); nothing was appended/);
    expect(cache.length).toBe(5);
    expect(await code(other.forward(t(1, 8), t(1, 8), t(1, 8), { cache }))).toMatch(/ERR_ARGUMENT: .*cache must be a KvCache from this instance's createCache\(\)/);
    expect(await code(attn.forward(t(2, 8), t(1, 8), t(1, 8), { cache }))).toMatch(/q\.shape\[1\] must be the number of new keys \(1\)/);
    expect(await code(attn.forward(t(1, 8), t(1, 8), t(1, 8), { cache, keyLengths: [3] }))).toMatch(/keyLengths must be undefined with a cache/);
    const first = attn.forward(t(1, 8), t(1, 8), t(1, 8), { cache });
    expect(await code(attn.forward(t(1, 8), t(1, 8), t(1, 8), { cache }))).toMatch(/ERR_STATE: .*in flight/);
    await first;
    expect(cache.length).toBe(6);
    expect(await code(() => cache.truncate(7))).toMatch(/n must be an integer in \[0, 6\]/);
    cache.dispose();
    expect(await code(attn.forward(t(1, 8), t(1, 8), t(1, 8), { cache }))).toMatch(/ERR_STATE: .*disposed/);
    expect(await code(() => attn.createCache({ batch: 0, capacity: 4 }))).toMatch(/batch must be a positive integer/);
    [attn, other].forEach((a) => a.dispose());
  });
  it('an aborted call rolls its tokens back', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { threads: 2 });
    const cache = attn.createCache({ batch: 1, capacity: 64 });
    await attn.forward(t(8, 8), t(8, 8), t(8, 8), { cache });
    const ac = new AbortController();
    const call = attn.forward(t(4, 8, 5), t(4, 8, 6), t(4, 8, 7), { cache, signal: ac.signal });
    ac.abort(new Error('stop'));
    expect(await code(call)).toMatch(/ERR_ABORTED/);
    expect(cache.length).toBe(8);
    await attn.forward(t(1, 8), t(1, 8), t(1, 8), { cache });
    expect(cache.length).toBe(9);
    attn.dispose();
  });
});

describe('bytes an append writes (counted in the append path)', () => {
  it.each([['all', undefined], ['strided', 7]] as const)('%s: a 1-token step writes only its own K and V rows, whatever the cache length', async (mode, L) => {
    const [heads, kvHeads, d, batch] = [8, 2, 16, 2];
    const attn = new SparseAttention(heads, mode, L, 16, { kvHeads, threads: 2 });
    const cache = attn.createCache({ batch, capacity: 400 });
    const rowBytes = 2 * batch * kvHeads * d * 4; // K and V of one token, every batch item and K/V head
    await attn.forward(randomTensor([batch, 300, heads * d], 1), randomTensor([batch, 300, kvHeads * d], 2), randomTensor([batch, 300, kvHeads * d], 3), { cache });
    expect(cache.bytesWritten).toBe(300 * rowBytes);
    for (let step = 1; step <= 3; step++) {
      const before = cache.bytesWritten;
      await attn.forward(randomTensor([batch, 1, heads * d], 10 + step), randomTensor([batch, 1, kvHeads * d], 20 + step), randomTensor([batch, 1, kvHeads * d], 30 + step), { cache });
      expect(cache.bytesWritten - before).toBe(rowBytes);
    }
    // a roll-back zeros the rows it drops, and only those
    const before = cache.bytesWritten;
    cache.truncate(301);
    expect(cache.bytesWritten - before).toBe(2 * rowBytes);
    attn.dispose();
  });
});

describe('a decode step and the same cross-attention call run the same path', () => {
  it.each([
    ['all', undefined, 4, 4], ['all', undefined, 8, 2], ['local', 9, 8, 2], ['strided', 5, 8, 2], ['strided', 5, 4, 1], ['local', 9, 4, 1],
  ] as const)('%s L=%s, %i/%i heads: the step equals forward(q of 1 row, all keys) bit for bit', async (mode, L, heads, kvHeads) => {
    const [n, d] = [70, 12];
    const q = randomTensor([1, n, heads * d], 1, 2);
    const k = randomTensor([1, n, kvHeads * d], 2, 2);
    const v = randomTensor([1, n, kvHeads * d], 3);
    const rowsOf = (t: { data: Float32Array }, w: number, t0: number, t1: number) => ({ data: t.data.slice(t0 * w, t1 * w), shape: [1, t1 - t0, w] });
    const attn = new SparseAttention(heads, mode, L, 16, { kvHeads, threads: 2 });
    const cache = attn.createCache({ batch: 1, capacity: n });
    await attn.forward(rowsOf(q, heads * d, 0, n - 1), rowsOf(k, kvHeads * d, 0, n - 1), rowsOf(v, kvHeads * d, 0, n - 1), { cache });
    const step = await attn.forward(rowsOf(q, heads * d, n - 1, n), rowsOf(k, kvHeads * d, n - 1, n), rowsOf(v, kvHeads * d, n - 1, n), { cache });
    const cross = await attn.forward(rowsOf(q, heads * d, n - 1, n), k, v);
    expect(step.data).toEqual(cross.data);
    attn.dispose();
  });
});

describe('small calls on the calling thread', () => {
  // A decode step of a small model is less work than a round trip to the workers: it runs on
  // the calling thread (lastRun says so), a large call on the workers; both are right.
  it('a 1-token step runs inline, a prefill on the workers; strided steps read only their group', async () => {
    const [heads, kvHeads, d] = [8, 2, 16];
    for (const [mode, L] of [['local', 48], ['strided', 8]] as const) {
      const attn = new SparseAttention(heads, mode, L, 16, { kvHeads, threads: 2 });
      const cache = attn.createCache({ batch: 1, capacity: 400 });
      const n = 300;
      const q = randomTensor([1, n + 1, heads * d], 1);
      const k = randomTensor([1, n + 1, kvHeads * d], 2);
      const v = randomTensor([1, n + 1, kvHeads * d], 3);
      const rows = (t: { data: Float32Array }, w: number, a: number, b: number) => ({ data: t.data.slice(a * w, b * w), shape: [1, b - a, w] });
      await attn.forward(rows(q, heads * d, 0, n), rows(k, kvHeads * d, 0, n), rows(v, kvHeads * d, 0, n), { cache });
      expect(attn.lastRun!.detail).toMatch(/2 threads/);
      const step = await attn.forward(rows(q, heads * d, n, n + 1), rows(k, kvHeads * d, n, n + 1), rows(v, kvHeads * d, n, n + 1), { cache });
      expect(attn.lastRun!.detail).toMatch(/calling thread/);
      const ref = attentionReference(q, k, v, heads, mode, L, 16, { kvHeads });
      expectClose(step.data, ref.data.subarray(n * heads * d), ...TOL, `${mode} step`);
      attn.dispose();
    }
  });
});
