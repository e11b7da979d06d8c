// Decode and GQA prefill on the GPU path (issue 17), PyTorch's counterpart is bench/sdpa-decode.py:
//   source .gpu/setup.sh; python3 bench/sdpa-decode.py; node bench/gpu-decode.mjs
// - decode: 1 query, 32 query / 8 K/V heads, head dim 128, f32, against K/V of `cache` rows
//   resident on the GPU (forwardGPU with nK: the kernel a KV cache step runs, without filling
//   a cache by prefill), `all` and `local` L=4096, caches 8K…128K. Kernel time from timestamps
//   over one pass of --repeat dispatches (Dawn's timestamps tick in 65.536 µs on the H100: a
//   single decode step is a few ticks), median of --runs passes; the HBM bound is the K+V bytes
//   the step must read at 3.35 TB/s.
// - GQA prefill: nCtx 4096, 32/8 heads, `all` causal, against the same call with K/V repeated
//   to 32 heads (kvHeads 32): the grouped call must not cost more.
// - end to end: decode steps through forward() against a KV cache in GPU buffers (prefill of
//   --prefill tokens, then steps), wall time per step, and the bytes a step moves.
// Outputs are checked first: decode against attentionReference (float64), prefill at nCtx 256
// against it and at full size against the repeated-K/V call.
//   --tiny: lavapipe sizes (8/2 heads, head dim 32, caches 512 and 2048, L 256), for a check here
//   --caches a,b,…  --repeat N  --runs N  --splits N (flash-decoding splits)  --out file.json
//   --dtype float16: q, k, v, out and the cache as IEEE halves (issue 18: H100 decode at 64K,
//   f16 ≤ 0.6× the f32 time); the reference is computed from the same halves
import { writeFileSync } from 'node:fs';
import { SparseAttention, attentionReference } from '../dist/index.js';
import { GPU_USAGE, fromHalfBits, gpuBufferOf, median, parseArgs, randomTensor as randomF32, toHalfBits } from './lib.mjs';

const args = parseArgs();
const tiny = Boolean(args.tiny);
const H = tiny ? 8 : 32;
const KVH = tiny ? 2 : 8;
const D = tiny ? 32 : 128;
const CACHES = String(args.caches ?? (tiny ? '512,2048' : '8192,32768,65536,131072')).split(',').map(Number);
const LOCAL = tiny ? 256 : 4096;
const REPEAT = Number(args.repeat ?? (tiny ? 4 : 200));
const RUNS = Number(args.runs ?? (tiny ? 3 : 10));
const PREFILL = tiny ? 64 : 4096; // tiny: block 64, the pipelines the tests compile
const HBM_BYTES_PER_MS = 3.35e9; // H100 SXM: 3.35 TB/s
const { STORAGE, COPY_DST, COPY_SRC } = GPU_USAGE;
const DTYPE = args.dtype === 'float16' ? 'float16' : 'float32';
const ES = DTYPE === 'float16' ? 2 : 4; // bytes per value
/** A random tensor in the run's dtype (halves: the f32 values rounded). */
const randomTensor = (shape, seed) => {
  const t = randomF32(shape, seed);
  return DTYPE === 'float16' ? { data: toHalfBits(t.data), shape } : t;
};
const results = [];
const emit = (r) => {
  results.push(r);
  console.log(JSON.stringify(r));
};
const log = (...a) => console.error(...a);

function instance(mode, L, kvHeads, extra = {}) {
  const webgpu = { timestamps: true, repeat: REPEAT, ...(args.splits !== undefined ? { decodeSplits: Number(args.splits) } : {}), ...extra };
  return new SparseAttention(H, mode, L, 64, { kvHeads, backend: 'webgpu', webgpu, dtype: DTYPE });
}

async function readBack(device, buf, bytes) {
  const s = device.createBuffer({ size: bytes, usage: 0x1 | COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, s, 0, bytes);
  device.queue.submit([enc.finish()]);
  await s.mapAsync(0x1);
  const range = s.getMappedRange().slice(0);
  const out = DTYPE === 'float16' ? fromHalfBits(new Uint16Array(range)) : new Float32Array(range);
  s.destroy();
  return out;
}

/** Worst |a - b| / (atol + rtol·|b|) (<= 1: within the WebGPU tolerance of the conformance suite; for halves issue 18's 1e-3 + 2e-3·|b|). */
function worst(a, b) {
  const [atol, rtol] = DTYPE === 'float16' ? [1e-3, 2e-3] : [1e-4, 1e-3];
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  return w;
}

/** Median kernel ms per dispatch over RUNS timed passes (after >= 300 ms of warm-up: the SM clock). */
async function kernelMs(call, attn) {
  const t0 = performance.now();
  for (let i = 0; i < 2 || performance.now() - t0 < 300; i++) await call();
  const ms = [];
  for (let i = 0; i < RUNS; i++) {
    await call();
    if (attn.lastRun.gpuMs !== undefined) ms.push(attn.lastRun.gpuMs);
  }
  return ms.length ? median(ms) : null;
}

// ---- decode against resident K/V
for (const [mode, L] of [['all', undefined], ['local', LOCAL]]) {
  for (const C of CACHES) {
    const attn = instance(mode, L, KVH);
    const device = await attn.gpuDevice();
    const q = randomTensor([1, 1, H * D], 11);
    const k = randomTensor([1, C, KVH * D], 12);
    const v = randomTensor([1, C, KVH * D], 13);
    const bufs = [q, k, v].map((t) => gpuBufferOf(device, t.data));
    const out = device.createBuffer({ size: H * D * ES, usage: STORAGE | COPY_SRC | COPY_DST });
    const call = () => attn.forwardGPU(bufs[0], bufs[1], bufs[2], [1, 1, H * D], { nK: C, out });
    try {
      await call();
      const got = await readBack(device, out, H * D * ES);
      const ref = attentionReference(q, k, v, H, mode, L, 64, { kvHeads: KVH, dtype: DTYPE });
      const err = worst(got, ref.data);
      if (!(err <= 1)) throw new Error(`decode ${mode} cache ${C}: output off the reference (worst ${err.toFixed(2)} × tolerance)`);
      const ms = await kernelMs(call, attn);
      const read = Math.min(C, L ?? C);
      const hbmMs = (2 * read * KVH * D * ES) / HBM_BYTES_PER_MS;
      emit({ impl: 'ours-webgpu', case: 'decode', dtype: DTYPE, mode, L: L ?? null, cache: C, heads: H, kvHeads: KVH, headDim: D, repeat: REPEAT, ms, hbmBoundMs: hbmMs, vsHbm: ms && ms / hbmMs, worstErr: err, kernel: attn.lastRun.reason });
    } catch (e) {
      emit({ impl: 'ours-webgpu', case: 'decode', mode, L: L ?? null, cache: C, error: e.message });
    }
    bufs.forEach((b) => b.destroy());
    out.destroy();
    attn.dispose();
  }
}

// ---- GQA prefill vs K/V repeated to every head
{
  const check = async (n) => {
    const attn = instance('all', undefined, KVH, { repeat: 1 });
    const q = randomTensor([1, n, H * D], 21);
    const k = randomTensor([1, n, KVH * D], 22);
    const v = randomTensor([1, n, KVH * D], 23);
    const got = await attn.forward(q, k, v);
    const data = DTYPE === 'float16' ? fromHalfBits(got.data) : got.data;
    const err = worst(data, attentionReference(q, k, v, H, 'all', undefined, 64, { kvHeads: KVH, dtype: DTYPE }).data);
    attn.dispose();
    if (!(err <= 1)) throw new Error(`GQA prefill nCtx ${n}: output off the reference (worst ${err.toFixed(2)} × tolerance)`);
    return err;
  };
  const errSmall = await check(Math.min(256, PREFILL));
  const n = PREFILL;
  const q = randomTensor([1, n, H * D], 31);
  const k = randomTensor([1, n, KVH * D], 32);
  const v = randomTensor([1, n, KVH * D], 33);
  // K/V repeated: query head h's K/V head floor(h·KVH/H) copied to position h
  const rep = (t) => {
    const x = new t.data.constructor(n * H * D);
    for (let r = 0; r < n; r++) for (let h = 0; h < H; h++) x.set(t.data.subarray((r * KVH + Math.floor((h * KVH) / H)) * D, (r * KVH + Math.floor((h * KVH) / H) + 1) * D), (r * H + h) * D);
    return x;
  };
  const rows = {};
  const outs = {};
  for (const [label, kvHeads, kd, vd] of [['gqa', KVH, k.data, v.data], ['repeated', H, rep(k), rep(v)]]) {
    const attn = instance('all', undefined, kvHeads, { repeat: Math.max(1, Math.round(REPEAT / 20)) });
    const device = await attn.gpuDevice();
    const bufs = [q.data, kd, vd].map((x) => gpuBufferOf(device, x));
    const out = device.createBuffer({ size: n * H * D * ES, usage: STORAGE | COPY_SRC | COPY_DST });
    const call = () => attn.forwardGPU(bufs[0], bufs[1], bufs[2], [1, n, H * D], { out });
    await call();
    outs[label] = await readBack(device, out, n * H * D * ES);
    rows[label] = { ms: await kernelMs(call, attn), kernel: attn.lastRun.reason };
    bufs.forEach((b) => b.destroy());
    out.destroy();
    attn.dispose();
  }
  let diff = 0;
  for (let i = 0; i < outs.gqa.length; i++) diff = Math.max(diff, Math.abs(outs.gqa[i] - outs.repeated[i]));
  emit({ impl: 'ours-webgpu', case: 'gqa-prefill', dtype: DTYPE, mode: 'all', nCtx: n, heads: H, kvHeads: KVH, headDim: D, gqaMs: rows.gqa.ms, repeatedMs: rows.repeated.ms, ratio: rows.gqa.ms && rows.repeated.ms && rows.gqa.ms / rows.repeated.ms, maxAbsDiff: diff, worstErrAt256: errSmall, kernel: rows.gqa.kernel });
}

// ---- end to end: forward() against a KV cache in GPU buffers
{
  const attn = instance('all', undefined, KVH, { timestamps: false });
  const cache = attn.createCache({ batch: 1, capacity: PREFILL + 64 });
  const q = randomTensor([1, PREFILL, H * D], 41);
  const k = randomTensor([1, PREFILL, KVH * D], 42);
  const v = randomTensor([1, PREFILL, KVH * D], 43);
  await attn.forward(q, k, v, { cache });
  const steps = tiny ? 8 : 50;
  const times = [];
  for (let i = 0; i < steps; i++) {
    const t = [H, KVH, KVH].map((h, j) => randomTensor([1, 1, h * D], 50 + 3 * i + j));
    const t0 = performance.now();
    await attn.forward(t[0], t[1], t[2], { cache });
    times.push(performance.now() - t0);
  }
  const moved = (2 * H * D + 2 * KVH * D) * ES;
  emit({ impl: 'ours-webgpu', case: 'decode-e2e-cache', dtype: DTYPE, mode: 'all', cacheStart: PREFILL, steps, msPerStepMedian: median(times), bytesMovedPerStep: moved, cacheBytes: cache.bytes, kernel: attn.lastRun.reason });
  cache.dispose();
  attn.dispose();
}

if (args.out) writeFileSync(String(args.out), JSON.stringify(results, null, 2));
log(`gpu-decode: ${results.length} results${results.some((r) => r.error) ? ' (some failed: see error)' : ''}`);
process.exit(results.some((r) => r.error) ? 1 : 0);
