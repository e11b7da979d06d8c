// Score modifiers and lse on the WebGPU path (issue 18): softcap, ALiBi, sinks and a user scale,
// each alone and combined, in every mode, with grouped K/V heads, cross-attention, keyLengths,
// the GPU KV cache and decode shapes (flash-decoding, split and unsplit), the Q-from-global
// kernel (whose S is unscaled), forwardGPU; lse against the reference, and
// mergeAttention over disjoint key ranges computed with lse equal to the full call.
// Compile cost (lavapipe: 10–50 CPU-s per pipeline on a cold Mesa cache): every call runs at
// head dim 32 and block size 64 (band modes: at most 64 query rows, as in
// test/webgpu-inference.test.ts), so the modifiers add five pipelines: the forward program
// with MODS, with MODS and XATTN, the pinned 64×64 Q-per-tile variant with MODS (with
// subgroups: the adapter's automatic choice elsewhere), flash-decoding at dp32 with MODS and
// its combine pass with MODS. A scale alone needs none (a uniform of
// the programs test/webgpu.test.ts and test/webgpu-inference.test.ts compile).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparseAttention, attentionReference, mergeAttention } from '../dist/index.js';
import { type InferenceCase, expectClose, randomTensor, modifierSet as modifiers, referenceRows, tokenRows } from './helpers.js';
import { REQUIRE_GPU, probeAdapter } from './gpu-env.js';

const gpu = probeAdapter();
const run = gpu.ok || REQUIRE_GPU;
const D = 32;
const BS = 64;
const TOL = { atol: 1e-4, rtol: 1e-3 };
const LSE_TOL = { atol: 2e-4, rtol: 1e-5 };
type Mode = 'all' | 'local' | 'strided' | 'fixed' | 'longformer' | 'bigbird' | 'custom';

interface ModCase extends InferenceCase {
  mods: string;
}


const cases: ModCase[] = [];
for (const [mode, L] of [['all', undefined], ['local', 9], ['strided', 4]] as const) {
  for (const causal of [true, false]) {
    // self-attention; cross-attention (GQA); a decode step (MQA)
    for (const [nQ, nK, heads, kvHeads] of [[60, 60, 4, 4], [17, 130, 4, 2], [1, 70, 8, 1]]) {
      for (const mods of ['softcap', 'alibi', 'sinks', 'scale', 'all']) cases.push({ mode, L, causal, batch: 2, nQ, nK, heads, kvHeads, mods });
    }
  }
  cases.push({ mode, L, causal: true, batch: 2, nQ: 7, nK: 50, heads: 4, kvHeads: 2, mods: 'all', keyLengths: [50, 31] });
  cases.push({ mode, L, causal: true, batch: 1, nQ: 40, nK: 40, heads: 4, kvHeads: 4, mods: 'alibi-slopes' });
}
for (const causal of [true, false]) {
  for (const mods of ['all', 'alibi']) {
    cases.push({ mode: 'fixed', L: 128, causal, batch: 1, nQ: 200, nK: 200, heads: 4, kvHeads: 4, mods, options: { numVerts: 2, vertsize: 1 } });
    cases.push({ mode: 'longformer', causal, batch: 1, nQ: 300, nK: 300, heads: 4, kvHeads: 2, mods, options: { globalBlockIndices: [0, 3] } });
    cases.push({ mode: 'bigbird', causal, batch: 1, nQ: 260, nK: 260, heads: 4, kvHeads: 4, mods, options: { numRandomBlocks: 1, differentLayoutPerHead: true, seed: 3 } });
  }
}
cases.push({ mode: 'custom', causal: true, batch: 2, nQ: 200, nK: 200, heads: 4, kvHeads: 4, mods: 'all', keyLengths: [200, 90], options: { layout: [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1]] } });
cases.push({
  mode: 'custom', causal: true, batch: 1, nQ: 150, nK: 150, heads: 4, kvHeads: 2, mods: 'all',
  options: { layout: (h: number, qb: number, kb: number) => kb <= qb && (qb - kb) % (h + 2) !== 1, mask: (h: number, i: number, j: number) => (i + j + h) % 3 !== 0 },
});

const name = (c: ModCase) =>
  `${c.mods}: ${c.mode}${c.L ? ` L=${c.L}` : ''}${c.causal ? '' : ' bidir'} [${c.batch}, ${c.nQ} q x ${c.nK} k] ${c.heads}/${c.kvHeads} heads${c.keyLengths ? ` lens=${c.keyLengths}` : ''}`;

function optionsOf(c: Pick<ModCase, 'mode' | 'causal' | 'heads' | 'kvHeads' | 'options' | 'mods'>): Record<string, unknown> {
  const causal = c.mode === 'custom' ? {} : { causal: c.causal };
  return { ...causal, kvHeads: c.kvHeads, ...(c.options ?? {}), ...modifiers(c.mods, c.heads) };
}

describe.runIf(run)('webgpu score modifiers and lse', () => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  const track = (a: SparseAttention) => (instances.push(a), a);
  const make = (c: Parameters<typeof optionsOf>[0] & { L?: number }, webgpu: Record<string, unknown> = {}) =>
    track(new SparseAttention(c.heads, c.mode, c.L, BS, { ...optionsOf(c), backend: 'webgpu', webgpu }));

  // The pipelines compiled up front, in parallel (the three MODS ones, and those a scale alone
  // runs: the self-attention and XATTN programs, flash-decoding and its combine pass): on a
  // cold Mesa cache under load this takes minutes, more than one test's timeout (a hang guard).
  beforeAll(async () => {
    const c = { mode: 'all' as const, causal: true, heads: 4, kvHeads: 4, mods: 'softcap' };
    const x = randomTensor([1, 5, 4 * D], 1);
    const kv = (n: number) => [randomTensor([1, n, 2 * D], 2), randomTensor([1, n, 2 * D], 3)] as const;
    await Promise.all([
      make(c).forward(x, x, x),
      make({ ...c, kvHeads: 2 }).forward(x, ...kv(9)),
      make(c, { variant: 'bsattn_fwd_f32_q64_k64_qtile__subgroups' }).forward(x, x, x),
      make({ ...c, mods: 'scale' }).forward(x, x, x),
      make({ ...c, mods: 'scale', kvHeads: 2 }).forward(x, ...kv(9)),
      make({ ...c, mods: 'scale', kvHeads: 2 }).forward(randomTensor([1, 1, 4 * D], 1), ...kv(600)),
      make({ ...c, kvHeads: 2 }).forward(randomTensor([1, 1, 4 * D], 1), ...kv(600)),
    ]);
  }, 1_800_000);

  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const attn = make(c);
    const q = randomTensor([c.batch, c.nQ, c.heads * D], 1, 2);
    const k = randomTensor([c.batch, c.nK, c.kvHeads * D], 2, 2);
    const v = randomTensor([c.batch, c.nK, c.kvHeads * D], 3);
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, BS, optionsOf(c), { keyLengths: c.keyLengths });
    const lse = new Float32Array(c.batch * c.heads * c.nQ).fill(NaN);
    const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths, lse });
    expect(attn.lastRun!.backend).toBe('webgpu');
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, name(c));
    expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, `${name(c)} lse`);
    // without lse: the same output (a scale alone keeps the default programs)
    const again = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
    expectClose(again.data, ref.data, TOL.atol, TOL.rtol, `${name(c)} without lse`);
  });

  it('lse alone (no modifier) on a decode shape: flash-decoding writes it', async () => {
    const c = { mode: 'local' as const, L: 9, causal: true, heads: 8, kvHeads: 2, mods: 'none' };
    const attn = make(c);
    const q = randomTensor([2, 1, 8 * D], 4, 2);
    const k = randomTensor([2, 300, 2 * D], 5, 2);
    const v = randomTensor([2, 300, 2 * D], 6);
    const ref = attentionReference(q, k, v, 8, 'local', 9, BS, optionsOf(c));
    await attn.forward(q, k, v);
    expect(attn.lastRun!.reason).toMatch(/flash-decoding/);
    const lse = new Float32Array(2 * 8);
    const out = await attn.forward(q, k, v, { lse });
    expect(attn.lastRun!.reason).toMatch(/flash-decoding/);
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, 'out');
    expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, 'lse');
  });

  it('flash-decoding with every modifier: one split, several (the combine pass) and the forward program agree with the reference', async () => {
    const c = { mode: 'all' as const, causal: true, heads: 8, kvHeads: 2, mods: 'all' };
    const q = randomTensor([2, 3, 8 * D], 20, 2);
    const k = randomTensor([2, 700, 2 * D], 21, 2);
    const v = randomTensor([2, 700, 2 * D], 22);
    const ref = attentionReference(q, k, v, 8, 'all', undefined, BS, optionsOf(c));
    for (const [splits, says] of [[1, /flash-decoding: 1 split /], [7, /flash-decoding: 7 splits .*combine/], [0, /forward kernel/]] as const) {
      const attn = make(c, { decodeSplits: splits });
      const lse = new Float32Array(2 * 8 * 3);
      const out = await attn.forward(q, k, v, { lse });
      expect(attn.lastRun!.reason).toMatch(says);
      expectClose(out.data, ref.data, TOL.atol, TOL.rtol, `decodeSplits ${splits}`);
      expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, `decodeSplits ${splits} lse`);
    }
  });

  it('a row with no key: zeros and lse −Infinity, with a sink', async () => {
    const c = { mode: 'all' as const, causal: true, heads: 4, kvHeads: 4, mods: 'all' };
    const attn = make(c);
    const x = randomTensor([2, 20, 4 * D], 7);
    const lse = new Float32Array(2 * 4 * 20);
    const out = await attn.forward(x, x, x, { keyLengths: [20, 0], lse });
    expect(Array.from(out.data.subarray(20 * 4 * D)).every((y) => y === 0)).toBe(true);
    expect(Array.from(lse.subarray(4 * 20)).every((y) => y === -Infinity)).toBe(true);
    expect(Array.from(lse.subarray(0, 4 * 20)).every(Number.isFinite)).toBe(true);
  });

  it.each([['bsattn_fwd_f32_q64_k64_qtile__subgroups']])('Q from global memory (S unscaled before the modifiers): %s', async (variant) => {
    for (const [mode, L, causal] of [['local', 20, true], ['all', undefined, false]] as const) {
      const c = { mode, L, causal, heads: 4, kvHeads: 4, mods: 'all' };
      const attn = make(c, { variant });
      const x = randomTensor([2, 64, 4 * D], 8, 2);
      const y = randomTensor([2, 64, 4 * D], 9, 2);
      const z = randomTensor([2, 64, 4 * D], 10);
      const ref = attentionReference(x, y, z, 4, mode, L, BS, optionsOf(c));
      const lse = new Float32Array(2 * 4 * 64);
      const out = await attn.forward(x, y, z, { lse });
      expectClose(out.data, ref.data, TOL.atol, TOL.rtol, `${variant} ${mode}`);
      expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, `${variant} ${mode} lse`);
    }
  });

  it("ALiBi positions of queries after the keys' start in 'strided' with L = 1 (one group: the step-1 addressing)", async () => {
    // found by the property test (seed 14 with --mods): the query offset was left at 0 there
    const c = { mode: 'strided' as const, L: 1, causal: true, heads: 4, kvHeads: 2, mods: 'alibi' };
    const attn = make(c, { decodeSplits: 0 });
    const q = randomTensor([3, 2, 4 * D], 17, 2), k = randomTensor([3, 9, 2 * D], 18, 2), v = randomTensor([3, 9, 2 * D], 19);
    const ref = attentionReference(q, k, v, 4, 'strided', 1, BS, optionsOf(c));
    const lse = new Float32Array(3 * 4 * 2);
    expectClose((await attn.forward(q, k, v, { lse })).data, ref.data, TOL.atol, TOL.rtol, 'strided L=1 alibi');
    expect(attn.lastRun!.reason).toMatch(/forward kernel/);
    expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, 'strided L=1 alibi lse');
  });

  it('packed sequences (seqLengths) with every modifier and lse: each sequence its own positions and rows of lse', async () => {
    for (const kvHeads of [4, 2]) {
      const c = { mode: 'local' as const, L: 9, causal: true, heads: 4, kvHeads, mods: 'all' };
      const attn = make(c);
      const lens = [17, 0, 64, 3];
      const q = randomTensor([1, 84, 4 * D], 14, 2), k = randomTensor([1, 84, kvHeads * D], 15, 2), v = randomTensor([1, 84, kvHeads * D], 16);
      const ref = attentionReference(q, k, v, 4, 'local', 9, BS, optionsOf(c), { seqLengths: lens });
      const lse = new Float32Array(4 * 84).fill(NaN);
      const out = await attn.forward(q, k, v, { seqLengths: lens, lse });
      expect(attn.lastRun!.reason).toMatch(/packed: 3 sequences/);
      expectClose(out.data, ref.data, TOL.atol, TOL.rtol, `packed ${kvHeads} K/V heads`);
      expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, `packed ${kvHeads} K/V heads lse`);
    }
  });

  it('mergeAttention of parts over disjoint key ranges (GPU, with lse) equals the full call', async () => {
    // bidirectional 'all': a part's keys are a subset at any positions (no ALiBi: positions
    // would move with the part's nK; no sinks: each part's denominator would count one)
    const c = { mode: 'all' as const, causal: false, heads: 4, kvHeads: 2, mods: 'softcap' };
    const opts = { ...optionsOf(c), scale: 0.5 };
    const attn = track(new SparseAttention(4, 'all', undefined, BS, { ...opts, backend: 'webgpu' }));
    const nQ = 20, nK = 150, cut = [0, 40, 41, 150];
    const q = randomTensor([2, nQ, 4 * D], 11, 2);
    const k = randomTensor([2, nK, 2 * D], 12, 2);
    const v = randomTensor([2, nK, 2 * D], 13);
    const keys = (x: { data: Float32Array }, a: number, b: number) => {
      const w = 2 * D;
      const out = new Float32Array(2 * (b - a) * w);
      for (let i = 0; i < 2; i++) out.set(x.data.subarray((i * nK + a) * w, (i * nK + b) * w), i * (b - a) * w);
      return { data: out, shape: [2, b - a, w] as [number, number, number] };
    };
    const parts = [];
    for (let p = 0; p + 1 < cut.length; p++) {
      const lse = new Float32Array(2 * 4 * nQ);
      const out = await attn.forward(q, keys(k, cut[p], cut[p + 1]), keys(v, cut[p], cut[p + 1]), { lse });
      parts.push({ out, lse });
    }
    const merged = mergeAttention(parts, 4);
    const full = attentionReference(q, k, v, 4, 'all', undefined, BS, opts);
    expectClose(merged.out.data as Float32Array, full.data, TOL.atol, TOL.rtol, 'merged out');
    expectClose(merged.lse as Float32Array, full.lse, LSE_TOL.atol, LSE_TOL.rtol, 'merged lse');
  });

  describe.each([
    { mode: 'all' as const, L: undefined },
    { mode: 'local' as const, L: 9 },
    { mode: 'strided' as const, L: 4 },
  ])('KV cache in GPU buffers with every modifier, $mode', ({ mode, L }) => {
    it('prefill, decode steps and a chunk equal the rows of the full self-attention, lse too', async () => {
      const heads = 8, kvHeads = 2, batch = 2, total = 50;
      const c = { mode, L, causal: true, heads, kvHeads, mods: 'all' };
      const attn = make(c);
      const q = randomTensor([batch, total, heads * D], 14, 2);
      const k = randomTensor([batch, total, kvHeads * D], 15, 2);
      const v = randomTensor([batch, total, kvHeads * D], 16);
      const full = attentionReference(q, k, v, heads, mode, L, BS, optionsOf(c));
      const rows = (x: { data: Float32Array }, width: number, from: number, to: number) =>
        ({ data: tokenRows(x.data, batch, total, width, from, to), shape: [batch, to - from, width] as [number, number, number] });
      const cache = attn.createCache({ batch, capacity: 64 });
      for (const [from, to] of [[0, 30], [30, 31], [31, 32], [32, 50]]) {
        const lse = new Float32Array(batch * heads * (to - from));
        const out = await attn.forward(rows(q, heads * D, from, to), rows(k, kvHeads * D, from, to), rows(v, kvHeads * D, from, to), { cache, lse });
        const { data: want, lse: wantLse } = referenceRows(full, batch, heads, total, heads * D, from, to);
        expectClose(out.data, want, TOL.atol, TOL.rtol, `${mode} rows ${from}..${to}`);
        expectClose(lse, wantLse, LSE_TOL.atol, LSE_TOL.rtol, `${mode} lse rows ${from}..${to}`);
      }
      cache.dispose();
    });
  });

  it("forwardGPU runs the modifiers; 'auto' chooses by cost for a call with a modifier (both paths run them)", async () => {
    const c = { mode: 'local' as const, L: 16, causal: true, heads: 4, kvHeads: 4, mods: 'all' };
    const auto = track(new SparseAttention(4, 'local', 16, BS, { ...optionsOf(c), threads: 1 }));
    const x = randomTensor([1, 64, 4 * D], 17, 2);
    const y = randomTensor([1, 64, 4 * D], 18, 2);
    const z = randomTensor([1, 64, 4 * D], 19);
    const ref = attentionReference(x, y, z, 4, 'local', 16, BS, optionsOf(c));
    const out = await auto.forward(x, y, z);
    expect(auto.lastRun!.reason).not.toMatch(/does not run the score modifiers/);
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, 'auto');
    const attn = make(c);
    const device = (await attn.gpuDevice()) as unknown as GPUDevice;
    const upload = (t: Float32Array) => {
      const b = device.createBuffer({ size: t.byteLength, usage: 0x80 | 0x8 });
      device.queue.writeBuffer(b, 0, t as Float32Array<ArrayBuffer>);
      return b;
    };
    const res = await attn.forwardGPU(upload(x.data), upload(y.data), upload(z.data), [1, 64, 4 * D]);
    const staging = device.createBuffer({ size: x.data.byteLength, usage: 0x1 | 0x8 });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(res.buffer as unknown as GPUBuffer, 0, staging, 0, x.data.byteLength);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(1);
    const got = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    expectClose(got, ref.data, TOL.atol, TOL.rtol, 'forwardGPU');
  });
});
