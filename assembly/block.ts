// One key block of a query block, in three steps: S = Q·Kᵀ (scores), the online softmax
// update (softmax), O = O·α + P·V (accumulate). Generic over the lane type L (lanes.ts):
// v128 in the SIMD builds, f32 in the scalar build, so both run this code. Register tiles
// are 2 L of query rows (8 rows SIMD, 2 scalar) × 4 keys or dims.

import { MASK_C_HI, MASK_C_LO, MASK_F_HI, MASK_F_LO, MASK_RANGE_SHIFT, MASK_TILE_SHIFT } from './abi.generated';
import { add, and, bcast, bitselect, eq, exp2, lanes, madd, mul, pmax, splat, sub } from './lanes';

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

/**
 * Sᵗ[c][r] = Σ_k K[c][k] · Qᵗ[k][r]; register tile 2 L of rows × 4 keys, the 4 keys' values of
 * dim k side by side in K' (one pointer, immediate offsets). Whole groups of 4 are
 * computed: columns outside [cLo, cHi) are written but never read.
 */
export function scores<L>(qt: usize, kRows: usize, st: usize, ranges: usize, d: i32, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  const rowBytes = ubs * 4;
  const groupBytes = <usize>d << 4;
  for (let r0: usize = 0; r0 < ubs; r0 += 2 * lanes<L>()) {
    const cEnd = colHi(ranges, r0, nc);
    for (let c = colLo(ranges, r0) & ~3; c < cEnd; c += 4) {
      let kp = kRows + <usize>(c >> 2) * groupBytes;
      let a00 = splat<L>(0), a01 = splat<L>(0);
      let a10 = splat<L>(0), a11 = splat<L>(0);
      let a20 = splat<L>(0), a21 = splat<L>(0);
      let a30 = splat<L>(0), a31 = splat<L>(0);
      let q = qt + r0 * 4;
      for (let k = 0; k < d; k++) {
        const q0 = load<L>(q);
        const q1 = load<L>(q, sizeof<L>());
        const b0 = bcast<L>(kp, 0);
        a00 = madd<L>(q0, b0, a00);
        a01 = madd<L>(q1, b0, a01);
        const b1 = bcast<L>(kp, 1);
        a10 = madd<L>(q0, b1, a10);
        a11 = madd<L>(q1, b1, a11);
        const b2 = bcast<L>(kp, 2);
        a20 = madd<L>(q0, b2, a20);
        a21 = madd<L>(q1, b2, a21);
        const b3 = bcast<L>(kp, 3);
        a30 = madd<L>(q0, b3, a30);
        a31 = madd<L>(q1, b3, a31);
        q += rowBytes;
        kp += 16;
      }
      const s = st + (<usize>c * ubs + r0) * 4;
      store<L>(s, a00);
      store<L>(s, a01, sizeof<L>());
      store<L>(s + rowBytes, a10);
      store<L>(s + rowBytes, a11, sizeof<L>());
      store<L>(s + 2 * rowBytes, a20);
      store<L>(s + 2 * rowBytes, a21, sizeof<L>());
      store<L>(s + 3 * rowBytes, a30);
      store<L>(s + 3 * rowBytes, a31, sizeof<L>());
    }
  }
}

/**
 * Masks Sᵗ, updates m_i and l_i, turns Sᵗ into P = 2^(S - m_new) and writes
 * α = 2^(m_i - m_new). Rows whose keys are all masked so far keep m = -inf and P = 0.
 */
export function softmax<L>(st: usize, ranges: usize, mask: usize, mI: usize, lI: usize, alpha: usize, bs: i32, nc: i32): void {
  const ubs = <usize>bs;
  const ninf = splat<L>(-Infinity);
  for (let r: usize = 0; r < ubs; r += lanes<L>()) {
    const cLo = colLo(ranges, r);
    const cEnd = colHi(ranges, r, nc);
    const fLo = fullLo(ranges, r, cLo, cEnd);
    const fHi = fullHi(ranges, r, fLo, cEnd);
    // S = mask ? S : -inf (outside the fully allowed run only); m_new = max(m_i, rowmax S)
    let mx = load<L>(mI + r * 4);
    for (let c = cLo; c < cEnd; c++) {
      const p = st + (<usize>c * ubs + r) * 4;
      let s = load<L>(p);
      if (mask && (c < fLo || c >= fHi)) {
        s = bitselect<L>(s, ninf, load<L>(mask + (<usize>c * ubs + r) * 4));
        store<L>(p, s);
      }
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
 * Rows r0 .. r0 + 2·lanes of Oᵗ += P[c0..c1) · V[c0..c1); register tile 2 L of rows × 4 dims. With a
 * mask each product is ANDed with it, so a masked key's V (even NaN or Inf) never
 * reaches the output, as in the dense reference.
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
    let a00 = mul<L>(load<L>(o), al0), a01 = mul<L>(load<L>(o, sizeof<L>()), al1);
    let a10 = mul<L>(load<L>(o + rowBytes), al0), a11 = mul<L>(load<L>(o + rowBytes, sizeof<L>()), al1);
    let a20 = mul<L>(load<L>(o + 2 * rowBytes), al0), a21 = mul<L>(load<L>(o + 2 * rowBytes, sizeof<L>()), al1);
    let a30 = mul<L>(load<L>(o + 3 * rowBytes), al0), a31 = mul<L>(load<L>(o + 3 * rowBytes, sizeof<L>()), al1);
    let p = st + (<usize>c0 * ubs + r0) * 4;
    let v = vRows + <usize>c0 * stride + (k << 2);
    if (mask) {
      let m = mask + (<usize>c0 * ubs + r0) * 4;
      for (let c = c0; c < c1; c++) {
        const m0 = load<L>(m);
        const m1 = load<L>(m, sizeof<L>());
        const p0 = load<L>(p);
        const p1 = load<L>(p, sizeof<L>());
        const b0 = bcast<L>(v, 0);
        a00 = add<L>(a00, and<L>(mul<L>(p0, b0), m0));
        a01 = add<L>(a01, and<L>(mul<L>(p1, b0), m1));
        const b1 = bcast<L>(v, 1);
        a10 = add<L>(a10, and<L>(mul<L>(p0, b1), m0));
        a11 = add<L>(a11, and<L>(mul<L>(p1, b1), m1));
        const b2 = bcast<L>(v, 2);
        a20 = add<L>(a20, and<L>(mul<L>(p0, b2), m0));
        a21 = add<L>(a21, and<L>(mul<L>(p1, b2), m1));
        const b3 = bcast<L>(v, 3);
        a30 = add<L>(a30, and<L>(mul<L>(p0, b3), m0));
        a31 = add<L>(a31, and<L>(mul<L>(p1, b3), m1));
        p += rowBytes;
        m += rowBytes;
        v += stride;
      }
    } else {
      for (let c = c0; c < c1; c++) {
        const p0 = load<L>(p);
        const p1 = load<L>(p, sizeof<L>());
        const b0 = bcast<L>(v, 0);
        a00 = madd<L>(p0, b0, a00);
        a01 = madd<L>(p1, b0, a01);
        const b1 = bcast<L>(v, 1);
        a10 = madd<L>(p0, b1, a10);
        a11 = madd<L>(p1, b1, a11);
        const b2 = bcast<L>(v, 2);
        a20 = madd<L>(p0, b2, a20);
        a21 = madd<L>(p1, b2, a21);
        const b3 = bcast<L>(v, 3);
        a30 = madd<L>(p0, b3, a30);
        a31 = madd<L>(p1, b3, a31);
        p += rowBytes;
        v += stride;
      }
    }
    store<L>(o, a00);
    store<L>(o, a01, sizeof<L>());
    store<L>(o + rowBytes, a10);
    store<L>(o + rowBytes, a11, sizeof<L>());
    store<L>(o + 2 * rowBytes, a20);
    store<L>(o + 2 * rowBytes, a21, sizeof<L>());
    store<L>(o + 3 * rowBytes, a30);
    store<L>(o + 3 * rowBytes, a31, sizeof<L>());
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
