// Block layouts in CSR form: for each query block, the key blocks it visits and, for
// blocks that are only partly allowed, a token mask. Pure TS, shared by every backend.
// A Layout counts its pairs and blocks without building anything (closed forms for the
// built-in modes) and builds the CSR the kernels read only when a backend first asks for
// it, after checking its size: a plan of any shape costs no memory proportional to nCtx².
// see: openai/sparse_attention attention.py (get_blocksparse_obj, get_callback)
import { MemoryLimitError } from '../errors.js';

export interface BlockLayout {
  /** Tokens per block, on both axes. */
  readonly blockSize: number;
  readonly nQB: number;
  readonly nKB: number;
  /** Key blocks of query block qb: cols[rowPtr[qb] .. rowPtr[qb + 1]), ascending. */
  readonly rowPtr: Int32Array;
  readonly cols: Int32Array;
  /** Per entry: -1 when every pair of the block is allowed, else an index into masks. */
  readonly maskIds: Int32Array;
  /** Token masks, blockSize² bytes each, [qRow][kCol] row-major, 1 = allowed. */
  readonly masks: readonly Uint8Array[];
}

/**
 * Most bytes a layout's CSR may take (rowPtr, cols and maskIds as i32, masks as bytes): 4 GiB.
 * No path can hold more: the CPU kernels copy the tables into wasm32 memory (4 GiB, with the
 * tensors), the GPU binds them as one storage buffer indexed by u32 words. Each path checks
 * its own, smaller, room before it asks for the CSR (see checkRoom).
 */
export const LAYOUT_MAX_BYTES = 2 ** 32;
const ANY_PATH = 'any path (wasm32 memory, one WebGPU binding)';

/** Bytes of a CSR with `entries` entries and `masks` token masks (as BlockLayout holds it). */
export function csrBytes(nQB: number, entries: number, masks: number, blockSize: number): number {
  return 4 * (nQB + 1) + 8 * entries + masks * blockSize * blockSize;
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 4 : 2)} GiB`;

/** Throws (before anything is allocated) when a layout's tables would pass `limit` bytes. */
export function checkRoom(what: string, needed: number, limit: number, where: string): void {
  if (needed > limit) {
    throw new MemoryLimitError(
      `${what} needs ${gib(needed)} (${needed} bytes) of block tables; ${where} allows at most ${gib(limit)} ` +
        `(${limit} bytes): use a shorter nCtx, a larger blocksize or a sparser mode`,
      needed,
      limit,
    );
  }
}

/** Where a call's layout tables must fit, for tablesTooLarge. */
export interface TableRoom {
  /** The memory, e.g. "WebAssembly memory". */
  where: string;
  /** What sets its size, e.g. "wasm32". */
  setBy: string;
  limit: number;
  /**
   * Bytes that must sit beside the tables however the call is split, what they are, and
   * what to do when they, more than the tables, are what does not fit.
   */
  beside?: { bytes: number; what: string; advice: string };
}

/**
 * Why a call cannot hold its layouts' tables (and the bytes it needs at least), or null when
 * it can. `bytesOf` gives a layout's tables as the backend lays them out, from counts:
 * nothing is built. The message names the larger of the two parts first.
 */
export function tablesTooLarge(
  shape: readonly number[],
  layouts: readonly Layout[],
  bytesOf: (l: Layout) => number,
  room: TableRoom,
): { message: string; needed: number } | null {
  const tables = layouts.reduce((sum, l) => sum + bytesOf(l), 0);
  const beside = room.beside?.bytes ?? 0;
  const needed = tables + beside;
  if (needed <= room.limit) return null;
  const entries = layouts.reduce((sum, l) => sum + l.entries, 0n);
  const which = layouts.length === 1 ? layouts[0].label : `${layouts[0].label} and ${layouts.length - 1} more pattern(s)`;
  const layoutPart = `${which} has ${entries} block pairs (${gib(tables)} of tables)`;
  const besidePart = beside > 0 ? `${room.beside!.what} take ${gib(beside)}` : '';
  const parts = beside > tables
    ? `${besidePart}, beside ${gib(tables)} of tables for ${which}. ${room.beside!.advice}`
    : `${layoutPart}${beside > 0 ? `, beside ${gib(beside)} for ${room.beside!.what}` : ''}. Use a shorter nCtx, a larger blocksize or a sparser mode`;
  const message =
    `a call of shape [${shape.join(', ')}] needs ${gib(needed)} (${needed} bytes) of ${room.where}; ` +
    `${room.setBy} allows at most ${gib(room.limit)} (${room.limit} bytes): ${parts}`;
  return { message, needed };
}

/**
 * A block layout: counts in closed form (or from its CSR, for custom layouts), the CSR
 * fields of BlockLayout built on first access. Every backend reads rowPtr/cols/maskIds/masks
 * as before; nothing else touches them, so plan() never builds a layout.
 */
export abstract class Layout implements BlockLayout {
  private built: BlockLayout | null = null;

  constructor(
    readonly blockSize: number,
    readonly nQB: number,
    readonly nKB: number,
    /** Names the layout in errors, e.g. "the block layout of mode 'all' at nCtx 2097152 (65536 × 65536 blocks of 32)". */
    readonly label: string,
  ) {}

  /** CSR entries (visited block pairs) of the whole layout. */
  abstract readonly entries: bigint;
  /** Token masks the CSR holds. */
  abstract readonly maskCount: number;
  /** Allowed (query, key) pairs with query < nQ and key < nK. */
  abstract countPairs(nQ: number, nK: number): bigint;
  /** Block pairs a kernel visits for a sequence of nQ queries and nK keys. */
  abstract countBlocks(nQ: number, nK: number): bigint;
  protected abstract build(): BlockLayout;

  /** Bytes of the CSR (as csrBytes), without building it. */
  get bytes(): number {
    return csrBytes(this.nQB, Number(this.entries), this.maskCount, this.blockSize);
  }

  /** Whether the CSR has been built (for tests: plan() must not build it). */
  get isBuilt(): boolean {
    return this.built !== null;
  }

  /** The CSR, built once; refused before allocating when over LAYOUT_MAX_BYTES. */
  csr(): BlockLayout {
    if (!this.built) {
      checkRoom(`${this.label} (${this.entries} block pairs)`, this.bytes, LAYOUT_MAX_BYTES, ANY_PATH);
      this.built = this.build();
    }
    return this.built;
  }

  get rowPtr(): Int32Array {
    return this.csr().rowPtr;
  }
  get cols(): Int32Array {
    return this.csr().cols;
  }
  get maskIds(): Int32Array {
    return this.csr().maskIds;
  }
  get masks(): readonly Uint8Array[] {
    return this.csr().masks;
  }
}

/** A layout whose CSR is given (custom layouts): counts walk the CSR, O(entries). */
export class CsrLayout extends Layout {
  readonly entries: bigint;
  readonly maskCount: number;

  constructor(private readonly given: BlockLayout, label: string) {
    super(given.blockSize, given.nQB, given.nKB, label);
    this.entries = BigInt(given.cols.length);
    this.maskCount = given.masks.length;
  }

  countPairs(nQ: number, nK: number): bigint {
    return BigInt(countAllowedPairs(this.given, nQ, nK));
  }

  countBlocks(nQ: number, nK: number): bigint {
    return BigInt(countVisitedBlocks(this.given, nQ, nK));
  }

  protected build(): BlockLayout {
    return this.given;
  }
}

/**
 * Collects entries row by row into typed arrays (never plain JS arrays, whose length V8
 * caps far below what a typed array holds) and de-duplicates identical token masks.
 * `capacity`: the entries expected (exact for the built-in modes); grows by doubling, and
 * refuses to grow past LAYOUT_MAX_BYTES.
 */
export class LayoutBuilder {
  private readonly rowPtr: Int32Array;
  private cols: Int32Array;
  private maskIds: Int32Array;
  private n = 0;
  private row = 0;
  private readonly masks: Uint8Array[] = [];
  private readonly maskIndex = new Map<string, number[]>();

  constructor(
    readonly blockSize: number,
    readonly nQB: number,
    readonly nKB: number,
    capacity = 64,
    private readonly label = 'the block layout',
  ) {
    this.rowPtr = new Int32Array(nQB + 1);
    this.cols = new Int32Array(Math.max(1, capacity));
    this.maskIds = new Int32Array(Math.max(1, capacity));
  }

  /** Adds key block kb to the current query row; mask null means fully allowed. */
  add(kb: number, mask: Uint8Array | null): void {
    if (this.n === this.cols.length) this.grow();
    this.cols[this.n] = kb;
    this.maskIds[this.n] = mask === null ? -1 : this.internMask(mask);
    this.n++;
  }

  /** Adds key block kb with a mask id from intern() (-1: fully allowed). */
  addId(kb: number, id: number): void {
    if (this.n === this.cols.length) this.grow();
    this.cols[this.n] = kb;
    this.maskIds[this.n] = id;
    this.n++;
  }

  /** The id of a token mask (blockSize² bytes, copied when new), equal masks sharing one. */
  intern(mask: Uint8Array): number {
    return this.internMask(mask);
  }

  endRow(): void {
    this.rowPtr[++this.row] = this.n;
  }

  build(): BlockLayout {
    const n = this.n;
    return {
      blockSize: this.blockSize,
      nQB: this.nQB,
      nKB: this.nKB,
      rowPtr: this.rowPtr,
      cols: n === this.cols.length ? this.cols : this.cols.slice(0, n),
      maskIds: n === this.maskIds.length ? this.maskIds : this.maskIds.slice(0, n),
      masks: this.masks,
    };
  }

  private grow(): void {
    const cap = this.cols.length * 2;
    const bs = this.blockSize;
    checkRoom(`${this.label} (at least ${cap} block pairs)`, csrBytes(this.nQB, cap, this.masks.length, bs), LAYOUT_MAX_BYTES, ANY_PATH);
    const cols = new Int32Array(cap);
    const maskIds = new Int32Array(cap);
    cols.set(this.cols);
    maskIds.set(this.maskIds);
    this.cols = cols;
    this.maskIds = maskIds;
  }

  private internMask(mask: Uint8Array): number {
    const key = hashBytes(mask);
    const bucket = this.maskIndex.get(key);
    if (bucket) {
      for (const id of bucket) if (equalBytes(this.masks[id], mask)) return id;
    }
    const id = this.masks.length;
    this.masks.push(mask.slice());
    if (bucket) bucket.push(id);
    else this.maskIndex.set(key, [id]);
    return id;
  }
}

function hashBytes(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${bytes.length}:${h >>> 0}`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Number of allowed (query, key) pairs with query < nQ and key < nK, walking the CSR. */
export function countAllowedPairs(layout: BlockLayout, nQ: number, nK: number): number {
  const bs = layout.blockSize;
  const maskCounts = new Map<number, number>();
  let total = 0;
  const nQB = Math.min(layout.nQB, Math.ceil(nQ / bs));
  for (let qb = 0; qb < nQB; qb++) {
    const rows = Math.min(bs, nQ - qb * bs);
    for (let e = layout.rowPtr[qb]; e < layout.rowPtr[qb + 1]; e++) {
      const kb = layout.cols[e];
      const colsValid = Math.min(bs, nK - kb * bs);
      if (colsValid <= 0) continue;
      const id = layout.maskIds[e];
      if (id < 0) {
        total += rows * colsValid;
      } else if (rows === bs && colsValid === bs) {
        let n = maskCounts.get(id);
        if (n === undefined) {
          n = countOnes(layout.masks[id], bs, bs, bs);
          maskCounts.set(id, n);
        }
        total += n;
      } else {
        total += countOnes(layout.masks[id], bs, rows, colsValid);
      }
    }
  }
  return total;
}

/** Block pairs a kernel visits for one sequence of nQ queries and nK keys, walking the CSR. */
export function countVisitedBlocks(layout: BlockLayout, nQ: number, nK: number): number {
  const bs = layout.blockSize;
  const nKB = Math.ceil(nK / bs);
  let n = 0;
  for (let qb = 0; qb < Math.min(layout.nQB, Math.ceil(nQ / bs)); qb++) {
    for (let e = layout.rowPtr[qb]; e < layout.rowPtr[qb + 1]; e++) if (layout.cols[e] < nKB) n++;
  }
  return n;
}

function countOnes(mask: Uint8Array, bs: number, rows: number, cols: number): number {
  let n = 0;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) n += mask[r * bs + c];
  return n;
}
