// Decode steps against a KV cache on the CPU path (issue 17): batch 1, 32 query heads / 8
// K/V heads, head dim 128; one new token per step against a cache of `len` tokens. The
// cache is filled without computing attention (KvCache's internal append: a prefill of
// 128K tokens would take minutes on 2 cores and is not what is measured), then each timed
// step appends one token and attends it; the cache is truncated back after each step so
// that every step sees the same length. Reports ms per step (median), the K/V bytes the
// step's visited blocks read, and GB/s.
//   node bench/decode.mjs [--threads 2] [--lens 4096,8192,32768,131072] [--modes all,local] [--out file.json]
// (--modes also takes fixed (L 4096), longformer, bigbird: their defaults, blocksize 32)
import { writeFileSync } from 'node:fs';
import { SparseAttention } from '../dist/index.js';
import { parseArgs, timeIt } from './lib.mjs';

const args = parseArgs();
const threads = Number(args.threads ?? 2);
const lens = String(args.lens ?? '4096,8192,32768,131072').split(',').map(Number);
const modes = String(args.modes ?? 'all,local').split(',');
const [heads, kvHeads, d, L] = [32, 8, 128, 4096];
const fill = (n, w, s) => Float32Array.from({ length: n * w }, (_, i) => Math.sin(i * 0.013 + s) * 0.5);

const rows = [];
for (const mode of modes) {
  for (const len of lens) {
    if (mode === 'all' && len > 32768) continue; // quadratic in what a step reads: 'all' shown to 32K
    const attn = new SparseAttention(heads, mode, mode === 'local' || mode === 'fixed' ? L : undefined, 32, { kvHeads, backend: 'wasm', threads });
    const cache = attn.createCache({ batch: 1, capacity: len + 1 });
    const chunk = 4096;
    for (let t = 0; t < len; t += chunk) {
      const n = Math.min(chunk, len - t);
      const { base } = cache.begin(fill(n, kvHeads * d, t), fill(n, kvHeads * d, t + 1), n, d);
      cache.end(base, true);
    }
    const q = { data: fill(1, heads * d, 7), shape: [1, 1, heads * d] };
    const kv = { data: fill(1, kvHeads * d, 8), shape: [1, 1, kvHeads * d] };
    const step = async () => {
      await attn.forward(q, kv, kv, { cache });
      cache.truncate(len);
    };
    const r = await timeIt(step, { warmupMs: 300, minRuns: 9, minMs: 1000 });
    const plan = attn.plan([1, 1, heads * d], { nK: len + 1 });
    // K and V of the visited keys, once per K/V head (query heads of a group read the same rows)
    // (block-pattern modes: the keys of the blocks the step visits, averaged over the heads)
    const blockKeys = Math.round(plan.visitedFlops / (4 * d * 32) / heads);
    const keys = Math.min(len + 1, mode === 'local' ? L : mode === 'all' ? len + 1 : blockKeys);
    const bytes = 2 * kvHeads * keys * d * 4;
    rows.push({
      mode, cacheTokens: len, heads, kvHeads, headDim: d, localAttnCtx: mode === 'local' || mode === 'fixed' ? L : null, threads,
      medianMs: +r.medianMs.toFixed(3), minMs: +r.minMs.toFixed(3), runs: r.runs,
      kvBytesRead: bytes, gbps: +(bytes / (r.medianMs * 1e6)).toFixed(2), allowedPairs: plan.allowedPairs, path: attn.lastRun.detail,
    });
    console.log(JSON.stringify(rows.at(-1)));
    cache.dispose();
    attn.dispose();
  }
}
if (args.out) writeFileSync(args.out, JSON.stringify({ machine: process.arch, node: process.version, rows }, null, 1));
