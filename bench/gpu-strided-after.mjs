// Why is 'strided' L=128 at nCtx 65536 ~5× slower on the GPU when it follows end-to-end calls
// of other large cases in the same process (bench/NOTES-gpu.md)? Kernel time (timestamp
// queries, median of 10) of that case in one process, measured after each step of a history:
//   fresh        nothing before
//   churn        2 GiB of buffers written then destroyed (memory freed and reused)
//   held         2 GiB of buffers written and kept alive
//   e2e          forward() from Float32Arrays of 'all' and 'local' at 65536 (what bench/gpu.mjs does)
//   own-buffers  the same q/k/v data uploaded into new buffers, timed again
//   node bench/gpu-strided-after.mjs [--n 65536] [--out file.json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SparseAttention } from '../dist/index.js';
import { GPU_USAGE, gpuBufferOf, median, parseArgs, randomTensor } from './lib.mjs';

const args = parseArgs();
const HEADS = 16, HEAD_DIM = 64, N = Number(args.n ?? 65536), BLOCK = 64;
const { STORAGE, COPY_DST, COPY_SRC } = GPU_USAGE;
const shape = [1, N, HEADS * HEAD_DIM];
const bytes = N * HEADS * HEAD_DIM * 4;
const opts = { backend: 'webgpu', webgpu: { timestamps: true } };

const probe = new SparseAttention(HEADS, 'strided', 128, BLOCK, opts);
const device = await probe.gpuDevice();
const host = { q: randomTensor(shape, 1), k: randomTensor(shape, 2), v: randomTensor(shape, 3) };

function upload() {
  const b = { q: gpuBufferOf(device, host.q.data), k: gpuBufferOf(device, host.k.data), v: gpuBufferOf(device, host.v.data) };
  b.out = device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST });
  return b;
}

async function strided(bufs) {
  const attn = new SparseAttention(HEADS, 'strided', 128, BLOCK, { ...opts, device });
  const ms = [];
  t0 = new Date().toISOString();
  for (let i = 0; i < 12; i++) {
    await attn.forwardGPU(bufs.q, bufs.k, bufs.v, shape, { out: bufs.out });
    if (i >= 2) ms.push(attn.lastRun.gpuMs);
  }
  attn.dispose();
  return median(ms);
}

async function filler(keep) {
  const held = [];
  const chunk = new Float32Array(64 << 20); // 256 MiB
  for (let i = 0; i < 8; i++) {
    held.push(gpuBufferOf(device, chunk));
  }
  await device.queue.onSubmittedWorkDone();
  if (!keep) for (const b of held) b.destroy();
  return held;
}

const result = { nCtx: N, heads: HEADS, headDim: HEAD_DIM, steps: [] };
let t0 = ''; // when the last timing started (to match nvidia-smi's clock log)
const log = (step, ms) => {
  result.steps.push({ step, gpuMs: ms, from: t0, to: new Date().toISOString() });
  console.error(`${step}: strided ${N} ${ms.toFixed(3)} ms (${t0} .. ${new Date().toISOString()})`);
};
let bufs = upload();
log('fresh', await strided(bufs));
await filler(false);
log('churn', await strided(bufs));
const kept = await filler(true);
log('held', await strided(bufs));
for (const b of kept) b.destroy();
for (const [mode, L] of [['all', undefined], ['local', 512]]) {
  const attn = new SparseAttention(HEADS, mode, L, BLOCK, { ...opts, device });
  await attn.forward(host.q, host.k, host.v);
  attn.dispose();
}
log('e2e', await strided(bufs));
for (const n of ['q', 'k', 'v', 'out']) bufs[n].destroy();
bufs = upload();
log('own-buffers', await strided(bufs));
probe.dispose();

if (args.out) {
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, JSON.stringify(result, null, 1));
}
