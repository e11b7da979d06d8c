// One key block of a query block, in three steps: S = Q·Kᵀ (scores), the online softmax
// update (softmax), O = O·α + P·V (accumulate); with the score modifiers the soft cap is
// applied to the score registers (scoresCapped) and ALiBi in the softmax pass (softmaxAlibi). Generic over the lane type L (lanes.ts):
// v128 in the SIMD builds, f32 in the scalar build, so both run this code. Register tiles
// are 2 L of query rows (8 rows SIMD, 2 scalar) × 4 keys or dims.

import { MASK_C_HI, MASK_C_LO, MASK_F_HI, MASK_F_LO, MASK_RANGE_SHIFT, MASK_TILE_SHIFT } from './abi.generated';
import { abs, add, and, bcast, bitselect, eq, exp2, lanes, madd, mul, pmax, softcapOf, splat, storeSoftcapPair, sub } from './lanes';

/** The mask range entry of the tile of MASK_TILE_ROWS rows holding row r. */
// @ts-ignore: decorator
@inline function rangeOf(ranges: usize, r: usize): usize {
  return ranges + ((r >> MASK_TILE_SHIFT) << MASK_RANGE_SHIFT);
}

/** First allowed column of the tile holding row r (0 for full blocks). */
// @ts-ignore: decorator
@inline function colLo(ranges: usize, r: usize): i32 {
  return ranges ? load<i32>(rangeOf(ranges, r), MASK_C_LO) : 0;
}

/** One past the last allowed column of the tile holding row r, at most nc. */
// @ts-ignore: decorator
@inline function colHi(ranges: usize, r: usize, nc: i32): i32 {
  return ranges ? min(nc, load<i32>(rangeOf(ranges, r), MASK_C_HI)) : nc;
}

/** First column of the tile's run allowed for every row (within [lo, hi]). */
// @ts-ignore: decorator
@inline function fullLo(ranges: usize, r: usize, lo: i32, hi: i32): i32 {
  return ranges ? min(hi, max(lo, load<i32>(rangeOf(ranges, r), MASK_F_LO))) : lo;
}

/** One past the tile's fully allowed run (within [fLo, hi]). */
// @ts-ignore: decorator
@inline function fullHi(ranges: usize, r: usize, fLo: i32, hi: i32): i32 {
  return ranges ? min(hi, max(fLo, load<i32>(rangeOf(ranges, r), MASK_F_HI))) : hi;
}

/**
 * Sᵗ[c][r] = Σ_k K[c][k] · Qᵗ[k][r], a tile of 2 L of rows × 4 keys at a time: the 4 keys'
 * values of dim k sit side by side in K' (one pointer, immediate offsets). Whole groups of
 * 4 are computed: columns outside [cLo, cHi) are written but never read.
 */
export function scores<L>(qt: usize, kRows: usize, st: usize, ranges: usize, d: i32, bs: i32, nc: i32): void {
  scoresBody<L>(qt, kRows, st, ranges, d, bs, nc, 0, false);
}

/** scores, soft-capped in registers before the tile is stored: Q is scaled by 1 / cap (the host's params.scale), so S = cap·tanh(Q·Kᵀ). */
export function scoresCapped<L>(qt: usize, kRows: usize, st: usize, ranges: usize, d: i32, bs: i32, nc: i32, cap: f32): void {
  scoresBody<L>(qt, kRows, st, ranges, d, bs, nc, cap, true);
}

// @ts-ignore: decorator
@inline function scoresBody<L>(qt: usize, kRows: usize, st: usize, ranges: usize, d: i32, bs: i32, nc: i32, cap: f32, capped: bool): void {
  const ubs = <usize>bs;
  const rowBytes = ubs * 4;
  const groupBytes = <usize>d << 4;
  const zero = splat<L>(0);
  const capL = splat<L>(cap);
  for (let r0: usize = 0; r0 < ubs; r0 += 2 * lanes<L>()) {
    const cEnd = colHi(ranges, r0, nc);
    for (let c = colLo(ranges, r0) & ~3; c < cEnd; c += 4) {
      // Sᵗ[c + j][rows] = Σ_k Qᵗ[k][rows] · K'[c / 4][k][j], j < 4
      const kp = kRows + <usize>(c >> 2) * groupBytes;
      tile<L>(st + (<usize>c * ubs + r0) * 4, rowBytes, false, zero, zero, qt + r0 * 4, rowBytes, kp, 16, 0, d, 0, false, capped, capL);
    }
  }
}

/**
 * Masks Sᵗ, updates m_i and l_i, turns Sᵗ into P = 2^(S - m_new) and writes
 * α = 2^(m_i - m_new). Rows whose keys are all masked so far keep m = -inf and P = 0.
 */
export function softmax<L>(st: usize, ranges: usize, mask: usize, mI: usize, lI: usize, alpha: usize, bs: i32, nc: i32): void {
  softmaxBody<L>(st, ranges, mask, mI, lI, alpha, bs, nc, 0, 0, 0, false);
}

/**
 * softmax with ALiBi applied to Sᵗ first (the rest of the pass unchanged): `key0` is the
 * block's first key row; posRow[r] the key row at query row r's position, slopeRow[r] its
 * −slope · dist (base 2). (The soft cap is applied before, as scoresCapped stores S.)
 */
export function softmaxAlibi<L>(
  st: usize, ranges: usize, mask: usize, mI: usize, lI: usize, alpha: usize, bs: i32, nc: i32,
  key0: i32, posRow: usize, slopeRow: usize,
): void {
  softmaxBody<L>(st, ranges, mask, mI, lI, alpha, bs, nc, key0, posRow, slopeRow, true);
}

/**
 * dst[i] = cap·tanh(src[i] / cap), i < n: the kernel's soft cap over an array, by pairs of
 * lanes as the score tile applies it (test/cpu-modifiers.test.ts checks its error).
 */
export function softcapRun(dst: usize, src: usize, n: i32, cap: f32): void {
  // x / cap first, as the host's scale of Q does for the kernel
  const inv: f32 = <f32>1.0 / cap;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const c = f32x4.splat(cap);
    const iv = f32x4.splat(inv);
    for (; i + 8 <= n; i += 8) {
      const p = <usize>i << 2;
      storeSoftcapPair<v128>(dst + p, dst + p + 16, f32x4.mul(v128.load(src + p), iv), f32x4.mul(v128.load(src + p, 16), iv), c);
    }
  }
  for (; i + 2 <= n; i += 2) {
    const p = <usize>i << 2;
    storeSoftcapPair<f32>(dst + p, dst + p + 4, load<f32>(src + p) * inv, load<f32>(src + p, 4) * inv, cap);
  }
  if (i < n) store<f32>(dst + (<usize>i << 2), softcapOf<f32>(load<f32>(src + (<usize>i << 2)) * inv, cap));
}

/** The softmax pass; `alibiOn` is a literal (each call is specialised). */
// @ts-ignore: decorator
@inline function softmaxBody<L>(
  st: usize, ranges: usize, mask: usize, mI: usize, lI: usize, alpha: usize, bs: i32, nc: i32,
  key0: i32, posRow: usize, slopeRow: usize, alibiOn: bool,
): void {
  const ubs = <usize>bs;
  const ninf = splat<L>(-Infinity);
  for (let r: usize = 0; r < ubs; r += lanes<L>()) {
    const cLo = colLo(ranges, r);
    const cEnd = colHi(ranges, r, nc);
    const fLo = fullLo(ranges, r, cLo, cEnd);
    const fHi = fullHi(ranges, r, fLo, cEnd);
    // ALiBi: rel = the row's position − key row key0 + c, in key rows (exact integers in f32)
    let rel = alibiOn ? sub<L>(load<L>(posRow + r * 4), splat<L>(<f32>(key0 + cLo))) : splat<L>(0);
    const negSlope = alibiOn ? load<L>(slopeRow + r * 4) : splat<L>(0);
    const one = splat<L>(1);
    // S = mask ? S : -inf (outside the fully allowed run only); m_new = max(m_i, rowmax S)
    let mx = load<L>(mI + r * 4);
    for (let c = cLo; c < cEnd; c++) {
      const p = st + (<usize>c * ubs + r) * 4;
      let s = load<L>(p);
      // S −= slope·dist·|pos − j|
      if (alibiOn) {
        s = madd<L>(negSlope, abs<L>(rel), s);
        rel = sub<L>(rel, one);
      }
      const masked: bool = mask != 0 && (c < fLo || c >= fHi);
      if (masked) s = bitselect<L>(s, ninf, load<L>(mask + (<usize>c * ubs + r) * 4));
      if (alibiOn || masked) store<L>(p, s);
      // pmax skips a NaN score; it still reaches the row through P = 2^(NaN - m) = NaN.
      mx = pmax<L>(mx, s);
    }
    // Rows with no allowed key yet subtract 0 instead of -inf (no -inf - -inf NaN).
    const safe = bitselect<L>(splat<L>(0), mx, eq<L>(mx, ninf));
    const a = exp2<L>(sub<L>(load<L>(mI + r * 4), safe));
    // P = 2^(S - m_new); l_i = l_i·α + rowsum P
    let sum = splat<L>(0);
    for (let c = cLo; c < cEnd; c++) {
      const p = st + (<usize>c * ubs + r) * 4;
      const e = exp2<L>(sub<L>(load<L>(p), safe));
      store<L>(p, e);
      sum = add<L>(sum, e);
    }
    store<L>(lI + r * 4, madd<L>(load<L>(lI + r * 4), a, sum));
    store<L>(mI + r * 4, mx);
    store<L>(alpha + r * 4, a);
  }
}

/**
 * Oᵗ[k][r] = Oᵗ[k][r]·α[r] + Σ_c P[c][r] · V[c][k], per 8-row tile: columns [cLo, fLo)
 * and [fHi, cHi) masked, [fLo, fHi) not. α is applied by the first run that has columns;
 * a tile with none keeps its Oᵗ (its max did not move: α = 1).
 */
export function accumulate<L>(st: usize, ranges: usize, mask: usize, vRows: usize, stride: usize, ot: usize, alpha: usize, d: i32, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  for (let r0: usize = 0; r0 < ubs; r0 += 2 * lanes<L>()) {
    const cLo = colLo(ranges, r0);
    const cEnd = colHi(ranges, r0, nc);
    if (cLo >= cEnd) continue;
    const fLo = mask ? fullLo(ranges, r0, cLo, cEnd) : cLo;
    const fHi = mask ? fullHi(ranges, r0, fLo, cEnd) : cEnd;
    let scale = true;
    if (cLo < fLo) {
      pvTile<L>(st, mask, vRows, stride, ot, alpha, d, ubs, r0, cLo, fLo, scale);
      scale = false;
    }
    if (fLo < fHi) {
      pvTile<L>(st, 0, vRows, stride, ot, alpha, d, ubs, r0, fLo, fHi, scale);
      scale = false;
    }
    if (fHi < cEnd) pvTile<L>(st, mask, vRows, stride, ot, alpha, d, ubs, r0, fHi, cEnd, scale);
  }
}

/**
 * The 2 L of rows at r0: Oᵗ = Oᵗ·α + P[c0..c1) · V[c0..c1), 4 dims at a time (a register
 * tile), then the head dim's last d % 4 one by one. With a mask each product is ANDed
 * with it, so a masked key's V (even NaN or Inf) never reaches the output, as in the
 * dense reference.
 */
function pvTile<L>(st: usize, mask: usize, vRows: usize, stride: usize, ot: usize, alpha: usize, d: i32, ubs: usize, r0: usize, c0: i32, c1: i32, scale: bool): void {
  const rowBytes = ubs * 4;
  const d4 = <usize>(d & ~3);
  const ud = <usize>d;
  const one = splat<L>(1);
  const al0 = scale ? load<L>(alpha + r0 * 4) : one;
  const al1 = scale ? load<L>(alpha + r0 * 4, sizeof<L>()) : one;
  let k: usize = 0;
  for (; k < d4; k += 4) {
    const o = ot + (k * ubs + r0) * 4;
    const p = st + (<usize>c0 * ubs + r0) * 4;
    const v = vRows + <usize>c0 * stride + (k << 2);
    // Oᵗ[k + j][rows] = Oᵗ[k + j][rows]·α + Σ_c P[c][rows] · V[c][k + j], j < 4
    if (mask) tile<L>(o, rowBytes, true, al0, al1, p, rowBytes, v, stride, c0, c1, mask + (<usize>c0 * ubs + r0) * 4, true, false, one);
    else tile<L>(o, rowBytes, true, al0, al1, p, rowBytes, v, stride, c0, c1, 0, false, false, one);
  }
  for (; k < ud; k++) {
    const o = ot + (k * ubs + r0) * 4;
    let a00 = mul<L>(load<L>(o), al0), a01 = mul<L>(load<L>(o, sizeof<L>()), al1);
    let p = st + (<usize>c0 * ubs + r0) * 4;
    let v = vRows + <usize>c0 * stride + (k << 2);
    for (let c = c0; c < c1; c++) {
      const b0 = bcast<L>(v, 0);
      let x0 = mul<L>(load<L>(p), b0);
      let x1 = mul<L>(load<L>(p, sizeof<L>()), b0);
      if (mask) {
        const m = mask + (<usize>c * ubs + r0) * 4;
        x0 = and<L>(x0, load<L>(m));
        x1 = and<L>(x1, load<L>(m, sizeof<L>()));
      }
      a00 = add<L>(a00, x0);
      a01 = add<L>(a01, x1);
      p += rowBytes;
      v += stride;
    }
    store<L>(o, a00);
    store<L>(o, a01, sizeof<L>());
  }
}

/**
 * The register tile of scores and P·V: 2 L of query rows × 4 columns j, over steps i0..i1,
 *   acc[j] += x · y[j]          x: 2 L at x (rows), y[j]: the f32 at y + 4j
 * (masked: += x · y[j] & m, m: 2 L of mask bits at m), x, y and m advancing by xStep,
 * yStep, xStep a step. acc starts at 0, or at out[j]·α (`scaled`), is soft-capped
 * (`capped`: cap·tanh(acc)) and stored to out[j] = out + j·outStep. `scaled`,
 * `masked` and `capped` are literals: each call is specialised.
 */
// @ts-ignore: decorator
@inline function tile<L>(
  out: usize, outStep: usize, scaled: bool, al0: L, al1: L,
  x: usize, xStep: usize, y: usize, yStep: usize, i0: i32, i1: i32, m: usize, masked: bool,
  capped: bool, cap: L,
): void {
  let a00 = splat<L>(0), a01 = splat<L>(0);
  let a10 = splat<L>(0), a11 = splat<L>(0);
  let a20 = splat<L>(0), a21 = splat<L>(0);
  let a30 = splat<L>(0), a31 = splat<L>(0);
  if (scaled) {
    a00 = mul<L>(load<L>(out), al0), a01 = mul<L>(load<L>(out, sizeof<L>()), al1);
    a10 = mul<L>(load<L>(out + outStep), al0), a11 = mul<L>(load<L>(out + outStep, sizeof<L>()), al1);
    a20 = mul<L>(load<L>(out + 2 * outStep), al0), a21 = mul<L>(load<L>(out + 2 * outStep, sizeof<L>()), al1);
    a30 = mul<L>(load<L>(out + 3 * outStep), al0), a31 = mul<L>(load<L>(out + 3 * outStep, sizeof<L>()), al1);
  }
  for (let i = i0; i < i1; i++) {
    const m0 = masked ? load<L>(m) : splat<L>(0);
    const m1 = masked ? load<L>(m, sizeof<L>()) : splat<L>(0);
    const x0 = load<L>(x);
    const x1 = load<L>(x, sizeof<L>());
    const b0 = bcast<L>(y, 0);
    a00 = term<L>(a00, x0, b0, m0, masked);
    a01 = term<L>(a01, x1, b0, m1, masked);
    const b1 = bcast<L>(y, 1);
    a10 = term<L>(a10, x0, b1, m0, masked);
    a11 = term<L>(a11, x1, b1, m1, masked);
    const b2 = bcast<L>(y, 2);
    a20 = term<L>(a20, x0, b2, m0, masked);
    a21 = term<L>(a21, x1, b2, m1, masked);
    const b3 = bcast<L>(y, 3);
    a30 = term<L>(a30, x0, b3, m0, masked);
    a31 = term<L>(a31, x1, b3, m1, masked);
    x += xStep;
    if (masked) m += xStep;
    y += yStep;
  }
  if (capped) {
    storeSoftcapPair<L>(out, out + sizeof<L>(), a00, a01, cap);
    storeSoftcapPair<L>(out + outStep, out + outStep + sizeof<L>(), a10, a11, cap);
    storeSoftcapPair<L>(out + 2 * outStep, out + 2 * outStep + sizeof<L>(), a20, a21, cap);
    storeSoftcapPair<L>(out + 3 * outStep, out + 3 * outStep + sizeof<L>(), a30, a31, cap);
    return;
  }
  store<L>(out, a00);
  store<L>(out, a01, sizeof<L>());
  store<L>(out + outStep, a10);
  store<L>(out + outStep, a11, sizeof<L>());
  store<L>(out + 2 * outStep, a20);
  store<L>(out + 2 * outStep, a21, sizeof<L>());
  store<L>(out + 3 * outStep, a30);
  store<L>(out + 3 * outStep, a31, sizeof<L>());
}

/** acc + x·b; masked: acc + (x·b & m), so a masked key's V (even NaN or Inf) never reaches O. */
// @ts-ignore: decorator
@inline function term<L>(acc: L, x: L, b: L, m: L, masked: bool): L {
  return masked ? add<L>(acc, and<L>(mul<L>(x, b), m)) : madd<L>(x, b, acc);
}
