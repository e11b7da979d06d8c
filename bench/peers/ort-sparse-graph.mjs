// ONNX Runtime's com.microsoft.SparseAttention (Phi-3-small's block-sparse attention) as a
// one-node model, to check layout import (test/layout-import.test.ts) against ORT's own
// output. Prompt form only: past_key/past_value are the cache buffers of max_blocks ·
// sparse_block_size rows (ORT requires past and present to share them), q, k, v unpacked.
// Encoded with protobufjs from a subset of onnx.proto (field numbers as in onnx/onnx.proto).
import protobuf from 'protobufjs';

const ONNX_SUBSET = `
syntax = "proto3";
package onnx;
message AttributeProto { string name = 1; float f = 2; int64 i = 3; int32 type = 20; }
message NodeProto { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4; repeated AttributeProto attribute = 5; string domain = 7; }
message TensorShapeProto { message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } } repeated Dimension dim = 1; }
message TypeProto { message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; } oneof value { Tensor tensor_type = 1; } }
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message GraphProto { repeated NodeProto node = 1; string name = 2; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message ModelProto { int64 ir_version = 1; string producer_name = 2; GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8; }
`;
const FLOAT = 1, INT32 = 6;
const ModelProto = protobuf.parse(ONNX_SUBSET).root.lookupType('onnx.ModelProto');
const value = (name, type, dims) => ({ name, type: { tensorType: { elemType: type, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const int = (name, i) => ({ name, type: 2, i });

/**
 * ONNX bytes of one SparseAttention node: batch × nCtx queries, `heads` query heads and
 * `kvHeads` K/V heads of headDim, `numLayouts` layouts of maxBlocks blocks of `blockSize`,
 * block_col_indices of `maxNnz` entries per layout.
 */
export function sparseAttentionModel({ batch, nCtx, heads, kvHeads, headDim, blockSize, maxBlocks, numLayouts, maxNnz }) {
  const maxSeq = maxBlocks * blockSize;
  const graph = {
    name: 'sparse_attention',
    input: [
      value('query', FLOAT, [batch, nCtx, heads * headDim]),
      value('key', FLOAT, [batch, nCtx, kvHeads * headDim]),
      value('value', FLOAT, [batch, nCtx, kvHeads * headDim]),
      value('past_key', FLOAT, [batch, kvHeads, maxSeq, headDim]),
      value('past_value', FLOAT, [batch, kvHeads, maxSeq, headDim]),
      value('block_row_indices', INT32, [numLayouts, maxBlocks + 1]),
      value('block_col_indices', INT32, [numLayouts, maxNnz]),
      value('total_sequence_length', INT32, []),
      value('key_total_sequence_lengths', INT32, [batch]),
    ],
    output: [
      value('output', FLOAT, [batch, nCtx, heads * headDim]),
      value('present_key', FLOAT, [batch, kvHeads, maxSeq, headDim]),
      value('present_value', FLOAT, [batch, kvHeads, maxSeq, headDim]),
    ],
    node: [{
      opType: 'SparseAttention', domain: 'com.microsoft', name: 'sparse_attention',
      input: ['query', 'key', 'value', 'past_key', 'past_value', 'block_row_indices', 'block_col_indices', 'total_sequence_length', 'key_total_sequence_lengths'],
      output: ['output', 'present_key', 'present_value'],
      attribute: [int('num_heads', heads), int('kv_num_heads', kvHeads), int('sparse_block_size', blockSize)],
    }],
  };
  const model = { irVersion: 8, producerName: 'sparse-attention tests', opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }], graph };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** Runs the model on onnxruntime-node's CPU provider; returns the output data. */
export async function runSparseAttention(ort, shape, { q, k, v, rowIndices, colIndices }) {
  const { batch, nCtx, heads, kvHeads, headDim, blockSize, maxBlocks, numLayouts, maxNnz } = shape;
  const maxSeq = maxBlocks * blockSize;
  const session = await ort.InferenceSession.create(sparseAttentionModel(shape), { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const cache = () => new ort.Tensor('float32', new Float32Array(batch * kvHeads * maxSeq * headDim), [batch, kvHeads, maxSeq, headDim]);
    // ORT's CPU kernel requires present_key/present_value to be the past buffers themselves.
    const [pastKey, pastValue] = [cache(), cache()];
    const feeds = {
      query: new ort.Tensor('float32', q, [batch, nCtx, heads * headDim]),
      key: new ort.Tensor('float32', k, [batch, nCtx, kvHeads * headDim]),
      value: new ort.Tensor('float32', v, [batch, nCtx, kvHeads * headDim]),
      past_key: pastKey,
      past_value: pastValue,
      block_row_indices: new ort.Tensor('int32', Int32Array.from(rowIndices), [numLayouts, maxBlocks + 1]),
      block_col_indices: new ort.Tensor('int32', Int32Array.from(colIndices), [numLayouts, maxNnz]),
      total_sequence_length: new ort.Tensor('int32', Int32Array.of(nCtx), []),
      key_total_sequence_lengths: new ort.Tensor('int32', new Int32Array(batch).fill(nCtx), [batch]),
    };
    const out = await session.run(feeds, { output: null, present_key: pastKey, present_value: pastValue });
    return out.output.data;
  } finally {
    await session.release();
  }
}
