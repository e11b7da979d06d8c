// The kernel ABI, declared once: the parameter block, sequence and task records and mask
// ranges that the host writes into linear memory and assembly/ reads. scripts/build-wasm.mjs
// turns these tables into assembly/abi.generated.ts (byte offsets as constants, see
// abi-codegen.ts); every kernel build exports bsattn_abi_hash(), which kernels.ts compares
// with ABI_HASH when it instantiates one, so a .wasm of another version is refused rather
// than misread. Of the sizes that depend on (headDim, block), a thread's scratch is private to
// the kernel: the host asks it (bsattn_scratch_bytes). Mask records are written by the host
// (masks.ts, from MASK_RANGE_FIELDS); test/abi.test.ts checks that the kernel steps through
// them alike (bsattn_mask_record_bytes) and that the scratch it asks for is what it uses.

/** i32 word, f32 word, or i32 byte offset into linear memory ("-> …" says what it points at). */
export type FieldKind = 'i32' | 'f32' | 'ptr';
export type Field = readonly [name: string, kind: FieldKind, doc: string];

/** The parameter block of a call, at `params`. */
export const PARAM_FIELDS = [
  ['tasks', 'ptr', '-> [nTasks] task records'],
  ['nTasks', 'i32', 'attention tasks'],
  ['counter', 'ptr', '-> i32 attention task counter (atomic in threaded builds)'],
  ['seqs', 'ptr', '-> [nSeqs] sequence records'],
  ['headDim', 'i32', 'd'],
  ['block', 'i32', 'BLOCK: query and key block size, a multiple of 8'],
  ['scale', 'f32', 'the multiplier of Q: log2(e) · scale (options.scale, default 1 / sqrt(headDim)); with MOD_SOFTCAP scale / softcap'],
  ['nSeqs', 'i32', 'sequences (host bookkeeping; the kernel does not read it)'],
  ['packCounter', 'ptr', '-> i32 counter of the packing phase'],
  ['barrier', 'ptr', '-> i32 barrier counter between the phases (the host\'s barrier, worker.ts)'],
  ['threads', 'i32', 'parties to the barrier: the workers, and the calling thread in threaded runs'],
  ['heads', 'i32', 'packing: sequence (b, h, g) is record (b·heads + h)·groups + g (heads: sequences per batch item and group; kvHeads when query heads share one)'],
  ['groups', 'i32', 'sequence groups per (batch, head): L for \'strided\', else 1'],
  ['packUnits', 'i32', 'packing tasks: batch · groups units × packChunks chunks of PACK_ROWS rows'],
  ['packChunks', 'i32', 'ceil(rows per group / PACK_ROWS)'],
  ['dtype', 'i32', 'storage: DTYPE_HALF_IO (q, k, v, o are IEEE halves) | DTYPE_HALF_KV (a cache\'s K\' V\' are halves); compute is f32'],
  ['mods', 'i32', 'score modifiers and outputs: MOD_SOFTCAP | MOD_ALIBI | MOD_SINKS | MOD_LSE; 0: the plain kernel (the fields below unread)'],
  ['softcap', 'f32', 'log2(e) · softcap: the kernel\'s scores t = Q·Kᵀ become log2(e) · softcap · tanh(t) (base 2)'],
  ['headMods', 'ptr', '-> [heads][2] f32 per query head: log2(e) · ALiBi slope, log2(e) · sink logit'],
  ['seqMods', 'ptr', '-> [nSeqs] sequence modifier records (SEQ_MOD), in the order of the sequence records'],
] as const satisfies readonly Field[];

/**
 * One sequence: a (batch, head[, group]) problem whose rows sit at a fixed byte stride in
 * the q/k/v/o tensors (nEmbd·4, or L·nEmbd·4 for 'strided': the regrouping read in place).
 * With GQA the query heads of one K/V head may form one sequence (`qHeads` > 1): its rows
 * are (query row, head) pairs, the heads of a query row adjacent (d·4 bytes apart).
 */
export const SEQ_FIELDS = [
  ['q', 'ptr', '-> first query row'],
  ['k', 'ptr', '-> K\' written by the packing phase: [ceil(nK / 4)][d][4], 4 keys interleaved (f32; a cache\'s may hold halves)'],
  ['v', 'ptr', '-> V\' written by the packing phase: [nK][d]'],
  ['o', 'ptr', '-> first output row'],
  ['stride', 'i32', 'bytes between consecutive q / o rows of the sequence'],
  ['nQ', 'i32', 'query rows'],
  ['nK', 'i32', 'keys (rows of k / v); keys >= nK are never read'],
  ['rowPtr', 'ptr', '-> i32 [nQB + 1]: CSR row pointers of the block layout'],
  ['cols', 'ptr', '-> i32 [nnz]: key block of each entry, ascending per row'],
  ['maskIds', 'ptr', '-> i32 [nnz]: mask record of each entry, -1 = full block'],
  ['masks', 'ptr', '-> mask records'],
  ['kvStride', 'i32', 'bytes between consecutive V\' rows (d·4; d·2 in a cache of halves)'],
  ['kSrc', 'ptr', '-> first K row in the input (0: nothing to pack)'],
  ['vSrc', 'ptr', '-> first V row in the input'],
  ['srcStride', 'i32', 'bytes between consecutive K / V input rows'],
  ['qHeads', 'i32', 'query heads of the sequence (GQA): its row r is query row r / qHeads of its head r % qHeads (nQ · qHeads rows)'],
] as const satisfies readonly Field[];

/**
 * What the modifiers need of a sequence (params.mods != 0 only): the positions ALiBi measures
 * and where its rows' lse go. Query row r (grouped: ⌊r / qHeads⌋, of head head + r mod qHeads)
 * sits at key row qPos + r of the sequence, so |pos_i − j| = dist · |qPos + r − c| tokens for key
 * row c (dist: L for a 'strided' group, else 1).
 */
export const SEQ_MOD_FIELDS = [
  ['lse', 'ptr', '-> lse of query row 0 of the sequence\'s first head (f32; 0: no lse output)'],
  ['lseRow', 'i32', 'bytes between the lse of consecutive query rows'],
  ['lseHead', 'i32', 'bytes between the lse of consecutive heads'],
  ['head', 'i32', 'first query head (indexes params.headMods)'],
  ['qPos', 'i32', 'key row at the position of query row 0 (bottom-right alignment)'],
  ['dist', 'i32', 'tokens between consecutive key rows'],
] as const satisfies readonly Field[];

/** One attention task: query blocks [qb0, qb1) of one sequence. */
export const TASK_FIELDS = [
  ['seq', 'i32', 'sequence record index'],
  ['qb0', 'i32', 'first query block'],
  ['qb1', 'i32', 'one past the last query block'],
] as const satisfies readonly Field[];

/**
 * A mask record starts with one range entry per MASK_TILE_ROWS query rows, then [bs][bs]
 * i32 (0 / -1), key-major. Columns outside [cLo, cHi) are skipped (half of every causal
 * diagonal block, most of a partial 'local' block), [fLo, fHi) runs unmasked, and only
 * the few columns left are masked element by element.
 */
export const MASK_RANGE_FIELDS = [
  ['cLo', 'i32', 'first column with an allowed key in the tile'],
  ['cHi', 'i32', 'one past the last such column'],
  ['fLo', 'i32', 'first column of the longest run allowed for every row of the tile'],
  ['fHi', 'i32', 'one past that run'],
] as const satisfies readonly Field[];

export const MASK_TILE_ROWS = 8;
/** Rows per packing task. */
export const PACK_ROWS = 64;
/** params.dtype bits: q, k, v and o rows hold halves (converted as they enter and leave the kernel). */
export const DTYPE_HALF_IO = 1;
/** params.dtype bits: the K' V' a cache holds are halves (widened a key block at a time). */
export const DTYPE_HALF_KV = 2;

/** params.mods bits: soft-capping, ALiBi, sinks, the lse output. */
export const MOD_SOFTCAP = 1;
export const MOD_ALIBI = 2;
export const MOD_SINKS = 4;
export const MOD_LSE = 8;

/** Words of a record: the fields rounded up to a power of two, so the kernel indexes by shifts. */
const recordWords = (fields: readonly Field[]) => 2 ** Math.ceil(Math.log2(fields.length));

/** Field name → i32 word index within its record. */
function wordIndex<const N extends string>(fields: readonly (readonly [N, FieldKind, string])[]): { readonly [K in N]: number } {
  return Object.fromEntries(fields.map(([name], i) => [name, i])) as { [K in N]: number };
}

// Pure calls (/* @__PURE__ */): a bundle that takes only P (the worker) leaves the rest out.
export const P = /* @__PURE__ */ wordIndex(PARAM_FIELDS);
export const SEQ = /* @__PURE__ */ wordIndex(SEQ_FIELDS);
export const SEQ_MOD = /* @__PURE__ */ wordIndex(SEQ_MOD_FIELDS);
export const TASK = /* @__PURE__ */ wordIndex(TASK_FIELDS);
export const MASK_RANGE = /* @__PURE__ */ wordIndex(MASK_RANGE_FIELDS);
export const PARAMS_BYTES = /* @__PURE__ */ recordWords(PARAM_FIELDS) * 4;
export const SEQ_WORDS = /* @__PURE__ */ recordWords(SEQ_FIELDS);
export const SEQ_MOD_WORDS = /* @__PURE__ */ recordWords(SEQ_MOD_FIELDS);
export const TASK_WORDS = /* @__PURE__ */ recordWords(TASK_FIELDS);
export const MASK_RANGE_WORDS = /* @__PURE__ */ recordWords(MASK_RANGE_FIELDS);

/** Everything above, as the kernel sees it (the hash covers names, kinds, order and constants; not the docs). */
export const ABI = {
  params: PARAM_FIELDS,
  seq: SEQ_FIELDS,
  seqMod: SEQ_MOD_FIELDS,
  task: TASK_FIELDS,
  maskRange: MASK_RANGE_FIELDS,
  constants: {
    PACK_ROWS, DTYPE_HALF_IO, DTYPE_HALF_KV, MOD_SOFTCAP, MOD_ALIBI, MOD_SINKS, MOD_LSE, MASK_TILE_ROWS,
    PARAMS_BYTES, SEQ_WORDS, SEQ_MOD_WORDS, TASK_WORDS, MASK_RANGE_WORDS,
  },
} as const;

/** FNV-1a (32 bit) of the ABI's shape: changes whenever a field or a constant does. */
export const ABI_HASH = /* @__PURE__ */ abiHash();

function abiHash(): number {
  const records = [ABI.params, ABI.seq, ABI.seqMod, ABI.task, ABI.maskRange].map((fs) => fs.map(([n, k]) => `${n}:${k}`));
  const constants = Object.entries(ABI.constants).map(([n, v]) => `${n}=${v}`);
  const s = JSON.stringify(records.concat([constants]));
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface KernelExports {
  bsattn_pack_f32(params: number): void;
  bsattn_fwd_f32(params: number, scratch: number): number;
  /** Scratch one thread needs for (headDim, block). */
  bsattn_scratch_bytes(headDim: number, bs: number): number;
  /** Bytes of one mask record for a block size. */
  bsattn_mask_record_bytes(bs: number): number;
  /** ABI_HASH of the tables the build was compiled from (as i32). */
  bsattn_abi_hash(): number;
  heap_base(): number;
}
