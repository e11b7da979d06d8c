// Plan: what one forward call computes, independent of the backend. Turns the config and
// a tensor shape into sequences (one per batch × head, or batch × head × group for
// 'strided'), their block layouts, and the useful work (allowed pairs, FLOPs).
// see: openai/sparse_attention attention.py (strided_transpose, get_blocksparse_obj)
import type { Config } from './config.js';
import { DisposedError, argError } from './errors.js';
import { BandLayout } from './layout/band.js';
import { CsrLayout, type Layout } from './layout/block-layout.js';
import { CallBudget, FixedLayout, patternLayout } from './layout/pattern.js';
import { namedLayout } from './layout/named.js';

/**
 * Block layouts for one nCtx; cached per instance. The layouts are counted without being
 * built; a backend that runs the call builds their CSR (Layout.csr) after checking its room.
 */
export interface Geometry {
  /** Sequence rows are the tokens g, g + regroup, g + 2·regroup… ('strided'); else 0. */
  readonly regroup: number;
  /** Rows of the longest sequence: nCtx, or ceil(nCtx / L) for 'strided'. */
  readonly seqLen: number;
  readonly blockSize: number;
  readonly layouts: readonly Layout[];
  /** Index into layouts for each head. */
  readonly headLayout: Int32Array;
}

export interface Plan extends Geometry {
  readonly batch: number;
  readonly nCtx: number;
  readonly nEmbd: number;
  readonly heads: number;
  readonly headDim: number;
  readonly mode: Config['mode'];
  readonly causal: boolean;
  readonly keyLengths: Int32Array | null;
  /** Allowed (query, key) pairs over every batch item and head. */
  readonly allowedPairs: number;
  /** 4 · headDim · allowedPairs: the multiply-adds of Q·Kᵀ and P·V, counted as 2 FLOPs each. */
  readonly usefulFlops: number;
  /** 4 · headDim · blockSize² · visited block pairs: the work of a kernel that computes whole blocks. */
  readonly visitedFlops: number;
  /** allowedPairs / (batch · heads · nCtx²). */
  readonly density: number;
  /** Entries of the layouts over every head (× groups for 'strided'), not counting batch: plan().blocksVisited. */
  readonly blocksVisited: number;
}

/** One (batch, head[, group]) attention problem. */
export interface Sequence {
  b: number;
  h: number;
  /** Token index of the sequence's first row. */
  token0: number;
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
export function buildGeometry(config: Config, nCtx: number, bandBlock?: number): Geometry {
  const { mode, causal, heads } = config;
  const L = config.localAttnCtx;
  const one = new Int32Array(heads);
  const about = (nB: number, bs: number) => `at nCtx ${nCtx} (${nB} × ${nB} blocks of ${bs})`;
  if (mode === 'all' || mode === 'local' || mode === 'strided') {
    const seqLen = mode === 'strided' ? Math.ceil(nCtx / L) : nCtx;
    const bs = bandBlock ?? bandBlockSize(config.blocksize, seqLen);
    let lo = -Infinity;
    let hi = causal ? 0 : Infinity;
    if (mode === 'local') {
      lo = -(L - 1);
      if (!causal) hi = L - 1;
    }
    // 'strided' regrouped: each group is a plain causal (or full) attention.
    const nB = Math.ceil(seqLen / bs);
    const where = mode === 'strided' ? `at nCtx ${nCtx} (sequences of ${seqLen} regrouped tokens: ${nB} × ${nB} blocks of ${bs})` : about(nB, bs);
    const label = `the block layout of mode '${mode}'${causal ? '' : ' (bidirectional)'} ${where}`;
    return { regroup: mode === 'strided' ? L : 0, seqLen, blockSize: bs, layouts: [new BandLayout(seqLen, bs, lo, hi, label)], headLayout: one };
  }
  const bs = config.blocksize;
  const nB = Math.ceil(nCtx / bs);
  if (mode === 'fixed') {
    const layouts: Layout[] = [];
    const params = { localAttnCtx: L, numVerts: config.numVerts, vertsize: config.vertsize, causal };
    for (let h = 0; h < config.numVerts; h++) {
      const label = `the block layout of mode 'fixed'${causal ? '' : ' (bidirectional)'}${config.numVerts > 1 ? ` (pattern ${h})` : ''} ${about(nB, bs)}`;
      layouts.push(new FixedLayout(nB, bs, h, params, label));
    }
    const headLayout = Int32Array.from({ length: heads }, (_, h) => h % config.numVerts);
    return { regroup: 0, seqLen: nCtx, blockSize: bs, layouts, headLayout };
  }
  if (config.pattern) {
    // 'longformer' / 'bigbird': one layout, or one per head (bigbird's differentLayoutPerHead).
    const count = config.patternPerHead ? heads : 1;
    const layouts: Layout[] = [];
    for (let h = 0; h < count; h++) {
      const label = `the block layout of mode '${mode}'${causal ? '' : ' (bidirectional)'}${count > 1 ? ` (head ${h})` : ''} ${about(nB, bs)}`;
      layouts.push(new CsrLayout(namedLayout(config.pattern, h, nB, bs, label), label));
    }
    const headLayout = count > 1 ? Int32Array.from({ length: heads }, (_, h) => h) : one;
    return { regroup: 0, seqLen: nCtx, blockSize: bs, layouts, headLayout };
  }
  // custom
  if (nB > config.customBlockCount) {
    throw argError(
      'nCtx',
      `at most ${config.customBlockCount * bs} (the custom layout covers ${config.customBlockCount} blocks of ${bs})`,
      nCtx,
    );
  }
  const blocks = config.customBlocks!;
  const mask = config.mask;
  const perHead = config.customPerHead || mask !== null;
  const count = perHead ? heads : 1;
  const label = `the custom block layout ${about(nB, bs)}`;
  const budget = new CallBudget(label);
  // A function layout is called nB² times per head: refused before the first call when too many.
  if (config.customBlockCount === Infinity) budget.spend(count * nB * nB);
  const layouts: Layout[] = [];
  for (let h = 0; h < count; h++) {
    const csr = patternLayout(nB, bs, (qb, kb) => blocks(h, qb, kb), mask ? (i, j) => Boolean(mask(h, i, j)) : null, budget, label);
    layouts.push(new CsrLayout(csr, label));
  }
  const headLayout = perHead ? Int32Array.from({ length: heads }, (_, h) => h) : one;
  return { regroup: 0, seqLen: nCtx, blockSize: bs, layouts, headLayout };
}

export function buildPlan(
  config: Config,
  geometry: Geometry,
  shape: readonly [number, number, number],
  keyLengths: Int32Array | null,
): Plan {
  const [batch, nCtx, nEmbd] = shape;
  const heads = config.heads;
  const headDim = nEmbd / heads;
  const { pairs, blocks } = countWork(geometry, batch, nCtx, keyLengths);
  const groups = geometry.regroup > 0 ? Math.min(geometry.regroup, nCtx) : 1;
  let entries = 0n;
  for (let h = 0; h < heads; h++) entries += geometry.layouts[geometry.headLayout[h]].entries;
  const bs = BigInt(geometry.blockSize);
  // Exact integers, rounded once: exact below 2^53, the nearest double above.
  const allowedPairs = Number(pairs);
  return {
    ...geometry,
    batch,
    nCtx,
    nEmbd,
    heads,
    headDim,
    mode: config.mode,
    causal: config.causal,
    keyLengths,
    allowedPairs,
    usefulFlops: Number(4n * BigInt(headDim) * pairs),
    visitedFlops: Number(4n * BigInt(headDim) * blocks * bs * bs),
    density: allowedPairs / (batch * heads * nCtx * nCtx),
    blocksVisited: Number(entries * BigInt(groups)),
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
  keyLengths: Int32Array | null,
): { pairs: bigint; blocks: bigint } {
  const headsPer = new Map<number, number>();
  for (const li of geometry.headLayout) headsPer.set(li, (headsPer.get(li) ?? 0) + 1);
  const itemsPer = new Map<number, number>();
  if (keyLengths) for (const len of keyLengths) itemsPer.set(len, (itemsPer.get(len) ?? 0) + 1);
  else itemsPer.set(nCtx, batch);
  const memo = new Map<string, [bigint, bigint]>();
  let pairs = 0n;
  let blocks = 0n;
  for (const [len, items] of itemsPer) {
    for (const run of groupRuns(geometry.regroup, nCtx, len)) {
      for (const [li, nh] of headsPer) {
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

/**
 * The groups of one batch item as runs of equal sequence lengths: group g has
 * ceil((nCtx - g) / step) queries and ceil((len - g) / step) keys, which change only at
 * g = nCtx mod step and g = len mod step. Without regrouping: one run, nCtx × len.
 */
function groupRuns(regroup: number, nCtx: number, len: number): { nQ: number; nK: number; n: number }[] {
  const groups = regroup > 0 ? Math.min(regroup, nCtx) : 1;
  const step = regroup > 0 ? regroup : 1;
  const rowsFrom = (t: number, g: number) => Math.max(0, Math.ceil((t - g) / step));
  const cuts = [...new Set([0, nCtx % step, len % step, groups])].filter((g) => g <= groups).sort((a, b) => a - b);
  const runs: { nQ: number; nK: number; n: number }[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    runs.push({ nQ: rowsFrom(nCtx, cuts[i]), nK: rowsFrom(len, cuts[i]), n: cuts[i + 1] - cuts[i] });
  }
  return runs;
}

/** Calls fn for every non-empty sequence of the plan, in (b, h, group) order. */
export function forEachSequence(
  plan: Pick<Plan, 'batch' | 'heads' | 'nCtx' | 'regroup' | 'headLayout' | 'keyLengths'>,
  fn: (s: Sequence) => void,
): void {
  const { batch, heads, nCtx, regroup, headLayout, keyLengths } = plan;
  const groups = regroup > 0 ? Math.min(regroup, nCtx) : 1;
  const step = regroup > 0 ? regroup : 1;
  const rowsFrom = (len: number, g: number) => Math.max(0, Math.ceil((len - g) / step));
  for (let b = 0; b < batch; b++) {
    const len = keyLengths ? keyLengths[b] : nCtx;
    for (let h = 0; h < heads; h++) {
      for (let g = 0; g < groups; g++) {
        fn({ b, h, token0: g, step, nQ: rowsFrom(nCtx, g), nK: rowsFrom(len, g), layout: headLayout[h] });
      }
    }
  }
}

export function checkNotDisposed(disposed: boolean): void {
  if (disposed) throw new DisposedError();
}
