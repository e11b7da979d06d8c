// Score modifiers and lse on the CPU path (issue 18): softcap, ALiBi (Press et al.'s slopes and
// given ones), sinks and a user scale, alone and together, against the float64 reference on
// every wasm build this runtime runs (1 and 3 threads) and forwardSync; with grouped K/V heads,
// cross-attention both ways (rows before position 0 have no key: lse −Infinity), keyLengths,
// a decode step, the KV cache (f32 and half), packed sequences, dtype 'float16', a call split
// past the memory ceiling; mergeAttention of two CPU halves over disjoint keys; instances with
// different modifiers sharing one engine; and the kernel's soft cap against Math.tanh.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseAttention, attentionReference, mergeAttention } from '../dist/index.js';
import { fromHalfBits, toHalfBits } from '../src/half.js';
import { KERNEL_BASE64 } from '../src/backends/wasm/kernels.generated.js';
import { wasmPaths } from './backends.js';
import { expectClose, randomTensor, modifierSet as modifiers, referenceRows, tokenRows } from './helpers.js';
import { __testing } from './internal.js';

type Shape = [number, number, number];
type Mode = 'all' | 'local' | 'strided' | 'fixed' | 'custom';
const D = 12; // not a multiple of 4: the head dim's scalar tail runs too
const BS = 16;
const TOL = { atol: 1e-5, rtol: 1e-4 };
const F16_TOL = { atol: 1e-3, rtol: 2e-3 };
// lse = m + ln l: the f32 rounding of scores of O(10) and of the sum
const LSE_TOL = { atol: 2e-5, rtol: 1e-5 };

const MODS = ['softcap', 'alibi', 'alibi-slopes', 'sinks', 'scale', 'softcap+alibi', 'all'];

interface Shapes { batch: number; nQ: number; nK: number; heads: number; kvHeads: number; keyLengths?: number[] }
const SHAPES: [string, Shapes][] = [
  ['self 4 heads', { batch: 2, nQ: 45, nK: 45, heads: 4, kvHeads: 4 }],
  ['cross 17 q x 70 k, GQA 4/2, keyLengths', { batch: 2, nQ: 17, nK: 70, heads: 4, kvHeads: 2, keyLengths: [70, 33] }],
  ['30 q x 20 k (rows before position 0), batch item without keys', { batch: 2, nQ: 30, nK: 20, heads: 2, kvHeads: 2, keyLengths: [20, 0] }],
  ['decode step, MQA 8/1', { batch: 2, nQ: 1, nK: 70, heads: 8, kvHeads: 1 }],
];
const MODES: [Mode, number | undefined, Record<string, unknown>][] = [
  ['all', undefined, {}],
  ['local', 9, {}],
  ['strided', 4, {}],
  ['local', 9, { causal: false }],
  ['fixed', 32, { numVerts: 2, vertsize: 1 }],
];

const PATHS = wasmPaths();
const instances: SparseAttention[] = [];
afterAll(() => instances.forEach((a) => a.dispose()));
const track = (a: SparseAttention) => (instances.push(a), a);

// ('strided' with more queries than keys is refused by the library: not a modifier case)
const cases = MODES.flatMap(([mode, L, o]) =>
  SHAPES.filter(([, s]) => mode !== 'strided' || s.nQ <= s.nK).flatMap(([shapeName, s]) => MODS.map((mods) => ({ mode, L, o, shapeName, s, mods }))),
);
const name = (c: (typeof cases)[number]) => `${c.mods}: ${c.mode}${c.L ? ` L=${c.L}` : ''}${c.o.causal === false ? ' bidir' : ''}, ${c.shapeName}`;

describe('CPU score modifiers and lse against the reference, every wasm path', () => {
  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const { batch, nQ, nK, heads, kvHeads, keyLengths } = c.s;
    const options = { ...c.o, kvHeads, ...modifiers(c.mods, heads) };
    const q = randomTensor([batch, nQ, heads * D], 1, 2);
    const k = randomTensor([batch, nK, kvHeads * D], 2, 2);
    const v = randomTensor([batch, nK, kvHeads * D], 3);
    const ref = attentionReference(q, k, v, heads, c.mode, c.L, BS, options, { keyLengths });
    for (const p of PATHS) {
      const attn = track(new SparseAttention(heads, c.mode, c.L, BS, { ...options, ...p.options }));
      const lse = new Float32Array(batch * heads * nQ).fill(NaN);
      const out = p.sync ? attn.forwardSync(q, k, v, { keyLengths, lse }) : await attn.forward(q, k, v, { keyLengths, lse });
      expect(attn.lastRun!.backend).toBe('wasm');
      expectClose(out.data as Float32Array, ref.data, TOL.atol, TOL.rtol, `${p.name}: ${name(c)}`);
      expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, `${p.name}: ${name(c)} lse`);
      // the same instance without lse (the tables of the call without it): the same output
      const again = p.sync ? attn.forwardSync(q, k, v, { keyLengths }) : await attn.forward(q, k, v, { keyLengths });
      expectClose(again.data as Float32Array, ref.data, TOL.atol, TOL.rtol, `${p.name}: ${name(c)} without lse`);
    }
  });

  it('lse −Infinity exactly for rows without a key; finite elsewhere', async () => {
    const attn = track(new SparseAttention(2, 'all', undefined, BS, { backend: 'wasm', threads: 2, sinks: new Float32Array([1, 2]), softcap: 2 }));
    const q = randomTensor([2, 30, 2 * D], 4);
    const k = randomTensor([2, 20, 2 * D], 5);
    const lse = new Float32Array(2 * 2 * 30);
    const out = await attn.forward(q, k, k, { keyLengths: [20, 0], lse });
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 30; i++) {
        // batch 0: query i at position i − 10 (causal: no key before position 0); batch 1: no keys
        expect(lse[h * 30 + i]).toBe(i < 10 ? -Infinity : lse[h * 30 + i]);
        if (i >= 10) expect(Number.isFinite(lse[h * 30 + i])).toBe(true);
        expect(lse[(2 + h) * 30 + i]).toBe(-Infinity);
      }
    }
    // rows without a key are zeros, whatever their sink
    expect(Array.from(out.data.subarray(0, 10 * 2 * D)).every((x) => x === 0)).toBe(true);
    expect(Array.from(out.data.subarray(30 * 2 * D)).every((x) => x === 0)).toBe(true);
  });
});

describe('the KV cache, packed sequences, float16, a split call', () => {
  it.each([['all', undefined], ['local', 9], ['strided', 4]] as const)('cache %s: a prefill chunk and decode steps equal the full call (f32 and half caches)', async (mode, L) => {
    const [batch, heads, kvHeads, total] = [2, 4, 2, 50];
    const options = { kvHeads, ...modifiers('all', heads) };
    const q = randomTensor([batch, total, heads * D], 6, 2);
    const k = randomTensor([batch, total, kvHeads * D], 7, 2);
    const v = randomTensor([batch, total, kvHeads * D], 8);
    const rows = (t: { data: Float32Array }, w: number, from: number, to: number) => tokenRows(t.data, batch, total, w, from, to);
    for (const dtype of ['float32', 'float16'] as const) {
      // (a Uint16Array of halves for dtype 'float16': the tensors' type follows the dtype at run time)
      const conv = (x: Float32Array) => (dtype === 'float16' ? toHalfBits(x) : x) as never;
      const tensors = [q, k, v].map((t) => ({ data: conv(t.data), shape: t.shape }));
      const full = attentionReference(tensors[0], tensors[1], tensors[2], heads, mode, L, BS, { ...options, dtype });
      const tol = dtype === 'float16' ? F16_TOL : TOL;
      for (const threads of [1, 2]) {
        const attn = track(new SparseAttention(heads, mode, L, BS, { ...options, backend: 'wasm', threads, dtype }));
        const cache = attn.createCache({ batch, capacity: 64 });
        for (const [from, to] of [[0, 30], [30, 31], [31, 32], [32, 50]]) {
          const lse = new Float32Array(batch * heads * (to - from));
          const t = (x: { data: Float32Array }, w: number) => ({ data: conv(rows(x, w, from, to)), shape: [batch, to - from, w] as Shape });
          const out = await attn.forward(t(q, heads * D), t(k, kvHeads * D), t(v, kvHeads * D), { cache, lse });
          const { data: want, lse: wantLse } = referenceRows(full, batch, heads, total, heads * D, from, to);
          const got = dtype === 'float16' ? Float32Array.from(fromHalfBits(out.data)) : out.data;
          const what = `${mode} ${dtype} ${threads} thread(s) rows ${from}..${to}`;
          expectClose(got, want, tol.atol, tol.rtol, what);
          expectClose(lse, wantLse, LSE_TOL.atol, LSE_TOL.rtol, `${what} lse`);
        }
        cache.dispose();
      }
    }
  });

  it.each([['all', undefined], ['local', 9], ['strided', 4]] as const)('packed sequences %s: each attends within itself, ALiBi positions from its start', async (mode, L) => {
    const [heads, n] = [4, 60];
    const seqLengths = [20, 0, 33, 7];
    const options = { kvHeads: 2, ...modifiers('all', heads) };
    const q = randomTensor([1, n, heads * D], 9, 2);
    const k = randomTensor([1, n, 2 * D], 10, 2);
    const v = randomTensor([1, n, 2 * D], 11);
    const ref = attentionReference(q, k, v, heads, mode, L, BS, options, { seqLengths });
    for (const p of PATHS) {
      const attn = track(new SparseAttention(heads, mode, L, BS, { ...options, ...p.options }));
      const lse = new Float32Array(heads * n);
      const out = p.sync ? attn.forwardSync(q, k, v, { seqLengths, lse }) : await attn.forward(q, k, v, { seqLengths, lse });
      expectClose(out.data as Float32Array, ref.data, TOL.atol, TOL.rtol, `${p.name}: packed ${mode}`);
      expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, `${p.name}: packed ${mode} lse`);
    }
  });

  it.each(['softcap', 'alibi', 'sinks', 'all'])("dtype 'float16' with %s: within the f16 tolerance of the reference of the rounded inputs", async (mods) => {
    const [batch, nQ, nK, heads] = [2, 40, 55, 4];
    const options = { kvHeads: 2, dtype: 'float16' as const, ...modifiers(mods, heads) };
    const half = (shape: Shape, seed: number, scale = 1) => ({ data: toHalfBits(randomTensor(shape, seed, scale).data), shape });
    const q = half([batch, nQ, heads * D], 12, 2);
    const k = half([batch, nK, 2 * D], 13, 2);
    const v = half([batch, nK, 2 * D], 14);
    const ref = attentionReference(q, k, v, heads, 'local', 20, BS, options);
    for (const p of PATHS) {
      const attn = track(new SparseAttention(heads, 'local', 20, BS, { ...options, ...p.options }));
      const lse = new Float32Array(batch * heads * nQ);
      const out = p.sync ? attn.forwardSync(q, k, v, { lse }) : await attn.forward(q, k, v, { lse });
      expect(out.data).toBeInstanceOf(Uint16Array);
      expectClose(Float32Array.from(fromHalfBits(out.data as Uint16Array)), ref.data, F16_TOL.atol, F16_TOL.rtol, `${p.name}: f16 ${mods}`);
      expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, `${p.name}: f16 ${mods} lse`);
    }
  });

  it.each([
    ['by batch', 'all', undefined, 5, 300, 2, 200_000],
    ['by head', 'local', 20, 1, 700, 5, 180_000],
  ] as const)('split %s past the memory ceiling: per-head slopes, sinks and lse follow their heads (bit for bit)', async (_n, mode, L, batch, n, heads, cap) => {
    const d = 12;
    const options = { dtype: 'float16' as const, alibi: Float32Array.from({ length: heads }, (_, h) => 0.02 * (h + 1)), sinks: Float32Array.from({ length: heads }, (_, h) => h - 1), softcap: 4 };
    const attn = track(new SparseAttention(heads, mode, L, 16, { backend: 'wasm', threads: 2, ...options }));
    const half = (seed: number, scale = 1) => ({ data: toHalfBits(randomTensor([batch, n, heads * d], seed, scale).data), shape: [batch, n, heads * d] as Shape });
    const [q, k, v] = [half(1, 2), half(2, 2), half(3)];
    const lseWhole = new Float32Array(batch * heads * n);
    const whole = await attn.forward(q, k, v, { lse: lseWhole });
    try {
      __testing.faults.maxMemoryBytes = cap;
      const lse = new Float32Array(batch * heads * n).fill(NaN);
      const lseSync = new Float32Array(batch * heads * n).fill(NaN);
      const parts = await attn.forward(q, k, v, { lse });
      const sync = attn.forwardSync(q, k, v, { lse: lseSync });
      expect(Array.from(parts.data)).toEqual(Array.from(whole.data));
      expect(Array.from(sync.data)).toEqual(Array.from(whole.data));
      expect(Array.from(lse)).toEqual(Array.from(lseWhole));
      expect(Array.from(lseSync)).toEqual(Array.from(lseWhole));
    } finally {
      __testing.faults.maxMemoryBytes = null;
    }
    const ref = attentionReference(q, k, v, heads, mode, L, 16, options);
    expectClose(lseWhole, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, 'lse of the whole call');
  });
});

describe('mergeAttention of CPU results; engines shared by instances of other modifiers', () => {
  it('two CPU halves over disjoint key blocks merge into the whole call (softcap and ALiBi on)', async () => {
    const [heads, nB] = [3, 5];
    const n = nB * BS;
    const shape: Shape = [2, n, heads * D];
    const [q, k, v] = [15, 16, 17].map((s) => randomTensor(shape, s, 2));
    const mods = { softcap: 2, alibi: true };
    const layout = (keep: (kb: number) => boolean) => Array.from({ length: nB }, (_, qb) => Array.from({ length: nB }, (_, kb) => (kb <= qb && keep(kb) ? 1 : 0)));
    const run = async (keep: (kb: number) => boolean) => {
      const attn = track(new SparseAttention(heads, 'custom', undefined, BS, { backend: 'wasm', threads: 2, layout: layout(keep), ...mods }));
      const lse = new Float32Array(2 * heads * n);
      const out = await attn.forward(q, k, v, { lse });
      return { out: out as { data: Float32Array; shape: Shape }, lse };
    };
    const whole = await run(() => true);
    const parts = [await run((kb) => kb % 2 === 0), await run((kb) => kb % 2 === 1)];
    // the odd half has no key for the first block's rows: its lse is −Infinity there
    expect(parts[1].lse[0]).toBe(-Infinity);
    const merged = mergeAttention(parts, heads);
    const ref = attentionReference(q, k, v, heads, 'custom', undefined, BS, { layout: layout(() => true), ...mods });
    expectClose(merged.out.data as Float32Array, ref.data, TOL.atol, TOL.rtol, 'merged out');
    expectClose(merged.lse as Float32Array, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, 'merged lse');
    expectClose(merged.out.data as Float32Array, Float64Array.from(whole.out.data), 1e-6, 1e-5, 'merged vs the whole CPU call');
  });

  it('instances with and without modifiers alternate on one shared engine, each with its own values', async () => {
    const shape: Shape = [1, 40, 2 * D];
    const [q, k, v] = [18, 19, 20].map((s) => randomTensor(shape, s, 2));
    const sets = [{}, { alibi: true }, { alibi: new Float32Array([0.3, 0.01]), sinks: new Float32Array([2, -1]) }, { scale: 0.2 }];
    const attns = sets.map((o) => track(new SparseAttention(2, 'local', 9, BS, { backend: 'wasm', threads: 2, ...o })));
    const refs = sets.map((o) => attentionReference(q, k, v, 2, 'local', 9, BS, o));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < sets.length; i++) {
        const out = await attns[i].forward(q, k, v);
        expectClose(out.data, refs[i].data, TOL.atol, TOL.rtol, `set ${i} round ${round}`);
        expectClose(attns[i].forwardSync(q, k, v).data, refs[i].data, TOL.atol, TOL.rtol, `set ${i} round ${round} sync`);
      }
    }
  });

  it("'auto' runs a call with modifiers by cost like any other: here the CPU (no adapter asked for)", async () => {
    const attn = track(new SparseAttention(2, 'local', 9, BS, { threads: 1, softcap: 3, alibi: true }));
    const q = randomTensor([1, 40, 2 * D], 21);
    expect(attn.plan([1, 40, 2 * D]).backend).toBe('wasm');
    const out = await attn.forward(q, q, q);
    expect(attn.lastRun!.backend).toBe('wasm');
    expect(attn.lastRun!.reason).not.toMatch(/does not run the score modifiers/);
    expectClose(out.data, attentionReference(q, q, q, 2, 'local', 9, BS, { softcap: 3, alibi: true }).data, TOL.atol, TOL.rtol, 'auto');
  });
});

const bytesOf = (build: string) => Uint8Array.from(atob((KERNEL_BASE64 as Record<string, string>)[build]), (c) => c.charCodeAt(0));
const BUILDS = Object.keys(KERNEL_BASE64).filter((b) => WebAssembly.validate(bytesOf(b)));

describe.each(BUILDS)('kernel build %s: the soft cap', (build) => {
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: build.endsWith('.mt') });
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytesOf(build)), { env: { memory } }).exports as unknown as {
    heap_base(): number;
    bsattn_softcap(dst: number, src: number, n: number, cap: number): void;
  };
  const base = (exports.heap_base() + 15) & ~15;

  it.each([1.7, 30 * Math.LOG2E])('cap %f: c·tanh(x / c) within 8e-7 relative of Math.tanh over 1e-6·c ≤ |x| ≤ 1e3·c; ±Inf → ±c, NaN stays', (cap) => {
    const n = 200_003; // + 3: the scalar tail too
    const xs = new Float32Array(n);
    for (let i = 0; i < n - 3; i++) xs[i] = (i % 2 ? -1 : 1) * cap * 10 ** (-6 + (9 * i) / (n - 3));
    xs.set([Infinity, -Infinity, NaN], n - 3);
    new Float32Array(memory.buffer, base, n).set(xs);
    const dst = base + 4 * n + 16;
    exports.bsattn_softcap(dst, base, n, Math.fround(cap));
    const got = new Float32Array(memory.buffer, dst, n);
    const c = Math.fround(cap);
    let worst = 0;
    let at = 0;
    for (let i = 0; i < n - 3; i++) {
      const want = c * Math.tanh(xs[i] / c);
      const err = Math.abs(got[i] - want) / Math.abs(want);
      if (err > worst) [worst, at] = [err, i];
    }
    expect(worst, `worst at x = ${xs[at]}: got ${got[at]}, want ${c * Math.tanh(xs[at] / c)}`).toBeLessThanOrEqual(8e-7);
    expect(Math.abs(got[n - 3] / c - 1)).toBeLessThanOrEqual(8e-7);
    expect(Math.abs(got[n - 2] / c + 1)).toBeLessThanOrEqual(8e-7);
    expect(got[n - 1]).toBeNaN();
  });
});
