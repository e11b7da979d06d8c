// Inference shapes on the WebGPU path (issue 17): grouped K/V heads (GQA ratios 1, 2, 4 and
// MQA), cross-attention nQ < nK and nQ > nK aligned bottom-right, every mode, a KV cache in
// GPU buffers (prefill, decode steps, chunks, truncate: the rows of the full self-attention),
// forwardGPU against that cache, flash-decoding split and unsplit, and bad inputs.
// Compile cost (lavapipe: 10–50 CPU-s per pipeline on a cold Mesa cache): every call here runs
// at head dim 32 and block size 64, so the whole file needs the forward program with XATTN at
// (64, 32), the flash-decoding kernel at dp32, its combine pass and the V pre-pass, plus the
// flash-decoding kernel at dp128 (16 lanes a key, the H100's decode shape) for one test: five
// pipelines (with the adapter's subgroup setting). Self-attention shapes (kvHeads == heads,
// nQ == nK) are left out: they would compile the plain forward program too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvCache, SparseAttention, attentionReference } from '../dist/index.js';
import { type InferenceCase, expectClose, randomTensor } from './helpers.js';
import { REQUIRE_GPU, probeAdapter } from './gpu-env.js';

const gpu = probeAdapter();
const run = gpu.ok || REQUIRE_GPU;
const D = 32;
const BS = 64;
const TOL = { atol: 1e-4, rtol: 1e-3 };
// GPUBufferUsage values (Node has no such globals unless 'webgpu' installs them)
const MAP_READ = 0x1, COPY_SRC = 0x4, COPY_DST = 0x8, STORAGE = 0x80;

type InfCase = InferenceCase;

const cases: InfCase[] = [];
for (const [mode, L] of [['all', undefined], ['local', 9], ['strided', 4]] as const) {
  for (const causal of [true, false]) {
    // [1, 70], [5, 130]: flash-decoding; the others: the forward program with XATTN
    for (const [nQ, nK] of [[1, 70], [17, 33], [33, 33], [5, 130], [40, 23]]) {
      if (mode === 'strided' && nQ > nK) continue;
      // ratios 1, 2, 4 and MQA (8 query heads on one K/V head)
      for (const [heads, kvHeads] of [[4, 4], [4, 2], [8, 2], [8, 1]]) {
        if (nQ === nK && heads === kvHeads) continue;
        cases.push({ mode, L, causal, batch: 2, nQ, nK, heads, kvHeads });
      }
    }
  }
  cases.push({ mode, L, causal: true, batch: 2, nQ: 7, nK: 50, heads: 4, kvHeads: 2, keyLengths: [50, 31] });
}
// the modes whose layouts are not bands (nQ == nK), with grouped K/V heads
for (const causal of [true, false]) {
  cases.push({ mode: 'fixed', L: 128, causal, batch: 2, nQ: 200, nK: 200, heads: 4, kvHeads: 2, options: { numVerts: 2, vertsize: 1 } });
  cases.push({ mode: 'longformer', causal, batch: 1, nQ: 300, nK: 300, heads: 4, kvHeads: 1, options: { globalBlockIndices: [0, 3] } });
  cases.push({ mode: 'bigbird', causal, batch: 1, nQ: 260, nK: 260, heads: 4, kvHeads: 2, options: { numRandomBlocks: 1, differentLayoutPerHead: true, seed: 3 } });
}
cases.push({ mode: 'custom', causal: true, batch: 2, nQ: 200, nK: 200, heads: 4, kvHeads: 2, options: { layout: [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1]] } });
cases.push({
  mode: 'custom', causal: true, batch: 1, nQ: 150, nK: 150, heads: 4, kvHeads: 2,
  options: { layout: (h: number, qb: number, kb: number) => kb <= qb && (qb - kb) % (h + 2) !== 1, mask: (h: number, i: number, j: number) => (i + j + h) % 3 !== 0 },
});
cases.push({ mode: 'longformer', causal: true, batch: 2, nQ: 200, nK: 200, heads: 4, kvHeads: 2, keyLengths: [200, 77], options: { globalBlockIndices: [0] } });

const name = (c: InfCase) =>
  `${c.mode}${c.L ? ` L=${c.L}` : ''}${c.causal ? '' : ' bidir'} [${c.batch}, ${c.nQ} q x ${c.nK} k] ${c.heads}/${c.kvHeads} heads${c.keyLengths ? ` lens=${c.keyLengths}` : ''}`;

function make(c: Pick<InfCase, 'mode' | 'L' | 'causal' | 'heads' | 'kvHeads' | 'options'>, webgpu: Record<string, unknown> = {}): SparseAttention {
  const causal = c.mode === 'custom' ? {} : { causal: c.causal };
  return new SparseAttention(c.heads, c.mode, c.L, BS, { ...causal, kvHeads: c.kvHeads, backend: 'webgpu', webgpu, ...(c.options ?? {}) });
}

describe.runIf(run)('webgpu inference shapes', () => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  const track = (a: SparseAttention) => (instances.push(a), a);

  // The four pipelines compiled up front, in parallel (Dawn compiles asynchronously): on a
  // cold Mesa cache under load this takes minutes, more than one test's timeout (a hang guard).
  beforeAll(async () => {
    const c = { mode: 'all' as const, causal: true, heads: 4, kvHeads: 2 };
    const a = track(make(c));
    const b = track(make(c));
    await Promise.all([
      a.forward(randomTensor([1, 3, 4 * D], 1), randomTensor([1, 5, 2 * D], 2), randomTensor([1, 5, 2 * D], 3)),
      b.forward(randomTensor([1, 1, 4 * D], 1), randomTensor([1, 600, 2 * D], 2), randomTensor([1, 600, 2 * D], 3)),
      // flash-decoding at head dim 128 (16 lanes a key: the H100's decode program)
      track(make(c)).forward(randomTensor([1, 1, 4 * 128], 1), randomTensor([1, 70, 2 * 128], 2), randomTensor([1, 70, 2 * 128], 3)),
    ]);
  }, 900_000);

  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const attn = track(make(c));
    const q = randomTensor([c.batch, c.nQ, c.heads * D], 1, 2);
    const k = randomTensor([c.batch, c.nK, c.kvHeads * D], 2, 2);
    const v = randomTensor([c.batch, c.nK, c.kvHeads * D], 3);
    const causal = c.mode === 'custom' ? {} : { causal: c.causal };
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, BS, { ...causal, kvHeads: c.kvHeads, ...(c.options ?? {}) }, { keyLengths: c.keyLengths });
    const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
    expect(attn.lastRun!.backend).toBe('webgpu');
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, name(c));
  });

  it('flash-decoding at head dim 160 (8 lanes of 5 vec4s a key)', async () => {
    const c = { mode: 'all' as const, causal: true, heads: 4, kvHeads: 2 };
    const q = randomTensor([1, 1, 4 * 160], 21, 2), k = randomTensor([1, 90, 2 * 160], 22, 2), v = randomTensor([1, 90, 2 * 160], 23);
    const attn = track(make(c));
    const out = await attn.forward(q, k, v);
    expect(attn.lastRun!.reason).toMatch(/flash-decoding/);
    expectClose(out.data, attentionReference(q, k, v, 4, 'all', undefined, BS, { causal: true, kvHeads: 2 }).data, TOL.atol, TOL.rtol, 'd160');
  });

  it('flash-decoding: one split, several splits and the forward program agree', async () => {
    const c = { mode: 'all' as const, causal: true, heads: 8, kvHeads: 2 };
    const q = randomTensor([2, 1, 8 * D], 4, 2);
    const k = randomTensor([2, 700, 2 * D], 5, 2);
    const v = randomTensor([2, 700, 2 * D], 6);
    const ref = attentionReference(q, k, v, 8, 'all', undefined, BS, { causal: true, kvHeads: 2 });
    const runs: Float32Array[] = [];
    for (const [splits, says] of [[1, /flash-decoding: 1 split /], [7, /flash-decoding: 7 splits .*combine/], [0, /forward kernel/]] as const) {
      const attn = track(make(c, { decodeSplits: splits }));
      const out = await attn.forward(q, k, v);
      expect(attn.lastRun!.reason).toMatch(says);
      expectClose(out.data, ref.data, TOL.atol, TOL.rtol, `decodeSplits ${splits}`);
      runs.push(out.data);
    }
    // the splits change only the order of the sums
    for (let i = 0; i < runs[0].length; i++) expect(Math.abs(runs[1][i] - runs[0][i])).toBeLessThan(1e-5);
  });

  it.each([
    ['all', undefined, 1, 600],
    ['local', 9, 3, 300],
    ['strided', 4, 2, 130],
  ] as const)('flash-decoding at head dim 128 (16 lanes a key): %s', async (mode, L, nQ, nK) => {
    const d = 128, heads = 8, kvHeads = 2;
    const attn = track(make({ mode, L, causal: true, heads, kvHeads }));
    const q = randomTensor([2, nQ, heads * d], 16, 2);
    const k = randomTensor([2, nK, kvHeads * d], 17, 2);
    const v = randomTensor([2, nK, kvHeads * d], 18);
    const ref = attentionReference(q, k, v, heads, mode, L, BS, { causal: true, kvHeads });
    const out = await attn.forward(q, k, v);
    expect(attn.lastRun!.reason).toMatch(/flash-decoding/);
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, `${mode} d128`);
  });

  describe.each([
    { mode: 'all' as const, L: undefined },
    { mode: 'local' as const, L: 9 },
    { mode: 'strided' as const, L: 4 },
  ])('KV cache in GPU buffers, $mode', ({ mode, L }) => {
    it('prefill, decode steps, chunks and truncate equal the rows of the full self-attention', async () => {
      const heads = 8, kvHeads = 2, batch = 2, total = 60;
      const attn = track(make({ mode, L, causal: true, heads, kvHeads }));
      const q = randomTensor([batch, total, heads * D], 7, 2);
      const k = randomTensor([batch, total, kvHeads * D], 8, 2);
      const v = randomTensor([batch, total, kvHeads * D], 9);
      const full = attentionReference(q, k, v, heads, mode, L, BS, { causal: true, kvHeads });
      const rows = (x: { data: Float32Array }, width: number, from: number, to: number) => {
        const out = new Float32Array(batch * (to - from) * width);
        for (let b = 0; b < batch; b++) out.set(x.data.subarray((b * total + from) * width, (b * total + to) * width), b * (to - from) * width);
        return { data: out, shape: [batch, to - from, width] as [number, number, number] };
      };
      const expectRows = (from: number, to: number) => {
        const want = new Float64Array(batch * (to - from) * heads * D);
        const w = heads * D;
        for (let b = 0; b < batch; b++) want.set(full.data.subarray((b * total + from) * w, (b * total + to) * w), b * (to - from) * w);
        return want;
      };
      const cache = attn.createCache({ batch, capacity: 64 });
      const step = async (from: number, to: number) => {
        const out = await attn.forward(rows(q, heads * D, from, to), rows(k, kvHeads * D, from, to), rows(v, kvHeads * D, from, to), { cache });
        expect(cache.length).toBe(to);
        expect(attn.lastRun!.backend).toBe('webgpu');
        expect(attn.lastRun!.reason).toMatch(/KV cache call/);
        expectClose(out.data, expectRows(from, to), TOL.atol, TOL.rtol, `${mode} rows ${from}..${to}`);
      };
      await step(0, 37); // prefill
      for (let t = 37; t < 40; t++) await step(t, t + 1); // decode
      await step(40, 45); // a chunk
      cache.truncate(41); // roll back 4 tokens (e.g. rejected speculative ones)
      expect(cache.length).toBe(41);
      await step(41, 43);
      await step(43, 44);
      await step(44, 60);
      expect(cache.bytes).toBeGreaterThanOrEqual(2 * batch * 64 * kvHeads * D * 4);
      cache.dispose();
    });
  });

  it('forwardGPU against a GPU cache: new rows copied on the device, the same rows as forward()', async () => {
    const heads = 4, kvHeads = 1, batch = 1, total = 20;
    const attn = track(make({ mode: 'all', causal: true, heads, kvHeads }));
    const q = randomTensor([batch, total, heads * D], 10, 2);
    const k = randomTensor([batch, total, kvHeads * D], 11, 2);
    const v = randomTensor([batch, total, kvHeads * D], 12);
    const full = attentionReference(q, k, v, heads, 'all', undefined, BS, { causal: true, kvHeads });
    const device = (await attn.gpuDevice()) as unknown as GPUDevice;
    const cache = attn.createCache({ batch, capacity: 32 });
    const upload = (x: Float32Array) => {
      const b = device.createBuffer({ size: Math.max(16, x.byteLength), usage: STORAGE | COPY_DST | COPY_SRC });
      device.queue.writeBuffer(b, 0, x as Float32Array<ArrayBuffer>);
      return b;
    };
    const read = async (b: GPUBuffer, bytes: number) => {
      const s = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(b, 0, s, 0, bytes);
      device.queue.submit([enc.finish()]);
      await s.mapAsync(1); // GPUMapMode.READ
      const out = new Float32Array(s.getMappedRange().slice(0));
      s.destroy();
      return out;
    };
    for (const [from, to] of [[0, 15], [15, 16], [16, 20]]) {
      const sl = (x: Float32Array, w: number) => x.slice(from * w, to * w);
      const res = await attn.forwardGPU(upload(sl(q.data, heads * D)), upload(sl(k.data, kvHeads * D)), upload(sl(v.data, kvHeads * D)), [batch, to - from, heads * D], { cache });
      expect(cache.length).toBe(to);
      const got = await read(res.buffer as unknown as GPUBuffer, (to - from) * heads * D * 4);
      expectClose(got, full.data.slice(from * heads * D, to * heads * D), TOL.atol, TOL.rtol, `forwardGPU rows ${from}..${to}`);
    }
    cache.dispose();
  });

  it('forwardGPU with grouped K/V heads, and with nK keys (a decode step against resident K/V)', async () => {
    const heads = 8, kvHeads = 2;
    const attn = track(make({ mode: 'local', L: 9, causal: true, heads, kvHeads }));
    const device = (await attn.gpuDevice()) as unknown as GPUDevice;
    const upload = (x: Float32Array) => {
      const b = device.createBuffer({ size: x.byteLength, usage: STORAGE | COPY_DST });
      device.queue.writeBuffer(b, 0, x as Float32Array<ArrayBuffer>);
      return b;
    };
    const read = async (b: GPUBuffer, bytes: number) => {
      const s = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(b, 0, s, 0, bytes);
      device.queue.submit([enc.finish()]);
      await s.mapAsync(1);
      const out = new Float32Array(s.getMappedRange().slice(0));
      s.destroy();
      return out;
    };
    for (const [nQ, nK, kernel] of [[40, 40, /forward kernel/], [2, 300, /flash-decoding/]] as const) {
      const q = randomTensor([2, nQ, heads * D], 13, 2);
      const k = randomTensor([2, nK, kvHeads * D], 14, 2);
      const v = randomTensor([2, nK, kvHeads * D], 15);
      const ref = attentionReference(q, k, v, heads, 'local', 9, BS, { causal: true, kvHeads });
      const res = await attn.forwardGPU(upload(q.data), upload(k.data), upload(v.data), [2, nQ, heads * D], nK === nQ ? {} : { nK });
      expect(attn.lastRun!.reason).toMatch(kernel);
      expectClose(await read(res.buffer as unknown as GPUBuffer, q.data.byteLength), ref.data, TOL.atol, TOL.rtol, `forwardGPU ${nQ} x ${nK}`);
    }
    // K/V buffers sized for kvHeads heads: one sized for the query heads' nK rows is not required, one too small is refused
    const small = upload(new Float32Array(16));
    await expect(attn.forwardGPU(small, small, small, [1, 4, heads * D])).rejects.toThrow(/forwardGPU q must be a GPUBuffer of at least/);
  });

  it('bad inputs: another instance\'s cache, past capacity (nothing appended), a call in flight, a disposed cache', async () => {
    const c = { mode: 'all' as const, causal: true, heads: 4, kvHeads: 2 };
    const a = track(make(c));
    const other = track(make(c));
    const cache = a.createCache({ batch: 1, capacity: 8 });
    expect(cache).toBeInstanceOf(KvCache);
    const t = (n: number, w: number, seed: number) => randomTensor([1, n, w], seed);
    await a.forward(t(6, 4 * D, 1), t(6, 2 * D, 2), t(6, 2 * D, 3), { cache });
    await expect(other.forward(t(1, 4 * D, 1), t(1, 2 * D, 2), t(1, 2 * D, 3), { cache })).rejects.toMatchObject({ code: 'ERR_ARGUMENT' });
    await expect(a.forward(t(3, 4 * D, 1), t(3, 2 * D, 2), t(3, 2 * D, 3), { cache })).rejects.toThrow(/exceeds its capacity \(8\); nothing was appended/);
    expect(cache.length).toBe(6);
    // still usable: the next step sees exactly the 6 cached tokens and its own
    const q = t(1, 4 * D, 4), k = t(1, 2 * D, 5), v = t(1, 2 * D, 6);
    const out = await a.forward(q, k, v, { cache });
    expect(cache.length).toBe(7);
    expect(out.data.every(Number.isFinite)).toBe(true);
    // one call at a time on a cache; truncate waits for it too
    const first = a.forward(t(1, 4 * D, 7), t(1, 2 * D, 8), t(1, 2 * D, 9), { cache });
    await expect(a.forward(q, k, v, { cache })).rejects.toMatchObject({ code: 'ERR_STATE' });
    expect(() => cache.truncate(2)).toThrow(/while a forward\(\) call on this cache computes/);
    await first;
    expect(cache.length).toBe(8);
    cache.dispose();
    await expect(a.forward(q, k, v, { cache })).rejects.toThrow(/disposed/);
  });

  it('plan() counts a decode step by the K/V bytes it reads', async () => {
    const attn = track(new SparseAttention(8, 'local', 256, BS, { kvHeads: 2 }));
    await attn.gpuDevice();
    const read = (nK: number) => {
      const p = attn.plan([1, 1, 8 * D], { nK });
      const m = /flash-decoding reading ([\d.]+) MB of K\/V/.exec(p.reason);
      expect(m, p.reason).not.toBeNull();
      return Number(m![1]);
    };
    // 'local' reads its window whatever the cache length: 256 keys × 2 K/V heads × 32 dims × K and V
    expect(read(4096)).toBeCloseTo((256 * 2 * D * 4 * 2) / 1e6, 3);
    expect(read(65536)).toBe(read(4096));
  });
});

// Packed sequences (seqLengths) on the GPU path: each sequence its own dispatch over its rows,
// a group of them in one submit; equal to the reference (and so to separate calls), with
// lengths around the block edges (0 included), grouped K/V heads, key lengths, every band
// mode and a block-layout mode, and a call of more sequences than one submit takes.
describe.runIf(run)('webgpu packed sequences', () => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  const packedCases: { mode: InfCase['mode']; L?: number; causal: boolean; lens: number[]; heads: number; kvHeads: number; keyLength?: number }[] = [];
  for (const [mode, L] of [['all', undefined], ['local', 9], ['strided', 4]] as const) {
    for (const causal of [true, false]) {
      packedCases.push({ mode, L, causal, lens: [5, 0, 64, 65, 1, 33], heads: 4, kvHeads: 4 });
      packedCases.push({ mode, L, causal, lens: [70, 3, 15], heads: 4, kvHeads: 2 });
    }
    packedCases.push({ mode, L, causal: true, lens: [20, 9, 31], heads: 4, kvHeads: 2, keyLength: 45 });
  }
  packedCases.push({ mode: 'fixed', L: 128, causal: true, lens: [130, 8, 70], heads: 4, kvHeads: 4 });
  // more sequences than one submit groups (64): the second group's offsets start again at 0
  packedCases.push({ mode: 'local', L: 9, causal: true, lens: Array.from({ length: 70 }, (_, i) => 1 + (i * 7) % 13), heads: 4, kvHeads: 2 });
  const label = (c: (typeof packedCases)[number]) =>
    `${c.mode}${c.L ? ` L=${c.L}` : ''}${c.causal ? '' : ' bidir'} ${c.lens.length > 8 ? `${c.lens.length} sequences` : `lens [${c.lens}]`} ${c.heads}/${c.kvHeads} heads${c.keyLength !== undefined ? ` keyLengths [${c.keyLength}]` : ''}`;
  it.each(packedCases.map((c) => [label(c), c] as const))('%s', async (_n, c) => {
    const n = c.lens.reduce((a, b) => a + b, 0);
    const attn = make(c);
    instances.push(attn);
    const q = randomTensor([1, n, c.heads * D], 1, 2);
    const k = randomTensor([1, n, c.kvHeads * D], 2, 2);
    const v = randomTensor([1, n, c.kvHeads * D], 3);
    const keyLengths = c.keyLength === undefined ? undefined : [c.keyLength];
    const causal = { causal: c.causal, kvHeads: c.kvHeads };
    const ref = attentionReference(q, k, v, c.heads, c.mode, c.L, BS, causal, { seqLengths: c.lens, keyLengths });
    const out = await attn.forward(q, k, v, { seqLengths: c.lens, keyLengths });
    expect(attn.lastRun!.backend, attn.lastRun!.reason).toBe('webgpu');
    expect(attn.lastRun!.reason).toMatch(/packed: \d+ sequences?, one dispatch each/);
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, label(c));
  });

  it('a sequence larger than one storage binding runs on its own, split by heads; the others still packed', async () => {
    const lens = [3, 70, 5, 1];
    const n = lens.reduce((a, b) => a + b, 0);
    // 16 KiB bindings: the 70-token sequence (35,840 bytes of q) goes alone, one head at a time
    const attn = make({ mode: 'local', L: 9, causal: true, heads: 4, kvHeads: 4 }, { maxBindingBytes: 16384 });
    instances.push(attn);
    const q = randomTensor([1, n, 4 * D], 11, 2), k = randomTensor([1, n, 4 * D], 12, 2), v = randomTensor([1, n, 4 * D], 13);
    const ref = attentionReference(q, k, v, 4, 'local', 9, BS, { causal: true }, { seqLengths: lens });
    const out = await attn.forward(q, k, v, { seqLengths: lens });
    expect(attn.lastRun!.backend, attn.lastRun!.reason).toBe('webgpu');
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, 'split sequence');
  });

  it('auto and plan() weigh a packed call on both paths; forwardSync keeps it on the CPU', async () => {
    const attn = new SparseAttention(4, 'local', 9, BS, { kvHeads: 2 });
    instances.push(attn);
    await attn.gpuDevice();
    const lens = [40, 24];
    const p = attn.plan([1, 64, 4 * D], { seqLengths: lens });
    expect(p.estimatedMs.wasm).toBeGreaterThan(0);
    expect(p.estimatedMs.webgpu).toBeGreaterThan(0);
    expect(['wasm', 'webgpu']).toContain(p.backend);
    const q = randomTensor([1, 64, 4 * D], 7), k = randomTensor([1, 64, 2 * D], 8), v = randomTensor([1, 64, 2 * D], 9);
    const ref = attentionReference(q, k, v, 4, 'local', 9, BS, { kvHeads: 2 }, { seqLengths: lens }).data;
    expectClose((await attn.forward(q, k, v, { seqLengths: lens })).data, ref, TOL.atol, TOL.rtol, 'auto');
    expect(attn.lastRun!.backend).toBe(p.backend);
    expectClose(attn.forwardSync(q, k, v, { seqLengths: lens }).data, ref, 1e-5, 1e-4, 'forwardSync');
  });
});
