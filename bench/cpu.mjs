// CPU benchmark of the wasm path on the core issue's workloads (W1 seed, W2 long, W3 small).
// Plain Node on dist/ (no dev dependencies). Median of >= 5 timed runs after >= 1 s of warm-up;
// useful GFLOP/s = 4 · headDim · allowed pairs · batch · heads / time.
// Each case runs three ways (`io`): plain (Float32Arrays in, a new result array per call),
// out (the same plus forward's `out` option, one result array reused), resident (q, k, v and
// out from createTensor(): no copy in or out).
//   node bench/cpu.mjs [--threads 2] [--variant relaxed|simd|scalar] [--quick] [--io plain,out,resident] [--out file.json]
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { SparseAttention, wasmVariants } from '../dist/index.js';
import { WORKLOADS, parseArgs, randomTensor, timeIt } from './lib.mjs';
import { residentCopies } from '../scripts/lib/property.mjs';

const args = parseArgs();
const threads = Number(args.threads ?? 2);
const variant = args.variant;
const ios = String(args.io ?? 'plain,out,resident').split(',');

const rows = [];
for (const w of WORKLOADS) {
  const shape = [w.batch, w.nCtx, w.nEmbd];
  const q = randomTensor(shape, 1), k = randomTensor(shape, 2), v = randomTensor(shape, 3);
  for (const [mode, L, targetMs] of w.cases) {
    const attn = new SparseAttention(w.heads, mode, L, 32, { backend: 'wasm', threads, wasmVariant: variant });
    const plan = attn.plan(shape);
    const out = new Float32Array(q.data.length);
    const [rq, rk, rv, ro] = residentCopies(attn, shape, [q, k, v, null]);
    const calls = {
      plain: () => attn.forward(q, k, v),
      out: () => attn.forward(q, k, v, { out }),
      resident: () => attn.forward(rq, rk, rv, { out: ro.data }),
    };
    for (const io of ios) {
      const r0 = await timeIt(calls[io], { warmupMs: args.quick ? 0 : 1000, minRuns: args.quick ? 3 : 5, minMs: args.quick ? 200 : 1500 });
      const t = { median: r0.medianMs, min: r0.minMs, runs: r0.runs };
      const gflops = plan.usefulFlops / (t.median * 1e6);
      rows.push({
        workload: w.id, shape, heads: w.heads, mode, localAttnCtx: L ?? null, blockSize: plan.blockSize, io,
        path: attn.lastRun.detail, medianMs: +t.median.toFixed(3), minMs: +t.min.toFixed(3), runs: t.runs,
        usefulGflop: +(plan.usefulFlops / 1e9).toFixed(4), usefulGflops: +gflops.toFixed(2), targetMs, meetsTarget: t.median <= targetMs,
      });
      const r = rows.at(-1);
      console.log(`${w.id} ${mode.padEnd(8)} ${io.padEnd(8)} ${String(r.medianMs).padStart(9)} ms  ${String(r.usefulGflops).padStart(7)} GFLOP/s  target <= ${targetMs} ms ${r.meetsTarget ? 'ok' : 'MISSED'}  (${r.path}, bs ${plan.blockSize}, ${t.runs} runs)`);
    }
    [rq, rk, rv, ro].forEach((t) => attn.releaseTensor(t));
    attn.dispose();
  }
}

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version,
  v8: process.versions.v8, wasmVariants: wasmVariants(), threads, variant: variant ?? 'auto',
};
const out = args.out ?? `bench/results/cpu-node${process.versions.node.split('.')[0]}-${threads}t${variant ? `-${variant}` : ''}.json`;
mkdirSync('bench/results', { recursive: true });
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2) + '\n');
console.log(`wrote ${out}  (${machine.cpu}, ${machine.node}, variants ${machine.wasmVariants.join('/')})`);
