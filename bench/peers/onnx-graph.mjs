// Builds the ONNX model both onnxruntime peers run: explicit dense masked attention,
//   q,k,v [batch, nCtx, nEmbd] → Reshape [b, n, heads, d] → Transpose → [b, heads, n, d] (k: [b, heads, d, n])
//   S = MatMul(q, kᵀ) · scale + bias[nCtx, nCtx];  P = Softmax(S, axis -1);  O = MatMul(P, v)
//   → Transpose / Reshape back to [batch, nCtx, nEmbd].
// Head split and merge happen inside the graph (timed), like the library's own layout.
// Encoded with protobufjs from the inline subset of onnx.proto below (field numbers as in
// onnx/onnx.proto, IR version 8, opset 17). The MultiHeadAttention contrib op is not used:
// onnxruntime-web's overflows on W2.
import protobuf from 'protobufjs';

export const ONNX_SUBSET = `
syntax = "proto3";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; }
  string name = 1; float f = 2; int64 i = 3; bytes s = 4; TensorProto t = 5;
  repeated float floats = 7; repeated int64 ints = 8; AttributeType type = 20;
}
message NodeProto { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4; repeated AttributeProto attribute = 5; string domain = 7; }
message TensorProto { repeated int64 dims = 1; int32 data_type = 2; repeated float float_data = 4; repeated int32 int32_data = 5; repeated int64 int64_data = 7; string name = 8; bytes raw_data = 9; }
message TensorShapeProto { message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } } repeated Dimension dim = 1; }
message TypeProto { message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; } oneof value { Tensor tensor_type = 1; } }
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message GraphProto { repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message ModelProto { int64 ir_version = 1; string producer_name = 2; GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8; }
`;

const FLOAT = 1, INT64 = 7;
const ModelProto = protobuf.parse(ONNX_SUBSET).root.lookupType('onnx.ModelProto');

const value = (name, dims) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const node = (opType, input, output, attribute = []) => ({ opType, input, output, name: output[0], attribute });
const ints = (name, list) => ({ name, type: 7, ints: list });

/** ONNX bytes for dense masked attention over fixed shapes. */
export function attentionModel(batch, nCtx, nEmbd, heads) {
  const d = nEmbd / heads;
  const graph = {
    name: 'dense_masked_attention',
    input: [value('q', [batch, nCtx, nEmbd]), value('k', [batch, nCtx, nEmbd]), value('v', [batch, nCtx, nEmbd]), value('bias', [nCtx, nCtx])],
    output: [value('out', [batch, nCtx, nEmbd])],
    initializer: [
      { name: 'split_shape', dims: [4], dataType: INT64, int64Data: [batch, nCtx, heads, d] },
      { name: 'merge_shape', dims: [3], dataType: INT64, int64Data: [batch, nCtx, nEmbd] },
      { name: 'scale', dims: [], dataType: FLOAT, floatData: [1 / Math.sqrt(d)] },
    ],
    node: [
      node('Reshape', ['q', 'split_shape'], ['q4']), node('Transpose', ['q4'], ['qh'], [ints('perm', [0, 2, 1, 3])]),
      node('Reshape', ['k', 'split_shape'], ['k4']), node('Transpose', ['k4'], ['kt'], [ints('perm', [0, 2, 3, 1])]),
      node('Reshape', ['v', 'split_shape'], ['v4']), node('Transpose', ['v4'], ['vh'], [ints('perm', [0, 2, 1, 3])]),
      node('MatMul', ['qh', 'kt'], ['s']), // [b, heads, n, n]
      node('Mul', ['s', 'scale'], ['s_scaled']),
      node('Add', ['s_scaled', 'bias'], ['s_masked']),
      node('Softmax', ['s_masked'], ['p'], [{ name: 'axis', type: 2, i: -1 }]),
      node('MatMul', ['p', 'vh'], ['oh']), // [b, heads, n, d]
      node('Transpose', ['oh'], ['o4'], [ints('perm', [0, 2, 1, 3])]),
      node('Reshape', ['o4', 'merge_shape'], ['out']),
    ],
  };
  const model = { irVersion: 8, producerName: 'sparse-attention bench', opsetImport: [{ domain: '', version: 17 }], graph };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/**
 * The peer object of an onnxruntime session on this graph: q, k, v and the mask bias bound
 * once as input tensors; `run` returns the output's data. `ort` is onnxruntime-node or -web.
 */
export function ortPeer(ort, session, { q, k, v, shape }, bias, version) {
  const nCtx = shape[1];
  const feeds = {
    q: new ort.Tensor('float32', q.data, shape), k: new ort.Tensor('float32', k.data, shape),
    v: new ort.Tensor('float32', v.data, shape), bias: new ort.Tensor('float32', bias, [nCtx, nCtx]),
  };
  return {
    run: async () => (await session.run(feeds)).out.data,
    dispose: () => session.release(),
    info: { graph: 'explicit MatMul→Mul→Add→Softmax→MatMul, head split in graph', version },
  };
}
