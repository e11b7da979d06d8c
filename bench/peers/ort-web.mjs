// Peer (b): onnxruntime-web, WASM backend (SIMD build; threads through worker_threads in
// Node), on the graph of onnx-graph.mjs. The thread count is global to the wasm instance,
// so each thread count runs in its own process (--threads).
import * as ort from 'onnxruntime-web';
import { attentionModel, ortPeer } from './onnx-graph.mjs';

export const name = 'onnxruntime-web';
export const configs = [{ label: 'onnxruntime-web wasm', threads: 1 }];
export function configure(threads) {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  return [{ label: `onnxruntime-web wasm ${threads}t`, threads }];
}

export async function setup(w, _mode, _L, inputs, bias) {
  const [batch, nCtx, nEmbd] = inputs.shape;
  const session = await ort.InferenceSession.create(attentionModel(batch, nCtx, nEmbd, w.heads), {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all',
  });
  return ortPeer(ort, session, inputs, bias, ort.env.versions?.web);
}
