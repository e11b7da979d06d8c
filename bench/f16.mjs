// A decode step against a KV cache in halves vs in f32 (issue 18's CPU target: f16 ≤ 0.7×
// the f32 time at 32K): batch 1, 32 query heads / 8 K/V heads, head dim 128, mode 'all',
// one new token against `len` cached tokens. Both caches are filled without computing
// attention (KvCache's internal append, as bench/decode.mjs does), with the same values (the
// f16 cache holds them rounded). Measured interleaved A B B A per round so that a change of
// the machine's load hits both alike; each measurement is the median of `--steps` steps (the
// cache truncated back after each, so every step sees the same length). Prints the load
// average with the numbers; the first step's outputs of the two are compared first.
//   node bench/f16.mjs [--threads 2] [--len 32768] [--rounds 3] [--steps 5] [--out file.json]
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { SparseAttention } from '../dist/index.js';
import { fromHalfBits, median, parseArgs, toHalfBits } from './lib.mjs';

const args = parseArgs();
const threads = Number(args.threads ?? 2);
const len = Number(args.len ?? 32768);
const rounds = Number(args.rounds ?? 3);
const steps = Number(args.steps ?? 5);
const [heads, kvHeads, d] = [32, 8, 128];
const fill = (n, w, s) => Float32Array.from({ length: n * w }, (_, i) => Math.sin(i * 0.013 + s) * 0.5);

async function setup(dtype) {
  const attn = new SparseAttention(heads, 'all', undefined, 32, { kvHeads, backend: 'wasm', threads, dtype });
  const conv = dtype === 'float16' ? toHalfBits : (x) => x;
  const cache = attn.createCache({ batch: 1, capacity: len + 1 });
  // the first call creates the cache's memory (its head dim is known then)
  const q = { data: conv(fill(1, heads * d, 7)), shape: [1, 1, heads * d] };
  const kv = { data: conv(fill(1, kvHeads * d, 8)), shape: [1, 1, kvHeads * d] };
  const chunk = 4096;
  for (let t = 0; t < len; t += chunk) {
    const n = Math.min(chunk, len - t);
    const { base } = cache.begin(conv(fill(n, kvHeads * d, t)), conv(fill(n, kvHeads * d, t + 1)), n, d);
    cache.end(base, true);
  }
  const step = async () => {
    const out = await attn.forward(q, kv, kv, { cache });
    cache.truncate(len);
    return out;
  };
  return { attn, cache, step };
}

const A = await setup('float32');
const B = await setup('float16');
// the two compute the same attention (B on halves): compare before timing
const [oa, ob] = [await A.step(), await B.step()];
let worst = 0;
const half = fromHalfBits(ob.data);
for (let i = 0; i < oa.data.length; i++) worst = Math.max(worst, Math.abs(half[i] - oa.data[i]) / (1e-3 + 2e-3 * Math.abs(oa.data[i])));
if (!(worst <= 1)) throw new Error(`f16 step differs from the f32 step beyond 1e-3 + 2e-3·|r| (×${worst.toFixed(2)})`);
console.log(`outputs agree (worst |Δ| / (1e-3 + 2e-3·|r|) = ${worst.toFixed(3)}); cache bytes f32 ${A.cache.bytes}, f16 ${B.cache.bytes}`);

async function measure(x) {
  const ms = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await x.step();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}
for (const x of [A, B]) await measure(x); // warm-up
const load0 = loadavg();
const res = { f32: [], f16: [] };
for (let r = 0; r < rounds; r++) {
  res.f32.push(await measure(A));
  res.f16.push(await measure(B));
  res.f16.push(await measure(B));
  res.f32.push(await measure(A));
  console.log(`round ${r + 1}: f32 ${res.f32.slice(-2).map((x) => x.toFixed(1)).join(', ')} ms; f16 ${res.f16.slice(-2).map((x) => x.toFixed(1)).join(', ')} ms; load ${loadavg()[0].toFixed(2)}`);
}
const load1 = loadavg();
const m32 = median(res.f32);
const m16 = median(res.f16);
const row = {
  mode: 'all', cacheTokens: len, heads, kvHeads, headDim: d, threads, steps, rounds,
  f32Ms: +m32.toFixed(2), f16Ms: +m16.toFixed(2), ratio: +(m16 / m32).toFixed(3),
  cacheBytes: { f32: A.cache.bytes, f16: B.cache.bytes },
  load: { before: load0.map((x) => +x.toFixed(2)), after: load1.map((x) => +x.toFixed(2)) },
  path: A.attn.lastRun.detail, node: process.version,
};
console.log(JSON.stringify(row));
if (args.out) writeFileSync(args.out, JSON.stringify(row, null, 1));
for (const x of [A, B]) {
  x.cache.dispose();
  x.attn.dispose();
}
