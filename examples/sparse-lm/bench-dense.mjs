#!/usr/bin/env node
// The dense engines alone: y[n, m] = x[n, k] · Wᵀ for the model's shapes, GFLOP/s (2·n·k·m /
// time), median of 5 timings of ≥ 0.2 GFLOP each, checked against a float64 product.
//   node examples/sparse-lm/bench-dense.mjs [--threads 1,2]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WASM_FILES, WASM_MT_FILES, createDense } from './dense.mjs';

const at = (f) => readFileSync(fileURLToPath(new URL(f, import.meta.url)));
const wasm = { relaxed: at(WASM_FILES.relaxed), simd: at(WASM_FILES.simd) };
const wasmThreaded = { relaxed: at(WASM_MT_FILES.relaxed), simd: at(WASM_MT_FILES.simd) };
const i = process.argv.indexOf('--threads');
const threads = (i < 0 ? '1,2' : process.argv[i + 1]).split(',').map(Number);
const SHAPES = [[1, 256, 704], [1, 704, 256], [512, 256, 704], [512, 704, 256], [512, 256, 256]];

let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
const engines = [['js', 1], ...threads.map((t) => ['wasm', t])];
for (const [kind, t] of engines) {
  const d = await createDense(kind, wasm, { threads: t, wasmThreaded });
  d.reserve(4e6);
  for (const [n, k, m] of SHAPES) {
    const w = Float32Array.from({ length: m * k }, rand);
    const W = d.weight(w, m, k);
    const x = d.alloc(n * k);
    for (let j = 0; j < x.length; j++) x[j] = rand();
    const y = d.alloc(n * m);
    d.matmul(x, W, y, n, false);
    let err = 0;
    for (let r = 0; r < n; r += Math.max(1, n >> 3)) {
      for (let o = 0; o < m; o++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += x[r * k + j] * w[o * k + j];
        err = Math.max(err, Math.abs(s - y[r * m + o]));
      }
    }
    const reps = Math.max(3, Math.round(2e8 / (2 * n * k * m)));
    const times = [];
    for (let s = 0; s < 5; s++) {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) d.matmul(x, W, y, n, false);
      times.push((performance.now() - t0) / reps);
    }
    const ms = times.sort((a, b) => a - b)[2];
    console.log(JSON.stringify({ engine: d.name, n, k, m, ms: +ms.toFixed(4), gflops: +((2 * n * k * m) / ms / 1e6).toFixed(2), maxAbsErr: +err.toExponential(2) }));
  }
  d.dispose();
}
