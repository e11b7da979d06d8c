// Types of ort-sparse-graph.mjs, for the tests that import it.
export interface SparseAttentionShape {
  batch: number;
  nCtx: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  blockSize: number;
  maxBlocks: number;
  numLayouts: number;
  maxNnz: number;
}

export function sparseAttentionModel(shape: SparseAttentionShape): Uint8Array;

export function runSparseAttention(
  ort: unknown,
  shape: SparseAttentionShape,
  inputs: { q: Float32Array; k: Float32Array; v: Float32Array; rowIndices: ArrayLike<number>; colIndices: ArrayLike<number> },
): Promise<Float32Array>;
