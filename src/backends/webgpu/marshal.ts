// Host-side data for one dispatch of shaders/bsattn_fwd.wgsl: the `meta` word buffer
// (head → layout map, key lengths, CSR layouts, packed token masks) and the uniform
// block. A dispatch covers one chunk of the call: a range of batch items × heads.
import { type Plan, groupRows } from '../../plan.js';
import type { BlockLayout, Layout } from '../../layout/block-layout.js';

/** A batch × head range of the call whose q/k/v/o fit one binding each. */
export interface Chunk {
  b0: number;
  b1: number;
  h0: number;
  h1: number;
}

/** Words of layoutWords(layout), from its counts (without building its CSR). */
export function layoutWordCount(layout: Layout): number {
  const bs = layout.blockSize;
  return layout.nQB + 1 + 2 * Number(layout.entries) + layout.maskCount * bs * Math.ceil(bs / 32);
}

/** Per layout: rowPtr · cols · maskIds (-1 as 0xffffffff) · mask bits [nMasks][bs][ceil(bs/32)]. */
function layoutWords(layout: BlockLayout): Uint32Array {
  const bs = layout.blockSize;
  const mw = Math.ceil(bs / 32);
  const nnz = layout.cols.length;
  const out = new Uint32Array(layout.rowPtr.length + 2 * nnz + layout.masks.length * bs * mw);
  let at = 0;
  out.set(layout.rowPtr, at);
  at += layout.rowPtr.length;
  out.set(layout.cols, at);
  at += nnz;
  out.set(new Uint32Array(layout.maskIds.buffer, layout.maskIds.byteOffset, nnz), at);
  at += nnz;
  for (const mask of layout.masks) {
    for (let r = 0; r < bs; r++) {
      for (let c = 0; c < bs; c++) if (mask[r * bs + c]) out[at + r * mw + (c >> 5)] |= 1 << (c & 31);
    }
    at += bs * mw;
  }
  return out;
}

const layoutCache = new WeakMap<BlockLayout, Uint32Array>();

/**
 * meta words: headLayout [heads of the chunk] · keyLengths [batch items of the chunk] ·
 * layoutInfo [nLayouts][4] (word offsets of rowPtr, cols, maskIds, mask bits) · layouts.
 */
export function buildMeta(plan: Plan, chunk: Chunk): { words: Uint32Array; keyLengthsAt: number; layoutInfoAt: number } {
  const nh = chunk.h1 - chunk.h0;
  const nb = chunk.b1 - chunk.b0;
  const parts = plan.layouts.map((l) => {
    let w = layoutCache.get(l);
    if (!w) layoutCache.set(l, (w = layoutWords(l)));
    return w;
  });
  const keyLengthsAt = nh;
  const layoutInfoAt = nh + nb;
  let total = layoutInfoAt + 4 * parts.length;
  const starts = parts.map((p) => {
    const s = total;
    total += p.length;
    return s;
  });
  const words = new Uint32Array(total);
  for (let h = 0; h < nh; h++) words[h] = plan.headLayout[chunk.h0 + h];
  for (let b = 0; b < nb; b++) words[keyLengthsAt + b] = plan.keyLengths ? plan.keyLengths[chunk.b0 + b] : plan.nK;
  parts.forEach((p, i) => {
    const l = plan.layouts[i];
    const nnz = l.cols.length;
    const s = starts[i];
    words.set([s, s + l.rowPtr.length, s + l.rowPtr.length + nnz, s + l.rowPtr.length + 2 * nnz], layoutInfoAt + 4 * i);
    words.set(p, s);
  });
  return { words, keyLengthsAt, layoutInfoAt };
}

export interface Dispatch {
  /** The uniform block (64 bytes, see Params in the shader). */
  params: ArrayBuffer;
  gridX: number;
  gridY: number;
}

/** Uniforms and grid for one chunk; bm is the query tile height of the pipeline. */
export function buildDispatch(plan: Plan, chunk: Chunk, bm: number, meta: { keyLengthsAt: number; layoutInfoAt: number }, maxPerDim: number): Dispatch {
  const nh = chunk.h1 - chunk.h0;
  const nb = chunk.b1 - chunk.b0;
  const groups = plan.regroup > 0 ? Math.min(plan.regroup, plan.nCtx) : 1;
  const step = plan.regroup > 0 ? plan.regroup : 1;
  const tilesPerSeq = Math.ceil(Math.ceil(plan.nCtx / step) / bm);
  const nSeq = nb * nh * groups;
  const total = nSeq * tilesPerSeq;
  const gridX = Math.min(total, maxPerDim);
  const gridY = Math.ceil(total / gridX);
  const params = new ArrayBuffer(64);
  const u = new Uint32Array(params);
  const f = new Float32Array(params);
  u.set([nb, nh, groups, plan.nCtx, nh * plan.headDim, plan.headDim, step, tilesPerSeq, nSeq, gridX, meta.layoutInfoAt, meta.keyLengthsAt]);
  f[12] = Math.LOG2E / Math.sqrt(plan.headDim);
  f[13] = -Infinity;
  return { params, gridX, gridY };
}

/** Where the kernels read K/V row r of (batch item b, K/V head kvh, group g): element (b + b0)·bItem + kvh·headDim + g·gItem + r·rowStride. */
export interface KvAddressing {
  bItem: number;
  gItem: number;
  rowStride: number;
  /** First batch item of the chunk in the K/V binding (a KV cache is bound whole). */
  b0: number;
}

/** K/V uploaded per call ([batch, nK, kvHeads·headDim], a chunk's items from 0): rows of a group are L tokens apart. */
export function uploadedKv(plan: Plan): KvAddressing {
  const kvE = plan.kvHeads * plan.headDim;
  return plan.regroup > 0 ? { bItem: plan.nK * kvE, gItem: kvE, rowStride: plan.regroup * kvE, b0: 0 } : { bItem: plan.nK * kvE, gItem: 0, rowStride: kvE, b0: 0 };
}

/** Query rows of the longest sequence: nQ, or for 'strided' the most any group holds (plan.ts groupRows). */
export function maxSequenceRows(plan: Plan): number {
  if (plan.regroup <= 0) return plan.nCtx;
  let most = 0;
  for (let g = 0; g < Math.min(plan.regroup, plan.nK); g++) most = Math.max(most, groupRows(g, plan.regroup, plan.nCtx, plan.nK).nQ);
  return most;
}

/**
 * Uniforms (96 bytes: Params with the XATTN fields) and grid for one chunk of an inference
 * shape on the forward program: n_ctx counts keys, the queries are n_q rows aligned bottom-right.
 */
export function buildDispatchX(plan: Plan, chunk: Chunk, bm: number, meta: { keyLengthsAt: number; layoutInfoAt: number }, maxPerDim: number, kv: KvAddressing): Dispatch {
  const nh = chunk.h1 - chunk.h0;
  const nb = chunk.b1 - chunk.b0;
  const groups = plan.regroup > 0 ? Math.min(plan.regroup, plan.nK) : 1;
  const step = plan.regroup > 0 ? plan.regroup : 1;
  const tilesPerSeq = Math.max(1, Math.ceil(maxSequenceRows(plan) / bm));
  const nSeq = nb * nh * groups;
  const total = nSeq * tilesPerSeq;
  const gridX = Math.min(total, maxPerDim);
  const gridY = Math.ceil(total / gridX);
  const params = new ArrayBuffer(96);
  const u = new Uint32Array(params);
  const f = new Float32Array(params);
  u.set([nb, nh, groups, plan.nK, nh * plan.headDim, plan.headDim, step, tilesPerSeq, nSeq, gridX, meta.layoutInfoAt, meta.keyLengthsAt]);
  f[12] = Math.LOG2E / Math.sqrt(plan.headDim);
  f[13] = -Infinity;
  u.set([plan.nCtx, step > 1 ? plan.nK - plan.nCtx : 0, plan.kvHeads, kv.bItem, plan.headDim, kv.gItem, kv.rowStride, kv.b0], 16);
  return { params, gridX, gridY };
}

/**
 * Splits the call so that each chunk's [batch items, nCtx, heads · headDim] tensor fits
 * maxBytes: whole batch items when one fits, else head ranges of one item. null when a
 * single head of a single item is already too large. `es`: bytes per value (4, or 2 for halves).
 */
export function planChunks(plan: Plan, maxBytes: number, es = 4): Chunk[] | null {
  const item = plan.nCtx * plan.nEmbd * es;
  const chunks: Chunk[] = [];
  if (item <= maxBytes) {
    const per = Math.max(1, Math.floor(maxBytes / item));
    for (let b0 = 0; b0 < plan.batch; b0 += per) chunks.push({ b0, b1: Math.min(plan.batch, b0 + per), h0: 0, h1: plan.heads });
    return chunks;
  }
  const perHead = plan.nCtx * plan.headDim * es;
  if (perHead > maxBytes) return null;
  const hs = Math.floor(maxBytes / perHead);
  for (let b = 0; b < plan.batch; b++) {
    for (let h0 = 0; h0 < plan.heads; h0 += hs) chunks.push({ b0: b, b1: b + 1, h0, h1: Math.min(plan.heads, h0 + hs) });
  }
  return chunks;
}
