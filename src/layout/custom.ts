// Custom layouts given as block lists: ONNX Runtime's SparseAttention CSR and FlexAttention's
// BlockMask (kv_num_blocks / kv_indices), read and checked once at construction, and the
// per-block token masks ({ blocks, select }) that build without a call per token pair.
// A model exported for either format runs here with its tensors unchanged:
// - ONNX Runtime com.microsoft.SparseAttention (Phi-3-small): block_row_indices
//   [num_layout, max_blocks + 1] and block_col_indices [num_layout, max_nnz_blocks] (right
//   padding, e.g. -1, past each layout's nnz); head h uses layout h % num_layout; the op is
//   unidirectional: key j is allowed for query i when its block is listed and j <= i.
// - torch.nn.attention.flex_attention.BlockMask: kv_num_blocks [B, H, nQB] and kv_indices
//   [B, H, nQB, nKB] (entries past kv_num_blocks undefined), optionally full_kv_num_blocks /
//   full_kv_indices of the same shapes; B must be 1 (one layout for the batch), H is 1 or
//   heads. The token mask (Flex's mask_mod) applies to the kv_indices blocks only when the
//   full lists are given (those are whole blocks), else to every listed block.
// see: onnxruntime docs/ContribOperators.md (com.microsoft.SparseAttention),
//      pytorch torch/nn/attention/flex_attention.py (BlockMask)
import { ArgumentError, argError, describe } from '../errors.js';
import { type BlockLayout, LayoutBuilder } from './block-layout.js';
import type { PositionRows } from './cross.js';
import { type CallBudget, lowerTriangle } from './pattern.js';

/** One layout head of an imported block list: CSR rows, ascending and distinct key blocks. */
export interface ImportedHead {
  readonly rowPtr: Int32Array;
  readonly cols: Int32Array;
  /** Per entry: 1 = the token mask applies, 0 = the whole block is allowed (Flex's full blocks); null: 1 everywhere. */
  readonly masked: Uint8Array | null;
}

/** A custom layout imported from ONNX Runtime's or FlexAttention's block lists. */
export interface ImportedLayout {
  readonly format: 'onnxruntime' | 'flex';
  /** Query blocks (rows) each layout covers. */
  readonly rows: number;
  /** Key blocks each layout covers: every index is below it. */
  readonly cols: number;
  /** Head h uses heads[h % heads.length]. */
  readonly heads: readonly ImportedHead[];
  /** Token-level causality on top of the blocks (ONNX Runtime's op is unidirectional). */
  readonly causal: boolean;
}

/** ONNX Runtime SparseAttention's block mask, as options.layout. */
export interface OnnxSparseLayout {
  /** block_row_indices: [numLayouts][maxBlocks + 1], flat (with numLayouts) or one array per layout. */
  blockRowIndices: ArrayLike<number> | ArrayLike<ArrayLike<number>>;
  /** block_col_indices: [numLayouts][maxNnzBlocks], right-padded past each layout's nnz. */
  blockColIndices: ArrayLike<number> | ArrayLike<ArrayLike<number>>;
  /** num_layout, the first dimension of both, when they are given flat (default 1). */
  numLayouts?: number;
}

/** FlexAttention's BlockMask block lists (flat, row-major), as options.layout. */
export interface FlexBlockLayout {
  kvNumBlocks: ArrayLike<number>;
  kvIndices: ArrayLike<number>;
  fullKvNumBlocks?: ArrayLike<number>;
  fullKvIndices?: ArrayLike<number>;
  /** kv_indices.shape: [B, H, nQB, nKB], [H, nQB, nKB] or [nQB, nKB]; B must be 1. */
  shape: readonly number[];
  /** BLOCK_SIZE of the BlockMask (a number or [Q, KV]), checked against blocksize when given. */
  blockSize?: number | readonly number[];
}

/**
 * Token masks given per block: `blocks` holds distinct masks of blocksize² bytes each
 * ([row][col] row-major, 1 = allowed; one Uint8Array each or concatenated), and `select`,
 * called once per (head, query block) with the key blocks of that row the mask applies to
 * (ascending, below nCtx), writes into `ids` the mask of each: an index into blocks, or -1
 * (its prefilled value) for a whole block.
 */
export interface BlockMasks {
  blocks: Uint8Array | readonly Uint8Array[];
  select: (head: number, queryBlock: number, keyBlocks: Int32Array, ids: Int32Array) => void;
}

/** The checked form of BlockMasks. */
export interface BlockMaskSource {
  readonly blocks: readonly Uint8Array[];
  readonly select: BlockMasks['select'];
}

const isArrayLike = (x: unknown): x is ArrayLike<unknown> =>
  (Array.isArray(x) || ArrayBuffer.isView(x)) && typeof (x as ArrayLike<unknown>).length === 'number';

/** Which import form an options.layout object is, or null. */
export function importFormat(x: unknown): 'onnxruntime' | 'flex' | null {
  if (x === null || typeof x !== 'object' || isArrayLike(x)) return null;
  if ('blockRowIndices' in x || 'blockColIndices' in x) return 'onnxruntime';
  if ('kvNumBlocks' in x || 'kvIndices' in x) return 'flex';
  return null;
}

function ints(name: string, x: unknown): Int32Array {
  if (!isArrayLike(x)) throw argError(name, 'an array of integers (e.g. an Int32Array)', x);
  // Typed integer arrays hold only integers in range: copied without a check per element.
  if (x instanceof Int32Array) return x.slice();
  if (x instanceof Int16Array || x instanceof Uint16Array || x instanceof Int8Array || x instanceof Uint8Array) return Int32Array.from(x);
  const out = new Int32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as unknown;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) throw argError(`${name}[${i}]`, 'a 32-bit integer', v);
    out[i] = n;
  }
  return out;
}

/** [n][width] from one flat array (n given) or from n arrays of one length. */
function matrix(name: string, x: unknown, n: number | undefined): { n: number; width: number; data: Int32Array } {
  if (isArrayLike(x) && x.length > 0 && isArrayLike(x[0])) {
    const rows = Array.from(x as ArrayLike<unknown>, (r, i) => ints(`${name}[${i}]`, r));
    const width = rows[0].length;
    rows.forEach((r, i) => {
      if (r.length !== width) throw argError(`${name}[${i}].length`, `${width} (the length of ${name}[0])`, r.length);
    });
    if (n !== undefined && rows.length !== n) throw argError(`${name}.length`, `${n} (numLayouts)`, rows.length);
    const data = new Int32Array(rows.length * width);
    rows.forEach((r, i) => data.set(r, i * width));
    return { n: rows.length, width, data };
  }
  const data = ints(name, x);
  const layouts = n ?? 1;
  if (data.length % layouts !== 0) throw argError(`${name}.length`, `a multiple of numLayouts (${layouts})`, data.length);
  return { n: layouts, width: data.length / layouts, data };
}

/** Sorts one row's key blocks (with their flags) in place and refuses repeats. */
function sortRow(cols: Int32Array, masked: Uint8Array | null, at: () => string): void {
  const n = cols.length;
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) if (cols[i] <= cols[i - 1]) sorted = false;
  if (sorted) return;
  // Key = kb · 2 + flag: one native numeric sort carries the flags along.
  const keys = new Int32Array(n);
  for (let i = 0; i < n; i++) keys[i] = cols[i] * 2 + (masked ? masked[i] : 0);
  keys.sort();
  for (let i = 0; i < n; i++) {
    cols[i] = keys[i] >> 1;
    if (masked) masked[i] = keys[i] & 1;
    if (i > 0 && cols[i] === cols[i - 1]) throw new ArgumentError(`${at()} lists key block ${cols[i]} twice`);
  }
}

/** Reads ONNX Runtime SparseAttention's CSR (see the file comment). */
export function readOnnxLayout(x: object, heads: number): ImportedLayout {
  const o = x as Partial<OnnxSparseLayout>;
  for (const key of Object.keys(x)) {
    if (!['blockRowIndices', 'blockColIndices', 'numLayouts'].includes(key)) {
      throw new ArgumentError(`options.layout.${key} is not a key of ONNX Runtime's layout (blockRowIndices, blockColIndices, numLayouts)`);
    }
  }
  let n = o.numLayouts;
  if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1)) throw argError('options.layout.numLayouts', 'a positive integer', n);
  const rowsIn = matrix('options.layout.blockRowIndices', o.blockRowIndices, n);
  n = rowsIn.n;
  const colsIn = matrix('options.layout.blockColIndices', o.blockColIndices, n);
  if (colsIn.n !== n) throw argError('options.layout.blockColIndices.length', `${n} layouts (as blockRowIndices)`, colsIn.n);
  if (heads % n !== 0) throw new ArgumentError(`options.layout has ${n} layouts: their number must divide heads (${heads})`);
  const maxBlocks = rowsIn.width - 1;
  if (maxBlocks < 1) throw argError('options.layout.blockRowIndices', 'rows of maxBlocks + 1 >= 2 entries', rowsIn.data);
  const out: ImportedHead[] = [];
  for (let l = 0; l < n; l++) {
    const rp = rowsIn.data.subarray(l * rowsIn.width, (l + 1) * rowsIn.width);
    const name = `options.layout.blockRowIndices[${l}]`;
    if (rp[0] !== 0) throw argError(`${name}[0]`, '0 (CSR row pointers start at 0)', rp[0]);
    for (let r = 1; r <= maxBlocks; r++) {
      if (rp[r] < rp[r - 1]) throw argError(`${name}[${r}]`, `at least ${name}[${r - 1}] (${rp[r - 1]}): row pointers never decrease`, rp[r]);
    }
    const nnz = rp[maxBlocks];
    if (nnz > colsIn.width) {
      throw argError(`${name}[${maxBlocks}]`, `at most the length of a blockColIndices row (${colsIn.width})`, nnz);
    }
    const cols = colsIn.data.slice(l * colsIn.width, l * colsIn.width + nnz);
    for (let qb = 0; qb < maxBlocks; qb++) {
      for (let e = rp[qb]; e < rp[qb + 1]; e++) {
        const kb = cols[e];
        const at = `options.layout.blockColIndices[${l}][${e}]`;
        if (kb < 0 || kb >= maxBlocks) throw argError(at, `a key block 0 to ${maxBlocks - 1} (row ${qb} of layout ${l})`, kb);
        // The op is unidirectional: ORT's kernels read a row of qb + 1 entries as dense causal.
        if (kb > qb) throw argError(at, `at most its query block ${qb}: ONNX Runtime's SparseAttention is causal, its layouts lower-triangular`, kb);
      }
      sortRow(cols.subarray(rp[qb], rp[qb + 1]), null, () => `options.layout row ${qb} of layout ${l}`);
    }
    out.push({ rowPtr: Int32Array.from(rp), cols, masked: null });
  }
  return { format: 'onnxruntime', rows: maxBlocks, cols: maxBlocks, heads: out, causal: true };
}

/** Reads FlexAttention's BlockMask lists (see the file comment). */
export function readFlexLayout(x: object, heads: number, blocksize: number): ImportedLayout {
  const o = x as Partial<FlexBlockLayout>;
  const keys = ['kvNumBlocks', 'kvIndices', 'fullKvNumBlocks', 'fullKvIndices', 'shape', 'blockSize'];
  for (const key of Object.keys(x)) {
    if (!keys.includes(key)) throw new ArgumentError(`options.layout.${key} is not a key of a FlexAttention layout (${keys.join(', ')})`);
  }
  if (o.blockSize !== undefined) {
    const bs = typeof o.blockSize === 'number' ? [o.blockSize, o.blockSize] : isArrayLike(o.blockSize) ? Array.from(o.blockSize) : null;
    if (!bs || bs.length !== 2 || bs.some((b) => b !== blocksize)) {
      throw argError('options.layout.blockSize', `the constructor's blocksize (${blocksize}) on both axes`, o.blockSize);
    }
  }
  const shape = o.shape;
  if (!isArrayLike(shape) || shape.length < 2 || shape.length > 4 || !Array.from(shape).every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    throw argError('options.layout.shape', 'kv_indices.shape: [B, H, nQB, nKB], [H, nQB, nKB] or [nQB, nKB]', shape);
  }
  const dims = Array.from(shape as ArrayLike<number>);
  if (dims.length === 4 && dims[0] !== 1) {
    throw argError('options.layout.shape[0]', 'B = 1: one layout for the whole batch (index the BlockMask as block_mask[0:1])', dims[0]);
  }
  const [h, rows, cols] = dims.length === 2 ? [1, dims[0], dims[1]] : dims.slice(-3);
  if (h !== 1 && h !== heads) throw argError(`options.layout.shape[${dims.length - 3}]`, `H = 1 or heads (${heads})`, h);
  if (rows < 1 || cols < 1) throw argError('options.layout.shape', 'at least one query block and one key block', dims);
  const hasFull = o.fullKvNumBlocks !== undefined || o.fullKvIndices !== undefined;
  if (hasFull && (o.fullKvNumBlocks === undefined || o.fullKvIndices === undefined)) {
    throw new ArgumentError('options.layout: fullKvNumBlocks and fullKvIndices must be given together (as BlockMask requires)');
  }
  const lists = [['kv', o.kvNumBlocks, o.kvIndices]] as [string, unknown, unknown][];
  if (hasFull) lists.push(['fullKv', o.fullKvNumBlocks, o.fullKvIndices]);
  const read = lists.map(([p, numIn, idxIn]) => {
    const num = ints(`options.layout.${p}NumBlocks`, numIn);
    // Read in place when already int32 (copied entry by entry below, during this call): a
    // BlockMask's kv_indices is nQB × nKB, mostly unused padding past each row's count.
    const idx = idxIn instanceof Int32Array ? idxIn : ints(`options.layout.${p}Indices`, idxIn);
    if (num.length !== h * rows) throw argError(`options.layout.${p}NumBlocks.length`, `H · nQB = ${h * rows} for shape [${dims.join(', ')}]`, num.length);
    if (idx.length !== h * rows * cols) throw argError(`options.layout.${p}Indices.length`, `H · nQB · nKB = ${h * rows * cols} for shape [${dims.join(', ')}]`, idx.length);
    return { p, num, idx };
  });
  const out: ImportedHead[] = [];
  for (let head = 0; head < h; head++) {
    const rowPtr = new Int32Array(rows + 1);
    for (let qb = 0; qb < rows; qb++) {
      let len = 0;
      for (const { p, num } of read) {
        const k = num[head * rows + qb];
        if (k < 0 || k > cols) throw argError(`options.layout.${p}NumBlocks[${head * rows + qb}]`, `0 to nKB (${cols})`, k);
        len += k;
      }
      rowPtr[qb + 1] = rowPtr[qb] + len;
    }
    const colsOut = new Int32Array(rowPtr[rows]);
    const masked = new Uint8Array(rowPtr[rows]);
    for (let qb = 0; qb < rows; qb++) {
      let e = rowPtr[qb];
      for (const { p, num, idx } of read) {
        const base = (head * rows + qb) * cols;
        for (let t = 0; t < num[head * rows + qb]; t++) {
          const kb = idx[base + t];
          if (kb < 0 || kb >= cols) throw argError(`options.layout.${p}Indices[${base + t}]`, `a key block 0 to ${cols - 1}`, kb);
          colsOut[e] = kb;
          masked[e++] = p === 'kv' ? 1 : 0;
        }
      }
      sortRow(colsOut.subarray(rowPtr[qb], rowPtr[qb + 1]), masked.subarray(rowPtr[qb], rowPtr[qb + 1]), () => `options.layout (head ${head}, query block ${qb}; kvIndices and fullKvIndices together)`);
    }
    out.push({ rowPtr, cols: colsOut, masked: hasFull ? masked : null });
  }
  return { format: 'flex', rows, cols, heads: out, causal: false };
}

/** Checks options.mask given as { blocks, select }. */
export function readBlockMasks(x: object, blocksize: number): BlockMaskSource {
  const o = x as Partial<BlockMasks>;
  for (const key of Object.keys(x)) {
    if (key !== 'blocks' && key !== 'select') throw new ArgumentError(`options.mask.${key} is not a key of a block mask (blocks, select)`);
  }
  const area = blocksize * blocksize;
  let blocks: Uint8Array[];
  if (o.blocks instanceof Uint8Array) {
    if (o.blocks.length % area !== 0) throw argError('options.mask.blocks.length', `a multiple of blocksize² (${area})`, o.blocks.length);
    blocks = Array.from({ length: o.blocks.length / area }, (_, i) => (o.blocks as Uint8Array).subarray(i * area, (i + 1) * area));
  } else if (Array.isArray(o.blocks)) {
    blocks = o.blocks.map((b, i) => {
      if (!(b instanceof Uint8Array) || b.length !== area) throw argError(`options.mask.blocks[${i}]`, `a Uint8Array of blocksize² (${area}) bytes`, b);
      return b;
    });
  } else {
    throw argError('options.mask.blocks', `a Uint8Array of blocksize² (${area}) bytes per mask, or an array of them`, o.blocks);
  }
  // Copied: the layout is built from them later, and must not change with the caller's arrays.
  blocks = blocks.map((b, i) => {
    for (let t = 0; t < area; t++) if (b[t] > 1) throw argError(`options.mask.blocks[${i}][${t}]`, '0 or 1', b[t]);
    return b.slice();
  });
  if (typeof o.select !== 'function') throw argError('options.mask.select', 'a function (head, queryBlock, keyBlocks, ids) => void', o.select);
  return { blocks, select: o.select };
}

/** The token mask of a custom layout: a predicate per pair, or masks per block. */
export type MaskSource = { kind: 'pairs'; allowed: (head: number, i: number, j: number) => boolean } | { kind: 'blocks'; masks: BlockMaskSource };

/** The block rows of one head of a custom layout, for the builder and the reference alike. */
export interface CustomRows {
  /** Key blocks of query block qb below nB, ascending, with whether the token mask applies (1) to each. */
  row(qb: number, cols: Int32Array, masked: Uint8Array): number;
  /** Upper bound of the entries over the nB rows (capacity of the builder). */
  readonly bound: number;
}

/** Rows of layout head `h` of an imported layout, cut to nB × nB blocks. */
export function importedRows(layout: ImportedLayout, h: number, nB: number): CustomRows {
  const head = layout.heads[h % layout.heads.length];
  const rows = Math.min(nB, layout.rows);
  return {
    bound: head.rowPtr[rows],
    row(qb, cols, masked) {
      if (qb >= rows) return 0;
      let n = 0;
      for (let e = head.rowPtr[qb]; e < head.rowPtr[qb + 1]; e++) {
        if (head.cols[e] >= nB) break; // ascending: the rest lie past the call's keys
        cols[n] = head.cols[e];
        masked[n++] = head.masked ? head.masked[e] : 1;
      }
      return n;
    },
  };
}

/** Rows of a block predicate (matrices and functions), nB × nB. */
export function predicateRows(blocks: (qb: number, kb: number) => boolean, nB: number): CustomRows {
  return {
    bound: nB * 4,
    row(qb, cols, masked) {
      let n = 0;
      for (let kb = 0; kb < nB; kb++) {
        if (!blocks(qb, kb)) continue;
        cols[n] = kb;
        masked[n++] = 1;
      }
      return n;
    },
  };
}

/** Calls select for one row and checks what it wrote. */
export function selectRow(m: BlockMaskSource, head: number, qb: number, keyBlocks: Int32Array, ids: Int32Array): void {
  ids.fill(-1);
  try {
    m.select(head, qb, keyBlocks, ids);
  } catch (e) {
    throw new ArgumentError(`options.mask.select(head ${head}, queryBlock ${qb}) threw: ${e instanceof Error ? e.message : describe(e)}`, { cause: e });
  }
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (id < -1 || id >= m.blocks.length) {
      throw argError(`options.mask.select(head ${head}, queryBlock ${qb}): ids[${t}] (key block ${keyBlocks[t]})`, `-1 (whole block) or a mask index 0 to ${m.blocks.length - 1}`, id);
    }
  }
}

/**
 * The CSR of one head of a custom layout over nB × nB blocks of bs: its rows, the token mask
 * where it applies, and (causal imports) the lower triangle inside diagonal blocks. A
 * predicate mask is called per token pair of the blocks it applies to (counted by budget);
 * block masks are resolved once per distinct (mask, diagonal) and then cost O(1) an entry.
 */
export function customLayout(
  rows: CustomRows,
  mask: MaskSource | null,
  head: number,
  nB: number,
  bs: number,
  causal: boolean,
  budget: CallBudget | null,
  label?: string,
): BlockLayout {
  const builder = new LayoutBuilder(bs, nB, nB, Math.max(1, rows.bound), label);
  const area = bs * bs;
  const tril = new Uint8Array(area);
  for (let r = 0; r < bs; r++) tril.fill(1, r * bs, r * bs + r + 1);
  let trilId = -3; // interned on first use: a row may list no diagonal block
  const diagonal = () => (trilId === -3 ? (trilId = builder.intern(tril)) : trilId);
  const cols = new Int32Array(nB);
  const masked = new Uint8Array(nB);
  const keyBlocks = new Int32Array(nB);
  const ids = new Int32Array(nB);
  const bytes = new Uint8Array(area);
  // Block masks: user id (and whether on the diagonal) -> builder id, -1 full, -2 empty.
  const resolved = new Map<number, number>();
  const resolve = (id: number, diag: boolean): number => {
    const key = diag ? -2 - id : id;
    let out = resolved.get(key);
    if (out === undefined) {
      const src = mask!.kind === 'blocks' ? mask!.masks.blocks[id] : bytes;
      let ones = 0;
      for (let t = 0; t < area; t++) ones += bytes[t] = diag ? src[t] & tril[t] : src[t];
      out = ones === area ? -1 : ones === 0 ? -2 : builder.intern(bytes);
      resolved.set(key, out);
    }
    return out;
  };
  for (let qb = 0; qb < nB; qb++) {
    const n = rows.row(qb, cols, masked);
    let m = 0;
    if (mask?.kind === 'blocks') {
      for (let t = 0; t < n; t++) if (masked[t]) keyBlocks[m++] = cols[t];
      if (m > 0) selectRow(mask.masks, head, qb, keyBlocks.subarray(0, m), ids.subarray(0, m));
    }
    let s = 0;
    for (let t = 0; t < n; t++) {
      const kb = cols[t];
      const diag = causal && kb === qb;
      let id: number;
      if (!mask || !masked[t]) {
        id = diag ? diagonal() : -1;
      } else if (mask.kind === 'blocks') {
        const user = ids[s++];
        id = user === -1 ? (diag ? diagonal() : -1) : resolve(user, diag);
      } else {
        budget?.spend(area);
        let ones = 0;
        for (let r = 0; r < bs; r++) {
          for (let c = 0; c < bs; c++) {
            const ok = (!diag || c <= r) && mask.allowed(head, qb * bs + r, kb * bs + c) ? 1 : 0;
            bytes[r * bs + c] = ok;
            ones += ok;
          }
        }
        id = ones === area ? -1 : ones === 0 ? -2 : builder.intern(bytes);
      }
      if (id !== -2) builder.addId(kb, id);
    }
    builder.endRow();
  }
  return builder.build();
}

/**
 * Room for one row of nB key blocks, shared by every customRows source (a row is read whole
 * before the next is asked for): a decode step of many heads allocates nothing per head.
 */
let scratch: { cols: Int32Array; masked: Uint8Array; keyBlocks: Int32Array; ids: Int32Array } | null = null;
function rowScratch(nB: number) {
  if (!scratch || scratch.cols.length < nB) {
    const n = Math.max(nB, 64);
    scratch = { cols: new Int32Array(n), masked: new Uint8Array(n), keyBlocks: new Int32Array(n), ids: new Int32Array(n) };
  }
  return scratch;
}

/**
 * The rows of one head of a custom layout over nB × nB blocks of bs, one at a time, for
 * cross-attention (src/layout/cross.ts): as customLayout, with each entry's mask as bytes
 * (block masks resolved once per (mask, diagonal) and shared, so that equal halves compose
 * once). `rowCalls`: calls of a function layout a row costs (nB; 0 for block lists).
 */
export function customRows(
  rows: CustomRows,
  mask: MaskSource | null,
  head: number,
  nB: number,
  bs: number,
  causal: boolean,
  budget: CallBudget | null,
  rowCalls: number,
): PositionRows {
  const area = bs * bs;
  const tril = lowerTriangle(bs);
  // Block masks: user id (and whether on the diagonal) -> bytes, null whole, 'empty'.
  const resolved = new Map<number, Uint8Array | null | 'empty'>();
  const bytesOf = (src: Uint8Array | null, diag: boolean): Uint8Array | null | 'empty' => {
    const out = new Uint8Array(area);
    let ones = 0;
    for (let t = 0; t < area; t++) ones += out[t] = (src === null ? 1 : src[t]) & (diag ? tril[t] : 1);
    return ones === area ? null : ones === 0 ? 'empty' : out;
  };
  return {
    nB,
    row(qb, add) {
      if (rowCalls > 0) budget?.spend(rowCalls);
      const { cols, masked, keyBlocks, ids } = rowScratch(nB);
      const n = rows.row(qb, cols, masked);
      let m = 0;
      if (mask?.kind === 'blocks') {
        for (let t = 0; t < n; t++) if (masked[t]) keyBlocks[m++] = cols[t];
        if (m > 0) selectRow(mask.masks, head, qb, keyBlocks.subarray(0, m), ids.subarray(0, m));
      }
      let s = 0;
      for (let t = 0; t < n; t++) {
        const kb = cols[t];
        const diag = causal && kb === qb;
        let bytes: Uint8Array | null | 'empty';
        if (!mask || !masked[t]) {
          bytes = diag ? tril : null;
        } else if (mask.kind === 'blocks') {
          const user = ids[s++];
          if (user === -1) {
            bytes = diag ? tril : null;
          } else {
            const key = diag ? -1 - user : user;
            bytes = resolved.get(key) ?? null;
            if (!resolved.has(key)) resolved.set(key, (bytes = bytesOf(mask.masks.blocks[user], diag)));
          }
        } else {
          budget?.spend(area);
          const out = new Uint8Array(area);
          let ones = 0;
          for (let r = 0; r < bs; r++) {
            for (let c = 0; c < bs; c++) {
              ones += out[r * bs + c] = (!diag || c <= r) && mask.allowed(head, qb * bs + r, kb * bs + c) ? 1 : 0;
            }
          }
          bytes = ones === area ? null : ones === 0 ? 'empty' : out;
        }
        if (bytes !== 'empty') add(kb, bytes);
      }
    },
  };
}
