// Block-sparse attention forward pass, flash-style (FlashAttention-2 loop order), f32.
// One build per ISA: `__simd128` (f32x4 mul+add), `__relaxed` (f32x4 relaxed FMA) and
// `__scalar`, selected at compile time by ASC_FEATURE_SIMD / ASC_FEATURE_RELAXED_SIMD; the
// per-block steps are one code for all of them, generic over the lane type (block.ts,
// lanes.ts). This file: the two phases' entry points and the walk of one query block.
// Storage may be IEEE half (params.dtype, dtype 'float16'): rows are converted where they
// enter (packing K and V, loading Q, widening a half cache's key block) and leave (storing
// O, rounded to nearest even) — half.ts; everything in between is the f32 code.
//
// The work is a list of tasks over sequences. A sequence is one (batch, head[, group])
// problem whose rows sit at a fixed byte stride in the q/k/v/o tensors: nEmbd·4 for the
// band modes, L·nEmbd·4 for 'strided' (OpenAI's regrouping, read in place, no gather).
// Per query block of BLOCK rows we walk its key blocks from the CSR layout:
//   S = Q·Kᵀ (scale·log2 e folded into Q), masked on partial blocks only,
//   m_new = max(m_i, rowmax S), P = 2^(S - m_new), l_i = l_i·α + rowsum P,
//   O = O·α + P·V with α = 2^(m_i - m_new), and O / l_i once at the end.
// Everything is kept transposed (query rows along the SIMD lanes): Qᵗ [d][BLOCK],
// Sᵗ [BLOCK][BLOCK], Oᵗ [d][BLOCK]. Row max and sum become lane-wise, K and V are read
// straight from the tensors with load32_splat, and any head dim works without a tail.
// Score modifiers (params.mods, src/config-mods.ts), in base 2 like S: soft-capping on the
// score registers (scoresCapped) and ALiBi in the softmax pass (softmaxAlibi) of each
// visited block; a sink joins l_i once at the end, and lse = ln 2 · (m_i + log2 l_i) is
// stored beside O. A call without them runs the loop unchanged (chosen per call, a branch
// per block).
// see: Dao, "FlashAttention-2" (2023); Child et al., "Sparse Transformers" (2019).

// The parameter block, sequence, task and mask records the host writes are declared once,
// in src/backends/wasm/abi.ts; abi.generated.ts holds their byte offsets for this side.
import {
  P_BLOCK, P_COUNTER, P_GROUPS, P_HEADS, P_HEAD_DIM, P_N_TASKS, P_PACK_CHUNKS, P_PACK_COUNTER, P_PACK_UNITS, P_SCALE, P_SEQS, P_TASKS,
  SEQ_COLS, SEQ_Q_HEADS, SEQ_K, SEQ_KV_STRIDE, SEQ_K_SRC, SEQ_MASKS, SEQ_MASK_IDS, SEQ_N_K, SEQ_N_Q, SEQ_O, SEQ_Q, SEQ_ROW_PTR, SEQ_SRC_STRIDE,
  SEQ_STRIDE, SEQ_V, SEQ_V_SRC, SEQ_WORDS, TASK_QB0, TASK_QB1, TASK_SEQ, TASK_SHIFT,
  ABI_HASH, MASK_RANGE_SHIFT, MASK_TILE_SHIFT, PACK_ROWS, P_DTYPE, DTYPE_HALF_IO, DTYPE_HALF_KV,
  P_MODS, P_SOFTCAP, P_HEAD_MODS, P_SEQ_MODS, SEQ_MOD_WORDS, SEQ_MOD_LSE, SEQ_MOD_LSE_ROW, SEQ_MOD_LSE_HEAD, SEQ_MOD_HEAD,
  SEQ_MOD_Q_POS, SEQ_MOD_DIST, MOD_ALIBI, MOD_SINKS, MOD_SOFTCAP,
} from './abi.generated';
import { loadQueryGroupTHalf, loadQueryTHalf, packKeys4Half, storeOutputGroupHalf, storeOutputHalf, widenRun } from './half';
import { accumulate, scores, scoresCapped, softmax, softmaxAlibi } from './block';
import { copyRow, loadQueryGroupT, loadQueryT, packKeys4, storeOutput, storeOutputGroup } from './rows';

/**
 * Phase 1: packs every sequence's K and V rows contiguous, [nK][d]. Rows nEmbd·4 apart
 * (L·nEmbd·4 for 'strided') alias in L1 when the distance is a multiple of 4 KiB, and
 * the attention phase reads each key block many times. A task packs PACK_ROWS tokens of
 * one (batch, group) for every head at once, so each token's whole input row is read
 * front to back rather than gathered in d-float pieces. Threads share the tasks through
 * the pack counter; the host puts a barrier between the phases (in JS: Atomics.wait
 * inside wasm corrupted SIMD state on resume in Node 20's V8, seen here).
 */
export function bsattn_pack_f32(params: usize): void {
  const seqs = <usize>load<i32>(params + P_SEQS);
  const d = <usize>load<i32>(params + P_HEAD_DIM);
  const packCounter = <usize>load<i32>(params + P_PACK_COUNTER);
  const heads = load<i32>(params + P_HEADS);
  const groups = load<i32>(params + P_GROUPS);
  const units = load<i32>(params + P_PACK_UNITS);
  const chunks = load<i32>(params + P_PACK_CHUNKS);
  // half inputs: converted to f32 here, the one pass that reads every K and V row anyway
  const half = (load<i32>(params + P_DTYPE) & DTYPE_HALF_IO) != 0;
  const bytes = d << 2;
  const headStep = <usize>(groups * SEQ_WORDS * 4);
  while (true) {
    const t = next(packCounter);
    if (t >= units * chunks) break;
    const unit = t / chunks;
    const c0 = (t % chunks) * PACK_ROWS;
    const first = seqs + <usize>(((unit / groups) * heads * groups + unit % groups) * SEQ_WORDS * 4);
    if (load<i32>(first + SEQ_K_SRC) == 0) continue;
    const c1 = min(load<i32>(first + SEQ_N_K), c0 + PACK_ROWS);
    const srcStride = <usize>load<i32>(first + SEQ_SRC_STRIDE);
    // V'[(b, h, g)][c] = V[token c of group g][h·d .. h·d + d), every head h
    // K'[(b, h, g)][c / 4][k][c % 4] = K[token c][h·d + k]: 4 keys interleaved
    for (let c = c0; c < c1; c += 4) {
      const n = min(4, c1 - c);
      let seq = first;
      for (let h = 0; h < heads; h++) {
        // 0: another sequence packs this K/V head (query heads sharing it, GQA)
        if (load<i32>(seq + SEQ_K_SRC) == 0) {
          seq += headStep;
          continue;
        }
        const vSrc = <usize>load<i32>(seq + SEQ_V_SRC) + <usize>c * srcStride;
        const vDst = <usize>load<i32>(seq + SEQ_V) + <usize>c * bytes;
        const kDst = <usize>load<i32>(seq + SEQ_K) + <usize>c * bytes;
        const kSrc = <usize>load<i32>(seq + SEQ_K_SRC) + <usize>c * srcStride;
        if (half) {
          for (let i = 0; i < n; i++) widenRun(vDst + <usize>i * bytes, vSrc + <usize>i * srcStride, <i32>d);
          packKeys4Half(kDst, kSrc, srcStride, n, d);
        } else {
          for (let i = 0; i < n; i++) copyRow(vDst + <usize>i * bytes, vSrc + <usize>i * srcStride, bytes);
          packKeys4(kDst, kSrc, srcStride, n, d);
        }
        seq += headStep;
      }
    }
  }
}

/**
 * Phase 2: attention tasks (a run of query blocks of one sequence each) until the shared
 * counter passes nTasks. Returns the number of tasks this thread ran.
 */
export function bsattn_fwd_f32(params: usize, scratch: usize): i32 {
  const tasks = <usize>load<i32>(params + P_TASKS);
  const nTasks = load<i32>(params + P_N_TASKS);
  const counter = <usize>load<i32>(params + P_COUNTER);
  const seqs = <usize>load<i32>(params + P_SEQS);
  const d = load<i32>(params + P_HEAD_DIM);
  const bs = load<i32>(params + P_BLOCK);
  const scale = load<f32>(params + P_SCALE);
  const dtype = load<i32>(params + P_DTYPE);
  const mods = load<i32>(params + P_MODS);
  const cap = load<f32>(params + P_SOFTCAP);
  const headMods = <usize>load<i32>(params + P_HEAD_MODS);
  const seqMods = <usize>load<i32>(params + P_SEQ_MODS);
  let done = 0;
  while (true) {
    const t = next(counter);
    if (t >= nTasks) break;
    const task = tasks + (<usize>t << TASK_SHIFT);
    const si = load<i32>(task, TASK_SEQ);
    const seq = seqs + <usize>(si * SEQ_WORDS * 4);
    const modRec = mods != 0 ? seqMods + <usize>(si * SEQ_MOD_WORDS * 4) : 0;
    const qb1 = load<i32>(task, TASK_QB1);
    for (let qb = load<i32>(task, TASK_QB0); qb < qb1; qb++) {
      queryBlock(seq, qb, d, bs, scale, scratch, dtype, mods, modRec, headMods, cap);
    }
    done++;
  }
  return done;
}

/** Takes the next index from a counter shared by the threads of this call. */
// @ts-ignore: decorator
@inline function next(counter: usize): i32 {
  if (ASC_FEATURE_THREADS) return atomic.add<i32>(counter, 1);
  const t = load<i32>(counter);
  store<i32>(counter, t + 1);
  return t;
}

/** Scratch bytes one thread needs: a widened K', V' block [bs][d] each, Qᵗ, Oᵗ [d][bs], Sᵗ [bs][bs], 6 row vectors (the host asks). */
export function bsattn_scratch_bytes(d: i32, bs: i32): i32 {
  return (4 * d * bs + bs * bs + 6 * bs) * 4;
}

/** Bytes of one mask record: a range entry per MASK_TILE_ROWS rows, then [bs][bs] i32 (test/abi.test.ts). */
export function bsattn_mask_record_bytes(bs: i32): i32 {
  return <i32>maskRecordBytes(<usize>bs);
}

/** ABI_HASH of the tables this build was compiled from: the host refuses a build of other tables. */
export function bsattn_abi_hash(): u32 {
  return ABI_HASH;
}

/** Bytes of a mask record's range entries, which the [bs][bs] mask follows. */
// @ts-ignore: decorator
@inline function maskRangesBytes(ubs: usize): usize {
  return (ubs >> MASK_TILE_SHIFT) << MASK_RANGE_SHIFT;
}

// @ts-ignore: decorator
@inline function maskRecordBytes(ubs: usize): usize {
  return maskRangesBytes(ubs) + ubs * ubs * 4;
}

function queryBlock(seq: usize, qb: i32, d: i32, bs: i32, scale: f32, scratch: usize, dtype: i32, mods: i32, modRec: usize, headMods: usize, cap: f32): void {
  const qBase = <usize>load<i32>(seq + SEQ_Q);
  const oBase = <usize>load<i32>(seq + SEQ_O);
  const stride = <usize>load<i32>(seq + SEQ_STRIDE);
  const qHeads = load<i32>(seq + SEQ_Q_HEADS);
  const nQ = load<i32>(seq + SEQ_N_Q) * qHeads;

  const ubs = <usize>bs;
  const ud = <usize>d;
  // scratch: K'w, V'w [bs][d] (a half cache's key block, widened) · Qᵗ [d][bs] · Oᵗ [d][bs] · Sᵗ [bs][bs]
  // · the modifiers' pos, −slope, sink [bs] · m_i, l_i, α [bs]  (all f32)
  const kw = scratch;
  const vw = kw + ud * ubs * 4;
  const qt = vw + ud * ubs * 4;
  const halfIO = (dtype & DTYPE_HALF_IO) != 0;
  const halfKV = (dtype & DTYPE_HALF_KV) != 0;
  const ot = qt + ud * ubs * 4;
  const st = ot + ud * ubs * 4;
  const posRow = st + ubs * ubs * 4;
  const slopeRow = posRow + ubs * 4;
  const sinkRow = slopeRow + ubs * 4;
  const mI = sinkRow + ubs * 4;
  const lI = mI + ubs * 4;
  const alpha = lI + ubs * 4;

  const row0 = qb * bs;
  const rows = min(bs, nQ - row0);

  // Qᵗ[k][r] = Q[row0 + r][k] · scale (zero rows past nQ); Oᵗ = 0; m_i = -inf; l_i = 0
  if (qHeads == 1) {
    if (halfIO) loadQueryTHalf(qt, qBase + <usize>row0 * stride, stride, rows, d, bs, scale);
    else loadQueryT(qt, qBase + <usize>row0 * stride, stride, rows, d, bs, scale);
  } else if (halfIO) loadQueryGroupTHalf(qt, qBase, stride, qHeads, row0, rows, d, bs, scale);
  else loadQueryGroupT(qt, qBase, stride, qHeads, row0, rows, d, bs, scale);
  for (let r = 0; r < bs; r++) {
    store<f32>(mI + (<usize>r << 2), -Infinity);
    store<f32>(lI + (<usize>r << 2), 0);
  }
  memory.fill(ot, 0, ud * ubs * 4);

  // A sequence of one query block (a decode step) reads each K/V block once, from memory:
  // its walk touches V' first (keyBlocks). Longer sequences re-read K' and V' from the cache.
  if (mods != 0) modRows(modRec, headMods, qHeads, row0, bs, posRow, slopeRow, sinkRow);
  if (nQ <= bs) keyBlocks(seq, qb, d, bs, qt, ot, st, mI, lI, alpha, kw, vw, halfKV, true, mods, cap, posRow, slopeRow);
  else keyBlocks(seq, qb, d, bs, qt, ot, st, mI, lI, alpha, kw, vw, halfKV, false, mods, cap, posRow, slopeRow);

  if (mods != 0) finishRows(modRec, mods, qHeads, row0, rows, bs, mI, lI, sinkRow);
  else {
    // O[row0 + r][k] = Oᵗ[k][r] / l_i[r]; a row with no allowed key stays 0
    for (let r = 0; r < bs; r++) {
      const l = load<f32>(lI + (<usize>r << 2));
      store<f32>(lI + (<usize>r << 2), l > 0 ? <f32>1.0 / l : 0);
    }
  }
  if (qHeads == 1) {
    if (halfIO) storeOutputHalf(oBase + <usize>row0 * stride, stride, ot, lI, rows, d, bs);
    else storeOutput(oBase + <usize>row0 * stride, stride, ot, lI, rows, d, bs);
  } else if (halfIO) storeOutputGroupHalf(oBase, stride, qHeads, row0, ot, lI, rows, d, bs);
  else storeOutputGroup(oBase, stride, qHeads, row0, ot, lI, rows, d, bs);
}

/**
 * The key blocks of query block qb, each: S = Q·Kᵀ, the online softmax, O = O·α + P·V.
 * `touch` (a literal: each call is specialised): first read the block's V' rows front to back,
 * one load a cache line, since P·V reads them key-strided (d·4 bytes apart), which the
 * hardware prefetcher does not follow (≈ 1.9× on a decode step's CPU time, docs/decode.md).
 */
// @ts-ignore: decorator
@inline function keyBlocks(
  seq: usize, qb: i32, d: i32, bs: i32, qt: usize, ot: usize, st: usize, mI: usize, lI: usize, alpha: usize,
  kw: usize, vw: usize, halfKV: bool, touch: bool, mods: i32, cap: f32, posRow: usize, slopeRow: usize,
): void {
  const kBase = <usize>load<i32>(seq + SEQ_K);
  const vBase = <usize>load<i32>(seq + SEQ_V);
  const kStride = <usize>load<i32>(seq + SEQ_KV_STRIDE);
  const nK = load<i32>(seq + SEQ_N_K);
  const rowPtr = <usize>load<i32>(seq + SEQ_ROW_PTR);
  const cols = <usize>load<i32>(seq + SEQ_COLS);
  const maskIds = <usize>load<i32>(seq + SEQ_MASK_IDS);
  const masks = <usize>load<i32>(seq + SEQ_MASKS);
  const ubs = <usize>bs;
  const ud = <usize>d;
  let touched = 0;
  const e1 = load<i32>(rowPtr + (<usize>(qb + 1) << 2));
  for (let e = load<i32>(rowPtr + (<usize>qb << 2)); e < e1; e++) {
    const kb = load<i32>(cols + (<usize>e << 2));
    const key0 = kb * bs;
    if (key0 >= nK) break; // cols ascend: every later block is past the keys
    const nc = min(bs, nK - key0);
    const maskId = load<i32>(maskIds + (<usize>e << 2));
    // the mask record's range entries, then its [bs][bs] i32 mask (both 0 when the block is full)
    const ranges = maskId < 0 ? <usize>0 : masks + <usize>maskId * maskRecordBytes(ubs);
    const mask = maskId < 0 ? <usize>0 : ranges + maskRangesBytes(ubs);
    let kRows = kBase + <usize>key0 * ud * 4; // K' [nK/4][d][4]: key0 is a multiple of 4
    let vRows = vBase + <usize>key0 * kStride;
    let vStride = kStride;
    if (halfKV) {
      // a half cache, read where it lies: its block widened once (front to back, so no
      // touching either), then read as f32 K' V'
      widenRun(kw, kBase + <usize>key0 * ud * 2, ((nc + 3) & ~3) * d);
      widenRun(vw, vRows, nc * d);
      kRows = kw;
      vRows = vw;
      vStride = ud * 4;
    } else if (touch) {
      const vEnd = vRows + <usize>nc * kStride;
      for (let a = vRows; a < vEnd; a += 64) touched ^= load<i32>(a);
    }
    // One code for both kinds of build: f32x4 lanes (4 query rows) or f32 (1 row).
    // (the modifiers: a branch per block, the loops inside specialised)
    if (ASC_FEATURE_SIMD) {
      if (mods & MOD_SOFTCAP) scoresCapped<v128>(qt, kRows, st, ranges, d, bs, nc, cap);
      else scores<v128>(qt, kRows, st, ranges, d, bs, nc);
      if (mods & MOD_ALIBI) softmaxAlibi<v128>(st, ranges, mask, mI, lI, alpha, bs, nc, key0, posRow, slopeRow);
      else softmax<v128>(st, ranges, mask, mI, lI, alpha, bs, nc);
      accumulate<v128>(st, ranges, mask, vRows, vStride, ot, alpha, d, bs, nc);
    } else {
      if (mods & MOD_SOFTCAP) scoresCapped<f32>(qt, kRows, st, ranges, d, bs, nc, cap);
      else scores<f32>(qt, kRows, st, ranges, d, bs, nc);
      if (mods & MOD_ALIBI) softmaxAlibi<f32>(st, ranges, mask, mI, lI, alpha, bs, nc, key0, posRow, slopeRow);
      else softmax<f32>(st, ranges, mask, mI, lI, alpha, bs, nc);
      accumulate<f32>(st, ranges, mask, vRows, vStride, ot, alpha, d, bs, nc);
    }
  }

  // keeps the touches (α is rewritten by the next block before it is read)
  if (touch) store<i32>(alpha, touched);
}

/**
 * The modifiers' per-row values of query block rows row0 … row0 + bs − 1 (grouped rows: query
 * row ⌊R / qHeads⌋ of head head + R mod qHeads): pos = the key row at the row's position,
 * −slope·dist (ALiBi, base 2) and the sink logit (base 2) of its head.
 */
function modRows(modRec: usize, headMods: usize, qHeads: i32, row0: i32, bs: i32, posRow: usize, slopeRow: usize, sinkRow: usize): void {
  const head = load<i32>(modRec + SEQ_MOD_HEAD);
  const qPos = load<i32>(modRec + SEQ_MOD_Q_POS);
  const dist = <f32>load<i32>(modRec + SEQ_MOD_DIST);
  for (let r = 0; r < bs; r++) {
    const R = row0 + r;
    const h = <usize>(head + R % qHeads);
    const at = <usize>r << 2;
    store<f32>(posRow + at, <f32>(qPos + R / qHeads));
    store<f32>(slopeRow + at, -load<f32>(headMods + (h << 3)) * dist);
    store<f32>(sinkRow + at, load<f32>(headMods + (h << 3), 4));
  }
}

/**
 * The end of a query block with modifiers: each live row's lse = ln 2 · (m_i + log2 l_i)
 * (−Infinity for a row with no key), then its sink joins the denominator
 * (l_i += 2^(sink − m_i), only for a row with a key), and lI[r] becomes 1 / l_i (0: no key).
 */
function finishRows(modRec: usize, mods: i32, qHeads: i32, row0: i32, rows: i32, bs: i32, mI: usize, lI: usize, sinkRow: usize): void {
  const lse = <usize>load<i32>(modRec + SEQ_MOD_LSE);
  const lseRow = <usize>load<i32>(modRec + SEQ_MOD_LSE_ROW);
  const lseHead = <usize>load<i32>(modRec + SEQ_MOD_LSE_HEAD);
  const sinks = (mods & MOD_SINKS) != 0;
  for (let r = 0; r < bs; r++) {
    const at = <usize>r << 2;
    const m = load<f32>(mI + at);
    let l = load<f32>(lI + at);
    const any = m != -Infinity;
    if (lse != 0 && r < rows) {
      const R = row0 + r;
      const x = any ? <f32>((<f64>m + Math.log2(<f64>l)) * Math.LN2) : -Infinity;
      store<f32>(lse + <usize>(R / qHeads) * lseRow + <usize>(R % qHeads) * lseHead, x);
    }
    if (sinks && any) l += <f32>Math.exp((<f64>load<f32>(sinkRow + at) - <f64>m) * Math.LN2);
    store<f32>(lI + at, l > 0 ? <f32>1.0 / l : 0);
  }
}
