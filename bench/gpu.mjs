// GPU benchmark of the WebGPU path (issue 3): batch 1, 16 heads, headDim 64, modes
// 'all' (causal), 'local' L=512, 'strided' L=128 at nCtx 4096 / 16384 / 65536.
// Per case: GPU-only time with q/k/v resident (forwardGPU; timestamp queries when the
// adapter has them, else the mean of back-to-back submits closed by onSubmittedWorkDone),
// end-to-end time from Float32Arrays (forward), useful GFLOP/s from plan().usefulFlops,
// and a max-error check against the CPU path. Then a CPU-vs-GPU crossover sweep (end to
// end, small to large) as input for the 'auto' cost model.
// Plain Node on dist/ (no dev dependencies), so it runs on the GPU machine.
//   node bench/gpu.mjs [--sizes 4096,16384,65536] [--variant <name>] [--no-scan] [--gpu-only]
//                      [--no-crossover] [--quick] [--out file.json]
//                      [--modes all,local,strided] [--dist dir] (another build of the package, for A/B runs of kernel versions)
//                      [--dtype float16] (q, k, v and out as IEEE halves on both paths; issue 18: `all` @16K f16 ≤ the f32 time)
// --variant: a kernel variant of src/backends/webgpu/variants.ts (e.g. bsattn_fwd_f32_q64_k64_qtile__subgroups),
// run wherever it applies, elsewhere the automatic choice; --no-scan: partial tiles always take the masked P·V.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { GPU_USAGE, fromHalfBits, gpuBufferOf, median, parseArgs, randomTensor as randomF32, toHalfBits } from './lib.mjs';

const args = parseArgs();
const { SparseAttention } = await import(args.dist ? pathToFileURL(`${args.dist}/index.js`).href : '../dist/index.js');
const SIZES = String(args.sizes ?? '4096,16384,65536').split(',').map(Number);
const HEADS = 16;
const HEAD_DIM = 64;
const BLOCK = 64; // a performance parameter only for these modes
const DTYPE = args.dtype === 'float16' ? 'float16' : 'float32';
const ES = DTYPE === 'float16' ? 2 : 4; // bytes per value
/** A random tensor in the run's dtype (halves: the f32 values rounded), and a result's values as f32. */
const randomTensor = (shape, seed) => {
  const t = randomF32(shape, seed);
  return DTYPE === 'float16' ? { data: toHalfBits(t.data), shape } : t;
};
const valuesOf = (data) => (data instanceof Uint16Array ? fromHalfBits(data) : data);
const CASES = [['all', undefined], ['local', 512], ['strided', 128]].filter(([m]) => !args.modes || String(args.modes).split(',').includes(m));
const GPU_OPTS = {
  timestamps: true,
  ...(args.variant ? { variant: String(args.variant) } : {}), ...(args['no-scan'] ? { scanV: false } : {}),
};
const { STORAGE, COPY_DST, COPY_SRC } = GPU_USAGE;

const log = (...a) => console.error(...a);

/** Median kernel ms over runs (timestamps), and mean ms of `runs` back-to-back submits. */
async function gpuTime(attn, device, bufs, shape, runs) {
  const out = device.createBuffer({ size: bufs.bytes, usage: STORAGE | COPY_SRC | COPY_DST });
  // Warm-up: pipelines, and the SM clock — after copy-bound work (uploads, readbacks) the H100
  // idles down to ~700 MHz and a few short kernels do not bring it back (docs/kernel-history.md),
  // so keep the card busy for at least 300 ms first.
  const warm0 = performance.now();
  for (let i = 0; i < 2 || performance.now() - warm0 < 300; i++) await attn.forwardGPU(bufs.q, bufs.k, bufs.v, shape, { out });
  const stamps = [];
  for (let i = 0; i < runs; i++) {
    await attn.forwardGPU(bufs.q, bufs.k, bufs.v, shape, { out });
    if (attn.lastRun.gpuMs !== undefined) stamps.push(attn.lastRun.gpuMs);
  }
  await device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await attn.forwardGPU(bufs.q, bufs.k, bufs.v, shape, { out });
  await device.queue.onSubmittedWorkDone();
  const submitMs = (performance.now() - t0) / runs;
  out.destroy();
  return { timestampMs: stamps.length ? median(stamps) : null, submitMs, runs };
}

async function endToEnd(attn, q, k, v, runs) {
  await attn.forward(q, k, v);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await attn.forward(q, k, v);
    times.push(performance.now() - t0);
  }
  return median(times);
}

function maxError(a, b) {
  let worst = 0;
  const [atol, rtol] = DTYPE === 'float16' ? [1e-3, 2e-3] : [1e-4, 1e-3];
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  return worst; // <= 1 means within the WebGPU tolerance (halves: issue 18's)
}

const result = { options: { ...GPU_OPTS, dist: args.dist ?? 'dist', dtype: DTYPE }, machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version }, cases: [], crossover: [] };
const probe = new SparseAttention(HEADS, 'all', undefined, BLOCK, { backend: 'webgpu', webgpu: GPU_OPTS, dtype: DTYPE });
const device = await probe.gpuDevice();
result.machine.adapter = probe.plan([1, 64, HEADS * HEAD_DIM]) && (await (async () => {
  const sh = [1, 64, HEADS * HEAD_DIM];
  const z = DTYPE === 'float16' ? new Uint16Array(64 * HEADS * HEAD_DIM) : new Float32Array(64 * HEADS * HEAD_DIM);
  await probe.forward({ data: z, shape: sh }, { data: z, shape: sh }, { data: z, shape: sh });
  return probe.lastRun.detail;
})());
result.machine.limits = { maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize, maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize };
log('adapter:', result.machine.adapter);

for (const nCtx of SIZES) {
  const shape = [1, nCtx, HEADS * HEAD_DIM];
  const n = nCtx * HEADS * HEAD_DIM;
  const q = randomTensor(shape, 1), k = randomTensor(shape, 2), v = randomTensor(shape, 3);
  const bufs = { bytes: n * ES, q: gpuBufferOf(device, q.data), k: gpuBufferOf(device, k.data), v: gpuBufferOf(device, v.data) };
  for (const [mode, L] of CASES) {
    const attn = new SparseAttention(HEADS, mode, L, BLOCK, { backend: 'webgpu', device, webgpu: GPU_OPTS, dtype: DTYPE });
    const plan = attn.plan(shape);
    const runs = args.quick ? 3 : nCtx >= 65536 ? 5 : 20;
    const g = await gpuTime(attn, device, bufs, shape, runs);
    const e2eMs = args['gpu-only'] ? null : await endToEnd(attn, q, k, v, args.quick ? 1 : 3);
    let err = null;
    if (nCtx <= 4096 && !args['gpu-only']) {
      const gpuOut = valuesOf((await attn.forward(q, k, v)).data);
      const cpu = new SparseAttention(HEADS, mode, L, BLOCK, { backend: 'wasm', dtype: DTYPE });
      err = maxError(gpuOut, valuesOf((await cpu.forward(q, k, v)).data));
      cpu.dispose();
    }
    const ms = g.timestampMs ?? g.submitMs;
    const row = {
      mode, L: L ?? null, dtype: DTYPE, causal: true, batch: 1, heads: HEADS, headDim: HEAD_DIM, nCtx, blocksize: BLOCK,
      usefulGflop: plan.usefulFlops / 1e9, density: plan.density,
      gpuMs: ms, gpuMsTimestamps: g.timestampMs, gpuMsSubmits: g.submitMs, usefulGflops: plan.usefulFlops / 1e6 / ms,
      endToEndMs: e2eMs, errorVsCpuOverTolerance: err, detail: attn.lastRun.detail,
    };
    result.cases.push(row);
    log(`${mode}${L ? ` L=${L}` : ''} nCtx=${nCtx}: gpu ${ms.toFixed(3)} ms (${row.usefulGflops.toFixed(0)} GFLOP/s useful; submits ${g.submitMs.toFixed(3)} ms), end-to-end ${e2eMs === null ? '-' : `${e2eMs.toFixed(1)} ms`}${err !== null ? `, err/tol ${err.toFixed(3)}` : ''}`);
    attn.dispose();
  }
  for (const b of ['q', 'k', 'v']) bufs[b].destroy();
}

// Crossover: end to end from Float32Arrays, CPU (wasm, all cores up to 8) vs GPU.
const sweep = args['no-crossover'] || args['gpu-only'] ? [] : args.quick ? [256, 1024] : [128, 256, 512, 1024, 2048, 4096, 8192];
for (const [mode, L] of CASES) {
  for (const nCtx of sweep) {
    const shape = [1, nCtx, HEADS * HEAD_DIM];
    const q = randomTensor(shape, 1), k = randomTensor(shape, 2), v = randomTensor(shape, 3);
    const gpu = new SparseAttention(HEADS, mode, L, BLOCK, { backend: 'webgpu', device, webgpu: GPU_OPTS, dtype: DTYPE });
    const cpu = new SparseAttention(HEADS, mode, L, BLOCK, { backend: 'wasm', dtype: DTYPE });
    const plan = gpu.plan(shape);
    const runs = args.quick ? 1 : 3;
    const gpuMs = await endToEnd(gpu, q, k, v, runs);
    const cpuMs = plan.usefulFlops > 2e11 ? null : await endToEnd(cpu, q, k, v, runs);
    result.crossover.push({ mode, L: L ?? null, nCtx, usefulGflop: plan.usefulFlops / 1e9, cpuMs, gpuMs, cpuDetail: cpu.lastRun?.detail });
    log(`crossover ${mode} nCtx=${nCtx}: cpu ${cpuMs?.toFixed(2)} ms, gpu ${gpuMs.toFixed(2)} ms`);
    gpu.dispose();
    cpu.dispose();
  }
}
probe.dispose();

const json = JSON.stringify(result, null, 1);
if (args.out) {
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, json);
}
console.log(json);
