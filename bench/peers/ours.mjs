// This library (sparse-attention, wasm backend) as a peer among peers: 1 and 2 worker threads,
// the kernel variant the runtime validates (relaxed > simd > scalar); plain Float32Arrays in,
// a new result per call, as every peer is called. The third configuration keeps q, k, v and
// the result in createTensor() tensors (no copy in or out), what a caller can do that owns
// its buffers; it is reported beside, never in place of, the plain call.
import { SparseAttention, wasmVariants } from '../../dist/index.js';
import { residentCopies } from '../../scripts/lib/property.mjs';

export const name = 'sparse-attention';
export const configs = [
  ...[1, 2].map((threads) => ({ label: `sparse-attention wasm ${threads}t`, threads })),
  { label: 'sparse-attention wasm 2t, createTensor in/out', threads: 2, resident: true },
];

export async function setup(w, mode, L, { q, k, v, shape }, _bias, config) {
  const attn = new SparseAttention(w.heads, mode, L, 32, { backend: 'wasm', threads: config.threads });
  const plan = attn.plan(shape);
  let args = [q, k, v];
  if (config.resident) {
    const [rq, rk, rv, ro] = residentCopies(attn, shape, [q, k, v, null]);
    args = [rq, rk, rv, { out: ro.data }];
  }
  await attn.forward(...args); // compile, start workers
  return {
    run: async () => (await attn.forward(...args)).data,
    dispose: () => attn.dispose(),
    info: { path: attn.lastRun?.detail, blockSize: plan.blockSize, variants: wasmVariants(), usefulFlops: plan.usefulFlops },
  };
}
