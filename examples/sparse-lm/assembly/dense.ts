// The example's dense layers: Y[n, m] (+)= X[n, k] · W[k, m] with W pre-packed in panels of
// 8 columns (Wp[m/8][k][8], see packPanels in ../dense.mjs), so that each k step of a
// register tile reads one contiguous 32-byte row of its panel. Register tile: 4 rows × 8
// columns = 8 f32x4 accumulators (+ 2 panel loads + 1 splat: 11 of x86's 16 xmm registers);
// 1 row × 8 columns for the rows left over and for decode (n = 1).
// Buffers are raw pointers into this module's memory; the caller guarantees m % 8 == 0.

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Rows of X walked per pass over the panels: 32 rows · 704 f32 = 88 KiB stay in L2. */
const ROW_BLOCK: i32 = 32;

/**
 * Y = X · W (acc = 0) or Y += X · W (acc = 1), for the output columns of panels [p0, p1)
 * (threads split the panels: every output is computed by one thread, in the same order).
 * x: [n, k] row-major; wp: [m/8, k, 8] packed panels; y: [n, m] row-major.
 */
export function matmul(x: usize, wp: usize, y: usize, n: i32, k: i32, m: i32, acc: i32, p0: i32, p1: i32): void {
  const xs = <usize>k << 2; // bytes per X row
  const ys = <usize>m << 2; // bytes per Y row
  const ps = <usize>k << 5; // bytes per panel: k · 8 f32
  for (let r0 = 0; r0 < n; r0 += ROW_BLOCK) {
    const r1 = min(n, r0 + ROW_BLOCK);
    for (let p = p0; p < p1; p++) {
      const w0 = wp + <usize>p * ps;
      let r = r0;
      for (; r + 4 <= r1; r += 4) {
        const xr = x + <usize>r * xs;
        const yr = y + <usize>r * ys + (<usize>p << 5);
        // acc{row}{half}: rows r..r+3, columns 8p..8p+3 (a) and 8p+4..8p+7 (b)
        let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
        let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
        let wk = w0;
        let xk = xr;
        for (let i = 0; i < k; i++) {
          // acc += X[r.., i] · Wp[p, i, 0..7]
          const wa = v128.load(wk);
          const wb = v128.load(wk, 16);
          let s = v128.load32_splat(xk);
          a0 = madd(s, wa, a0); b0 = madd(s, wb, b0);
          s = v128.load32_splat(xk + xs);
          a1 = madd(s, wa, a1); b1 = madd(s, wb, b1);
          s = v128.load32_splat(xk + 2 * xs);
          a2 = madd(s, wa, a2); b2 = madd(s, wb, b2);
          s = v128.load32_splat(xk + 3 * xs);
          a3 = madd(s, wa, a3); b3 = madd(s, wb, b3);
          wk += 32;
          xk += 4;
        }
        if (acc) {
          a0 = f32x4.add(a0, v128.load(yr)); b0 = f32x4.add(b0, v128.load(yr, 16));
          a1 = f32x4.add(a1, v128.load(yr + ys)); b1 = f32x4.add(b1, v128.load(yr + ys, 16));
          a2 = f32x4.add(a2, v128.load(yr + 2 * ys)); b2 = f32x4.add(b2, v128.load(yr + 2 * ys, 16));
          a3 = f32x4.add(a3, v128.load(yr + 3 * ys)); b3 = f32x4.add(b3, v128.load(yr + 3 * ys, 16));
        }
        v128.store(yr, a0); v128.store(yr, b0, 16);
        v128.store(yr + ys, a1); v128.store(yr + ys, b1, 16);
        v128.store(yr + 2 * ys, a2); v128.store(yr + 2 * ys, b2, 16);
        v128.store(yr + 3 * ys, a3); v128.store(yr + 3 * ys, b3, 16);
      }
      for (; r < r1; r++) rowPanel(x + <usize>r * xs, w0, y + <usize>r * ys + (<usize>p << 5), k, acc);
    }
  }
}

/** One row × one panel: two accumulator pairs over even and odd k, so the adds overlap. */
// @ts-ignore: decorator
@inline function rowPanel(xr: usize, w0: usize, yr: usize, k: i32, acc: i32): void {
  let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
  let wk = w0;
  let xk = xr;
  let i = 0;
  for (; i + 2 <= k; i += 2) {
    const s0 = v128.load32_splat(xk);
    const s1 = v128.load32_splat(xk, 4);
    a0 = madd(s0, v128.load(wk), a0); b0 = madd(s0, v128.load(wk, 16), b0);
    a1 = madd(s1, v128.load(wk, 32), a1); b1 = madd(s1, v128.load(wk, 48), b1);
    wk += 64;
    xk += 8;
  }
  if (i < k) {
    const s0 = v128.load32_splat(xk);
    a0 = madd(s0, v128.load(wk), a0); b0 = madd(s0, v128.load(wk, 16), b0);
  }
  a0 = f32x4.add(a0, a1);
  b0 = f32x4.add(b0, b1);
  if (acc) {
    a0 = f32x4.add(a0, v128.load(yr));
    b0 = f32x4.add(b0, v128.load(yr, 16));
  }
  v128.store(yr, a0);
  v128.store(yr, b0, 16);
}

// exp(x) = 2^n · p(r), n = round(x · log2 e), r = x − n · ln 2 (ln 2 split in two for
// precision); p: Cephes expf's degree-7 polynomial (≈ 1 ulp on [−ln2/2, ln2/2]). x is
// clamped to [−87.3, 88.7] so that 2^n stays a normal f32.
// @ts-ignore: decorator
@inline function expf4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.3)), f32x4.splat(88.7));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504089)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  // 2^n: n + 127 in the exponent bits
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, e);
}

/** SwiGLU's gate, in place, for i in [from, to): g[i] = silu(g[i]) · u[i] = g[i] / (1 + exp(−g[i])) · u[i]. */
export function swiglu(g: usize, u: usize, from: i32, to: i32): void {
  const one = f32x4.splat(1);
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const o = <usize>i << 2;
    const a = v128.load(g + o);
    const s = f32x4.div(a, f32x4.add(one, expf4(f32x4.neg(a))));
    v128.store(g + o, f32x4.mul(s, v128.load(u + o)));
  }
  for (; i < to; i++) {
    const o = <usize>i << 2;
    const a = load<f32>(g + o);
    store<f32>(g + o, a / (1 + Mathf.exp(-a)) * load<f32>(u + o));
  }
}
