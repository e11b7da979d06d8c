// ONNX model of one decode step with onnxruntime's contrib op com.microsoft.GroupQueryAttention
// (the op onnxruntime-genai runs for Llama-style models): query [b, 1, heads·d], key / value
// [b, 1, kvHeads·d], past_key / past_value [b, kvHeads, past, d] (BNSH), seqlens_k [b] int32
// (= total length − 1) and total_sequence_length (int32 scalar) → output [b, 1, heads·d] plus
// present_key / present_value (the cache with the new token). `localWindow` > 0 sets
// local_window_size (sliding-window attention). Encoded like onnx-graph.mjs.
import protobuf from 'protobufjs';
import { ONNX_SUBSET } from './onnx-graph.mjs';

const FLOAT = 1, INT32 = 6;
const ModelProto = protobuf.parse(ONNX_SUBSET).root.lookupType('onnx.ModelProto');
const value = (name, type, dims) => ({ name, type: { tensorType: { elemType: type, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });

export function gqaDecodeModel({ batch, heads, kvHeads, d, past, localWindow = -1 }) {
  const attr = (name, i) => ({ name, type: 2, i });
  const graph = {
    name: 'gqa_decode_step',
    input: [
      value('q', FLOAT, [batch, 1, heads * d]), value('k', FLOAT, [batch, 1, kvHeads * d]), value('v', FLOAT, [batch, 1, kvHeads * d]),
      value('past_key', FLOAT, [batch, kvHeads, past, d]), value('past_value', FLOAT, [batch, kvHeads, past, d]),
      value('seqlens_k', INT32, [batch]), value('total_sequence_length', INT32, []),
    ],
    // present_*: left to the op's shape inference (onnxruntime-web's disagrees with past + 1)
    output: [value('out', FLOAT, [batch, 1, heads * d]), { name: 'present_key', type: { tensorType: { elemType: FLOAT } } }, { name: 'present_value', type: { tensorType: { elemType: FLOAT } } }],
    node: [{
      opType: 'GroupQueryAttention', domain: 'com.microsoft', name: 'gqa',
      input: ['q', 'k', 'v', 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length'],
      output: ['out', 'present_key', 'present_value'],
      attribute: [attr('num_heads', heads), attr('kv_num_heads', kvHeads), attr('local_window_size', localWindow), { name: 'scale', type: 1, f: 1 / Math.sqrt(d) }],
    }],
  };
  const model = {
    irVersion: 8, producerName: 'sparse-attention bench',
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }], graph,
  };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** The feeds of gqaDecodeModel from token-major k, v rows ([past, kvHeads·d], as the library takes them). */
export function gqaFeeds(ort, { batch, heads, kvHeads, d, past }, q, kNew, vNew, kPast, vPast) {
  const bnsh = (rows) => {
    const out = new Float32Array(batch * kvHeads * past * d);
    for (let t = 0; t < past; t++) for (let h = 0; h < kvHeads; h++) out.set(rows.subarray((t * kvHeads + h) * d, (t * kvHeads + h + 1) * d), (h * past + t) * d);
    return out;
  };
  return {
    q: new ort.Tensor('float32', q, [batch, 1, heads * d]),
    k: new ort.Tensor('float32', kNew, [batch, 1, kvHeads * d]),
    v: new ort.Tensor('float32', vNew, [batch, 1, kvHeads * d]),
    past_key: new ort.Tensor('float32', bnsh(kPast), [batch, kvHeads, past, d]),
    past_value: new ort.Tensor('float32', bnsh(vPast), [batch, kvHeads, past, d]),
    seqlens_k: new ort.Tensor('int32', Int32Array.from({ length: batch }, () => past), [batch]),
    total_sequence_length: new ort.Tensor('int32', Int32Array.of(past + 1), []),
  };
}
