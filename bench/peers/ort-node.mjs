// Peer (c): onnxruntime-node, native CPU execution provider (MLAS), on the graph of
// onnx-graph.mjs. 1 and 2 intra-op threads, each with and without the session config entry
// `session.set_denormal_as_zero` (dense softmax tails produce denormals that double its time).
import ort from 'onnxruntime-node';
import { attentionModel } from './onnx-graph.mjs';

export const name = 'onnxruntime-node';
export const configs = [1, 2].flatMap((threads) => [false, true].map((daz) => ({
  label: `onnxruntime-node native ${threads}t${daz ? ' DAZ' : ''}`, threads, daz,
})));

export async function setup(w, _mode, _L, { q, k, v, shape }, bias, config) {
  const [batch, nCtx, nEmbd] = shape;
  const session = await ort.InferenceSession.create(attentionModel(batch, nCtx, nEmbd, w.heads), {
    executionProviders: ['cpu'], intraOpNumThreads: config.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all',
    extra: { session: { set_denormal_as_zero: config.daz ? '1' : '0' } },
  });
  const feeds = {
    q: new ort.Tensor('float32', q.data, shape), k: new ort.Tensor('float32', k.data, shape),
    v: new ort.Tensor('float32', v.data, shape), bias: new ort.Tensor('float32', bias, [nCtx, nCtx]),
  };
  return {
    run: async () => (await session.run(feeds)).out.data,
    dispose: () => session.release(),
    info: { graph: 'explicit MatMul→Mul→Add→Softmax→MatMul, head split in graph', version: ort.env.versions?.node ?? ort.env.versions?.common },
  };
}
