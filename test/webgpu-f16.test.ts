// Half precision storage on the WebGPU path (issue 18, dtype 'float16'): both storage forms of
// the GPU programs — f16 storage arrays (adapters with shader-f16; lavapipe has it) and u32
// words of two halves read with unpack2x16float and written with pack2x16float (every adapter;
// forced here through the test hook programs.noShaderF16) — on the forward program (self-
// attention, vec4 and scalar head dims), its inference form (GQA, cross-attention), flash-
// decoding with its combine pass, a KV cache of halves (prefill, decode steps, a chunk), the
// score modifiers with lse, packed sequences, forwardGPU on half buffers and an infinite half
// in V at a masked key (the V pre-pass), against the float64 reference of the f16-rounded inputs
// (|a − r| ≤ 1e-3 + 2e-3·|r|). Float16Array tensors where the runtime has them, else
// Uint16Array. Also: the f32 program texts are byte-identical to those before the half forms
// existed (hashes recorded from main), and the half forms' names.
// Compile cost (lavapipe: 2–10 CPU-s a pipeline): head dim 32 (and 6 for the scalar form),
// block size 64 throughout; per storage form the forward program plain, with XATTN and with
// MODS, the scalar forward program, flash-decoding at dp32 with and without MODS; the combine
// passes and the V pre-pass are shared by both forms.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SparseAttention, attentionReference } from '../dist/index.js';
import { combineText, decodeName, decodeText, programName, programText, scanText } from '../src/backends/webgpu/program.js';
import { VARIANTS, findVariant, whyNot } from '../src/backends/webgpu/variants.js';
import { fromHalfBits, toHalfBits } from '../src/half.js';
import type { Float16ArrayLike } from '../src/tensors.js';
import { GPU_TIMEOUT, REQUIRE_GPU, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { expectClose, randomTensor } from './helpers.js';
import { __testing } from './internal.js';
import { GPU_FULL, GPU_FULL_ENABLE, recordSkip } from './optional.js';

const [ATOL, RTOL] = [1e-3, 2e-3];
const D = 32;
const BS = 64;
type Shape = [number, number, number];
// GPUBufferUsage values (Node has no such globals unless 'webgpu' installs them)
const MAP_READ = 0x1, COPY_SRC = 0x4, COPY_DST = 0x8, STORAGE = 0x80;

describe('f32 program texts and the half forms\' names', () => {
  // sha256 over the texts in this enumeration order, recorded from main before the half forms
  it('the f32 texts of every program are unchanged', () => {
    const fwd = createHash('sha256');
    let n = 0;
    for (const variant of VARIANTS) for (const bs of [64, 128]) for (const headDim of [30, 64, 128]) {
      if (whyNot(variant, bs, headDim, 1 << 20, true) !== null) continue;
      for (const xattn of [false, true]) for (const mods of [false, true]) for (const rolledPairs of [false, true]) {
        fwd.update(programText({ variant, bs, headDim, xattn, mods, rolledPairs }));
        n++;
      }
    }
    const dec = createHash('sha256');
    for (const dp of [32, 64, 128, 256]) for (const sg of [false, true]) for (const mods of [false, true]) for (const rolled of [false, true]) dec.update(decodeText(dp, sg, mods, rolled));
    const comb = createHash('sha256');
    for (const mods of [false, true]) comb.update(combineText(mods));
    expect(n).toBe(1488);
    expect(fwd.digest('hex')).toBe('8b2b888b547100758c98700b2e4b26b1326eef025db29296b7d0ca7fa9500b9c');
    expect(dec.digest('hex')).toBe('e586ab4c738bac5d2e5ceec467a50168fa182aeb9d42bf1dcb9a789e894a6fc0');
    expect(comb.digest('hex')).toBe('761ebd9fc80e988d774c62703616cafc5229566312e5299744e87750323f124b');
    // shaders/vscan.wgsl as it was (it had no directives then)
    expect(createHash('sha256').update(scanText(false)).digest('hex')).toBe('1fe601ffaf475125ea84ced9249d2a670645e3f868fa414131261c1231d4cd80');
  });

  it('half forms: a storage suffix on the name, enable f16 only for f16 arrays, pack/unpack only for words', () => {
    const variant = findVariant('bsattn_fwd_f32_q64_k64__subgroups')!;
    const p = { variant, bs: 64, headDim: 64 };
    expect(programName(p)).toBe('bsattn_fwd_f32_q64_k64__subgroups:bs64_dp64');
    expect(programName({ ...p, storage: 'f16' })).toBe('bsattn_fwd_f32_q64_k64__subgroups:bs64_dp64_f16');
    expect(programName({ ...p, xattn: true, mods: true, storage: 'f16x2' })).toBe('bsattn_fwd_f32_q64_k64__subgroups:bs64_dp64_xattn_mods_f16x2');
    expect(decodeName(128, true, true, false, 'f16x2')).toBe('bsattn_decode_f32_dp128_r4_l16__subgroups_mods_f16x2');
    expect(decodeName(32, false, false, true, 'f16')).toBe('bsattn_decode_f32_dp32_r8_l8__plain_rolled_f16');
    const native = programText({ ...p, storage: 'f16' });
    expect(native.startsWith('enable f16;\nenable subgroups;\n')).toBe(true);
    expect(native).toContain('array<vec4<f16>>');
    expect(native).not.toContain('unpack2x16float');
    const words = programText({ ...p, storage: 'f16x2' });
    expect(words).not.toContain('enable f16');
    expect(words).toContain('unpack2x16float');
    expect(words).toContain('pack2x16float');
    expect(words).not.toMatch(/\bf16\b/);
    expect(decodeText(32, false, false, false, 'f16')).toContain('array<vec4<f16>>');
    expect(decodeText(32, false, false, false, 'f16x2')).toContain('array<vec2<u32>>');
    expect(combineText(false, true)).toContain('pack2x16float');
    expect(scanText(true)).toContain('0x7c00u');
  });
});

const gpu = probeAdapter();
const run = gpu.ok || REQUIRE_GPU;
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
holdSharedDevice(run);

// Float16Array where the runtime has one (Node 24+), else Uint16Array of half bits
const F16 = (globalThis as { Float16Array?: new (b: ArrayBufferLike, o?: number, n?: number) => Float16ArrayLike }).Float16Array;
const tensor = (shape: Shape, seed: number, scale = 1) => {
  const bits = toHalfBits(randomTensor(shape, seed, scale).data);
  return { data: F16 ? (new F16(bits.buffer) as unknown as Uint16Array) : bits, shape };
};
/** A result's values (Float16Array or Uint16Array of halves) as f32, exactly. */
const values = (data: unknown): Float32Array => {
  const a = data as ArrayBufferView & { length: number };
  expect(Object.prototype.toString.call(a)).toBe(F16 ? '[object Float16Array]' : '[object Uint16Array]');
  return Float32Array.from(fromHalfBits(new Uint16Array(a.buffer, a.byteOffset, a.length)));
};
/** Rows from..to of every batch item of a [batch, total, width] tensor (same array type). */
const rows = <T extends { data: Uint16Array; shape: Shape }>(x: T, from: number, to: number): T => {
  const [batch, total, width] = x.shape;
  const bits = new Uint16Array(x.data.buffer, x.data.byteOffset, x.data.length);
  const out = new Uint16Array(batch * (to - from) * width);
  for (let b = 0; b < batch; b++) out.set(bits.subarray((b * total + from) * width, (b * total + to) * width), b * (to - from) * width);
  return { data: F16 ? (new F16(out.buffer) as unknown as Uint16Array) : out, shape: [batch, to - from, width] } as T;
};
const refRows = (full: Float64Array, shape: Shape, from: number, to: number): Float64Array => {
  const [batch, total, width] = shape;
  const out = new Float64Array(batch * (to - from) * width);
  for (let b = 0; b < batch; b++) out.set(full.subarray((b * total + from) * width, (b * total + to) * width), b * (to - from) * width);
  return out;
};

const FORMS = [
  { form: 'f16', says: /f16 storage in f16 arrays \(shader-f16\), f32 compute/ },
  { form: 'f16x2', says: /f16 storage in u32 words/ },
] as const;

describe.runIf(run).each(FORMS)('webgpu dtype float16, $form storage', ({ form, says }) => {
  const instances: SparseAttention[] = [];
  const track = (a: SparseAttention) => (instances.push(a), a);
  const make = (heads: number, mode: 'all' | 'local' | 'strided', L: number | undefined, options: Record<string, unknown> = {}) =>
    track(new SparseAttention(heads, mode, L, BS, { causal: true, dtype: 'float16', backend: 'webgpu', ...options }));
  let available = true;
  beforeAll(async () => {
    __testing.programs.noShaderF16 = form === 'f16x2';
    // the adapter's form: without shader-f16 the f16 form is not available (the words form runs)
    const probe = make(2, 'all', undefined);
    await probe.forward(tensor([1, 4, 2 * D], 1), tensor([1, 4, 2 * D], 2), tensor([1, 4, 2 * D], 3));
    available = says.test(probe.lastRun!.reason);
  });
  afterAll(() => {
    __testing.programs.noShaderF16 = false;
    instances.forEach((a) => a.dispose());
  });
  // `npm test` runs the whole list on the u32-words form (the fallback, with its own packing,
  // odd-dim stores and pre-pass) and the f16-arrays form's core (a forward, a decode step with
  // its combine pass, a cache); SPARSE_ATTENTION_GPU_FULL=1 (CI) runs the whole list on both.
  const gate = (ctx: { skip: (why: string) => void }, core: boolean) => {
    if (!available) return ctx.skip(`the adapter has no shader-f16 (${gpu.info})`);
    if (!core && form === 'f16' && !GPU_FULL) return ctx.skip('the f16-arrays form runs this with SPARSE_ATTENTION_GPU_FULL=1 (CI sets it)');
  };
  if (form === 'f16' && !GPU_FULL && run) recordSkip({ what: "the f16-arrays GPU form's cases beyond its core", why: 'minutes of lavapipe compiling', enable: GPU_FULL_ENABLE });

  it.for([
    ['local', 9, 4, D, [2, 100, 4 * D]],
    ['all', undefined, 2, 6, [2, 70, 2 * 6]], // head dim 6: the scalar program (element stores)
    ['strided', 4, 2, 5, [1, 45, 2 * 5]], // odd head dim: halves of one word stored by two threads
    ['local', 7, 1, 5, [1, 45, 5]], // an odd number of halves: uploads padded by one half
  ] as const)('self-attention %s L=%s, %s heads of dim %s: within tolerance, out of q\'s type, storage reported', async ([mode, L, heads, d, shape], ctx) => {
    gate(ctx, mode === 'local' && d === D);
    const attn = make(heads, mode, L);
    const s = shape as unknown as Shape;
    const [q, k, v] = [tensor(s, 4, 2), tensor(s, 5, 2), tensor(s, 6)];
    const out = await attn.forward(q, k, v);
    const ref = attentionReference(q, k, v, heads, mode, L, BS, { causal: true, dtype: 'float16' });
    expectClose(values(out.data), ref.data, ATOL, RTOL, `${mode} d${d}`);
    expect(attn.lastRun).toMatchObject({ backend: 'webgpu', storage: 'float16', compute: 'float32' });
    expect(attn.lastRun!.reason).toMatch(says);
    expect(attn.plan(s)).toMatchObject({ storage: 'float16', compute: 'float32' });
    // into the caller's out (q's type): the same halves
    const into = F16 ? (new F16(new ArrayBuffer(s[0] * s[1] * s[2] * 2)) as unknown as Uint16Array) : new Uint16Array(s[0] * s[1] * s[2]);
    expect((await attn.forward(q, k, v, { out: into })).data).toBe(into);
    expect(Array.from(values(into))).toEqual(Array.from(values(out.data)));
  });

  it('a call past the binding limit runs in chunks of heads (gathered and scattered as halves)', async (ctx) => {
    gate(ctx, false);
    // 2 batch items × 64 rows × 4 heads of 32 halves: 16 KiB a tensor; 8 KiB bindings hold 2 heads of one item
    const attn = make(4, 'local', 9, { webgpu: { maxBindingBytes: 8192 } });
    const s: Shape = [2, 64, 4 * D];
    const [q, k, v] = [tensor(s, 29, 2), tensor(s, 30, 2), tensor(s, 31)];
    const out = await attn.forward(q, k, v);
    const ref = attentionReference(q, k, v, 4, 'local', 9, BS, { causal: true, dtype: 'float16' });
    expectClose(values(out.data), ref.data, ATOL, RTOL, 'chunks of heads');
  });

  it.for([
    [17, 40, 'forward kernel'], // cross-attention: the forward program with XATTN
    [1, 300, 'flash-decoding: 3 splits'], // a decode step: split keys, then the combine pass
    [4, 130, 'flash-decoding'],
  ] as const)('GQA 8/2 heads, %s queries x %s keys (%s)', async ([nQ, nK, kernel], ctx) => {
    gate(ctx, nQ === 1);
    const attn = make(8, 'all', undefined, { kvHeads: 2 });
    const q = tensor([2, nQ, 8 * D], 7, 2);
    const k = tensor([2, nK, 2 * D], 8, 2);
    const v = tensor([2, nK, 2 * D], 9);
    const out = await attn.forward(q, k, v);
    const ref = attentionReference(q, k, v, 8, 'all', undefined, BS, { causal: true, kvHeads: 2, dtype: 'float16' });
    expectClose(values(out.data), ref.data, ATOL, RTOL, `${nQ} x ${nK}`);
    expect(attn.lastRun!.reason).toContain(kernel);
    expect(attn.lastRun!.reason).toMatch(says);
  });

  it.for([['all', undefined], ['strided', 4]] as const)('KV cache of halves, %s L=%s: prefill, decode steps and a chunk equal the full call\'s rows; half the bytes', async ([mode, L], ctx) => {
    gate(ctx, mode === 'all');
    const heads = 8, kvHeads = 2, batch = 2, total = 50, capacity = 64;
    const attn = make(heads, mode, L, { kvHeads });
    const q = tensor([batch, total, heads * D], 10, 2);
    const k = tensor([batch, total, kvHeads * D], 11, 2);
    const v = tensor([batch, total, kvHeads * D], 12);
    const full = attentionReference(q, k, v, heads, mode, L, BS, { causal: true, kvHeads, dtype: 'float16' });
    const cache = attn.createCache({ batch, capacity });
    const step = async (from: number, to: number) => {
      const out = await attn.forward(rows(q, from, to), rows(k, from, to), rows(v, from, to), { cache });
      expect(cache.length).toBe(to);
      expect(attn.lastRun).toMatchObject({ backend: 'webgpu', storage: 'float16' });
      expect(attn.lastRun!.reason).toMatch(says);
      expectClose(values(out.data), refRows(full.data, full.shape, from, to), ATOL, RTOL, `${mode} rows ${from}..${to}`);
    };
    await step(0, 37); // prefill: the forward program with XATTN
    for (let t = 37; t < 40; t++) await step(t, t + 1); // decode steps: flash-decoding
    await step(40, 45); // a chunk
    await step(45, 50);
    // halves: 2 bytes a value (the f32 cache: 4)
    const groups = mode === 'strided' ? 4 : 1;
    expect(cache.bytes).toBe(2 * Math.ceil((batch * groups * Math.ceil(capacity / groups) * kvHeads * D * 2) / 16) * 16);
    cache.dispose();
  });

  it.for([
    [64, 64, ''], // self-attention: the forward program with MODS
    [2, 300, 'flash-decoding: 3 splits'], // flash-decoding with MODS, and the combine pass with sinks and lse
  ] as const)('softcap, ALiBi, sinks and lse: %s queries x %s keys (%s)', async ([nQ, nK, kernel], ctx) => {
    gate(ctx, false);
    const heads = 4;
    const mods = { softcap: 2.5, alibi: true, sinks: Float32Array.from([1.5, -2, 0.25, 3]) };
    const attn = make(heads, 'all', undefined, mods);
    const q = tensor([2, nQ, heads * D], 13, 2);
    const k = tensor([2, nK, heads * D], 14, 2);
    const v = tensor([2, nK, heads * D], 15);
    const lse = new Float32Array(2 * heads * nQ).fill(NaN);
    const out = await attn.forward(q, k, v, { lse });
    const ref = attentionReference(q, k, v, heads, 'all', undefined, BS, { causal: true, dtype: 'float16', ...mods });
    expectClose(values(out.data), ref.data, ATOL, RTOL, `${nQ} x ${nK}`);
    expectClose(lse, ref.lse, ATOL, RTOL, `${nQ} x ${nK} lse`);
    expect(attn.lastRun!.reason).toContain(kernel);
    expect(attn.lastRun!.reason).toMatch(says);
  });

  it('a GPU cache of halves with kvHeads·headDim odd: its first call says why, nothing appended', async (ctx) => {
    gate(ctx, false);
    const attn = make(1, 'all', undefined);
    const cache = attn.createCache({ batch: 1, capacity: 8 });
    const t = tensor([1, 2, 5], 28);
    await expect(attn.forward(t, t, t, { cache })).rejects.toThrow(/kvHeads·headDim even \(got 1·5\)/);
    expect(cache.length).toBe(0);
    cache.dispose();
  });

  it('an infinite half in V at a masked key never reaches the output (the V pre-pass reads both halves of a word)', async (ctx) => {
    gate(ctx, false);
    const heads = 2, n = 40;
    const attn = make(heads, 'all', undefined);
    const q = tensor([1, n, heads * D], 25, 2);
    const k = tensor([1, n, heads * D], 26, 2);
    const v = tensor([1, n, heads * D], 27);
    const vb = new Uint16Array(v.data.buffer, v.data.byteOffset, v.data.length);
    // the last token's V: +Inf in even elements (a word's low half), -Inf in odd ones (its high half);
    // causal rows 0 … n − 2 mask that key inside their (partial) tile
    for (let c = 0; c < heads * D; c++) vb[(n - 1) * heads * D + c] = c % 2 ? 0xfc00 : 0x7c00;
    const ref = attentionReference(q, k, v, heads, 'all', undefined, BS, { causal: true, dtype: 'float16' });
    const got = values((await attn.forward(q, k, v)).data);
    const rowsBefore = (n - 1) * heads * D;
    expectClose(got.subarray(0, rowsBefore), ref.data.subarray(0, rowsBefore), ATOL, RTOL, 'rows before the infinite key');
    expect(got.subarray(0, rowsBefore).every(Number.isFinite)).toBe(true);
  });

  it('packed sequences (seqLengths) of odd lengths: one upload per group, each sequence at its aligned offset', async (ctx) => {
    gate(ctx, false);
    const heads = 4, kvHeads = 2, lens = [13, 0, 31, 1, 19];
    const attn = make(heads, 'all', undefined, { kvHeads });
    const n = lens.reduce((a, b) => a + b, 0);
    const q = tensor([1, n, heads * D], 22, 2);
    const k = tensor([1, n, kvHeads * D], 23, 2);
    const v = tensor([1, n, kvHeads * D], 24);
    const ref = attentionReference(q, k, v, heads, 'all', undefined, BS, { causal: true, kvHeads, dtype: 'float16' }, { seqLengths: lens });
    const out = await attn.forward(q, k, v, { seqLengths: lens });
    expectClose(values(out.data), ref.data, ATOL, RTOL, `packed ${lens}`);
    expect(attn.lastRun).toMatchObject({ backend: 'webgpu', storage: 'float16' });
    expect(attn.lastRun!.reason).toMatch(says);
  });

  it('forwardGPU on buffers of halves: self-attention, a decode step with nK, and against a GPU cache', async (ctx) => {
    gate(ctx, false);
    const heads = 8, kvHeads = 2, batch = 1;
    const attn = make(heads, 'all', undefined, { kvHeads });
    const device = (await attn.gpuDevice()) as unknown as GPUDevice;
    const bitsOf = (t: { data: Uint16Array }) => new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length);
    const upload = (t: { data: Uint16Array }) => {
      const b = device.createBuffer({ size: Math.max(16, t.data.byteLength), usage: STORAGE | COPY_DST | COPY_SRC });
      device.queue.writeBuffer(b, 0, bitsOf(t) as Uint16Array<ArrayBuffer>);
      return b;
    };
    const read = async (b: GPUBuffer, n: number) => {
      const s = device.createBuffer({ size: n * 2, usage: MAP_READ | COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(b, 0, s, 0, n * 2);
      device.queue.submit([enc.finish()]);
      await s.mapAsync(1); // GPUMapMode.READ
      const out = Float32Array.from(fromHalfBits(new Uint16Array(s.getMappedRange().slice(0))));
      s.destroy();
      return out;
    };
    for (const [nQ, nK] of [[40, 40], [1, 300]]) {
      const q = tensor([batch, nQ, heads * D], 16, 2);
      const k = tensor([batch, nK, kvHeads * D], 17, 2);
      const v = tensor([batch, nK, kvHeads * D], 18);
      const ref = attentionReference(q, k, v, heads, 'all', undefined, BS, { causal: true, kvHeads, dtype: 'float16' });
      const res = await attn.forwardGPU(upload(q), upload(k), upload(v), [batch, nQ, heads * D], nK === nQ ? {} : { nK });
      expectClose(await read(res.buffer as unknown as GPUBuffer, batch * nQ * heads * D), ref.data, ATOL, RTOL, `forwardGPU ${nQ} x ${nK}`);
      expect(attn.lastRun!.reason).toMatch(says);
    }
    // new rows copied into a cache of halves on the device
    const total = 20;
    const q = tensor([batch, total, heads * D], 19, 2);
    const k = tensor([batch, total, kvHeads * D], 20, 2);
    const v = tensor([batch, total, kvHeads * D], 21);
    const full = attentionReference(q, k, v, heads, 'all', undefined, BS, { causal: true, kvHeads, dtype: 'float16' });
    const cache = attn.createCache({ batch, capacity: 32 });
    for (const [from, to] of [[0, 15], [15, 16], [16, 20]]) {
      const res = await attn.forwardGPU(upload(rows(q, from, to)), upload(rows(k, from, to)), upload(rows(v, from, to)), [batch, to - from, heads * D], { cache });
      expect(cache.length).toBe(to);
      expectClose(await read(res.buffer as unknown as GPUBuffer, (to - from) * heads * D), refRows(full.data, full.shape, from, to), ATOL, RTOL, `forwardGPU cache rows ${from}..${to}`);
    }
    cache.dispose();
  });
});
