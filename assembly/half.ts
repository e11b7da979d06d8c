// IEEE half (binary16) storage: conversions between half bits and f32, done where the
// rows enter the kernel (packing K and V, loading Q, widening a cached key block) and where
// they leave it (storing O). WebAssembly has no f16 instructions, so these are integer bit
// operations: on i32x4 lanes in the SIMD builds, on one i32 in the scalar build. Every half
// converts exactly (subnormals, ±Inf, NaN with its payload); f32 → half rounds to nearest,
// ties to even, overflows to ±Inf and keeps NaN a (quiet) NaN.

// half magnitude << 13 is an f32 whose exponent is 112 too small: × 2^112 rebiases it, which
// also normalises a subnormal half exactly (the product is representable).
const REBIAS: f32 = 5.192296858534828e33; // 2^112
const F16_INF_BITS: i32 = 0x7c00;
const F32_EXP_BITS: i32 = 0x7f800000;
// f32 → half: magnitudes from 2^16 · (2 − 2^-11) round to Inf; below 2^-14 the result is subnormal.
const F16_OVERFLOW: i32 = (127 + 16) << 23;
const F16_MIN_NORMAL: i32 = 113 << 23;
// 0.5: added to a magnitude below 2^-14 it leaves the half's subnormal mantissa (units of 2^-24,
// the ulp of 0.5) in the sum's low bits, rounded to nearest even by the addition itself.
const DENORM_MAGIC: i32 = ((127 - 15) + (23 - 10) + 1) << 23;

/** f32 of the half in the low 16 bits of h. */
// @ts-ignore: decorator
@inline export function halfToF32(h: i32): f32 {
  const mag = (h & 0x7fff) << 13;
  const sign = (h & 0x8000) << 16;
  const bits = (h & 0x7fff) >= F16_INF_BITS ? mag | F32_EXP_BITS : reinterpret<i32>(reinterpret<f32>(mag) * REBIAS);
  return reinterpret<f32>(bits | sign);
}

/** Half bits of x, rounded to nearest even. */
// @ts-ignore: decorator
@inline export function f32ToHalf(x: f32): i32 {
  let f = reinterpret<i32>(x);
  const sign = (f >>> 16) & 0x8000;
  f &= 0x7fffffff;
  let o: i32;
  if (f >= F16_OVERFLOW) {
    o = f > F32_EXP_BITS ? 0x7e00 | ((f >>> 13) & 0x3ff) : F16_INF_BITS;
  } else if (f < F16_MIN_NORMAL) {
    o = reinterpret<i32>(reinterpret<f32>(f) + reinterpret<f32>(DENORM_MAGIC)) - DENORM_MAGIC;
  } else {
    const odd = (f >>> 13) & 1;
    o = (f + (((15 - 127) << 23) + 0xfff) + odd) >>> 13;
  }
  return o | sign;
}

/** f32x4 of 4 halves held in the low 16 bits of each i32 lane. */
// @ts-ignore: decorator
@inline export function halfToF32x4(h: v128): v128 {
  const m = v128.and(h, i32x4.splat(0x7fff));
  const mag = i32x4.shl(m, 13);
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const finite = f32x4.mul(mag, f32x4.splat(REBIAS));
  const special = v128.or(mag, i32x4.splat(F32_EXP_BITS));
  const isSpecial = i32x4.gt_s(m, i32x4.splat(F16_INF_BITS - 1));
  return v128.or(v128.bitselect(special, finite, isSpecial), sign);
}

/** Half bits (low 16 bits of each i32 lane) of 4 f32, rounded to nearest even. */
// @ts-ignore: decorator
@inline export function f32x4ToHalf(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 16), i32x4.splat(0x8000));
  const f = v128.and(x, i32x4.splat(0x7fffffff));
  // NaN keeps the top of its payload, made quiet; Inf and overflow become Inf
  const nan = v128.or(i32x4.splat(0x7e00), v128.and(i32x4.shr_u(f, 13), i32x4.splat(0x3ff)));
  const big = v128.bitselect(nan, i32x4.splat(F16_INF_BITS), i32x4.gt_s(f, i32x4.splat(F32_EXP_BITS)));
  const sub = i32x4.sub(f32x4.add(f, i32x4.splat(DENORM_MAGIC)), i32x4.splat(DENORM_MAGIC));
  const odd = v128.and(i32x4.shr_u(f, 13), i32x4.splat(1));
  const norm = i32x4.shr_u(i32x4.add(i32x4.add(f, i32x4.splat(((15 - 127) << 23) + 0xfff)), odd), 13);
  let o = v128.bitselect(sub, norm, i32x4.lt_s(f, i32x4.splat(F16_MIN_NORMAL)));
  o = v128.bitselect(big, o, i32x4.gt_s(f, i32x4.splat(F16_OVERFLOW - 1)));
  return v128.or(o, sign);
}

/** 4 halves at p, as f32x4. */
// @ts-ignore: decorator
@inline export function loadHalf4(p: usize): v128 {
  return halfToF32x4(v128.load16x4_u(p));
}

/** Stores the 4 lanes of h (half bits in each i32's low 16) as 4 halves at p. */
// @ts-ignore: decorator
@inline export function storeHalf4(p: usize, h: v128): void {
  // narrow_i32x4_u saturates at 0xffff: half bits are below it
  v128.store64_lane(p, i16x8.narrow_i32x4_u(h, h), 0);
}

/** dst[i] = f32 of the half src[i], i < n: one contiguous run (a row, a packed key block). */
export function widenRun(dst: usize, src: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(src + (<usize>i << 1));
      v128.store(dst + (<usize>i << 2), halfToF32x4(i32x4.extend_low_i16x8_u(h)));
      v128.store(dst + (<usize>i << 2), halfToF32x4(i32x4.extend_high_i16x8_u(h)), 16);
    }
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), loadHalf4(src + (<usize>i << 1)));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), halfToF32(<i32>load<u16>(src + (<usize>i << 1))));
}

/** dst[k][i] = src[i][k] for keys i < n (of 4), k < d, from half rows `stride` bytes apart; the 4 keys interleaved (rows.ts packKeys4). */
export function packKeys4Half(dst: usize, src: usize, stride: usize, n: i32, d: usize): void {
  let k: usize = 0;
  if (ASC_FEATURE_SIMD && n == 4) {
    for (; k + 4 <= d; k += 4) {
      const s = src + (k << 1);
      transpose4Store(dst + (k << 4), 16, loadHalf4(s), loadHalf4(s + stride), loadHalf4(s + 2 * stride), loadHalf4(s + 3 * stride));
    }
  }
  for (; k < d; k++) {
    for (let i = 0; i < 4; i++) {
      store<f32>(dst + (k << 4) + (<usize>i << 2), i < n ? halfToF32(<i32>load<u16>(src + <usize>i * stride + (k << 1))) : 0);
    }
  }
}

/** dst[k][r] = src[r][k] · scale from half rows, for r < rows; 0 for rows <= r < bs (rows.ts loadQueryT). */
export function loadQueryTHalf(dst: usize, src: usize, stride: usize, rows: i32, d: i32, bs: i32, scale: f32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const sc = f32x4.splat(scale);
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const s0 = src + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        const s = s0 + (<usize>k << 1);
        transpose4Store(
          dst + (<usize>k * ubs + <usize>r) * 4, ubs * 4,
          f32x4.mul(loadHalf4(s), sc), f32x4.mul(loadHalf4(s + stride), sc),
          f32x4.mul(loadHalf4(s + 2 * stride), sc), f32x4.mul(loadHalf4(s + 3 * stride), sc),
        );
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          store<f32>(dst + (<usize>k * ubs + <usize>(r + i)) * 4, halfToF32(<i32>load<u16>(s0 + <usize>i * stride + (<usize>k << 1))) * scale);
        }
      }
    }
  }
  for (; r < bs; r++) {
    const s0 = src + <usize>r * stride;
    const live = r < rows;
    for (let k = 0; k < d; k++) {
      store<f32>(dst + (<usize>k * ubs + <usize>r) * 4, live ? halfToF32(<i32>load<u16>(s0 + (<usize>k << 1))) * scale : 0);
    }
  }
}

/** dst[r][k] = half(ot[k][r] · inv[r]) for r < rows, rounded to nearest even (rows.ts storeOutput). */
export function storeOutputHalf(dst: usize, stride: usize, ot: usize, inv: usize, rows: i32, d: i32, bs: i32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const iv = v128.load(inv + (<usize>r << 2));
      const d0 = dst + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        // dims k..k+3 × rows r..r+3, each row times 1 / l_i -> rows × dims
        const o = ot + (<usize>k * ubs + <usize>r) * 4;
        const a = f32x4.mul(v128.load(o), iv);
        const b = f32x4.mul(v128.load(o + ubs * 4), iv);
        const c = f32x4.mul(v128.load(o + ubs * 8), iv);
        const e = f32x4.mul(v128.load(o + ubs * 12), iv);
        const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
        const p = d0 + (<usize>k << 1);
        storeHalf4(p, f32x4ToHalf(v128.shuffle<f32>(t0, t2, 0, 1, 4, 5)));
        storeHalf4(p + stride, f32x4ToHalf(v128.shuffle<f32>(t0, t2, 2, 3, 6, 7)));
        storeHalf4(p + 2 * stride, f32x4ToHalf(v128.shuffle<f32>(t1, t3, 0, 1, 4, 5)));
        storeHalf4(p + 3 * stride, f32x4ToHalf(v128.shuffle<f32>(t1, t3, 2, 3, 6, 7)));
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          const x = load<f32>(ot + (<usize>k * ubs + <usize>(r + i)) * 4) * load<f32>(inv + (<usize>(r + i) << 2));
          store<u16>(d0 + <usize>i * stride + (<usize>k << 1), <u16>f32ToHalf(x));
        }
      }
    }
  }
  for (; r < rows; r++) {
    const d0 = dst + <usize>r * stride;
    const iv = load<f32>(inv + (<usize>r << 2));
    for (let k = 0; k < d; k++) {
      store<u16>(d0 + (<usize>k << 1), <u16>f32ToHalf(load<f32>(ot + (<usize>k * ubs + <usize>r) * 4) * iv));
    }
  }
}

/** Stores column j of the 4×4 block with rows a, b, c, e at dst + j·dstStep. */
// @ts-ignore: decorator
@inline function transpose4Store(dst: usize, dstStep: usize, a: v128, b: v128, c: v128, e: v128): void {
  const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
  const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
  v128.store(dst + dstStep, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * dstStep, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * dstStep, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
}

/** dst[i] = half bits of the f32 src[i], i < n, as storeOutputHalf rounds them (exported for test/f16.test.ts). */
export function narrowRun(dst: usize, src: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) storeHalf4(dst + (<usize>i << 1), f32x4ToHalf(v128.load(src + (<usize>i << 2))));
  }
  for (; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToHalf(load<f32>(src + (<usize>i << 2))));
}

/** A grouped query row's address: row r is query (r / G) of head (r % G) of the group (rows.ts groupRow, halves). */
// @ts-ignore: decorator
@inline function groupRowHalf(base: usize, stride: usize, G: i32, r: i32, d: i32): usize {
  return base + <usize>(r / G) * stride + <usize>(r % G) * (<usize>d << 1);
}

/**
 * loadQueryTHalf for grouped rows (GQA: the query heads of one K/V head as one tile's rows).
 * Row by row: Q is read once per query block, against a block's whole key walk.
 */
export function loadQueryGroupTHalf(dst: usize, base: usize, stride: usize, G: i32, row0: i32, rows: i32, d: i32, bs: i32, scale: f32): void {
  const ubs = <usize>bs;
  for (let r = 0; r < bs; r++) {
    const live = r < rows;
    const s0 = live ? groupRowHalf(base, stride, G, row0 + r, d) : 0;
    for (let k = 0; k < d; k++) {
      store<f32>(dst + (<usize>k * ubs + <usize>r) * 4, live ? halfToF32(<i32>load<u16>(s0 + (<usize>k << 1))) * scale : 0);
    }
  }
}

/** storeOutputHalf for grouped rows, row by row (see loadQueryGroupTHalf). */
export function storeOutputGroupHalf(base: usize, stride: usize, G: i32, row0: i32, ot: usize, inv: usize, rows: i32, d: i32, bs: i32): void {
  const ubs = <usize>bs;
  for (let r = 0; r < rows; r++) {
    const o0 = groupRowHalf(base, stride, G, row0 + r, d);
    const iv = load<f32>(inv + (<usize>r << 2));
    for (let k = 0; k < d; k++) {
      store<u16>(o0 + (<usize>k << 1), <u16>f32ToHalf(load<f32>(ot + (<usize>k * ubs + <usize>r) * 4) * iv));
    }
  }
}
