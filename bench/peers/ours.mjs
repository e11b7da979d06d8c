// This library (sparse-attention, wasm backend) as a peer among peers: 1 and 2 worker threads,
// the kernel variant the runtime validates (relaxed > simd > scalar).
import { SparseAttention, wasmVariants } from '../../dist/index.js';

export const name = 'sparse-attention';
export const configs = [1, 2].map((threads) => ({ label: `sparse-attention wasm ${threads}t`, threads }));

export async function setup(w, mode, L, { q, k, v, shape }, _bias, config) {
  const attn = new SparseAttention(w.heads, mode, L, 32, { backend: 'wasm', threads: config.threads });
  const plan = attn.plan(shape);
  await attn.forward(q, k, v); // compile, start workers
  return {
    run: async () => (await attn.forward(q, k, v)).data,
    dispose: () => attn.dispose(),
    info: { path: attn.lastRun?.detail, blockSize: plan.blockSize, variants: wasmVariants(), usefulFlops: plan.usefulFlops },
  };
}
