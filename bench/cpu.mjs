// CPU benchmark of the wasm path on the core issue's workloads (W1 seed, W2 long, W3 small).
// Plain Node on dist/ (no dev dependencies). Median of >= 5 timed runs after warm-up;
// useful GFLOP/s = 4 · headDim · allowed pairs · batch · heads / time.
//   node bench/cpu.mjs [--threads 2] [--variant relaxed|simd|scalar] [--quick] [--out file.json]
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { SparseAttention, wasmVariants } from '../dist/index.js';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
    return acc;
  }, []),
);
const threads = Number(args.threads ?? 2);
const variant = args.variant;

export const WORKLOADS = [
  { id: 'W1', batch: 4, nCtx: 1024, nEmbd: 256, heads: 4, cases: [['all', undefined, 75], ['local', 32, 10], ['strided', 32, 6]] },
  { id: 'W2', batch: 1, nCtx: 4096, nEmbd: 512, heads: 8, cases: [['all', undefined, 600], ['local', 256, 90], ['strided', 64, 12]] },
  { id: 'W3', batch: 1, nCtx: 256, nEmbd: 256, heads: 4, cases: [['all', undefined, 2]] },
];

export function randomTensor(shape, seed) {
  const n = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    data[i] = (s / 4294967296) * 2 - 1;
  }
  return { data, shape };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timeIt(fn, minRuns, minMs) {
  for (let i = 0; i < 2; i++) await fn(); // warm-up: compile, workers, memory growth
  const times = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < minMs) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    if (times.length >= 200) break;
  }
  return { median: median(times), min: Math.min(...times), runs: times.length };
}

const rows = [];
for (const w of WORKLOADS) {
  const shape = [w.batch, w.nCtx, w.nEmbd];
  const q = randomTensor(shape, 1), k = randomTensor(shape, 2), v = randomTensor(shape, 3);
  for (const [mode, L, targetMs] of w.cases) {
    const attn = new SparseAttention(w.heads, mode, L, 32, { backend: 'wasm', threads, wasmVariant: variant });
    const plan = attn.plan(shape);
    const t = await timeIt(() => attn.forward(q, k, v), args.quick ? 3 : 5, args.quick ? 200 : 1500);
    const gflops = plan.usefulFlops / (t.median * 1e6);
    rows.push({
      workload: w.id, shape, heads: w.heads, mode, localAttnCtx: L ?? null, blockSize: plan.blockSize,
      path: attn.lastRun.detail, medianMs: +t.median.toFixed(3), minMs: +t.min.toFixed(3), runs: t.runs,
      usefulGflop: +(plan.usefulFlops / 1e9).toFixed(4), usefulGflops: +gflops.toFixed(2), targetMs, meetsTarget: t.median <= targetMs,
    });
    const r = rows.at(-1);
    console.log(`${w.id} ${mode.padEnd(8)} ${String(r.medianMs).padStart(9)} ms  ${String(r.usefulGflops).padStart(7)} GFLOP/s  target <= ${targetMs} ms ${r.meetsTarget ? 'ok' : 'MISSED'}  (${r.path}, bs ${plan.blockSize}, ${t.runs} runs)`);
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
