// Host side of the kernel ABI: the parameter block and sequence table that
// assembly/bsattn_fwd.ts reads. Offsets must match the P_* and SEQ_* constants there.

export const PARAMS_BYTES = 64;
export const P = {
  tasks: 0,
  nTasks: 1,
  counter: 2,
  seqs: 3,
  headDim: 4,
  block: 5,
  scale: 6, // f32
  nSeqs: 7,
  packCounter: 8,
  barrier: 9, // i32 word index of the barrier counter (host-side barrier between phases)
  threads: 10, // parties to the barrier: the workers, and the calling thread in threaded runs
  heads: 11,
  groups: 12,
  packUnits: 13,
  packChunks: 14,
} as const; // i32 word indices

/** Rows per packing task (PACK_ROWS in the kernel). */
export const PACK_ROWS = 64;

export const SEQ_WORDS = 16;
export const SEQ = {
  q: 0,
  k: 1,
  v: 2,
  o: 3,
  stride: 4,
  nQ: 5,
  nK: 6,
  rowPtr: 7,
  cols: 8,
  maskIds: 9,
  masks: 10,
  kvStride: 11,
  kSrc: 12,
  vSrc: 13,
  srcStride: 14,
} as const; // i32 word indices within one entry

export const TASK_WORDS = 4; // seq, qb0, qb1, unused

/** Scratch one thread needs: Qᵗ, Oᵗ [d][bs], Sᵗ [bs][bs], m_i, l_i, α [bs] (f32). */
export function scratchBytes(headDim: number, bs: number): number {
  return (2 * headDim * bs + bs * bs + 3 * bs) * 4;
}

export interface KernelExports {
  bsattn_pack_f32(params: number): void;
  bsattn_fwd_f32(params: number, scratch: number): number;
  heap_base(): number;
}
