// Plan: what one forward call computes, independent of the backend. Turns the config and
// a tensor shape into sequences (one per batch × head, or batch × head × group for
// 'strided'), their block layouts, and the useful work (allowed pairs, FLOPs).
// see: openai/sparse_attention attention.py (strided_transpose, get_blocksparse_obj)
import type { Config } from './config.js';
import { DisposedError, UnsupportedError, argError } from './errors.js';
import { BandLayout } from './layout/band.js';
import { CsrLayout, type Layout } from './layout/block-layout.js';
import { CrossLayout, type PositionRows } from './layout/cross.js';
import { CallBudget, FixedLayout, fixedRows } from './layout/pattern.js';
import { type MaskSource, customLayout, customRows, importedRows, predicateRows } from './layout/custom.js';
import { namedLayout, namedRows } from './layout/named.js';

/**
 * Block layouts for one nCtx; cached per instance. The layouts are counted without being
 * built; a backend that runs the call builds their CSR (Layout.csr) after checking its room.
 */
export interface Geometry {
  /** Sequence rows are the tokens g, g + regroup, g + 2·regroup… ('strided'); else 0. */
  readonly regroup: number;
  /** Rows of the longest sequence: nCtx, or ceil(nCtx / L) for 'strided'. */
  readonly seqLen: number;
  /** Key rows per batch item the layouts were built for: nCtx, or more for cross-attention (nQ < nK). */
  readonly keyLen: number;
  readonly blockSize: number;
  readonly layouts: readonly Layout[];
  /** Index into layouts for each head. */
  readonly headLayout: Int32Array;
}

export interface Plan extends Geometry {
  readonly batch: number;
  /** Query (and output) rows per batch item. */
  readonly nCtx: number;
  /** Key (and value) rows per batch item: nCtx for self-attention; queries are aligned bottom-right. */
  readonly nK: number;
  /** Heads of K and V (GQA/MQA): query head h reads K/V head floor(h · kvHeads / heads). */
  readonly kvHeads: number;
  readonly nEmbd: number;
  readonly heads: number;
  readonly headDim: number;
  readonly mode: Config['mode'];
  readonly causal: boolean;
  readonly keyLengths: Int32Array | null;
  /**
   * Packed sequences (batch 1): lengths summing to nCtx, each attending only within itself,
   * positions restarting at 0 — its sequences use the first rows of the layouts. Else null.
   */
  readonly seqLengths?: Int32Array | null;
  /** Allowed (query, key) pairs over every batch item and head. */
  readonly allowedPairs: number;
  /** 4 · headDim · allowedPairs: the multiply-adds of Q·Kᵀ and P·V, counted as 2 FLOPs each. */
  readonly usefulFlops: number;
  /** 4 · headDim · blockSize² · visited block pairs: the work of a kernel that computes whole blocks. */
  readonly visitedFlops: number;
  /** allowedPairs / (batch · heads · nCtx · nK). */
  readonly density: number;
  /** Entries of the layouts over every head (× groups for 'strided'), not counting batch: plan().blocksVisited. */
  readonly blocksVisited: number;
  /** Storage of q, k, v, out (and a cache); compute is f32 either way. */
  readonly dtype: Config['dtype'];
}

/** One (batch, head[, group]) attention problem. */
export interface Sequence {
  b: number;
  h: number;
  /** K/V head of query head h. */
  kvh: number;
  /** Key token index of the sequence's first row. */
  token0: number;
  /** Query token index of the sequence's first row (0, or later for regrouped cross-attention). */
  qToken0: number;
  /** Token distance between consecutive rows (1, or L for 'strided'). */
  step: number;
  nQ: number;
  nK: number;
  layout: number;
}

/**
 * Block size of the layout the kernels run for the band modes, whose result does not
 * depend on it. The user's blocksize is kept between 16 and 64: smaller tiles starve the
 * SIMD register tiles, larger ones overflow L1 with the 64 KiB score tile (measured on the
 * 2-core Xeon: bs 16/32/64 within 10% of each other for W1/W2, bs 128 slower).
 */
export function bandBlockSize(blocksize: number, seqLen: number): number {
  const bs = Math.min(64, Math.max(16, blocksize));
  // A sequence shorter than one block (regrouped 'strided') gets a tile that just covers it.
  return Math.max(8, Math.min(bs, Math.ceil(seqLen / 8) * 8));
}

/**
 * Block layouts for one nCtx. `bandBlock` fixes the block size of the band modes (the GPU
 * kernel runs them at 64); by default bandBlockSize() chooses it for the CPU kernel.
 * Built-in modes cost O(heads) here whatever nCtx; a custom layout is evaluated now (see
 * CallBudget for the bound on calls of the user's functions).
 */
export function buildGeometry(config: Config, nCtx: number, bandBlock?: number, nK = nCtx): Geometry {
  const { mode, causal, heads } = config;
  const L = config.localAttnCtx;
  const one = new Int32Array(heads);
  const about = (nB: number, bs: number) => `at nCtx ${nCtx} (${nB} × ${nB} blocks of ${bs})`;
  // Cross-attention: query row r sits at position off + r (bottom-right alignment).
  const off = nK - nCtx;
  if (mode === 'all' || mode === 'local' || mode === 'strided') {
    let lo = -Infinity;
    let hi = causal ? 0 : Infinity;
    if (mode === 'local') {
      lo = -(L - 1);
      if (!causal) hi = L - 1;
    }
    if (mode === 'strided') {
      // Regrouped: group g holds the positions g, g + L, …; its queries are its last rows,
      // the first at group row a_g = ceil((off - g) / L) (A or A + 1), so the group is a
      // causal (or full) attention whose band is raised by a_g: one layout per value of a_g.
      if (off < 0) throw new UnsupportedError(`mode 'strided' with more queries (${nCtx}) than keys (${nK}) is not supported`);
      const seqLen = Math.ceil(nK / L);
      const bs = bandBlock ?? bandBlockSize(config.blocksize, seqLen);
      const nB = Math.ceil(seqLen / bs);
      const A = Math.floor(off / L);
      const label = `the block layout of mode 'strided'${causal ? '' : ' (bidirectional)'} at nCtx ${nK} (sequences of ${seqLen} regrouped tokens: ${nB} × ${nB} blocks of ${bs})`;
      const layouts = [new BandLayout(seqLen, bs, lo, causal ? A : hi, label)];
      // Groups g < off mod L start one row later (a = A + 1); bidirectional, their band is the same.
      if (off % L !== 0) layouts.push(causal ? new BandLayout(seqLen, bs, lo, A + 1, label) : layouts[0]);
      return { regroup: L, seqLen, keyLen: nK, blockSize: bs, layouts, headLayout: one };
    }
    const bs = bandBlock ?? bandBlockSize(config.blocksize, Math.max(nCtx, nK));
    const where = nK === nCtx ? about(Math.ceil(nCtx / bs), bs) : `for ${nCtx} queries against ${nK} keys (blocks of ${bs})`;
    const label = `the block layout of mode '${mode}'${causal ? '' : ' (bidirectional)'} ${where}`;
    const band = new BandLayout(nCtx, bs, lo + off, hi + off, label, nK);
    return { regroup: 0, seqLen: nCtx, keyLen: nK, blockSize: bs, layouts: [band], headLayout: one };
  }
  // Cross-attention (off != 0): the layout is defined over the key positions 0 … nK − 1 and
  // the call's query tiles read the rows of their positions (src/layout/cross.ts).
  const cross = off !== 0;
  const bs = config.blocksize;
  const nB = Math.ceil(nK / bs);
  const where = cross ? `for ${nCtx} queries against ${nK} keys (layout of ${nB} × ${nB} blocks of ${bs})` : about(nB, bs);
  const rowsOf = (rows: PositionRows, label: string): Layout => new CrossLayout(rows, nCtx, nK, bs, label);
  if (mode === 'fixed') {
    const layouts: Layout[] = [];
    const params = { localAttnCtx: L, numVerts: config.numVerts, vertsize: config.vertsize, causal };
    for (let h = 0; h < config.numVerts; h++) {
      const label = `the block layout of mode 'fixed'${causal ? '' : ' (bidirectional)'}${config.numVerts > 1 ? ` (pattern ${h})` : ''} ${where}`;
      const fixed = new FixedLayout(nB, bs, h, params, label);
      layouts.push(cross ? rowsOf(fixedRows(fixed.shape, nB, bs), label) : fixed);
    }
    const headLayout = Int32Array.from({ length: heads }, (_, h) => h % config.numVerts);
    return { regroup: 0, seqLen: nCtx, keyLen: nK, blockSize: bs, layouts, headLayout };
  }
  if (config.pattern) {
    // 'longformer' / 'bigbird': one layout, or one per head (bigbird's differentLayoutPerHead).
    const count = config.patternPerHead ? heads : 1;
    const layouts: Layout[] = [];
    for (let h = 0; h < count; h++) {
      const label = `the block layout of mode '${mode}'${causal ? '' : ' (bidirectional)'}${count > 1 ? ` (head ${h})` : ''} ${where}`;
      layouts.push(cross ? rowsOf(namedRows(config.pattern, h, nB, bs), label) : new CsrLayout(namedLayout(config.pattern, h, nB, bs, label), label));
    }
    const headLayout = count > 1 ? Int32Array.from({ length: heads }, (_, h) => h) : one;
    return { regroup: 0, seqLen: nCtx, keyLen: nK, blockSize: bs, layouts, headLayout };
  }
  // custom
  if (nB > config.customBlockCount) {
    throw argError(
      cross ? 'nK' : 'nCtx',
      `at most ${config.customBlockCount * bs} (the custom layout covers ${config.customBlockCount} blocks of ${bs})`,
      nK,
    );
  }
  const blocks = config.customBlocks;
  const imported = config.customImport;
  const mask: MaskSource | null = config.mask
    ? { kind: 'pairs', allowed: config.mask }
    : config.maskBlocks ? { kind: 'blocks', masks: config.maskBlocks } : null;
  // A mask takes the head: one layout per head. Else one per layout the user gave.
  const perHead = mask !== null || (config.customPerHead && !imported);
  const count = perHead ? heads : imported ? imported.heads.length : 1;
  const label = `the custom block layout ${where}`;
  const budget = new CallBudget(label);
  const fn = config.customBlockCount === Infinity;
  // A function layout is called nB² times per head: refused before the first call when too
  // many. Cross-attention calls it per row its query tiles cover (counted as they are built).
  if (fn && !cross) budget.spend(count * nB * nB);
  const layouts: Layout[] = [];
  for (let h = 0; h < count; h++) {
    const rows = imported ? importedRows(imported, h, nB) : predicateRows((qb, kb) => blocks!(h, qb, kb), nB);
    const ortCausal = imported?.causal ?? false;
    layouts.push(
      cross
        ? rowsOf(customRows(rows, mask, h, nB, bs, ortCausal, budget, fn ? nB : 0), label)
        : new CsrLayout(customLayout(rows, mask, h, nB, bs, ortCausal, budget, label), label),
    );
  }
  const headLayout = Int32Array.from({ length: heads }, (_, h) => h % count);
  return { regroup: 0, seqLen: nCtx, keyLen: nK, blockSize: bs, layouts, headLayout };
}

export function buildPlan(
  config: Config,
  geometry: Geometry,
  shape: readonly [number, number, number],
  keyLengths: Int32Array | null,
  kvHeads = config.heads,
  seqLengths: Int32Array | null = null,
): Plan {
  const [batch, nCtx, nEmbd] = shape;
  const nK = geometry.keyLen;
  const heads = config.heads;
  const headDim = nEmbd / heads;
  const { pairs, blocks } = seqLengths ? countPacked(geometry, seqLengths, keyLengths) : countWork(geometry, batch, nCtx, nK, keyLengths);
  const groups = geometry.regroup > 0 ? Math.min(geometry.regroup, nK) : 1;
  let entries = 0n;
  for (let h = 0; h < heads; h++) entries += geometry.layouts[geometry.headLayout[h]].entries;
  const bs = BigInt(geometry.blockSize);
  // Exact integers, rounded once: exact below 2^53, the nearest double above.
  const allowedPairs = Number(pairs);
  return {
    ...geometry,
    batch,
    nCtx,
    nK,
    kvHeads,
    nEmbd,
    heads,
    headDim,
    mode: config.mode,
    causal: config.causal,
    keyLengths,
    seqLengths,
    allowedPairs,
    usefulFlops: Number(4n * BigInt(headDim) * pairs),
    visitedFlops: Number(4n * BigInt(headDim) * blocks * bs * bs),
    density: allowedPairs / (batch * heads * nCtx * nK),
    blocksVisited: Number(entries * BigInt(groups)),
    dtype: config.dtype ?? 'float32',
  };
}

/**
 * Allowed pairs and visited blocks summed over every (batch item, head, group) sequence.
 * Sequences with the same layout, nQ and nK count the same, so the sum runs over the
 * distinct ones times how often each occurs: heads per layout, batch items per key length,
 * and runs of regrouped groups of equal lengths (at most 3 per key length). Its cost is
 * O(heads + batch items given keyLengths), never O(batch) or O(nCtx) otherwise.
 */
function countWork(
  geometry: Geometry,
  batch: number,
  nCtx: number,
  nK: number,
  keyLengths: Int32Array | null,
): { pairs: bigint; blocks: bigint } {
  const headsPer = new Map<number, number>();
  for (const li of geometry.headLayout) headsPer.set(li, (headsPer.get(li) ?? 0) + 1);
  const itemsPer = new Map<number, number>();
  if (keyLengths) for (const len of keyLengths) itemsPer.set(len, (itemsPer.get(len) ?? 0) + 1);
  else itemsPer.set(nK, batch);
  const memo = new Map<string, [bigint, bigint]>();
  let pairs = 0n;
  let blocks = 0n;
  for (const [len, items] of itemsPer) {
    for (const run of groupRuns(geometry.regroup, nCtx, nK, len)) {
      for (const [li0, nh] of headsPer) {
        const li = li0 + run.shift;
        const key = `${li}:${run.nQ}:${run.nK}`;
        let n = memo.get(key);
        if (n === undefined) {
          const layout = geometry.layouts[li];
          n = [layout.countPairs(run.nQ, run.nK), layout.countBlocks(run.nQ, run.nK)];
          memo.set(key, n);
        }
        const times = BigInt(items) * BigInt(nh) * BigInt(run.n);
        pairs += times * n[0];
        blocks += times * n[1];
      }
    }
  }
  return { pairs, blocks };
}

/** countWork over packed sequences: each a batch item of its own length (keys also cut at keyLengths[0]). */
function countPacked(geometry: Geometry, seqLengths: Int32Array, keyLengths: Int32Array | null): { pairs: bigint; blocks: bigint } {
  let pairs = 0n;
  let blocks = 0n;
  let start = 0;
  for (const len of seqLengths) {
    if (len > 0) {
      const keys = keyLengths ? Math.max(0, Math.min(len, keyLengths[0] - start)) : len;
      const n = countWork(geometry, 1, len, len, Int32Array.of(keys));
      pairs += n.pairs;
      blocks += n.blocks;
    }
    start += len;
  }
  return { pairs, blocks };
}

/** The packed sequences as [start, length, keys] (keys: cut at keyLengths[0]), empty ones left out. */
export function packedSegments(plan: Pick<Plan, 'seqLengths' | 'keyLengths'>): [number, number, number][] {
  const out: [number, number, number][] = [];
  let start = 0;
  for (const len of plan.seqLengths ?? []) {
    if (len > 0) out.push([start, len, plan.keyLengths ? Math.max(0, Math.min(len, plan.keyLengths[0] - start)) : len]);
    start += len;
  }
  return out;
}

/**
 * One regrouped group g of L (step) for nQ queries against nK keys, aligned bottom-right
 * (off = nK - nQ >= 0): its keys are the positions g, g + L, … (ceil((nK - g) / L) rows); its
 * queries are its last rows, the first at group row a = ceil((off - g) / L) for g < off (else
 * 0), i.e. query token g + a·L - off. `shift`: a - floor(off / L), the layout of that a.
 */
export function groupRows(g: number, step: number, nQ: number, nK: number): { a: number; nQ: number; qToken0: number; shift: number } {
  const off = nK - nQ;
  const a = g < off ? Math.ceil((off - g) / step) : 0;
  const rows = Math.max(0, Math.ceil((nK - g) / step));
  return { a, nQ: Math.max(0, rows - a), qToken0: g + a * step - off, shift: a - Math.floor(off / step) };
}

/**
 * The groups of one batch item as runs of equal sequence shapes: group g has its queries
 * (groupRows), ceil((len - g) / step) keys and the layout of its alignment, which change only
 * at g = nK mod step, len mod step and (cross-attention) off mod step. Without regrouping:
 * one run, nCtx × len.
 */
function groupRuns(regroup: number, nCtx: number, nK: number, len: number): { nQ: number; nK: number; n: number; shift: number }[] {
  if (regroup <= 0) return [{ nQ: nCtx, nK: len, n: 1, shift: 0 }];
  const step = regroup;
  const groups = Math.min(step, nK);
  const cuts = [...new Set([0, nK % step, len % step, (nK - nCtx) % step, groups])].filter((g) => g <= groups).sort((a, b) => a - b);
  const runs: { nQ: number; nK: number; n: number; shift: number }[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const g = cuts[i];
    const q = groupRows(g, step, nCtx, nK);
    runs.push({ nQ: q.nQ, nK: Math.max(0, Math.ceil((len - g) / step)), n: cuts[i + 1] - g, shift: q.shift });
  }
  return runs;
}

/** Calls fn for every sequence of the plan (some may have no rows), in (b, h, group) order. */
export function forEachSequence(
  plan: Pick<Plan, 'batch' | 'heads' | 'nCtx' | 'regroup' | 'headLayout' | 'keyLengths'> & Partial<Pick<Plan, 'nK' | 'kvHeads' | 'seqLengths'>>,
  fn: (s: Sequence) => void,
): void {
  const { batch, heads, nCtx, regroup, headLayout, keyLengths } = plan;
  const nK = plan.nK ?? nCtx;
  const kvHeads = plan.kvHeads ?? heads;
  const groups = regroup > 0 ? Math.min(regroup, nK) : 1;
  const step = regroup > 0 ? regroup : 1;
  if (plan.seqLengths) {
    // Packed sequences, one after another like batch items: rows from their start, positions from 0.
    for (const [start, len, keys] of packedSegments(plan)) {
      for (let h = 0; h < heads; h++) {
        const kvh = Math.floor((h * kvHeads) / heads);
        if (regroup <= 0) {
          fn({ b: 0, h, kvh, token0: start, qToken0: start, step: 1, nQ: len, nK: keys, layout: headLayout[h] });
          continue;
        }
        for (let g = 0; g < groups; g++) {
          const rows = Math.max(0, Math.ceil((len - g) / step));
          fn({ b: 0, h, kvh, token0: start + g, qToken0: start + g, step, nQ: rows, nK: Math.max(0, Math.ceil((keys - g) / step)), layout: headLayout[h] });
        }
      }
    }
    return;
  }
  for (let b = 0; b < batch; b++) {
    const len = keyLengths ? keyLengths[b] : nK;
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor((h * kvHeads) / heads);
      if (regroup <= 0) {
        fn({ b, h, kvh, token0: 0, qToken0: 0, step: 1, nQ: nCtx, nK: len, layout: headLayout[h] });
        continue;
      }
      for (let g = 0; g < groups; g++) {
        const q = groupRows(g, step, nCtx, nK);
        fn({ b, h, kvh, token0: g, qToken0: q.qToken0, step, nQ: q.nQ, nK: Math.max(0, Math.ceil((len - g) / step)), layout: headLayout[h] + q.shift });
      }
    }
  }
}

export function checkNotDisposed(disposed: boolean): void {
  if (disposed) throw new DisposedError();
}
