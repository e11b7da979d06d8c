// Peer (c): onnxruntime-node, native CPU execution provider (MLAS), on the graph of
// onnx-graph.mjs. 1 and 2 intra-op threads, each with and without the session config entry
// `session.set_denormal_as_zero` (dense softmax tails produce denormals that double its time).
import ort from 'onnxruntime-node';
import { attentionModel, ortPeer } from './onnx-graph.mjs';

export const name = 'onnxruntime-node';
export const configs = [1, 2].flatMap((threads) => [false, true].map((daz) => ({
  label: `onnxruntime-node native ${threads}t${daz ? ' DAZ' : ''}`, threads, daz,
})));

export async function setup(w, _mode, _L, inputs, bias, config) {
  const [batch, nCtx, nEmbd] = inputs.shape;
  const session = await ort.InferenceSession.create(attentionModel(batch, nCtx, nEmbd, w.heads), {
    executionProviders: ['cpu'], intraOpNumThreads: config.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all',
    extra: { session: { set_denormal_as_zero: config.daz ? '1' : '0' } },
  });
  return ortPeer(ort, session, inputs, bias, ort.env.versions?.node ?? ort.env.versions?.common);
}
