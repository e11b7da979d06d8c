// The seed's example: batch 4, nCtx 1024, nEmbd 256, 4 heads, in every mode. Prints the
// path that ran, the time, and the largest error against the float64 dense reference.
//   npm run demo
import { SparseAttention, attentionReference } from '../dist/index.js';

const [nBatch, nCtx, nEmbd, heads, localAttnCtx, blocksize] = [4, 1024, 256, 4, 32, 32];

function randn(n, seed) {
  // Box–Muller over a xorshift32 stream: like torch.randn, reproducible.
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next()));
    const t = 2 * Math.PI * next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

const shape = [nBatch, nCtx, nEmbd];
const size = nBatch * nCtx * nEmbd;
const q = { data: randn(size, 1), shape };
const k = { data: randn(size, 2), shape };
const v = { data: randn(size, 3), shape };

console.log(`SparseAttention demo: batch ${nBatch}, nCtx ${nCtx}, nEmbd ${nEmbd}, ${heads} heads, localAttnCtx ${localAttnCtx}, blocksize ${blocksize}\n`);
console.log('mode         path                       ms (median of 5)  useful GFLOP/s  density  max |error| vs float64');
// 'fixed' with localAttnCtx = blocksize = 32 has a stride of one block and is dense causal;
// it is shown with a 128-token stride (4 blocks) instead.
for (const [mode, L] of [['all', localAttnCtx], ['local', localAttnCtx], ['strided', localAttnCtx], ['fixed', 128]]) {
  const model = new SparseAttention(heads, mode, L, blocksize);
  const plan = model.plan(shape);
  let output = await model.forward(q, k, v); // warm-up: workers, memory
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    output = await model.forward(q, k, v);
    times.push(performance.now() - t0);
  }
  const ms = times.sort((a, b) => a - b)[2];
  const ref = attentionReference(q, k, v, heads, mode, L, blocksize).data;
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(output.data[i] - ref[i]));
  console.log(
    `${`${mode} ${L}`.padEnd(12)} ${model.lastRun.detail.padEnd(26)} ${ms.toFixed(2).padStart(16)}  ${(plan.usefulFlops / ms / 1e6).toFixed(1).padStart(14)}  ${plan.density.toFixed(4)}  ${maxErr.toExponential(2)}`,
  );
  console.log(`             why: ${model.lastRun.reason}`);
  model.dispose();
}
