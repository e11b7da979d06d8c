// How this library's time grows with nCtx on the CPU (issue 5): batch 1, nEmbd 512, 8 heads,
// nCtx 1K → 16K (all: → 8K, 16K alone costs ~1.5 min on 2 cores), modes all / local L=256 /
// strided L=64 / strided L=nCtx/32, 1 and 2 threads; fitted exponents (least squares of log
// time on log nCtx, and of log time on log allowed pairs). Targets: local, strided <= 1.15;
// all ≈ 2. With a fixed L, 'strided' allows ~nCtx²/2L pairs (each query sees every L-th
// earlier token), so its work itself grows ~quadratically; with L = nCtx/32 every query sees
// at most 32 keys and the work grows linearly.
// Correctness is checked on the workloads (bench/peers.mjs), not here.
//   node bench/scaling.mjs [--max 16384] [--series 'local L=256,strided L=nCtx/32'] [--json]
import os from 'node:os';
import { SparseAttention } from '../dist/index.js';
import { parseArgs, randomTensor, timeIt, runsFor } from './lib.mjs';

export const SCALING = { batch: 1, nEmbd: 512, heads: 8, modes: [['all', undefined], ['local', 256], ['strided', 64], ['strided', 'nCtx/32']], threads: [1, 2] };
const lFor = (L, nCtx) => (L === 'nCtx/32' ? nCtx / 32 : L);

/** Slope and intercept of log(y) = slope · log(x) + c. */
export function fitExponent(xs, ys) {
  const lx = xs.map(Math.log), ly = ys.map(Math.log), n = xs.length;
  const mx = lx.reduce((a, b) => a + b) / n, my = ly.reduce((a, b) => a + b) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (lx[i] - mx) * (ly[i] - my); sxx += (lx[i] - mx) ** 2; }
  return { exponent: sxy / sxx, intercept: my - (sxy / sxx) * mx };
}

export async function runScaling({ max = 16384, only = null } = {}) {
  const sizes = [];
  for (let n = 1024; n <= max; n *= 2) sizes.push(n);
  const points = [], fits = [];
  for (const [mode, L] of SCALING.modes) {
    const series = `${mode}${L ? ` L=${L}` : ''}`;
    if (only && !only.includes(series)) continue;
    for (const threads of SCALING.threads) {
      const ms = [], pairs = [], ns = sizes.filter((n) => mode !== 'all' || n <= Math.min(max, 8192));
      for (const nCtx of ns) {
        const attn = new SparseAttention(SCALING.heads, mode, lFor(L, nCtx), 32, { backend: 'wasm', threads });
        const shape = [SCALING.batch, nCtx, SCALING.nEmbd];
        const q = randomTensor(shape, 1), k = randomTensor(shape, 2), v = randomTensor(shape, 3);
        const plan = attn.plan(shape);
        const t0 = performance.now();
        await attn.forward(q, k, v);
        const t = await timeIt(() => attn.forward(q, k, v), runsFor(performance.now() - t0));
        ms.push(t.medianMs);
        pairs.push(plan.allowedPairs);
        points.push({ series, mode, localAttnCtx: lFor(L, nCtx) ?? null, threads, nCtx, allowedPairs: plan.allowedPairs, path: attn.lastRun.detail, ...t, usefulGflops: plan.usefulFlops / (t.medianMs * 1e6), load1: +os.loadavg()[0].toFixed(2) });
        console.error(`  scaling ${series.padEnd(18)} ${threads}t nCtx ${String(nCtx).padStart(5)}: ${t.medianMs.toFixed(2).padStart(9)} ms (${t.runs} runs)`);
        attn.dispose();
      }
      const fit = fitExponent(ns, ms);
      const workExponent = fitExponent(ns, pairs).exponent;
      const perPair = fitExponent(pairs, ms).exponent;
      fits.push({
        series, mode, localAttnCtx: L ?? null, threads, ...fit, workExponent, exponentVsPairs: perPair,
        target: mode === 'all' ? '≈ 2' : '<= 1.15', ok: mode === 'all' ? Math.abs(fit.exponent - 2) < 0.25 : fit.exponent <= 1.15,
      });
      console.error(`  scaling ${series} ${threads}t: exponent ${fit.exponent.toFixed(3)} (allowed pairs grow as nCtx^${workExponent.toFixed(3)}; time vs pairs ^${perPair.toFixed(3)})`);
    }
  }
  return { ...SCALING, sizes, points, fits };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs();
  const res = await runScaling({ max: Number(args.max ?? 16384), only: args.series ? String(args.series).split(',') : null });
  if (args.json) console.log(JSON.stringify(res));
  process.exit(0);
}
