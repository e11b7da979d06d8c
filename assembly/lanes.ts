// Lane arithmetic, written once for both kinds of build. A lane type L is v128 (4 f32
// query rows side by side: the SIMD builds) or f32 (1 row: the scalar build); the block
// functions (block.ts) are generic over L and instantiated once per build, so the SIMD
// and scalar kernels are one code. Only these helpers know the difference: each is inline
// and its other branch is removed at compile time (isVector<L>() is a constant).
// Masks are lanes whose bits are all 1 (allowed, true) or all 0, as f32x4 comparisons give;
// the scalar build does the same bitwise on the f32's bits, so both builds round alike.

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

/** Query rows in one L. */
// @ts-ignore: decorator
@inline export function lanes<L>(): usize {
  return sizeof<L>() >> 2;
}

// @ts-ignore: decorator
@inline export function splat<L>(x: f32): L {
  if (isVector<L>()) return <L>f32x4.splat(x);
  return <L>x;
}

/** The f32 at p + 4·j in every lane; j is a literal 0..3 (an immediate offset). */
// @ts-ignore: decorator
@inline export function bcast<L>(p: usize, j: i32): L {
  if (isVector<L>()) {
    if (j == 0) return <L>v128.load32_splat(p);
    if (j == 1) return <L>v128.load32_splat(p, 4);
    if (j == 2) return <L>v128.load32_splat(p, 8);
    return <L>v128.load32_splat(p, 12);
  }
  if (j == 0) return <L>load<f32>(p);
  if (j == 1) return <L>load<f32>(p, 4);
  if (j == 2) return <L>load<f32>(p, 8);
  return <L>load<f32>(p, 12);
}

// @ts-ignore: decorator
@inline export function add<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.add(<v128>a, <v128>b);
  return a + b;
}

// @ts-ignore: decorator
@inline export function sub<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.sub(<v128>a, <v128>b);
  return a - b;
}

// @ts-ignore: decorator
@inline export function mul<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.mul(<v128>a, <v128>b);
  return a * b;
}

// @ts-ignore: decorator
@inline export function div<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.div(<v128>a, <v128>b);
  return a / b;
}

/** |a| (the sign bit cleared). */
// @ts-ignore: decorator
@inline export function abs<L>(a: L): L {
  if (isVector<L>()) return <L>f32x4.abs(<v128>a);
  return reinterpret<f32>(reinterpret<i32>(a) & 0x7fffffff);
}

/** a·b + c: one rounding with relaxed SIMD (FMA), two elsewhere. */
// @ts-ignore: decorator
@inline export function madd<L>(a: L, b: L, c: L): L {
  if (isVector<L>()) {
    if (ASC_FEATURE_RELAXED_SIMD) return <L>f32x4.relaxed_madd(<v128>a, <v128>b, <v128>c);
    return <L>f32x4.add(f32x4.mul(<v128>a, <v128>b), <v128>c);
  }
  return a * b + c;
}

/** a < b ? b : a: a NaN b is skipped (f32x4.pmax). */
// @ts-ignore: decorator
@inline export function pmax<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.pmax(<v128>a, <v128>b);
  return a < b ? b : a;
}

// @ts-ignore: decorator
@inline export function eq<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.eq(<v128>a, <v128>b);
  return reinterpret<f32>(a == b ? -1 : 0);
}

// @ts-ignore: decorator
@inline export function lt<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.lt(<v128>a, <v128>b);
  return reinterpret<f32>(a < b ? -1 : 0);
}

/** a & m */
// @ts-ignore: decorator
@inline export function and<L>(a: L, m: L): L {
  if (isVector<L>()) return <L>v128.and(<v128>a, <v128>m);
  return reinterpret<f32>(reinterpret<i32>(a) & reinterpret<i32>(m));
}

/** a & ~m */
// @ts-ignore: decorator
@inline export function andnot<L>(a: L, m: L): L {
  if (isVector<L>()) return <L>v128.andnot(<v128>a, <v128>m);
  return reinterpret<f32>(reinterpret<i32>(a) & ~reinterpret<i32>(m));
}

/** m ? a : b, bit by bit */
// @ts-ignore: decorator
@inline export function bitselect<L>(a: L, b: L, m: L): L {
  if (isVector<L>()) return <L>v128.bitselect(<v128>a, <v128>b, <v128>m);
  const mi = reinterpret<i32>(m);
  return reinterpret<f32>((reinterpret<i32>(a) & mi) | (reinterpret<i32>(b) & ~mi));
}

/** 2^n for the integer n = bits(t) - bits(EXP_MAGIC) held in t's low mantissa bits: (n + 127) << 23. */
// @ts-ignore: decorator
@inline function pow2<L>(t: L): L {
  if (isVector<L>()) return <L>i32x4.shl(i32x4.add(<v128>t, i32x4.splat(127 - EXP_MAGIC_BITS)), 23);
  return reinterpret<f32>((reinterpret<i32>(t) + (127 - EXP_MAGIC_BITS)) << 23);
}

/**
 * 2^x for x <= 0 (or NaN); exact 0 below 2^-125. round(x) comes from adding 1.5·2^23 (its
 * low mantissa bits then hold the integer), which is also 2^n's exponent field: cheaper on
 * x64 than f32x4.nearest + i32x4.trunc_sat, which V8 expands into NaN-safe sequences.
 * pmax keeps a NaN x (pmax(a, b) = a < b ? b : a).
 */
// @ts-ignore: decorator
@inline export function exp2<L>(x: L): L {
  const xc = pmax<L>(x, splat<L>(-127.0));
  const t = add<L>(xc, splat<L>(EXP_MAGIC));
  const n = sub<L>(t, splat<L>(EXP_MAGIC));
  const r = sub<L>(xc, n);
  let p = madd<L>(splat<L>(EXP_C5), r, splat<L>(EXP_C4));
  p = madd<L>(p, r, splat<L>(EXP_C3));
  p = madd<L>(p, r, splat<L>(EXP_C2));
  p = madd<L>(p, r, splat<L>(EXP_C1));
  p = madd<L>(p, r, splat<L>(EXP_C0));
  const y = mul<L>(p, pow2<L>(t));
  return andnot<L>(y, lt<L>(x, splat<L>(EXP_FLUSH)));
}

// tanh(t) = t·P(t²) / Q(t²) on t clamped to ±TANH_CLAMP (tanh(8) = 1 − 2.3e-7): a rational
// minimax fit of degrees 3 / 4 in t² (relative error 1.8e-7 in exact arithmetic; fitted by
// linear-programming differential correction on 6,000 points of [0, 8]). Max relative error
// with f32 rounding and the paired divide (storeSoftcapPair) 5.1e-7 over 1e-6 ≤ |t| ≤ 1e3
// (test/cpu-modifiers.test.ts holds every build to 8e-7).
const TANH_CLAMP: f32 = 8.0;
const TANH_P0: f32 = 0.9999998575336304;
const TANH_P1: f32 = 0.12923016779412078;
const TANH_P2: f32 = 0.0029481945496520655;
const TANH_P3: f32 = 1.1398856981631138e-05;
const TANH_Q1: f32 = 0.4625623313047194;
const TANH_Q2: f32 = 0.02380392213675131;
const TANH_Q3: f32 = 0.00023827430456598633;
const TANH_Q4: f32 = 2.450022849604648e-07;

/** a < b ? a : b, a NaN a kept (f32x4.pmin(b, a) = a < b ? a : b). */
// @ts-ignore: decorator
@inline function pminKeep<L>(a: L, b: L): L {
  if (isVector<L>()) return <L>f32x4.pmin(<v128>b, <v128>a);
  return b < a ? b : a;
}

/**
 * Gemma 2's soft cap on a base-2 score S = c·t (the kernel scales Q by 1 / c so that its
 * scores are t = S / c already): c·tanh(t) by the rational fit above, 7 multiply-adds, a
 * divide and no branch; ±Inf give ±c·tanh(8), NaN stays NaN.
 */
// @ts-ignore: decorator
@inline export function softcapOf<L>(t: L, c: L): L {
  const tc = capClamp<L>(t);
  return div<L>(capNum<L>(tc, c), capDen<L>(tc));
}

/**
 * softcapOf of a and b, stored at pa and pb, with one divide: with r = 1 / (da·db),
 * na / da = na·db·r and nb / db = nb·da·r (d >= 1 and da·db < 4e4: no overflow; two
 * more roundings). A divide issues every 4–5 cycles where multiplies issue twice a cycle
 * (the soft cap cost 11% of W2 `local` with a divide a lane, 3.5% with none, on a
 * 2-core AMD EPYC).
 */
// @ts-ignore: decorator
@inline export function storeSoftcapPair<L>(pa: usize, pb: usize, a: L, b: L, c: L): void {
  const ta = capClamp<L>(a);
  const tb = capClamp<L>(b);
  const da = capDen<L>(ta);
  const db = capDen<L>(tb);
  const r = div<L>(splat<L>(1), mul<L>(da, db));
  store<L>(pa, mul<L>(mul<L>(capNum<L>(ta, c), db), r));
  store<L>(pb, mul<L>(mul<L>(capNum<L>(tb, c), da), r));
}

/** t clamped to ±TANH_CLAMP (NaN kept). */
// @ts-ignore: decorator
@inline function capClamp<L>(t: L): L {
  return pminKeep<L>(pmax<L>(t, splat<L>(-TANH_CLAMP)), splat<L>(TANH_CLAMP));
}

/** c · t · P(t²) */
// @ts-ignore: decorator
@inline function capNum<L>(tc: L, c: L): L {
  const u = mul<L>(tc, tc);
  let p = madd<L>(u, splat<L>(TANH_P3), splat<L>(TANH_P2));
  p = madd<L>(p, u, splat<L>(TANH_P1));
  p = madd<L>(p, u, splat<L>(TANH_P0));
  return mul<L>(p, mul<L>(c, tc));
}

/** Q(t²) >= 1 */
// @ts-ignore: decorator
@inline function capDen<L>(tc: L): L {
  const u = mul<L>(tc, tc);
  let q = madd<L>(u, splat<L>(TANH_Q4), splat<L>(TANH_Q3));
  q = madd<L>(q, u, splat<L>(TANH_Q2));
  q = madd<L>(q, u, splat<L>(TANH_Q1));
  return madd<L>(q, u, splat<L>(1));
}
