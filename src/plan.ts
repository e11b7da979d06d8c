// Plan: what one forward call computes, independent of the backend. Turns the config and
// a tensor shape into sequences (one per batch × head, or batch × head × group for
// 'strided'), their block layouts, and the useful work (allowed pairs, FLOPs).
// see: openai/sparse_attention attention.py (strided_transpose, get_blocksparse_obj)
import type { Config } from './config.js';
import { DisposedError, argError, checkPositiveInt } from './errors.js';
import { bandLayout } from './layout/band.js';
import { type BlockLayout, countAllowedPairs } from './layout/block-layout.js';
import { fixedLayout, patternLayout } from './layout/pattern.js';

export interface Tensor {
  data: Float32Array;
  shape: readonly number[];
}

export interface ForwardOptions {
  /** Per batch item, keys at positions >= keyLengths[b] are masked out. */
  keyLengths?: ArrayLike<number>;
  /** Aborts the call (its promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /**
   * Float32Array of batch·nCtx·nEmbd floats the result is written to (and returned as
   * `data`), instead of a new array: a caller that reuses it avoids allocating (and page
   * faulting) a fresh result per call. A tensor from createTensor() is written in place by
   * the CPU kernel. Must not overlap q, k or v.
   */
  out?: Float32Array;
}

/** Block layouts for one nCtx; cached per instance. */
export interface Geometry {
  /** Sequence rows are the tokens g, g + regroup, g + 2·regroup… ('strided'); else 0. */
  readonly regroup: number;
  /** Rows of the longest sequence: nCtx, or ceil(nCtx / L) for 'strided'. */
  readonly seqLen: number;
  readonly blockSize: number;
  readonly layouts: readonly BlockLayout[];
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

/** Checks q, k, v and returns [batch, nCtx, nEmbd]. */
export function checkInputs(config: Config, q: unknown, k: unknown, v: unknown): [number, number, number] {
  const shape = checkTensor('q', q);
  const ks = checkTensor('k', k);
  const vs = checkTensor('v', v);
  for (const [name, s] of [['k', ks], ['v', vs]] as const) {
    if (s[0] !== shape[0] || s[1] !== shape[1] || s[2] !== shape[2]) {
      throw argError(`${name}.shape`, `equal to q.shape [${shape.join(', ')}]`, s);
    }
  }
  checkHeads(shape, config.heads);
  return shape;
}

/** Checks forward's `out` option against the call's shape and inputs; returns it. */
export function checkOut(out: unknown, shape: readonly number[], inputs: readonly Float32Array[]): Float32Array | undefined {
  if (out === undefined) return undefined;
  const n = shape[0] * shape[1] * shape[2];
  if (!(out instanceof Float32Array) || out.length !== n) {
    throw argError('out', `a Float32Array of ${n} floats (batch·nCtx·nEmbd for [${shape.join(', ')}])`, out);
  }
  for (const [name, t] of inputs.map((t, i) => [['q', 'k', 'v'][i], t] as const)) {
    const apart = out.buffer !== t.buffer || out.byteOffset + out.byteLength <= t.byteOffset || t.byteOffset + t.byteLength <= out.byteOffset;
    if (!apart) throw argError('out', `memory apart from ${name}.data (the inputs are never modified)`, out);
  }
  return out;
}

/** Checks a [batch, nCtx, nEmbd] shape of positive integers. */
export function checkShape(name: string, shape: unknown): asserts shape is [number, number, number] {
  if (!Array.isArray(shape) || shape.length !== 3) throw argError(name, 'an array [batch, nCtx, nEmbd]', shape);
  shape.forEach((x, i) => checkPositiveInt(`${name}[${i}]`, x));
}

export function checkHeads(shape: readonly [number, number, number], heads: number): void {
  if (shape[2] % heads !== 0) {
    throw argError('nEmbd', `a multiple of heads (${heads}); the shape is [${shape.join(', ')}]`, shape[2]);
  }
}

function checkTensor(name: string, t: unknown): [number, number, number] {
  if (t === null || typeof t !== 'object') throw argError(name, 'a tensor { data: Float32Array, shape: [batch, nCtx, nEmbd] }', t);
  const { data, shape } = t as Partial<Tensor>;
  if (!(data instanceof Float32Array)) throw argError(`${name}.data`, 'a Float32Array', data);
  checkShape(`${name}.shape`, shape);
  const n = shape[0] * shape[1] * shape[2];
  if (data.length !== n) {
    const detached = data.length === 0 && data.buffer.byteLength === 0;
    throw argError(
      `${name}.data.length`,
      `${n} for shape [${shape.join(', ')}]${detached ? ' (its buffer is detached)' : ''}`,
      data.length,
    );
  }
  return shape as [number, number, number];
}

export function checkKeyLengths(keyLengths: unknown, batch: number, nCtx: number): Int32Array | null {
  if (keyLengths === undefined || keyLengths === null) return null;
  if (!(Array.isArray(keyLengths) || ArrayBuffer.isView(keyLengths)) || (keyLengths as ArrayLike<number>).length !== batch) {
    throw argError('keyLengths', `an array of ${batch} lengths (one per batch item)`, keyLengths);
  }
  const out = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const x = (keyLengths as ArrayLike<number>)[b];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > nCtx) {
      throw argError(`keyLengths[${b}]`, `an integer in [0, ${nCtx}]`, x);
    }
    out[b] = x;
  }
  return out;
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
 */
export function buildGeometry(config: Config, nCtx: number, bandBlock?: number): Geometry {
  const { mode, causal, heads } = config;
  const L = config.localAttnCtx;
  const one = new Int32Array(heads);
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
    return { regroup: mode === 'strided' ? L : 0, seqLen, blockSize: bs, layouts: [bandLayout(seqLen, bs, lo, hi)], headLayout: one };
  }
  const bs = config.blocksize;
  const nB = Math.ceil(nCtx / bs);
  if (mode === 'fixed') {
    const layouts: BlockLayout[] = [];
    for (let h = 0; h < config.numVerts; h++) {
      layouts.push(fixedLayout(nB, bs, h, { localAttnCtx: L, numVerts: config.numVerts, vertsize: config.vertsize, causal }));
    }
    const headLayout = Int32Array.from({ length: heads }, (_, h) => h % config.numVerts);
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
  const layouts: BlockLayout[] = [];
  for (let h = 0; h < (perHead ? heads : 1); h++) {
    layouts.push(
      patternLayout(nB, bs, (qb, kb) => blocks(h, qb, kb), mask ? (i, j) => Boolean(mask(h, i, j)) : null),
    );
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
  const base = {
    ...geometry,
    batch,
    nCtx,
    nEmbd,
    heads,
    headDim: nEmbd / heads,
    mode: config.mode,
    causal: config.causal,
    keyLengths,
    allowedPairs: 0,
    usefulFlops: 0,
    visitedFlops: 0,
    density: 0,
  };
  let pairs = 0;
  let blocks = 0;
  const memo = new Map<string, [number, number]>();
  forEachSequence(base, (s) => {
    const key = `${s.layout}:${s.nQ}:${s.nK}`;
    let n = memo.get(key);
    if (n === undefined) {
      const layout = geometry.layouts[s.layout];
      n = [countAllowedPairs(layout, s.nQ, s.nK), countVisitedBlocks(layout, s.nQ, s.nK)];
      memo.set(key, n);
    }
    pairs += n[0];
    blocks += n[1];
  });
  const bs = geometry.blockSize;
  return {
    ...base,
    allowedPairs: pairs,
    usefulFlops: 4 * base.headDim * pairs,
    visitedFlops: 4 * base.headDim * blocks * bs * bs,
    density: pairs / (batch * heads * nCtx * nCtx),
  };
}

/** Block pairs a kernel visits for one sequence of nQ queries and nK keys. */
function countVisitedBlocks(layout: BlockLayout, nQ: number, nK: number): number {
  const bs = layout.blockSize;
  const nKB = Math.ceil(nK / bs);
  let n = 0;
  for (let qb = 0; qb < Math.min(layout.nQB, Math.ceil(nQ / bs)); qb++) {
    for (let e = layout.rowPtr[qb]; e < layout.rowPtr[qb + 1]; e++) if (layout.cols[e] < nKB) n++;
  }
  return n;
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
