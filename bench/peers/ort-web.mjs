// Peer (b): onnxruntime-web, WASM backend (SIMD build; threads through worker_threads in
// Node), on the graph of onnx-graph.mjs. The thread count is global to the wasm instance,
// so each thread count runs in its own process (--threads).
import * as ort from 'onnxruntime-web';
import { attentionModel } from './onnx-graph.mjs';

export const name = 'onnxruntime-web';
export const configs = [{ label: 'onnxruntime-web wasm', threads: 1 }];
export function configure(threads) {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  return [{ label: `onnxruntime-web wasm ${threads}t`, threads }];
}

export async function setup(w, _mode, _L, { q, k, v, shape }, bias) {
  const [batch, nCtx, nEmbd] = shape;
  const session = await ort.InferenceSession.create(attentionModel(batch, nCtx, nEmbd, w.heads), {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all',
  });
  const feeds = {
    q: new ort.Tensor('float32', q.data, shape), k: new ort.Tensor('float32', k.data, shape),
    v: new ort.Tensor('float32', v.data, shape), bias: new ort.Tensor('float32', bias, [nCtx, nCtx]),
  };
  return {
    run: async () => (await session.run(feeds)).out.data,
    dispose: () => session.release(),
    info: { graph: 'explicit MatMul→Mul→Add→Softmax→MatMul, head split in graph', version: ort.env.versions?.web },
  };
}
