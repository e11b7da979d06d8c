// Block-sparse attention forward pass, flash-style (FlashAttention-2 loop order), f32.
// One build per ISA: `__simd128` (f32x4 mul+add), `__relaxed` (f32x4 relaxed FMA) and
// `__scalar`, selected at compile time by ASC_FEATURE_SIMD / ASC_FEATURE_RELAXED_SIMD.
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
// see: Dao, "FlashAttention-2" (2023); Child et al., "Sparse Transformers" (2019).

import {
  P_BLOCK, P_COUNTER, P_GROUPS, P_HEADS, P_HEAD_DIM, P_N_TASKS, P_PACK_CHUNKS, P_PACK_COUNTER, P_PACK_UNITS, P_SCALE, P_SEQS, P_TASKS,
  SEQ_COLS, SEQ_K, SEQ_KV_STRIDE, SEQ_K_SRC, SEQ_MASKS, SEQ_MASK_IDS, SEQ_N_K, SEQ_N_Q, SEQ_O, SEQ_Q, SEQ_ROW_PTR, SEQ_SRC_STRIDE,
  SEQ_STRIDE, SEQ_V, SEQ_V_SRC, SEQ_WORDS, TASK_QB0, TASK_QB1, TASK_SEQ, TASK_SHIFT,
  ABI_HASH, MASK_C_HI, MASK_C_LO, MASK_F_HI, MASK_F_LO, MASK_RANGE_SHIFT, MASK_TILE_SHIFT, PACK_ROWS,
} from './abi.generated';
// The parameter block, sequence, task and mask records the host writes are declared once,
// in src/backends/wasm/abi.ts; abi.generated.ts holds their byte offsets for this side.

// 2^r on [-0.5, 0.5], degree-5 least-squares fit on Chebyshev nodes: rel. error 1.04e-7.
const EXP_C0: f32 = 1.0000001192092896;
const EXP_C1: f32 = 0.6931471824645996;
const EXP_C2: f32 = 0.2402210682630539;
const EXP_C3: f32 = 0.05550327152013779;
const EXP_C4: f32 = 0.009676046669483185;
const EXP_C5: f32 = 0.0013400441966950893;
// Below 2^-125 the result is flushed to an exact 0: no denormal ever enters P·V.
const EXP_FLUSH: f32 = -125.0;
const EXP_MAGIC: f32 = 12582912.0; // 1.5 · 2^23
const EXP_MAGIC_BITS: i32 = 0x4b400000;

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
        const vSrc = <usize>load<i32>(seq + SEQ_V_SRC) + <usize>c * srcStride;
        const vDst = <usize>load<i32>(seq + SEQ_V) + <usize>c * bytes;
        for (let i = 0; i < n; i++) copyRow(vDst + <usize>i * bytes, vSrc + <usize>i * srcStride, bytes);
        packKeys4(<usize>load<i32>(seq + SEQ_K) + <usize>c * bytes, <usize>load<i32>(seq + SEQ_K_SRC) + <usize>c * srcStride, srcStride, n, d);
        seq += headStep;
      }
    }
  }
}

/** dst[k][i] = src[i][k] for keys i < n (of 4), k < d; the 4 keys of a group interleaved. */
function packKeys4(dst: usize, src: usize, stride: usize, n: i32, d: usize): void {
  let k: usize = 0;
  if (ASC_FEATURE_SIMD && n == 4) {
    for (; k + 4 <= d; k += 4) {
      const a = v128.load(src + (k << 2));
      const b = v128.load(src + stride + (k << 2));
      const c = v128.load(src + 2 * stride + (k << 2));
      const e = v128.load(src + 3 * stride + (k << 2));
      const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
      const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
      const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
      const p = dst + (k << 4);
      v128.store(p, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
      v128.store(p, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
      v128.store(p, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
      v128.store(p, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
    }
  }
  for (; k < d; k++) {
    for (let i = 0; i < 4; i++) {
      store<f32>(dst + (k << 4) + (<usize>i << 2), i < n ? load<f32>(src + <usize>i * stride + (k << 2)) : 0);
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
  let done = 0;
  while (true) {
    const t = next(counter);
    if (t >= nTasks) break;
    const task = tasks + (<usize>t << TASK_SHIFT);
    const seq = seqs + <usize>(load<i32>(task, TASK_SEQ) * SEQ_WORDS * 4);
    const qb1 = load<i32>(task, TASK_QB1);
    for (let qb = load<i32>(task, TASK_QB0); qb < qb1; qb++) {
      queryBlock(seq, qb, d, bs, scale, scratch);
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

/** Scratch bytes one thread needs: Qᵗ, Oᵗ [d][bs], Sᵗ [bs][bs], 3 row vectors (the host asks). */
export function bsattn_scratch_bytes(d: i32, bs: i32): i32 {
  return (2 * d * bs + bs * bs + 3 * bs) * 4;
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

/** Copies one row of `bytes` bytes (inline vector moves: memory.copy leaves the JIT code). */
// @ts-ignore: decorator
@inline function copyRow(dst: usize, src: usize, bytes: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const bytes16 = bytes & ~15;
    for (; i < bytes16; i += 16) v128.store(dst + i, v128.load(src + i));
  }
  for (; i < bytes; i += 4) store<f32>(dst + i, load<f32>(src + i));
}

function queryBlock(seq: usize, qb: i32, d: i32, bs: i32, scale: f32, scratch: usize): void {
  const qBase = <usize>load<i32>(seq + SEQ_Q);
  const kBase = <usize>load<i32>(seq + SEQ_K);
  const vBase = <usize>load<i32>(seq + SEQ_V);
  const oBase = <usize>load<i32>(seq + SEQ_O);
  const stride = <usize>load<i32>(seq + SEQ_STRIDE);
  const kStride = <usize>load<i32>(seq + SEQ_KV_STRIDE);
  const nQ = load<i32>(seq + SEQ_N_Q);
  const nK = load<i32>(seq + SEQ_N_K);
  const rowPtr = <usize>load<i32>(seq + SEQ_ROW_PTR);
  const cols = <usize>load<i32>(seq + SEQ_COLS);
  const maskIds = <usize>load<i32>(seq + SEQ_MASK_IDS);
  const masks = <usize>load<i32>(seq + SEQ_MASKS);

  const ubs = <usize>bs;
  const ud = <usize>d;
  // scratch: Qᵗ [d][bs] · Oᵗ [d][bs] · Sᵗ [bs][bs] · m_i, l_i, α [bs]  (all f32)
  const qt = scratch;
  const ot = qt + ud * ubs * 4;
  const st = ot + ud * ubs * 4;
  const mI = st + ubs * ubs * 4;
  const lI = mI + ubs * 4;
  const alpha = lI + ubs * 4;

  const row0 = qb * bs;
  const rows = min(bs, nQ - row0);

  // Qᵗ[k][r] = Q[row0 + r][k] · scale (zero rows past nQ); Oᵗ = 0; m_i = -inf; l_i = 0
  loadQueryT(qt, qBase + <usize>row0 * stride, stride, rows, d, bs, scale);
  for (let r = 0; r < bs; r++) {
    store<f32>(mI + (<usize>r << 2), -Infinity);
    store<f32>(lI + (<usize>r << 2), 0);
  }
  memory.fill(ot, 0, ud * ubs * 4);

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
    const kRows = kBase + <usize>key0 * ud * 4; // K' [nK/4][d][4]: key0 is a multiple of 4
    const vRows = vBase + <usize>key0 * kStride;
    if (ASC_FEATURE_SIMD) {
      scoresSimd(qt, kRows, st, ranges, d, bs, nc);
      softmaxSimd(st, ranges, mask, mI, lI, alpha, bs, nc);
      accumulateSimd(st, ranges, mask, vRows, kStride, ot, alpha, d, bs, nc);
    } else {
      scoresScalar(qt, kRows, st, ranges, d, bs, nc);
      softmaxScalar(st, ranges, mask, mI, lI, alpha, bs, nc);
      accumulateScalar(st, ranges, mask, vRows, kStride, ot, alpha, d, bs, nc);
    }
  }

  // O[row0 + r][k] = Oᵗ[k][r] / l_i[r]; a row with no allowed key stays 0
  for (let r = 0; r < bs; r++) {
    const l = load<f32>(lI + (<usize>r << 2));
    store<f32>(lI + (<usize>r << 2), l > 0 ? <f32>1.0 / l : 0);
  }
  storeOutput(oBase + <usize>row0 * stride, stride, ot, lI, rows, d, bs);
}

/** dst[k][r] = src[r][k] · scale for r < rows, 0 for rows <= r < bs. */
function loadQueryT(dst: usize, src: usize, stride: usize, rows: i32, d: i32, bs: i32, scale: f32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const sc = f32x4.splat(scale);
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const s0 = src + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        const off = <usize>k << 2;
        const a = f32x4.mul(v128.load(s0 + off), sc);
        const b = f32x4.mul(v128.load(s0 + stride + off), sc);
        const c = f32x4.mul(v128.load(s0 + 2 * stride + off), sc);
        const e = f32x4.mul(v128.load(s0 + 3 * stride + off), sc);
        // 4×4 transpose: rows r..r+3 × dims k..k+3 -> dims × rows
        const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
        const p = dst + (<usize>k * ubs + <usize>r) * 4;
        v128.store(p, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(p + ubs * 4, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
        v128.store(p + ubs * 8, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
        v128.store(p + ubs * 12, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          store<f32>(dst + (<usize>k * ubs + <usize>(r + i)) * 4, load<f32>(s0 + <usize>i * stride + (<usize>k << 2)) * scale);
        }
      }
    }
  }
  for (; r < bs; r++) {
    const s0 = src + <usize>r * stride;
    const live = r < rows;
    for (let k = 0; k < d; k++) {
      store<f32>(dst + (<usize>k * ubs + <usize>r) * 4, live ? load<f32>(s0 + (<usize>k << 2)) * scale : 0);
    }
  }
}

/** dst[r][k] = ot[k][r] · inv[r] for r < rows. */
function storeOutput(dst: usize, stride: usize, ot: usize, inv: usize, rows: i32, d: i32, bs: i32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const iv = v128.load(inv + (<usize>r << 2));
      const d0 = dst + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        const p = ot + (<usize>k * ubs + <usize>r) * 4;
        const a = f32x4.mul(v128.load(p), iv);
        const b = f32x4.mul(v128.load(p + ubs * 4), iv);
        const c = f32x4.mul(v128.load(p + ubs * 8), iv);
        const e = f32x4.mul(v128.load(p + ubs * 12), iv);
        const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
        const off = <usize>k << 2;
        v128.store(d0 + off, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(d0 + stride + off, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
        v128.store(d0 + 2 * stride + off, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
        v128.store(d0 + 3 * stride + off, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          store<f32>(d0 + <usize>i * stride + (<usize>k << 2), load<f32>(ot + (<usize>k * ubs + <usize>(r + i)) * 4) * load<f32>(inv + (<usize>(r + i) << 2)));
        }
      }
    }
  }
  for (; r < rows; r++) {
    const d0 = dst + <usize>r * stride;
    const iv = load<f32>(inv + (<usize>r << 2));
    for (let k = 0; k < d; k++) {
      store<f32>(d0 + (<usize>k << 2), load<f32>(ot + (<usize>k * ubs + <usize>r) * 4) * iv);
    }
  }
}

/** First allowed column of the 8-row tile holding row r (0 for full blocks). */
// @ts-ignore: decorator
@inline function colLo(ranges: usize, r: usize): i32 {
  return ranges ? load<i32>(ranges + ((r >> MASK_TILE_SHIFT) << MASK_RANGE_SHIFT), MASK_C_LO) : 0;
}

/** One past the last allowed column of the tile holding row r, at most nc. */
// @ts-ignore: decorator
@inline function colHi(ranges: usize, r: usize, nc: i32): i32 {
  return ranges ? min(nc, load<i32>(ranges + ((r >> MASK_TILE_SHIFT) << MASK_RANGE_SHIFT), MASK_C_HI)) : nc;
}

/** First column of the tile's run allowed for every row (within [lo, hi]). */
// @ts-ignore: decorator
@inline function fullLo(ranges: usize, r: usize, lo: i32, hi: i32): i32 {
  return ranges ? min(hi, max(lo, load<i32>(ranges + ((r >> MASK_TILE_SHIFT) << MASK_RANGE_SHIFT), MASK_F_LO))) : lo;
}

/** One past the tile's fully allowed run (within [fLo, hi]). */
// @ts-ignore: decorator
@inline function fullHi(ranges: usize, r: usize, fLo: i32, hi: i32): i32 {
  return ranges ? min(hi, max(fLo, load<i32>(ranges + ((r >> MASK_TILE_SHIFT) << MASK_RANGE_SHIFT), MASK_F_HI))) : hi;
}

// ---------------------------------------------------------------- SIMD

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * 2^x lane-wise for x <= 0 (or NaN); exact 0 below 2^-125. round(x) comes from adding
 * 1.5·2^23 (its low mantissa bits then hold the integer), which is also 2^n's exponent
 * field: cheaper on x64 than f32x4.nearest + i32x4.trunc_sat, which V8 expands into
 * NaN-safe sequences. pmax keeps a NaN x (pmax(a, b) = a < b ? b : a).
 */
// @ts-ignore: decorator
@inline function exp2v(x: v128): v128 {
  const xc = f32x4.pmax(x, f32x4.splat(-127.0));
  const t = f32x4.add(xc, f32x4.splat(EXP_MAGIC));
  const n = f32x4.sub(t, f32x4.splat(EXP_MAGIC));
  const r = f32x4.sub(xc, n);
  let p = madd(f32x4.splat(EXP_C5), r, f32x4.splat(EXP_C4));
  p = madd(p, r, f32x4.splat(EXP_C3));
  p = madd(p, r, f32x4.splat(EXP_C2));
  p = madd(p, r, f32x4.splat(EXP_C1));
  p = madd(p, r, f32x4.splat(EXP_C0));
  // 2^n = (n + 127) << 23, with n = bits(t) - bits(EXP_MAGIC)
  const pow2n = i32x4.shl(i32x4.add(t, i32x4.splat(127 - EXP_MAGIC_BITS)), 23);
  const y = f32x4.mul(p, pow2n);
  return v128.andnot(y, f32x4.lt(x, f32x4.splat(EXP_FLUSH)));
}

/**
 * Sᵗ[c][r] = Σ_k K[c][k] · Qᵗ[k][r]; register tile 8 rows × 4 keys, the 4 keys' values of
 * dim k side by side in K' (one pointer, immediate offsets). Whole groups of 4 are
 * computed: columns outside [cLo, cHi) are written but never read.
 */
function scoresSimd(qt: usize, kRows: usize, st: usize, ranges: usize, d: i32, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  const rowBytes = ubs * 4;
  const groupBytes = <usize>d << 4;
  for (let r0: usize = 0; r0 < ubs; r0 += 8) {
    const cEnd = colHi(ranges, r0, nc);
    for (let c = colLo(ranges, r0) & ~3; c < cEnd; c += 4) {
      let kp = kRows + <usize>(c >> 2) * groupBytes;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0);
      let a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0);
      let a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let q = qt + r0 * 4;
      for (let k = 0; k < d; k++) {
        const q0 = v128.load(q);
        const q1 = v128.load(q, 16);
        const b0 = v128.load32_splat(kp);
        a00 = madd(q0, b0, a00);
        a01 = madd(q1, b0, a01);
        const b1 = v128.load32_splat(kp, 4);
        a10 = madd(q0, b1, a10);
        a11 = madd(q1, b1, a11);
        const b2 = v128.load32_splat(kp, 8);
        a20 = madd(q0, b2, a20);
        a21 = madd(q1, b2, a21);
        const b3 = v128.load32_splat(kp, 12);
        a30 = madd(q0, b3, a30);
        a31 = madd(q1, b3, a31);
        q += rowBytes;
        kp += 16;
      }
      const s = st + (<usize>c * ubs + r0) * 4;
      v128.store(s, a00);
      v128.store(s, a01, 16);
      v128.store(s + rowBytes, a10);
      v128.store(s + rowBytes, a11, 16);
      v128.store(s + 2 * rowBytes, a20);
      v128.store(s + 2 * rowBytes, a21, 16);
      v128.store(s + 3 * rowBytes, a30);
      v128.store(s + 3 * rowBytes, a31, 16);
    }
  }
}

/**
 * Masks Sᵗ, updates m_i and l_i, turns Sᵗ into P = 2^(S - m_new) and writes
 * α = 2^(m_i - m_new). Rows whose keys are all masked so far keep m = -inf and P = 0.
 */
function softmaxSimd(st: usize, ranges: usize, mask: usize, mI: usize, lI: usize, alpha: usize, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  const ninf = f32x4.splat(-Infinity);
  for (let r: usize = 0; r < ubs; r += 4) {
    const cLo = colLo(ranges, r);
    const cEnd = colHi(ranges, r, nc);
    const fLo = fullLo(ranges, r, cLo, cEnd);
    const fHi = fullHi(ranges, r, fLo, cEnd);
    // S = mask ? S : -inf (outside the fully allowed run only); m_new = max(m_i, rowmax S)
    let mx = v128.load(mI + r * 4);
    for (let c = cLo; c < cEnd; c++) {
      const p = st + (<usize>c * ubs + r) * 4;
      let s = v128.load(p);
      if (mask && (c < fLo || c >= fHi)) {
        s = v128.bitselect(s, ninf, v128.load(mask + (<usize>c * ubs + r) * 4));
        v128.store(p, s);
      }
      // pmax skips a NaN score; it still reaches the row through P = 2^(NaN - m) = NaN.
      mx = f32x4.pmax(mx, s);
    }
    // Rows with no allowed key yet subtract 0 instead of -inf (no -inf - -inf NaN).
    const safe = v128.bitselect(f32x4.splat(0), mx, f32x4.eq(mx, ninf));
    const a = exp2v(f32x4.sub(v128.load(mI + r * 4), safe));
    // P = 2^(S - m_new); l_i = l_i·α + rowsum P
    let sum = f32x4.splat(0);
    for (let c = cLo; c < cEnd; c++) {
      const p = st + (<usize>c * ubs + r) * 4;
      const e = exp2v(f32x4.sub(v128.load(p), safe));
      v128.store(p, e);
      sum = f32x4.add(sum, e);
    }
    v128.store(lI + r * 4, madd(v128.load(lI + r * 4), a, sum));
    v128.store(mI + r * 4, mx);
    v128.store(alpha + r * 4, a);
  }
}

/**
 * Oᵗ[k][r] = Oᵗ[k][r]·α[r] + Σ_c P[c][r] · V[c][k], per 8-row tile: columns [cLo, fLo)
 * and [fHi, cHi) masked, [fLo, fHi) not. α is applied by the first run that has columns;
 * a tile with none keeps its Oᵗ (its max did not move: α = 1).
 */
function accumulateSimd(st: usize, ranges: usize, mask: usize, vRows: usize, stride: usize, ot: usize, alpha: usize, d: i32, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  for (let r0: usize = 0; r0 < ubs; r0 += 8) {
    const cLo = colLo(ranges, r0);
    const cEnd = colHi(ranges, r0, nc);
    if (cLo >= cEnd) continue;
    const fLo = mask ? fullLo(ranges, r0, cLo, cEnd) : cLo;
    const fHi = mask ? fullHi(ranges, r0, fLo, cEnd) : cEnd;
    let scale = true;
    if (cLo < fLo) {
      pvTile(st, mask, vRows, stride, ot, alpha, d, ubs, r0, cLo, fLo, scale);
      scale = false;
    }
    if (fLo < fHi) {
      pvTile(st, 0, vRows, stride, ot, alpha, d, ubs, r0, fLo, fHi, scale);
      scale = false;
    }
    if (fHi < cEnd) pvTile(st, mask, vRows, stride, ot, alpha, d, ubs, r0, fHi, cEnd, scale);
  }
}

/**
 * Rows r0..r0+7 of Oᵗ += P[c0..c1) · V[c0..c1); register tile 8 rows × 4 dims. With a
 * mask each product is ANDed with it, so a masked key's V (even NaN or Inf) never
 * reaches the output, as in the dense reference.
 */
function pvTile(st: usize, mask: usize, vRows: usize, stride: usize, ot: usize, alpha: usize, d: i32, ubs: usize, r0: usize, c0: i32, c1: i32, scale: bool): void {
  const rowBytes = ubs * 4;
  const d4 = <usize>(d & ~3);
  const ud = <usize>d;
  const one = f32x4.splat(1);
  const al0 = scale ? v128.load(alpha + r0 * 4) : one;
  const al1 = scale ? v128.load(alpha + r0 * 4, 16) : one;
  let k: usize = 0;
  for (; k < d4; k += 4) {
    const o = ot + (k * ubs + r0) * 4;
    let a00 = f32x4.mul(v128.load(o), al0), a01 = f32x4.mul(v128.load(o, 16), al1);
    let a10 = f32x4.mul(v128.load(o + rowBytes), al0), a11 = f32x4.mul(v128.load(o + rowBytes, 16), al1);
    let a20 = f32x4.mul(v128.load(o + 2 * rowBytes), al0), a21 = f32x4.mul(v128.load(o + 2 * rowBytes, 16), al1);
    let a30 = f32x4.mul(v128.load(o + 3 * rowBytes), al0), a31 = f32x4.mul(v128.load(o + 3 * rowBytes, 16), al1);
    let p = st + (<usize>c0 * ubs + r0) * 4;
    let v = vRows + <usize>c0 * stride + (k << 2);
    if (mask) {
      let m = mask + (<usize>c0 * ubs + r0) * 4;
      for (let c = c0; c < c1; c++) {
        const m0 = v128.load(m);
        const m1 = v128.load(m, 16);
        const p0 = v128.load(p);
        const p1 = v128.load(p, 16);
        const b0 = v128.load32_splat(v);
        a00 = f32x4.add(a00, v128.and(f32x4.mul(p0, b0), m0));
        a01 = f32x4.add(a01, v128.and(f32x4.mul(p1, b0), m1));
        const b1 = v128.load32_splat(v, 4);
        a10 = f32x4.add(a10, v128.and(f32x4.mul(p0, b1), m0));
        a11 = f32x4.add(a11, v128.and(f32x4.mul(p1, b1), m1));
        const b2 = v128.load32_splat(v, 8);
        a20 = f32x4.add(a20, v128.and(f32x4.mul(p0, b2), m0));
        a21 = f32x4.add(a21, v128.and(f32x4.mul(p1, b2), m1));
        const b3 = v128.load32_splat(v, 12);
        a30 = f32x4.add(a30, v128.and(f32x4.mul(p0, b3), m0));
        a31 = f32x4.add(a31, v128.and(f32x4.mul(p1, b3), m1));
        p += rowBytes;
        m += rowBytes;
        v += stride;
      }
    } else {
      for (let c = c0; c < c1; c++) {
        const p0 = v128.load(p);
        const p1 = v128.load(p, 16);
        const b0 = v128.load32_splat(v);
        a00 = madd(p0, b0, a00);
        a01 = madd(p1, b0, a01);
        const b1 = v128.load32_splat(v, 4);
        a10 = madd(p0, b1, a10);
        a11 = madd(p1, b1, a11);
        const b2 = v128.load32_splat(v, 8);
        a20 = madd(p0, b2, a20);
        a21 = madd(p1, b2, a21);
        const b3 = v128.load32_splat(v, 12);
        a30 = madd(p0, b3, a30);
        a31 = madd(p1, b3, a31);
        p += rowBytes;
        v += stride;
      }
    }
    v128.store(o, a00);
    v128.store(o, a01, 16);
    v128.store(o + rowBytes, a10);
    v128.store(o + rowBytes, a11, 16);
    v128.store(o + 2 * rowBytes, a20);
    v128.store(o + 2 * rowBytes, a21, 16);
    v128.store(o + 3 * rowBytes, a30);
    v128.store(o + 3 * rowBytes, a31, 16);
  }
  for (; k < ud; k++) {
    const o = ot + (k * ubs + r0) * 4;
    let a00 = f32x4.mul(v128.load(o), al0), a01 = f32x4.mul(v128.load(o, 16), al1);
    let p = st + (<usize>c0 * ubs + r0) * 4;
    let v = vRows + <usize>c0 * stride + (k << 2);
    for (let c = c0; c < c1; c++) {
      const b0 = v128.load32_splat(v);
      let x0 = f32x4.mul(v128.load(p), b0);
      let x1 = f32x4.mul(v128.load(p, 16), b0);
      if (mask) {
        const m = mask + (<usize>c * ubs + r0) * 4;
        x0 = v128.and(x0, v128.load(m));
        x1 = v128.and(x1, v128.load(m, 16));
      }
      a00 = f32x4.add(a00, x0);
      a01 = f32x4.add(a01, x1);
      p += rowBytes;
      v += stride;
    }
    v128.store(o, a00);
    v128.store(o, a01, 16);
  }
}

// ---------------------------------------------------------------- scalar

function exp2s(x: f32): f32 {
  if (x != x) return x;
  if (x < EXP_FLUSH) return 0; // also -inf
  const n = nearest<f32>(x);
  const r = x - n;
  const p = ((((EXP_C5 * r + EXP_C4) * r + EXP_C3) * r + EXP_C2) * r + EXP_C1) * r + EXP_C0;
  return p * reinterpret<f32>((<i32>n + 127) << 23);
}

function scoresScalar(qt: usize, kRows: usize, st: usize, ranges: usize, d: i32, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  for (let r: usize = 0; r < ubs; r++) {
    const cEnd = colHi(ranges, r, nc);
    for (let c = colLo(ranges, r); c < cEnd; c++) {
      // K' [c / 4][k][c % 4]
      const kr = kRows + <usize>(c >> 2) * (<usize>d << 4) + (<usize>(c & 3) << 2);
      let acc: f32 = 0;
      for (let k: usize = 0; k < <usize>d; k++) {
        acc += load<f32>(kr + (k << 4)) * load<f32>(qt + (k * ubs + r) * 4);
      }
      store<f32>(st + (<usize>c * ubs + r) * 4, acc);
    }
  }
}

function softmaxScalar(st: usize, ranges: usize, mask: usize, mI: usize, lI: usize, alpha: usize, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  for (let r: usize = 0; r < ubs; r++) {
    const cLo = colLo(ranges, r);
    const cEnd = colHi(ranges, r, nc);
    let mx = load<f32>(mI + r * 4);
    for (let c = cLo; c < cEnd; c++) {
      const p = st + (<usize>c * ubs + r) * 4;
      if (mask && load<i32>(mask + (<usize>c * ubs + r) * 4) == 0) store<f32>(p, -Infinity);
      mx = maxNaN(mx, load<f32>(p));
    }
    const safe: f32 = mx == -Infinity ? 0 : mx;
    const a = exp2s(load<f32>(mI + r * 4) - safe);
    let sum: f32 = 0;
    for (let c = cLo; c < cEnd; c++) {
      const p = st + (<usize>c * ubs + r) * 4;
      const e = exp2s(load<f32>(p) - safe);
      store<f32>(p, e);
      sum += e;
    }
    store<f32>(lI + r * 4, load<f32>(lI + r * 4) * a + sum);
    store<f32>(mI + r * 4, mx);
    store<f32>(alpha + r * 4, a);
  }
}

/** max that propagates NaN like f32x4.max. */
// @ts-ignore: decorator
@inline function maxNaN(a: f32, b: f32): f32 {
  return a != a || b != b ? NaN : max(a, b);
}

function accumulateScalar(st: usize, ranges: usize, mask: usize, vRows: usize, stride: usize, ot: usize, alpha: usize, d: i32, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  for (let k: usize = 0; k < <usize>d; k++) {
    for (let r: usize = 0; r < ubs; r++) {
      const o = ot + (k * ubs + r) * 4;
      let acc = load<f32>(o) * load<f32>(alpha + r * 4);
      const cEnd = colHi(ranges, r, nc);
      for (let c = colLo(ranges, r); c < cEnd; c++) {
        if (mask && load<i32>(mask + (<usize>c * ubs + r) * 4) == 0) continue;
        acc += load<f32>(st + (<usize>c * ubs + r) * 4) * load<f32>(vRows + <usize>c * stride + (k << 2));
      }
      store<f32>(o, acc);
    }
  }
}
