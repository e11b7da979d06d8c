// How this library's time grows with nCtx on the CPU (issue 5): batch 1, nEmbd 512, 8 heads,
// nCtx 1K → 16K (all: → 8K, 16K alone costs ~1.5 min on 2 cores), modes all / local L=256 /
// strided L=64, 1 and 2 threads; fitted exponent
// (least squares of log time on log nCtx). Targets: local, strided <= 1.15; all ≈ 2.
// Correctness is checked on the workloads (bench/peers.mjs), not here.
//   node bench/scaling.mjs [--max 16384] [--json]
import os from 'node:os';
import { SparseAttention } from '../dist/index.js';
import { parseArgs, randomTensor, timeIt, runsFor } from './lib.mjs';

export const SCALING = { batch: 1, nEmbd: 512, heads: 8, modes: [['all', undefined], ['local', 256], ['strided', 64]], threads: [1, 2] };

/** Slope and intercept of log(y) = slope · log(x) + c. */
export function fitExponent(xs, ys) {
  const lx = xs.map(Math.log), ly = ys.map(Math.log), n = xs.length;
  const mx = lx.reduce((a, b) => a + b) / n, my = ly.reduce((a, b) => a + b) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (lx[i] - mx) * (ly[i] - my); sxx += (lx[i] - mx) ** 2; }
  return { exponent: sxy / sxx, intercept: my - (sxy / sxx) * mx };
}

export async function runScaling({ max = 16384 } = {}) {
  const sizes = [];
  for (let n = 1024; n <= max; n *= 2) sizes.push(n);
  const points = [], fits = [];
  for (const [mode, L] of SCALING.modes) {
    for (const threads of SCALING.threads) {
      const attn = new SparseAttention(SCALING.heads, mode, L, 32, { backend: 'wasm', threads });
      const ms = [], ns = sizes.filter((n) => mode !== 'all' || n <= Math.min(max, 8192));
      for (const nCtx of ns) {
        const shape = [SCALING.batch, nCtx, SCALING.nEmbd];
        const q = randomTensor(shape, 1), k = randomTensor(shape, 2), v = randomTensor(shape, 3);
        const plan = attn.plan(shape);
        const t0 = performance.now();
        await attn.forward(q, k, v);
        const t = await timeIt(() => attn.forward(q, k, v), runsFor(performance.now() - t0));
        ms.push(t.medianMs);
        points.push({ mode, localAttnCtx: L ?? null, threads, nCtx, path: attn.lastRun.detail, ...t, usefulGflops: plan.usefulFlops / (t.medianMs * 1e6), load1: +os.loadavg()[0].toFixed(2) });
        console.error(`  scaling ${mode.padEnd(8)} ${threads}t nCtx ${String(nCtx).padStart(5)}: ${t.medianMs.toFixed(2).padStart(9)} ms (${t.runs} runs)`);
      }
      attn.dispose();
      const fit = fitExponent(ns, ms);
      fits.push({ mode, localAttnCtx: L ?? null, threads, ...fit, target: mode === 'all' ? '≈ 2' : '<= 1.15', ok: mode === 'all' ? Math.abs(fit.exponent - 2) < 0.25 : fit.exponent <= 1.15 });
      console.error(`  scaling ${mode} ${threads}t: exponent ${fit.exponent.toFixed(3)}`);
    }
  }
  return { ...SCALING, sizes, points, fits };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs();
  const res = await runScaling({ max: Number(args.max ?? 16384) });
  if (args.json) console.log(JSON.stringify(res));
  process.exit(0);
}
