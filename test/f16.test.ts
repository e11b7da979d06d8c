// Half precision storage (issue 18, dtype 'float16') on the CPU path: every wasm build and
// thread count, the modes, GQA, cross-attention, key lengths and the KV cache, against the
// float64 reference of the f16-rounded inputs (|a − r| ≤ 1e-3 + 2e-3·|r|); the kernel's own
// f32 path on the same (widened) inputs, rounded to nearest even, bit for bit — which covers
// subnormal halves, ±Inf and NaN; the kernel's conversions themselves, exhaustively (every
// half; ties, subnormals, overflow and a sweep of f32 bit patterns); the Uint16Array form here
// and the Float16Array form under Bun (Node 20 has none); the output type; the errors.
import { afterAll, describe, expect, it } from 'vitest';
import { ArgumentError, SparseAttention, UnsupportedError, attentionReference, wasmVariants } from '../dist/index.js';
import { fromHalfBits, halfToNumber, numberToHalf, toHalfBits } from '../src/half.js';
import { wasmPaths } from './backends.js';
import { expectClose, randomTensor } from './helpers.js';
import type { Float16ArrayLike } from '../src/tensors.js';
import { FIXTURES, ROOT, runCommand } from './runtimes/harness.js';
import { KERNEL_BASE64 } from '../src/backends/wasm/kernels.generated.js';
import { __testing } from './internal.js';

const [ATOL, RTOL] = [1e-3, 2e-3];
type Shape = [number, number, number];
const half = (shape: Shape, seed: number, scale = 1) => ({ data: toHalfBits(randomTensor(shape, seed, scale).data), shape });
const widened = (t: { data: Uint16Array; shape: Shape }) => ({ data: Float32Array.from(fromHalfBits(t.data)), shape: t.shape });

describe('half conversions (src/half.ts, used by the reference and these tests)', () => {
  it('every half widens exactly and rounds back to itself (NaN to a NaN)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = halfToNumber(h);
      if (Number.isNaN(x)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
        expect(Number.isNaN(halfToNumber(numberToHalf(x)))).toBe(true);
      } else {
        expect(numberToHalf(x)).toBe(h);
      }
    }
    expect([halfToNumber(0x0001), halfToNumber(0x03ff), halfToNumber(0x0400), halfToNumber(0x7bff), halfToNumber(0xfc00)]).toEqual([2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, -Infinity]);
  });
  it('numberToHalf rounds to nearest, ties to even, and overflows to Infinity', () => {
    const ulp = 2 ** -10;
    expect(numberToHalf(1 + ulp / 2)).toBe(0x3c00); // tie, even below
    expect(numberToHalf(1 + 1.5 * ulp)).toBe(0x3c02); // tie, even above
    expect(numberToHalf(1 + ulp / 2 + 2 ** -20)).toBe(0x3c01);
    expect(numberToHalf(1.5 * 2 ** -24)).toBe(0x0002);
    expect(numberToHalf(0.5 * 2 ** -24)).toBe(0x0000);
    expect(numberToHalf(-0.5 * 2 ** -24)).toBe(0x8000);
    expect(numberToHalf(65519.99)).toBe(0x7bff);
    expect(numberToHalf(65520)).toBe(0x7c00);
    expect(numberToHalf(-1e9)).toBe(0xfc00);
  });
});

interface F16Case {
  mode: 'all' | 'local' | 'strided' | 'fixed';
  L?: number;
  causal?: boolean;
  batch: number;
  nQ: number;
  nK: number;
  heads: number;
  kvHeads: number;
  d: number;
  keyLengths?: number[];
}
const cases: F16Case[] = [
  { mode: 'all', batch: 2, nQ: 37, nK: 37, heads: 4, kvHeads: 4, d: 8 },
  { mode: 'all', causal: false, batch: 1, nQ: 20, nK: 53, heads: 4, kvHeads: 2, d: 16 },
  { mode: 'local', L: 9, batch: 2, nQ: 1, nK: 70, heads: 8, kvHeads: 2, d: 12 },
  { mode: 'local', L: 9, batch: 2, nQ: 33, nK: 33, heads: 4, kvHeads: 1, d: 5, keyLengths: [33, 20] },
  { mode: 'strided', L: 4, batch: 1, nQ: 17, nK: 40, heads: 4, kvHeads: 2, d: 7 },
  { mode: 'fixed', L: 32, batch: 1, nQ: 64, nK: 64, heads: 2, kvHeads: 2, d: 128 },
];
const caseName = (c: F16Case) =>
  `${c.mode}${c.L ? ` L=${c.L}` : ''}${c.causal === false ? ' bidir' : ''} [${c.batch}, ${c.nQ} q x ${c.nK} k] ${c.heads}/${c.kvHeads} heads d${c.d}${c.keyLengths ? ` lens=${c.keyLengths}` : ''}`;

describe.each(wasmPaths())('$name', (path) => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  it.each(cases.map((c) => [caseName(c), c] as const))('%s: within tolerance of the reference, bit-equal to the f32 path rounded', async (_n, c) => {
    const bs = 16;
    const opts = { causal: c.causal, kvHeads: c.kvHeads };
    const a16 = new SparseAttention(c.heads, c.mode, c.L, bs, { ...opts, ...path.options, dtype: 'float16' });
    const a32 = new SparseAttention(c.heads, c.mode, c.L, bs, { ...opts, ...path.options });
    instances.push(a16, a32);
    const q = half([c.batch, c.nQ, c.heads * c.d], 1, 2);
    const k = half([c.batch, c.nK, c.kvHeads * c.d], 2, 2);
    const v = half([c.batch, c.nK, c.kvHeads * c.d], 3);
    const fo = { keyLengths: c.keyLengths };
    const out = path.sync ? a16.forwardSync(q, k, v, fo) : await a16.forward(q, k, v, fo);
    expect(out.data).toBeInstanceOf(Uint16Array);
    expect(out.shape).toEqual(q.shape);
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, bs, { ...opts, dtype: 'float16' }, fo);
    expectClose(Float32Array.from(fromHalfBits(out.data)), ref.data, ATOL, RTOL, `${path.name} ${caseName(c)}`);
    const f32 = path.sync ? a32.forwardSync(widened(q), widened(k), widened(v), fo) : await a32.forward(widened(q), widened(k), widened(v), fo);
    expect(Array.from(out.data)).toEqual(Array.from(toHalfBits(f32.data)));
    expect(a16.lastRun).toMatchObject({ backend: 'wasm', storage: 'float16', compute: 'float32' });
  });
});

const bytesOf = (build: string) => Uint8Array.from(atob((KERNEL_BASE64 as Record<string, string>)[build]), (c) => c.charCodeAt(0));
const BUILDS = Object.keys(KERNEL_BASE64).filter((b) => WebAssembly.validate(bytesOf(b)));

describe.each(BUILDS)('kernel build %s: its half conversions, exhaustively', (build) => {
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: build.endsWith('.mt') });
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytesOf(build)), { env: { memory } }).exports as unknown as {
    heap_base(): number;
    bsattn_widen_half(dst: number, src: number, n: number): void;
    bsattn_narrow_half(dst: number, src: number, n: number): void;
  };
  const base = (exports.heap_base() + 15) & ~15;

  it('every half widens to its exact value (subnormals, ±Inf, NaN payloads kept)', () => {
    const n = 0x10000 + 3; // + 3: the scalar tail too
    new Uint16Array(memory.buffer, base, n).set(Uint16Array.from({ length: n }, (_, i) => i & 0xffff));
    const dst = base + 2 * n + 16 - ((2 * n) % 16);
    exports.bsattn_widen_half(dst, base, n);
    const f = new Float32Array(memory.buffer, dst, n);
    const bits = new Uint32Array(memory.buffer, dst, n);
    for (let i = 0; i < n; i++) {
      const h = i & 0xffff;
      const x = halfToNumber(h);
      if (Number.isNaN(x)) {
        // sign, all-ones exponent and the payload shifted up: the NaN the f32 path would hold
        expect(bits[i] >>> 0).toBe((((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0);
      } else {
        expect(f[i]).toBe(x);
      }
    }
  });

  it('f32 → half rounds to nearest even: every half, every tie between neighbours, subnormals, overflow, a sweep of bit patterns', () => {
    const xs: number[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      const x = halfToNumber(h);
      const up = halfToNumber(h + 1);
      xs.push(x, -x, (x + up) / 2, -(x + up) / 2, Math.fround(x + (up - x) * 0.49), Math.fround(x + (up - x) * 0.51));
    }
    xs.push(65519.99, 65520, 1e5, Infinity, -Infinity, 3e38, 2 ** -25, 2 ** -26, 1e-45, -1e-45);
    // f32 bit patterns across the whole range, NaNs included
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    for (let b = 0; b < 2 ** 32; b += 65521 * 7) {
      u[0] = b;
      xs.push(f[0]);
    }
    const n = xs.length;
    const src = base;
    new Float32Array(memory.buffer, src, n).set(xs);
    const dst = src + 4 * n + 16;
    exports.bsattn_narrow_half(dst, src, n);
    const got = new Uint16Array(memory.buffer, dst, n);
    const src32 = new Float32Array(memory.buffer, src, n);
    const srcBits = new Uint32Array(memory.buffer, src, n);
    for (let i = 0; i < n; i++) {
      // a NaN from its bits (a JS number need not keep an f32 NaN's payload): quiet, sign and payload top kept
      const b = srcBits[i];
      const want = Number.isNaN(src32[i]) ? ((b >>> 16) & 0x8000) | 0x7e00 | ((b >>> 13) & 0x3ff) : numberToHalf(src32[i]);
      if (got[i] !== want) expect(`${src32[i]} → 0x${got[i].toString(16)}`).toBe(`${src32[i]} → 0x${want.toString(16)}`);
    }
  });
});

describe.each(wasmVariants())('wasm %s: special values', (variant) => {
  it('subnormal halves in q, k and v are read exactly (the f32 path on the widened values agrees bit for bit)', async () => {
    const d = 8;
    const n = 12;
    const rnd = randomTensor([1, n, d], 7, 1).data;
    // subnormal halves mixed with normals: k scaled up in q (scores of O(1)), v all subnormal
    const q = { data: Uint16Array.from(rnd, (x, i) => (i % 3 ? numberToHalf(x * 2 ** 14) : numberToHalf(x * 2 ** -15))), shape: [1, n, d] as Shape };
    const k = { data: Uint16Array.from(rnd, (x, i) => numberToHalf(i % 2 ? x * 2 ** -16 : x)), shape: [1, n, d] as Shape };
    const v = { data: Uint16Array.from(rnd, (x) => numberToHalf(x * 2 ** -15)), shape: [1, n, d] as Shape };
    expect(Array.from(v.data).some((h) => (h & 0x7c00) === 0 && (h & 0x3ff) !== 0)).toBe(true);
    const opts = { backend: 'wasm', wasmVariant: variant, threads: 1 } as const;
    const a16 = new SparseAttention(2, 'all', undefined, 16, { ...opts, dtype: 'float16' });
    const a32 = new SparseAttention(2, 'all', undefined, 16, opts);
    try {
      const out = await a16.forward(q, k, v);
      const f32 = await a32.forward(widened(q), widened(k), widened(v));
      expect(Array.from(out.data)).toEqual(Array.from(toHalfBits(f32.data)));
      expect(Array.from(out.data).some((h) => (h & 0x7c00) === 0 && (h & 0x3ff) !== 0)).toBe(true);
    } finally {
      a16.dispose();
      a32.dispose();
    }
  });

  it('±Inf in k and NaN in v: as the f32 path on the same values', async () => {
    const [n, d] = [20, 8];
    const q = half([1, n, d], 11, 2);
    const k = half([1, n, d], 12, 2);
    const v = half([1, n, d], 13);
    k.data[5 * d + 2] = 0x7c00;
    k.data[9 * d + 1] = 0xfc00;
    v.data[14 * d + 3] = 0x7e00;
    const opts = { backend: 'wasm', wasmVariant: variant, threads: 1 } as const;
    const a16 = new SparseAttention(1, 'local', 8, 8, { ...opts, dtype: 'float16' });
    const a32 = new SparseAttention(1, 'local', 8, 8, opts);
    try {
      const out = await a16.forward(q, k, v);
      const f32 = await a32.forward(widened(q), widened(k), widened(v));
      const bits = toHalfBits(f32.data);
      expect(Array.from(f32.data).some(Number.isNaN)).toBe(true);
      for (let i = 0; i < bits.length; i++) {
        if (Number.isNaN(f32.data[i])) expect(halfToNumber(out.data[i])).toBeNaN();
        else expect(out.data[i]).toBe(bits[i]);
      }
    } finally {
      a16.dispose();
      a32.dispose();
    }
  });
});

// The cache lives in the threaded engine: the SIMD builds (the scalar build has no threaded form).
describe.each(wasmVariants().filter((v) => v !== 'scalar'))('KV cache in halves, wasm %s', (variant) => {
  const [B, N, D] = [2, 45, 16];
  it.each([
    ['all', undefined, 4, 2],
    ['local', 7, 4, 1],
    ['strided', 5, 4, 4],
  ] as const)('%s: prefill chunks + decode steps in f16 = rows of the full f16 call; half the bytes', async (mode, L, heads, kvHeads) => {
    const q = half([B, N, heads * D], 1, 2);
    const k = half([B, N, kvHeads * D], 2, 2);
    const v = half([B, N, kvHeads * D], 3);
    const a16 = new SparseAttention(heads, mode, L, 16, { kvHeads, threads: 2, wasmVariant: variant, dtype: 'float16' });
    const a32 = new SparseAttention(heads, mode, L, 16, { kvHeads, threads: 2, wasmVariant: variant });
    try {
      const full = await a16.forward(q, k, v);
      const fullT = { data: full.data, shape: full.shape as Shape };
      const ref = attentionReference(q, k, v, heads, mode, L, 16, { kvHeads, dtype: 'float16' }).data;
      const cache = a16.createCache({ batch: B, capacity: 64 });
      const rows = (t: { data: Uint16Array; shape: Shape }, t0: number, t1: number): { data: Uint16Array; shape: Shape } => {
        const w = t.shape[2];
        const out = new Uint16Array(B * (t1 - t0) * w);
        for (let b = 0; b < B; b++) out.set(t.data.subarray((b * N + t0) * w, (b * N + t1) * w), b * (t1 - t0) * w);
        return { data: out, shape: [B, t1 - t0, w] };
      };
      const spans: [number, number][] = [[0, 20], [20, 33]];
      for (let t = 33; t < N; t++) spans.push([t, t + 1]);
      for (const [t0, t1] of spans) {
        const out = await a16.forward(rows(q, t0, t1), rows(k, t0, t1), rows(v, t0, t1), { cache });
        expect(out.data).toBeInstanceOf(Uint16Array);
        // (small decode steps run on the calling thread: the same kernel and tables)
        expect(a16.lastRun).toMatchObject({ storage: 'float16', compute: 'float32' });
        expect(a16.lastRun!.detail).toMatch(new RegExp(`^wasm ${variant}, (2 threads|the calling thread)`));
        const want = rows(fullT, t0, t1).data;
        const wantRef = new Float64Array(want.length);
        const w = heads * D;
        for (let b = 0; b < B; b++) wantRef.set(ref.subarray((b * N + t0) * w, (b * N + t1) * w), b * (t1 - t0) * w);
        expectClose(Float32Array.from(fromHalfBits(out.data)), wantRef, ATOL, RTOL, `${mode} cache rows ${t0}..${t1} vs reference`);
        // the full call's rows, to one half ulp (block sizes may differ between the calls)
        expectClose(Float32Array.from(fromHalfBits(out.data)), fromHalfBits(want), 2 ** -24, 2 ** -10, `${mode} cache rows ${t0}..${t1} vs the full f16 call`);
      }
      expect(cache.length).toBe(N);
      const c32 = a32.createCache({ batch: B, capacity: 64 });
      await a32.forward(widened(rows(q, 0, 1)), widened(rows(k, 0, 1)), widened(rows(v, 0, 1)), { cache: c32 });
      expect(cache.bytes * 2).toBe(c32.bytes);
      cache.truncate(10);
      const again = await a16.forward(rows(q, 10, 11), rows(k, 10, 11), rows(v, 10, 11), { cache });
      expectClose(Float32Array.from(fromHalfBits(again.data)), fromHalfBits(rows(fullT, 10, 11).data), 2 ** -24, 2 ** -10, `${mode} after truncate`);
      cache.dispose();
      c32.dispose();
    } finally {
      a16.dispose();
      a32.dispose();
    }
  });
});

describe('a call past the memory ceiling is split, halves too', () => {
  it.each([
    ['by batch', 'all', undefined, 5, 300, 2, 16, 200_000],
    ['by head', 'local', 20, 1, 700, 5, 12, 180_000],
  ] as const)('%s: the parts are the whole call (bit for bit against the unsplit call)', async (_n, mode, L, batch, n, heads, d, cap) => {
    const attn = new SparseAttention(heads, mode, L, 16, { backend: 'wasm', threads: 2, dtype: 'float16' });
    try {
      const q = half([batch, n, heads * d], 1, 2);
      const k = half([batch, n, heads * d], 2, 2);
      const v = half([batch, n, heads * d], 3);
      const whole = await attn.forward(q, k, v);
      // halves: q k v o 2 bytes a value, packed K V 4
      expect(8 * q.data.length * 2, 'the case must need more than the cap').toBeGreaterThan(cap);
      __testing.faults.maxMemoryBytes = cap;
      const sync = attn.forwardSync(q, k, v);
      const parts = await attn.forward(q, k, v);
      expect(parts.data).toBeInstanceOf(Uint16Array);
      expect(Array.from(parts.data)).toEqual(Array.from(whole.data));
      expect(Array.from(sync.data)).toEqual(Array.from(whole.data));
    } finally {
      __testing.faults.maxMemoryBytes = null;
      attn.dispose();
    }
  });
});

describe('plan, output and errors', () => {
  const t16 = (n: number, w = 8) => ({ data: new Uint16Array(n * w), shape: [1, n, w] as Shape });
  const t32 = (n: number, w = 8) => ({ data: new Float32Array(n * w), shape: [1, n, w] as Shape });
  it('plan() and lastRun say storage and compute; out of q\'s type is filled; ORT float16 tensors are taken', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { dtype: 'float16', threads: 1 });
    const plain = new SparseAttention(2, 'all', undefined, 16, { threads: 1 });
    try {
      expect(attn.plan([1, 4, 8])).toMatchObject({ backend: 'wasm', storage: 'float16', compute: 'float32' });
      expect(plain.plan([1, 4, 8])).toMatchObject({ storage: 'float32', compute: 'float32' });
      const q = half([1, 4, 8], 5);
      const out = new Uint16Array(32);
      const r = await attn.forward(q, q, q, { out });
      expect(r.data).toBe(out);
      expect(out.some((h) => h !== 0)).toBe(true);
      const ort = { type: 'float16' as const, dims: [1, 4, 8], data: q.data };
      expect(Array.from((await attn.forward(ort, ort, ort)).data)).toEqual(Array.from(out));
      expect(attn.lastRun).toMatchObject({ storage: 'float16', compute: 'float32' });
    } finally {
      attn.dispose();
      plain.dispose();
    }
  });

  it('wrong array types, a dtype mix, a bad dtype, the GPU path: clear errors', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { dtype: 'float16', threads: 1 });
    const plain = new SparseAttention(2, 'all', undefined, 16, { threads: 1 });
    try {
      await expect(attn.forward(t32(4), t32(4), t32(4))).rejects.toThrow(ArgumentError);
      await expect(attn.forward(t32(4), t32(4), t32(4))).rejects.toThrow(/q\.data must be a Float16Array or a Uint16Array of half bits \(dtype 'float16'\)/);
      await expect(attn.forward(t16(4), t32(4) as never, t16(4))).rejects.toThrow(/k\.data must be a Float16Array or a Uint16Array/);
      await expect(plain.forward(t16(4) as never, t16(4) as never, t16(4) as never)).rejects.toThrow(/q\.data must be a Float32Array \(halves need options\.dtype 'float16'\)/);
      await expect(attn.forward({ type: 'float32', dims: [1, 4, 8], data: new Uint16Array(32) } as never, t16(4), t16(4))).rejects.toThrow(/q\.type must be 'float16'/);
      await expect(attn.forward(t16(4), t16(4), t16(4), { out: new Float32Array(32) as never })).rejects.toThrow(/out must be a Uint16Array of 32 values \(q's type\)/);
      expect(() => attn.forwardSync(t16(4), t16(4), t16(4), { out: new Uint16Array(31) })).toThrow(ArgumentError);
      expect(() => new SparseAttention(2, 'all', undefined, 16, { dtype: 'bfloat16' as never })).toThrow(/options\.dtype must be 'float32' or 'float16'/);
      expect(() => attn.createTensor([1, 4, 8])).toThrow(UnsupportedError);
      // the GPU path takes halves too (test/webgpu-f16.test.ts runs them)
      const gpu = new SparseAttention(2, 'all', undefined, 16, { dtype: 'float16', backend: 'webgpu' });
      expect(gpu.plan([1, 4, 8])).toMatchObject({ backend: 'webgpu', storage: 'float16', compute: 'float32' });
      gpu.dispose();
      // still usable
      expect((await attn.forward(t16(4), t16(4), t16(4))).data).toBeInstanceOf(Uint16Array);
    } finally {
      attn.dispose();
      plain.dispose();
    }
  });

  it('auto weighs the GPU for float16 by cost as for float32 (plan() asks for no adapter)', async () => {
    const attn = new SparseAttention(4, 'all', undefined, 32, { dtype: 'float16' });
    const plain = new SparseAttention(4, 'all', undefined, 32);
    try {
      for (const shape of [[1, 2048, 256], [1, 16, 32]] as const) {
        const p = attn.plan(shape);
        expect(p.backend).toBe(plain.plan(shape).backend);
        expect(p.estimatedMs.webgpu).toBeNull(); // the GPU's best case: no adapter known yet
      }
      expect(attn.plan([1, 2048, 256]).backend).toBe('webgpu');
    } finally {
      attn.dispose();
      plain.dispose();
    }
  });
});

// Node 24 has Float16Array (npx vitest under it runs this; Node 20/22 skip it, Bun's fixture below covers them)
const F16 = (globalThis as { Float16Array?: new (b: ArrayBufferLike, o?: number, n?: number) => Float16ArrayLike }).Float16Array;
describe.runIf(F16)('Float16Array in this runtime', () => {
  it('Float16Array in → Float16Array out (also into out), the Uint16Array form\'s bits; a mix is an ArgumentError', async () => {
    const attn = new SparseAttention(4, 'local', 8, 8, { dtype: 'float16', threads: 2, kvHeads: 2 });
    try {
      const [q, k, v] = [half([1, 30, 32], 1, 2), half([1, 30, 16], 2, 2), half([1, 30, 16], 3)];
      const asF16 = (t: { data: Uint16Array; shape: Shape }) => ({ data: new F16!(t.data.slice().buffer), shape: t.shape });
      const bits = await attn.forward(q, k, v);
      const r = await attn.forward(asF16(q), asF16(k), asF16(v));
      expect(Object.prototype.toString.call(r.data)).toBe('[object Float16Array]');
      expect(Array.from(new Uint16Array(r.data.buffer, r.data.byteOffset, r.data.length))).toEqual(Array.from(bits.data));
      const out = new F16!(new ArrayBuffer(30 * 32 * 2));
      expect((await attn.forward(asF16(q), asF16(k), asF16(v), { out })).data).toBe(out);
      expect(Array.from(new Uint16Array(out.buffer))).toEqual(Array.from(bits.data));
      expect(Array.from(attn.forwardSync(asF16(q), asF16(k), asF16(v)).data)).toEqual(Array.from(r.data));
      await expect(attn.forward(asF16(q), k, asF16(v))).rejects.toThrow(/k\.data must be q\.data's type \(Float16Array\)/);
      await expect(attn.forward(q, k, v, { out })).rejects.toThrow(/out must be a Uint16Array/);
    } finally {
      attn.dispose();
    }
  });
});

describe('Float16Array (Bun has it; Node 20 does not)', () => {
  it('Float16Array in → Float16Array out, the same bits as the Uint16Array form; a mix is an ArgumentError', async () => {
    const r = await runCommand(`${ROOT}node_modules/.bin/bun`, [`${FIXTURES}f16.mjs`], { env: { ...process.env, NO_COLOR: '1' }, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(report.hasFloat16Array).toBe(true);
    expect(report.outType).toBe('Float16Array');
    expect(report.sameBits).toBe(true);
    expect(report.cacheOutType).toBe('Float16Array');
    expect(report.mixError).toMatch(/k\.data must be q\.data's type \(Float16Array\)/);
  });
});
