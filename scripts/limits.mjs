// Limits at the real wasm32 ceiling (not run by npm test: it needs ~10 GiB of RAM and a
// minute): `node scripts/limits.mjs [case…]`. Each case is a call whose linear memory
// is near or above 4 GiB; the result is checked against the float64 reference on windows
// of rows (for causal 'local' with window L, rows i0.. of tokens [i0-L+1, i0+W) are exact).
//   batch    [2, 2621440, 64] 2 heads: 7.5 GiB in one call → split per batch item (3.75 GiB each)
//   heads    [1, 2097152, 128] 4 heads: 6 GiB → split into 2 heads per part (3 GiB each)
//   edge     [1, 2794496, 64] 1 head: q k v o + packed K' V' (6 tensors) = 4 GiB minus ~1 MiB,
//            one part; its v tensor starts past 2 GiB in linear memory
//   reject   [1, 4194304, 64] 1 head: over 4 GiB and unsplittable → rejected, no memory grown
import * as lib from '../dist/index.js';
import { randomTensor } from '../bench/lib.mjs';

// The bundle's test-only hooks (src/testing.ts): the engines alive and their memory.
const hooks = globalThis[Symbol.for('sparse-attention.testing')].get(lib.SparseAttention);

const L = 16;
const CASES = {
  batch: { shape: [2, 2621440, 64], heads: 2 },
  heads: { shape: [1, 2097152, 128], heads: 4 },
  edge: { shape: [1, 2794496, 64], heads: 1 },
  reject: { shape: [1, 4194304, 64], heads: 1, reject: true },
};
const names = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const GiB = 2 ** 30;

let failed = false;
for (const name of names.length ? names : Object.keys(CASES)) {
  const { shape, heads, reject } = CASES[name];
  const [batch, nCtx, nEmbd] = shape;
  const n = batch * nCtx * nEmbd;
  const attn = new lib.SparseAttention(heads, 'local', L, 32, { backend: 'wasm', threads: 2 });
  const t = (seed) => (reject ? { data: new Float32Array(n), shape } : randomTensor(shape, seed));
  const q = t(1), k = t(2), v = t(3);
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let out, error;
  try {
    out = await attn.forward(q, k, v);
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - t0;
  const wasm = hooks.engines().reduce((m, e) => Math.max(m, e.memoryBytes), 0);
  const line = { case: name, shape, heads, tensorGiB: +(n * 4 / GiB).toFixed(3), ms: Math.round(ms), wasmMemoryGiB: +(wasm / GiB).toFixed(3), rssGrowthGiB: +((process.memoryUsage().rss - rss0) / GiB).toFixed(2) };
  if (reject) {
    line.error = error?.message;
    if (!error || !/wasm32 allows at most 4\.00 GiB/.test(error.message) || wasm > 64 * 2 ** 20) failed = line.failed = true;
  } else if (error) {
    line.error = error.stack;
    failed = line.failed = true;
  } else {
    // reference on windows of rows, every batch item
    let worst = 0;
    for (let b = 0; b < batch; b++) {
      for (const i0 of [0, 1, Math.floor(nCtx / 2) - 7, nCtx - 40]) {
        const from = Math.max(0, i0 - L + 1);
        const to = Math.min(nCtx, i0 + 40);
        const slice = (x) => ({ data: x.data.subarray((b * nCtx + from) * nEmbd, (b * nCtx + to) * nEmbd), shape: [1, to - from, nEmbd] });
        const ref = lib.attentionReference(slice(q), slice(k), slice(v), heads, 'local', L, 32).data;
        for (let i = i0; i < to; i++) {
          for (let c = 0; c < nEmbd; c++) {
            const r = ref[(i - from) * nEmbd + c];
            const a = out.data[(b * nCtx + i) * nEmbd + c];
            worst = Math.max(worst, Math.abs(a - r) / (1e-5 + 1e-4 * Math.abs(r)));
          }
        }
      }
    }
    line.worstErrorOverTolerance = +worst.toFixed(3);
    if (!(worst <= 1)) failed = line.failed = true;
  }
  console.log(JSON.stringify(line));
  attn.dispose();
}
process.exitCode = failed ? 1 : 0;
